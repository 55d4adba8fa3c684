// UTF-8 helpers for the tokenizer: strict validation (with the offset of the first bad byte),
// code point iteration and encoding, and Rust-style lossy conversion for decode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace m3::utf8 {

// Byte offset of the first byte that does not start a valid UTF-8 sequence (overlongs,
// surrogates and code points above U+10FFFF are invalid), or nullopt if `s` is valid.
std::optional<std::size_t> first_invalid(std::string_view s);

// Decodes the code point at s[i] (which must be valid UTF-8) and advances i past it.
inline char32_t next(std::string_view s, std::size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  auto cont = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  char32_t cp;
  if (b0 < 0xE0) {
    cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(1);
    i += 2;
  } else if (b0 < 0xF0) {
    cp = (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    i += 3;
  } else {
    cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    i += 4;
  }
  return cp;
}

// Length of the sequence that starts with lead byte b (1 for continuation bytes, so callers
// on valid text never loop forever).
inline std::size_t seq_len(unsigned char b) {
  return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

void append(std::string& out, char32_t cp);

// Valid UTF-8 stays as is; every maximal invalid subsequence becomes U+FFFD, exactly like
// Rust's String::from_utf8_lossy (which HF's decoders use).
std::string to_valid_lossy(std::string_view bytes);

// The same, appended to `out`. With keep_incomplete_tail, a trailing valid-but-incomplete
// sequence is left out instead of replaced (streaming: the next bytes may complete it); the
// number of bytes left out is returned.
std::size_t append_lossy(std::string_view bytes, std::string& out, bool keep_incomplete_tail);

}  // namespace m3::utf8
