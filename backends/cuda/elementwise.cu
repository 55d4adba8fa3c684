// The CUDA backend's row-wise and element-wise kernels around the matrix products: the
// embedding gather, RMSNorm, the gated MLP's SiLU gate and plain type conversion. Each
// writes the storage type the next matrix product reads (DeviceType); the math is the CPU
// backend's (backends/cpu/mamba3_scalar_math.h), the sum of squares kept in double.
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "backends/cuda/cuda_kernels.h"
#include "backends/cuda/device_math.cuh"
#include "backends/cuda/overlapped_launch.cuh"

namespace m3::cuda {
namespace {

constexpr int kRowThreads = 256;      // one block per row
// A decode step normalizes one or a few rows: a block of many threads per row keeps each
// thread's chain of loads short (the kernel is all latency at that size).
constexpr int kNormThreads = 1024;
constexpr int kNormKept = 4;  // elements a thread keeps in registers (rows up to 4096 wide)
// Many rows (prefill) take a smaller block a row: a cheaper block-wide sum, more rows an SM.
constexpr int kNormThreadsManyRows = 256;
constexpr int kNormKeptManyRows = 8;  // rows up to 2048 wide
constexpr int kNormManyRows = 64;
constexpr int kElementThreads = 256;  // grid-stride element loops
constexpr int kVector = 4;            // elements a thread in the vector paths (16-byte loads)
constexpr int kMaxGridRows = 65535;   // gridDim.y
constexpr int64_t kMaxElementBlocks = 1 << 16;

// Calls f(T{}) with T the storage type named by `type`; invalid types are an invalid value.
template <class F>
cudaError_t with_storage_type(DeviceType type, F&& f) {
  switch (type) {
    case DeviceType::F32: return f(float{});
    case DeviceType::F16: return f(__half{});
    case DeviceType::BF16: return f(__nv_bfloat16{});
  }
  return cudaErrorInvalidValue;
}

unsigned element_blocks(int64_t n) {
  const int64_t blocks = (n + kElementThreads - 1) / kElementThreads;
  return static_cast<unsigned>(blocks < kMaxElementBlocks ? blocks : kMaxElementBlocks);
}

// Block-wide sum; every thread gets the total. `scratch` holds one value per warp.
__device__ double block_sum(double v, double* scratch) {
  const int lane = static_cast<int>(threadIdx.x) % kWarpSize, warp = static_cast<int>(threadIdx.x) / kWarpSize;
  const int nwarps = static_cast<int>(blockDim.x) / kWarpSize;
  v = warp_sum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int w = 0; w < nwarps; ++w) total += scratch[w];
  return total;
}

template <class T>
__global__ void __launch_bounds__(kRowThreads) embed_rows_kernel(const T* table, int cols, const int32_t* tokens,
                                                                   float* out) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int64_t row = blockIdx.x;
  const T* src = table + static_cast<int64_t>(tokens[row]) * cols;
  float* dst = out + row * cols;
  for (int i = static_cast<int>(threadIdx.x); i < cols; i += static_cast<int>(blockDim.x)) dst[i] = to_float(src[i]);
}

template <class T, int kKept>
__global__ void __launch_bounds__(kNormThreads) rms_norm_rows_kernel(const float* __restrict__ x,
                                                                     const float* __restrict__ w, int cols,
                                                                     T* __restrict__ out) {
  __shared__ double scratch[kNormThreads / kWarpSize];
  const int tid = static_cast<int>(threadIdx.x), nthreads = static_cast<int>(blockDim.x);
  const int64_t row = blockIdx.x;
  const float* src = x + row * cols;
  T* dst = out + row * cols;
  // Rows of up to kKept * nthreads: each thread keeps its elements in registers, and
  // loads its weights before the wait for x (overlapped_launch.cuh). One trip to memory less
  // in a kernel that is all latency at decode.
  if (cols <= kKept * nthreads) {
    float wk[kKept], xk[kKept];
#pragma unroll
    for (int k = 0; k < kKept; ++k) {
      const int i = tid + k * nthreads;
      wk[k] = i < cols ? w[i] : 0.0f;
    }
    wait_for_previous_kernel();
    let_next_kernel_start();
    double sum_sq = 0.0;
#pragma unroll
    for (int k = 0; k < kKept; ++k) {
      const int i = tid + k * nthreads;
      xk[k] = i < cols ? src[i] : 0.0f;
      sum_sq += static_cast<double>(xk[k]) * xk[k];
    }
    const float scale = rms_scale(block_sum(sum_sq, scratch), cols);
#pragma unroll
    for (int k = 0; k < kKept; ++k) {
      const int i = tid + k * nthreads;
      if (i < cols) dst[i] = from_float<T>(xk[k] * scale * wk[k]);
    }
    return;
  }
  wait_for_previous_kernel();
  let_next_kernel_start();
  double sum_sq = 0.0;
  for (int i = tid; i < cols; i += nthreads) sum_sq += static_cast<double>(src[i]) * src[i];
  const float scale = rms_scale(block_sum(sum_sq, scratch), cols);
  for (int i = tid; i < cols; i += nthreads) dst[i] = from_float<T>(src[i] * scale * w[i]);
}

// Four values stored at once in T (16 or 8 bytes); dst aligned to that.
__device__ __forceinline__ void store4(float* dst, float a, float b, float c, float d) {
  *reinterpret_cast<float4*>(dst) = make_float4(a, b, c, d);
}
__device__ __forceinline__ void store4(__half* dst, float a, float b, float c, float d) {
  __half2* pair = reinterpret_cast<__half2*>(dst);
  pair[0] = __floats2half2_rn(a, b);
  pair[1] = __floats2half2_rn(c, d);
}
__device__ __forceinline__ void store4(__nv_bfloat16* dst, float a, float b, float c, float d) {
  __nv_bfloat162* pair = reinterpret_cast<__nv_bfloat162*>(dst);
  pair[0] = __floats2bfloat162_rn(a, b);
  pair[1] = __floats2bfloat162_rn(c, d);
}

// Whether kVector elements of x and of out at a time are aligned loads and stores, for
// arrays of n-element rows (or one array of n).
template <class T>
bool vectors_fit(const float* x, const T* out, int64_t n) {
  return n % kVector == 0 && reinterpret_cast<uintptr_t>(x) % (kVector * sizeof(float)) == 0 &&
         reinterpret_cast<uintptr_t>(out) % (kVector * sizeof(T)) == 0;
}

// Grid (pieces of kVector along a row, rows): no 64-bit division per element. vector: the
// 16-byte path (vectors_fit of h and out for rows of hid).
template <class T>
__global__ void __launch_bounds__(kElementThreads) gated_silu_kernel(const float* __restrict__ h, int rows, int hid,
                                                                     bool vector, T* __restrict__ out) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int j = (static_cast<int>(blockIdx.x) * kElementThreads + static_cast<int>(threadIdx.x)) * kVector;
  if (j >= hid) return;
  for (int row = static_cast<int>(blockIdx.y); row < rows; row += static_cast<int>(gridDim.y)) {
    const float* value = h + static_cast<int64_t>(row) * 2 * hid;
    T* dst = out + static_cast<int64_t>(row) * hid;
    if (vector) {
      const float4 a = *reinterpret_cast<const float4*>(value + j);
      const float4 g = *reinterpret_cast<const float4*>(value + hid + j);
      store4(dst + j, a.x * silu(g.x), a.y * silu(g.y), a.z * silu(g.z), a.w * silu(g.w));
    } else {
      for (int k = j; k < j + kVector && k < hid; ++k) dst[k] = from_float<T>(value[k] * silu(value[hid + k]));
    }
  }
}

// kVector elements a thread; vector: the 16-byte path (vectors_fit).
template <class T>
__global__ void __launch_bounds__(kElementThreads) convert_floats_kernel(const float* __restrict__ x, int64_t n,
                                                                         bool vector, T* __restrict__ out) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kElementThreads * kVector;
  for (int64_t i = (static_cast<int64_t>(blockIdx.x) * kElementThreads + threadIdx.x) * kVector; i < n; i += stride) {
    if (vector) {
      const float4 v = *reinterpret_cast<const float4*>(x + i);
      store4(out + i, v.x, v.y, v.z, v.w);
    } else {
      for (int64_t k = i; k < i + kVector && k < n; ++k) out[k] = from_float<T>(x[k]);
    }
  }
}

}  // namespace

cudaError_t embed_rows(const void* table, DeviceType type, int cols, const int32_t* tokens, int rows, float* out,
                       cudaStream_t stream) {
  if (cols <= 0 || rows < 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!table || !tokens || !out) return cudaErrorInvalidValue;
  return with_storage_type(type, [&](auto storage) {
    using T = decltype(storage);
    return launch_overlapped(embed_rows_kernel<T>, rows, kRowThreads, 0, stream, static_cast<const T*>(table), cols,
                             tokens, out);
  });
}

cudaError_t rms_norm_rows(const float* x, const float* w, int rows, int cols, void* out, DeviceType out_type,
                          cudaStream_t stream) {
  if (cols <= 0 || rows < 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!x || !w || !out) return cudaErrorInvalidValue;
  return with_storage_type(out_type, [&](auto storage) {
    using T = decltype(storage);
    if (rows >= kNormManyRows)
      return launch_overlapped(rms_norm_rows_kernel<T, kNormKeptManyRows>, rows, kNormThreadsManyRows, 0, stream, x,
                               w, cols, static_cast<T*>(out));
    return launch_overlapped(rms_norm_rows_kernel<T, kNormKept>, rows, kNormThreads, 0, stream, x, w, cols,
                             static_cast<T*>(out));
  });
}

cudaError_t gated_silu(const float* h, int rows, int hid, void* out, DeviceType out_type, cudaStream_t stream) {
  if (hid <= 0 || rows < 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!h || !out) return cudaErrorInvalidValue;
  return with_storage_type(out_type, [&](auto storage) {
    using T = decltype(storage);
    const int pieces = (hid + kVector - 1) / kVector;
    const dim3 grid(static_cast<unsigned>((pieces + kElementThreads - 1) / kElementThreads),
                    static_cast<unsigned>(rows < kMaxGridRows ? rows : kMaxGridRows));
    T* dst = static_cast<T*>(out);
    return launch_overlapped(gated_silu_kernel<T>, grid, kElementThreads, 0, stream, h, rows, hid,
                             vectors_fit(h, dst, hid), dst);
  });
}

cudaError_t convert_floats(const float* x, int64_t n, void* out, DeviceType out_type, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!x || !out) return cudaErrorInvalidValue;
  return with_storage_type(out_type, [&](auto storage) {
    using T = decltype(storage);
    T* dst = static_cast<T*>(out);
    return launch_overlapped(convert_floats_kernel<T>, element_blocks((n + kVector - 1) / kVector), kElementThreads,
                             0, stream, x, n, vectors_fit(x, dst, n), dst);
  });
}

}  // namespace m3::cuda
