#version 450
// out[t, :] = x[t, :] * rsqrt(mean(x[t, :]^2) + eps) * w, one workgroup per row t; w sits
// in the model's parameter buffer at w_offset.
layout(local_size_x = 128) in;
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Params { float params[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Out { float y[]; };
layout(push_constant) uniform Push {
  uint cols;
  uint x_offset;  // floats before row 0 of x
  uint w_offset;
} pc;

shared float partial[128];

void main() {
  const uint tid = gl_LocalInvocationID.x, t = gl_WorkGroupID.x;
  const uint base = pc.x_offset + t * pc.cols;
  float s = 0.0;
  for (uint i = tid; i < pc.cols; i += 128u) s += x[base + i] * x[base + i];
  partial[tid] = s;
  barrier();
  for (uint half_width = 64u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width) partial[tid] += partial[tid + half_width];
    barrier();
  }
  const float scale = inversesqrt(partial[0] / float(pc.cols) + 1e-5);
  for (uint i = tid; i < pc.cols; i += 128u) y[t * pc.cols + i] = x[base + i] * scale * params[pc.w_offset + i];
}
