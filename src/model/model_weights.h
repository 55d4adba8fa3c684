// The model's tensors, bound by their official names to the places the forward pass
// uses them, with every shape and dtype checked. Matrices stay in the file (mmap, any
// float dtype); the small per-head parameters and norm weights are converted to fp32
// (spec §2.3: dt_bias, B/C bias, D and mimo_* are fp32 even in a bf16 model).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/model_config.h"
#include "model/tensor.h"
#include "model/weight_type.h"

namespace m3 {

// A row-major (out, in) matrix, nn.Linear convention y = W x. Not owned.
// Quantized types (docs/FORMATS.md "Quantized weights"): symmetric, one f16 scale per
// group of kQuantGroup consecutive columns of a row; cols is then a multiple of kQuantGroup.
//   Q8: data is int8_t [rows, cols], w = q * scale.
//   Q4: data is uint8_t [rows, cols / 2]; in each group's 16 bytes, byte j holds column j
//       of the group in its low nibble and column j + 16 in its high nibble; w = (u - 8) * scale.
struct WeightMatrix {
  WeightType type = WeightType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
  const uint16_t* scales = nullptr;  // Q8/Q4 only: f16 [rows, cols / kQuantGroup]
  // Both 0: the layout above. Otherwise a backend's copy (backends/cpu/weight_tiling.h),
  // never a checkpoint's: row tiles with chunks of tile_chunk columns (quantized types) or
  // column tiles of column_tile rows (float types).
  int64_t tile_chunk = 0;
  int64_t column_tile = 0;
};

struct MambaLayerWeights {
  std::vector<float> norm;        // [D] pre-mixer RMSNorm
  WeightMatrix in_proj;           // [d_in_proj, D]
  std::vector<float> dt_bias;     // [H]
  std::vector<float> D;           // [H]
  std::vector<float> B_bias;      // [H, R, N]
  std::vector<float> C_bias;      // [H, R, N]
  std::vector<float> mimo_x;      // [H, R, P] (MIMO only)
  std::vector<float> mimo_z;      // [H, R, P] (MIMO only)
  std::vector<float> mimo_o;      // [H, R, P] (MIMO only)
  std::vector<float> B_norm;      // [N]
  std::vector<float> C_norm;      // [N]
  std::vector<float> out_norm;    // [E] (is_outproj_norm only)
  WeightMatrix out_proj;          // [D, E]
  std::vector<float> norm2;       // [D] (MLP only)
  WeightMatrix fc1;               // [2 * mlp_hidden, D] (MLP only)
  WeightMatrix fc2;               // [D, mlp_hidden] (MLP only)
};

struct ModelWeights {
  WeightMatrix embedding;  // [V_pad, D]
  WeightMatrix lm_head;    // [V_pad, D]; the embedding when tied
  std::vector<float> norm_f;
  std::vector<MambaLayerWeights> layers;
  int64_t mlp_hidden = 0;  // taken from fc2's shape (spec §1.3: the config value is rounded up)
  int64_t n_params = 0;      // logical parameters (a quantized weight counts rows * cols)
  int64_t weight_bytes = 0;  // bytes as stored, quantization scales included
  // The type of the block matrices (the lowest precision among them; the embedding and head
  // may be kept at a higher one): the metadata's "mamba3rt.weight_type" when present.
  WeightType weight_type = WeightType::F32;
  uint64_t content_hash = 0;  // names, shapes, dtypes and sampled bytes of every tensor
};

// Throws m3::Error naming `source` and the tensor: M3_ERR_FORMAT for a missing tensor, a
// wrong shape or dtype, an unexpected extra tensor, a quantized matrix without valid scales
// (docs/FORMATS.md "Quantized weights"), or `metadata` (the safetensors "__metadata__")
// that does not describe the tensors.
ModelWeights bind_model_weights(const ModelConfig& config, const std::vector<TensorView>& tensors,
                                const std::string& source,
                                const std::map<std::string, std::string>& metadata = {});

// Reads element i of a float tensor of any supported dtype as fp32.
float read_float(const void* data, DType dtype, int64_t i);

}  // namespace m3
