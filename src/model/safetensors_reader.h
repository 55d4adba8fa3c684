// Reads the tensor directory of a .safetensors file (8-byte little-endian header length,
// a JSON header, then the raw data) without copying the data.
#pragma once

#include <vector>

#include "model/mapped_file.h"
#include "model/tensor.h"

namespace m3 {

// Returns one view per tensor, in header order. Throws m3::Error(M3_ERR_FORMAT) naming the
// file and tensor when the header is malformed, truncated, or inconsistent with the data.
// Tensors whose data is not aligned for their dtype are copied into `aligned_copies`.
std::vector<TensorView> read_safetensors(const MappedFile& file,
                                         std::vector<std::vector<uint64_t>>& aligned_copies);

}  // namespace m3
