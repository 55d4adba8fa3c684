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
void quantize_matrix(WeightType type, const float* src, int64_t rows, int64_t cols, void* data, uint16_t* scales);

}  // namespace m3
