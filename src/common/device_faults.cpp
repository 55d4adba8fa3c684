#include "common/device_faults.h"

#include <atomic>

namespace m3::device_faults {
namespace {

// 0: disarmed; 1: the next one fails (and every later one, until disarmed).
std::atomic<int64_t> g_allocation_countdown{0};
std::atomic<int64_t> g_submission_countdown{0};
std::atomic<int64_t> g_live{0};

bool count_down(std::atomic<int64_t>& countdown) {
  const int64_t n = countdown.load(std::memory_order_relaxed);
  if (n == 0) return false;
  if (n == 1) return true;
  countdown.store(n - 1, std::memory_order_relaxed);
  return false;
}

}  // namespace

void fail_from(int64_t nth) { g_allocation_countdown.store(nth > 0 ? nth : 0, std::memory_order_relaxed); }

void fail_submissions_from(int64_t nth) {
  g_submission_countdown.store(nth > 0 ? nth : 0, std::memory_order_relaxed);
}

void disarm() {
  g_allocation_countdown.store(0, std::memory_order_relaxed);
  g_submission_countdown.store(0, std::memory_order_relaxed);
}

bool next_allocation_fails() { return count_down(g_allocation_countdown); }

bool next_submission_fails() { return count_down(g_submission_countdown); }

void count_allocated(int64_t delta) { g_live.fetch_add(delta, std::memory_order_relaxed); }

int64_t live_allocations() { return g_live.load(std::memory_order_relaxed); }

}  // namespace m3::device_faults
