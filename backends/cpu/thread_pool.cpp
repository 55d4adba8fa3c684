#include "backends/cpu/thread_pool.h"

#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define M3_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define M3_CPU_RELAX() asm volatile("yield")
#else
#define M3_CPU_RELAX() ((void)0)
#endif

namespace m3::cpu {
namespace {
// Spin this many rounds for the next job before sleeping: ~50-100 us, longer than the gap
// between two parallel regions of a decode step, far shorter than a human notices.
constexpr int kSpinRounds = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  start_generation();
  for (auto& w : workers_) w.join();
}

void ThreadPool::start_generation() {
  generation_.fetch_add(1, std::memory_order_seq_cst);
  // A worker counts itself a sleeper before it re-checks the generation under the mutex,
  // so either it sees the new generation or we see it and wake it (both are seq_cst).
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    wake_.notify_all();
  }
}

void ThreadPool::run_erased(void (*fn)(void*, int), void* ctx) {
  if (workers_.empty()) {
    fn(ctx, 0);
    return;
  }
  task_fn_ = fn;
  task_ctx_ = ctx;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  start_generation();
  fn(ctx, 0);
  // Yield now and then: with more threads than free cores a worker may need our core.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin % 256 == 255) std::this_thread::yield();
    else M3_CPU_RELAX();
  }
}

void ThreadPool::worker_loop(int index) {
  // Jobs are counted from the pool's creation: a worker that starts late must still run
  // every job bumped before it got here.
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpinRounds; ++spin) {
      if (spin % 256 == 255) std::this_thread::yield();
      else M3_CPU_RELAX();
      now = generation_.load(std::memory_order_acquire);
    }
    if (now == seen) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      continue;
    }
    seen = now;
    if (stop_.load()) return;
    task_fn_(task_ctx_, index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

int default_thread_count() {
  if (const char* env = std::getenv("MAMBA3RT_THREADS"); env && *env) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

}  // namespace m3::cpu
