// Device versions of the scalar math every Mamba-3 step shares (spec §3-4), written to
// round like backends/cpu/mamba3_scalar_math.h: accurate expf/log1pf/tanhf/fmodf, never
// the fast-math intrinsics, so the CUDA backend tracks the CPU one to float rounding.
// Also the warp reductions and the storage-type conversions the kernels share, and the
// shared-memory opt-in their launchers share.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>

namespace m3::cuda {

constexpr float kNormEps = 1e-5f;  // every RMSNorm of the model (spec §1.1)
constexpr double kPiDouble = 3.14159265358979323846;
constexpr float kPi = static_cast<float>(kPiDouble);
constexpr float kTwoPi = 2.0f * kPi;
constexpr unsigned kFullWarp = 0xffffffffu;
constexpr int kWarpSize = 32;

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ float silu(float x) { return x * sigmoid(x); }
// PyTorch's softplus: linear above the threshold 20.
__device__ __forceinline__ float softplus(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

// Angles are kept in [0, 2pi), as on the CPU: wrapping every step keeps float32 precision.
__device__ __forceinline__ float wrap_angle(float phi) {
  phi = fmodf(phi, kTwoPi);
  if (phi < 0.0f) phi += kTwoPi;
  return phi >= kTwoPi ? 0.0f : phi;
}

// sin and cos of a wrapped angle (|phi| up to a few hundred), to about 1 ulp. sincosf would do,
// but its huge-argument path keeps a scratch array in local memory, which would give every
// kernel that rotates a stack frame. Quadrant by a three-part pi/2 (Cody-Waite, exact with
// fma for small quadrant counts), then the Taylor series on [-pi/4, pi/4] to terms below 1e-11.
__device__ __forceinline__ void sincos_of_angle(float phi, float* sin_out, float* cos_out) {
  constexpr float kTwoOverPi = 0x1.45f306p-1f;
  constexpr float kHalfPiHi = 0x1.921fb6p+0f, kHalfPiMid = -0x1.777a5cp-25f, kHalfPiLo = -0x1.ee59dap-50f;
  const float quadrant = rintf(phi * kTwoOverPi);
  float r = fmaf(-quadrant, kHalfPiHi, phi);
  r = fmaf(-quadrant, kHalfPiMid, r);
  r = fmaf(-quadrant, kHalfPiLo, r);
  const float r2 = r * r;
  float ps = 1.0f / 39916800.0f;  // 1/11!
  ps = fmaf(ps, -r2, 1.0f / 362880.0f);
  ps = fmaf(ps, -r2, 1.0f / 5040.0f);
  ps = fmaf(ps, -r2, 1.0f / 120.0f);
  ps = fmaf(ps, -r2, 1.0f / 6.0f);
  const float s = fmaf(r * r2, -ps, r);
  float pc = 1.0f / 479001600.0f;  // 1/12!
  pc = fmaf(pc, -r2, 1.0f / 3628800.0f);
  pc = fmaf(pc, -r2, 1.0f / 40320.0f);
  pc = fmaf(pc, -r2, 1.0f / 720.0f);
  pc = fmaf(pc, -r2, 1.0f / 24.0f);
  pc = fmaf(pc, r2, -0.5f);
  const float c = fmaf(r2, pc, 1.0f);
  switch (static_cast<int>(quadrant) & 3) {
    case 0: *sin_out = s, *cos_out = c; break;
    case 1: *sin_out = c, *cos_out = -s; break;
    case 2: *sin_out = -s, *cos_out = -c; break;
    default: *sin_out = -c, *cos_out = s; break;
  }
}

// The RMSNorm scale 1/sqrt(mean(x^2) + eps) from a sum of squares kept in double, as the CPU
// does; double rsqrt is within an ulp of 1/sqrt in double, far below the float rounding after.
__device__ __forceinline__ float rms_scale(double sum_sq, int n) {
  return static_cast<float>(rsqrt(sum_sq / static_cast<double>(n) + static_cast<double>(kNormEps)));
}

// One head's rates for one token (spec §3.3, §4.4): dt, the log-decay a = A dt (alpha =
// exp(a)), the current input's weight gamma = lambda dt and mu = (1 - lambda) dt (beta = mu alpha).
struct HeadRates {
  float dt, log_decay, gamma, mu;
};

__device__ __forceinline__ HeadRates head_rates(bool heavy_tail, float a_floor, float dd_dt, float dt_bias, float dd_a,
                                                float trap) {
  const float dt = softplus(dd_dt + dt_bias);
  const float f = heavy_tail ? (dd_a >= 0.0f ? 1.0f + dd_a : 1.0f / (1.0f - dd_a)) : softplus(dd_a);
  const float a = fminf(-f, -a_floor);
  const float lambda = sigmoid(trap);
  return {dt, a * dt, lambda * dt, (1.0f - lambda) * dt};
}

// One head's step coefficients (spec §4.2): h <- alpha h + beta (prev term) + gamma (this term).
struct HeadCoefficients {
  float dt, alpha, beta, gamma;
};

__device__ __forceinline__ HeadCoefficients head_coefficients(bool heavy_tail, float a_floor, float dd_dt,
                                                              float dt_bias, float dd_a, float trap) {
  const HeadRates r = head_rates(heavy_tail, a_floor, dd_dt, dt_bias, dd_a, trap);
  const float alpha = expf(r.log_decay);
  return {r.dt, alpha, r.mu * alpha, r.gamma};
}

// Butterfly sums: every lane ends with the warp's total.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullWarp, v, offset);
  return v;
}

// Storage types of weight tables and matrix-product inputs (DeviceType), to and from fp32;
// narrowing rounds to nearest even.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Kernels asking for more than the default 48 KB of dynamic shared memory must say so first.
template <class Kernel>
cudaError_t allow_shared_memory(Kernel kernel, size_t bytes) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
}

}  // namespace m3::cuda
