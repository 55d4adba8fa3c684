// mamba3rt logits: run token sequences through a model and write the logits of every
// position and the final per-layer states, in the official tensor names and shapes.
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cli_args.h"
#include "commands.h"
#include "model/mapped_file.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"

namespace cli {
namespace {

struct TokenBatch {
  int64_t batch = 0, length = 0;
  std::vector<int32_t> ids;  // [batch, length]
};

TokenBatch read_tokens(const std::string& path) {
  m3::MappedFile file(path);
  std::vector<std::vector<uint64_t>> copies;
  for (const m3::TensorView& t : m3::read_safetensors(file, copies)) {
    if (t.name != "tokens") continue;
    if (t.dtype != m3::DType::I32 || t.shape.size() != 2)
      throw std::runtime_error(path + ": 'tokens' must be int32 [batch, seqlen], got " + m3::dtype_name(t.dtype) +
                               " " + t.shape_string());
    TokenBatch b{t.shape[0], t.shape[1], std::vector<int32_t>(static_cast<std::size_t>(t.numel()))};
    std::memcpy(b.ids.data(), t.data, t.nbytes);
    return b;
  }
  throw std::runtime_error(path + ": no tensor named 'tokens'");
}

template <class T>
m3::OwnedTensor make_tensor(const std::string& name, m3::DType dtype, std::vector<int64_t> shape,
                            const std::vector<T>& values) {
  m3::OwnedTensor t{name, dtype, std::move(shape), std::vector<uint8_t>(values.size() * sizeof(T))};
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

using SessionPtr = std::unique_ptr<m3_session, void (*)(m3_session*)>;

}  // namespace

int run_logits(const std::vector<std::string>& argv) {
  Args args(argv, {"model", "tokens", "out", "mode", "backend", "device", "threads"}, {});
  const std::string mode = args.get_or("mode", "prefill");
  if (mode != "prefill" && mode != "step" && mode != "split")
    throw UsageError("--mode must be prefill, step or split");
  const TokenBatch tokens = read_tokens(args.require("tokens"));
  m3_model* model = load_model(args.require("model"), args);
  std::unique_ptr<m3_model, void (*)(m3_model*)> model_guard(model, m3_model_free);

  auto info = [&](m3_model_info_key key) {
    int64_t v = 0;
    check(m3_model_info(model, key, &v), "model info");
    return v;
  };
  const int64_t B = tokens.batch, L = tokens.length, V = info(M3_INFO_VOCAB_PADDED);
  if (L == 0) throw std::runtime_error("'tokens' has no positions");

  std::vector<SessionPtr> sessions;
  std::vector<m3_session*> raw;
  for (int64_t b = 0; b < B; ++b) {
    m3_session* s = nullptr;
    check(m3_session_create(model, &s), "creating a session");
    sessions.emplace_back(s, m3_session_free);
    raw.push_back(s);
  }

  // logits [B, L, V]. prefill feeds whole rows; step decodes all rows together, one position
  // at a time, through the batched call; split prefills the first half and steps the rest.
  std::vector<float> logits(static_cast<std::size_t>(B * L * V));
  const int64_t n_prefill = mode == "prefill" ? L : mode == "split" ? L / 2 : 0;
  if (n_prefill > 0)
    for (int64_t b = 0; b < B; ++b)
      check(m3_session_feed(raw[b], &tokens.ids[b * L], n_prefill, M3_LOGITS_ALL, &logits[b * L * V],
                            static_cast<std::size_t>(n_prefill * V)),
            "feeding tokens");
  std::vector<int32_t> column(B);
  std::vector<float> rows(static_cast<std::size_t>(B * V));
  for (int64_t t = n_prefill; t < L; ++t) {
    for (int64_t b = 0; b < B; ++b) column[b] = tokens.ids[b * L + t];
    check(m3_decode_batch(raw.data(), column.data(), B, rows.data(), rows.size()), "decoding");
    for (int64_t b = 0; b < B; ++b) std::memcpy(&logits[(b * L + t) * V], &rows[b * V], V * sizeof(float));
  }

  std::vector<m3::OwnedTensor> out;
  out.push_back(make_tensor("tokens", m3::DType::I32, {B, L}, tokens.ids));
  out.push_back(make_tensor("logits", m3::DType::F32, {B, L, V}, logits));
  const int64_t H = info(M3_INFO_N_HEADS), S = info(M3_INFO_N_ROPE_ANGLES), P = info(M3_INFO_HEADDIM),
                N = info(M3_INFO_D_STATE), R = info(M3_INFO_MIMO_RANK);
  const struct {
    const char* name;
    m3_state_part part;
    std::vector<int64_t> shape;
  } parts[] = {{"angle", M3_STATE_ANGLE, {B, H, S}},
               {"ssm", M3_STATE_SSM, {B, H, P, N}},
               {"k", M3_STATE_K, {B, R, H, N}},
               {"v", M3_STATE_V, {B, H, P}}};
  for (int64_t layer = 0; layer < info(M3_INFO_N_LAYER); ++layer) {
    for (const auto& part : parts) {
      std::vector<float> values;
      for (int64_t b = 0; b < B; ++b) {
        size_t count = 0;
        m3_session_read_state(raw[b], static_cast<int32_t>(layer), part.part, nullptr, 0, &count);
        std::vector<float> one(count);
        check(m3_session_read_state(raw[b], static_cast<int32_t>(layer), part.part, one.data(), count, &count),
              "reading the state");
        values.insert(values.end(), one.begin(), one.end());
      }
      out.push_back(make_tensor("state." + std::to_string(layer) + "." + part.name, m3::DType::F32, part.shape,
                                values));
    }
  }
  m3::write_safetensors(args.require("out"), out);
  return 0;
}

}  // namespace cli
