// Fuzzes the torch.save() checkpoint reader (src/model/pytorch_checkpoint_reader): the ZIP
// layer, the restricted unpickler behind it, then every tensor view it hands out is read.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "model/pytorch_checkpoint_reader.h"
#include "tensor_view_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string kLabel = "pytorch_model.bin";
  std::vector<m3::TensorView> tensors;
  try {
    tensors = m3::read_pytorch_checkpoint(data, size, kLabel);
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, kLabel + ": ");
    return 0;
  }
  // Views always point into the archive itself (stored entries, zero copy).
  const auto nothing_owned = [](const uint8_t*, std::size_t) { return false; };
  for (const m3::TensorView& t : tensors) fuzz::check_tensor_view(t, data, size, nothing_owned);
  return 0;
}
