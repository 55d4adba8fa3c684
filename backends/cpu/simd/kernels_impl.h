// The bodies of the fast CPU kernels, written once over the xsimd arch A. Included only by
// the per-arch translation units, each compiled with its instruction set's flags; the rest
// of the library sees only kernel_table.h.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <new>
#include <cstdint>
#include <cstring>

#include "backends/cpu/simd/integer_dot.h"
#include "backends/cpu/simd/kernel_table.h"
#include "backends/cpu/weight_tiling.h"
#include "backends/cpu/simd/weight_loads.h"

namespace m3::cpu::simd {
namespace {

// ---------------------------------------------------------------------------------------
// Reading weights as float32. Rows are found through locate_row (weight_tiling.h), so the
// kernels read the row-major checkpoint layout and the backend's tiled copy alike.

template <class A>
constexpr int64_t kLanes = fbatch<A>::size;

// One weight of a float type (tails shorter than a SIMD register).
template <class A, WeightType T>
float scalar_weight(const uint8_t* p, int64_t i) {
  if constexpr (T == WeightType::F32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    if constexpr (T == WeightType::BF16) {
      const uint32_t bits = static_cast<uint32_t>(h) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    } else {
      return f16_scale<A>(h);
    }
  }
}

// One SIMD chunk of a float-typed weight row as float32.
template <class A, WeightType T>
fbatch<A> load_weights(const uint8_t* p) {
  if constexpr (T == WeightType::F32) return fbatch<A>::load_unaligned(reinterpret_cast<const float*>(p));
  else if constexpr (T == WeightType::BF16) return load_bf16<A>(reinterpret_cast<const uint16_t*>(p));
  else return load_f16<A>(reinterpret_cast<const uint16_t*>(p));
}

template <class A, WeightType T>
void load_row_typed(const WeightMatrix& w, int64_t row, float* out) {
  constexpr int64_t W = kLanes<A>;
  const RowLocation at = locate_row(w, row, row_chunk_cols(T, W));
  const int64_t K = w.cols;
  if constexpr (T == WeightType::Q8 || T == WeightType::Q4) {
    for (int64_t g = 0; g < K / kQuantGroup; ++g) {
      const fbatch<A> scale(f16_scale<A>(at.scales[g * at.scale_step]));
      const uint8_t* p = at.data + g * at.step;
      float* o = out + g * kQuantGroup;
      if constexpr (T == WeightType::Q8) {
        for (int64_t j = 0; j < kQuantGroup; j += W)
          (load_i8<A>(reinterpret_cast<const int8_t*>(p) + j) * scale).store_unaligned(o + j);
      } else {
        const fbatch<A> offset = scale * fbatch<A>(-8.0f);
        for (int64_t j = 0; j < kQuantGroup / 2; j += W) {
          fbatch<A> lo, hi;
          load_q4<A>(p + j, scale, offset, lo, hi);
          lo.store_unaligned(o + j);
          hi.store_unaligned(o + kQuantGroup / 2 + j);
        }
      }
    }
  } else if (w.column_tile > 0) {
    const auto* data = static_cast<const uint8_t*>(w.data);
    for (int64_t k = 0; k < K; ++k) out[k] = scalar_weight<A, T>(data + float_weight_offset(w, row, k), 0);
  } else {
    int64_t c = 0;
    const uint8_t* p = at.data;
    for (; c + W <= K; c += W, p += at.step) load_weights<A, T>(p).store_unaligned(out + c);
    for (int64_t i = 0; c + i < K; ++i) out[c + i] = scalar_weight<A, T>(p, i);  // row-major rows only
  }
}

template <class A>
void load_row(const WeightMatrix& w, int64_t row, float* out) {
  switch (w.type) {
    case WeightType::F32: return load_row_typed<A, WeightType::F32>(w, row, out);
    case WeightType::BF16: return load_row_typed<A, WeightType::BF16>(w, row, out);
    case WeightType::F16: return load_row_typed<A, WeightType::F16>(w, row, out);
    case WeightType::Q8: return load_row_typed<A, WeightType::Q8>(w, row, out);
    case WeightType::Q4: return load_row_typed<A, WeightType::Q4>(w, row, out);
  }
}

// ---------------------------------------------------------------------------------------
// Matrix products as tiles of dot products: ROWS weight rows against NB input rows, each
// pair accumulated along the depth in SIMD lanes and reduced at the end.

// How far ahead of a one-token GEMV the weight stream is prefetched: software prefetch
// helps one core keep enough cache-line fills in flight (measured on the Zen 3 VM: a bf16
// GEMV from DRAM went from 22 to 24 GB/s on 2 threads with 4 KiB).
constexpr int64_t kPrefetchBytes = 4096;

// Input rows interleaved by SIMD chunk: chunk c of row b at xp[(c / W) * NB * W + b * W], so
// a tile's inputs are one sequential, aligned stream (four strided rows thrash L1 otherwise).
template <class A, int NB>
void pack_inputs(const float* x, int64_t x_stride, int64_t K, float* xp) {
  constexpr int64_t W = fbatch<A>::size;
  for (int64_t c = 0; c + W <= K; c += W)
    for (int b = 0; b < NB; ++b) fbatch<A>::load_unaligned(x + b * x_stride + c).store_aligned(xp + (c / W) * NB * W + b * W);
}

// Prefetches the `bytes` a tile step reads, kPrefetchBytes ahead (a one-token GEMV over a
// tiled matrix: the tile is one stream, so its first row's pointer leads it).
template <int NB>
inline void prefetch_ahead(const uint8_t* p, int64_t bytes, bool tiled) {
  if constexpr (NB == 1) {
    if (tiled)
      for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + kPrefetchBytes + o, 0, 3);
  }
}

// The input rows of a product with quantized weights, quantized in turn: per group of
// kQuantGroup columns, x = q * scale with q in int16 (|q| <= 32767, round to nearest). The
// rounding error is at most 1/65534 of the group's largest |x|, far below the weights' own.
struct QuantizedInputs {
  const int16_t* q;    // row t at q + t * cols
  const float* scale;  // row t at scale + t * (cols / kQuantGroup)
  int64_t cols;
};

// Per-thread scratch that only grows. Not std::vector: these kernels are compiled once per
// instruction set, and an out-of-line std template instantiated in several of those
// translation units is merged by the linker into one copy, possibly the AVX-512 one (seen:
// SIGILL in vector<short>::_M_default_append on an AVX2 CPU). A type in this unnamed
// namespace has internal linkage, so every ISA keeps its own.
template <class T>
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  ~ScratchBuffer() { std::free(data_); }
  T* at_least(int64_t n) {
    if (n > size_) {
      std::free(data_);
      data_ = static_cast<T*>(std::malloc(static_cast<std::size_t>(n) * sizeof(T)));
      size_ = data_ ? n : 0;
      if (!data_) throw std::bad_alloc();
    }
    return data_;
  }

 private:
  T* data_ = nullptr;
  int64_t size_ = 0;
};

// Quantizes n rows of x into per-thread buffers that live as long as the thread (they only
// ever grow, so a steady decode loop allocates nothing).
template <class A>
QuantizedInputs quantize_inputs(const float* x, int64_t x_stride, int64_t n, int64_t cols) {
  using fb = fbatch<A>;
  constexpr int64_t W = fb::size;
  thread_local ScratchBuffer<int16_t> q_buffer;
  thread_local ScratchBuffer<float> scale_buffer;
  const int64_t groups = cols / kQuantGroup;
  int16_t* q = q_buffer.at_least(n * cols);
  float* scale = scale_buffer.at_least(n * groups);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      const float* xg = x + t * x_stride + g * kQuantGroup;
      int16_t* qg = q + t * cols + g * kQuantGroup;
      float& sg = scale[t * groups + g];
      fb mv(0.0f), poison(0.0f);  // poison: x * 0 is NaN exactly when some x is NaN or infinite
      for (int64_t j = 0; j < kQuantGroup; j += W) {
        const fb v = fb::load_unaligned(xg + j);
        mv = xsimd::max(mv, xsimd::abs(v));
        poison += v * fb(0.0f);
      }
      alignas(64) float lanes[W];
      mv.store_aligned(lanes);
      float m = 0.0f;
      for (int64_t i = 0; i < W; ++i) m = std::max(m, lanes[i]);
      if (m == 0.0f || std::isnan(xsimd::hadd(poison))) {
        // Zeros stay zero; a NaN or infinity makes the group's scale NaN, so it shows in y.
        sg = m == 0.0f ? 0.0f : NAN;
        for (int64_t j = 0; j < kQuantGroup; ++j) qg[j] = 0;
        continue;
      }
      const fb inv(32767.0f / m);
      alignas(64) int32_t rounded[kQuantGroup];
      for (int64_t j = 0; j < kQuantGroup; j += W)
        xsimd::nearbyint_as_int(fb::load_unaligned(xg + j) * inv).store_aligned(rounded + j);
      for (int64_t j = 0; j < kQuantGroup; ++j) qg[j] = static_cast<int16_t>(rounded[j]);
      sg = m / 32767.0f;
    }
  return {q, scale, cols};
}

// ROWS quantized weight rows against NB quantized input rows: per group, exact int32 dot
// products in lanes (integer_dot.h), then one FMA per lane with the product of the scales.
template <class A, WeightType T, int ROWS, int NB>
void dot_tile_quantized(const WeightMatrix& w, int64_t r0, const QuantizedInputs& xin, float* y, int64_t y_stride) {
  using fb = fbatch<A>;
  constexpr int PG = Int16Reg<A>::per_group, L = Int16Reg<A>::lanes;
  const int64_t groups = w.cols / kQuantGroup;
  fb acc[ROWS][NB];
  for (int r = 0; r < ROWS; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = fb(0.0f);
  const uint8_t* p[ROWS];
  int64_t step[ROWS];
  const uint16_t* sp[ROWS];
  int64_t sstep[ROWS];
  for (int r = 0; r < ROWS; ++r) {
    const RowLocation at = locate_row(w, r0 + r, kQuantGroup);
    p[r] = at.data;
    step[r] = at.step;
    sp[r] = at.scales;
    sstep[r] = at.scale_step;
  }
  const bool stream = ROWS == kWeightTileRows && r0 % kWeightTileRows == 0 && r0 < tiled_rows(w);
  const int16_t* xq = xin.q;      // this group's inputs: row b at xq + b * cols
  const float* xs = xin.scale;    // and their scales: row b at xs[b * groups]
  for (int64_t g = 0; g < groups; ++g, xq += kQuantGroup, ++xs) {
    prefetch_ahead<NB>(p[0], step[0], stream);
    for (int r = 0; r < ROWS; ++r) {
      i16reg<A> codes[PG];
      decode_group<A, T>(p[r], codes);
      const float sw = f16_scale<A>(*sp[r]);
      p[r] += step[r];
      sp[r] += sstep[r];
      for (int b = 0; b < NB; ++b) {
        const int16_t* xb = xq + b * xin.cols;
        i32batch<A> dot = madd_i16<A>(codes[0], load_i16<A>(xb));
        for (int k = 1; k < PG; ++k) dot += madd_i16<A>(codes[k], load_i16<A>(xb + k * L));
        acc[r][b] = fused_multiply_add(xsimd::batch_cast<float>(dot), fb(sw * xs[b * groups]), acc[r][b]);
      }
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int b = 0; b < NB; ++b) y[b * y_stride + r] = xsimd::hadd(acc[r][b]);
}

// ROWS float-typed weight rows against NB input rows.
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
  const uint8_t* p[ROWS];
  int64_t step[ROWS];
  for (int r = 0; r < ROWS; ++r) {
    const RowLocation at = locate_row(w, r0 + r, W);
    p[r] = at.data;
    step[r] = at.step;
  }
  // A whole register tile inside one storage tile reads one stream: prefetch it.
  const bool stream = ROWS == kWeightTileRows && r0 % kWeightTileRows == 0 && r0 < tiled_rows(w);
  int64_t c = 0;
  const float* xc = xp;  // the packed chunk at c
  for (; c + W <= K; c += W, xc += NB * W) {
    prefetch_ahead<NB>(p[0], step[0], stream);
    fb xv[NB];
    for (int b = 0; b < NB; ++b) {
      if constexpr (PACKED) xv[b] = fb::load_aligned(xc + b * W);
      else xv[b] = fb::load_unaligned(xs[b] + c);
    }
    for (int r = 0; r < ROWS; ++r) {
      const fb wv = load_weights<A, T>(p[r]);
      p[r] += step[r];
      for (int b = 0; b < NB; ++b) acc[r][b] = fused_multiply_add(wv, xv[b], acc[r][b]);
    }
  }
  // A tail shorter than a register: row-major rows only (tiled matrices have none).
  for (int r = 0; r < ROWS; ++r)
    for (int64_t i = 0; c + i < K; ++i) {
      const float wv = scalar_weight<A, T>(p[r], i);
      for (int b = 0; b < NB; ++b) tail[r][b] += wv * xs[b][c + i];
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
void matmul_nb(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
               const QuantizedInputs& xq, float* y, int64_t y_stride) {
  // One input row streams the weights: four rows per tile for independent FMA chains.
  constexpr int kRows = NB == 1 ? 4 : tile_rows<A>();
  int64_t r = row_begin;
  if constexpr (T == WeightType::Q8 || T == WeightType::Q4) {
    for (; r + kRows <= row_end; r += kRows) dot_tile_quantized<A, T, kRows, NB>(w, r, xq, y + (r - row_begin), y_stride);
    for (; r < row_end; ++r) dot_tile_quantized<A, T, 1, NB>(w, r, xq, y + (r - row_begin), y_stride);
  } else {
    constexpr bool kPack = NB > 1;
    alignas(64) float xp[kPack ? NB * kMatmulMaxPackedDepth : 1];
    const bool packed = kPack && w.cols <= kMatmulMaxPackedDepth;
    if (packed) pack_inputs<A, NB>(x, x_stride, w.cols, xp);
    for (; r + kRows <= row_end; r += kRows) {
      if (packed) dot_tile<A, T, kRows, NB, true>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
      else dot_tile<A, T, kRows, NB, false>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
    }
    for (; r < row_end; ++r) {
      if (packed) dot_tile<A, T, 1, NB, true>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
      else dot_tile<A, T, 1, NB, false>(w, r, x, x_stride, xp, y + (r - row_begin), y_stride);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Float matrices in column tiles (weight_tiling.h): outer products, rows along the lanes.

// Up to this many input rows share each load of a weight register pair (2 x 6 accumulators
// plus 2 weight registers and a broadcast fit 16 registers).
constexpr int kColumnInputs = 6;

// y[b * y_stride + i] for the TR rows of the column tile starting at row r0 (a multiple of
// TR inside the tiled rows) and NB input rows, in the order of weight_tiling.h.
template <class A, WeightType T, int NB>
void column_tile_product(const WeightMatrix& w, int64_t r0, const float* x, int64_t x_stride, float* y,
                         int64_t y_stride) {
  using fb = fbatch<A>;
  constexpr int64_t W = fb::size;
  constexpr int64_t TR = 2 * W;
  constexpr int64_t elem = T == WeightType::F32 ? 4 : 2;
  const int64_t K4 = w.cols / kColumnQuarters;
  const uint8_t* tile = static_cast<const uint8_t*>(w.data) + r0 * w.cols * elem;
  constexpr int64_t kStep = kColumnQuarters * TR * elem;  // bytes per position kk
  if constexpr (NB == 1) {
    // One token: the four quarters at once, eight independent chains over one stream.
    fb acc[kColumnQuarters][2];
    for (auto& a : acc) a[0] = a[1] = fb(0.0f);
    const uint8_t* p = tile;
    for (int64_t kk = 0; kk < K4; ++kk, p += kStep) {
      for (int64_t o = 0; o < kStep; o += 64) __builtin_prefetch(p + kPrefetchBytes + o, 0, 3);
      for (int q = 0; q < kColumnQuarters; ++q) {
        const fb xq(x[q * K4 + kk]);
        acc[q][0] = fused_multiply_add(load_weights<A, T>(p + q * TR * elem), xq, acc[q][0]);
        acc[q][1] = fused_multiply_add(load_weights<A, T>(p + (q * TR + W) * elem), xq, acc[q][1]);
      }
    }
    for (int v = 0; v < 2; ++v) {
      fb total = acc[0][v];
      for (int q = 1; q < kColumnQuarters; ++q) total += acc[q][v];
      total.store_unaligned(y + v * W);
    }
  } else {
    // Several tokens: one quarter at a time, each weight register pair feeding NB inputs.
    fb total[2][NB];
    for (int q = 0; q < kColumnQuarters; ++q) {
      fb acc[2][NB];
      for (int b = 0; b < NB; ++b) acc[0][b] = acc[1][b] = fb(0.0f);
      const uint8_t* p = tile + q * TR * elem;
      const float* xq = x + q * K4;
      for (int64_t kk = 0; kk < K4; ++kk, p += kStep) {
        const fb w0 = load_weights<A, T>(p), w1 = load_weights<A, T>(p + W * elem);
        for (int b = 0; b < NB; ++b) {
          const fb xb(xq[b * x_stride + kk]);
          acc[0][b] = fused_multiply_add(w0, xb, acc[0][b]);
          acc[1][b] = fused_multiply_add(w1, xb, acc[1][b]);
        }
      }
      for (int v = 0; v < 2; ++v)
        for (int b = 0; b < NB; ++b) total[v][b] = q == 0 ? acc[v][b] : total[v][b] + acc[v][b];
    }
    for (int v = 0; v < 2; ++v)
      for (int b = 0; b < NB; ++b) total[v][b].store_unaligned(y + b * y_stride + v * W);
  }
}

// The same order for one row outside whole tiles (the rows past the last tile, or a range
// that cuts a tile), computed in SIMD lane 0 so that the arch's FMA rounds as in the tiles.
template <class A, WeightType T>
void column_order_row(const WeightMatrix& w, int64_t r, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride) {
  using fb = fbatch<A>;
  const int64_t K4 = w.cols / kColumnQuarters;
  const auto* data = static_cast<const uint8_t*>(w.data);
  for (int64_t b = 0; b < n; ++b) {
    fb total(0.0f);
    for (int q = 0; q < kColumnQuarters; ++q) {
      fb acc(0.0f);
      for (int64_t kk = 0; kk < K4; ++kk) {
        const int64_t k = q * K4 + kk;
        acc = fused_multiply_add(fb(scalar_weight<A, T>(data + float_weight_offset(w, r, k), 0)), fb(x[b * x_stride + k]), acc);
      }
      total = q == 0 ? acc : total + acc;
    }
    alignas(64) float lanes[fb::size];
    total.store_aligned(lanes);
    y[b * y_stride] = lanes[0];
  }
}

template <class A, WeightType T>
void column_tiled_matmul(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
                         int64_t n_rows, float* y, int64_t y_stride) {
  const int64_t TR = w.column_tile;
  int64_t r = row_begin;
  while (r < row_end) {
    // A whole tile: inside the range, or the zero-padded last one when the range ends there.
    const bool whole = r % TR == 0 && (r + TR <= row_end || row_end == w.rows);
    if (!whole) {
      column_order_row<A, T>(w, r, x, x_stride, n_rows, y + (r - row_begin), y_stride);
      ++r;
      continue;
    }
    const int64_t valid = std::min(TR, w.rows - r);
    for (int64_t t0 = 0; t0 < n_rows; t0 += kColumnInputs) {
      const int64_t nb = std::min<int64_t>(kColumnInputs, n_rows - t0);
      const float* xt = x + t0 * x_stride;
      // The padded tile writes all its rows: into scratch, then the valid ones out.
      alignas(64) float scratch[kColumnInputs * kMaxColumnTileRows];
      float* yb = valid == TR ? y + (r - row_begin) + t0 * y_stride : scratch;
      const int64_t ys = valid == TR ? y_stride : TR;
      switch (nb) {
        case 1: column_tile_product<A, T, 1>(w, r, xt, x_stride, yb, ys); break;
        case 2: column_tile_product<A, T, 2>(w, r, xt, x_stride, yb, ys); break;
        case 3: column_tile_product<A, T, 3>(w, r, xt, x_stride, yb, ys); break;
        case 4: column_tile_product<A, T, 4>(w, r, xt, x_stride, yb, ys); break;
        case 5: column_tile_product<A, T, 5>(w, r, xt, x_stride, yb, ys); break;
        default: column_tile_product<A, T, 6>(w, r, xt, x_stride, yb, ys); break;
      }
      if (valid < TR)
        for (int64_t b = 0; b < nb; ++b)
          for (int64_t i = 0; i < valid; ++i) y[(r - row_begin) + (t0 + b) * y_stride + i] = scratch[b * TR + i];
    }
    r += TR;
  }
}

// Every output is one dot product accumulated in the same order whatever the tiling, so
// results do not depend on how many rows are computed together: a prompt fed in one call,
// in pieces, or token by token gives bit-identical logits and states.
template <class A, WeightType T>
void matmul_typed(const WeightMatrix& w, int64_t row_begin, int64_t row_end, const float* x, int64_t x_stride,
                  int64_t n_rows, float* y, int64_t y_stride) {
  QuantizedInputs xq{nullptr, nullptr, w.cols};
  if constexpr (T == WeightType::Q8 || T == WeightType::Q4) {
    xq = quantize_inputs<A>(x, x_stride, n_rows, w.cols);
  } else if (w.column_tile > 0) {
    column_tiled_matmul<A, T>(w, row_begin, row_end, x, x_stride, n_rows, y, y_stride);
    return;
  }
  // Whole storage tiles per block, so register tiles stay aligned with them.
  int64_t block = std::max<int64_t>(1, kMatmulBlockBytes / std::max<int64_t>(1, weight_row_bytes(w.type, w.cols)));
  block = (block + kWeightTileRows - 1) / kWeightTileRows * kWeightTileRows;
  // A block of weight rows stays in L2 while every input tile (packed, in L1) passes over it.
  for (int64_t b0 = row_begin; b0 < row_end; b0 += block) {
    const int64_t b1 = std::min(row_end, b0 + block);
    for (int64_t t0 = 0; t0 < n_rows; t0 += kMatmulMaxTile) {
      const float* xt = x + t0 * x_stride;
      const QuantizedInputs xqt{xq.q ? xq.q + t0 * w.cols : nullptr, xq.scale ? xq.scale + t0 * (w.cols / kQuantGroup) : nullptr, w.cols};
      float* yt = y + t0 * y_stride + (b0 - row_begin);
      switch (std::min<int64_t>(kMatmulMaxTile, n_rows - t0)) {
        case 1: matmul_nb<A, T, 1>(w, b0, b1, xt, x_stride, xqt, yt, y_stride); break;
        case 2: matmul_nb<A, T, 2>(w, b0, b1, xt, x_stride, xqt, yt, y_stride); break;
        case 3: matmul_nb<A, T, 3>(w, b0, b1, xt, x_stride, xqt, yt, y_stride); break;
        default: matmul_nb<A, T, 4>(w, b0, b1, xt, x_stride, xqt, yt, y_stride); break;
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
  constexpr int64_t kMaxFusedRank = 4;
  const int64_t Nv = N - N % W;
  const fb va(alpha);
  for (int64_t p = 0; p < P; ++p) {
    float* row = h + p * N;
    // The readout rides along the update: each new state chunk is multiplied with q while it
    // is still in registers (one pass over the state instead of two).
    fb acc[kMaxFusedRank];
    for (auto& a : acc) a = fb(0.0f);
    const bool fused = R <= kMaxFusedRank;
    for (int64_t n = 0; n < Nv; n += W) {
      fb v = fb::load_unaligned(row + n) * va;
      for (int64_t r = 0; r < R; ++r) {
        v = fused_multiply_add(fb(wp[r * P + p]), fb::load_unaligned(kp + r * kp_stride + n), v);
        v = fused_multiply_add(fb(wc[r * P + p]), fb::load_unaligned(kc + r * N + n), v);
      }
      v.store_unaligned(row + n);
      if (fused)
        for (int64_t r = 0; r < R; ++r) acc[r] = fused_multiply_add(v, fb::load_unaligned(q + r * N + n), acc[r]);
    }
    for (int64_t n = Nv; n < N; ++n) {
      float v = row[n] * alpha;
      for (int64_t r = 0; r < R; ++r) v += wp[r * P + p] * kp[r * kp_stride + n] + wc[r * P + p] * kc[r * N + n];
      row[n] = v;
    }
    for (int64_t r = 0; r < R; ++r) {
      const float* qr = q + r * N;
      fb sum = acc[r < kMaxFusedRank ? r : 0];
      if (!fused) {
        sum = fb(0.0f);
        for (int64_t n = 0; n < Nv; n += W) sum = fused_multiply_add(fb::load_unaligned(row + n), fb::load_unaligned(qr + n), sum);
      }
      float s = xsimd::hadd(sum);
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
    for (int i = 0; i < kFmaProbeChains; ++i) acc[i] = fused_multiply_add(acc[i], mul, add);
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
