// A loaded model: config, weights (mapped from the checkpoint), the backend that runs it,
// and the identity (fingerprint) that state blobs are checked against.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mamba3rt.h"
#include "model/mapped_file.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "session/state_layout.h"

namespace m3 {

class Backend;
class Tokenizer;

struct LoadOptions {
  m3_backend backend = M3_BACKEND_AUTO;
  m3_a_activation a_activation = M3_A_ACTIVATION_FROM_CONFIG;
  int threads = 0;  // CPU threads; 0 = MAMBA3RT_THREADS or one per core
  std::string device;  // GPU backends: a device index or part of its name; empty = the best
  uint64_t max_tensor_bytes = M3_DEFAULT_MAX_TENSOR_BYTES;  // 0 = no limit
  int64_t max_sessions = 0;                        // live sessions at once; 0 = no limit
};

class Model {
 public:
  // Loads config.json and model.safetensors (preferred) or pytorch_model.bin from dir.
  static std::unique_ptr<Model> load(const std::string& dir, const LoadOptions& options);
  ~Model();

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  const StateLayout& state_layout() const { return layout_; }
  Backend& backend() const { return *backend_; }
  uint64_t fingerprint() const { return fingerprint_; }
  const std::string& weights_path() const { return weights_path_; }
  // The directory's tokenizer.json, or null when there is none.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // Token ids that end a generation (may be empty).
  const std::vector<int32_t>& eos_tokens() const { return eos_tokens_; }

  // Counts one more live session; throws M3_ERR_LIMIT_EXCEEDED past LoadOptions::max_sessions.
  void acquire_session() const;
  void release_session() const noexcept;
  int64_t live_sessions() const { return live_sessions_.load(std::memory_order_relaxed); }
  int64_t max_sessions() const { return max_sessions_; }

 private:
  Model() = default;
  ModelConfig config_;
  std::unique_ptr<MappedFile> file_;
  std::vector<std::vector<uint64_t>> aligned_copies_;
  ModelWeights weights_;
  StateLayout layout_;
  std::unique_ptr<Backend> backend_;
  uint64_t fingerprint_ = 0;
  std::string weights_path_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::vector<int32_t> eos_tokens_;
  int64_t max_sessions_ = 0;
  mutable std::atomic<int64_t> live_sessions_{0};
};

}  // namespace m3
