// Matrix products for decode steps of a few sessions: a one-token step reads every weight
// once and does 2 flops per weight and session, so it is bound by memory bandwidth, and a
// tensor-core GEMM padded to 8+ columns wastes most of its time. Here one warp computes one
// output row for all n inputs: its lanes stream the row in 16-byte pieces (8 bf16/f16 or 4
// fp32 weights), several in flight, and multiply them with the fp32 inputs (read through the
// cache: every warp reads the same few rows of x). Activations stay fp32.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_math.cuh"

namespace m3::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kUnroll = 8;  // 16-byte loads in flight per lane

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

template <DeviceType T, int NB>
__global__ void __launch_bounds__(kWarpsPerBlock* kWarpSize)
    small_batch_matmul_kernel(const uint4* __restrict__ w, int rows, int pieces, const float* __restrict__ x,
                              int x_stride, float* __restrict__ y, int y_stride, float beta) {
  constexpr int E = Piece<T>::kElems;
  const int lane = threadIdx.x % kWarpSize;
  const int row = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const uint4* wr = w + static_cast<int64_t>(row) * pieces;
  float acc[NB];
  for (int b = 0; b < NB; ++b) acc[b] = 0.0f;
  for (int j0 = lane; j0 < pieces; j0 += kWarpSize * kUnroll) {
    uint4 v[kUnroll];
    for (int u = 0; u < kUnroll; ++u) {
      const int j = j0 + u * kWarpSize;
      v[u] = j < pieces ? __ldcs(wr + j) : make_uint4(0, 0, 0, 0);  // streamed once: no caching
    }
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
  for (int b = 0; b < NB; ++b) {
    float s = acc[b];
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) s += __shfl_xor_sync(kFullWarp, s, offset);
    if (lane == 0) {
      float* out = y + static_cast<int64_t>(b) * y_stride + row;
      *out = beta == 0.0f ? s : s + beta * *out;
    }
  }
}

template <DeviceType T>
cudaError_t launch(const void* w, int rows, int cols, const float* x, int x_stride, int n, float* y, int y_stride,
                   float beta, cudaStream_t stream) {
  const int pieces = cols / Piece<T>::kElems;
  const dim3 grid((rows + kWarpsPerBlock - 1) / kWarpsPerBlock), block(kWarpsPerBlock * kWarpSize);
  const auto* wp = static_cast<const uint4*>(w);
  switch (n) {
    case 1: small_batch_matmul_kernel<T, 1><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 2: small_batch_matmul_kernel<T, 2><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 3: small_batch_matmul_kernel<T, 3><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 4: small_batch_matmul_kernel<T, 4><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 5: small_batch_matmul_kernel<T, 5><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 6: small_batch_matmul_kernel<T, 6><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    case 7: small_batch_matmul_kernel<T, 7><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
    default: small_batch_matmul_kernel<T, 8><<<grid, block, 0, stream>>>(wp, rows, pieces, x, x_stride, y, y_stride, beta); break;
  }
  return cudaGetLastError();
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
