// Fuzzes restoring session state blobs (src/session/state_blob, Session::restore) into a
// session of a small golden model (tests/data/golden/siso_basic, CPU reference backend).
//
// The first input byte asks the harness to repair parts of the blob that follows, so that the
// fuzzer also reaches the paths behind each check (bit 0: magic, version, header size and dtype;
// bit 1: this model's fingerprint; bit 2: payload size, the blob cut or zero-padded to fit;
// bit 3: the checksum). What must hold:
//   - a refused blob is an m3::Error ("state blob: ...") and leaves the session as it was;
//   - an accepted blob saves back byte for byte, and the session runs a step from it (the
//     state may hold any floats, NaN and infinities included).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/hash.h"
#include "fuzz_check.h"
#include "model/model.h"
#include "session/session.h"
#include "session/state_blob.h"

namespace {

struct Fixture {
  std::shared_ptr<const m3::Model> model;
  std::unique_ptr<m3::Session> session;
  std::vector<float> logits;
  std::vector<uint8_t> start;  // the state every input starts from: one token fed
};

Fixture& fixture() {
  static Fixture f = [] {
    m3::LoadOptions options;
    options.backend = M3_BACKEND_CPU_REFERENCE;
    options.threads = 1;
    Fixture x;
    x.model = m3::Model::load(std::string(MAMBA3RT_SOURCE_DIR) + "/tests/data/golden/siso_basic", options);
    x.session = std::make_unique<m3::Session>(x.model);
    x.logits.resize(static_cast<std::size_t>(x.model->config().vocab_padded));
    x.session->step(1, nullptr, 0);
    x.start.resize(x.session->blob_size());
    std::size_t n = 0;
    x.session->save(x.start.data(), x.start.size(), &n);
    return x;
  }();
  return f;
}

template <class T>
void put_le(uint8_t* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

uint64_t get_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

std::vector<uint8_t> repaired_blob(const uint8_t* data, std::size_t size, uint8_t repairs, const m3::Model& model) {
  std::vector<uint8_t> blob(data, data + size);
  blob.reserve(1);  // a real buffer even for 0 bytes: restore(NULL, 0) is another error
  if (repairs == 0) return blob;
  const std::size_t state_bytes = model.state_layout().total_bytes();
  if (blob.size() < m3::kStateBlobHeaderBytes) blob.resize(m3::kStateBlobHeaderBytes);
  uint8_t* h = blob.data();
  if (repairs & 1u) {
    std::memcpy(h, "M3STATE", 8);
    put_le<uint32_t>(h + 8, M3_ABI_VERSION);
    put_le<uint32_t>(h + 12, m3::kStateBlobHeaderBytes);
    put_le<uint32_t>(h + 16, 0);
  }
  if (repairs & 2u) put_le<uint64_t>(h + 24, model.fingerprint());
  if (repairs & 4u) {
    put_le<uint64_t>(h + 32, state_bytes);
    blob.resize(m3::kStateBlobHeaderBytes + state_bytes);
  }
  if (repairs & 8u) {
    m3::Fnv1a64 sum;
    const std::size_t payload = blob.size() - m3::kStateBlobHeaderBytes;
    sum.update(blob.data() + m3::kStateBlobHeaderBytes, payload);
    put_le<uint64_t>(blob.data() + 48, sum.digest());
  }
  return blob;
}

std::vector<uint8_t> saved(const m3::Session& session) {
  std::vector<uint8_t> out(session.blob_size());
  std::size_t n = 0;
  session.save(out.data(), out.size(), &n);
  FUZZ_CHECK(n == out.size());
  return out;
}

// Both blobs equal; on a mismatch, says where they first differ.
void check_same_blob(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want) {
  if (got == want) return;
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  std::fprintf(stderr, "blobs of %zu and %zu bytes differ first at byte %zu\n", got.size(), want.size(),
               static_cast<std::size_t>(diff.first - got.begin()));
  FUZZ_CHECK(got == want);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  m3::Session& session = *f.session;
  // A known, non-zero starting state.
  session.restore(f.start.data(), f.start.size());
  const std::vector<uint8_t>& before = f.start;

  const std::vector<uint8_t> blob = repaired_blob(data + 1, size - 1, data[0] & 15u, *f.model);
  try {
    session.restore(blob.data(), blob.size());
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, "state blob: ");
    FUZZ_CHECK(e.status() == M3_ERR_FORMAT || e.status() == M3_ERR_MODEL_MISMATCH);
    FUZZ_CHECK(session.n_tokens() == 1);
    check_same_blob(saved(session), before);  // a failed restore changes nothing
    return 0;
  }
  FUZZ_CHECK(blob.size() == session.blob_size());
  FUZZ_CHECK(session.n_tokens() == static_cast<int64_t>(get_le64(blob.data() + 40)));
  check_same_blob(saved(session), blob);
  const int64_t restored_tokens = session.n_tokens();
  session.step(static_cast<int32_t>(data[0] >> 4), f.logits.data(), f.logits.size());
  FUZZ_CHECK(session.n_tokens() > restored_tokens);  // counting on from the blob's count
  return 0;
}
