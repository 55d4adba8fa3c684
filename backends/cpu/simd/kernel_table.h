// The fast CPU kernels of one instruction set, as a table of function pointers. Each
// table is compiled in its own translation unit with that instruction set's flags
// (kernels_<arch>.cpp); best_kernel_table() picks, at run time, the best one the CPU has.
#pragma once

#include <cstdint>
#include <vector>

#include "model/model_weights.h"

namespace m3::cpu {

// Input rows per register tile of the matrix product (kernels_impl.h).
constexpr int64_t kMatmulMaxTile = 4;
// Deepest input rows the matrix product packs for a tile (deeper ones are read in place).
constexpr int64_t kMatmulMaxPackedDepth = 8192;
// Bytes of weight rows a matrix product keeps hot while all input tiles pass over them.
constexpr int64_t kMatmulBlockBytes = 128 * 1024;

struct KernelTable {
  const char* arch;  // "avx512bw", "avx2", "sse4.2", "sse2", "neon64"
  int float_lanes;   // floats per SIMD register

  // y[t * y_stride + (r - row_begin)] = W[r] . x[t * x_stride] for t < n_rows and r in
  // [row_begin, row_end). One input row is a GEMV streaming the weights once; more rows
  // are a blocked GEMM. Each output's summation order is fixed (independent of n_rows).
  void (*matmul)(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
                 int64_t n_rows, float* y, int64_t y_stride);

  // out[c] = W[row][c] as float32 (embedding lookup).
  void (*load_row)(const WeightMatrix& w, int64_t row, float* out);

  // One token's state update and readout for one head (the O(P N) core of a Mamba-3 step):
  //   h[p, :] = alpha h[p, :] + sum_r (wp[r P + p] kp_r + wc[r P + p] kc_r)
  //   y[r P + p] = h[p, :] . q_r
  // with kp_r = kp + r * kp_stride, kc_r = kc + r * N, q_r = q + r * N; h is [P, N] row-major.
  void (*ssm_head_step)(float* h, int64_t P, int64_t N, int64_t R, float alpha, const float* wp, const float* wc,
                        const float* kp, int64_t kp_stride, const float* kc, const float* q, float* y);

  // Hardware probe for benchmarks: `iterations` rounds of kFmaProbeChains independent
  // register-only FMAs (2 * float_lanes flops each). Returns a value to keep it alive.
  float (*fma_probe)(int64_t iterations);
};

// Independent FMA chains of fma_probe: enough to cover the FMA latency on every core we know.
constexpr int kFmaProbeChains = 12;

// The best table this CPU runs (chosen once, on first use).
const KernelTable& best_kernel_table();
// Every table compiled in that this CPU can run, best first (tests compare them all).
std::vector<const KernelTable*> supported_kernel_tables();

}  // namespace m3::cpu
