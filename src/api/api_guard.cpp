#include "api/api_guard.h"

#include <atomic>
#include <cstring>
#include <new>

#include "common/error.h"

namespace m3::api {
namespace {
thread_local std::string t_last_error;
std::atomic<int64_t> g_live_handles{0};
}  // namespace

void handle_created() { g_live_handles.fetch_add(1, std::memory_order_relaxed); }
void handle_freed() { g_live_handles.fetch_sub(1, std::memory_order_relaxed); }
int64_t live_handles() { return g_live_handles.load(std::memory_order_relaxed); }

void set_last_error(const std::string& message) {
  try {
    t_last_error = message;
  } catch (...) {
    t_last_error.clear();  // out of memory while reporting: an empty message beats a crash
  }
}
void clear_last_error() { t_last_error.clear(); }
const char* last_error() { return t_last_error.c_str(); }

void require_non_null(const void* p, const char* what) {
  if (!p) throw m3::Error(M3_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
}

void copy_out(const std::string& bytes, char* out, size_t capacity, size_t* out_len, const char* what) {
  *out_len = bytes.size();
  if (bytes.size() > capacity || (!out && !bytes.empty()))
    throw m3::Error(M3_ERR_BUFFER_TOO_SMALL, std::string(what) + " needs " + std::to_string(bytes.size()) + " bytes");
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
}

m3_status handle_current_exception() {
  try {
    throw;
  } catch (const m3::Error& e) {
    set_last_error(e.what());
    return e.status();
  } catch (const std::bad_alloc&) {
    set_last_error("out of memory");
    return M3_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    set_last_error(std::string("internal error: ") + e.what());
    return M3_ERR_INTERNAL;
  } catch (...) {
    set_last_error("internal error: unknown exception");
    return M3_ERR_INTERNAL;
  }
}

}  // namespace m3::api
