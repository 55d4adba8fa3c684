// What one token costs a model, for judging measured speed against the machine's ceilings
// (docs/BENCHMARKS.md "Method"):
//   decode moves, per step of B streams, every weight byte once (all matrices and the head;
//   the embedding lookup reads one row) plus each stream's recurrent state read and written:
//     bytes_per_step = decode_weight_bytes + B * 2 * state_bytes
//   prefill does two flops per matrix parameter per token (the head only for the prompt's
//   last token, whose logits are asked for); the O(H P N) state math is left out:
//     flops_per_token = 2 * block_matrix_params + 2 * head_params / prompt_tokens
#pragma once

#include <cstdint>
#include <string>

#include "mamba3rt.h"

namespace cli {

struct ModelCost {
  int64_t n_params = 0;
  int64_t weight_bytes = 0;     // as stored, quantization scales included
  int64_t state_bytes = 0;      // one stream
  int64_t embedding_bytes = 0;  // the embedding table as stored
  bool tied = true;
  int64_t vocab_padded = 0;
  int64_t decode_weight_bytes = 0;  // weight bytes one decode step reads
  int64_t block_matrix_params = 0;  // in_proj, out_proj, fc1, fc2 of all layers
  int64_t head_params = 0;          // lm_head: V_pad * D
  std::string weight_type;          // of the block matrices ("f32", ..., "q4"; "" if unknown)
  std::string embedding_type;       // of the embedding table

  double decode_bytes_per_step(int64_t batch) const {
    return static_cast<double>(decode_weight_bytes) + static_cast<double>(batch) * 2.0 * static_cast<double>(state_bytes);
  }
  double prefill_flops_per_token(int64_t prompt_tokens) const {
    return 2.0 * static_cast<double>(block_matrix_params) +
           (prompt_tokens > 0 ? 2.0 * static_cast<double>(head_params) / static_cast<double>(prompt_tokens) : 0.0);
  }
};

// From the loaded model's info and, for the embedding's stored size and the weight types,
// the header of <dir>/model.safetensors (without one, the embedding is assumed to take the
// model's average bytes per parameter and the types are unknown).
ModelCost model_cost(const m3_model* model, const std::string& dir);

}  // namespace cli
