// 64-bit FNV-1a, used for model fingerprints and state-blob checksums. Not cryptographic:
// it detects accidents (wrong model, damaged blob), not attackers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace m3 {

class Fnv1a64 {
 public:
  void update(const void* data, std::size_t n) {
    const auto* p = static_cast<const uint8_t*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h_ ^= p[i];
      h_ *= 0x100000001b3ull;
    }
  }
  void update(std::string_view s) { update(s.data(), s.size()); }
  template <class T>
  void update_value(const T& v) { update(&v, sizeof v); }
  uint64_t digest() const { return h_; }

 private:
  uint64_t h_ = 0xcbf29ce484222325ull;
};

}  // namespace m3
