// The saved-state blob: a fixed little-endian header followed by the canonical float32
// state (see state_layout.h).
//
//   offset size field
//        0    8 magic "M3STATE\0"
//        8    4 ABI version (M3_ABI_VERSION)
//       12    4 header bytes (64)
//       16    4 dtype of the payload (0 = float32)
//       20    4 reserved (0)
//       24    8 model fingerprint (config + weights sample; see Model)
//       32    8 payload bytes
//       40    8 tokens absorbed by the state
//       48    8 checksum (FNV-1a 64 of the payload)
//       56    8 reserved (0)
//       64      payload
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3 {

constexpr std::size_t kStateBlobHeaderBytes = 64;

std::size_t state_blob_size(std::size_t state_bytes);

// Writes header + payload into out (state_blob_size(state_bytes) bytes).
void write_state_blob(uint64_t fingerprint, int64_t n_tokens, const float* state, std::size_t state_bytes,
                      void* out);

// Validates a blob and copies its payload into state (state_bytes). Throws m3::Error:
// M3_ERR_FORMAT for a truncated/damaged/foreign blob, M3_ERR_MODEL_MISMATCH when it was
// saved from another model.
void read_state_blob(const void* blob, std::size_t size, uint64_t fingerprint, float* state,
                     std::size_t state_bytes, int64_t* n_tokens);

}  // namespace m3
