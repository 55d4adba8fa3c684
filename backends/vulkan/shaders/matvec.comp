#version 450
// y[b, y_offset + o] = beta * y[...] + W[o, :] . x[b, :] for a few rows b < batch (decode):
// one workgroup per kRows output rows o, each weight read once for every b. Bandwidth-bound.
// SUBGROUP 1 reduces with subgroupAdd (devices with subgroup arithmetic in compute), 0
// with a shared-memory tree.
#extension GL_GOOGLE_include_directive : require
#if SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x = 128) in;
const uint kThreads = 128u;
const uint kMaxBatch = 8u;
const uint kRows = 4u;  // output rows per workgroup
#define WEIGHT_BINDING 0
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform Push {
  uint out_rows;
  uint cols;
  uint batch;     // <= kMaxBatch
  uint y_stride;
  uint y_offset;
  float beta;     // 0: y is overwritten (never read)
} pc;

shared float partial[kRows * kMaxBatch * kThreads];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint first = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * kRows;
  if (first >= pc.out_rows) return;  // uniform across the workgroup
  const uint rows = min(kRows, pc.out_rows - first);
  float acc[kRows][kMaxBatch];
  for (uint r = 0u; r < kRows; ++r)
    for (uint b = 0u; b < kMaxBatch; ++b) acc[r][b] = 0.0;
  // Eight columns at a time where rows start on 16-byte boundaries of both W and x.
  const bool vectors = (pc.cols & 7u) == 0u;
  const uint vector_cols = vectors ? pc.cols : 0u;
  for (uint r = 0u; r < rows; ++r) {
    const uint row = (first + r) * pc.cols;
    if (vectors) {
      const uint row_vec = row >> 3;
      for (uint v = tid; v < (pc.cols >> 3); v += kThreads) {
        vec4 wa, wb;
        weight_vec8(row_vec + v, wa, wb);
        for (uint b = 0u; b < pc.batch; ++b) {
          const uint xv = (b * pc.cols >> 2) + 2u * v;
          acc[r][b] += dot(wa, x4[xv]) + dot(wb, x4[xv + 1u]);
        }
      }
    }
    for (uint i = vector_cols + tid; i < pc.cols; i += kThreads) {
      const float w = weight_at(row + i);
      for (uint b = 0u; b < pc.batch; ++b) acc[r][b] += w * x[b * pc.cols + i];
    }
  }
  // partial[(r * kMaxBatch + b) * kThreads + i]: per subgroup i (SUBGROUP) or thread i.
#if SUBGROUP
  for (uint r = 0u; r < rows; ++r)
    for (uint b = 0u; b < pc.batch; ++b) {
      const float s = subgroupAdd(acc[r][b]);
      if (gl_SubgroupInvocationID == 0u) partial[(r * kMaxBatch + b) * kThreads + gl_SubgroupID] = s;
    }
  barrier();
  const uint count = gl_NumSubgroups;
#else
  for (uint r = 0u; r < rows; ++r)
    for (uint b = 0u; b < pc.batch; ++b) partial[(r * kMaxBatch + b) * kThreads + tid] = acc[r][b];
  barrier();
  for (uint half_width = kThreads / 2u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width)
      for (uint r = 0u; r < rows; ++r)
        for (uint b = 0u; b < pc.batch; ++b)
          partial[(r * kMaxBatch + b) * kThreads + tid] += partial[(r * kMaxBatch + b) * kThreads + tid + half_width];
    barrier();
  }
  const uint count = 1u;
#endif
  // One thread per (row, batch row) writes.
  if (tid < rows * pc.batch) {
    const uint r = tid / pc.batch, b = tid % pc.batch;
    float s = 0.0;
    for (uint i = 0u; i < count; ++i) s += partial[(r * kMaxBatch + b) * kThreads + i];
    const uint at = b * pc.y_stride + pc.y_offset + first + r;
    y[at] = pc.beta == 0.0 ? s : pc.beta * y[at] + s;
  }
}
