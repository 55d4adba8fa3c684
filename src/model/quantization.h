// Converting float32 weights to the storage types of weight_type.h: the rounding of the
// 16-bit floats and the group quantization that `mamba3rt quantize` writes.
#pragma once

#include <cstdint>

#include "model/weight_type.h"

namespace m3 {

// float32 -> IEEE half / bfloat16, round to nearest even (NaN stays NaN, overflow -> inf).
uint16_t f32_to_f16(float f);
uint16_t f32_to_bf16(float f);

// Quantizes a row-major [rows, cols] float matrix (cols a multiple of kQuantGroup) to Q8
// or Q4 (layouts in model_weights.h): `data` receives rows * cols bytes (Q8) or
// rows * cols / 2 bytes (Q4), `scales` rows * cols / kQuantGroup f16 values.
// The values must be finite and small enough for an f16 scale: |w| <= kMaxQ8Weight (Q8)
// or kMaxQ4Weight (Q4); callers check (`mamba3rt quantize` does).
// Error bounds (tests/test_quantization.cpp checks them; docs/QUANTIZATION.md):
//   Q8: |w - q * scale| <= |scale| / 2 for every element; scale ~ max|w| / 127.
//   Q4: the scale is searched per group for the least squared error; the group's error is
//       never above that of the plain choice scale = -extreme / 8, so its RMS error is at
//       most ~max|w| / 8 (each element of the plain choice is off by at most one step).
//   An all-zero group gets scale 0 (every value decodes to 0).
constexpr float kMaxQ8Weight = 65504.0f * 127.0f;  // the largest f16 times the largest code
constexpr float kMaxQ4Weight = 65504.0f * 8.0f;

void quantize_matrix(WeightType type, const float* src, int64_t rows, int64_t cols, void* data, uint16_t* scales);

}  // namespace m3
