#include "model/model.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "backend.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/read_file.h"
#include "model/eos_tokens.h"
#include "model/pytorch_checkpoint_reader.h"
#include "model/safetensors_reader.h"
#include "tokenizer/tokenizer.h"

namespace m3 {
namespace {

bool is_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A config.json is a few hundred bytes; anything near this is not one.
constexpr std::size_t kMaxConfigBytes = std::size_t{16} << 20;

// Refuses a checkpoint holding a tensor over the caller's limit before anything is converted,
// quantized or uploaded (the views themselves point into the mapped file).
void check_tensor_sizes(const std::vector<TensorView>& tensors, uint64_t max_bytes, const std::string& path) {
  if (max_bytes == 0) return;
  for (const TensorView& t : tensors)
    if (t.nbytes > max_bytes)
      fail(M3_ERR_LIMIT_EXCEEDED, path + ": tensor '" + t.name + "' " + t.shape_string() + " holds " +
                                      std::to_string(t.nbytes) + " bytes, over the limit of " +
                                      std::to_string(max_bytes) + " (m3_model_params_set_max_tensor_bytes)");
}

}  // namespace

Model::~Model() = default;

void Model::acquire_session() const {
  // Compare-and-swap rather than add-then-undo, so that a create refused at the limit never
  // makes a concurrent one fail while a place is free.
  int64_t live = live_sessions_.load(std::memory_order_relaxed);
  do {
    if (max_sessions_ > 0 && live >= max_sessions_)
      fail(M3_ERR_LIMIT_EXCEEDED, "the model already has its maximum of " + std::to_string(max_sessions_) +
                                      " live sessions (m3_model_params_set_max_sessions)");
  } while (!live_sessions_.compare_exchange_weak(live, live + 1, std::memory_order_relaxed));
}

void Model::release_session() const noexcept { live_sessions_.fetch_sub(1, std::memory_order_relaxed); }

std::unique_ptr<Model> Model::load(const std::string& dir, const LoadOptions& options) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) fail(M3_ERR_IO, dir + ": model directory not found: " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) fail(M3_ERR_IO, dir + ": not a directory (pass the model directory)");

  std::unique_ptr<Model> m(new Model());
  m->max_sessions_ = options.max_sessions;
  const std::string config_path = dir + "/config.json";
  if (!is_file(config_path)) fail(M3_ERR_IO, config_path + ": missing (a model directory needs config.json)");
  m->config_ = parse_model_config(read_whole_file(config_path, kMaxConfigBytes, "config.json"), config_path);
  if (options.a_activation == M3_A_ACTIVATION_HEAVY_TAIL) m->config_.a_activation = AActivation::HeavyTail;
  if (options.a_activation == M3_A_ACTIVATION_SOFTPLUS) m->config_.a_activation = AActivation::Softplus;

  std::vector<TensorView> tensors;
  SafetensorsMetadata metadata;  // says how quantized weights are stored (docs/FORMATS.md)
  if (is_file(dir + "/model.safetensors")) {
    m->weights_path_ = dir + "/model.safetensors";
    m->file_ = std::make_unique<MappedFile>(m->weights_path_);
    tensors = read_safetensors(*m->file_, m->aligned_copies_, metadata);
  } else if (is_file(dir + "/pytorch_model.bin")) {
    m->weights_path_ = dir + "/pytorch_model.bin";
    m->file_ = std::make_unique<MappedFile>(m->weights_path_);
    tensors = read_pytorch_checkpoint(*m->file_);
  } else {
    fail(M3_ERR_IO, dir + ": no weights: expected model.safetensors or pytorch_model.bin");
  }
  check_tensor_sizes(tensors, options.max_tensor_bytes, m->weights_path_);
  m->weights_ = bind_model_weights(m->config_, tensors, m->weights_path_, metadata);
  m->layout_ = make_state_layout(m->config_);

  Fnv1a64 h;
  h.update(m->config_.canonical());
  h.update_value(m->weights_.content_hash);
  m->fingerprint_ = h.digest();

  const std::string tokenizer_path = dir + "/tokenizer.json";
  if (is_file(tokenizer_path)) {
    m->tokenizer_ = Tokenizer::from_file(tokenizer_path);
    if (m->tokenizer_->vocab_size() > m->config_.vocab_size)
      fail(M3_ERR_FORMAT, tokenizer_path + ": has token ids up to " + std::to_string(m->tokenizer_->vocab_size() - 1) +
                              " but the model's vocab_size is " + std::to_string(m->config_.vocab_size));
  }
  m->eos_tokens_ = find_eos_tokens(dir, m->tokenizer_.get(), m->config_.vocab_size);

  BackendOptions backend_options;
  backend_options.threads = options.threads;
  backend_options.device = options.device;
  backend_options.release_weight_pages = [file = m->file_.get()](const void* p, std::size_t n) {
    file->release_pages(p, n);
  };
  m->backend_ = create_backend(options.backend, backend_options, m->config_, m->weights_, m->layout_);
  return m;
}

}  // namespace m3
