#version 450
// y[m, y_offset + o] = beta * y[...] + W[o, :] . x[m, :] for many rows m (prefill, large
// batches): 64 x 64 output tiles through shared memory, 4 x 4 outputs a thread.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;
const uint kTile = 64u, kDepth = 16u;
#define WEIGHT_BINDING 0
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform Push {
  uint out_rows;
  uint cols;
  uint rows;      // m
  uint y_stride;
  uint y_offset;
  float beta;
} pc;

shared float x_tile[kDepth * kTile];  // [k][m]
shared float w_tile[kDepth * kTile];  // [k][o]

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint o0 = gl_WorkGroupID.x * kTile, m0 = gl_WorkGroupID.y * kTile;
  const uint tx = tid % 16u, ty = tid / 16u;  // outputs o0 + tx + 16 j, rows m0 + ty + 16 i
  float acc[4][4];
  for (uint i = 0u; i < 4u; ++i)
    for (uint j = 0u; j < 4u; ++j) acc[i][j] = 0.0;
  for (uint k0 = 0u; k0 < pc.cols; k0 += kDepth) {
    for (uint e = tid; e < kDepth * kTile; e += 256u) {
      const uint r = e / kDepth, k = e % kDepth;
      const bool in_k = k0 + k < pc.cols;
      x_tile[k * kTile + r] = (in_k && m0 + r < pc.rows) ? x[(m0 + r) * pc.cols + k0 + k] : 0.0;
      w_tile[k * kTile + r] = (in_k && o0 + r < pc.out_rows) ? weight_at((o0 + r) * pc.cols + k0 + k) : 0.0;
    }
    barrier();
    for (uint k = 0u; k < kDepth; ++k) {
      float xs[4], ws[4];
      for (uint i = 0u; i < 4u; ++i) xs[i] = x_tile[k * kTile + ty + 16u * i];
      for (uint j = 0u; j < 4u; ++j) ws[j] = w_tile[k * kTile + tx + 16u * j];
      for (uint i = 0u; i < 4u; ++i)
        for (uint j = 0u; j < 4u; ++j) acc[i][j] += xs[i] * ws[j];
    }
    barrier();
  }
  for (uint i = 0u; i < 4u; ++i) {
    const uint m = m0 + ty + 16u * i;
    if (m >= pc.rows) continue;
    for (uint j = 0u; j < 4u; ++j) {
      const uint o = o0 + tx + 16u * j;
      if (o >= pc.out_rows) continue;
      const uint at = m * pc.y_stride + pc.y_offset + o;
      y[at] = pc.beta == 0.0 ? acc[i][j] : pc.beta * y[at] + acc[i][j];
    }
  }
}
