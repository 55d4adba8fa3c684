#version 450
// y[b, y_offset + o] = beta * y[...] + W[o, :] . in(b, :) for a few rows b < batch (decode):
// one workgroup per kRows output rows o, each weight read once for every b. Bandwidth-bound.
// The input is x itself (INPUT 0), or made on the fly so that decode needs no separate
// dispatch (and barrier) for it: x's row RMS-normalized with weights params[w_offset ..]
// (INPUT 1), or the gated MLP activation x[b, i] * silu(x[b, cols + i]) (INPUT 2).
// SUBGROUP 1 reduces with subgroupAdd (devices with subgroup arithmetic in compute), 0
// with a shared-memory tree.
#extension GL_GOOGLE_include_directive : require
#if SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x = 128) in;
const uint kThreads = 128u;
const uint kMaxBatch = 8u;  // the largest BATCH
layout(constant_id = 0) const uint kRows = 1u;  // output rows per workgroup
layout(constant_id = 1) const uint INPUT = 0u;
// Rows of x, a constant so that the accumulators stay in registers (a loop bound read from
// push constants left them in memory: measured 2x slower on an H100).
layout(constant_id = 2) const uint BATCH = 1u;
#define WEIGHT_BINDING 0
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 3) readonly buffer Params { float params[]; };
layout(push_constant) uniform Push {
  uint out_rows;
  uint cols;
  uint batch;     // == BATCH
  uint y_stride;
  uint y_offset;
  float beta;     // 0: y is overwritten (never read)
  uint x_offset;  // floats before x's row 0 (a multiple of 4)
  uint w_offset;  // INPUT 1: the norm weights in params
} pc;

shared float row_scale[kMaxBatch];

uint x_row(uint b) { return pc.x_offset + b * (INPUT == 2u ? 2u : 1u) * pc.cols; }

float silu_gate(float value, float gate) { return value * gate / (1.0 + exp(-gate)); }

float input_at(uint b, uint i) {
  const uint at = x_row(b) + i;
  if (INPUT == 1u) return x[at] * row_scale[b] * params[pc.w_offset + i];
  if (INPUT == 2u) return silu_gate(x[at], x[at + pc.cols]);
  return x[at];
}

vec4 input4(uint b, uint i) {  // elements i .. i + 3, i a multiple of 4
  const uint at = (x_row(b) + i) >> 2;
  if (INPUT == 1u) {
    const uint w = pc.w_offset + i;
    return x4[at] * row_scale[b] * vec4(params[w], params[w + 1u], params[w + 2u], params[w + 3u]);
  }
  if (INPUT == 2u) {
    const vec4 v = x4[at], g = x4[at + (pc.cols >> 2)];
    return vec4(silu_gate(v.x, g.x), silu_gate(v.y, g.y), silu_gate(v.z, g.z), silu_gate(v.w, g.w));
  }
  return x4[at];
}

shared float partial[kRows * kMaxBatch * kThreads];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint first = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * kRows;
  if (first >= pc.out_rows) return;  // uniform across the workgroup
  const uint rows = min(kRows, pc.out_rows - first);
  if (INPUT == 1u) {  // each batch row's RMS scale, from this workgroup's own pass over x
    float ss[kMaxBatch];
    for (uint b = 0u; b < BATCH; ++b) {
      ss[b] = 0.0;
      for (uint i = tid; i < pc.cols; i += kThreads) ss[b] += x[x_row(b) + i] * x[x_row(b) + i];
      partial[b * kThreads + tid] = ss[b];
    }
    barrier();
    if (tid < BATCH) {
      float s = 0.0;
      for (uint i = 0u; i < kThreads; ++i) s += partial[tid * kThreads + i];
      row_scale[tid] = inversesqrt(s / float(pc.cols) + 1e-5);
    }
    barrier();
  }
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
        for (uint b = 0u; b < BATCH; ++b) {
          acc[r][b] += dot(wa, input4(b, 8u * v)) + dot(wb, input4(b, 8u * v + 4u));
        }
      }
    }
    for (uint i = vector_cols + tid; i < pc.cols; i += kThreads) {
      const float w = weight_at(row + i);
      for (uint b = 0u; b < BATCH; ++b) acc[r][b] += w * input_at(b, i);
    }
  }
  // partial[(r * kMaxBatch + b) * kThreads + i]: per subgroup i (SUBGROUP) or thread i.
#if SUBGROUP
  for (uint r = 0u; r < rows; ++r)
    for (uint b = 0u; b < BATCH; ++b) {
      const float s = subgroupAdd(acc[r][b]);
      if (gl_SubgroupInvocationID == 0u) partial[(r * kMaxBatch + b) * kThreads + gl_SubgroupID] = s;
    }
  barrier();
  const uint count = gl_NumSubgroups;
#else
  for (uint r = 0u; r < rows; ++r)
    for (uint b = 0u; b < BATCH; ++b) partial[(r * kMaxBatch + b) * kThreads + tid] = acc[r][b];
  barrier();
  for (uint half_width = kThreads / 2u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width)
      for (uint r = 0u; r < rows; ++r)
        for (uint b = 0u; b < BATCH; ++b)
          partial[(r * kMaxBatch + b) * kThreads + tid] += partial[(r * kMaxBatch + b) * kThreads + tid + half_width];
    barrier();
  }
  const uint count = 1u;
#endif
  // One thread per (row, batch row) writes.
  if (tid < rows * BATCH) {
    const uint r = tid / BATCH, b = tid % BATCH;
    float s = 0.0;
    for (uint i = 0u; i < count; ++i) s += partial[(r * kMaxBatch + b) * kThreads + i];
    const uint at = b * pc.y_stride + pc.y_offset + first + r;
    y[at] = pc.beta == 0.0 ? s : pc.beta * y[at] + s;
  }
}
