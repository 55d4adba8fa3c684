// The CPU backend's own thread pool: persistent workers that spin briefly between jobs,
// because a decode step runs a few parallel regions per layer and waking a sleeping
// thread costs tens of microseconds each time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <algorithm>
#include <type_traits>
#include <thread>
#include <vector>

namespace m3::cpu {

class ThreadPool {
 public:
  // n_threads counts the calling thread; 1 runs everything inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls task(thread_index) once on every thread (index 0 is the caller) and returns when
  // all have finished. Not reentrant: one run at a time (callers serialize). No allocation.
  template <class Task>
  void run(Task&& task) {
    using T = std::remove_reference_t<Task>;
    run_erased([](void* ctx, int thread) { (*static_cast<T*>(ctx))(thread); }, &task);
  }

  // Splits [0, n) into size() contiguous ranges, in units of `grain` (the last range takes
  // the remainder), and calls body(begin, end, thread_index) for each non-empty one.
  template <class Body>
  void parallel_for(int64_t n, int64_t grain, Body&& body) {
    const int threads = size();
    const int64_t units = (n + grain - 1) / grain;
    if (threads == 1 || units <= 1) {
      if (n > 0) body(int64_t{0}, n, 0);
      return;
    }
    run([&](int t) {
      const int64_t u0 = units * t / threads, u1 = units * (t + 1) / threads;
      const int64_t begin = u0 * grain, end = std::min(n, u1 * grain);
      if (begin < end) body(begin, end, t);
    });
  }

 private:
  void run_erased(void (*fn)(void*, int), void* ctx);
  void start_generation();
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  void (*task_fn_)(void*, int) = nullptr;
  void* task_ctx_ = nullptr;
  std::atomic<uint64_t> generation_{0};  // bumped to start a job
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  // Sleeping after the spin: a mutex and condition variable (not atomic::wait, whose
  // 64-bit form in GCC 12's libstdc++ was seen to miss a wake-up).
  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
};

// The default thread count: $MAMBA3RT_THREADS when set and valid, else the online cores.
int default_thread_count();

}  // namespace m3::cpu
