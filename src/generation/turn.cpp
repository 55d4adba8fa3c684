#include "generation/turn.h"

#include <algorithm>

#include "common/error.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace m3 {

Turn::Turn(const Model& model, const GenerationParams& params)
    : model_(model),
      params_(params),
      sampler_(params.sampling, static_cast<int32_t>(model.config().vocab_size)),
      text_(params.stop_strings) {
  if (params_.max_tokens < 0) fail(M3_ERR_INVALID_ARGUMENT, "max_tokens must be >= 0");
  const int64_t vocab = model_.config().vocab_size;
  for (int32_t t : params_.stop_tokens)
    if (t < 0 || t >= vocab)
      fail(M3_ERR_INVALID_ARGUMENT, "stop token " + std::to_string(t) + " is out of range [0, " + std::to_string(vocab) + ")");
}

std::vector<int32_t> Turn::encode(std::string_view text, bool first) const {
  const Tokenizer* tok = model_.tokenizer();
  if (!tok) fail(M3_ERR_UNSUPPORTED, "the model has no tokenizer.json: push tokens instead of text");
  if (text.empty()) fail(M3_ERR_INVALID_ARGUMENT, "text is empty");
  std::vector<int32_t> tokens = tok->encode(text, params_.add_special && first);
  if (tokens.empty()) fail(M3_ERR_INVALID_ARGUMENT, "text encodes to no tokens");
  return tokens;
}

void Turn::validate(const int32_t* tokens, std::size_t n) const {
  if (n == 0) return;
  if (!tokens) fail(M3_ERR_INVALID_ARGUMENT, "tokens is NULL");
  const int64_t vocab = model_.config().vocab_size;
  for (std::size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      fail(M3_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                        " is out of range [0, " + std::to_string(vocab) + ")");
}

void Turn::push(const int32_t* tokens, std::size_t n) {
  if (n == 0) return;
  validate(tokens, n);
  if (pending_begin_ == pending_.size()) {  // all fed: reuse the buffer from its start
    pending_.clear();
    pending_begin_ = 0;
  }
  pending_.insert(pending_.end(), tokens, tokens + n);
  for (std::size_t i = 0; i < n; ++i) sampler_.accept(tokens[i]);
  any_input_ = true;
  if (finished_ != M3_FINISH_NONE) {  // new input after the end starts a new turn
    finished_ = M3_FINISH_NONE;
    turn_tokens_ = 0;
  }
}

std::span<const int32_t> Turn::input() {
  if (pending_begin_ == pending_.size()) return {};
  if (unfed_ >= 0) {  // the model must see its own last token before the new input
    if (pending_begin_ > 0) {
      pending_[--pending_begin_] = unfed_;
    } else {
      pending_.insert(pending_.begin(), unfed_);
    }
    unfed_ = -1;
  }
  return std::span<const int32_t>(pending_).subspan(pending_begin_);
}

void Turn::input_fed(std::size_t n) {
  if (n == 0) return;
  pending_begin_ += std::min(n, pending_.size() - pending_begin_);
  has_logits_ = true;
}

void Turn::unfed_fed() {
  unfed_ = -1;
  has_logits_ = true;
}

GenerationStep Turn::finish(m3_finish_reason reason, int32_t token, std::string piece) {
  finished_ = reason;
  piece += text_.flush();
  return {token, std::move(piece), reason};
}

GenerationStep Turn::sample(std::span<const float> logits) {
  if (turn_tokens_ >= params_.max_tokens) return finish(M3_FINISH_MAX_TOKENS);
  const int32_t token = sampler_.sample(logits.first(static_cast<std::size_t>(model_.config().vocab_size)));
  sampler_.accept(token);
  unfed_ = token;
  has_logits_ = false;
  ++turn_tokens_;
  ++generated_tokens_;

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

}  // namespace m3
