#include "model/safetensors_writer.h"

#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace m3 {
namespace {

uint64_t tensor_bytes(const TensorHeader& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0 || (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d)))
      fail(M3_ERR_INVALID_ARGUMENT, "tensor '" + t.name + "': bad shape for writing");
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

}  // namespace

SafetensorsStreamWriter::SafetensorsStreamWriter(const std::string& path, const std::vector<TensorHeader>& tensors,
                                                 const std::map<std::string, std::string>& metadata)
    : path_(path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name == "__metadata__" || header.contains(t.name))
      fail(M3_ERR_INVALID_ARGUMENT, path + ": tensor name '" + t.name + "' used twice or reserved");
    const uint64_t n = tensor_bytes(t);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  total_ = offset;
  std::string text = header.dump();
  while ((text.size() + 8) % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_) fail(M3_ERR_IO, path + ": cannot open for writing: " + std::strerror(errno));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(uint64_t(text.size()) >> (8 * i));
  out_.write(reinterpret_cast<const char*>(len), 8);
  out_.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out_) fail(M3_ERR_IO, path + ": write failed");
}

void SafetensorsStreamWriter::write(const void* bytes, std::size_t n) {
  if (n > total_ - written_)
    fail(M3_ERR_INVALID_ARGUMENT, path_ + ": more data written than the header declares (" +
                                      std::to_string(total_) + " bytes)");
  out_.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  if (!out_) fail(M3_ERR_IO, path_ + ": write failed (disk full?)");
  written_ += n;
}

void SafetensorsStreamWriter::finish() {
  if (written_ != total_)
    fail(M3_ERR_INVALID_ARGUMENT, path_ + ": " + std::to_string(written_) + " data bytes written, the header declares " +
                                      std::to_string(total_));
  out_.close();
  if (!out_) fail(M3_ERR_IO, path_ + ": write failed");
}

void write_safetensors(const std::string& path, const std::vector<OwnedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<TensorHeader> headers;
  headers.reserve(tensors.size());
  for (const auto& t : tensors) headers.push_back({t.name, t.dtype, t.shape});
  for (const auto& t : tensors)
    if (t.bytes.size() != tensor_bytes({t.name, t.dtype, t.shape}))
      fail(M3_ERR_INVALID_ARGUMENT, path + ": tensor '" + t.name + "' has " + std::to_string(t.bytes.size()) +
                                        " bytes; its dtype and shape need " +
                                        std::to_string(tensor_bytes({t.name, t.dtype, t.shape})));
  SafetensorsStreamWriter writer(path, headers, metadata);
  for (const auto& t : tensors) writer.write(t.bytes.data(), t.bytes.size());
  writer.finish();
}

}  // namespace m3
