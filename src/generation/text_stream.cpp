#include "generation/text_stream.h"

#include <algorithm>
#include <utility>

namespace m3 {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8 { Valid, Incomplete, Invalid };

// Classifies the bytes at s[i] (Unicode Table 3-7). Returns the kind and a length: of the
// character (Valid), of the valid prefix that reaches the end of s (Incomplete), or of the
// maximal invalid subpart to replace with one U+FFFD (Invalid, at least 1).
std::pair<Utf8, std::size_t> classify(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return {Utf8::Valid, 1};
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) need = 2;
  else if (c == 0xE0) need = 3, lo = 0xA0;  // no overlong forms
  else if (c == 0xED) need = 3, hi = 0x9F;  // no surrogates
  else if (c >= 0xE1 && c <= 0xEF) need = 3;
  else if (c == 0xF0) need = 4, lo = 0x90;
  else if (c == 0xF4) need = 4, hi = 0x8F;  // nothing above U+10FFFF
  else if (c >= 0xF1 && c <= 0xF3) need = 4;
  else return {Utf8::Invalid, 1};
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return {Utf8::Incomplete, k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {Utf8::Invalid, k};
  }
  return {Utf8::Valid, need};
}

}  // namespace

std::size_t append_utf8_lossy(std::string_view bytes, std::string& out, bool keep_incomplete_tail) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    const auto [kind, len] = classify(bytes, i);
    if (kind == Utf8::Valid) {
      out.append(bytes.substr(i, len));
    } else if (kind == Utf8::Incomplete && keep_incomplete_tail) {
      return len;  // maybe the next token completes it
    } else {
      out.append(kReplacement);
    }
    i += len;
  }
  return 0;
}

TextStream::TextStream(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {
  std::erase_if(stop_strings_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::push(std::string_view bytes, bool* stopped) {
  *stopped = false;
  std::string pending = utf8_tail_;
  pending.append(bytes);
  utf8_tail_.clear();
  const std::size_t tail = append_utf8_lossy(pending, held_, true);
  utf8_tail_ = pending.substr(pending.size() - tail);

  // The earliest complete stop string ends the output there.
  std::size_t stop_at = std::string::npos;
  for (const auto& s : stop_strings_) stop_at = std::min(stop_at, held_.find(s));
  if (stop_at != std::string::npos) {
    std::string out = held_.substr(0, stop_at);
    held_.clear();
    utf8_tail_.clear();
    *stopped = true;
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of some stop string.
  std::size_t keep = 0;
  for (const auto& s : stop_strings_)
    for (std::size_t k = std::min(s.size() - 1, held_.size()); k > keep; --k)
      if (held_.compare(held_.size() - k, k, s, 0, k) == 0) {
        keep = k;
        break;
      }
  std::string out = held_.substr(0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return out;
}

std::string TextStream::flush() {
  std::string out = std::move(held_);
  append_utf8_lossy(utf8_tail_, out, false);
  held_.clear();
  utf8_tail_.clear();
  return out;
}

}  // namespace m3
