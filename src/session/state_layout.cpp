#include "session/state_layout.h"

namespace m3 {

StateLayout make_state_layout(const ModelConfig& c) {
  StateLayout s;
  s.n_layer = c.n_layer;
  s.angle_shape = {c.nheads, c.n_angles};
  s.ssm_shape = {c.nheads, c.headdim, c.d_state};
  s.k_shape = {c.mimo_rank, c.nheads, c.d_state};
  s.v_shape = {c.nheads, c.headdim};
  s.angle = c.nheads * c.n_angles;
  s.ssm = c.nheads * c.headdim * c.d_state;
  s.k = c.mimo_rank * c.nheads * c.d_state;
  s.v = c.nheads * c.headdim;
  return s;
}

int64_t StateLayout::part_floats(m3_state_part part) const {
  switch (part) {
    case M3_STATE_ANGLE: return angle;
    case M3_STATE_SSM: return ssm;
    case M3_STATE_K: return k;
    case M3_STATE_V: return v;
  }
  return 0;
}

const std::vector<int64_t>& StateLayout::part_shape(m3_state_part part) const {
  switch (part) {
    case M3_STATE_ANGLE: return angle_shape;
    case M3_STATE_SSM: return ssm_shape;
    case M3_STATE_K: return k_shape;
    case M3_STATE_V: break;
  }
  return v_shape;
}

int64_t StateLayout::offset(int64_t layer, m3_state_part part) const {
  int64_t at = layer * per_layer();
  if (part == M3_STATE_ANGLE) return at;
  at += angle;
  if (part == M3_STATE_SSM) return at;
  at += ssm;
  if (part == M3_STATE_K) return at;
  return at + k;
}

}  // namespace m3
