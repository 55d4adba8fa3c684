// The CPU backend's own thread pool: persistent workers that spin briefly between jobs,
// because a decode step runs a few parallel regions per layer and waking a sleeping
// thread costs tens of microseconds each time. A job is a number of chunks that threads
// claim one at a time, so a worker the OS has descheduled (a busy machine) does not hold
// the caller up: the caller and the awake workers take its share.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
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

  // Calls task(chunk, thread_index) once for every chunk in [0, n_chunks), on the calling
  // thread (index 0) and the workers, and returns when all chunks are done. Which thread
  // runs a chunk is not fixed. Not reentrant: one job at a time (callers serialize).
  // No allocation.
  template <class Task>
  void run_chunks(int64_t n_chunks, Task&& task) {
    using T = std::remove_reference_t<Task>;
    run_erased(n_chunks, [](void* ctx, int64_t chunk, int thread) { (*static_cast<T*>(ctx))(chunk, thread); },
               &task);
  }

  // Splits [0, n) into contiguous ranges of whole `grain` units (the last range takes the
  // remainder), a few per thread, and calls body(begin, end, thread_index) for each.
  template <class Body>
  void parallel_for(int64_t n, int64_t grain, Body&& body) {
    const int64_t units = (n + grain - 1) / grain;
    const int64_t chunks = std::min<int64_t>(units, kChunksPerThread * size());
    if (chunks <= 1) {
      if (n > 0) body(int64_t{0}, n, 0);
      return;
    }
    run_chunks(chunks, [&](int64_t c, int thread) {
      const int64_t begin = units * c / chunks * grain, end = std::min(n, units * (c + 1) / chunks * grain);
      if (begin < end) body(begin, end, thread);
    });
  }

 private:
  static constexpr int64_t kChunksPerThread = 3;

  void run_erased(int64_t n_chunks, void (*fn)(void*, int64_t, int), void* ctx);
  // Claims and runs chunks of job `job` until none are left (or a newer job started).
  void work_on(uint32_t job, int thread);
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  // The current job; written by the caller before it publishes the job in claim_.
  void (*task_fn_)(void*, int64_t, int) = nullptr;
  void* task_ctx_ = nullptr;
  // (job number << 32) | its number of chunks, published before claim_: a worker checks a
  // chunk against the chunk count of its own job. (A bare count, written before claim_ named
  // the new job, once let a late worker claim "chunk n" of the finished job and run it with
  // the new job's task: ThreadSanitizer found it.)
  std::atomic<uint64_t> job_chunks_{0};
  // (job number << 32) | next unclaimed chunk: a claim is a compare-exchange on both, so a
  // late worker can never claim a chunk of a job it did not see start.
  std::atomic<uint64_t> claim_{0};
  std::atomic<int64_t> done_{0};  // chunks of the current job finished
  uint32_t job_ = 0;              // the caller's job counter
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
