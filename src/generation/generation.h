// One stream of generated text on one session: pending input is fed, then tokens are
// sampled one at a time and turned into safe text pieces, until a stop condition.
//
// The last sampled token is fed lazily, together with whatever input comes next, so a
// finished turn costs no extra forward pass and a later push continues the dialogue with
// the model having seen its own last token.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mamba3rt.h"
#include "generation/text_stream.h"
#include "sampling/sampler.h"
#include "session/session.h"

namespace m3 {

struct GenerationParams {
  SamplingParams sampling;
  int32_t max_tokens = 256;
  std::vector<int32_t> stop_tokens;
  std::vector<std::string> stop_strings;
  bool ignore_eos = false;
  bool add_special = true;
};

struct GenerationStep {
  int32_t token = -1;  // -1: no token (a flush, or nothing after the end)
  std::string piece;
  m3_finish_reason finish = M3_FINISH_NONE;
};

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
  void start_turn_if_finished();
  // Feeds pending input in chunks, checking for cancellation between chunks. Returns false if cancelled.
  bool feed_pending();
  void feed_unfed_token();
  GenerationStep finish(m3_finish_reason reason, int32_t token = -1, std::string piece = {});

  Session& session_;
  const Model& model_;
  GenerationParams params_;
  Sampler sampler_;
  TextStream text_;
  std::vector<int32_t> pending_;  // pushed input not yet fed
  int32_t unfed_ = -1;            // the last sampled token, fed with the next call or push
  std::vector<float> logits_;
  bool has_logits_ = false;       // logits_ belong to the last fed token
  int32_t turn_tokens_ = 0;
  m3_finish_reason finished_ = M3_FINISH_NONE;
  std::atomic<bool> cancel_requested_{false};

  // Statistics.
  int64_t fed_tokens_ = 0, generated_tokens_ = 0;
  double feed_seconds_ = 0, decode_seconds_ = 0, ttft_ms_ = -1;
  Clock::time_point first_call_{};
  bool called_ = false;
};

}  // namespace m3
