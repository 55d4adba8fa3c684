#include "backends/cpu/weight_tiling.h"

#include <cstring>
#include <new>

namespace m3::cpu {
namespace {

AlignedBytes allocate(int64_t bytes) {
  const std::size_t n = (static_cast<std::size_t>(bytes) + 63) / 64 * 64;
  AlignedBytes b;
  b.bytes.reset(static_cast<uint8_t*>(std::aligned_alloc(64, n)));
  if (!b.bytes) throw std::bad_alloc();
  return b;
}

inline void copy_element(uint8_t* to, const uint8_t* from, int64_t elem) {
  if (elem == 4) std::memcpy(to, from, 4);
  else std::memcpy(to, from, 2);
}

}  // namespace

WeightMatrix tile_weight_matrix(const WeightMatrix& src, int64_t lanes, AlignedBytes& data, AlignedBytes& scales) {
  if (src.tile_chunk != 0 || src.column_tile != 0) return src;
  if (src.type != WeightType::Q8 && src.type != WeightType::Q4) {
    const int64_t TR = column_tile_rows(lanes);
    if (src.rows < TR || src.cols % kColumnQuarters != 0) return src;
    WeightMatrix out = src;
    out.column_tile = TR;
    const int64_t elem = weight_data_bytes(src.type, 1);
    const int64_t bytes = column_tiled_rows(out) * src.cols * elem;
    data = allocate(bytes);
    out.data = data.bytes.get();
    const auto* from = static_cast<const uint8_t*>(src.data);
    uint8_t* to = data.bytes.get();
    std::memset(to, 0, static_cast<std::size_t>(bytes));  // the padding rows of the last tile
    // float_weight_offset defines the layout; this walks it a tile at a time (the tile stays
    // in cache) instead of computing it per element. The kernel tests check the two agree.
    const int64_t K = src.cols, K4 = K / kColumnQuarters;
    for (int64_t r = 0; r < src.rows; ++r) {
      const uint8_t* row = from + r * K * elem;
      uint8_t* tile = to + (r / TR) * TR * K * elem + (r % TR) * elem;
      for (int q = 0; q < kColumnQuarters; ++q)
        for (int64_t kk = 0; kk < K4; ++kk)
          copy_element(tile + (kk * kColumnQuarters + q) * TR * elem, row + (q * K4 + kk) * elem, elem);
    }
    return out;
  }
  const int64_t chunk_cols = row_chunk_cols(src.type, lanes);
  if (src.rows < kWeightTileRows || src.cols % chunk_cols != 0) return src;
  WeightMatrix out = src;
  out.tile_chunk = chunk_cols;
  const int64_t row_bytes = weight_data_bytes(src.type, src.cols);
  const int64_t chunk_bytes = weight_data_bytes(src.type, chunk_cols);
  const int64_t chunks = src.cols / chunk_cols;
  data = allocate(src.rows * row_bytes);
  const auto* from = static_cast<const uint8_t*>(src.data);
  uint8_t* to = data.bytes.get();
  const int64_t groups = src.scales ? src.cols / kQuantGroup : 0;
  uint16_t* to_scales = nullptr;
  if (src.scales) {
    scales = allocate(src.rows * groups * 2);
    to_scales = reinterpret_cast<uint16_t*>(scales.bytes.get());
  }
  out.data = to;
  out.scales = to_scales;
  // The layout is defined once, by locate_row: write every chunk where it says to read it.
  for (int64_t r = 0; r < src.rows; ++r) {
    const RowLocation at = locate_row(out, r, chunk_cols);
    uint8_t* dst = const_cast<uint8_t*>(at.data);
    for (int64_t j = 0; j < chunks; ++j) std::memcpy(dst + j * at.step, from + r * row_bytes + j * chunk_bytes, chunk_bytes);
    if (src.scales) {
      uint16_t* s = const_cast<uint16_t*>(at.scales);
      for (int64_t g = 0; g < groups; ++g) s[g * at.scale_step] = src.scales[r * groups + g];
    }
  }
  return out;
}

}  // namespace m3::cpu
