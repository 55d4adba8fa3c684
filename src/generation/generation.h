// One stream of generated text on one session: a Turn (input, sampling, stops, text) whose
// input this class feeds through the session itself, one call at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamba3rt.h"
#include "generation/turn.h"
#include "session/session.h"

namespace m3 {

class Generation {
 public:
  // Throws m3::Error for invalid params (ids outside the vocabulary, bad sampling values).
  Generation(Session& session, const GenerationParams& params);

  void push_text(std::string_view text);
  void push_tokens(const int32_t* tokens, std::size_t n);
  GenerationStep next();
  void cancel() { cancel_requested_.store(true, std::memory_order_relaxed); }
  double stat(m3_gen_stat stat) const;

 private:
  using Clock = std::chrono::steady_clock;
  bool take_cancel() { return cancel_requested_.exchange(false, std::memory_order_relaxed); }
  // Feeds pending input in chunks, checking for cancellation between chunks. Returns false if cancelled.
  bool feed_pending();
  void feed_unfed_token();

  Session& session_;
  Turn turn_;
  std::vector<float> logits_;
  std::atomic<bool> cancel_requested_{false};

  // Statistics.
  int64_t fed_tokens_ = 0;
  double feed_seconds_ = 0, decode_seconds_ = 0, ttft_ms_ = -1;
  Clock::time_point first_call_{};
  bool called_ = false;
};

}  // namespace m3
