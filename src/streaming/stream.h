// One request on the streaming engine: its session, its Turn, the input pushed by the
// caller and the output waiting for the caller.
//
// Two sides, two threads: the caller pushes input, pulls output and cancels (any thread,
// under mutex_); the engine's scheduler thread alone touches the session and the Turn, and
// moves input and output across under the same mutex. The output queue is bounded: while it
// is full the scheduler leaves the stream out of its steps, so a slow reader pauses its
// own stream and costs no memory.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "generation/turn.h"
#include "session/session.h"
#include "streaming/scheduler_signal.h"

namespace m3::streaming {

struct StreamEvent {
  int32_t token = -1;  // -1: no token (a final flushed piece, or an error)
  std::string piece;
  m3_finish_reason finish = M3_FINISH_NONE;
  m3_status status = M3_OK;  // not OK: the engine failed this stream; `error` says why
  std::string error;
  uint64_t pushes_seen = 0;  // the caller's pushes absorbed when the event was made
};

// Called on the scheduler thread for each event; false cancels the stream.
using EventCallback = std::function<bool(const StreamEvent&)>;

class Stream {
 public:
  // `live_streams` is the engine's count of streams not yet freed; close() decrements it.
  Stream(std::unique_ptr<Session> session, const GenerationParams& params, std::size_t queue_capacity,
         EventCallback callback, std::shared_ptr<SchedulerSignal> signal,
         std::shared_ptr<std::atomic<int64_t>> live_streams);

  // ---- Caller side (any thread) ----
  void push_text(std::string_view text);
  void push_tokens(const int32_t* tokens, std::size_t n);
  // The next event, waiting up to `timeout` (negative: without limit). Returns false on
  // timeout. After a finish, and until new input is pushed, returns that finish at once.
  bool next(std::chrono::milliseconds timeout, StreamEvent* out);
  void cancel();
  // The caller's handle is gone: it no longer counts against max_streams, and the scheduler
  // retires it (frees its state slot) at its next step.
  void close();
  double stat(m3_gen_stat stat) const;
  bool has_callback() const { return static_cast<bool>(callback_); }

  // ---- Scheduler side (the scheduler thread only) ----
  struct Intake {
    bool closed = false;
    bool cancel = false;
  };
  // Moves pushed input into the Turn; reports a close or cancel request.
  Intake take_input();
  // Room for one more event (always, with a callback).
  bool accepts_output() const;
  void emit(GenerationStep step);
  void emit_error(m3_status status, const std::string& message);
  void add_prefill_seconds(double s) { prefill_seconds_ += s; }
  Turn& turn() { return turn_; }
  Session& session() { return *session_; }

 private:
  using Clock = std::chrono::steady_clock;
  void deliver(StreamEvent event);

  std::unique_ptr<Session> session_;
  Turn turn_;  // scheduler thread only
  const EventCallback callback_;
  const std::shared_ptr<SchedulerSignal> signal_;
  const std::shared_ptr<std::atomic<int64_t>> live_streams_;
  const std::size_t queue_capacity_;
  const bool session_was_empty_;

  mutable std::mutex mutex_;
  std::mutex callback_mutex_;  // held while the callback runs (see close())
  std::condition_variable output_ready_;
  std::vector<int32_t> inbox_;
  std::deque<StreamEvent> events_;
  uint64_t pushes_ = 0, pushes_absorbed_ = 0;
  bool cancel_requested_ = false, closed_ = false;
  m3_finish_reason delivered_finish_ = M3_FINISH_NONE;  // returned again until new input

  // Statistics (written by the scheduler, read by the caller).
  std::atomic<int64_t> prompt_tokens_{0}, generated_tokens_{0};
  std::atomic<double> ttft_ms_{-1}, decode_seconds_{0}, prefill_seconds_{0};
  Clock::time_point first_push_{}, first_token_{};
  bool pushed_any_ = false;
};

}  // namespace m3::streaming
