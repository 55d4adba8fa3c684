// Writes float32/int32 tensors to a .safetensors file (used by the CLI and tools).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace m3 {

struct OwnedTensor {
  std::string name;
  DType dtype = DType::F32;  // F32 or I32
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Throws m3::Error(M3_ERR_IO) when the file cannot be written.
void write_safetensors(const std::string& path, const std::vector<OwnedTensor>& tensors);

}  // namespace m3
