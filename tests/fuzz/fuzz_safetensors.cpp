// Fuzzes the safetensors reader (src/model/safetensors_reader) on whole files held in memory:
// the 8-byte header length, the JSON header, then every tensor view it hands out is read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "model/safetensors_reader.h"
#include "tensor_view_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string kPath = "fuzz.safetensors";
  std::vector<std::vector<uint64_t>> aligned_copies;
  m3::SafetensorsMetadata metadata;
  std::vector<m3::TensorView> tensors;
  try {
    tensors = m3::read_safetensors(data, size, kPath, aligned_copies, metadata);
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, kPath + ": ");
    return 0;
  }
  FUZZ_CHECK(aligned_copies.size() <= tensors.size());
  const auto owned = [&](const uint8_t* p, std::size_t n) {
    for (const auto& copy : aligned_copies) {
      const auto* begin = reinterpret_cast<const uint8_t*>(copy.data());
      if (p == begin && n <= copy.size() * sizeof(uint64_t)) return true;
    }
    return false;
  };
  for (const m3::TensorView& t : tensors) {
    FUZZ_CHECK(t.name != "__metadata__");
    fuzz::check_tensor_view(t, data, size, owned);
  }
  return 0;
}
