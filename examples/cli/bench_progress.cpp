#include "bench_progress.h"

#include <unistd.h>

#include <cstdio>

namespace cli {

ProgressLine::ProgressLine(bool enabled)
    : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0), start_(Clock::now()), last_(start_) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const std::string& text) {
  if (!enabled_) return;
  const auto now = Clock::now();
  if (now - start_ < std::chrono::seconds(2)) return;
  if (shown_ && now - last_ < (tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(10000))) return;
  last_ = now;
  shown_ = true;
  const double s = std::chrono::duration<double>(now - start_).count();
  if (tty_)
    std::fprintf(stderr, "\r\033[K[%6.1f s] %s", s, text.c_str());
  else
    std::fprintf(stderr, "[%6.1f s] %s\n", s, text.c_str());
  std::fflush(stderr);
}

void ProgressLine::finish() {
  if (shown_ && tty_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  shown_ = false;
}

}  // namespace cli
