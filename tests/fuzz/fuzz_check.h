// What the fuzz harnesses share: an invariant check that aborts (so libFuzzer and the replay
// tests both report it, in any build type), the rule that a parser may only fail through
// m3::Error, and a strict UTF-8 check to test the tokenizer's output against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.h"

// Not assert(): the check must also hold in Release (NDEBUG) replay builds.
#define FUZZ_CHECK(cond)                                                                       \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);   \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

namespace fuzz {

// A rejected input must surface as m3::Error with a real status and a message that starts with
// what names the input (the file path, or a fixed prefix like "state blob"). Anything else (a
// library exception, bad_alloc, a crash) escapes the harness and is reported as a bug.
// FUZZ_VERBOSE=1 prints each rejection, to see why a seed is refused.
inline void check_rejection(const m3::Error& e, std::string_view prefix) {
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "rejected (status %d): %s\n", static_cast<int>(e.status()), e.what());
  FUZZ_CHECK(e.status() != M3_OK);
  const std::string_view message = e.what();
  if (message.substr(0, prefix.size()) != prefix) {
    std::fprintf(stderr, "error message does not start with '%.*s': %s\n", static_cast<int>(prefix.size()),
                 prefix.data(), e.what());
    FUZZ_CHECK(!"error message names its input");
  }
}

// Well-formed UTF-8 (RFC 3629: shortest forms, no surrogates, at most U+10FFFF); written apart
// from src/tokenizer/utf8 so that the tokenizer is checked against an independent oracle.
inline bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) len = 1, cp = c;
    else if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1Fu;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0Fu;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07u;
    else return false;
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    static constexpr uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace fuzz
