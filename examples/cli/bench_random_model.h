// A model directory with random weights for any Mamba-3 config, written fast enough for
// 1.5B-parameter configs (`mamba3rt bench --config`): config.json plus model.safetensors under
// the official tensor names, with the matrices stored in the requested weight type
// (f32, f16, bf16, or int8/q4 in the quantized layout of docs/FORMATS.md).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "model/weight_type.h"

namespace cli {

struct RandomModelSpec {
  std::string config_json;  // mamba_ssm MambaConfig text (ssm_cfg.layer = "Mamba3")
  std::string source;       // names the config in error messages
  m3::WeightType type = m3::WeightType::BF16;  // the block matrices
  // The embedding (and an untied lm_head); default_embedding_type(type) when not given.
  std::optional<m3::WeightType> embedding_type;
  uint64_t seed = 0;
  int threads = 1;  // generation threads (the output does not depend on it)
};

// The embedding's type `mamba3rt quantize --type T` writes by default: T, except int8 for q4
// (the tied table is also the output head, whose errors reach every logit).
m3::WeightType default_embedding_type(m3::WeightType type);

// Bytes model.safetensors will have (header excluded), to check free space first.
// Throws like write_random_model for a bad config.
uint64_t random_model_bytes(const RandomModelSpec& spec);

// Writes config.json and model.safetensors into the existing directory `dir`. Values are
// uniform with the spread of tools/make_random_model.py (activations stay O(1)); they are
// for timing, not text. progress(done_bytes, total_bytes) is called now and then.
// Throws std::runtime_error naming `spec.source` for a config the runtime rejects (or that
// a quantized type cannot store), m3::Error for I/O failures.
void write_random_model(const RandomModelSpec& spec, const std::string& dir,
                        const std::function<void(uint64_t, uint64_t)>& progress = {});

}  // namespace cli
