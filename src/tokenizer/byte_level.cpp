#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace m3::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> char_of{};
  // Inverse for code points < 0x180 (all alphabet members are below that); -1 = not a member.
  std::array<int16_t, 0x180> byte_of{};
  // UTF-8 of char_of[b], so encode() is a table copy.
  std::array<std::string, 256> utf8_of{};

  Tables() {
    byte_of.fill(-1);
    auto kept = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      char_of[static_cast<std::size_t>(b)] = kept(b) ? static_cast<char32_t>(b) : next++;
    }
    for (int b = 0; b < 256; ++b) {
      const char32_t c = char_of[static_cast<std::size_t>(b)];
      byte_of[c] = static_cast<int16_t>(b);
      utf8::append(utf8_of[static_cast<std::size_t>(b)], c);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t char_of_byte(unsigned char b) { return tables().char_of[b]; }

void encode(std::string_view bytes, std::string& out) {
  const Tables& t = tables();
  for (const char c : bytes) out += t.utf8_of[static_cast<unsigned char>(c)];
}

std::string decode_token(std::string_view token) {
  const Tables& t = tables();
  std::string out;
  out.reserve(token.size());
  std::size_t i = 0;
  while (i < token.size()) {
    const char32_t cp = utf8::next(token, i);
    if (cp >= t.byte_of.size() || t.byte_of[cp] < 0) return std::string(token);
    out += static_cast<char>(static_cast<unsigned char>(t.byte_of[cp]));
  }
  return out;
}

}  // namespace m3::byte_level
