// Small Unicode predicates the tokenizer needs without a regex.
#pragma once

namespace m3::unicode {

// The White_Space property: Rust's char::is_whitespace and regex \s (and Oniguruma's \s).
constexpr bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

}  // namespace m3::unicode
