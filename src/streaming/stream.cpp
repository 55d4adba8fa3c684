#include "streaming/stream.h"

#include "common/error.h"

namespace m3::streaming {
namespace {

void fail_if_stopped(const SchedulerSignal& signal) {
  if (signal.stopped()) fail(M3_ERR_INVALID_ARGUMENT, "the engine this stream belongs to was freed");
}

}  // namespace

Stream::Stream(std::unique_ptr<Session> session, const GenerationParams& params, std::size_t queue_capacity,
               EventCallback callback, std::shared_ptr<SchedulerSignal> signal,
               std::shared_ptr<std::atomic<int64_t>> live_streams)
    : session_(std::move(session)),
      turn_(session_->model(), params),
      callback_(std::move(callback)),
      signal_(std::move(signal)),
      live_streams_(std::move(live_streams)),
      queue_capacity_(queue_capacity),
      session_was_empty_(session_->n_tokens() == 0) {}

void Stream::push_text(std::string_view text) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    first = session_was_empty_ && !pushed_any_;
  }
  // Encoding is const and thread-safe; the tokens then go through the same path as pushed ids.
  const std::vector<int32_t> tokens = turn_.encode(text, first);
  push_tokens(tokens.data(), tokens.size());
}

void Stream::push_tokens(const int32_t* tokens, std::size_t n) {
  if (n == 0) return;
  turn_.validate(tokens, n);  // reads only the model's vocabulary size
  fail_if_stopped(*signal_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!pushed_any_) first_push_ = Clock::now();
    pushed_any_ = true;
    inbox_.insert(inbox_.end(), tokens, tokens + n);
    ++pushes_;
    delivered_finish_ = M3_FINISH_NONE;
  }
  prompt_tokens_ += static_cast<int64_t>(n);
  signal_->notify();
}

bool Stream::next(std::chrono::milliseconds timeout, StreamEvent* out) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (callback_) fail(M3_ERR_INVALID_ARGUMENT, "this stream delivers its output to its callback");
  const auto ready = [&] { return !events_.empty() || delivered_finish_ != M3_FINISH_NONE || signal_->stopped(); };
  if (!pushed_any_ && events_.empty() && delivered_finish_ == M3_FINISH_NONE && !cancel_requested_)
    fail(M3_ERR_INVALID_ARGUMENT, "nothing to generate from: push a prompt (text or tokens) first");
  if (timeout.count() < 0) {
    output_ready_.wait(lock, ready);
  } else if (!output_ready_.wait_for(lock, timeout, ready)) {
    return false;
  }
  if (events_.empty()) {
    if (delivered_finish_ != M3_FINISH_NONE) {
      *out = StreamEvent{};
      out->finish = delivered_finish_;
      return true;
    }
    fail(M3_ERR_INVALID_ARGUMENT, "the engine this stream belongs to was freed");
  }
  const bool was_full = events_.size() >= queue_capacity_;
  *out = std::move(events_.front());
  events_.pop_front();
  if (out->finish != M3_FINISH_NONE && out->pushes_seen == pushes_) delivered_finish_ = out->finish;
  lock.unlock();
  if (was_full) signal_->notify();  // the scheduler may resume this stream
  return true;
}

void Stream::cancel() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cancel_requested_ = true;
  }
  signal_->notify();
}

void Stream::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  // A callback in progress finishes before the handle goes; none starts after (deliver checks
  // closed_ under callback_mutex_), so the caller may free the callback's data at once.
  if (callback_) {
    std::lock_guard<std::mutex> wait(callback_mutex_);
  }
  live_streams_->fetch_sub(1);
  signal_->notify();
}

Stream::Intake Stream::take_input() {
  std::vector<int32_t> input;
  Intake intake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    input.swap(inbox_);
    pushes_absorbed_ = pushes_;
    intake.closed = closed_;
    intake.cancel = cancel_requested_;
    cancel_requested_ = false;
  }
  if (!input.empty()) turn_.push(input.data(), input.size());
  return intake;
}

bool Stream::accepts_output() const {
  if (callback_) return true;
  std::lock_guard<std::mutex> lock(mutex_);
  return events_.size() < queue_capacity_;
}

void Stream::emit(GenerationStep step) {
  if (turn_.generated_tokens() > generated_tokens_.load()) {  // this step sampled a token
    const auto now = Clock::now();
    if (generated_tokens_.load() == 0) {
      first_token_ = now;
      std::lock_guard<std::mutex> lock(mutex_);
      ttft_ms_ = std::chrono::duration<double, std::milli>(now - first_push_).count();
    } else {
      decode_seconds_ = std::chrono::duration<double>(now - first_token_).count();
    }
    generated_tokens_ = turn_.generated_tokens();
  }
  StreamEvent event;
  event.token = step.token;
  event.piece = std::move(step.piece);
  event.finish = step.finish;
  deliver(std::move(event));
}

void Stream::emit_error(m3_status status, const std::string& message) {
  turn_.finish(M3_FINISH_CANCELLED);
  StreamEvent event;
  event.finish = M3_FINISH_CANCELLED;
  event.status = status;
  event.error = message;
  deliver(std::move(event));
}

void Stream::deliver(StreamEvent event) {
  if (callback_) {
    std::lock_guard<std::mutex> calling(callback_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;  // the handle is freed: its callback data may be gone
      event.pushes_seen = pushes_absorbed_;
    }
    const bool go_on = callback_(event);
    if (!go_on && event.finish == M3_FINISH_NONE) cancel();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    event.pushes_seen = pushes_absorbed_;
    events_.push_back(std::move(event));
  }
  output_ready_.notify_all();
}

double Stream::stat(m3_gen_stat stat) const {
  switch (stat) {
    case M3_STAT_PROMPT_TOKENS: return static_cast<double>(prompt_tokens_.load());
    case M3_STAT_GENERATED_TOKENS: return static_cast<double>(generated_tokens_.load());
    case M3_STAT_TTFT_MS: return ttft_ms_.load();
    case M3_STAT_PREFILL_TOK_S: {
      const double s = prefill_seconds_.load();
      return s > 0 ? static_cast<double>(prompt_tokens_.load()) / s : 0;
    }
    case M3_STAT_DECODE_TOK_S: {
      const double s = decode_seconds_.load();
      return s > 0 ? static_cast<double>(generated_tokens_.load() - 1) / s : 0;
    }
  }
  fail(M3_ERR_INVALID_ARGUMENT, "unknown statistic " + std::to_string(static_cast<int>(stat)));
}

}  // namespace m3::streaming
