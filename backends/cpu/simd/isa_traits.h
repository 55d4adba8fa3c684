// What the kernels ask of an xsimd arch A: its float batch, which instruction set family it
// is, and how many vector registers it has. Included only by the per-arch kernel headers.
#pragma once

#include <type_traits>

#include <xsimd/xsimd.hpp>

namespace m3::cpu::simd {
namespace {  // internal linkage: each arch's TU has its own copy (no ODR merging across -m flags)

template <class A>
using fbatch = xsimd::batch<float, A>;

template <class A>
constexpr bool is_avx512 = std::is_base_of_v<xsimd::avx512f, A>;
template <class A>
constexpr bool is_avx2 = !is_avx512<A> && std::is_base_of_v<xsimd::avx2, A>;
template <class A>
constexpr bool is_sse = !is_avx512<A> && !is_avx2<A> && std::is_base_of_v<xsimd::sse2, A>;
// Vector registers the ISA has (xsimd's arch types do not say): 32 for AVX-512 and
// AArch64 NEON, 16 for SSE/AVX2.
template <class A>
constexpr int vector_registers = is_avx512<A> || (!is_avx2<A> && !is_sse<A>) ? 32 : 16;

}  // namespace
}  // namespace m3::cpu::simd
