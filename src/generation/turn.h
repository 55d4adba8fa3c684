// The token-by-token logic of one generation, independent of how the model is run: the
// input still to be fed, sampling with the stop conditions, and the text pieces.
//
// Generation drives one Turn with its own session; the streaming engine drives many with
// batched decode. Because both go through this class, the same input and seed give the
// same tokens either way.
//
// The last sampled token is fed lazily, together with whatever input comes next, so a
// finished turn costs no extra forward pass and a later push continues the dialogue with
// the model having seen its own last token.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mamba3rt.h"
#include "generation/text_stream.h"
#include "sampling/sampler.h"

namespace m3 {

class Model;

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

class Turn {
 public:
  // Throws m3::Error for invalid params (ids outside the vocabulary, bad sampling values).
  Turn(const Model& model, const GenerationParams& params);

  // Tokens for pushed text; `first` (nothing fed or pushed before) adds the special tokens.
  // Throws for a model without tokenizer, empty text, or text that encodes to nothing.
  std::vector<int32_t> encode(std::string_view text, bool first) const;
  // Throws for ids outside the vocabulary (before changing anything).
  void validate(const int32_t* tokens, std::size_t n) const;
  // Appends validated input; a finished turn starts a new one.
  void push(const int32_t* tokens, std::size_t n);

  // What must be fed before the next token can be sampled: the unfed last token followed by
  // pushed input. Empty when there is no pushed input (see unfed()).
  std::span<const int32_t> input();
  // The first n tokens of input() were fed; the last one's logits are the current ones.
  void input_fed(std::size_t n);
  // The last sampled token when it is all there is to feed (a plain decode step), else -1.
  int32_t unfed() const { return pending_.size() > pending_begin_ ? -1 : unfed_; }
  void unfed_fed();

  // Logits of the last fed token are ready to sample from.
  bool has_logits() const { return has_logits_; }
  // Samples the next token (or finishes the turn at max_tokens) from the current logits.
  GenerationStep sample(std::span<const float> logits);
  GenerationStep finish(m3_finish_reason reason, int32_t token = -1, std::string piece = {});

  m3_finish_reason finished() const { return finished_; }
  bool any_input_seen() const { return any_input_; }
  // Tokens sampled over all turns.
  int64_t generated_tokens() const { return generated_tokens_; }

 private:
  const Model& model_;
  GenerationParams params_;
  Sampler sampler_;
  TextStream text_;
  std::vector<int32_t> pending_;  // pushed input; [pending_begin_, end) is not fed yet
  std::size_t pending_begin_ = 0;
  int32_t unfed_ = -1;
  bool has_logits_ = false;
  bool any_input_ = false;
  int32_t turn_tokens_ = 0;
  int64_t generated_tokens_ = 0;
  m3_finish_reason finished_ = M3_FINISH_NONE;
};

}  // namespace m3
