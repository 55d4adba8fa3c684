// Internal error type. Core code throws m3::Error; the extern "C" layer turns it
// into an m3_status plus the thread-local message, so nothing escapes to the host.
#pragma once

#include <stdexcept>
#include <string>

#include "mamba3rt.h"

namespace m3 {

class Error : public std::runtime_error {
 public:
  Error(m3_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  m3_status status() const noexcept { return status_; }

 private:
  m3_status status_;
};

[[noreturn]] inline void fail(m3_status status, const std::string& message) {
  throw Error(status, message);
}

}  // namespace m3
