#include "session/state_blob.h"

#include <cstring>

#include "common/error.h"
#include "common/hash.h"

namespace m3 {
namespace {

constexpr char kMagic[8] = {'M', '3', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr int64_t kMaxTokens = int64_t{1} << 62;

template <class T>
void put(uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}
template <class T>
T get(const uint8_t* p) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return static_cast<T>(v);
}

uint64_t checksum(const void* data, std::size_t n) {
  Fnv1a64 h;
  h.update(data, n);
  return h.digest();
}

}  // namespace

std::size_t state_blob_size(std::size_t state_bytes) { return kStateBlobHeaderBytes + state_bytes; }

void write_state_blob(uint64_t fingerprint, int64_t n_tokens, const float* state, std::size_t state_bytes,
                      void* out) {
  auto* p = static_cast<uint8_t*>(out);
  std::memset(p, 0, kStateBlobHeaderBytes);
  std::memcpy(p, kMagic, 8);
  put<uint32_t>(p + 8, M3_ABI_VERSION);
  put<uint32_t>(p + 12, kStateBlobHeaderBytes);
  put<uint32_t>(p + 16, 0);
  put<uint64_t>(p + 24, fingerprint);
  put<uint64_t>(p + 32, state_bytes);
  put<uint64_t>(p + 40, static_cast<uint64_t>(n_tokens));
  put<uint64_t>(p + 48, checksum(state, state_bytes));
  std::memcpy(p + kStateBlobHeaderBytes, state, state_bytes);
}

void read_state_blob(const void* blob, std::size_t size, uint64_t fingerprint, float* state,
                     std::size_t state_bytes, int64_t* n_tokens) {
  const auto* p = static_cast<const uint8_t*>(blob);
  if (size < kStateBlobHeaderBytes) fail(M3_ERR_FORMAT, "state blob: truncated (" + std::to_string(size) + " bytes)");
  if (std::memcmp(p, kMagic, 8) != 0) fail(M3_ERR_FORMAT, "state blob: bad magic (not a mamba3rt state blob)");
  if (get<uint32_t>(p + 8) != M3_ABI_VERSION)
    fail(M3_ERR_FORMAT, "state blob: ABI version " + std::to_string(get<uint32_t>(p + 8)) + ", this library reads " +
                            std::to_string(M3_ABI_VERSION));
  if (get<uint32_t>(p + 12) != kStateBlobHeaderBytes || get<uint32_t>(p + 16) != 0)
    fail(M3_ERR_FORMAT, "state blob: unknown header size or payload dtype");
  // Reserved fields must be zero, as written, so that a later format can give them a meaning
  // that this reader then refuses instead of ignoring.
  if (get<uint32_t>(p + 20) != 0 || get<uint64_t>(p + 56) != 0)
    fail(M3_ERR_FORMAT, "state blob: reserved header fields are not zero (damaged, or a newer format)");
  if (get<uint64_t>(p + 24) != fingerprint)
    fail(M3_ERR_MODEL_MISMATCH, "state blob: saved from a different model (fingerprint mismatch)");
  const uint64_t payload = get<uint64_t>(p + 32);
  if (payload != state_bytes)
    fail(M3_ERR_MODEL_MISMATCH, "state blob: holds " + std::to_string(payload) + " state bytes, this model needs " +
                                    std::to_string(state_bytes));
  if (size != kStateBlobHeaderBytes + state_bytes)
    fail(M3_ERR_FORMAT, "state blob: size " + std::to_string(size) + " bytes, expected " +
                            std::to_string(kStateBlobHeaderBytes + state_bytes));
  if (checksum(p + kStateBlobHeaderBytes, state_bytes) != get<uint64_t>(p + 48))
    fail(M3_ERR_FORMAT, "state blob: checksum mismatch (damaged data)");
  const int64_t tokens = static_cast<int64_t>(get<uint64_t>(p + 40));
  if (tokens < 0) fail(M3_ERR_FORMAT, "state blob: negative token count");
  // The session keeps counting from here; a bound far above any real stream (2^62 tokens, over
  // a century at a billion tokens per second) keeps that count from overflowing.
  if (tokens > kMaxTokens)
    fail(M3_ERR_FORMAT, "state blob: token count " + std::to_string(tokens) + " is implausibly large (above 2^62)");
  std::memcpy(state, p + kStateBlobHeaderBytes, state_bytes);
  *n_tokens = tokens;
}

}  // namespace m3
