// A restricted unpickler for the data.pkl of a torch.save() archive. It interprets only the
// pickle opcodes (protocols 2-5) and the handful of globals that a state dict of tensors needs,
// and builds a small inert value model: nothing from the file is ever imported, called or
// executed. Any other opcode or global is rejected with an error naming it.
//
// Resource use is bounded: the interpreter is a single forward pass over the bytes (no loops
// driven by the data, no recursion), every read is bounds-checked, and the stack, mark stack,
// memo and containers are capped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/tensor.h"

namespace m3 {

// A storage named by a persistent id ('storage', torch.<T>Storage, key, location, numel).
struct PickledStorage {
  DType dtype = DType::U8;
  std::string_view key;       // its bytes are the archive entry <prefix>/data/<key>
  std::string_view location;  // "cpu", "cuda:0", ... (informational)
  int64_t numel = 0;          // in elements of dtype
};

// A tensor rebuilt by torch._utils._rebuild_tensor(_v2). Shape and strides are as pickled;
// checking them against the storage is left to the caller, which knows the storage bytes.
struct PickledTensor {
  std::string_view name;       // the state dict key
  std::size_t storage = 0;     // index into PickledStateDict::storages
  int64_t storage_offset = 0;  // in elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;
};

struct PickledStateDict {
  // One per persistent id in the pickle, in order of appearance (the same key may repeat).
  std::vector<PickledStorage> storages;
  // The top-level dict's items in file order. Keys that refer to one tensor object (tied
  // weights) appear as separate items with equal contents.
  std::vector<PickledTensor> tensors;
};

// Unpickles `pickle`, whose top-level object must be a dict (or OrderedDict) mapping strings to
// tensors. The string_views in the result point into `pickle`. `where` (e.g. "<path>:
// archive/data.pkl") starts every error message. Throws m3::Error: M3_ERR_UNSUPPORTED for a
// disallowed global or a standard pickle opcode outside the supported set, M3_ERR_FORMAT for a
// byte that is no pickle opcode at all, anything malformed or truncated, or a top-level object
// that is not a state dict of tensors. Messages name the opcode, its offset and the global.
PickledStateDict read_pickled_state_dict(std::span<const uint8_t> pickle, const std::string& where);

}  // namespace m3
