// The model's hyper-parameters, parsed and validated from config.json (mamba_ssm's
// MambaConfig with ssm_cfg.layer == "Mamba3"), plus the sizes derived from them.
#pragma once

#include <cstdint>
#include <string>

namespace m3 {

enum class AActivation { HeavyTail, Softplus };

struct ModelConfig {
  // From config.json.
  int64_t d_model = 0;
  int64_t d_intermediate = 0;  // as written; the actual MLP width comes from the weights
  int64_t n_layer = 0;
  int64_t vocab_size = 0;
  int64_t pad_vocab_size_multiple = 8;
  bool tie_embeddings = true;
  // From ssm_cfg.
  int64_t d_state = 128;
  double expand = 2.0;
  int64_t headdim = 64;
  int64_t ngroups = 1;
  double rope_fraction = 0.5;
  double a_floor = 1e-4;
  bool is_outproj_norm = false;
  bool is_mimo = false;
  int64_t mimo_rank_config = 4;  // only meaningful when is_mimo
  AActivation a_activation = AActivation::HeavyTail;

  // Derived (spec §1.3).
  int64_t d_inner = 0;      // E = int(expand * d_model)
  int64_t nheads = 0;       // H = E / P
  int64_t mimo_rank = 1;    // R
  int64_t n_angles = 0;     // S
  int64_t d_in_proj = 0;    // 2E + 2NGR + 3H + S
  int64_t vocab_padded = 0;

  // Canonical JSON of every field that changes the math (for the model fingerprint).
  std::string canonical() const;
};

// Parses and validates config.json text. `source` names the file in error messages.
// Throws m3::Error: M3_ERR_FORMAT for malformed JSON or wrong types/values,
// M3_ERR_UNSUPPORTED for valid configs this runtime does not run.
ModelConfig parse_model_config(const std::string& json_text, const std::string& source);

}  // namespace m3
