// The CPU reference backend: a direct, float32 transcription of the Mamba-3 inference
// math (../shared/spec/MAMBA3.md §3-4), token by token. It is the oracle that every
// other backend is tested against; clarity wins over speed here.
#pragma once

#include "backends/cpu/host_state_backend.h"

namespace m3 {

class CpuReferenceBackend final : public HostStateBackend {
 public:
  CpuReferenceBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout);

  m3_backend kind() const override { return M3_BACKEND_CPU; }
  std::unique_ptr<StateSlot> create_slot() override;
  void prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
               float* logits) override;
  void decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) override;

 private:
  struct Slot;
  // Runs one token through the whole model, updating the slot's state; writes logits if non-null.
  void forward_token(Slot& slot, int32_t token, float* logits) const;
  // One Mamba-3 mixer step for layer `layer`: u [D] -> out [D].
  void mixer_step(Slot& slot, int64_t layer, const float* u, float* out) const;
  void mlp(Slot& slot, int64_t layer, const float* u, float* out) const;

  const ModelConfig& c_;
  const ModelWeights& w_;
  const StateLayout& layout_;
};

}  // namespace m3
