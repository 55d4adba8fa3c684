#include "generation/generation.h"

#include <algorithm>

#include "common/error.h"

namespace m3 {
namespace {

// Prompt tokens fed per backend call; cancellation is checked between chunks.
constexpr std::size_t kFeedChunk = 64;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Generation::Generation(Session& session, const GenerationParams& params)
    : session_(session),
      turn_(session.model(), params),
      logits_(static_cast<std::size_t>(session.model().config().vocab_padded)) {}

void Generation::push_text(std::string_view text) {
  const std::vector<int32_t> tokens = turn_.encode(text, session_.n_tokens() == 0 && !turn_.any_input_seen());
  push_tokens(tokens.data(), tokens.size());
}

void Generation::push_tokens(const int32_t* tokens, std::size_t n) {
  if (n == 0) return;
  if (turn_.finished() != M3_FINISH_NONE)
    cancel_requested_.store(false, std::memory_order_relaxed);  // a cancel ended the previous turn
  turn_.push(tokens, n);
  fed_tokens_ += static_cast<int64_t>(n);
}

bool Generation::feed_pending() {
  const auto t0 = Clock::now();
  bool cancelled = false;
  for (bool first = true;; first = false) {
    const std::span<const int32_t> input = turn_.input();
    if (input.empty()) break;
    if (!first && take_cancel()) {
      cancelled = true;
      break;
    }
    const std::size_t n = std::min(kFeedChunk, input.size());
    Session::InUse use(session_);
    session_.feed(input.data(), n, M3_LOGITS_LAST, logits_.data(), logits_.size());
    turn_.input_fed(n);
  }
  feed_seconds_ += seconds_since(t0);
  return !cancelled;
}

void Generation::feed_unfed_token() {
  const auto t0 = Clock::now();
  const int32_t token = turn_.unfed();
  Session::InUse use(session_);
  // A decode step, as the streaming engine's batched steps are (prefill of one token gives the
  // same on the CPU, but not on every GPU path).
  session_.step(token, logits_.data(), logits_.size());
  turn_.unfed_fed();
  decode_seconds_ += seconds_since(t0);
}

GenerationStep Generation::next() {
  if (!called_) {
    called_ = true;
    first_call_ = Clock::now();
  }
  if (turn_.finished() != M3_FINISH_NONE) return {-1, {}, turn_.finished()};
  if (take_cancel()) return turn_.finish(M3_FINISH_CANCELLED);
  if (!turn_.input().empty()) {
    if (!feed_pending()) return turn_.finish(M3_FINISH_CANCELLED);
  } else if (turn_.unfed() >= 0) {
    feed_unfed_token();
  }
  if (!turn_.has_logits())
    fail(M3_ERR_INVALID_ARGUMENT, "nothing to generate from: push a prompt (text or tokens) first");
  if (take_cancel()) return turn_.finish(M3_FINISH_CANCELLED);

  const auto t0 = Clock::now();
  GenerationStep step = turn_.sample(logits_);
  if (ttft_ms_ < 0 && turn_.generated_tokens() > 0) ttft_ms_ = seconds_since(first_call_) * 1e3;
  decode_seconds_ += seconds_since(t0);
  return step;
}

double Generation::stat(m3_gen_stat stat) const {
  switch (stat) {
    case M3_STAT_PROMPT_TOKENS: return static_cast<double>(fed_tokens_);
    case M3_STAT_GENERATED_TOKENS: return static_cast<double>(turn_.generated_tokens());
    case M3_STAT_TTFT_MS: return ttft_ms_;
    case M3_STAT_PREFILL_TOK_S: return feed_seconds_ > 0 ? static_cast<double>(fed_tokens_) / feed_seconds_ : 0;
    case M3_STAT_DECODE_TOK_S:
      return decode_seconds_ > 0 ? static_cast<double>(turn_.generated_tokens()) / decode_seconds_ : 0;
  }
  fail(M3_ERR_INVALID_ARGUMENT, "unknown statistic " + std::to_string(static_cast<int>(stat)));
}

}  // namespace m3
