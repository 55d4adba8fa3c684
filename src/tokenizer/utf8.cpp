#include "tokenizer/utf8.h"

namespace m3::utf8 {
namespace {

// Length of the valid sequence at s[i], or 0 if none. When 0, `bad_len` is the length of the
// maximal prefix of a valid sequence (at least 1): that is one U+FFFD in from_utf8_lossy;
// `truncated` (if given) says whether that prefix only failed because `s` ended.
std::size_t valid_len(std::string_view s, std::size_t i, std::size_t& bad_len, bool* truncated = nullptr) {
  const auto at = [&](std::size_t k) -> int {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1;
  };
  const int b0 = at(0);
  bad_len = 1;
  if (b0 < 0x80) return 1;
  int need;
  int lo = 0x80, hi = 0xBF;  // range allowed for the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  for (int k = 1; k <= need; ++k) {
    const int b = at(static_cast<std::size_t>(k));
    const bool ok = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      bad_len = static_cast<std::size_t>(k);
      if (truncated) *truncated = b < 0;
      return 0;
    }
  }
  return static_cast<std::size_t>(need) + 1;
}

}  // namespace

std::optional<std::size_t> first_invalid(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    // Fast path for ASCII runs.
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t n = valid_len(s, i, bad);
    if (n == 0) return i;
    i += n;
  }
  return std::nullopt;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::size_t append_lossy(std::string_view bytes, std::string& out, bool keep_incomplete_tail) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    std::size_t bad = 0;
    bool truncated = false;
    const std::size_t n = valid_len(bytes, i, bad, &truncated);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else if (truncated && keep_incomplete_tail) {
      return bytes.size() - i;  // the rest may be completed by more bytes
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return 0;
}

std::string to_valid_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_lossy(bytes, out, false);
  return out;
}

}  // namespace m3::utf8
