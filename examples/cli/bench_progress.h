// The progress line of long benchmark runs, on stderr: rewritten in place on a terminal,
// one line every ten seconds otherwise; nothing at all for runs shorter than two seconds.
#pragma once

#include <chrono>
#include <string>

namespace cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  // Shows text if enough time passed since the last update (cheap to call every step).
  void update(const std::string& text);
  // Ends a line left on a terminal.
  void finish();

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool tty_;
  bool shown_ = false;
  Clock::time_point start_, last_;
};

}  // namespace cli
