#include "backends/cpu/reference_matvec.h"

#include <vector>

#include "model/float_convert.h"

namespace m3::cpu {
namespace {

// Eight independent partial sums: shorter dependency chains and less rounding drift
// than one running sum, while staying deterministic.
template <class Load>
float dot(int64_t n, const float* x, Load load) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8)
    for (int j = 0; j < 8; ++j) acc[j] += load(c + j) * x[c + j];
  for (; c < n; ++c) acc[c % 8] += load(c) * x[c];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// f16 -> f32 through a table of all 65536 values: the scalar conversion has branches for
// subnormals and specials and dominated the reference path's time on f16 models.
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t i = 0; i < 65536; ++i) t[i] = f16_to_f32(static_cast<uint16_t>(i));
    return t;
  }();
  return table.data();
}

// Scalar dequantization, the definition the fast kernels are tested against
// (model_weights.h): element c of row r of a Q8/Q4 matrix is code * scale of its group.
float q8_weight(const WeightMatrix& w, int64_t r, int64_t c) {
  const int8_t q = static_cast<const int8_t*>(w.data)[r * w.cols + c];
  return static_cast<float>(q) * f16_table()[w.scales[(r * w.cols + c) / kQuantGroup]];
}

float q4_weight(const WeightMatrix& w, int64_t r, int64_t c) {
  const int64_t group = (r * w.cols + c) / kQuantGroup, j = c % kQuantGroup;
  const uint8_t byte = static_cast<const uint8_t*>(w.data)[group * (kQuantGroup / 2) + j % (kQuantGroup / 2)];
  const int code = (j < kQuantGroup / 2 ? byte & 0x0f : byte >> 4) - 8;
  return static_cast<float>(code) * f16_table()[w.scales[group]];
}

}  // namespace

void matvec_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y) {
  const int64_t n = w.cols;
  for (int64_t r = row_begin; r < row_end; ++r) {
    float s = 0;
    switch (w.type) {
      case WeightType::F32: {
        const float* row = static_cast<const float*>(w.data) + r * n;
        s = dot(n, x, [row](int64_t c) { return row[c]; });
        break;
      }
      case WeightType::BF16: {
        const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * n;
        s = dot(n, x, [row](int64_t c) { return bf16_to_f32(row[c]); });
        break;
      }
      case WeightType::F16: {
        const uint16_t* row = static_cast<const uint16_t*>(w.data) + r * n;
        const float* table = f16_table();
        s = dot(n, x, [row, table](int64_t c) { return table[row[c]]; });
        break;
      }
      case WeightType::Q8:
        s = dot(n, x, [&w, r](int64_t c) { return q8_weight(w, r, c); });
        break;
      case WeightType::Q4:
        s = dot(n, x, [&w, r](int64_t c) { return q4_weight(w, r, c); });
        break;
    }
    y[r - row_begin] = s;
  }
}

void load_row(const WeightMatrix& w, int64_t row, float* out) {
  if (w.type == WeightType::Q8 || w.type == WeightType::Q4) {
    for (int64_t c = 0; c < w.cols; ++c) out[c] = w.type == WeightType::Q8 ? q8_weight(w, row, c) : q4_weight(w, row, c);
    return;
  }
  const DType dtype = w.type == WeightType::BF16 ? DType::BF16 : w.type == WeightType::F16 ? DType::F16 : DType::F32;
  for (int64_t c = 0; c < w.cols; ++c) out[c] = read_float(w.data, dtype, row * w.cols + c);
}

}  // namespace m3::cpu
