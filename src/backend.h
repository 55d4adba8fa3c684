// The interface every backend implements: an executor of the Mamba-3 forward pass that
// owns its (device) copy of the weights and a set of state slots.
//
// Contract for all methods: inputs are validated by the caller (token ids in range, buffer
// sizes, distinct slots). A backend allocates everything a slot needs when the slot is
// created, so that prefill/decode do not allocate and cannot fail half-way; a backend
// that can still fail mid-call must leave the slots as they were.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mamba3rt.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "session/state_layout.h"

namespace m3 {

// One session's recurrent state (plus any per-slot scratch) in the backend's memory.
class StateSlot {
 public:
  virtual ~StateSlot() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual m3_backend kind() const = 0;
  // CPU threads the backend computes with (1 for device backends).
  virtual int threads() const { return 1; }
  // The device it computes on, as its driver names it ("CPU" for the CPU backends).
  virtual std::string device_name() const { return "CPU"; }

  // A new slot holding the zero state.
  virtual std::unique_ptr<StateSlot> create_slot() = 0;
  virtual void zero_slot(StateSlot& slot) = 0;
  virtual void copy_slot(const StateSlot& src, StateSlot& dst) = 0;
  // Read/write the whole state in the canonical layout (StateLayout::total_floats floats).
  virtual void read_slot(const StateSlot& slot, float* dst) const = 0;
  virtual void write_slot(StateSlot& slot, const float* src) = 0;

  // Feeds n tokens into one slot, continuing from its state. Writes no logits
  // (M3_LOGITS_NONE), the last position's row, or all n rows (vocab_padded floats each).
  virtual void prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
                       float* logits) = 0;
  // One token for each of n slots; logits (may be null) receives n rows.
  virtual void decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) = 0;

  // Whether a prefill or decode that throws has left its slots as they were. The CPU
  // backends allocate nothing in a pass and throw only before it; a device can fail after
  // part of a pass has run (device lost, a rejected submission, memory taken by the driver on
  // a kernel's or graph's first use), so the sessions then mark their state as lost.
  virtual bool failed_pass_keeps_state() const { return true; }
};

// Told a range of the checkpoint's weights a backend has copied and will not read again,
// so the model can drop those file pages from the process's memory.
using ReleaseWeightPages = std::function<void(const void* data, std::size_t bytes)>;

struct BackendOptions {
  int threads = 0;  // CPU threads; 0 = MAMBA3RT_THREADS or one per core
  ReleaseWeightPages release_weight_pages;  // may be empty
  std::string device;  // GPU backends: a device index or part of its name; empty = the best
};

// How a backend's prefill splits n tokens into passes of at most max_rows rows and where each
// pass's logits go (M3_LOGITS_NONE/LAST/ALL into `logits`, vocab_padded floats a row): calls
// pass(t0, rows, first_logits_row, out), where rows >= first_logits_row of the pass get logits
// at out (first_logits_row == rows and out == null: none).
template <class Pass>
void for_each_prefill_pass(std::size_t n, int64_t max_rows, m3_logits_mode mode, float* logits,
                           int64_t vocab_padded, Pass&& pass) {
  const int64_t total = static_cast<int64_t>(n);
  for (int64_t t0 = 0; t0 < total; t0 += max_rows) {
    const int64_t rows = total - t0 < max_rows ? total - t0 : max_rows;
    int64_t first = rows;
    float* out = nullptr;
    if (mode == M3_LOGITS_ALL) {
      first = 0;
      out = logits + t0 * vocab_padded;
    } else if (mode == M3_LOGITS_LAST && t0 + rows == total) {
      first = rows - 1;
      out = logits;
    }
    pass(t0, rows, first, out);
  }
}

// Creates the backend of the given kind (AUTO picks the best available). Throws
// m3::Error(M3_ERR_BACKEND_UNAVAILABLE) with the reason when it cannot run here.
std::unique_ptr<Backend> create_backend(m3_backend kind, const BackendOptions& options, const ModelConfig& config,
                                        const ModelWeights& weights, const StateLayout& layout);

// M3_OK, or M3_ERR_BACKEND_UNAVAILABLE with the reason in *why.
m3_status backend_availability(m3_backend kind, std::string* why);

}  // namespace m3
