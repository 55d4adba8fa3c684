// Matrix products for decode steps of a few sessions: a one-token step reads every weight
// once and does 2 flops per weight and session, so it is bound by memory bandwidth, and a
// tensor-core GEMM padded to 8+ columns wastes most of its time. Here one warp computes one
// output row at a time for all n inputs: its lanes stream the row in 16-byte pieces (8
// bf16/f16 or 4 fp32 weights), two rounds in flight, and multiply them with the fp32 inputs
// (read through the cache: every warp reads the same few rows of x). Activations stay fp32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/overlapped_launch.cuh"

namespace m3::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 8;       // 16-byte loads per lane and round (two rounds in flight)
constexpr int kBlocksPerSm = 2;  // registers for two rounds: 16 warps an SM, 128 KB in flight

// The 16-byte piece j of a row as floats (8 of them for 16-bit types, 4 for fp32).
template <DeviceType T>
struct Piece;

template <>
struct Piece<DeviceType::BF16> {
  static constexpr int kElems = 8;
  __device__ static void to_floats(const uint4& v, float* f) {
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&v);
    for (int i = 0; i < 4; ++i) {
      const float2 p = __bfloat1622float2(h[i]);
      f[2 * i] = p.x;
      f[2 * i + 1] = p.y;
    }
  }
};

template <>
struct Piece<DeviceType::F16> {
  static constexpr int kElems = 8;
  __device__ static void to_floats(const uint4& v, float* f) {
    const __half2* h = reinterpret_cast<const __half2*>(&v);
    for (int i = 0; i < 4; ++i) {
      const float2 p = __half22float2(h[i]);
      f[2 * i] = p.x;
      f[2 * i + 1] = p.y;
    }
  }
};

template <>
struct Piece<DeviceType::F32> {
  static constexpr int kElems = 4;
  __device__ static void to_floats(const uint4& v, float* f) {
    f[0] = __uint_as_float(v.x);
    f[1] = __uint_as_float(v.y);
    f[2] = __uint_as_float(v.z);
    f[3] = __uint_as_float(v.w);
  }
};

// One round of a row: the 16-byte pieces j = j0 + u * 32 (u < kUnroll) of lane j0 % 32.
__device__ __forceinline__ void load_round(const uint4* __restrict__ row, int j0, int pieces, uint4* v) {
  for (int u = 0; u < kUnroll; ++u) {
    const int j = j0 + u * kWarpSize;
    v[u] = j < pieces ? __ldcs(row + j) : make_uint4(0, 0, 0, 0);  // streamed once: no caching
  }
}

template <DeviceType T, int NB>
__device__ __forceinline__ void accumulate_round(const uint4* v, int j0, int pieces, const float* __restrict__ x,
                                                 int x_stride, float* acc) {
  constexpr int E = Piece<T>::kElems;
  for (int u = 0; u < kUnroll; ++u) {
    const int j = j0 + u * kWarpSize;
    if (j >= pieces) break;
    float f[E];
    Piece<T>::to_floats(v[u], f);
    for (int b = 0; b < NB; ++b) {
      const float4* xb = reinterpret_cast<const float4*>(x + static_cast<int64_t>(b) * x_stride + j * E);
      for (int e = 0; e < E / 4; ++e) {
        const float4 xv = __ldg(xb + e);
        acc[b] = fmaf(f[4 * e], xv.x, acc[b]);
        acc[b] = fmaf(f[4 * e + 1], xv.y, acc[b]);
        acc[b] = fmaf(f[4 * e + 2], xv.z, acc[b]);
        acc[b] = fmaf(f[4 * e + 3], xv.w, acc[b]);
      }
    }
  }
}

// A grid that fits the GPU at once; each warp walks its rows (warp, warp + all warps, ...)
// round by round, loading the next round while it multiplies the current one, so memory
// never waits for a new wave of blocks. A row's sums run in the same order whatever n and
// the grid are: results do not depend on the batch (MAMBA3RT_CUDA_BATCH_INVARIANT).
template <DeviceType T, int NB>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarpSize, kBlocksPerSm)
    small_batch_matmul_kernel(const uint4* __restrict__ w, int rows, int pieces, const float* __restrict__ x,
                              int x_stride, float* __restrict__ y, int y_stride, float beta) {
  constexpr int kGroup = kWarpSize * kUnroll;  // pieces a warp loads per round
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize;
  const int warps = static_cast<int>(gridDim.x) * kWarpsPerBlock;
  const int rounds = (pieces + kGroup - 1) / kGroup;
  int row = static_cast<int>(blockIdx.x) * kWarpsPerBlock + static_cast<int>(threadIdx.x) / kWarpSize, round = 0;
  if (row >= rows) return;
  // The weights depend on no earlier kernel: the first round is loaded before the wait for
  // the inputs (overlapped_launch.cuh).
  const uint4* first = w + static_cast<int64_t>(row) * pieces;
  uint4 current[kUnroll];
  load_round(first, lane, pieces, current);
  // The rest of the row towards L2 while the previous kernel still runs. (Prefetching all
  // of a warp's rows when the matrix fits L2 measured slower on the H100: 1.61 vs 1.56 ms.)
  constexpr int kLinePieces = 8;  // 128-byte lines
  for (int j = kGroup + lane * kLinePieces; j < pieces; j += kWarpSize * kLinePieces)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(first + j));
  wait_for_previous_kernel();
  let_next_kernel_start();
  float acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = 0.0f;
  for (;;) {
    int next_row = row, next_round = round + 1;
    if (next_round == rounds) {
      next_row += warps;
      next_round = 0;
    }
    const bool more = next_row < rows;
    uint4 next[kUnroll];
    if (more) load_round(w + static_cast<int64_t>(next_row) * pieces, next_round * kGroup + lane, pieces, next);
    accumulate_round<T, NB>(current, round * kGroup + lane, pieces, x, x_stride, acc);
    if (round == rounds - 1) {
      for (int b = 0; b < NB; ++b) {
        float s = acc[b];
        for (int offset = kWarpSize / 2; offset > 0; offset /= 2) s += __shfl_xor_sync(kFullWarp, s, offset);
        if (lane == 0) {
          float* out = y + static_cast<int64_t>(b) * y_stride + row;
          *out = beta == 0.0f ? s : s + beta * *out;
        }
        acc[b] = 0.0f;
      }
    }
    if (!more) break;
    row = next_row;
    round = next_round;
    for (int u = 0; u < kUnroll; ++u) current[u] = next[u];
  }
}

// How many blocks of `kernel` the current GPU holds at once (at least one).
template <class Kernel>
int resident_blocks(Kernel kernel) {
  int device = 0, sms = 0, per_sm = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWarpsPerBlock * kWarpSize, 0) != cudaSuccess)
    return 1;
  return std::max(1, sms * per_sm);
}

template <DeviceType T, int NB>
cudaError_t launch_rows(const uint4* w, int rows, int pieces, const float* x, int x_stride, float* y, int y_stride,
                        float beta, cudaStream_t stream) {
  const int wanted = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  const dim3 grid(std::min(wanted, resident_blocks(small_batch_matmul_kernel<T, NB>))),
      block(kWarpsPerBlock * kWarpSize);
  return launch_overlapped(small_batch_matmul_kernel<T, NB>, grid, block, 0, stream, w, rows, pieces, x, x_stride, y,
                           y_stride, beta);
}

template <DeviceType T>
cudaError_t launch(const void* w, int rows, int cols, const float* x, int x_stride, int n, float* y, int y_stride,
                   float beta, cudaStream_t stream) {
  const int pieces = cols / Piece<T>::kElems;
  const auto* wp = static_cast<const uint4*>(w);
  switch (n) {
    case 1: return launch_rows<T, 1>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 2: return launch_rows<T, 2>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 3: return launch_rows<T, 3>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 4: return launch_rows<T, 4>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 5: return launch_rows<T, 5>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 6: return launch_rows<T, 6>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    case 7: return launch_rows<T, 7>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
    default: return launch_rows<T, 8>(wp, rows, pieces, x, x_stride, y, y_stride, beta, stream);
  }
}

}  // namespace

bool small_batch_matmul_fits(DeviceType type, int cols, int x_stride, int n) {
  const int elems = type == DeviceType::F32 ? 4 : 8;
  return n >= 1 && n <= kSmallBatchMaxRows && cols % elems == 0 && cols % 4 == 0 && x_stride % 4 == 0;
}

cudaError_t small_batch_matmul(const void* w, DeviceType type, int rows, int cols, const float* x, int x_stride,
                               int n, float* y, int y_stride, float beta, cudaStream_t stream) {
  if (!small_batch_matmul_fits(type, cols, x_stride, n)) return cudaErrorInvalidValue;
  switch (type) {
    case DeviceType::BF16: return launch<DeviceType::BF16>(w, rows, cols, x, x_stride, n, y, y_stride, beta, stream);
    case DeviceType::F16: return launch<DeviceType::F16>(w, rows, cols, x, x_stride, n, y, y_stride, beta, stream);
    case DeviceType::F32: return launch<DeviceType::F32>(w, rows, cols, x, x_stride, n, y, y_stride, beta, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace m3::cuda
