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

uint32_t job_of(uint64_t claim) { return static_cast<uint32_t>(claim >> 32); }
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_erased(int64_t n_chunks, void (*fn)(void*, int64_t, int), void* ctx) {
  if (workers_.empty()) {
    for (int64_t c = 0; c < n_chunks; ++c) fn(ctx, c, 0);
    return;
  }
  task_fn_ = fn;
  task_ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  ++job_;
  job_chunks_.store(static_cast<uint64_t>(job_) << 32 | static_cast<uint64_t>(n_chunks), std::memory_order_seq_cst);
  claim_.store(static_cast<uint64_t>(job_) << 32, std::memory_order_seq_cst);  // publishes the job
  // A worker counts itself a sleeper before it re-checks claim_ under the mutex, so either
  // it sees the new job or we see it and wake it (both sides are seq_cst).
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(sleep_mutex_); }
    wake_.notify_all();
  }
  work_on(job_, 0);
  // Only chunks that workers already claimed can still be running.
  for (int spin = 0; done_.load(std::memory_order_acquire) != n_chunks; ++spin) {
    if (spin % 256 == 255) std::this_thread::yield();
    else M3_CPU_RELAX();
  }
}

void ThreadPool::work_on(uint32_t job, int thread) {
  uint64_t c = claim_.load(std::memory_order_acquire);
  while (job_of(c) == job) {
    const int64_t chunk = static_cast<int64_t>(c & 0xffffffffu);
    // A newer job's count means this job is over (the caller starts one only when every
    // chunk of the last is done); the compare-exchange below fails if claim_ moved on.
    const uint64_t jc = job_chunks_.load(std::memory_order_seq_cst);
    if (job_of(jc) != job || chunk >= static_cast<int64_t>(jc & 0xffffffffu)) return;
    if (claim_.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      task_fn_(task_ctx_, chunk, thread);
      done_.fetch_add(1, std::memory_order_acq_rel);
      c = claim_.load(std::memory_order_acquire);
    }
  }
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;  // jobs are numbered from 1
  for (;;) {
    uint32_t now = job_of(claim_.load(std::memory_order_acquire));
    for (int spin = 0; now == seen && spin < kSpinRounds && !stop_.load(std::memory_order_relaxed); ++spin) {
      if (spin % 256 == 255) std::this_thread::yield();
      else M3_CPU_RELAX();
      now = job_of(claim_.load(std::memory_order_acquire));
    }
    if (stop_.load(std::memory_order_seq_cst)) return;
    if (now == seen) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      wake_.wait(lock, [&] {
        return stop_.load(std::memory_order_seq_cst) || job_of(claim_.load(std::memory_order_seq_cst)) != seen;
      });
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      continue;
    }
    seen = now;
    work_on(now, index);
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
