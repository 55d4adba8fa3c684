#include "generation/generation.h"

#include <algorithm>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

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
      model_(session.model()),
      params_(params),
      sampler_(params.sampling, static_cast<int32_t>(session.model().config().vocab_size)),
      text_(params.stop_strings),
      logits_(static_cast<std::size_t>(session.model().config().vocab_padded)) {
  const int64_t vocab = model_.config().vocab_size;
  if (params_.max_tokens < 0) fail(M3_ERR_INVALID_ARGUMENT, "max_tokens must be >= 0");
  for (int32_t t : params_.stop_tokens)
    if (t < 0 || t >= vocab)
      fail(M3_ERR_INVALID_ARGUMENT, "stop token " + std::to_string(t) + " is out of range [0, " + std::to_string(vocab) + ")");
}

void Generation::start_turn_if_finished() {
  if (finished_ == M3_FINISH_NONE) return;
  finished_ = M3_FINISH_NONE;
  turn_tokens_ = 0;
  cancel_requested_.store(false, std::memory_order_relaxed);  // a cancel ended the previous turn
}

void Generation::push_text(std::string_view text) {
  const Tokenizer* tok = model_.tokenizer();
  if (!tok) fail(M3_ERR_UNSUPPORTED, "the model has no tokenizer.json: push tokens instead of text");
  if (text.empty()) fail(M3_ERR_INVALID_ARGUMENT, "text is empty");
  const bool first = session_.n_tokens() == 0 && pending_.empty() && unfed_ < 0;
  const std::vector<int32_t> tokens = tok->encode(text, params_.add_special && first);
  if (tokens.empty()) fail(M3_ERR_INVALID_ARGUMENT, "text encodes to no tokens");
  push_tokens(tokens.data(), tokens.size());
}

void Generation::push_tokens(const int32_t* tokens, std::size_t n) {
  if (n == 0) return;
  if (!tokens) fail(M3_ERR_INVALID_ARGUMENT, "tokens is NULL");
  const int64_t vocab = model_.config().vocab_size;
  for (std::size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      fail(M3_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                        " is out of range [0, " + std::to_string(vocab) + ")");
  pending_.insert(pending_.end(), tokens, tokens + n);
  fed_tokens_ += static_cast<int64_t>(n);
  for (std::size_t i = 0; i < n; ++i) sampler_.accept(tokens[i]);
  start_turn_if_finished();
}

bool Generation::feed_pending() {
  const auto t0 = Clock::now();
  if (unfed_ >= 0) {  // the model must see its own last token before the new input
    pending_.insert(pending_.begin(), unfed_);
    unfed_ = -1;
  }
  std::size_t done = 0;
  bool cancelled = false;
  while (done < pending_.size()) {
    if (done > 0 && take_cancel()) {
      cancelled = true;
      break;
    }
    const std::size_t n = std::min(kFeedChunk, pending_.size() - done);
    Session::InUse use(session_);
    session_.feed(pending_.data() + done, n, M3_LOGITS_LAST, logits_.data(), logits_.size());
    done += n;
    has_logits_ = true;
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done));
  feed_seconds_ += seconds_since(t0);
  return !cancelled;
}

void Generation::feed_unfed_token() {
  const auto t0 = Clock::now();
  Session::InUse use(session_);
  session_.feed(&unfed_, 1, M3_LOGITS_LAST, logits_.data(), logits_.size());
  unfed_ = -1;
  has_logits_ = true;
  decode_seconds_ += seconds_since(t0);
}

GenerationStep Generation::finish(m3_finish_reason reason, int32_t token, std::string piece) {
  finished_ = reason;
  piece += text_.flush();
  return {token, std::move(piece), reason};
}

GenerationStep Generation::next() {
  if (!called_) {
    called_ = true;
    first_call_ = Clock::now();
  }
  if (finished_ != M3_FINISH_NONE) return {-1, {}, finished_};
  if (take_cancel()) return finish(M3_FINISH_CANCELLED);
  if (!pending_.empty()) {
    if (!feed_pending()) return finish(M3_FINISH_CANCELLED);
  } else if (unfed_ >= 0) {
    feed_unfed_token();
  }
  if (!has_logits_)
    fail(M3_ERR_INVALID_ARGUMENT, "nothing to generate from: push a prompt (text or tokens) first");
  if (turn_tokens_ >= params_.max_tokens) return finish(M3_FINISH_MAX_TOKENS);
  if (take_cancel()) return finish(M3_FINISH_CANCELLED);

  const auto t0 = Clock::now();
  const int32_t token = sampler_.sample(std::span<const float>(logits_.data(), model_.config().vocab_size));
  sampler_.accept(token);
  unfed_ = token;
  has_logits_ = false;
  ++generated_tokens_;
  ++turn_tokens_;
  if (ttft_ms_ < 0) ttft_ms_ = seconds_since(first_call_) * 1e3;
  decode_seconds_ += seconds_since(t0);

  const auto& eos = model_.eos_tokens();
  if (!params_.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) return finish(M3_FINISH_EOS);
  const auto& stops = params_.stop_tokens;
  if (std::find(stops.begin(), stops.end(), token) != stops.end()) return finish(M3_FINISH_STOP_TOKEN);

  bool stopped = false;
  const Tokenizer* tok = model_.tokenizer();
  std::string piece = tok ? text_.push(tok->token_bytes(token), &stopped) : std::string();
  if (stopped) return finish(M3_FINISH_STOP_STRING, token, std::move(piece));
  if (turn_tokens_ >= params_.max_tokens) return finish(M3_FINISH_MAX_TOKENS, token, std::move(piece));
  return {token, std::move(piece), M3_FINISH_NONE};
}

double Generation::stat(m3_gen_stat stat) const {
  switch (stat) {
    case M3_STAT_PROMPT_TOKENS: return static_cast<double>(fed_tokens_);
    case M3_STAT_GENERATED_TOKENS: return static_cast<double>(generated_tokens_);
    case M3_STAT_TTFT_MS: return ttft_ms_;
    case M3_STAT_PREFILL_TOK_S: return feed_seconds_ > 0 ? static_cast<double>(fed_tokens_) / feed_seconds_ : 0;
    case M3_STAT_DECODE_TOK_S:
      return decode_seconds_ > 0 ? static_cast<double>(generated_tokens_) / decode_seconds_ : 0;
  }
  fail(M3_ERR_INVALID_ARGUMENT, "unknown statistic " + std::to_string(static_cast<int>(stat)));
}

}  // namespace m3
