// The extern "C" layer: handle checks, argument checks and error reporting only; the
// work is done by m3::Model and m3::Session.
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "api/api_guard.h"
#include "api/handles.h"
#include "backend.h"
#include "common/error.h"
#include "mamba3rt.h"
#include "model/model.h"
#include "session/session.h"
#include "session/state_blob.h"

namespace {

using m3::fail;
using m3::api::guarded;
using m3::api::require;

m3_weight_type weight_type_code(m3::WeightType t) {
  switch (t) {
    case m3::WeightType::F32: return M3_WEIGHT_F32;
    case m3::WeightType::F16: return M3_WEIGHT_F16;
    case m3::WeightType::BF16: return M3_WEIGHT_BF16;
    case m3::WeightType::Q8: return M3_WEIGHT_INT8;
    case m3::WeightType::Q4: return M3_WEIGHT_Q4;
  }
  return M3_WEIGHT_F32;
}

}  // namespace

extern "C" {

const char* m3_status_name(m3_status status) {
  switch (status) {
    case M3_OK: return "M3_OK";
    case M3_ERR_INVALID_ARGUMENT: return "M3_ERR_INVALID_ARGUMENT";
    case M3_ERR_IO: return "M3_ERR_IO";
    case M3_ERR_FORMAT: return "M3_ERR_FORMAT";
    case M3_ERR_UNSUPPORTED: return "M3_ERR_UNSUPPORTED";
    case M3_ERR_OUT_OF_MEMORY: return "M3_ERR_OUT_OF_MEMORY";
    case M3_ERR_BACKEND_UNAVAILABLE: return "M3_ERR_BACKEND_UNAVAILABLE";
    case M3_ERR_BUFFER_TOO_SMALL: return "M3_ERR_BUFFER_TOO_SMALL";
    case M3_ERR_MODEL_MISMATCH: return "M3_ERR_MODEL_MISMATCH";
    case M3_ERR_SESSION_BUSY: return "M3_ERR_SESSION_BUSY";
    case M3_ERR_INTERNAL: return "M3_ERR_INTERNAL";
    case M3_ERR_LIMIT_EXCEEDED: return "M3_ERR_LIMIT_EXCEEDED";
    case M3_ERR_TIMEOUT: return "M3_ERR_TIMEOUT";
    case M3_ERR_STATE_LOST: return "M3_ERR_STATE_LOST";
  }
  return "M3_ERR_UNKNOWN";
}

const char* m3_last_error(void) { return m3::api::last_error(); }
const char* m3_version(void) { return MAMBA3RT_VERSION_STRING; }
uint32_t m3_abi_version(void) { return M3_ABI_VERSION; }
int64_t m3_live_handles(void) { return m3::api::live_handles(); }

const char* m3_backend_name(m3_backend backend) {
  switch (backend) {
    case M3_BACKEND_AUTO: return "auto";
    case M3_BACKEND_CPU: return "cpu";
    case M3_BACKEND_VULKAN: return "vulkan";
    case M3_BACKEND_CUDA: return "cuda";
    case M3_BACKEND_CPU_REFERENCE: return "cpu-reference";
  }
  return "unknown";
}

m3_status m3_backend_available(m3_backend backend) {
  return guarded([&] {
    std::string why;
    m3_status s = m3::backend_availability(backend, &why);
    if (s != M3_OK) fail(s, std::string("backend ") + m3_backend_name(backend) + ": " + why);
  });
}

m3_status m3_model_params_create(m3_model_params** out_params) {
  return guarded([&] {
    require(out_params, "out_params");
    *out_params = nullptr;
    *out_params = new m3_model_params();
    m3::api::handle_created();
  });
}

void m3_model_params_destroy(m3_model_params* params) {
  if (params) m3::api::handle_freed();
  delete params;
}

m3_status m3_model_params_set_backend(m3_model_params* params, m3_backend backend) {
  return guarded([&] {
    require(params, "params");
    if (backend < M3_BACKEND_AUTO || backend > M3_BACKEND_CPU_REFERENCE)
      fail(M3_ERR_INVALID_ARGUMENT, "unknown backend value " + std::to_string(static_cast<int>(backend)));
    params->options.backend = backend;
  });
}

m3_status m3_model_params_set_device(m3_model_params* params, const char* device) {
  return guarded([&] {
    require(params, "params");
    constexpr std::size_t kMaxDevice = 255;
    const std::size_t len = device ? strnlen(device, kMaxDevice + 1) : 0;
    if (len > kMaxDevice)
      fail(M3_ERR_INVALID_ARGUMENT, "device selector is longer than " + std::to_string(kMaxDevice) + " bytes");
    params->options.device.assign(device ? device : "", len);
  });
}

m3_status m3_model_params_set_threads(m3_model_params* params, int32_t n_threads) {
  return guarded([&] {
    require(params, "params");
    if (n_threads < 0 || n_threads > 1024)
      fail(M3_ERR_INVALID_ARGUMENT, "n_threads must be 0 (one per core) or 1..1024, got " + std::to_string(n_threads));
    params->options.threads = n_threads;
  });
}

m3_status m3_model_params_set_max_tensor_bytes(m3_model_params* params, int64_t max_bytes) {
  return guarded([&] {
    require(params, "params");
    if (max_bytes < 0) fail(M3_ERR_INVALID_ARGUMENT, "max_bytes must be 0 (no limit) or positive, got " + std::to_string(max_bytes));
    params->options.max_tensor_bytes = static_cast<uint64_t>(max_bytes);
  });
}

m3_status m3_model_params_set_max_sessions(m3_model_params* params, int32_t max_sessions) {
  return guarded([&] {
    require(params, "params");
    if (max_sessions < 0)
      fail(M3_ERR_INVALID_ARGUMENT, "max_sessions must be 0 (no limit) or positive, got " + std::to_string(max_sessions));
    params->options.max_sessions = max_sessions;
  });
}

m3_status m3_model_params_set_a_activation(m3_model_params* params, m3_a_activation activation) {
  return guarded([&] {
    require(params, "params");
    if (activation < M3_A_ACTIVATION_FROM_CONFIG || activation > M3_A_ACTIVATION_SOFTPLUS)
      fail(M3_ERR_INVALID_ARGUMENT, "unknown A activation value " + std::to_string(static_cast<int>(activation)));
    params->options.a_activation = activation;
  });
}

m3_status m3_model_load(const char* model_dir, const m3_model_params* params, m3_model** out_model) {
  return guarded([&] {
    require(out_model, "out_model");
    *out_model = nullptr;
    require(model_dir, "model_dir");
    m3::LoadOptions options = params ? params->options : m3::LoadOptions{};
    std::shared_ptr<const m3::Model> model = m3::Model::load(model_dir, options);
    *out_model = new m3_model{std::move(model), {}};
    (*out_model)->tokenizer.tokenizer = (*out_model)->model->tokenizer();
    m3::api::handle_created();
  });
}

void m3_model_free(m3_model* model) {
  if (model) m3::api::handle_freed();
  delete model;
}

m3_status m3_model_info(const m3_model* model, m3_model_info_key key, int64_t* out_value) {
  return guarded([&] {
    require(model, "model");
    require(out_value, "out_value");
    const m3::ModelConfig& c = model->model->config();
    const m3::ModelWeights& w = model->model->weights();
    int64_t v = 0;
    switch (key) {
      case M3_INFO_N_LAYER: v = c.n_layer; break;
      case M3_INFO_D_MODEL: v = c.d_model; break;
      case M3_INFO_VOCAB_SIZE: v = c.vocab_size; break;
      case M3_INFO_VOCAB_PADDED: v = c.vocab_padded; break;
      case M3_INFO_D_INNER: v = c.d_inner; break;
      case M3_INFO_N_HEADS: v = c.nheads; break;
      case M3_INFO_HEADDIM: v = c.headdim; break;
      case M3_INFO_D_STATE: v = c.d_state; break;
      case M3_INFO_N_GROUPS: v = c.ngroups; break;
      case M3_INFO_MIMO_RANK: v = c.mimo_rank; break;
      case M3_INFO_IS_MIMO: v = c.is_mimo; break;
      case M3_INFO_N_ROPE_ANGLES: v = c.n_angles; break;
      case M3_INFO_IS_OUTPROJ_NORM: v = c.is_outproj_norm; break;
      case M3_INFO_MLP_HIDDEN: v = w.mlp_hidden; break;
      case M3_INFO_TIE_EMBEDDINGS: v = c.tie_embeddings; break;
      case M3_INFO_A_ACTIVATION:
        v = c.a_activation == m3::AActivation::HeavyTail ? M3_A_ACTIVATION_HEAVY_TAIL : M3_A_ACTIVATION_SOFTPLUS;
        break;
      case M3_INFO_BACKEND: v = model->model->backend().kind(); break;
      case M3_INFO_STATE_BYTES: v = static_cast<int64_t>(model->model->state_layout().total_bytes()); break;
      case M3_INFO_STATE_BLOB_BYTES:
        v = static_cast<int64_t>(m3::state_blob_size(model->model->state_layout().total_bytes()));
        break;
      case M3_INFO_N_PARAMS: v = w.n_params; break;
      case M3_INFO_WEIGHT_BYTES: v = w.weight_bytes; break;
      case M3_INFO_THREADS: v = model->model->backend().threads(); break;
      case M3_INFO_WEIGHT_TYPE: v = weight_type_code(w.weight_type); break;
      case M3_INFO_LIVE_SESSIONS: v = model->model->live_sessions(); break;
      case M3_INFO_MAX_SESSIONS: v = model->model->max_sessions(); break;
      default: fail(M3_ERR_INVALID_ARGUMENT, "unknown model info key " + std::to_string(static_cast<int>(key)));
    }
    *out_value = v;
  });
}

m3_status m3_model_device_name(const m3_model* model, char* out_name, size_t capacity, size_t* out_len) {
  return guarded([&] {
    require(model, "model");
    require(out_len, "out_len");
    m3::api::copy_out(model->model->backend().device_name(), out_name, capacity, out_len, "device name");
  });
}

m3_status m3_session_create(m3_model* model, m3_session** out_session) {
  return guarded([&] {
    require(out_session, "out_session");
    *out_session = nullptr;
    require(model, "model");
    *out_session = new m3_session{std::make_unique<m3::Session>(model->model)};
    m3::api::handle_created();
  });
}

void m3_session_free(m3_session* session) {
  if (session) m3::api::handle_freed();
  delete session;
}

m3_status m3_session_reset(m3_session* session) {
  return guarded([&] {
    require(session, "session");
    m3::Session::InUse use(*session->session);
    session->session->reset();
  });
}

m3_status m3_session_feed(m3_session* session, const int32_t* tokens, size_t n_tokens, m3_logits_mode mode,
                          float* logits, size_t logits_capacity) {
  return guarded([&] {
    require(session, "session");
    m3::Session::InUse use(*session->session);
    session->session->feed(tokens, n_tokens, mode, logits, logits_capacity);
  });
}

m3_status m3_session_step(m3_session* session, int32_t token, float* logits, size_t logits_capacity) {
  return guarded([&] {
    require(session, "session");
    m3::Session::InUse use(*session->session);
    session->session->step(token, logits, logits_capacity);
  });
}

m3_status m3_decode_batch(m3_session* const* sessions, const int32_t* tokens, size_t n_sessions, float* logits,
                          size_t logits_capacity) {
  return guarded([&] {
    if (n_sessions == 0) return;
    require(sessions, "sessions");
    require(tokens, "tokens");
    std::vector<m3::Session*> batch(n_sessions);
    std::set<const m3_session*> seen;
    for (size_t i = 0; i < n_sessions; ++i) {
      if (!sessions[i]) fail(M3_ERR_INVALID_ARGUMENT, "sessions[" + std::to_string(i) + "] is NULL");
      if (!seen.insert(sessions[i]).second)
        fail(M3_ERR_INVALID_ARGUMENT, "sessions[" + std::to_string(i) + "] appears twice in the batch");
      batch[i] = sessions[i]->session.get();
    }
    std::vector<std::unique_ptr<m3::Session::InUse>> in_use;
    for (m3::Session* s : batch) in_use.push_back(std::make_unique<m3::Session::InUse>(*s));
    m3::Session::decode_batch(batch.data(), tokens, n_sessions, logits, logits_capacity);
  });
}

m3_status m3_session_n_tokens(const m3_session* session, int64_t* out_n_tokens) {
  return guarded([&] {
    require(session, "session");
    require(out_n_tokens, "out_n_tokens");
    m3::Session::InUse use(*session->session);
    *out_n_tokens = session->session->n_tokens();
  });
}

m3_status m3_session_save(const m3_session* session, void* buffer, size_t capacity, size_t* out_size) {
  return guarded([&] {
    require(session, "session");
    require(out_size, "out_size");
    m3::Session::InUse use(*session->session);
    session->session->save(buffer, capacity, out_size);
  });
}

m3_status m3_session_restore(m3_session* session, const void* blob, size_t size) {
  return guarded([&] {
    require(session, "session");
    m3::Session::InUse use(*session->session);
    session->session->restore(blob, size);
  });
}

m3_status m3_session_fork(const m3_session* session, m3_session** out_session) {
  return guarded([&] {
    require(out_session, "out_session");
    *out_session = nullptr;
    require(session, "session");
    m3::Session::InUse use(*session->session);
    *out_session = new m3_session{session->session->fork()};
    m3::api::handle_created();
  });
}

m3_status m3_session_read_state(const m3_session* session, int32_t layer, m3_state_part part, float* out,
                                size_t capacity, size_t* out_count) {
  return guarded([&] {
    require(session, "session");
    require(out_count, "out_count");
    m3::Session::InUse use(*session->session);
    session->session->read_state(layer, part, out, capacity, out_count);
  });
}

}  // extern "C"
