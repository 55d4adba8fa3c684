// The slot handling shared by the CPU backends: a slot's state lives in host memory in the
// canonical layout (state_layout.h), so zeroing, copying, reading and writing it are plain
// memory operations. A backend's slots derive from HostStateSlot and may add scratch.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "src/backend.h"

namespace m3 {

struct HostStateSlot : StateSlot {
  std::vector<float> state;  // canonical layout
};

class HostStateBackend : public Backend {
 public:
  void zero_slot(StateSlot& slot) override {
    auto& s = static_cast<HostStateSlot&>(slot).state;
    std::fill(s.begin(), s.end(), 0.0f);
  }
  void copy_slot(const StateSlot& src, StateSlot& dst) override {
    static_cast<HostStateSlot&>(dst).state = static_cast<const HostStateSlot&>(src).state;
  }
  void read_slot(const StateSlot& slot, float* dst) const override {
    const auto& s = static_cast<const HostStateSlot&>(slot).state;
    std::memcpy(dst, s.data(), s.size() * sizeof(float));
  }
  void write_slot(StateSlot& slot, const float* src) override {
    auto& s = static_cast<HostStateSlot&>(slot).state;
    std::memcpy(s.data(), src, s.size() * sizeof(float));
  }
};

}  // namespace m3
