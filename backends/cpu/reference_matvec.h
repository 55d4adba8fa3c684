// Plain matrix-vector products over weights of any storage type (the reference path): float
// types converted exactly, Q8/Q4 dequantized element by element (code * group scale).
#pragma once

#include <cstdint>

#include "model/model_weights.h"

namespace m3::cpu {

// y[r - row_begin] = sum_c W[r, c] * x[c] for r in [row_begin, row_end).
void matvec_rows(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, float* y);

inline void matvec(const WeightMatrix& w, const float* x, float* y) { matvec_rows(w, 0, w.rows, x, y); }

// out[c] = W[row, c] as float32.
void load_row(const WeightMatrix& w, int64_t row, float* out);

}  // namespace m3::cpu
