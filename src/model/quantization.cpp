#include "model/quantization.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/float_convert.h"

namespace m3 {

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;     // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;    // rounds to >= 65520: inf
  if (abs < 0x38800000u) {                          // below 2^-14: subnormal half (or zero)
    float a;
    std::memcpy(&a, &abs, 4);
    // a * 2^24 in [0, 1024): rint rounds half to even in the default rounding mode.
    return sign | static_cast<uint16_t>(std::nearbyint(a * 0x1p24f));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

namespace {

// Q8: the largest magnitude of the group maps to +-127.
void quantize_group_q8(const float* w, int8_t* q, uint16_t* scale) {
  float amax = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i) amax = std::max(amax, std::fabs(w[i]));
  *scale = f32_to_f16(amax / 127.0f);
  const float d = f16_to_f32(*scale);
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < kQuantGroup; ++i)
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(w[i] * inv), -127.0f, 127.0f));
}

// Q4: the value of largest magnitude maps to the code -8 (so its sign picks the scale's),
// which spends all 16 codes; the byte layout pairs column j with column j + 16.
void quantize_group_q4(const float* w, uint8_t* q, uint16_t* scale) {
  float extreme = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i)
    if (std::fabs(w[i]) > std::fabs(extreme)) extreme = w[i];
  *scale = f32_to_f16(extreme / -8.0f);
  const float d = f16_to_f32(*scale);
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  auto code = [&](float v) { return static_cast<uint8_t>(std::clamp(std::nearbyint(v * inv) + 8.0f, 0.0f, 15.0f)); };
  for (int64_t j = 0; j < kQuantGroup / 2; ++j)
    q[j] = static_cast<uint8_t>(code(w[j]) | (code(w[j + kQuantGroup / 2]) << 4));
}

}  // namespace

void quantize_matrix(WeightType type, const float* src, int64_t rows, int64_t cols, void* data, uint16_t* scales) {
  const int64_t groups = rows * cols / kQuantGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const float* w = src + g * kQuantGroup;
    if (type == WeightType::Q8)
      quantize_group_q8(w, static_cast<int8_t*>(data) + g * kQuantGroup, scales + g);
    else
      quantize_group_q4(w, static_cast<uint8_t*>(data) + g * (kQuantGroup / 2), scales + g);
  }
}

}  // namespace m3
