// x * y + z rounded once, on every instruction set that has a fused multiply-add.
// xsimd 8.1 has none for AVX-512 (it falls back to x * y + z), and whether the compiler
// then fuses depends on inlining: one dot product fused in one code path and not in
// another broke the kernels' promise of bit-identical results however rows are grouped.
// The kernels are built with -ffp-contract=off, so a multiply-add is fused here or nowhere.
#pragma once

#include <xsimd/xsimd.hpp>

#include "backends/cpu/simd/isa_traits.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace m3::cpu::simd {
namespace {

template <class A>
fbatch<A> fused_multiply_add(fbatch<A> x, fbatch<A> y, fbatch<A> z) {
#if defined(__AVX512F__)
  if constexpr (is_avx512<A>) return _mm512_fmadd_ps(x, y, z);
#endif
  return xsimd::fma(x, y, z);  // a real FMA for fma3<avx2> and NEON; x * y + z on SSE
}

}  // namespace
}  // namespace m3::cpu::simd
