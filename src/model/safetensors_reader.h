// Reads the tensor directory of a .safetensors file (8-byte little-endian header length,
// a JSON header, then the raw data) without copying the data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/tensor.h"

namespace m3 {

// Returns one view per tensor, in header order. Throws m3::Error(M3_ERR_FORMAT) naming the
// file and tensor when the header is malformed, truncated, or inconsistent with the data.
// Tensors whose data is not aligned for their dtype are copied into `aligned_copies`.
std::vector<TensorView> read_safetensors(const MappedFile& file,
                                         std::vector<std::vector<uint64_t>>& aligned_copies);

// The header's optional "__metadata__" object: string keys to string values, as the format
// defines it (values of other JSON types are left out).
using SafetensorsMetadata = std::map<std::string, std::string>;

// The same, also returning the metadata (empty when the file has none) in `metadata`.
// (Both reject a "__metadata__" entry that is not a JSON object, with M3_ERR_FORMAT.)
std::vector<TensorView> read_safetensors(const MappedFile& file,
                                         std::vector<std::vector<uint64_t>>& aligned_copies,
                                         SafetensorsMetadata& metadata);

// The same for a file already in memory: the views point into [bytes, bytes + size) (or into
// `aligned_copies`), which must outlive them; `path` names the file in messages.
std::vector<TensorView> read_safetensors(const uint8_t* bytes, std::size_t size, const std::string& path,
                                         std::vector<std::vector<uint64_t>>& aligned_copies,
                                         SafetensorsMetadata& metadata);

}  // namespace m3
