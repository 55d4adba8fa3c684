// Writes .safetensors files (used by the CLI, `mamba3rt quantize` and tools): any dtype of
// tensor.h, optional "__metadata__", either from tensors held in memory or streamed one
// tensor at a time.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "model/tensor.h"

namespace m3 {

struct OwnedTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel * dtype_size(dtype) bytes, little-endian
};

// Throws m3::Error(M3_ERR_IO) when the file cannot be written, M3_ERR_INVALID_ARGUMENT when a
// tensor's byte count does not match its dtype and shape. `metadata` (string -> string) is
// written as the header's "__metadata__" when not empty.
void write_safetensors(const std::string& path, const std::vector<OwnedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A tensor's header entry for the streaming writer.
struct TensorHeader {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

// Streams a file whose tensors are produced one after another (a checkpoint larger than
// memory): the constructor writes the header, write() appends data bytes (the tensors' bytes
// in the order of `tensors`, in calls of any size), finish() checks that exactly the declared
// bytes were written and closes. A writer destroyed without finish() leaves an incomplete
// file for the caller to remove.
class SafetensorsStreamWriter {
 public:
  SafetensorsStreamWriter(const std::string& path, const std::vector<TensorHeader>& tensors,
                          const std::map<std::string, std::string>& metadata = {});
  void write(const void* bytes, std::size_t n);
  void finish();

 private:
  std::string path_;
  std::ofstream out_;
  uint64_t total_ = 0;    // data bytes declared
  uint64_t written_ = 0;  // data bytes written so far
};

}  // namespace m3
