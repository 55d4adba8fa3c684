#version 450
// The gated MLP's activation: out[t, i] = h[t, i] * silu(h[t, hidden + i]).
layout(local_size_x = 128) in;
layout(std430, set = 0, binding = 0) readonly buffer Hidden { float h[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push { uint hidden; } pc;

void main() {
  const uint i = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  if (i >= pc.hidden) return;
  const float value = h[t * 2u * pc.hidden + i], gate = h[t * 2u * pc.hidden + pc.hidden + i];
  y[t * pc.hidden + i] = value * gate / (1.0 + exp(-gate));
}
