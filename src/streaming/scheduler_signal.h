// The scheduler's wake-up, shared by an engine and its streams so that a stream handle that
// outlives its engine can still tell that the engine is gone.
#pragma once

#include <condition_variable>
#include <mutex>

namespace m3::streaming {

class SchedulerSignal {
 public:
  // There is new work (a submit, push, cancel, free, or room in a paused stream's queue).
  void notify() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      work_ = true;
    }
    cv_.notify_one();
  }
  // Blocks until notify() or stop(); false once stopped. Each notify wakes one wait.
  bool wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return work_ || stopped_; });
    work_ = false;
    return !stopped_;
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
  }
  bool stopped() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopped_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool work_ = false;
  bool stopped_ = false;
};

}  // namespace m3::streaming
