#include "common/quote.h"

#include <algorithm>

namespace m3 {

std::string quote_for_message(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  const std::size_t shown = std::min<std::size_t>(s.size(), 200);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (shown < s.size()) out += "...";
  return out + "'";
}

}  // namespace m3
