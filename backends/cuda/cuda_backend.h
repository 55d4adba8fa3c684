// The CUDA backend: weights resident on the GPU in their checkpoint type (f32, f16, bf16),
// state slots in device memory (fp32, canonical layout), the projections as cuBLAS
// matrix products and the rest as the kernels of cuda_kernels.h. Built into the module
// libmamba3rt_cuda.so (cuda_module_abi.h), never into libmamba3rt itself.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/backend.h"

namespace m3 {

class CudaBackend final : public Backend {
 public:
  CudaBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
              const BackendOptions& options);
  ~CudaBackend() override;

  m3_backend kind() const override { return M3_BACKEND_CUDA; }
  bool failed_pass_keeps_state() const override { return false; }
  // cudaDeviceProp::name of the device it runs on, e.g. "NVIDIA H100 80GB HBM3".
  std::string device_name() const override;

  std::unique_ptr<StateSlot> create_slot() override;
  void zero_slot(StateSlot& slot) override;
  void copy_slot(const StateSlot& src, StateSlot& dst) override;
  void read_slot(const StateSlot& slot, float* dst) const override;
  void write_slot(StateSlot& slot, const float* src) override;

  void prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
               float* logits) override;
  void decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) override;

  // M3_OK when a CUDA device is usable, else the reason.
  static m3_status availability(std::string* why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::mutex run_mutex_;  // one pass at a time: the workspace and the stream are shared
};

}  // namespace m3
