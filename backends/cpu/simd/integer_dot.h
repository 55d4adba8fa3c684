// Integer dot products for the quantized weight types, per instruction set. The activations
// are quantized to int16 per group of kQuantGroup columns (kernels_impl.h); one group's
// weight codes (int8, or the 4-bit codes minus 8) widened to int16 then multiply them with
// pmaddwd-style instructions into int32 lanes. Every integer sum is exact, so the result
// depends only on the lane count, not on how rows and inputs are tiled.
// Included only by the per-arch kernel translation units.
#pragma once

#include <cstdint>

#include "backends/cpu/simd/weight_loads.h"
#include "model/weight_type.h"

namespace m3::cpu::simd {
namespace {

template <class A>
using i32batch = xsimd::batch<int32_t, A>;

// The native integer register of each vector width (a specialization per width: vector
// types lose their attributes as template arguments of std::conditional).
template <std::size_t Bytes>
struct NativeIntReg;
#if defined(__x86_64__) || defined(__i386__)
template <>
struct NativeIntReg<16> {
  using type = __m128i;
};
template <>
struct NativeIntReg<32> {
  using type = __m256i;
};
template <>
struct NativeIntReg<64> {
  using type = __m512i;
};
#elif defined(__aarch64__)
template <>
struct NativeIntReg<16> {
  using type = int16x8_t;
};
#endif

// The native register holding int16 lanes, and how many cover one group of 32 columns.
template <class A>
struct Int16Reg {
  using type = typename NativeIntReg<sizeof(fbatch<A>)>::type;
  static constexpr int lanes = static_cast<int>(sizeof(type) / 2);
  static constexpr int per_group = static_cast<int>(kQuantGroup) / lanes;
};

template <class A>
using i16reg = typename Int16Reg<A>::type;

// `lanes` int16 values from memory.
template <class A>
i16reg<A> load_i16(const int16_t* p) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A>) return _mm512_loadu_si512(p);
  else if constexpr (is_avx2<A>) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  else return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
#elif defined(__aarch64__)
  return vld1q_s16(p);
#endif
}

// Lane i of the result: a[2i] b[2i] + a[2i + 1] b[2i + 1], exact in int32.
template <class A>
i32batch<A> madd_i16(i16reg<A> a, i16reg<A> b) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A>) return _mm512_madd_epi16(a, b);
  else if constexpr (is_avx2<A>) return _mm256_madd_epi16(a, b);
  else return _mm_madd_epi16(a, b);
#elif defined(__aarch64__)
  return vpaddq_s32(vmull_s16(vget_low_s16(a), vget_low_s16(b)), vmull_high_s16(a, b));
#endif
}

// One group's 32 weight codes as int16, in column order, in Int16Reg<A>::per_group registers.
// Q8: the int8 codes. Q4 (layout in model_weights.h): byte j holds column j (low nibble) and
// column 16 + j (high nibble); the code is the nibble minus 8.
template <class A, WeightType T>
void decode_group(const uint8_t* p, i16reg<A>* out) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (T == WeightType::Q8) {
    if constexpr (is_avx512<A>) {
      out[0] = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else if constexpr (is_avx2<A>) {
      out[0] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      out[1] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    } else {
      for (int h = 0; h < 2; ++h) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * h));
        // Each byte into the top of a 16-bit lane, then an arithmetic shift down (SSE2).
        out[2 * h] = _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8);
        out[2 * h + 1] = _mm_srai_epi16(_mm_unpackhi_epi8(v, v), 8);
      }
    }
  } else {
    if constexpr (is_avx512<A> || is_avx2<A>) {
      const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      const __m256i eight = _mm256_set1_epi16(8);
      const __m256i lo = _mm256_sub_epi16(_mm256_and_si256(v, _mm256_set1_epi16(15)), eight);
      const __m256i hi = _mm256_sub_epi16(_mm256_srli_epi16(v, 4), eight);
      if constexpr (is_avx512<A>) {
        out[0] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      } else {
        out[0] = lo;
        out[1] = hi;
      }
    } else {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i zero = _mm_setzero_si128(), eight = _mm_set1_epi16(8), mask = _mm_set1_epi16(15);
      const __m128i w0 = _mm_unpacklo_epi8(v, zero), w1 = _mm_unpackhi_epi8(v, zero);
      out[0] = _mm_sub_epi16(_mm_and_si128(w0, mask), eight);
      out[1] = _mm_sub_epi16(_mm_and_si128(w1, mask), eight);
      out[2] = _mm_sub_epi16(_mm_srli_epi16(w0, 4), eight);
      out[3] = _mm_sub_epi16(_mm_srli_epi16(w1, 4), eight);
    }
  }
#elif defined(__aarch64__)
  if constexpr (T == WeightType::Q8) {
    for (int h = 0; h < 2; ++h) {
      const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(p) + 16 * h);
      out[2 * h] = vmovl_s8(vget_low_s8(v));
      out[2 * h + 1] = vmovl_high_s8(v);
    }
  } else {
    const uint8x16_t v = vld1q_u8(p);
    const int8x16_t eight = vdupq_n_s8(8);
    const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(15))), eight);
    const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
    out[0] = vmovl_s8(vget_low_s8(lo));
    out[1] = vmovl_high_s8(lo);
    out[2] = vmovl_s8(vget_low_s8(hi));
    out[3] = vmovl_high_s8(hi);
  }
#endif
}

}  // namespace
}  // namespace m3::cpu::simd
