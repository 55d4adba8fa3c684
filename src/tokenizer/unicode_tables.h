// Unicode data for the normalizers (generated into unicode_tables.cpp by tools/gen_unicode_tables.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3::unicode_tables {

extern const char* const kUnicodeVersion;
extern const uint32_t kLowerSingle[];
extern const std::size_t kLowerSingleCount;
extern const uint32_t kLowerMulti[];
extern const std::size_t kLowerMultiCount;
extern const uint32_t kCccRuns[];
extern const std::size_t kCccRunCount;
extern const uint32_t kCanonical[];
extern const std::size_t kCanonicalCount;
extern const uint32_t kCompat[];
extern const std::size_t kCompatCount;
extern const uint32_t kPool[];
extern const uint32_t kCompose[];
extern const std::size_t kComposeCount;

}  // namespace m3::unicode_tables
