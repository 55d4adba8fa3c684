// The fast CPU backend's weight layouts. The backend copies each matrix once, at load, so
// that a GEMV reads one sequential stream per tile: one core's prefetchers follow one stream
// far better than four (on the Zen 3 VM: 19 vs 24 GB/s for a bf16 lm_head on 2 threads).
//
// Quantized matrices: row tiles of kWeightTileRows rows in which chunk j (one quantization
// group; the scales are tiled alike) of every row lies next to chunk j of the others. Only
// the layout changes; the kernels' summation order is that of the row-major matrix.
//
// Float matrices: column tiles of column_tile rows (two SIMD registers), stored column by
// column, so the products put the rows along the SIMD lanes (outer products, no horizontal
// sums). The depth is split in kColumnQuarters quarters that are interleaved: position kk of
// the tile holds columns kk, K/4 + kk, K/2 + kk, 3K/4 + kk, so a one-token GEMV runs four
// independent accumulator chains per register over one stream. Every output is then
//   ((S0 + S1) + S2) + S3,   S_q = the FMA chain over column kk of quarter q, kk ascending,
// whatever the number of input rows: prefill, batched and single-token decode agree bit for
// bit, and so do the ISAs with FMA (the order does not depend on the register width).
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

// Column tiles (float matrices).
constexpr int64_t kColumnQuarters = 4;
// The most rows a column tile has (two AVX-512 registers): thread splits align to it.
constexpr int64_t kMaxColumnTileRows = 32;

inline int64_t column_tile_rows(int64_t lanes) { return 2 * lanes; }

// Every row is in a column tile; the last tile is padded with zero rows up to column_tile.
inline int64_t column_tiled_rows(const WeightMatrix& w) {
  return w.column_tile > 0 ? (w.rows + w.column_tile - 1) / w.column_tile * w.column_tile : 0;
}

// Byte offset of weight (r, k) of a float matrix, in either layout.
inline int64_t float_weight_offset(const WeightMatrix& w, int64_t r, int64_t k) {
  const int64_t elem = weight_data_bytes(w.type, 1);
  if (w.column_tile > 0) {
    const int64_t TR = w.column_tile, K4 = w.cols / kColumnQuarters;
    return ((r / TR) * TR * w.cols + ((k % K4) * kColumnQuarters + k / K4) * TR + r % TR) * elem;
  }
  return (r * w.cols + k) * elem;
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

// A tiled copy of `src` (row-major) for kernels `lanes` floats wide: row tiles for the
// quantized types, column tiles for the float types. Its storage goes to `data` and
// `scales`. Returns `src` itself when tiling cannot apply: fewer rows than a tile, or
// columns that are not whole groups (quantized) or quarters (float).
WeightMatrix tile_weight_matrix(const WeightMatrix& src, int64_t lanes, AlignedBytes& data, AlignedBytes& scales);

}  // namespace m3::cpu
