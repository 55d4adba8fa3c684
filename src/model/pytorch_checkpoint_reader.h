// Reader for PyTorch checkpoints written by torch.save(state_dict) (pytorch_model.bin): a ZIP
// archive holding <prefix>/data.pkl, a pickled dict of tensors, whose storages are the entries
// <prefix>/data/<key>. The pickle is interpreted by a restricted unpickler that executes
// nothing (see pickle_reader.h), so an untrusted checkpoint can at worst be rejected.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/mapped_file.h"
#include "model/tensor.h"

namespace m3 {

// Parses a torch.save() zip archive holding a state dict of tensors. Returns one view per key
// (keys in file order). Views point into `file` (zero copy): torch stores entries uncompressed.
// Two keys that share a storage (tied embeddings: backbone.embedding.weight and lm_head.weight)
// both appear, pointing at the same bytes. Throws m3::Error (M3_ERR_FORMAT for corrupt/malformed
// input, M3_ERR_UNSUPPORTED for valid-but-unsupported things like compressed entries,
// non-contiguous strides, big-endian byteorder, or a disallowed pickle global) with a message that
// starts with the file path and names the entry/key/opcode/global at fault.
std::vector<TensorView> read_pytorch_checkpoint(const MappedFile& file);

// The same for a checkpoint already in memory: the views point into [data, data + size), which
// must outlive them; `label` stands for the file path in error messages.
std::vector<TensorView> read_pytorch_checkpoint(const uint8_t* data, std::size_t size,
                                                const std::string& label);

}  // namespace m3
