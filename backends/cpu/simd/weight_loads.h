// Loading weights of every storage type as float32 SIMD batches, per instruction set.
// xsimd 8.1 has no f16/bf16/int8-to-float conversions of its own, so each arch gets the
// few intrinsics that do them; everything else in the kernels is plain xsimd.
// Included only by the per-arch kernel translation units (kernels_<arch>.cpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "backends/cpu/simd/fused_multiply_add.h"
#include "backends/cpu/simd/isa_traits.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace m3::cpu::simd {
namespace {  // internal linkage: each arch's TU has its own copy (no ODR merging across -m flags)

// f16 -> f32 without F16C: rebias the exponent with one multiply (which also normalizes
// subnormals), then patch infinities/NaNs and the sign. `h` holds one half per 32-bit lane.
template <class A>
fbatch<A> f16_bits_to_f32(xsimd::batch<uint32_t, A> h) {
  using ubatch = xsimd::batch<uint32_t, A>;
  const ubatch sign = (h & ubatch(0x8000u)) << 16;
  const ubatch exp_mant = (h & ubatch(0x7fffu)) << 13;
  fbatch<A> f = xsimd::bitwise_cast<fbatch<A>>(exp_mant) * fbatch<A>(0x1p112f);
  const auto inf_nan = (h & ubatch(0x7c00u)) == ubatch(0x7c00u);
  const ubatch bits = xsimd::select(inf_nan, exp_mant | ubatch(0x7f800000u), xsimd::bitwise_cast<ubatch>(f));
  return xsimd::bitwise_cast<fbatch<A>>(bits | sign);
}

// Widens fbatch<A>::size uint16 values to uint32 lanes (no over-read).
template <class A>
xsimd::batch<uint32_t, A> widen_u16(const uint16_t* p) {
  constexpr std::size_t W = fbatch<A>::size;
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A>) {
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  } else if constexpr (is_avx2<A>) {
    return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  } else if constexpr (is_sse<A>) {
    return _mm_unpacklo_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), _mm_setzero_si128());
  }
#elif defined(__aarch64__)
  if constexpr (W == 4) return vmovl_u16(vld1_u16(p));
#endif
  alignas(64) uint32_t tmp[W];
  for (std::size_t i = 0; i < W; ++i) tmp[i] = p[i];
  return xsimd::batch<uint32_t, A>::load_aligned(tmp);
}

// Widens fbatch<A>::size bytes to 32-bit lanes, signed or unsigned (no over-read).
template <class A, bool Signed>
xsimd::batch<int32_t, A> widen_u8(const uint8_t* p) {
  constexpr std::size_t W = fbatch<A>::size;
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A>) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return Signed ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
  } else if constexpr (is_avx2<A>) {
    const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    return Signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
  } else if constexpr (is_sse<A>) {
    int32_t word;
    std::memcpy(&word, p, 4);
    const __m128i v = _mm_cvtsi32_si128(word);
    // Each byte into the top of a 32-bit lane, then shift down (arithmetic keeps the sign).
    const __m128i top = _mm_unpacklo_epi16(_mm_setzero_si128(), _mm_unpacklo_epi8(_mm_setzero_si128(), v));
    return Signed ? _mm_srai_epi32(top, 24) : _mm_srli_epi32(top, 24);
  }
#elif defined(__aarch64__)
  if constexpr (W == 4) {
    uint32_t word;
    std::memcpy(&word, p, 4);
    const uint8x8_t v = vreinterpret_u8_u32(vdup_n_u32(word));
    if constexpr (Signed) return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(v))));
    else return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(v))));
  }
#endif
  alignas(64) int32_t tmp[W];
  for (std::size_t i = 0; i < W; ++i) tmp[i] = Signed ? static_cast<int8_t>(p[i]) : p[i];
  return xsimd::batch<int32_t, A>::load_aligned(tmp);
}

template <class A>
fbatch<A> load_bf16(const uint16_t* p) {
  return xsimd::bitwise_cast<fbatch<A>>(widen_u16<A>(p) << 16);
}

template <class A>
fbatch<A> load_f16(const uint16_t* p) {
  // The fallback sits in the last else: instantiating it for AVX-512 breaks -O0 builds
  // (xsimd's integer select there uses intrinsics that GCC defines as macros without -O).
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A>) return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  else if constexpr (is_avx2<A>) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  else return f16_bits_to_f32<A>(widen_u16<A>(p));
#elif defined(__aarch64__)
  if constexpr (fbatch<A>::size == 4) return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
  else return f16_bits_to_f32<A>(widen_u16<A>(p));
#else
  return f16_bits_to_f32<A>(widen_u16<A>(p));
#endif
}

template <class A>
fbatch<A> load_i8(const int8_t* p) {
  return xsimd::batch_cast<float>(widen_u8<A, true>(reinterpret_cast<const uint8_t*>(p)));
}

// Q4: fbatch<A>::size bytes at byte offset j (< 16) of a group give the columns j.. (low
// nibbles) and 16 + j.. (high nibbles) as the raw codes 0..15 (the zero point 8 is the caller's).
template <class A>
void load_q4_codes(const uint8_t* p, fbatch<A>& low, fbatch<A>& high) {
  using ibatch = xsimd::batch<int32_t, A>;
  const ibatch v = widen_u8<A, false>(p);
  low = xsimd::batch_cast<float>(v & ibatch(15));
  high = xsimd::batch_cast<float>(v >> 4);
}

// The Q4 weights (u - 8) * scale as one FMA, u * scale + (-8 * scale): -8 * scale is exact
// and the FMA rounds once, so this is bit-identical to rounding (u - 8) * scale.
template <class A>
void load_q4(const uint8_t* p, fbatch<A> scale, fbatch<A> minus_8_scale, fbatch<A>& low, fbatch<A>& high) {
  load_q4_codes<A>(p, low, high);
  low = fused_multiply_add(low, scale, minus_8_scale);
  high = fused_multiply_add(high, scale, minus_8_scale);
}

// Scalar f16 -> f32 for the per-group scales and tails: one F16C instruction where the
// arch has it, else the same rebias trick as above.
template <class A>
float f16_scale(uint16_t h) {
#if defined(__x86_64__) || defined(__i386__)
  if constexpr (is_avx512<A> || is_avx2<A>) return _cvtsh_ss(h);
#endif
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp_mant = (h & 0x7fffu) << 13;
  float f;
  std::memcpy(&f, &exp_mant, 4);
  f *= 0x1p112f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((h & 0x7c00u) == 0x7c00u) bits = exp_mant | 0x7f800000u;
  bits |= sign;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace
}  // namespace m3::cpu::simd
