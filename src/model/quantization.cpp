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

// The q4 scale search: the extreme value divided by -7, -7.5, ..., -11 (docs/QUANTIZATION.md
// has the measurement: finer or wider sets gain under 0.5% of weight error more).
constexpr int kQ4SearchSteps = 8;
constexpr float kQ4SearchFirst = 7.0f, kQ4SearchStep = 0.5f;

// Q8: the largest magnitude of the group maps to +-127. The scale is rounded up to the next
// f16 when rounding to nearest made it smaller, so no value needs a code beyond 127 and every
// element's error is at most half a step (also with subnormal f16 scales, whose rounding
// error is large).
void quantize_group_q8(const float* w, int8_t* q, uint16_t* scale) {
  float amax = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i) amax = std::max(amax, std::fabs(w[i]));
  *scale = f32_to_f16(amax / 127.0f);
  if (f16_to_f32(*scale) * 127.0f < amax) ++*scale;  // positive f16: the next bit pattern is the next value
  const float d = f16_to_f32(*scale);
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  for (int64_t i = 0; i < kQuantGroup; ++i)
    q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(w[i] * inv), -127.0f, 127.0f));
}

// Q4 codes of a group for the f16 scale `bits`, and their squared error. Columns j and j + 16
// share byte j (low and high nibble).
float q4_codes(const float* w, uint16_t bits, uint8_t* codes) {
  const float d = f16_to_f32(bits);
  const float inv = d != 0 ? 1.0f / d : 0.0f;
  float err = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i) {
    const float c = std::clamp(std::nearbyint(w[i] * inv), -8.0f, 7.0f);
    codes[i] = static_cast<uint8_t>(c + 8.0f);
    const float e = w[i] - c * d;
    err += e * e;
  }
  return err;
}

// Q4: 16 codes per group, -8 .. 7 times the scale. The plain choice maps the value of largest
// magnitude to -8 (its sign picks the scale's, so all 16 codes are used); when the other
// values sit well inside the range, a slightly smaller scale that clips the extreme a little
// gives the rest finer steps. So several scales around it are tried, each followed by the
// least-squares scale for the codes it gave, and the one with the least squared error (with
// the scale rounded to f16, as stored) is kept. The plain choice is among them, so the
// search never does worse than it.
void quantize_group_q4(const float* w, uint8_t* q, uint16_t* scale) {
  float extreme = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i)
    if (std::fabs(w[i]) > std::fabs(extreme)) extreme = w[i];
  uint8_t codes[kQuantGroup], trial[kQuantGroup];
  uint16_t best = extreme == 0 ? uint16_t{0} : f32_to_f16(extreme / -8.0f);  // +0 for a zero group
  float best_err = q4_codes(w, best, codes);
  auto consider = [&](uint16_t bits) {
    const float err = q4_codes(w, bits, trial);
    if (err < best_err) {
      best_err = err;
      best = bits;
      std::memcpy(codes, trial, sizeof codes);
    }
    return err;
  };
  for (int step = 0; step <= kQ4SearchSteps && extreme != 0; ++step) {
    const uint16_t bits = f32_to_f16(extreme / -(kQ4SearchFirst + kQ4SearchStep * static_cast<float>(step)));
    consider(bits);
    // The least-squares scale for these codes: sum(w c) / sum(c^2).
    q4_codes(w, bits, trial);
    float wc = 0, cc = 0;
    for (int64_t i = 0; i < kQuantGroup; ++i) {
      const float c = static_cast<float>(trial[i]) - 8.0f;
      wc += w[i] * c;
      cc += c * c;
    }
    if (cc > 0) consider(f32_to_f16(wc / cc));
  }
  *scale = best;
  for (int64_t j = 0; j < kQuantGroup / 2; ++j)
    q[j] = static_cast<uint8_t>(codes[j] | (codes[j + kQuantGroup / 2] << 4));
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
