// Fuzzes the restricted unpickler (src/model/pickle_reader) on bare pickles, without the ZIP
// around them that the checkpoint target needs: a state dict either comes out consistent or
// the pickle is rejected with an m3::Error naming it.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "model/pickle_reader.h"

namespace {

bool points_into(std::string_view s, const uint8_t* data, std::size_t size) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  return s.empty() || (p >= data && s.size() <= size && p - data <= static_cast<std::ptrdiff_t>(size - s.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string kWhere = "archive/data.pkl";
  m3::PickledStateDict sd;
  try {
    sd = m3::read_pickled_state_dict(std::span<const uint8_t>(data, size), kWhere);
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, kWhere + ": ");
    return 0;
  }
  for (const m3::PickledStorage& s : sd.storages) {
    FUZZ_CHECK(s.numel >= 0);
    FUZZ_CHECK(points_into(s.key, data, size) && points_into(s.location, data, size));
  }
  for (const m3::PickledTensor& t : sd.tensors) {
    FUZZ_CHECK(t.storage < sd.storages.size());
    FUZZ_CHECK(t.shape.size() == t.stride.size());
    FUZZ_CHECK(points_into(t.name, data, size));
  }
  return 0;
}
