#version 450
// y[b, y_offset + o] = beta * y[...] + W[o, :] . x[b, :] for a few rows b < batch (decode):
// one workgroup per output row o, each weight read once for every b. Bandwidth-bound.
// SUBGROUP 1 reduces with subgroupAdd (devices with subgroup arithmetic in compute), 0
// with a shared-memory tree.
#extension GL_GOOGLE_include_directive : require
#if SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x = 128) in;
const uint kThreads = 128u;
const uint kMaxBatch = 8u;
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

#if SUBGROUP
shared float partial[kMaxBatch * kThreads];  // per subgroup: at most kThreads of them
#else
shared float partial[kMaxBatch * kThreads];
#endif

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint o = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
  if (o >= pc.out_rows) return;  // uniform across the workgroup
  float acc[kMaxBatch];
  for (uint b = 0u; b < kMaxBatch; ++b) acc[b] = 0.0;
  const uint row = o * pc.cols;
  // Eight columns at a time where rows start on 16-byte boundaries of both W and x.
  const bool vectors = (pc.cols & 7u) == 0u;
  const uint vector_cols = vectors ? pc.cols : 0u;
  if (vectors) {
    const uint row_vec = row >> 3;
    for (uint v = tid; v < (pc.cols >> 3); v += kThreads) {
      vec4 wa, wb;
      weight_vec8(row_vec + v, wa, wb);
      for (uint b = 0u; b < pc.batch; ++b) {
        const uint xv = (b * pc.cols >> 2) + 2u * v;
        acc[b] += dot(wa, x4[xv]) + dot(wb, x4[xv + 1u]);
      }
    }
  }
  for (uint i = vector_cols + tid; i < pc.cols; i += kThreads) {
    const float w = weight_at(row + i);
    for (uint b = 0u; b < pc.batch; ++b) acc[b] += w * x[b * pc.cols + i];
  }
#if SUBGROUP
  for (uint b = 0u; b < pc.batch; ++b) {
    const float s = subgroupAdd(acc[b]);
    if (gl_SubgroupInvocationID == 0u) partial[b * kThreads + gl_SubgroupID] = s;
  }
  barrier();
  if (tid < pc.batch) {
    float s = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; ++i) s += partial[tid * kThreads + i];
    const uint at = tid * pc.y_stride + pc.y_offset + o;
    y[at] = pc.beta == 0.0 ? s : pc.beta * y[at] + s;
  }
#else
  for (uint b = 0u; b < pc.batch; ++b) partial[b * kThreads + tid] = acc[b];
  barrier();
  for (uint half_width = kThreads / 2u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width)
      for (uint b = 0u; b < pc.batch; ++b) partial[b * kThreads + tid] += partial[b * kThreads + tid + half_width];
    barrier();
  }
  if (tid < pc.batch) {
    const float s = partial[tid * kThreads];
    const uint at = tid * pc.y_stride + pc.y_offset + o;
    y[at] = pc.beta == 0.0 ? s : pc.beta * y[at] + s;
  }
#endif
}
