// Turns internal exceptions into m3_status codes plus the thread-local error message, so
// that no C++ exception ever crosses the C ABI.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mamba3rt.h"

namespace m3::api {

void set_last_error(const std::string& message);
void clear_last_error();
const char* last_error();

m3_status handle_current_exception();

// The m3_live_handles() counter: every create/free pair of a caller-owned handle calls these.
void handle_created();
void handle_freed();
int64_t live_handles();

// Throws M3_ERR_INVALID_ARGUMENT "<what> is NULL" for a null pointer argument.
void require_non_null(const void* p, const char* what);
template <class T>
void require(const T* p, const char* what) {
  require_non_null(static_cast<const void*>(p), what);
}

// Two-call pattern for byte output: *out_len = bytes.size(); copies them to out when they fit
// in capacity, else throws M3_ERR_BUFFER_TOO_SMALL "<what> needs N bytes".
void copy_out(const std::string& bytes, char* out, size_t capacity, size_t* out_len, const char* what);

// Runs body (which returns void); returns M3_OK or the status of what it threw.
template <class Body>
m3_status guarded(Body&& body) noexcept {
  try {
    clear_last_error();
    body();
    return M3_OK;
  } catch (...) {
    return handle_current_exception();
  }
}

}  // namespace m3::api
