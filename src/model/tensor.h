// A read-only view of one named tensor inside a mapped checkpoint file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace m3 {

enum class DType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

// Bytes per element.
std::size_t dtype_size(DType dtype);
// Name as safetensors spells it ("F32", "BF16", ...).
const char* dtype_name(DType dtype);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // row-major, contiguous
  const void* data = nullptr;  // points into the mapped file (or an aligned copy)
  std::size_t nbytes = 0;      // == numel * dtype_size(dtype)

  int64_t numel() const;
  std::string shape_string() const;  // "[304, 64]"
};

}  // namespace m3
