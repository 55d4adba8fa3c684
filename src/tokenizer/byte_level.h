// The GPT-2 "byte-level" alphabet: every byte maps to one printable code point, so BPE
// vocabularies can be stored as text. Printable Latin-1 bytes map to themselves; the other 68
// bytes (controls, space, DEL, NBSP, soft hyphen...) map to U+0100.. in byte order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace m3::byte_level {

// The code point byte b is written as.
char32_t char_of_byte(unsigned char b);

// Appends the byte-level form of `bytes` (each byte becomes one code point, as UTF-8).
void encode(std::string_view bytes, std::string& out);

// HF's ByteLevel decoder for one token string (valid UTF-8): if every code point belongs to
// the alphabet, the bytes they stand for; otherwise the token's own UTF-8 unchanged.
std::string decode_token(std::string_view token);

}  // namespace m3::byte_level
