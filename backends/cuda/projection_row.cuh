// One token's in_proj outputs as head `head` reads them (spec §2.4): where its slices sit in
// a projection row. Shared by the step kernels and the chunked prefill.
#pragma once

#include <cstdint>

#include "backends/cuda/cuda_kernels.h"

namespace m3::cuda {

struct HeadInputs {
  const float *z, *x;  // this head's P channels
  const float *B, *C;  // rank 0 of the head's group; rank r at + r * bc_rank_stride
  int64_t bc_rank_stride;
  const float *dd_dt, *dd_a, *trap;
  const float* theta;  // S angles, shared by every head
};

// in_proj row: z [E] | x [E] | B [R, G, N] | C [R, G, N] | dd_dt [H] | dd_A [H] | trap [H] | theta [S]
__device__ __forceinline__ HeadInputs inputs_from_proj_row(const float* row, const Mamba3StepParams& p, int head) {
  const int64_t bc = static_cast<int64_t>(p.R) * p.G * p.N;
  const int group = head / (p.H / p.G);
  const float* dd = row + 2 * static_cast<int64_t>(p.E) + 2 * bc;
  return {row + static_cast<int64_t>(head) * p.P,
          row + p.E + static_cast<int64_t>(head) * p.P,
          row + 2 * static_cast<int64_t>(p.E) + static_cast<int64_t>(group) * p.N,
          row + 2 * static_cast<int64_t>(p.E) + bc + static_cast<int64_t>(group) * p.N,
          static_cast<int64_t>(p.G) * p.N,
          dd + head,
          dd + p.H + head,
          dd + 2 * p.H + head,
          dd + 3 * p.H};
}

}  // namespace m3::cuda
