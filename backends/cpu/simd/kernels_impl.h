// The bodies of the fast CPU kernels, written once over the xsimd arch A. Included only by
// the per-arch translation units, each compiled with its instruction set's flags; the rest
// of the library sees only kernel_table.h.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backends/cpu/simd/kernel_table.h"
#include "backends/cpu/simd/weight_loads.h"

namespace m3::cpu::simd {
namespace {

// ---------------------------------------------------------------------------------------
// Converting a stretch of one weight row to float32.

// out[0 .. n) = W[row][c0 .. c0 + n) as floats. For the quantized types c0 and n are
// multiples of kQuantGroup.
template <class A>
void convert_range(const WeightMatrix& w, int64_t row, int64_t c0, int64_t n, float* out) {
  constexpr int64_t W = fbatch<A>::size;
  const int64_t base = row * w.cols + c0;
  int64_t c = 0;
  switch (w.type) {
    case WeightType::F32: {
      const float* p = static_cast<const float*>(w.data) + base;
      std::copy(p, p + n, out);
      return;
    }
    case WeightType::BF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (; c + W <= n; c += W) load_bf16<A>(p + c).store_unaligned(out + c);
      for (; c < n; ++c) {
        const uint32_t bits = static_cast<uint32_t>(p[c]) << 16;
        std::memcpy(out + c, &bits, 4);
      }
      return;
    }
    case WeightType::F16: {
      const uint16_t* p = static_cast<const uint16_t*>(w.data) + base;
      for (; c + W <= n; c += W) load_f16<A>(p + c).store_unaligned(out + c);
      for (; c < n; ++c) out[c] = f16_scale<A>(p[c]);
      return;
    }
    case WeightType::Q8: {
      const int8_t* p = static_cast<const int8_t*>(w.data) + base;
      const uint16_t* s = w.scales + base / kQuantGroup;
      for (int64_t g = 0; g < n / kQuantGroup; ++g) {
        const fbatch<A> scale(f16_scale<A>(s[g]));
        for (int64_t j = 0; j < kQuantGroup; j += W)
          (load_i8<A>(p + g * kQuantGroup + j) * scale).store_unaligned(out + g * kQuantGroup + j);
      }
      return;
    }
    case WeightType::Q4: {
      const uint8_t* p = static_cast<const uint8_t*>(w.data) + base / 2;
      const uint16_t* s = w.scales + base / kQuantGroup;
      for (int64_t g = 0; g < n / kQuantGroup; ++g) {
        const fbatch<A> scale(f16_scale<A>(s[g]));
        const fbatch<A> offset = scale * fbatch<A>(-8.0f);
        float* o = out + g * kQuantGroup;
        for (int64_t j = 0; j < kQuantGroup / 2; j += W) {
          fbatch<A> lo, hi;
          load_q4<A>(p + g * (kQuantGroup / 2) + j, scale, offset, lo, hi);
          lo.store_unaligned(o + j);
          hi.store_unaligned(o + kQuantGroup / 2 + j);
        }
      }
      return;
    }
  }
}

template <class A>
void load_row(const WeightMatrix& w, int64_t row, float* out) {
  convert_range<A>(w, row, 0, w.cols, out);
}

// ---------------------------------------------------------------------------------------
// Matrix products as tiles of dot products: ROWS weight rows against NB input rows, each
// pair accumulated along the depth in SIMD lanes and reduced at the end.

// One SIMD chunk of a float-typed weight row as float32.
template <class A, WeightType T>
fbatch<A> load_weights(const void* row, int64_t c) {
  if constexpr (T == WeightType::F32) return fbatch<A>::load_unaligned(static_cast<const float*>(row) + c);
  else if constexpr (T == WeightType::BF16) return load_bf16<A>(static_cast<const uint16_t*>(row) + c);
  else return load_f16<A>(static_cast<const uint16_t*>(row) + c);
}

// Input rows interleaved by SIMD chunk: chunk c of row b at xp[(c / W) * NB * W + b * W], so
// a tile's inputs are one sequential, aligned stream (four strided rows thrash L1 otherwise).
template <class A, int NB>
void pack_inputs(const float* x, int64_t x_stride, int64_t K, float* xp) {
  constexpr int64_t W = fbatch<A>::size;
  for (int64_t c = 0; c + W <= K; c += W)
    for (int b = 0; b < NB; ++b) fbatch<A>::load_unaligned(x + b * x_stride + c).store_aligned(xp + (c / W) * NB * W + b * W);
}

template <class A, WeightType T, int ROWS, int NB, bool PACKED>
void dot_tile(const WeightMatrix& w, int64_t r0, const float* x, int64_t x_stride, const float* xp, float* y,
              int64_t y_stride) {
  using fb = fbatch<A>;
  constexpr int64_t W = fb::size;
  const int64_t K = w.cols;
  fb acc[ROWS][NB];
  for (int r = 0; r < ROWS; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = fb(0.0f);
  float tail[ROWS][NB] = {};
  const float* xs[NB];
  for (int b = 0; b < NB; ++b) xs[b] = x + b * x_stride;
  // Chunk c (a multiple of W, so the unsigned division is a shift) of input row b.
  auto load_x = [&](int b, int64_t c) {
    if constexpr (PACKED) return fb::load_aligned(xp + static_cast<uint64_t>(c) / W * (NB * W) + b * W);
    else return fb::load_unaligned(xs[b] + c);
  };

  if constexpr (T == WeightType::Q8 || T == WeightType::Q4) {
    const int64_t groups = K / kQuantGroup;
    const uint16_t* scales[ROWS];
    const uint8_t* rows[ROWS];
    for (int r = 0; r < ROWS; ++r) {
      scales[r] = w.scales + (r0 + r) * groups;
      rows[r] = static_cast<const uint8_t*>(w.data) + (r0 + r) * (T == WeightType::Q8 ? K : K / 2);
    }
    // Each weight chunk is scaled before its FMA: no per-group partial sums, so the FMA
    // chains stay as long as the float types' (latency, not the converts, was the limit).
    for (int64_t g = 0; g < groups; ++g) {
      fb scale[ROWS], offset[ROWS];
      for (int r = 0; r < ROWS; ++r) {
        scale[r] = fb(f16_scale<A>(scales[r][g]));
        offset[r] = scale[r] * fb(-8.0f);
      }
      const int64_t c0 = g * kQuantGroup;
      if constexpr (T == WeightType::Q8) {
        for (int64_t j = 0; j < kQuantGroup; j += W) {
          fb xv[NB];
          for (int b = 0; b < NB; ++b) xv[b] = load_x(b, c0 + j);
          for (int r = 0; r < ROWS; ++r) {
            const fb wv = load_i8<A>(reinterpret_cast<const int8_t*>(rows[r]) + c0 + j) * scale[r];
            for (int b = 0; b < NB; ++b) acc[r][b] = xsimd::fma(wv, xv[b], acc[r][b]);
          }
        }
      } else {
        for (int64_t j = 0; j < kQuantGroup / 2; j += W) {
          fb xlo[NB], xhi[NB];
          for (int b = 0; b < NB; ++b) {
            xlo[b] = load_x(b, c0 + j);
            xhi[b] = load_x(b, c0 + kQuantGroup / 2 + j);
          }
          for (int r = 0; r < ROWS; ++r) {
            fb lo, hi;
            load_q4<A>(rows[r] + c0 / 2 + j, scale[r], offset[r], lo, hi);
            for (int b = 0; b < NB; ++b) acc[r][b] = xsimd::fma(hi, xhi[b], xsimd::fma(lo, xlo[b], acc[r][b]));
          }
        }
      }
    }
  } else {
    constexpr int64_t elem = T == WeightType::F32 ? 4 : 2;
    const char* rows[ROWS];
    for (int r = 0; r < ROWS; ++r) rows[r] = static_cast<const char*>(w.data) + (r0 + r) * K * elem;
    int64_t c = 0;
    const float* xc = xp;  // the packed chunk at c
    for (; c + W <= K; c += W, xc += NB * W) {
      fb xv[NB];
      for (int b = 0; b < NB; ++b) {
        if constexpr (PACKED) xv[b] = fb::load_aligned(xc + b * W);
        else xv[b] = fb::load_unaligned(xs[b] + c);
      }
      for (int r = 0; r < ROWS; ++r) {
        const fb wv = load_weights<A, T>(rows[r], c);
        for (int b = 0; b < NB; ++b) acc[r][b] = xsimd::fma(wv, xv[b], acc[r][b]);
      }
    }
    if (c < K) {
      float row_tail[W];
      for (int r = 0; r < ROWS; ++r) {
        convert_range<A>(w, r0 + r, c, K - c, row_tail);
        for (int b = 0; b < NB; ++b)
          for (int64_t i = 0; i < K - c; ++i) tail[r][b] += row_tail[i] * xs[b][c + i];
      }
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int b = 0; b < NB; ++b) y[b * y_stride + r] = xsimd::hadd(acc[r][b]) + tail[r][b];
}

// Register tiles of ROWS weight rows x NB input rows: 32-register ISAs (AVX-512, NEON)
// take 4 x 4 accumulators, 16-register ones 2 x 4.
template <class A>
constexpr int tile_rows() {
  return vector_registers<A> == 32 ? 4 : 2;
}

template <class A, WeightType T, int NB>
void matmul_nb(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride, float* y,
               int64_t y_stride) {
  // One input row streams the weights: four rows per tile for independent FMA chains.
  constexpr int kRows = NB == 1 ? 4 : tile_rows<A>();
  constexpr bool kPack = NB > 1;
  alignas(64) float xp[kPack ? NB * kMatmulMaxPackedDepth : 1];
  const bool packed = kPack && w.cols <= kMatmulMaxPackedDepth;
  if (packed) pack_inputs<A, NB>(x, x_stride, w.cols, xp);
  int64_t r = row_begin;
  for (; r + kRows <= row_end; r += kRows) {
    if (packed) dot_tile<A, T, kRows, NB, true>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
    else dot_tile<A, T, kRows, NB, false>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
  }
  for (; r < row_end; ++r) {
    if (packed) dot_tile<A, T, 1, NB, true>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
    else dot_tile<A, T, 1, NB, false>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
  }
}

// Every output is one dot product accumulated in the same order whatever the tiling, so
// results do not depend on how many rows are computed together: a prompt fed in one call,
// in pieces, or token by token gives bit-identical logits and states.
template <class A, WeightType T>
void matmul_typed(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
                  int64_t n_rows, float* y, int64_t y_stride) {
  // A block of weight rows stays in L2 while every input tile (packed, in L1) passes over it.
  const int64_t block = std::max<int64_t>(4, kMatmulBlockBytes / std::max<int64_t>(1, weight_row_bytes(w.type, w.cols)));
  for (int64_t b0 = row_begin; b0 < row_end; b0 += block) {
    const int64_t b1 = std::min(row_end, b0 + block);
    for (int64_t t0 = 0; t0 < n_rows; t0 += kMatmulMaxTile) {
      const float* xt = x + t0 * x_stride;
      float* yt = y + t0 * y_stride + (b0 - row_begin);
      switch (std::min<int64_t>(kMatmulMaxTile, n_rows - t0)) {
        case 1: matmul_nb<A, T, 1>(w, b0, b1, xt, x_stride, yt, y_stride); break;
        case 2: matmul_nb<A, T, 2>(w, b0, b1, xt, x_stride, yt, y_stride); break;
        case 3: matmul_nb<A, T, 3>(w, b0, b1, xt, x_stride, yt, y_stride); break;
        default: matmul_nb<A, T, 4>(w, b0, b1, xt, x_stride, yt, y_stride); break;
      }
    }
  }
}

template <class A>
void matmul(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
            int64_t n_rows, float* y, int64_t y_stride) {
  switch (w.type) {
    case WeightType::F32: return matmul_typed<A, WeightType::F32>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
    case WeightType::BF16: return matmul_typed<A, WeightType::BF16>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
    case WeightType::F16: return matmul_typed<A, WeightType::F16>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
    case WeightType::Q8: return matmul_typed<A, WeightType::Q8>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
    case WeightType::Q4: return matmul_typed<A, WeightType::Q4>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
  }
}

// ---------------------------------------------------------------------------------------
// The per-head state update and readout of one token.

template <class A>
void ssm_head_step(float* h, int64_t P, int64_t N, int64_t R, float alpha, const float* wp, const float* wc,
                   const float* kp, int64_t kp_stride, const float* kc, const float* q, float* y) {
  using fb = fbatch<A>;
  constexpr int64_t W = fb::size;
  const int64_t Nv = N - N % W;
  const fb va(alpha);
  for (int64_t p = 0; p < P; ++p) {
    float* row = h + p * N;
    for (int64_t n = 0; n < Nv; n += W) {
      fb v = fb::load_unaligned(row + n) * va;
      for (int64_t r = 0; r < R; ++r) {
        v = xsimd::fma(fb(wp[r * P + p]), fb::load_unaligned(kp + r * kp_stride + n), v);
        v = xsimd::fma(fb(wc[r * P + p]), fb::load_unaligned(kc + r * N + n), v);
      }
      v.store_unaligned(row + n);
    }
    for (int64_t n = Nv; n < N; ++n) {
      float v = row[n] * alpha;
      for (int64_t r = 0; r < R; ++r) v += wp[r * P + p] * kp[r * kp_stride + n] + wc[r * P + p] * kc[r * N + n];
      row[n] = v;
    }
    for (int64_t r = 0; r < R; ++r) {
      const float* qr = q + r * N;
      fb acc(0.0f);
      for (int64_t n = 0; n < Nv; n += W) acc = xsimd::fma(fb::load_unaligned(row + n), fb::load_unaligned(qr + n), acc);
      float s = xsimd::hadd(acc);
      for (int64_t n = Nv; n < N; ++n) s += row[n] * qr[n];
      y[r * P + p] = s;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The FMA peak probe: independent chains, all in registers.

template <class A>
float fma_probe(int64_t iterations) {
  using fb = fbatch<A>;
  fb acc[kFmaProbeChains];
  for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = fb(0.001f * static_cast<float>(i));
  const fb mul(0.999999f), add(1e-6f);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = xsimd::fma(acc[i], mul, add);
  fb total(0.0f);
  for (int i = 0; i < kFmaProbeChains; ++i) total += acc[i];
  return xsimd::hadd(total);
}

template <class A>
KernelTable make_kernel_table(const char* name) {
  return KernelTable{name, static_cast<int>(fbatch<A>::size), &matmul<A>, &load_row<A>, &ssm_head_step<A>,
                     &fma_probe<A>};
}

}  // namespace
}  // namespace m3::cpu::simd
