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
constexpr int kElementThreads = 256;  // grid-stride element loops
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

template <class T>
__global__ void __launch_bounds__(kNormThreads) rms_norm_rows_kernel(const float* __restrict__ x,
                                                                     const float* __restrict__ w, int cols,
                                                                     T* __restrict__ out) {
  __shared__ double scratch[kNormThreads / kWarpSize];
  const int tid = static_cast<int>(threadIdx.x), nthreads = static_cast<int>(blockDim.x);
  const int64_t row = blockIdx.x;
  const float* src = x + row * cols;
  T* dst = out + row * cols;
  // Rows of up to kNormKept * nthreads: each thread keeps its elements in registers, and
  // loads its weights before the wait for x (overlapped_launch.cuh). One trip to memory less
  // in a kernel that is all latency at decode.
  if (cols <= kNormKept * nthreads) {
    float wk[kNormKept], xk[kNormKept];
    for (int k = 0; k < kNormKept; ++k) {
      const int i = tid + k * nthreads;
      wk[k] = i < cols ? w[i] : 0.0f;
    }
    wait_for_previous_kernel();
    let_next_kernel_start();
    double sum_sq = 0.0;
    for (int k = 0; k < kNormKept; ++k) {
      const int i = tid + k * nthreads;
      xk[k] = i < cols ? src[i] : 0.0f;
      sum_sq += static_cast<double>(xk[k]) * xk[k];
    }
    const float scale = rms_scale(block_sum(sum_sq, scratch), cols);
    for (int k = 0; k < kNormKept; ++k) {
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

// Element-parallel over all rows (a decode step has one row of thousands of elements).
template <class T>
__global__ void __launch_bounds__(kElementThreads) gated_silu_kernel(const float* __restrict__ h, int64_t rows,
                                                                     int hid, T* __restrict__ out) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int64_t n = rows * hid;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / hid, j = i % hid;
    const float* value = h + row * 2 * hid;
    out[i] = from_float<T>(value[j] * silu(value[hid + j]));
  }
}

template <class T>
__global__ void __launch_bounds__(kElementThreads) convert_floats_kernel(const float* x, int64_t n, T* out) {
  wait_for_previous_kernel();
  let_next_kernel_start();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = from_float<T>(x[i]);
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
    return launch_overlapped(rms_norm_rows_kernel<T>, rows, kNormThreads, 0, stream, x, w, cols, static_cast<T*>(out));
  });
}

cudaError_t gated_silu(const float* h, int rows, int hid, void* out, DeviceType out_type, cudaStream_t stream) {
  if (hid <= 0 || rows < 0) return cudaErrorInvalidValue;
  if (rows == 0) return cudaSuccess;
  if (!h || !out) return cudaErrorInvalidValue;
  return with_storage_type(out_type, [&](auto storage) {
    using T = decltype(storage);
    const int64_t n = static_cast<int64_t>(rows) * hid;
    return launch_overlapped(gated_silu_kernel<T>, element_blocks(n), kElementThreads, 0, stream, h,
                             static_cast<int64_t>(rows), hid, static_cast<T*>(out));
  });
}

cudaError_t convert_floats(const float* x, int64_t n, void* out, DeviceType out_type, cudaStream_t stream) {
  if (n < 0) return cudaErrorInvalidValue;
  if (n == 0) return cudaSuccess;
  if (!x || !out) return cudaErrorInvalidValue;
  return with_storage_type(out_type, [&](auto storage) {
    using T = decltype(storage);
    return launch_overlapped(convert_floats_kernel<T>, element_blocks(n), kElementThreads, 0, stream, x, n,
                             static_cast<T*>(out));
  });
}

}  // namespace m3::cuda
