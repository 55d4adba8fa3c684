// The canonical host layout of one session's recurrent state: for each layer, in order,
// angle [H, S], ssm [H, P, N], k [R, H, N], v [H, P], all float32. Backends may keep
// their own device layout; this one is what snapshots and state reads use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mamba3rt.h"
#include "model/model_config.h"

namespace m3 {

struct StateLayout {
  int64_t n_layer = 0;
  int64_t angle = 0, ssm = 0, k = 0, v = 0;  // floats per layer of each part
  std::vector<int64_t> angle_shape, ssm_shape, k_shape, v_shape;

  int64_t per_layer() const { return angle + ssm + k + v; }
  int64_t total_floats() const { return n_layer * per_layer(); }
  std::size_t total_bytes() const { return static_cast<std::size_t>(total_floats()) * sizeof(float); }
  int64_t part_floats(m3_state_part part) const;
  const std::vector<int64_t>& part_shape(m3_state_part part) const;
  // Offset in floats of a part of a layer inside the whole state.
  int64_t offset(int64_t layer, m3_state_part part) const;
};

StateLayout make_state_layout(const ModelConfig& config);

}  // namespace m3
