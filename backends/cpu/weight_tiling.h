// The fast CPU backend's weight layout: row tiles. A GEMV that walks four rows at once
// reads four separate streams, which one core's prefetchers follow far worse than one
// (on the Zen 3 VM: 19 vs 24 GB/s for a bf16 lm_head on 2 threads). So the backend copies
// each matrix once, at load, into tiles of kWeightTileRows rows in which chunk j of every
// row lies next to chunk j of the others: a tile is one sequential stream. A chunk is one
// SIMD register of floats, or one quantization group (its scales are tiled alike). Only the
// layout changes; every value and every summation order stays the same.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>

#include "model/model_weights.h"

namespace m3::cpu {

constexpr int64_t kWeightTileRows = 4;

// Where row r's chunks are: chunk j (chunk_cols columns) of the data starts at
// data + j * step bytes, and the scale of group g (quantized types) at scales[g * scale_step].
struct RowLocation {
  const uint8_t* data;
  int64_t step;
  const uint16_t* scales;
  int64_t scale_step;
};

// The chunk a row is walked in: one SIMD register (`lanes` floats) or one quantization group.
inline int64_t row_chunk_cols(WeightType type, int64_t lanes) {
  return type == WeightType::Q8 || type == WeightType::Q4 ? kQuantGroup : lanes;
}

// Rows below tiled_rows(w) are tiled; the rest (fewer than a tile) stay row-major after them.
inline int64_t tiled_rows(const WeightMatrix& w) {
  return w.tile_chunk > 0 ? w.rows / kWeightTileRows * kWeightTileRows : 0;
}

// `chunk_cols` must be row_chunk_cols(w.type, lanes) of the caller's kernels.
inline RowLocation locate_row(const WeightMatrix& w, int64_t r, int64_t chunk_cols) {
  const int64_t row_bytes = weight_data_bytes(w.type, w.cols);
  const int64_t chunk_bytes = weight_data_bytes(w.type, chunk_cols);
  const int64_t groups = w.scales ? w.cols / kQuantGroup : 0;
  const auto* data = static_cast<const uint8_t*>(w.data);
  if (r < tiled_rows(w)) {
    const int64_t tile = r / kWeightTileRows, lane = r % kWeightTileRows;
    return {data + tile * kWeightTileRows * row_bytes + lane * chunk_bytes, kWeightTileRows * chunk_bytes,
            w.scales ? w.scales + tile * kWeightTileRows * groups + lane : nullptr, kWeightTileRows};
  }
  return {data + r * row_bytes, chunk_bytes, w.scales ? w.scales + r * groups : nullptr, 1};
}

// Owned, 64-byte aligned bytes.
struct AlignedBytes {
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> bytes;
};

// A tiled copy of `src` (row-major) for kernels whose float chunk is `lanes` floats; its
// storage goes to `data` and `scales`. Returns `src` itself when tiling cannot help or
// apply: fewer rows than a tile, or columns that are not whole chunks.
WeightMatrix tile_weight_matrix(const WeightMatrix& src, int64_t lanes, AlignedBytes& data, AlignedBytes& scales);

}  // namespace m3::cpu
