#include "generation/text_stream.h"

#include <algorithm>
#include <utility>

#include "tokenizer/utf8.h"

namespace m3 {

TextStream::TextStream(std::vector<std::string> stop_strings) : stop_strings_(std::move(stop_strings)) {
  std::erase_if(stop_strings_, [](const std::string& s) { return s.empty(); });
}

std::string TextStream::push(std::string_view bytes, bool* stopped) {
  *stopped = false;
  std::string pending = utf8_tail_;
  pending.append(bytes);
  utf8_tail_.clear();
  const std::size_t tail = utf8::append_lossy(pending, held_, true);
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
  utf8::append_lossy(utf8_tail_, out, false);
  held_.clear();
  utf8_tail_.clear();
  return out;
}

}  // namespace m3
