#include "model/weight_type.h"

namespace m3 {

const char* weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::F32: return "f32";
    case WeightType::F16: return "f16";
    case WeightType::BF16: return "bf16";
    case WeightType::Q8: return "int8";
    case WeightType::Q4: return "q4";
  }
  return "unknown";
}

std::optional<WeightType> parse_weight_type(std::string_view name) {
  for (WeightType t : {WeightType::F32, WeightType::F16, WeightType::BF16, WeightType::Q8, WeightType::Q4})
    if (name == weight_type_name(t)) return t;
  return std::nullopt;
}

int64_t weight_row_bytes(WeightType type, int64_t cols) {
  switch (type) {
    case WeightType::F32: return cols * 4;
    case WeightType::F16:
    case WeightType::BF16: return cols * 2;
    case WeightType::Q8: return cols + cols / kQuantGroup * 2;
    case WeightType::Q4: return cols / 2 + cols / kQuantGroup * 2;
  }
  return 0;
}

int64_t weight_data_bytes(WeightType type, int64_t cols) {
  switch (type) {
    case WeightType::F32: return cols * 4;
    case WeightType::F16:
    case WeightType::BF16: return cols * 2;
    case WeightType::Q8: return cols;
    case WeightType::Q4: return cols / 2;
  }
  return 0;
}

}  // namespace m3
