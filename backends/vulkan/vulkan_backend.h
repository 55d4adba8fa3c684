// The Vulkan compute backend: weights resident in device memory in their checkpoint type
// (f32, f16, bf16), each slot's state a device buffer in the canonical layout, and the
// forward pass as the compute shaders of backends/vulkan/shaders, recorded into one
// command buffer per pass. Runs wherever a Vulkan 1.1 driver is: GPUs of any vendor, and
// the CPU through Mesa's lavapipe (the CI's device).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/backend.h"

namespace m3 {

class VulkanBackend final : public Backend {
 public:
  VulkanBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
                const BackendOptions& options);
  ~VulkanBackend() override;

  m3_backend kind() const override { return M3_BACKEND_VULKAN; }
  bool failed_pass_keeps_state() const override { return false; }

  std::unique_ptr<StateSlot> create_slot() override;
  void zero_slot(StateSlot& slot) override;
  void copy_slot(const StateSlot& src, StateSlot& dst) override;
  void read_slot(const StateSlot& slot, float* dst) const override;
  void write_slot(StateSlot& slot, const float* src) override;

  void prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
               float* logits) override;
  void decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) override;

  // The device the backend runs on, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)".
  std::string device_name() const override;
  // The shader variants the backend made pipelines of (tests check that the fallbacks run).
  std::vector<std::string> pipelines() const;

  // M3_OK when a usable Vulkan device exists, else the reason.
  static m3_status availability(std::string* why);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  mutable std::mutex run_mutex_;  // one pass at a time: the workspace and command buffer are shared
};

}  // namespace m3
