// The fast CPU backend: SIMD kernels chosen at run time (simd/kernel_table.h) and the
// backend's own thread pool. Every pass runs a block of token rows through the model
// layer by layer, so the projections are GEMVs for one token, skinny GEMMs for a few
// sessions decoding together and packed GEMMs for prefill; the recurrence runs per head
// in parallel, each head walking its rows in order.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "backends/cpu/simd/kernel_table.h"
#include "backends/cpu/thread_pool.h"
#include "backends/cpu/host_state_backend.h"
#include "backends/cpu/weight_tiling.h"
#include "src/backend.h"

namespace m3 {

class CpuFastBackend final : public HostStateBackend {
 public:
  // threads: 0 = cpu::default_thread_count().
  // The weight matrices are copied into the tiled layout (weight_tiling.h); the source
  // ranges copied are passed to `release` (when given) once done.
  CpuFastBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout, int threads,
                 const cpu::KernelTable& kernels, const ReleaseWeightPages& release = {});
  ~CpuFastBackend() override;

  m3_backend kind() const override { return M3_BACKEND_CPU; }
  int threads() const override { return pool_.size(); }
  const char* kernel_arch() const { return kernels_.arch; }

  std::unique_ptr<StateSlot> create_slot() override;
  void prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
               float* logits) override;
  void decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) override;

 private:
  struct Slot;
  struct Workspace;

  // Runs rows [0, n) (row t is tokens[t] for slots[t]; a slot's rows are in stream order)
  // through the model. Rows t >= first_logits_row get logits at
  // logits + (t - first_logits_row) * vocab_padded.
  void run_rows(Slot* const* slots, const int32_t* tokens, int64_t n, int64_t first_logits_row, float* logits);
  void mixer(Slot* const* slots, int64_t n, int64_t layer);
  // bc_normed: the row's normalized B and C (mixer() computes them once for all heads).
  void mixer_head(Slot& slot, int64_t layer, int64_t head, const float* proj, const float* bc_normed, float* y,
                  int thread);
  void mlp(int64_t n, int64_t layer);
  // y[t, :] = W x[t, :] for t < n, split over the threads.
  void matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride);

  const ModelConfig& c_;
  std::vector<cpu::AlignedBytes> tiled_storage_;
  ModelWeights w_;  // the model's weights with every matrix it pays to tile tiled
  const StateLayout& layout_;
  const cpu::KernelTable& kernels_;
  cpu::ThreadPool pool_;
  std::unique_ptr<Workspace> ws_;
  std::mutex run_mutex_;  // one pass at a time: the workspace and the pool are shared
};

}  // namespace m3
