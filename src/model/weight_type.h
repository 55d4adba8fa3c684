// The storage types a weight matrix may have: float types as checkpoints ship them, and
// the group-quantized types `mamba3rt quantize` writes (docs/FORMATS.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace m3 {

enum class WeightType { F32, F16, BF16, Q8, Q4 };

// Columns per f16 scale of the quantized types.
constexpr int64_t kQuantGroup = 32;

// "f32", "f16", "bf16", "int8", "q4".
const char* weight_type_name(WeightType type);
// The inverse of weight_type_name; nullopt for an unknown name.
std::optional<WeightType> parse_weight_type(std::string_view name);
// Bytes of one row of `cols` columns, scales included.
int64_t weight_row_bytes(WeightType type, int64_t cols);
// Bytes of `cols` columns' values alone (the quantized types keep their scales apart).
int64_t weight_data_bytes(WeightType type, int64_t cols);

}  // namespace m3
