// The Mamba-3 head step on the GPU (spec §3-4): the same math as CpuFastBackend::mixer_head.
// Decode runs one thread block per (session row, head); prefill runs one block per head that
// walks the tokens in order. Both copy everything a step reads (the head's weights, its slices
// of the projection row, its state) into shared memory with cp.async before using it.
//
// Work split inside a block: warps take register tiles of state rows round robin, lane l the
// state columns n = l + 32 j, so every row access is coalesced and each q, k, k_prev value a
// lane loads serves all rows of its tile. Before the state update, warps build the rotated
// q_r and k_r vectors (one vector per warp, round robin), and all threads fill the
// outer-product weights wp, wc.
#include <climits>
#include <cstdint>

#include <cuda_pipeline_primitives.h>
#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/overlapped_launch.cuh"
#include "backends/cuda/projection_row.cuh"

namespace m3::cuda {
namespace {

// Size limits: a block has at most 16 warps (8 state rows each), a lane at most 8 state columns.
constexpr int kMaxHeadDim = 128;   // P
constexpr int kMaxStateDim = 256;  // N
constexpr int kMaxRank = 4;        // R
constexpr int kRowsPerWarp = 8;    // the block size: one warp per 8 rows (measured best for prefill)
constexpr int kMaxThreads = kMaxHeadDim / kRowsPerWarp * kWarpSize;
// Decode blocks when the grid is large: more, smaller blocks an SM keep more state reads in flight.
constexpr int kBusyDecodeWarps = 4;
constexpr int kBusyDecodeBlocks = 1024;

// Rotary angles a lane handles: S <= N/2 <= 16 * kColsPerLane.
template <int kColsPerLane>
constexpr int kAnglesPerLane = kColsPerLane >= 2 ? kColsPerLane / 2 : 1;

// ---------------------------------------------------------------------------------------
// The stage in shared memory that holds just this head's slices of one token's in_proj outputs.

// Stage layout: z [P] | x [P] | B [R, N] | C [R, N] | theta [S, padded to 4] | dd_dt, dd_A, trap
// (the vectors first, so that they keep 16-byte alignment when P and N are multiples of 4).
__host__ __device__ int padded_to_4(int n) { return (n + 3) / 4 * 4; }

__host__ __device__ int stage_floats(const Mamba3StepParams& p) {
  return 2 * p.P + 2 * p.R * p.N + padded_to_4(p.S) + 4;
}

__device__ HeadInputs inputs_from_stage(const float* stage, const Mamba3StepParams& p) {
  const float* B = stage + 2 * p.P;
  const float* C = B + p.R * p.N;
  const float* theta = C + p.R * p.N;
  const float* dd = theta + padded_to_4(p.S);
  return {stage, stage + p.P, B, C, p.N, dd, dd + 1, dd + 2, theta};
}

__device__ bool can_copy_vectors(const float* a, const float* b, int count) {
  return count % 4 == 0 && ((reinterpret_cast<uintptr_t>(a) | reinterpret_cast<uintptr_t>(b)) & 15) == 0;
}

// cp.async of `count` floats, 16 bytes a copy where both ends allow it. (Spreading a run of
// short copies over the block, rather than starting each at thread 0, measured slower.)
__device__ void copy_async(float* dst_shared, const float* src, int count, int tid, int nthreads) {
  if (can_copy_vectors(dst_shared, src, count)) {
    for (int i = 4 * tid; i < count; i += 4 * nthreads)
      __pipeline_memcpy_async(dst_shared + i, src + i, 4 * sizeof(float));
  } else {
    for (int i = tid; i < count; i += nthreads) __pipeline_memcpy_async(dst_shared + i, src + i, sizeof(float));
  }
}

// Fills a stage with cp.async, so a later token's inputs arrive while this token's step runs.
__device__ void stage_inputs_async(float* stage, const float* row, const Mamba3StepParams& p, int head, int tid,
                                   int nthreads) {
  const HeadInputs src = inputs_from_proj_row(row, p, head);
  const HeadInputs dst = inputs_from_stage(stage, p);
  copy_async(const_cast<float*>(dst.z), src.z, p.P, tid, nthreads);
  copy_async(const_cast<float*>(dst.x), src.x, p.P, tid, nthreads);
#pragma unroll 1
  for (int r = 0; r < p.R; ++r) {
    copy_async(const_cast<float*>(dst.B) + r * p.N, src.B + r * src.bc_rank_stride, p.N, tid, nthreads);
    copy_async(const_cast<float*>(dst.C) + r * p.N, src.C + r * src.bc_rank_stride, p.N, tid, nthreads);
  }
  copy_async(const_cast<float*>(dst.theta), src.theta, p.S, tid, nthreads);
  if (tid == 0) {
    __pipeline_memcpy_async(const_cast<float*>(dst.dd_dt), src.dd_dt, sizeof(float));
    __pipeline_memcpy_async(const_cast<float*>(dst.dd_a), src.dd_a, sizeof(float));
    __pipeline_memcpy_async(const_cast<float*>(dst.trap), src.trap, sizeof(float));
  }
}

// ---------------------------------------------------------------------------------------
// Shared memory is laid out as consecutive regions, each padded to 16 bytes; the host sizes a
// launch with the same layout functions the kernels carve with. (Passing the layout as a
// kernel parameter instead measured no faster for decode and 25% slower for prefill.)

struct SmemRegions {
  int used = 0;
  __host__ __device__ int take(int floats) {
    const int at = used;
    used += padded_to_4(floats);
    return at;
  }
};

// This head's slices of the layer weights, staged in shared memory once per block so that no
// step waits on a global load of them.
struct HeadWeights {
  const float *B_norm, *C_norm;           // [N]
  const float *B_bias, *C_bias;           // [R, N]
  const float *mimo_x, *mimo_z, *mimo_o;  // [R, P], MIMO only
  const float* out_norm;                  // [P], outproj_norm only
  const float *D, *dt_bias;               // one value each
};

struct HeadWeightsLayout {
  int B_norm, C_norm, B_bias, C_bias, mimo_x, mimo_z, mimo_o, out_norm, D, dt_bias;
};

__host__ __device__ HeadWeightsLayout take_head_weights(SmemRegions& s, const Mamba3StepParams& p) {
  HeadWeightsLayout l{};
  l.B_norm = s.take(p.N);
  l.C_norm = s.take(p.N);
  l.B_bias = s.take(p.R * p.N);
  l.C_bias = s.take(p.R * p.N);
  l.mimo_x = p.mimo ? s.take(p.R * p.P) : 0;
  l.mimo_z = p.mimo ? s.take(p.R * p.P) : 0;
  l.mimo_o = p.mimo ? s.take(p.R * p.P) : 0;
  l.out_norm = p.outproj_norm ? s.take(p.P) : 0;
  l.D = s.take(1);
  l.dt_bias = s.take(1);
  return l;
}

__device__ HeadWeights stage_head_weights_async(float* smem, const HeadWeightsLayout& l, const Mamba3StepParams& p,
                                                int head, int tid, int nthreads) {
  const int64_t rn = static_cast<int64_t>(head) * p.R * p.N, rp = static_cast<int64_t>(head) * p.R * p.P;
  copy_async(smem + l.B_norm, p.B_norm, p.N, tid, nthreads);
  copy_async(smem + l.C_norm, p.C_norm, p.N, tid, nthreads);
  copy_async(smem + l.B_bias, p.B_bias + rn, p.R * p.N, tid, nthreads);
  copy_async(smem + l.C_bias, p.C_bias + rn, p.R * p.N, tid, nthreads);
  if (p.mimo) {
    copy_async(smem + l.mimo_x, p.mimo_x + rp, p.R * p.P, tid, nthreads);
    copy_async(smem + l.mimo_z, p.mimo_z + rp, p.R * p.P, tid, nthreads);
    copy_async(smem + l.mimo_o, p.mimo_o + rp, p.R * p.P, tid, nthreads);
  }
  if (p.outproj_norm) {
    copy_async(smem + l.out_norm, p.out_norm + static_cast<int64_t>(head) * p.P, p.P, tid, nthreads);
  }
  copy_async(smem + l.D, p.D + head, 1, tid, nthreads);
  copy_async(smem + l.dt_bias, p.dt_bias + head, 1, tid, nthreads);
  return {smem + l.B_norm, smem + l.C_norm, smem + l.B_bias, smem + l.C_bias,
          p.mimo ? smem + l.mimo_x : nullptr, p.mimo ? smem + l.mimo_z : nullptr,
          p.mimo ? smem + l.mimo_o : nullptr, p.outproj_norm ? smem + l.out_norm : nullptr,
          smem + l.D, smem + l.dt_bias};
}

__device__ HeadCoefficients coefficients(const Mamba3StepParams& p, const HeadWeights& w, const HeadInputs& in) {
  return head_coefficients(p.heavy_tail, p.a_floor, *in.dd_dt, *w.dt_bias, *in.dd_a, *in.trap);
}

// ---------------------------------------------------------------------------------------
// Rotary angles: lane l holds angles i = l + 32 j. Every warp that rotates a vector advances
// its own copy (identical arithmetic), which saves a block-wide barrier per token.

template <int kCount>
struct LaneAngles {
  float phi[kCount];

  __device__ void load(const float* src, int S, int lane) {
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      const int i = lane + j * kWarpSize;
      phi[j] = i < S ? src[i] : 0.0f;
    }
  }
  __device__ void store(float* dst, int S, int lane) const {
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      const int i = lane + j * kWarpSize;
      if (i < S) dst[i] = phi[j];
    }
  }
  // This token's increment comes before rotating it (spec §3.4).
  __device__ void advance(const float* theta, int S, float dt, int lane) {
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      const int i = lane + j * kWarpSize;
      if (i < S) phi[j] = wrap_angle(phi[j] + kPi * tanhf(theta[i]) * dt);
    }
  }
};

// One warp: dst = Rot(phi)(RMSNorm(raw) * norm_w + bias); SISO rotates pairs (2i, 2i+1),
// MIMO pairs (i, i + N/2). cos and sin are recomputed per vector rather than kept: registers
// are the scarce resource here.
template <int kCount>
__device__ void build_rotated_vector(const float* raw, const float* norm_w, const float* bias, int N, int S,
                                     bool mimo, const LaneAngles<kCount>& angles, float* dst, int lane) {
  double sum_sq = 0.0;
#pragma unroll 2
  for (int n = lane; n < N; n += kWarpSize) {
    const float v = raw[n];
    sum_sq += static_cast<double>(v) * v;
  }
  const float scale = rms_scale(warp_sum(sum_sq), N);
#pragma unroll 2
  for (int n = lane; n < N; n += kWarpSize) dst[n] = raw[n] * scale * norm_w[n] + bias[n];
  __syncwarp();
#pragma unroll
  for (int j = 0; j < kCount; ++j) {
    const int i = lane + j * kWarpSize;
    if (i < S) {
      const int a = mimo ? i : 2 * i;
      const int b = mimo ? i + N / 2 : 2 * i + 1;
      float sn, cs;
      sincos_of_angle(angles.phi[j], &sn, &cs);
      const float va = dst[a], vb = dst[b];
      dst[a] = va * cs - vb * sn;
      dst[b] = va * sn + vb * cs;
    }
  }
  __syncwarp();
}

// Vector job v < R builds q_r (r = v) from C; R <= v < 2R builds k_r (r = v - R) from B.
template <int kCount>
__device__ void build_vector_job(int v, const Mamba3StepParams& p, const HeadWeights& w, const HeadInputs& in,
                                 const LaneAngles<kCount>& angles, float* q, float* k, int lane) {
  const bool is_q = v < p.R;
  const int r = is_q ? v : v - p.R;
  const float* raw = (is_q ? in.C : in.B) + r * in.bc_rank_stride;
  const float* norm_w = is_q ? w.C_norm : w.B_norm;
  const float* bias = (is_q ? w.C_bias : w.B_bias) + r * p.N;
  build_rotated_vector(raw, norm_w, bias, p.N, p.S, p.mimo, angles, (is_q ? q : k) + r * p.N, lane);
}

// The rank-r weights of the previous (beta) and current (gamma) outer products, [R, P].
__device__ void outer_product_weights(const Mamba3StepParams& p, const HeadWeights& w, const HeadCoefficients& c,
                                      const float* x_prev, const float* x, float* wp, float* wc, int tid,
                                      int nthreads) {
#pragma unroll 1
  for (int i = tid; i < p.R * p.P; i += nthreads) {
    const int ch = i % p.P;
    const float mx = p.mimo ? w.mimo_x[i] : 1.0f;
    wp[i] = c.beta * x_prev[ch] * mx;
    wc[i] = c.gamma * x[ch] * mx;
  }
}

// ---------------------------------------------------------------------------------------
// The state update and readout, a register tile of rows at a time.

// Sums kRows per-lane partials over the warp in kRows - 1 + log2(32 / kRows) shuffles
// (not 5 per row): each step a lane keeps half its rows and trades the other half with its
// partner. Lane l ends with the total of row reduced_row<kRows>(l).
template <int kRows>
__device__ float reduce_rows(float (&v)[kRows]) {
  static_assert(kRows >= 1 && kRows <= kWarpSize && (kRows & (kRows - 1)) == 0, "a power of two up to 32");
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  int offset = kWarpSize / 2;
#pragma unroll
  for (int half = kRows / 2; half >= 1; half /= 2, offset /= 2) {
    const bool upper = (lane & offset) != 0;
#pragma unroll
    for (int i = 0; i < half; ++i) {
      const float send = upper ? v[i] : v[i + half];
      const float keep = upper ? v[i + half] : v[i];
      v[i] = keep + __shfl_xor_sync(kFullWarp, send, offset);
    }
  }
  for (; offset > 0; offset /= 2) v[0] += __shfl_xor_sync(kFullWarp, v[0], offset);
  return v[0];
}

template <int kRows>
__device__ int reduced_row(int lane) {
  int row = 0, offset = kWarpSize / 2;
#pragma unroll
  for (int half = kRows / 2; half >= 1; half /= 2, offset /= 2)
    if (lane & offset) row += half;
  return row;
}

// kRows state rows of one warp in registers: row row0 + i, column lane + 32 j (zero outside P x N).
template <int kColsPerLane, int kRows>
struct StateTile {
  float h[kRows][kColsPerLane];

  __device__ void load(const float* src, int P, int N, int row0, int lane) {
#pragma unroll
    for (int i = 0; i < kRows; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerLane; ++j) {
        const int p = row0 + i, n = lane + j * kWarpSize;
        h[i][j] = p < P && n < N ? src[p * N + n] : 0.0f;
      }
  }

  __device__ void store(float* dst, int P, int N, int row0, int lane) const {
#pragma unroll
    for (int i = 0; i < kRows; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerLane; ++j) {
        const int p = row0 + i, n = lane + j * kWarpSize;
        if (p < P && n < N) dst[p * N + n] = h[i][j];
      }
  }

  // h = alpha h + sum_r (wp[r, p] k_prev_r + wc[r, p] k_r), in the CPU's order of operations.
  __device__ void update(float alpha, const float* wp, const float* wc, const float* k_prev, const float* k, int R,
                         int P, int N, int row0, int lane) {
#pragma unroll
    for (int i = 0; i < kRows; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerLane; ++j) h[i][j] *= alpha;
#pragma unroll 1
    for (int r = 0; r < R; ++r) {
      float kp[kColsPerLane], kc[kColsPerLane];
#pragma unroll
      for (int j = 0; j < kColsPerLane; ++j) {
        const int n = lane + j * kWarpSize;
        kp[j] = n < N ? k_prev[r * N + n] : 0.0f;
        kc[j] = n < N ? k[r * N + n] : 0.0f;
      }
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        const int p = row0 + i;
        if (p >= P) continue;
        const float a = wp[r * P + p], b = wc[r * P + p];
#pragma unroll
        for (int j = 0; j < kColsPerLane; ++j) h[i][j] = fmaf(b, kc[j], fmaf(a, kp[j], h[i][j]));
      }
    }
  }

  // y_rank[r, p] = sum_n h[p, n] q_r[n]
  __device__ void read_out(const float* q, int R, int P, int N, int row0, int lane, float* y_rank) const {
    constexpr int kLanesPerRow = kWarpSize / kRows;
    const int p = row0 + reduced_row<kRows>(lane);
#pragma unroll 1
    for (int r = 0; r < R; ++r) {
      float qv[kColsPerLane];
#pragma unroll
      for (int j = 0; j < kColsPerLane; ++j) {
        const int n = lane + j * kWarpSize;
        qv[j] = n < N ? q[r * N + n] : 0.0f;
      }
      float partial[kRows];
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        partial[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < kColsPerLane; ++j) partial[i] = fmaf(h[i][j], qv[j], partial[i]);
      }
      const float total = reduce_rows(partial);
      if (lane % kLanesPerRow == 0 && p < P) y_rank[r * P + p] = total;
    }
  }
};

// The step of the state rows, held in shared memory: h = alpha h + ..., written back in
// place, and the readout y_rank[r, p]. Warps take register tiles of kTileRows rows round
// robin; q, k and k_prev loads are shared by a tile's rows, so taller tiles load less but
// need more registers.
template <int kColsPerLane, int kTileRows>
__device__ void step_state_rows(float* h_shared, float alpha, const float* wp, const float* wc, const float* k_prev,
                                const float* k, const float* q, float* y_rank, int R, int P, int N, int warp,
                                int nwarps, int lane) {
#pragma unroll 1
  for (int row0 = warp * kTileRows; row0 < P; row0 += nwarps * kTileRows) {
    StateTile<kColsPerLane, kTileRows> tile;
    tile.load(h_shared, P, N, row0, lane);
    tile.update(alpha, wp, wc, k_prev, k, R, P, N, row0, lane);
    tile.store(h_shared, P, N, row0, lane);
    tile.read_out(q, R, P, N, row0, lane, y_rank);
  }
}

// ---------------------------------------------------------------------------------------
// After the readout: y_r += D x mx, the optional headwise RMSNorm over P, then the gate.

// One warp per rank.
__device__ void finish_rank(const Mamba3StepParams& p, const HeadWeights& w, int r, const float* x, float* y_r,
                            int lane) {
  const float d = *w.D;
  const float* mx = p.mimo ? w.mimo_x + r * p.P : nullptr;
  double sum_sq = 0.0;
  for (int ch = lane; ch < p.P; ch += kWarpSize) {
    const float v = y_r[ch] + d * x[ch] * (mx ? mx[ch] : 1.0f);
    y_r[ch] = v;
    sum_sq += static_cast<double>(v) * v;
  }
  if (!p.outproj_norm) return;
  const float scale = rms_scale(warp_sum(sum_sq), p.P);
  for (int ch = lane; ch < p.P; ch += kWarpSize) y_r[ch] = y_r[ch] * scale * w.out_norm[ch];
}

// y[ch] = sum_r mo * y_r[ch] * silu(z[ch] * mz)
__device__ void gate_ranks(const Mamba3StepParams& p, const HeadWeights& w, const float* y_rank, const float* z,
                           float* y, int tid, int nthreads) {
  for (int ch = tid; ch < p.P; ch += nthreads) {
    float acc = 0.0f;
#pragma unroll 1
    for (int r = 0; r < p.R; ++r) {
      const float mz = p.mimo ? w.mimo_z[r * p.P + ch] : 1.0f;
      const float mo = p.mimo ? w.mimo_o[r * p.P + ch] : 1.0f;
      acc += mo * y_rank[r * p.P + ch] * silu(z[ch] * mz);
    }
    y[ch] = acc;
  }
}

// ---------------------------------------------------------------------------------------
// The head's state h [P, N] is contiguous in the slot; it goes back from shared memory with
// 16-byte stores where both ends allow.

__device__ void write_state(float* dst, const float* src_shared, int count, int tid, int nthreads) {
  if (can_copy_vectors(dst, src_shared, count)) {
    for (int i = 4 * tid; i < count; i += 4 * nthreads)
      *reinterpret_cast<float4*>(dst + i) = *reinterpret_cast<const float4*>(src_shared + i);
  } else {
    for (int i = tid; i < count; i += nthreads) dst[i] = src_shared[i];
  }
}

// The k cache slot holds rank r of head h at r * H * N + h * N.
__device__ void read_k_slot_async(const float* k_state, float* dst_shared, const Mamba3StepParams& p, int tid,
                                  int nthreads) {
#pragma unroll 1
  for (int r = 0; r < p.R; ++r)
    copy_async(dst_shared + r * p.N, k_state + static_cast<int64_t>(r) * p.H * p.N, p.N, tid, nthreads);
}

__device__ void write_k_slot(float* k_state, const float* src, const Mamba3StepParams& p, int tid, int nthreads) {
  for (int i = tid; i < p.R * p.N; i += nthreads) {
    const int r = i / p.N;
    k_state[static_cast<int64_t>(r) * p.H * p.N + (i - r * p.N)] = src[i];
  }
}

// ---------------------------------------------------------------------------------------
// Decode: block (head, row). Everything the step reads is copied to shared memory up front
// with cp.async, in two groups: the small inputs (weights, this row's projection slices, the
// k, v and angle slots) and then the state h [P, N]. The prologue waits for the first group
// only, so its one trip to memory overlaps the state read, which dominates the traffic.

struct DecodeLayout {
  HeadWeightsLayout weights;
  int h, stage, k_prev, x_prev, angles, q, k, wp, wc, y_rank, total;
};

__host__ __device__ DecodeLayout decode_layout(const Mamba3StepParams& p) {
  SmemRegions s;
  DecodeLayout l{};
  l.h = s.take(p.P * p.N);  // first: 16-byte aligned for the state copy
  l.weights = take_head_weights(s, p);
  l.stage = s.take(stage_floats(p));
  l.k_prev = s.take(p.R * p.N);
  l.x_prev = s.take(p.P);
  l.angles = s.take(p.S);
  l.q = s.take(p.R * p.N);
  l.k = s.take(p.R * p.N);
  l.wp = s.take(p.R * p.P);
  l.wc = s.take(p.R * p.P);
  l.y_rank = s.take(p.R * p.P);
  l.total = s.used;
  return l;
}

// Register caps: shared memory (the state alone is 32 KB at P = 64, N = 128) already limits a
// 128-thread block to about five an SM, and 96 registers still fit five; 8 columns a lane need
// more for their tile.
template <int kColsPerLane>
constexpr int kDecodeMaxRegisters = kColsPerLane >= 8 ? 128 : 96;

template <int kColsPerLane>
__global__ void __maxnreg__(kDecodeMaxRegisters<kColsPerLane>)
    decode_step_kernel(const Mamba3StepParams p, const float* proj, float* const* states, float* y) {
  extern __shared__ float4 smem_vec[];  // float4: 16-byte alignment for the copies
  float* smem = reinterpret_cast<float*>(smem_vec);
  const int head = static_cast<int>(blockIdx.x % p.H), row = static_cast<int>(blockIdx.x / p.H);
  const int tid = static_cast<int>(threadIdx.x), nthreads = static_cast<int>(blockDim.x);
  const int lane = tid % kWarpSize, warp = tid / kWarpSize, nwarps = nthreads / kWarpSize;
  const int R = p.R, P = p.P, N = p.N, S = p.S;
  const DecodeLayout l = decode_layout(p);
  float* h_shared = smem + l.h;
  float* q = smem + l.q;
  float* k = smem + l.k;
  float* wp = smem + l.wp;
  float* wc = smem + l.wc;
  float* y_rank = smem + l.y_rank;

  // The head's weights and this layer's part of the slot depend on no earlier kernel of the
  // pass: their copies start before the wait for the in_proj outputs (overlapped_launch.cuh).
  float* state = states[row];  // first: the slot copies wait on it
  const HeadWeights w = stage_head_weights_async(smem, l.weights, p, head, tid, nthreads);
  float* h_state = state + p.off_ssm + static_cast<int64_t>(head) * P * N;
  float* angle_state = state + p.off_angle + static_cast<int64_t>(head) * S;
  float* k_state = state + p.off_k + static_cast<int64_t>(head) * N;
  float* x_state = state + p.off_v + static_cast<int64_t>(head) * P;
  read_k_slot_async(k_state, smem + l.k_prev, p, tid, nthreads);
  copy_async(smem + l.x_prev, x_state, P, tid, nthreads);
  copy_async(smem + l.angles, angle_state, S, tid, nthreads);
  __pipeline_commit();
  copy_async(h_shared, h_state, P * N, tid, nthreads);
  __pipeline_commit();
  wait_for_previous_kernel();
  let_next_kernel_start();
  stage_inputs_async(smem + l.stage, proj + static_cast<int64_t>(row) * p.d_in_proj, p, head, tid, nthreads);
  __pipeline_commit();
  __pipeline_wait_prior(0);
  __syncthreads();

  const HeadInputs in = inputs_from_stage(smem + l.stage, p);
  const HeadCoefficients c = coefficients(p, w, in);
  LaneAngles<kAnglesPerLane<kColsPerLane>> angles;
  if (warp < 2 * R) {
    angles.load(smem + l.angles, S, lane);
    angles.advance(in.theta, S, c.dt, lane);
#pragma unroll 1
    for (int v = warp; v < 2 * R; v += nwarps) build_vector_job(v, p, w, in, angles, q, k, lane);
  }
  outer_product_weights(p, w, c, smem + l.x_prev, in.x, wp, wc, tid, nthreads);
  __syncthreads();

  // The cache keeps this token's rotated, biased key and its raw x for the next step's beta term.
  if (warp == 0) angles.store(angle_state, S, lane);
  write_k_slot(k_state, k, p, tid, nthreads);
  for (int ch = tid; ch < P; ch += nthreads) x_state[ch] = in.x[ch];

  constexpr int kTileRows = kColsPerLane >= 8 ? 4 : 8;
  step_state_rows<kColsPerLane, kTileRows>(h_shared, c.alpha, wp, wc, smem + l.k_prev, k, q, y_rank, R, P, N, warp,
                                           nwarps, lane);
  __syncthreads();
  // Back through shared memory: 16-byte stores, and no 64-bit row addresses in the update.
  write_state(h_state, h_shared, P * N, tid, nthreads);
#pragma unroll 1
  for (int r = warp; r < R; r += nwarps) finish_rank(p, w, r, in.x, y_rank + r * P, lane);
  __syncthreads();
  gate_ranks(p, w, y_rank, in.z, y + static_cast<int64_t>(row) * p.E + static_cast<int64_t>(head) * P, tid,
             nthreads);
}

// ---------------------------------------------------------------------------------------
// Prefill: block (head), walking the tokens with the state and the head's weights in shared
// memory. Also there: q [R, N], k [2][R, N] (this token's k is the next one's k_prev), wp, wc
// [R, P], y_rank [2][R, P], and a ring of stages of head inputs: token t-1's x and z are still
// needed while t runs, and the copies of the next kPrefetchTokens tokens are in flight (one
// token's step is shorter than a trip to device memory). Two barriers per token: the rank
// finish of token t-1 runs beside the vector building of t, and its gate beside the state
// update of t.

constexpr int kPrefetchTokens = 3;
constexpr int kStages = kPrefetchTokens + 2;

struct PrefillLayout {
  HeadWeightsLayout weights;
  int h, q, k_bufs, wp, wc, y_rank_bufs, stages, total;
};

__host__ __device__ PrefillLayout prefill_layout(const Mamba3StepParams& p) {
  SmemRegions s;
  PrefillLayout l{};
  l.h = s.take(p.P * p.N);  // first: 16-byte aligned for the state copy
  l.weights = take_head_weights(s, p);
  l.q = s.take(p.R * p.N);
  l.k_bufs = s.take(2 * p.R * p.N);
  l.wp = s.take(p.R * p.P);
  l.wc = s.take(p.R * p.P);
  l.y_rank_bufs = s.take(2 * p.R * p.P);
  l.stages = s.take(kStages * stage_floats(p));
  l.total = s.used;
  return l;
}

// One block an SM: the register file is the block's alone (blocks of up to 256 threads may
// take 255 registers a thread, of 512 threads 128).
template <int kColsPerLane, int kBlockThreads>
__global__ void __launch_bounds__(kBlockThreads, 1)
    prefill_step_kernel(const Mamba3StepParams p, int tokens, const float* proj, float* state, float* y) {
  extern __shared__ float4 smem_vec[];  // float4: 16-byte alignment for the copies
  float* smem = reinterpret_cast<float*>(smem_vec);
  const int head = static_cast<int>(blockIdx.x);
  const int tid = static_cast<int>(threadIdx.x), nthreads = static_cast<int>(blockDim.x);
  const int lane = tid % kWarpSize, warp = tid / kWarpSize, nwarps = nthreads / kWarpSize;
  const int R = p.R, P = p.P, N = p.N, S = p.S;
  const bool rotates = warp < 2 * R;
  constexpr int kTileRows = kColsPerLane >= 8 || (kColsPerLane >= 4 && kBlockThreads > 256) ? 4 : 8;

  // Buffers picked by token parity are addressed arithmetically (a pointer array indexed at
  // run time would live in local memory).
  const PrefillLayout l = prefill_layout(p);
  float* h_shared = smem + l.h;
  float* q = smem + l.q;
  float* wp = smem + l.wp;
  float* wc = smem + l.wc;
  const int stage_len = stage_floats(p);
  auto k_buf = [&](int t) { return smem + l.k_bufs + (t & 1) * R * N; };
  auto y_rank_buf = [&](int t) { return smem + l.y_rank_bufs + (t & 1) * R * P; };
  auto stage = [&](int t) { return smem + l.stages + ((t + kStages) % kStages) * stage_len; };  // t >= -1

  float* h_state = state + p.off_ssm + static_cast<int64_t>(head) * P * N;
  float* angle_state = state + p.off_angle + static_cast<int64_t>(head) * S;
  float* k_state = state + p.off_k + static_cast<int64_t>(head) * N;
  float* x_state = state + p.off_v + static_cast<int64_t>(head) * P;

  // One cp.async group per token from here on (empty past the end), so "token t+1 has
  // landed" is always "all but the newest kPrefetchTokens - 1 groups are done". Token 0's
  // x_prev is the cached x; it sits where the stage of "token -1" keeps x.
  const HeadWeights w = stage_head_weights_async(smem, l.weights, p, head, tid, nthreads);
  read_k_slot_async(k_state, k_buf(0), p, tid, nthreads);
  copy_async(stage(-1) + P, x_state, P, tid, nthreads);
  copy_async(h_shared, h_state, P * N, tid, nthreads);
  for (int t = 0; t < kPrefetchTokens; ++t) {
    if (t < tokens)
      stage_inputs_async(stage(t), proj + static_cast<int64_t>(t) * p.d_in_proj, p, head, tid, nthreads);
    __pipeline_commit();
  }
  LaneAngles<kAnglesPerLane<kColsPerLane>> angles;
  if (rotates) angles.load(angle_state, S, lane);
  __pipeline_wait_prior(kPrefetchTokens - 1);
  __syncthreads();

#pragma unroll 1
  for (int t = 0; t < tokens; ++t) {
    const HeadInputs in = inputs_from_stage(stage(t), p);
    const HeadInputs last = inputs_from_stage(stage(t - 1), p);
    float* k = k_buf(t + 1);
    float* y_rank_last = y_rank_buf(t + 1);
    // Its stage last held token t-2, whose readers all finished before the previous barrier.
    const int ahead = t + kPrefetchTokens;
    if (ahead < tokens)
      stage_inputs_async(stage(ahead), proj + static_cast<int64_t>(ahead) * p.d_in_proj, p, head, tid, nthreads);
    __pipeline_commit();

    const HeadCoefficients c = coefficients(p, w, in);
    if (rotates) {
      angles.advance(in.theta, S, c.dt, lane);
#pragma unroll 1
      for (int v = warp; v < 2 * R; v += nwarps) build_vector_job(v, p, w, in, angles, q, k, lane);
    }
    if (t > 0) {
      // Jobs 2R..3R-1 continue the round robin after the vector jobs.
#pragma unroll 1
      for (int job = warp; job < 3 * R; job += nwarps)
        if (job >= 2 * R) finish_rank(p, w, job - 2 * R, last.x, y_rank_last + (job - 2 * R) * P, lane);
    }
    outer_product_weights(p, w, c, last.x, in.x, wp, wc, tid, nthreads);
    __syncthreads();

    if (t > 0)
      gate_ranks(p, w, y_rank_last, last.z, y + static_cast<int64_t>(t - 1) * p.E + static_cast<int64_t>(head) * P,
                 tid, nthreads);
    step_state_rows<kColsPerLane, kTileRows>(h_shared, c.alpha, wp, wc, k_buf(t), k, q, y_rank_buf(t), R, P, N, warp,
                                             nwarps, lane);
    __pipeline_wait_prior(kPrefetchTokens - 1);
    __syncthreads();
  }

  const HeadInputs last = inputs_from_stage(stage(tokens - 1), p);
  float* y_rank_last = y_rank_buf(tokens - 1);
#pragma unroll 1
  for (int r = warp; r < R; r += nwarps) finish_rank(p, w, r, last.x, y_rank_last + r * P, lane);
  __syncthreads();
  gate_ranks(p, w, y_rank_last, last.z, y + static_cast<int64_t>(tokens - 1) * p.E + static_cast<int64_t>(head) * P,
             tid, nthreads);

  write_state(h_state, h_shared, P * N, tid, nthreads);
  if (warp == 0) angles.store(angle_state, S, lane);
  write_k_slot(k_state, k_buf(tokens), p, tid, nthreads);
  for (int ch = tid; ch < P; ch += nthreads) x_state[ch] = last.x[ch];
}

// ---------------------------------------------------------------------------------------
// Host side.

bool supported(const Mamba3StepParams& p) {
  if (p.H <= 0 || p.P <= 0 || p.P > kMaxHeadDim || p.N <= 0 || p.N > kMaxStateDim) return false;
  if (p.R < 1 || p.R > kMaxRank || (!p.mimo && p.R != 1)) return false;
  if (p.G <= 0 || p.H % p.G != 0 || p.S < 0 || 2 * p.S > p.N || p.E != p.H * p.P) return false;
  const int64_t needed = 2 * static_cast<int64_t>(p.E) + 2 * static_cast<int64_t>(p.R) * p.G * p.N + 3 * p.H + p.S;
  if (p.d_in_proj < needed) return false;
  if (!p.dt_bias || !p.D || !p.B_bias || !p.C_bias || !p.B_norm || !p.C_norm) return false;
  if (p.mimo && (!p.mimo_x || !p.mimo_z || !p.mimo_o)) return false;
  if (p.outproj_norm && !p.out_norm) return false;
  return p.off_angle >= 0 && p.off_ssm >= 0 && p.off_k >= 0 && p.off_v >= 0;
}

// State columns per lane, rounded up to the instantiated 1, 2, 4, 8.
int cols_per_lane(const Mamba3StepParams& p) {
  const int needed = (p.N + kWarpSize - 1) / kWarpSize;
  return needed <= 1 ? 1 : needed <= 2 ? 2 : needed <= 4 ? 4 : 8;
}

int warps_for(const Mamba3StepParams& p) { return (p.P + kRowsPerWarp - 1) / kRowsPerWarp; }

// 8 columns a lane need more registers than a 512-thread block leaves a thread: at most 8
// warps then, each taking more rows.
int prefill_warps(const Mamba3StepParams& p) {
  const int wanted = warps_for(p);
  const int most = cols_per_lane(p) >= 8 ? kMaxThreads / kWarpSize / 2 : kMaxThreads / kWarpSize;
  return wanted < most ? wanted : most;
}

int decode_threads(const Mamba3StepParams& p, int rows) {
  const int warps = warps_for(p);
  const bool busy = static_cast<int64_t>(rows) * p.H >= kBusyDecodeBlocks;
  return (busy && warps > kBusyDecodeWarps ? kBusyDecodeWarps : warps) * kWarpSize;
}

template <int kColsPerLane>
cudaError_t launch_decode(const Mamba3StepParams& p, int rows, const float* proj, float* const* states, float* y,
                          cudaStream_t stream) {
  const size_t smem = sizeof(float) * static_cast<size_t>(decode_layout(p).total);
  if (const cudaError_t e = allow_shared_memory(decode_step_kernel<kColsPerLane>, smem); e != cudaSuccess) return e;
  const unsigned blocks = static_cast<unsigned>(rows * p.H);
  return launch_overlapped(decode_step_kernel<kColsPerLane>, blocks, decode_threads(p, rows), smem, stream, p, proj,
                           states, y);
}

template <int kColsPerLane, int kBlockThreads>
cudaError_t launch_prefill_sized(const Mamba3StepParams& p, int tokens, const float* proj, float* state, float* y,
                                 cudaStream_t stream) {
  const auto kernel = prefill_step_kernel<kColsPerLane, kBlockThreads>;
  const size_t smem = sizeof(float) * static_cast<size_t>(prefill_layout(p).total);
  if (const cudaError_t e = allow_shared_memory(kernel, smem); e != cudaSuccess) return e;
  kernel<<<p.H, prefill_warps(p) * kWarpSize, smem, stream>>>(p, tokens, proj, state, y);
  return cudaGetLastError();
}

template <int kColsPerLane>
cudaError_t launch_prefill(const Mamba3StepParams& p, int tokens, const float* proj, float* state, float* y,
                           cudaStream_t stream) {
  constexpr int kSmallBlock = kMaxThreads / 2;
  if constexpr (kColsPerLane < 8) {
    if (prefill_warps(p) * kWarpSize > kSmallBlock)
      return launch_prefill_sized<kColsPerLane, kMaxThreads>(p, tokens, proj, state, y, stream);
  }
  return launch_prefill_sized<kColsPerLane, kSmallBlock>(p, tokens, proj, state, y, stream);
}

}  // namespace

bool step_params_valid(const Mamba3StepParams& p) { return supported(p); }

cudaError_t mamba3_step_decode(const Mamba3StepParams& p, int rows, const float* proj, float* const* states, float* y,
                               cudaStream_t stream) {
  if (!supported(p) || rows < 0 || static_cast<int64_t>(rows) * p.H > INT_MAX) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!proj || !states || !y) return cudaErrorInvalidValue;
  switch (cols_per_lane(p)) {
    case 1: return launch_decode<1>(p, rows, proj, states, y, stream);
    case 2: return launch_decode<2>(p, rows, proj, states, y, stream);
    case 4: return launch_decode<4>(p, rows, proj, states, y, stream);
    default: return launch_decode<8>(p, rows, proj, states, y, stream);
  }
}

cudaError_t mamba3_step_prefill(const Mamba3StepParams& p, int tokens, const float* proj, float* state, float* y,
                                cudaStream_t stream) {
  if (!supported(p) || tokens < 0) return cudaErrorInvalidValue;
  if (tokens == 0) return cudaSuccess;
  if (!proj || !state || !y) return cudaErrorInvalidValue;
  switch (cols_per_lane(p)) {
    case 1: return launch_prefill<1>(p, tokens, proj, state, y, stream);
    case 2: return launch_prefill<2>(p, tokens, proj, state, y, stream);
    case 4: return launch_prefill<4>(p, tokens, proj, state, y, stream);
    default: return launch_prefill<8>(p, tokens, proj, state, y, stream);
  }
}

}  // namespace m3::cuda
