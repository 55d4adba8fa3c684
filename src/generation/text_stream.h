// Turns the bytes of generated tokens into text pieces that are safe to show at once:
// a piece never ends inside a UTF-8 character and never shows text that may still turn
// out to be the start of a stop string.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace m3 {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stop_strings = {});

  // Appends a token's bytes. Returns the text that can be emitted now. If a stop string is
  // now complete, sets *stopped and returns only the text before it (the rest is dropped).
  std::string push(std::string_view bytes, bool* stopped);

  // Everything still held back (an incomplete UTF-8 tail becomes U+FFFD); empties the stream.
  std::string flush();

 private:
  std::string utf8_tail_;  // a proper prefix of a UTF-8 character, at most 3 bytes
  std::string held_;       // valid text that may be the start of a stop string
  std::vector<std::string> stop_strings_;
};

}  // namespace m3
