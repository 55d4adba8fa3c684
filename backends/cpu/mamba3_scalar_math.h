// The scalar pieces of a Mamba-3 step that every CPU path computes the same way (spec
// §3-4): norms, activations, the per-head decay/trapezoid coefficients and the rotary
// angle update. Shared so that the fast path differs from the oracle only in its kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "model/model_config.h"

namespace m3::cpu {

constexpr float kNormEps = 1e-5f;  // every RMSNorm of the model (spec §1.1)
constexpr float kPi = std::numbers::pi_v<float>;
constexpr float kTwoPi = 2.0f * std::numbers::pi_v<float>;

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu(float x) { return x * sigmoid(x); }
// PyTorch's softplus: linear above the threshold 20.
inline float softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// out = x * rsqrt(mean(x^2) + eps) * w (out may alias x)
inline void rms_norm(const float* x, const float* w, int64_t n, float* out) {
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(n) + kNormEps));
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

// Angles are kept in [0, 2pi): the official prefill wraps them, and wrapping every step
// keeps float32 precision from draining away on long streams.
inline float wrap_angle(float phi) {
  phi = std::fmod(phi, kTwoPi);
  if (phi < 0) phi += kTwoPi;
  return phi >= kTwoPi ? 0.0f : phi;
}

// One head's step coefficients (spec §3.3, §4.2): h <- alpha h + beta (prev term) + gamma (this term).
struct HeadCoefficients {
  float dt, alpha, beta, gamma;
};

inline HeadCoefficients head_coefficients(const ModelConfig& c, float dd_dt, float dt_bias, float dd_a, float trap) {
  const float dt = softplus(dd_dt + dt_bias);
  const float f = c.a_activation == AActivation::HeavyTail ? (dd_a >= 0 ? 1.0f + dd_a : 1.0f / (1.0f - dd_a))
                                                          : softplus(dd_a);
  const float A = std::min(-f, static_cast<float>(-c.a_floor));
  const float alpha = std::exp(A * dt);
  const float lambda = sigmoid(trap);
  return {dt, alpha, (1.0f - lambda) * dt * alpha, lambda * dt};
}

// Data-dependent rotary angles: this token's increment comes before rotating it.
inline void advance_angles(float* phi, const float* theta, int64_t S, float dt) {
  for (int64_t i = 0; i < S; ++i) phi[i] = wrap_angle(phi[i] + kPi * std::tanh(theta[i]) * dt);
}

// Rotates v by the angles: SISO pairs (2i, 2i+1); MIMO pairs (i, i + N/2).
inline void rotate(float* v, const float* phi, int64_t S, int64_t N, bool mimo) {
  for (int64_t i = 0; i < S; ++i) {
    const int64_t a = mimo ? i : 2 * i;
    const int64_t b = mimo ? i + N / 2 : 2 * i + 1;
    const float cs = std::cos(phi[i]), sn = std::sin(phi[i]);
    const float va = v[a], vb = v[b];
    v[a] = va * cs - vb * sn;
    v[b] = va * sn + vb * cs;
  }
}

}  // namespace m3::cpu
