#include "model/safetensors_reader.h"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/error.h"
#include "common/json_document.h"

namespace m3 {
namespace {

// A header larger than this is not a checkpoint header (safetensors itself caps it at 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::optional<DType> parse_dtype(const std::string& s) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "F64") return DType::F64;
  if (s == "I64") return DType::I64;
  if (s == "I32") return DType::I32;
  if (s == "I16") return DType::I16;
  if (s == "I8") return DType::I8;
  if (s == "U8") return DType::U8;
  if (s == "BOOL") return DType::Bool;
  return std::nullopt;
}

}  // namespace

std::vector<TensorView> read_safetensors(const MappedFile& file,
                                         std::vector<std::vector<uint64_t>>& aligned_copies) {
  SafetensorsMetadata ignored;
  return read_safetensors(file, aligned_copies, ignored);
}

std::vector<TensorView> read_safetensors(const MappedFile& file,
                                         std::vector<std::vector<uint64_t>>& aligned_copies,
                                         SafetensorsMetadata& metadata) {
  return read_safetensors(file.data(), file.size(), file.path(), aligned_copies, metadata);
}

std::vector<TensorView> read_safetensors(const uint8_t* bytes, std::size_t size, const std::string& path,
                                         std::vector<std::vector<uint64_t>>& aligned_copies,
                                         SafetensorsMetadata& metadata) {
  metadata.clear();
  if (size < 8) fail(M3_ERR_FORMAT, path + ": truncated safetensors file (no header length)");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxHeaderBytes)
    fail(M3_ERR_FORMAT, path + ": safetensors header length " + std::to_string(header_len) +
                            " is implausible (corrupt file?)");
  if (header_len > size - 8)
    fail(M3_ERR_FORMAT, path + ": truncated safetensors file: header needs " +
                            std::to_string(header_len) + " bytes, file has " +
                            std::to_string(size - 8));
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  JsonDocument document;  // freed without allocating (json_document.h)
  nlohmann::json& header = document.root;
  try {
    header = nlohmann::json::parse(header_begin, header_begin + header_len);
  } catch (const nlohmann::json::exception& e) {
    fail(M3_ERR_FORMAT, path + ": safetensors header is not valid JSON: " + e.what());
  }
  if (!header.is_object()) fail(M3_ERR_FORMAT, path + ": safetensors header is not a JSON object");

  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<TensorView> tensors;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) fail(M3_ERR_FORMAT, path + ": safetensors __metadata__ is not a JSON object");
      for (const auto& [key, value] : info.items())
        if (value.is_string()) metadata[key] = value.get<std::string>();
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets"))
      fail(M3_ERR_FORMAT, where + ": header entry needs dtype, shape and data_offsets");
    const auto& jd = info["dtype"];
    const auto& js = info["shape"];
    const auto& jo = info["data_offsets"];
    if (!jd.is_string()) fail(M3_ERR_FORMAT, where + ": dtype is not a string");
    auto dtype = parse_dtype(jd.get<std::string>());
    if (!dtype) fail(M3_ERR_UNSUPPORTED, where + ": unsupported dtype " + jd.get<std::string>());
    if (!js.is_array()) fail(M3_ERR_FORMAT, where + ": shape is not an array");
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      fail(M3_ERR_FORMAT, where + ": data_offsets must be two non-negative integers");

    TensorView t;
    t.name = name;
    t.dtype = *dtype;
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) fail(M3_ERR_FORMAT, where + ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v))
        fail(M3_ERR_FORMAT, where + ": shape overflows");
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const uint64_t begin = jo[0].get<uint64_t>(), end = jo[1].get<uint64_t>();
    const uint64_t elem = dtype_size(*dtype);
    if (numel > std::numeric_limits<uint64_t>::max() / elem) fail(M3_ERR_FORMAT, where + ": size overflows");
    if (begin > end || end > data_size)
      fail(M3_ERR_FORMAT, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                              "] lie outside the " + std::to_string(data_size) +
                              " data bytes (truncated file?)");
    if (end - begin != numel * elem)
      fail(M3_ERR_FORMAT, where + ": shape " + t.shape_string() + " of " + jd.get<std::string>() + " needs " +
                              std::to_string(numel * elem) + " bytes but data_offsets span " +
                              std::to_string(end - begin));
    t.nbytes = static_cast<std::size_t>(end - begin);
    t.data = data + begin;
    // An empty tensor is never read: it needs no copy (and a copy of 0 bytes has no buffer).
    if (t.nbytes > 0 && reinterpret_cast<uintptr_t>(t.data) % elem != 0) {
      // The header is padded so that data is normally aligned; copy the rare odd one.
      aligned_copies.emplace_back((t.nbytes + 7) / 8);
      std::memcpy(aligned_copies.back().data(), t.data, t.nbytes);
      t.data = aligned_copies.back().data();
    }
    tensors.push_back(std::move(t));
  }
  return tensors;
}

}  // namespace m3
