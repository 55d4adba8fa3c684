// Prefill in the chunked (parallel) form of spec §4.4. The tokens of a pass are cut into
// chunks of kChunkRows (token, rank) rows. Within a chunk the recurrence is a causal,
// decay-weighted Q K^T product times V (tensor cores, tf32); between chunks only the state
// S [P, N] is carried. Six launches per layer:
//   0. normalize_keys_queries  RMSNorm of every raw B and C row, in place, once for all heads
//   1. angle_totals,   the rotary angle at every chunk start: per (chunk, angle) the sum of
//      angle_starts    the chunk's increments, then a running sum over chunks (within a chunk
//                      the kernels below add the running sum of the increments to the start)
//   2. chunk_states    each chunk's own contribution to the state, sum_s e^(l_last - l_s) c_s v_s k_s^T
//   3. state_passing   the state at every chunk start (sequential over chunks, parallel over the
//                      state's elements), and the final state into the slot
//   4. chunk_outputs   y_t = e^(l_t) S_start q_t + sum_{s<t} e^(l_t - l_s) c_s (q_t.k_s) v_s
//                      + gamma_t (q_t.k_t) v_t + D v_t, then the norm and the gate
// where l_t is the running sum of the log-decays within the chunk and c_s = gamma_s + mu_{s+1}
// (token s+1's mu even across a chunk edge; the pass's last token has only gamma: the next
// pass or decode step adds its mu with the cached k and x).
#include <cstdint>
#include <algorithm>

#include <cuda_pipeline_primitives.h>
#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/projection_row.cuh"

namespace m3::cuda {
namespace {

// (token, rank) rows of a chunk: 32 / R tokens. Measured on the H100 (1.5B, bf16, with the
// earlier wmma products): 32 rows beat 64, which halve the blocks an SM holds and double each
// block's serial steps. The per-token scalars and the angle scan take a lane per token.
constexpr int kChunkRows = 32;
static_assert(kChunkRows <= kWarpSize, "a lane a token");
constexpr int kChunkThreads = 256;
// Blocks an SM keeps of the chunk kernels: their shared memory allows 4, and capping the
// registers at 64 a thread lets the register file hold 4 as well.
constexpr int kChunkBlocksPerSm = 4;
constexpr int kChunkWarps = kChunkThreads / kWarpSize;
// P and N come in multiples of this: whole 16-row mma tiles, and the padded strides below.
constexpr int kTile = 16;
constexpr int kAngleThreads = 128;
constexpr int kPassingThreads = 256;

__host__ __device__ int tokens_per_chunk(const Mamba3StepParams& p) { return kChunkRows / p.R; }
__host__ __device__ int chunk_count(const Mamba3StepParams& p, int tokens) {
  return (tokens + tokens_per_chunk(p) - 1) / tokens_per_chunk(p);
}

// Row strides of the shared-memory matrices, in floats: whole 16-byte units (cp.async), padded
// so the fragment loads of tf32_product hit 32 different banks. A matrix whose rows a warp reads
// along (8 rows, 4 consecutive columns) wants a stride of 4 mod 8; one it reads down the
// columns (4 rows, 8 consecutive columns) wants 8 mod 16. cols is a multiple of 16.
__host__ __device__ int stride_along(int cols) { return cols + 4; }
__host__ __device__ int stride_across(int cols) { return cols + 8; }

// Shared memory regions, each a multiple of 8 floats so every one starts 32-byte aligned
// (cp.async and the float4 loads want 16).
struct SmemRegions {
  int used = 0;
  __host__ __device__ int take(int floats) {
    const int at = used;
    used += (floats + 7) / 8 * 8;
    return at;
  }
};

// Calls f(row, col) for every row < rows and col < cols, the block's threads taking the
// elements in row-major order: one division per thread, not one per element.
template <class F>
__device__ __forceinline__ void for_each_element(int rows, int cols, int tid, F&& f) {
  const int step_rows = kChunkThreads / cols, step_cols = kChunkThreads % cols;
  int row = tid / cols, col = tid % cols;
  while (row < rows) {
    f(row, col);
    row += step_rows;
    col += step_cols;
    if (col >= cols) col -= cols, ++row;
  }
}

// The products' inputs round to tf32 (10-bit mantissa) to nearest, ties away.
__device__ __forceinline__ uint32_t tf32_bits(float x) {
  uint32_t bits;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
  return bits;
}
__device__ __forceinline__ float round_to_tf32(float x) { return __uint_as_float(tf32_bits(x)); }

// ---------------------------------------------------------------------------------------
// Per-token scalars of one chunk (warp 0, a lane a token).

struct ChunkScalars {
  float* cum;    // l_t: inclusive running sum of the log-decays within the chunk
  float* gamma;  // gamma_t
  float* c;      // c_t = gamma_t + mu_{t+1} (0 past the pass's last token)
  float* dt;     // dt_t
};

__device__ HeadRates token_rates(const Mamba3StepParams& p, const float* proj, int head, int token) {
  const HeadInputs in = inputs_from_proj_row(proj + static_cast<int64_t>(token) * p.d_in_proj, p, head);
  return head_rates(p.heavy_tail, p.a_floor, *in.dd_dt, p.dt_bias[head], *in.dd_a, *in.trap);
}

__device__ void fill_chunk_scalars(const Mamba3StepParams& p, const float* proj, int head, int t0, int count,
                                   int tokens, const ChunkScalars& s, int lane) {
  HeadRates r{0.0f, 0.0f, 0.0f, 0.0f};
  if (lane < count) r = token_rates(p, proj, head, t0 + lane);
  // mu of the next token: the next lane's, and past the chunk's end the next chunk's first.
  float mu_next = __shfl_down_sync(kFullWarp, r.mu, 1);
  if (lane == count - 1) mu_next = t0 + count < tokens ? token_rates(p, proj, head, t0 + count).mu : 0.0f;
  float log_decay = r.log_decay;
  for (int offset = 1; offset < kWarpSize; offset *= 2) {
    const float v = __shfl_up_sync(kFullWarp, log_decay, offset);
    if (lane >= offset) log_decay += v;
  }
  if (lane < count) {
    s.cum[lane] = log_decay;
    s.dt[lane] = r.dt;
    s.gamma[lane] = r.gamma;
    s.c[lane] = r.gamma + mu_next;
  }
}

// ---------------------------------------------------------------------------------------
// The chunk's matrices, one row per (token, rank): row = t * R + r; rows past the chunk's
// tokens are zero. The raw inputs land in shared memory first, all at once (cp.async), and
// are transformed in place: a warp walking rows with a trip to device memory each would wait
// on memory most of the time.

// The angles [tokens, S] are read down columns too (the scan over tokens): an odd row stride
// keeps those reads free of bank conflicts.
__host__ __device__ int theta_stride(int S) { return S | 1; }

// dst[row * dst_rows_apart * ld + col] = src[row * src_stride + col] for row < rows, col < cols,
// in 16-byte pieces where the source allows (ld and dst keep 16-byte alignment by construction).
__device__ void copy_rows_async(float* dst, int ld, int dst_rows_apart, const float* src, int64_t src_stride,
                                int rows, int cols, int tid) {
  const int64_t dst_stride = static_cast<int64_t>(ld) * dst_rows_apart;
  if (cols % 4 == 0 && dst_stride % 4 == 0 && src_stride % 4 == 0 && (reinterpret_cast<uintptr_t>(src) & 15) == 0) {
    for_each_element(rows, cols / 4, tid, [&](int row, int piece) {
      __pipeline_memcpy_async(dst + row * dst_stride + piece * 4, src + row * src_stride + piece * 4, 16);
    });
  } else {
    for_each_element(rows, cols, tid, [&](int row, int col) {
      __pipeline_memcpy_async(dst + row * dst_stride + col, src + row * src_stride + col, sizeof(float));
    });
  }
}

// Which of the chunk's matrices a kernel stages.
enum StagedRows : int { kKeys = 1, kQueries = 2, kValues = 4 };

// This head's biases of the keys (B) or queries (C), [R, N], staged with the inputs.
__host__ __device__ int bias_floats(const Mamba3StepParams& p) { return p.R * p.N; }

__device__ void stage_bias(const Mamba3StepParams& p, int head, const float* bias, float* dst, int tid) {
  copy_rows_async(dst, bias_floats(p), 1, bias + static_cast<int64_t>(head) * bias_floats(p), bias_floats(p), 1,
                  bias_floats(p), tid);
}

// Raw B rows into keys, raw C rows into queries, x into every rank's value row, theta into
// theta [count, padded S], the keys' and queries' biases (key_bias, query_bias: null when
// not wanted); rows past count zeroed. One cp.async group; the caller waits.
__device__ void stage_chunk_inputs(const Mamba3StepParams& p, const float* proj, int head, int t0, int count,
                                   int which, float* keys, float* queries, int ldn, float* values, int ldp,
                                   float* theta, float* key_bias, float* query_bias, int tid) {
  const HeadInputs first = inputs_from_proj_row(proj + static_cast<int64_t>(t0) * p.d_in_proj, p, head);
  if (key_bias) stage_bias(p, head, p.B_bias, key_bias, tid);
  if (query_bias) stage_bias(p, head, p.C_bias, query_bias, tid);
  for (int r = 0; r < p.R; ++r) {
    if (which & kKeys) copy_rows_async(keys + r * ldn, ldn, p.R, first.B + r * first.bc_rank_stride, p.d_in_proj, count, p.N, tid);
    if (which & kQueries)
      copy_rows_async(queries + r * ldn, ldn, p.R, first.C + r * first.bc_rank_stride, p.d_in_proj, count, p.N, tid);
    if (which & kValues) copy_rows_async(values + r * ldp, ldp, p.R, first.x, p.d_in_proj, count, p.P, tid);
  }
  if (p.S > 0) copy_rows_async(theta, theta_stride(p.S), 1, first.theta, p.d_in_proj, count, p.S, tid);
  __pipeline_commit();
  const int live_rows = count * p.R;
  for_each_element(kChunkRows - live_rows, p.N, tid, [&](int row, int n) {
    if (which & kKeys) keys[(live_rows + row) * ldn + n] = 0.0f;
    if (which & kQueries) queries[(live_rows + row) * ldn + n] = 0.0f;
  });
  if (which & kValues)
    for_each_element(kChunkRows - live_rows, p.P, tid,
                     [&](int row, int ch) { values[(live_rows + row) * ldp + ch] = 0.0f; });
}

// After the staged inputs and the scalars have landed: theta becomes the angle of each token,
// the chunk's start angle plus the running sum of the increments pi tanh(theta) dt (a warp
// scans an angle's tokens in double, then wraps once); MIMO values get their mimo_x factor.
// Ends with a barrier.
__device__ void finish_staging(const Mamba3StepParams& p, int head, int count, const float* start_angles,
                               const ChunkScalars& s, float* theta, float* values, int ldp, int tid) {
  const int ldt = theta_stride(p.S), lane = tid % kWarpSize;
  for_each_element(count, p.S, tid,
                   [&](int t, int i) { theta[t * ldt + i] = kPi * tanhf(theta[t * ldt + i]) * s.dt[t]; });
  if (p.mimo && values)
    for_each_element(count * p.R, p.P, tid, [&](int row, int ch) {
      values[row * ldp + ch] *= p.mimo_x[(static_cast<int64_t>(head) * p.R + row % p.R) * p.P + ch];
    });
  __syncthreads();
#pragma unroll 1
  for (int i = tid / kWarpSize; i < p.S; i += kChunkWarps) {
    double sum = lane < count ? theta[lane * ldt + i] : 0.0;
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
      const double v = __shfl_up_sync(kFullWarp, sum, offset);
      if (lane >= offset) sum += v;
    }
    if (lane < count)
      theta[lane * ldt + i] = wrap_angle(static_cast<float>(fmod(start_angles[i] + sum, 2.0 * kPiDouble)));
  }
  __syncthreads();
}

// Keys (B) and, when `queries` is given, queries (C) in place, a warp a token (all its ranks):
// Rot(phi_t)(normalized + bias_r) (normalize_keys_queries ran before), keys also times
// key_scale[t] (null: 1), rounded to tf32 for the products. SISO rotates pairs (2i, 2i+1),
// MIMO (i, i + N/2); one sin/cos serves every row of the token. Token last_t's keys also go to
// last_keys unrounded (rank r at + r * H * N: the slot's cached k), when last_keys is given.
// key_bias, query_bias: this head's biases (stage_bias).
template <int R>
__device__ void transform_token_rows(const Mamba3StepParams& p, int count, const float* angles,
                                     const float* key_scale, float* keys, float* queries, const float* key_bias,
                                     const float* query_bias, int ld, float* last_keys, int last_t, int warp,
                                     int lane) {
  constexpr int kRows = 2 * R;  // the keys' ranks, then the queries'
  const int N = p.N, S = p.S, ldt = theta_stride(S), rows_here = queries ? kRows : R;
#pragma unroll 1
  for (int t = warp; t < count; t += kChunkWarps) {
    const float key_weight = key_scale ? key_scale[t] : 1.0f;
    const float* phi = angles + t * ldt;
    for (int i = lane; i < N / 2; i += kWarpSize) {
      const int a = p.mimo ? i : 2 * i;
      const int b = p.mimo ? i + N / 2 : 2 * i + 1;
      float sn = 0.0f, cs = 1.0f;
      if (i < S) sincos_of_angle(phi[i], &sn, &cs);
#pragma unroll
      for (int j = 0; j < kRows; ++j) {
        if (j >= rows_here) continue;
        const bool is_key = j < R;
        const int r = j % R;
        float* v = (is_key ? keys : queries) + (t * R + r) * ld;
        const float* bias = (is_key ? key_bias : query_bias) + r * N;
        float va = v[a] + bias[a];
        float vb = v[b] + bias[b];
        if (i < S) {
          const float ra = va * cs - vb * sn;
          vb = va * sn + vb * cs;
          va = ra;
        }
        const float w = is_key ? key_weight : 1.0f;
        if (is_key && last_keys && t == last_t) {
          last_keys[static_cast<int64_t>(r) * p.H * N + a] = va * w;
          last_keys[static_cast<int64_t>(r) * p.H * N + b] = vb * w;
        }
        v[a] = round_to_tf32(va * w);
        v[b] = round_to_tf32(vb * w);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// C [rows, cols] (+)= A [rows, depth] B [depth, cols] on the tensor cores: tf32 inputs, fp32
// sums, mma.sync m16n8k8 (PTX ISA fragment layouts), a warp a 16 x (8 kTiles) tile of C round
// robin (the A fragments serve kTiles products; cols a multiple of 8 kTiles).
// Each operand is element (i, k) at data[i * outer + k * inner], i a row of A or a column of
// B, in shared or global memory. Inputs are rounded to tf32 on load unless the caller wrote
// them rounded already (round_to_tf32).

struct Operand {
  const float* data;
  int outer, inner;
};

template <bool kRound>
__device__ __forceinline__ uint32_t operand_bits(float x) {
  if constexpr (kRound) return tf32_bits(x);
  return __float_as_uint(x);
}

template <int kTiles, bool kRoundA, bool kRoundB>
__device__ void tf32_product(Operand a, Operand b, float* c, int ldc, int rows, int cols, int depth, bool accumulate,
                             int warp, int lane) {
  const int group = lane / 4, member = lane % 4;  // the fragments' groupID and threadID_in_group
  const int tile_cols = cols / (8 * kTiles);
#pragma unroll 1
  for (int tile = warp; tile < rows / 16 * tile_cols; tile += kChunkWarps) {
    const int i0 = tile / tile_cols * 16, j0 = tile % tile_cols * 8 * kTiles;
    float d[kTiles][4];
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      const float* c_top = c + (i0 + group) * ldc + j0 + 8 * n + 2 * member;
      const float* c_bottom = c_top + 8 * ldc;
      d[n][0] = accumulate ? c_top[0] : 0.0f;
      d[n][1] = accumulate ? c_top[1] : 0.0f;
      d[n][2] = accumulate ? c_bottom[0] : 0.0f;
      d[n][3] = accumulate ? c_bottom[1] : 0.0f;
    }
    const float* a_top = a.data + (i0 + group) * a.outer + member * a.inner;
    const float* a_bottom = a_top + 8 * a.outer;
    const float* b_col = b.data + (j0 + group) * b.outer + member * b.inner;
    const int a_half = 4 * a.inner, b_half = 4 * b.inner, b_next = 8 * b.outer;
#pragma unroll 2
    for (int k0 = 0; k0 < depth; k0 += 8) {
      const uint32_t af0 = operand_bits<kRoundA>(a_top[0]), af1 = operand_bits<kRoundA>(a_bottom[0]);
      const uint32_t af2 = operand_bits<kRoundA>(a_top[a_half]), af3 = operand_bits<kRoundA>(a_bottom[a_half]);
#pragma unroll
      for (int n = 0; n < kTiles; ++n) {
        const uint32_t bf0 = operand_bits<kRoundB>(b_col[n * b_next]);
        const uint32_t bf1 = operand_bits<kRoundB>(b_col[n * b_next + b_half]);
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
            "{%0, %1, %2, %3};"
            : "+f"(d[n][0]), "+f"(d[n][1]), "+f"(d[n][2]), "+f"(d[n][3])
            : "r"(af0), "r"(af1), "r"(af2), "r"(af3), "r"(bf0), "r"(bf1));
      }
      a_top += 2 * a_half;
      a_bottom += 2 * a_half;
      b_col += 2 * b_half;
    }
#pragma unroll
    for (int n = 0; n < kTiles; ++n) {
      float* c_top = c + (i0 + group) * ldc + j0 + 8 * n + 2 * member;
      float* c_bottom = c_top + 8 * ldc;
      c_top[0] = d[n][0], c_top[1] = d[n][1], c_bottom[0] = d[n][2], c_bottom[1] = d[n][3];
    }
  }
}

// The product with the widest warp tile (up to 4 column tiles: registers) that still gives
// every warp a tile.
template <bool kRoundA, bool kRoundB>
__device__ void tf32_matmul(Operand a, Operand b, float* c, int ldc, int rows, int cols, int depth, bool accumulate,
                            int warp, int lane) {
  const auto busy = [&](int tiles) { return cols % (8 * tiles) == 0 && rows / 16 * (cols / (8 * tiles)) >= kChunkWarps; };
  if (busy(4))
    tf32_product<4, kRoundA, kRoundB>(a, b, c, ldc, rows, cols, depth, accumulate, warp, lane);
  else if (busy(2))
    tf32_product<2, kRoundA, kRoundB>(a, b, c, ldc, rows, cols, depth, accumulate, warp, lane);
  else
    tf32_product<1, kRoundA, kRoundB>(a, b, c, ldc, rows, cols, depth, accumulate, warp, lane);
}

// ---------------------------------------------------------------------------------------
// 0. normalize_keys_queries: every raw B and C row of the pass's projections, in place, becomes
// RMSNorm(raw) * norm (the sum of squares in double, as the CPU does), once for all heads
// that share it. A warp a row.

constexpr int kNormalizeWarps = 8;

__global__ void __launch_bounds__(kNormalizeWarps * kWarpSize)
    normalize_keys_queries_kernel(const Mamba3StepParams p, int tokens, float* proj) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int row = static_cast<int>(blockIdx.x) * kNormalizeWarps + static_cast<int>(threadIdx.x) / kWarpSize;
  const int per_token = 2 * p.R * p.G;  // B then C, [R, G] rows of N each
  if (row >= tokens * per_token) return;
  const int t = row / per_token, j = row % per_token;
  float* v = proj + static_cast<int64_t>(t) * p.d_in_proj + 2 * static_cast<int64_t>(p.E) +
             static_cast<int64_t>(j) * p.N;
  const float* norm_w = j < p.R * p.G ? p.B_norm : p.C_norm;
  double sum_sq = 0.0;
  for (int n = lane; n < p.N; n += kWarpSize) sum_sq += static_cast<double>(v[n]) * v[n];
  const float scale = rms_scale(warp_sum(sum_sq), p.N);
  for (int n = lane; n < p.N; n += kWarpSize) v[n] = v[n] * scale * norm_w[n];
}

// ---------------------------------------------------------------------------------------
// 1. Angle starts, in two launches. angle_totals: block (chunk, head), thread i sums the
// chunk's increments pi tanh(theta_t[i]) dt_t (in double, so 64 of them lose nothing) and
// keeps the sum mod 2pi. angle_starts: thread (head, i) turns the totals, in place, into the
// angle at each chunk's start, from the slot's angle, and leaves the pass's last angle in the
// slot (the chunk kernels advance the angle token by token from these starts).

constexpr int kTotalsGroups = 4;  // token groups a chunk's angle sums are split over

__global__ void angle_totals_kernel(const Mamba3StepParams p, int tokens, const float* proj, float* totals) {
  extern __shared__ double group_sums[];  // [kTotalsGroups, S]
  const int chunk = static_cast<int>(blockIdx.x), head = static_cast<int>(blockIdx.y);
  const int t0 = chunk * tokens_per_chunk(p), t1 = min(t0 + tokens_per_chunk(p), tokens);
  const float dt_bias = p.dt_bias[head];
  for (int e = static_cast<int>(threadIdx.x); e < kTotalsGroups * p.S; e += static_cast<int>(blockDim.x)) {
    const int group = e / p.S, i = e % p.S;
    double sum = 0.0;
#pragma unroll 4
    for (int t = t0 + group; t < t1; t += kTotalsGroups) {
      const HeadInputs in = inputs_from_proj_row(proj + static_cast<int64_t>(t) * p.d_in_proj, p, head);
      const float dt = softplus(*in.dd_dt + dt_bias);  // as head_rates computes it
      sum += static_cast<double>(kPi * tanhf(in.theta[i]) * dt);
    }
    group_sums[e] = sum;
  }
  __syncthreads();
  for (int i = static_cast<int>(threadIdx.x); i < p.S; i += static_cast<int>(blockDim.x)) {
    double sum = 0.0;
    for (int g = 0; g < kTotalsGroups; ++g) sum += group_sums[g * p.S + i];
    totals[(static_cast<int64_t>(chunk) * p.H + head) * p.S + i] = wrap_angle(static_cast<float>(fmod(sum, 2.0 * kPiDouble)));
  }
}

__global__ void angle_starts_kernel(const Mamba3StepParams p, int chunks, float* state, float* __restrict__ starts) {
  const int idx = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (idx >= p.H * p.S) return;
  const int64_t chunk_stride = static_cast<int64_t>(p.H) * p.S;
  float* slot = state + p.off_angle + idx;  // [H, S]
  float phi = *slot;
  float next = starts[idx];
#pragma unroll 1
  for (int c = 0; c < chunks; ++c) {
    const float total = next;
    if (c + 1 < chunks) next = starts[(c + 1) * chunk_stride + idx];
    starts[c * chunk_stride + idx] = phi;
    phi = wrap_angle(phi + total);
  }
  *slot = phi;
}

// ---------------------------------------------------------------------------------------
// 2. Chunk states: block (chunk, head) writes dS = V^T K' [P, N], K' rows scaled by
// e^(l_last - l_s) c_s, and the chunk's total decay e^(l_last).

struct StatesLayout {
  int cum, gamma, c, dt, weight, theta, k, v, key_bias, total;
};

__host__ __device__ StatesLayout states_layout(const Mamba3StepParams& p) {
  SmemRegions s;
  StatesLayout l{};
  l.cum = s.take(kChunkRows);
  l.gamma = s.take(kChunkRows);
  l.c = s.take(kChunkRows);
  l.dt = s.take(kChunkRows);
  l.weight = s.take(kChunkRows);
  l.theta = s.take(kChunkRows * theta_stride(p.S));
  l.k = s.take(kChunkRows * stride_across(p.N));
  l.v = s.take(kChunkRows * stride_across(p.P));
  l.key_bias = s.take(bias_floats(p));
  l.total = s.used;
  return l;
}

template <int R>
__global__ void __launch_bounds__(kChunkThreads, kChunkBlocksPerSm)
    chunk_states_kernel(const Mamba3StepParams p, int tokens, const float* proj, const float* start_angles,
                        float* chunk_states, float* chunk_decay) {
  extern __shared__ __align__(128) float smem[];
  const int chunk = static_cast<int>(blockIdx.x), head = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int t0 = chunk * tokens_per_chunk(p), count = min(tokens_per_chunk(p), tokens - t0);
  const StatesLayout l = states_layout(p);
  const ChunkScalars s{smem + l.cum, smem + l.gamma, smem + l.c, smem + l.dt};
  const int ldk = stride_across(p.N), ldv = stride_across(p.P);
  float* k = smem + l.k;
  float* v = smem + l.v;
  float* angles = smem + l.theta;

  stage_chunk_inputs(p, proj, head, t0, count, kKeys | kValues, k, nullptr, ldk, v, ldv, angles, smem + l.key_bias,
                     nullptr, tid);
  if (warp == 0) fill_chunk_scalars(p, proj, head, t0, count, tokens, s, lane);
  __pipeline_wait_prior(0);
  __syncthreads();
  const float last = s.cum[count - 1];
  for (int t = tid; t < count; t += kChunkThreads) smem[l.weight + t] = expf(last - s.cum[t]) * s.c[t];
  finish_staging(p, head, count, start_angles + (static_cast<int64_t>(chunk) * p.H + head) * p.S, s, angles, v, ldv,
                 tid);
  transform_token_rows<R>(p, count, angles, smem + l.weight, k, nullptr, smem + l.key_bias, nullptr, ldk, nullptr, -1,
                          warp, lane);
  for_each_element(count * R, p.P, tid, [&](int row, int ch) { v[row * ldv + ch] = round_to_tf32(v[row * ldv + ch]); });
  __syncthreads();
  float* out = chunk_states + (static_cast<int64_t>(chunk) * p.H + head) * p.P * p.N;
  tf32_matmul<false, false>({v, 1, ldv}, {k, 1, ldk}, out, p.N, p.P, p.N, kChunkRows, false, warp, lane);
  if (tid == 0) chunk_decay[chunk * p.H + head] = expf(last);
}

// ---------------------------------------------------------------------------------------
// 3. State passing: thread (head, p, n). The initial state folds in the cached previous
// token's term, H0 = h + mu_0 sum_r (x_prev mimo_x_r) k_prev_r^T (spec §4.4); then for each
// chunk the entry of chunk_states becomes the state at the chunk's start, rounded to tf32
// (the outputs' product reads nothing else of it; the state carried on is unrounded).

__global__ void __launch_bounds__(kPassingThreads)
    state_passing_kernel(const Mamba3StepParams p, int chunks, const float* proj, float* state,
                         float* __restrict__ chunk_states, const float* __restrict__ chunk_decay) {
  // Four consecutive state columns a thread (N is a multiple of 16), 16-byte loads; the next
  // chunk's entry is loaded before this one's is stored.
  const int64_t per_head = static_cast<int64_t>(p.P) * p.N;
  const int64_t at = 4 * (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x);
  if (at >= p.H * per_head) return;
  const int head = static_cast<int>(at / per_head);
  const int64_t in_head = at % per_head;
  const int ch = static_cast<int>(in_head / p.N), n = static_cast<int>(in_head % p.N);

  float4* h = reinterpret_cast<float4*>(state + p.off_ssm + at);  // [H, P, N]
  const float x_prev = state[p.off_v + static_cast<int64_t>(head) * p.P + ch];
  float4 prev_term = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int r = 0; r < p.R; ++r) {
    const float xm = x_prev * (p.mimo ? p.mimo_x[(static_cast<int64_t>(head) * p.R + r) * p.P + ch] : 1.0f);
    const float* k = state + p.off_k + static_cast<int64_t>(r) * p.H * p.N + static_cast<int64_t>(head) * p.N + n;
    prev_term.x += xm * k[0], prev_term.y += xm * k[1], prev_term.z += xm * k[2], prev_term.w += xm * k[3];
  }
  const float mu0 = token_rates(p, proj, head, 0).mu;
  float4 s = *h;
  s.x = fmaf(mu0, prev_term.x, s.x), s.y = fmaf(mu0, prev_term.y, s.y);
  s.z = fmaf(mu0, prev_term.z, s.z), s.w = fmaf(mu0, prev_term.w, s.w);
  float4* entry = reinterpret_cast<float4*>(chunk_states + head * per_head + in_head);
  const int64_t chunk_stride = p.H * per_head / 4;
  float4 next = entry[0];
#pragma unroll 1
  for (int c = 0; c < chunks; ++c) {
    const float4 own = next;
    if (c + 1 < chunks) next = entry[(c + 1) * chunk_stride];
    entry[c * chunk_stride] = make_float4(round_to_tf32(s.x), round_to_tf32(s.y), round_to_tf32(s.z), round_to_tf32(s.w));
    const float d = chunk_decay[c * p.H + head];
    s.x = fmaf(d, s.x, own.x), s.y = fmaf(d, s.y, own.y), s.z = fmaf(d, s.z, own.z), s.w = fmaf(d, s.w, own.w);
  }
  *h = s;
}

// ---------------------------------------------------------------------------------------
// 4. Chunk outputs: block (chunk, head). Q K^T weighted by the causal decay mask into M, the
// inter-chunk term Q S_start^T scaled by e^(l_t) into Y, Y += M V, then D, norm and gate.
// Y reuses K's memory once M is done.

struct OutputsLayout {
  int cum, gamma, c, dt, theta, q, k, v, m, y, z, key_bias, query_bias, total;
};

__host__ __device__ OutputsLayout outputs_layout(const Mamba3StepParams& p) {
  SmemRegions s;
  OutputsLayout l{};
  l.cum = s.take(kChunkRows);
  l.gamma = s.take(kChunkRows);
  l.c = s.take(kChunkRows);
  l.dt = s.take(kChunkRows);
  l.theta = s.take(kChunkRows * theta_stride(p.S));
  l.q = s.take(kChunkRows * stride_along(p.N));
  l.k = s.take(kChunkRows * stride_along(p.N));
  l.v = s.take(kChunkRows * stride_across(p.P));
  l.m = s.take(kChunkRows * stride_along(kChunkRows));
  l.y = stride_across(p.P) <= stride_along(p.N) ? l.k : s.take(kChunkRows * stride_across(p.P));
  l.z = stride_along(p.P) <= stride_along(p.N) ? l.q : s.take(kChunkRows * stride_along(p.P));
  l.key_bias = s.take(bias_floats(p));
  l.query_bias = s.take(bias_floats(p));
  l.total = s.used;
  return l;
}

template <int R, class T>
__global__ void __launch_bounds__(kChunkThreads, kChunkBlocksPerSm)
    chunk_outputs_kernel(const Mamba3StepParams p, int tokens, const float* proj, const float* start_angles,
                         const float* chunk_states, float* state, T* y) {
  extern __shared__ __align__(128) float smem[];
  const int chunk = static_cast<int>(blockIdx.x), head = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x), lane = tid % kWarpSize, warp = tid / kWarpSize;
  const int P = p.P, N = p.N;
  const int t0 = chunk * tokens_per_chunk(p), count = min(tokens_per_chunk(p), tokens - t0);
  const OutputsLayout l = outputs_layout(p);
  const ChunkScalars s{smem + l.cum, smem + l.gamma, smem + l.c, smem + l.dt};
  const int ldn = stride_along(N), ldp = stride_across(P), ldm = stride_along(kChunkRows);
  float* q = smem + l.q;
  float* k = smem + l.k;
  float* v = smem + l.v;
  float* m = smem + l.m;
  float* yr = smem + l.y;
  float* angles = smem + l.theta;

  stage_chunk_inputs(p, proj, head, t0, count, kKeys | kQueries | kValues, k, q, ldn, v, ldp, angles,
                     smem + l.key_bias, smem + l.query_bias, tid);
  if (warp == 0) fill_chunk_scalars(p, proj, head, t0, count, tokens, s, lane);
  __pipeline_wait_prior(0);
  __syncthreads();
  finish_staging(p, head, count, start_angles + (static_cast<int64_t>(chunk) * p.H + head) * p.S, s, angles, v, ldp,
                 tid);
  // The pass's last chunk leaves the last token's rotated, biased key and raw x in the slot
  // for the next step's trapezoid term (the state passing has read the old ones).
  const bool last_chunk = t0 + count == tokens;
  transform_token_rows<R>(p, count, angles, nullptr, k, q, smem + l.key_bias, smem + l.query_bias, ldn,
                          last_chunk ? state + p.off_k + static_cast<int64_t>(head) * N : nullptr, count - 1, warp,
                          lane);
  __syncthreads();
  if (last_chunk) {
    const float* x_last = proj + static_cast<int64_t>(tokens - 1) * p.d_in_proj + p.E + static_cast<int64_t>(head) * P;
    for (int ch = tid; ch < P; ch += kChunkThreads) state[p.off_v + static_cast<int64_t>(head) * P + ch] = x_last[ch];
  }

  tf32_matmul<false, false>({q, ldn, 1}, {k, ldn, 1}, m, ldm, kChunkRows, kChunkRows, N, false, warp, lane);
  __syncthreads();  // K is dead from here: Y may take its place
  const float* s_start = chunk_states + (static_cast<int64_t>(chunk) * p.H + head) * P * N;
  tf32_matmul<false, false>({q, ldn, 1}, {s_start, N, 1}, yr, ldp, kChunkRows, P, N, false, warp, lane);
  __syncthreads();
  // Q is dead: the gate's z rows load into its place while the weights and M V go on.
  float* zs = smem + l.z;
  const int ldz = stride_along(P);
  copy_rows_async(zs, ldz, 1, proj + static_cast<int64_t>(t0) * p.d_in_proj + static_cast<int64_t>(head) * P,
                  p.d_in_proj, count, P, tid);
  __pipeline_commit();

  // The causal weights: e^(l_t - l_s) c_s before the diagonal, gamma_t on it (every rank pair
  // of the token), nothing after; and the inter-chunk term's e^(l_t), a warp a row.
  for_each_element(kChunkRows, kChunkRows, tid, [&](int row, int col) {
    const int t = row / R, u = col / R;
    float w = 0.0f;
    if (t < count) w = u < t ? expf(s.cum[t] - s.cum[u]) * s.c[u] : u == t ? s.gamma[t] : 0.0f;
    m[row * ldm + col] = round_to_tf32(m[row * ldm + col] * w);
  });
  for (int row = warp; row < kChunkRows; row += kChunkWarps) {
    const int t = row / R;
    const float decay = t < count ? expf(s.cum[t]) : 0.0f;
    for (int ch = lane; ch < P; ch += kWarpSize) yr[row * ldp + ch] *= decay;
  }
  __syncthreads();
  tf32_matmul<false, true>({m, ldm, 1}, {v, 1, ldp}, yr, ldp, kChunkRows, P, kChunkRows, true, warp, lane);
  __pipeline_wait_prior(0);
  __syncthreads();

  // A warp a token, all its ranks: y_r += D v_r, the optional RMSNorm over P, then the gate and
  // the sum over ranks, y[t, head, ch] = sum_r mo * y_r * silu(z * mz), in the output's type.
  const float d = p.D[head];
  const float* norm_w = p.out_norm + static_cast<int64_t>(head) * P;
#pragma unroll 1
  for (int t = warp; t < count; t += kChunkWarps) {
    float scale[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float* yrow = yr + (t * R + r) * ldp;
      const float* vrow = v + (t * R + r) * ldp;
      double sum_sq = 0.0;
      for (int ch = lane; ch < P; ch += kWarpSize) {
        const float val = yrow[ch] + d * vrow[ch];
        yrow[ch] = val;
        sum_sq += static_cast<double>(val) * val;
      }
      scale[r] = p.outproj_norm ? rms_scale(warp_sum(sum_sq), P) : 1.0f;
    }
    const float* z_row = zs + t * ldz;
    T* out = y + static_cast<int64_t>(t0 + t) * p.E + static_cast<int64_t>(head) * P;
    for (int ch = lane; ch < P; ch += kWarpSize) {
      const float z = z_row[ch];
      float acc = 0.0f;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float yv = yr[(t * R + r) * ldp + ch];
        if (p.outproj_norm) yv = yv * scale[r] * norm_w[ch];
        const int64_t w = (static_cast<int64_t>(head) * R + r) * P + ch;
        const float mz = p.mimo ? p.mimo_z[w] : 1.0f;
        const float mo = p.mimo ? p.mimo_o[w] : 1.0f;
        acc += mo * yv * silu(z * mz);
      }
      out[ch] = from_float<T>(acc);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Host side.

// Also: the state passing moves the layer's ssm state in 16-byte pieces.
bool shapes_fit(const Mamba3StepParams& p) {
  return step_params_valid(p) && p.P % kTile == 0 && p.N % kTile == 0 && (p.R == 1 || p.R == 2 || p.R == 4) &&
         p.off_ssm % 4 == 0;
}

size_t states_smem_bytes(const Mamba3StepParams& p) { return sizeof(float) * states_layout(p).total; }
size_t outputs_smem_bytes(const Mamba3StepParams& p) { return sizeof(float) * outputs_layout(p).total; }

// The workspace: angle starts [chunks, H, S] | chunk states [chunks, H, P, N] | chunk decay [chunks, H].
struct Workspace {
  float *angles, *chunk_states, *chunk_decay;
  size_t bytes;
};

size_t aligned_256(size_t bytes) { return (bytes + 255) / 256 * 256; }

Workspace carve(const Mamba3StepParams& p, int tokens, void* base) {
  const int chunks = chunk_count(p, tokens);
  const size_t angles = aligned_256(sizeof(float) * static_cast<size_t>(chunks) * p.H * p.S);
  const size_t states = aligned_256(sizeof(float) * static_cast<size_t>(chunks) * p.H * p.P * p.N);
  const size_t decay = aligned_256(sizeof(float) * static_cast<size_t>(chunks) * p.H);
  char* b = static_cast<char*>(base);
  return {reinterpret_cast<float*>(b), reinterpret_cast<float*>(b + angles),
          reinterpret_cast<float*>(b + angles + states), angles + states + decay};
}

template <int R, class T>
cudaError_t launch_outputs(const Mamba3StepParams& p, int tokens, int chunks, const float* proj, float* state, T* y,
                           const Workspace& ws, cudaStream_t stream) {
  const size_t smem = outputs_smem_bytes(p);
  if (const cudaError_t e = allow_shared_memory(chunk_outputs_kernel<R, T>, smem); e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(p.H));
  chunk_outputs_kernel<R, T><<<grid, kChunkThreads, smem, stream>>>(p, tokens, proj, ws.angles, ws.chunk_states, state, y);
  return cudaGetLastError();
}

// The chunk states, the state passing and the outputs, for MIMO rank R.
template <int R>
cudaError_t launch_chunk_kernels(const Mamba3StepParams& p, int tokens, int chunks, const float* proj, float* state,
                                 void* y, DeviceType y_type, const Workspace& ws, cudaStream_t stream) {
  const size_t states_smem = states_smem_bytes(p);
  if (const cudaError_t e = allow_shared_memory(chunk_states_kernel<R>, states_smem); e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(p.H));
  chunk_states_kernel<R><<<grid, kChunkThreads, states_smem, stream>>>(p, tokens, proj, ws.angles, ws.chunk_states,
                                                                        ws.chunk_decay);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const int64_t quads = static_cast<int64_t>(p.H) * p.P * p.N / 4;
  state_passing_kernel<<<static_cast<unsigned>((quads + kPassingThreads - 1) / kPassingThreads), kPassingThreads, 0,
                         stream>>>(p, chunks, proj, state, ws.chunk_states, ws.chunk_decay);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  switch (y_type) {
    case DeviceType::F32: return launch_outputs<R>(p, tokens, chunks, proj, state, static_cast<float*>(y), ws, stream);
    case DeviceType::F16: return launch_outputs<R>(p, tokens, chunks, proj, state, static_cast<__half*>(y), ws, stream);
    case DeviceType::BF16:
      return launch_outputs<R>(p, tokens, chunks, proj, state, static_cast<__nv_bfloat16*>(y), ws, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

bool chunked_prefill_fits(const Mamba3StepParams& p, int device) {
  if (!shapes_fit(p)) return false;
  int most = 0;
  if (cudaDeviceGetAttribute(&most, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess) return false;
  return states_smem_bytes(p) <= static_cast<size_t>(most) && outputs_smem_bytes(p) <= static_cast<size_t>(most);
}

size_t chunked_prefill_workspace_bytes(const Mamba3StepParams& p, int max_tokens) {
  return shapes_fit(p) && max_tokens > 0 ? carve(p, max_tokens, nullptr).bytes : 0;
}

cudaError_t mamba3_chunked_prefill(const Mamba3StepParams& p, int tokens, float* proj, float* state, void* y,
                                   DeviceType y_type, void* workspace, cudaStream_t stream) {
  if (!shapes_fit(p) || tokens < 0) return cudaErrorInvalidValue;
  if (tokens == 0) return cudaSuccess;
  if (!proj || !state || !y || !workspace) return cudaErrorInvalidValue;
  const Workspace ws = carve(p, tokens, workspace);
  const int chunks = chunk_count(p, tokens);

  const int64_t bc_rows = static_cast<int64_t>(tokens) * 2 * p.R * p.G;
  normalize_keys_queries_kernel<<<static_cast<unsigned>((bc_rows + kNormalizeWarps - 1) / kNormalizeWarps),
                                  kNormalizeWarps * kWarpSize, 0, stream>>>(p, tokens, proj);
  if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(p.H));
  if (p.S > 0) {
    const int threads = std::min(kTotalsGroups * p.S + kWarpSize - 1, 1024) / kWarpSize * kWarpSize;
    angle_totals_kernel<<<grid, threads, sizeof(double) * kTotalsGroups * p.S, stream>>>(p, tokens, proj, ws.angles);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    angle_starts_kernel<<<(p.H * p.S + kAngleThreads - 1) / kAngleThreads, kAngleThreads, 0, stream>>>(p, chunks, state,
                                                                                                   ws.angles);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  switch (p.R) {
    case 1: return launch_chunk_kernels<1>(p, tokens, chunks, proj, state, y, y_type, ws, stream);
    case 2: return launch_chunk_kernels<2>(p, tokens, chunks, proj, state, y, y_type, ws, stream);
    case 4: return launch_chunk_kernels<4>(p, tokens, chunks, proj, state, y, y_type, ws, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace m3::cuda
