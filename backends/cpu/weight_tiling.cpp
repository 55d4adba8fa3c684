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

}  // namespace

WeightMatrix tile_weight_matrix(const WeightMatrix& src, int64_t lanes, AlignedBytes& data, AlignedBytes& scales) {
  const int64_t chunk_cols = row_chunk_cols(src.type, lanes);
  if (src.tile_chunk != 0 || src.rows < kWeightTileRows || src.cols % chunk_cols != 0) return src;
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
