#version 450
// The decode product of matvec.comp for the common case (cols a multiple of 8, x small
// enough for registers): each thread loads its column slices of x once, makes the input
// from them (RMS-normalized or gated, as matvec's INPUT), and reuses them for kRows output
// rows, so x is read once per workgroup rather than once per output row (at batch 1 x's
// fp32 rows would otherwise be twice the traffic of the bf16 weights).
// y[b, y_offset + o] = beta * y[...] + W[o, :] . in(b, :), b < BATCH.
#extension GL_GOOGLE_include_directive : require
#if SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
layout(local_size_x = 128) in;
const uint kThreads = 128u;
layout(constant_id = 0) const uint kRows = 8u;  // output rows per workgroup
layout(constant_id = 1) const uint INPUT = 0u;  // 0 x, 1 RMS-normalized x, 2 gated activation
layout(constant_id = 2) const uint BATCH = 1u;
layout(constant_id = 3) const uint SLICES = 1u;  // 8-column slices a thread holds: cols / 8 / kThreads, rounded up
#define WEIGHT_BINDING 0
#include "weights.glsl"
layout(std430, set = 0, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, set = 0, binding = 2) buffer Y { float y[]; };
layout(std430, set = 0, binding = 3) readonly buffer Params { float params[]; };
layout(push_constant) uniform Push {
  uint out_rows;
  uint cols;
  uint batch;
  uint y_stride;
  uint y_offset;
  float beta;
  uint x_offset;  // floats before x's row 0 (a multiple of 4)
  uint w_offset;  // INPUT 1: the norm weights in params
} pc;

shared float partial[kRows * BATCH * kThreads];  // at least kThreads

float silu_gate(float value, float gate) { return value * gate / (1.0 + exp(-gate)); }
vec4 silu_gate4(vec4 v, vec4 g) { return vec4(silu_gate(v.x, g.x), silu_gate(v.y, g.y), silu_gate(v.z, g.z), silu_gate(v.w, g.w)); }

// Sum over the workgroup of one value per thread; every thread gets it. Uses partial[0 ..
// kThreads) and ends with a barrier, so partial may be reused after.
float workgroup_sum(float v) {
  const uint tid = gl_LocalInvocationID.x;
#if SUBGROUP
  const float s = subgroupAdd(v);
  if (gl_SubgroupInvocationID == 0u) partial[gl_SubgroupID] = s;
  barrier();
  float total = 0.0;
  for (uint i = 0u; i < gl_NumSubgroups; ++i) total += partial[i];
#else
  partial[tid] = v;
  barrier();
  for (uint half_width = kThreads / 2u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width) partial[tid] += partial[tid + half_width];
    barrier();
  }
  const float total = partial[0];
#endif
  barrier();
  return total;
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint first = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * kRows;
  if (first >= pc.out_rows) return;  // uniform across the workgroup
  const uint rows = min(kRows, pc.out_rows - first);
  const uint slices = pc.cols >> 3;
  const uint row_stride = (INPUT == 2u ? 2u : 1u) * pc.cols;

  // This thread's slices s: columns 8 (tid + s kThreads) .. + 7, of every batch row.
  vec4 xa[SLICES * BATCH], xb[SLICES * BATCH];
  for (uint b = 0u; b < BATCH; ++b) {
    float ss = 0.0;
    for (uint s = 0u; s < SLICES; ++s) {
      const uint slice = tid + s * kThreads;
      vec4 a = vec4(0.0), c = vec4(0.0);
      if (slice < slices) {
        const uint at = (pc.x_offset + b * row_stride + 8u * slice) >> 2;
        a = x4[at];
        c = x4[at + 1u];
        if (INPUT == 2u) {
          a = silu_gate4(a, x4[at + (pc.cols >> 2)]);
          c = silu_gate4(c, x4[at + 1u + (pc.cols >> 2)]);
        }
      }
      ss += dot(a, a) + dot(c, c);
      xa[s * BATCH + b] = a;
      xb[s * BATCH + b] = c;
    }
    if (INPUT == 1u) {
      const float scale = inversesqrt(workgroup_sum(ss) / float(pc.cols) + 1e-5);
      for (uint s = 0u; s < SLICES; ++s) {
        const uint w = pc.w_offset + 8u * (tid + s * kThreads);
        if (tid + s * kThreads < slices) {
          xa[s * BATCH + b] *= scale * vec4(params[w], params[w + 1u], params[w + 2u], params[w + 3u]);
          xb[s * BATCH + b] *= scale * vec4(params[w + 4u], params[w + 5u], params[w + 6u], params[w + 7u]);
        }
      }
    }
  }

  for (uint r = 0u; r < rows; ++r) {
    float acc[BATCH];
    for (uint b = 0u; b < BATCH; ++b) acc[b] = 0.0;
    const uint row_vec = ((first + r) * pc.cols) >> 3;
    for (uint s = 0u; s < SLICES; ++s) {
      const uint slice = tid + s * kThreads;
      if (slice >= slices) break;
      vec4 wa, wb;
      weight_vec8(row_vec + slice, wa, wb);
      for (uint b = 0u; b < BATCH; ++b) acc[b] += dot(wa, xa[s * BATCH + b]) + dot(wb, xb[s * BATCH + b]);
    }
#if SUBGROUP
    for (uint b = 0u; b < BATCH; ++b) {
      const float sum = subgroupAdd(acc[b]);
      if (gl_SubgroupInvocationID == 0u) partial[(r * BATCH + b) * kThreads + gl_SubgroupID] = sum;
    }
#else
    for (uint b = 0u; b < BATCH; ++b) partial[(r * BATCH + b) * kThreads + tid] = acc[b];
#endif
  }
  barrier();
#if SUBGROUP
  const uint count = gl_NumSubgroups;
#else
  for (uint half_width = kThreads / 2u; half_width > 0u; half_width >>= 1) {
    if (tid < half_width)
      for (uint j = 0u; j < rows * BATCH; ++j) partial[j * kThreads + tid] += partial[j * kThreads + tid + half_width];
    barrier();
  }
  const uint count = 1u;
#endif
  if (tid < rows * BATCH) {
    const uint r = tid / BATCH, b = tid % BATCH;
    float sum = 0.0;
    for (uint i = 0u; i < count; ++i) sum += partial[tid * kThreads + i];
    const uint at = b * pc.y_stride + pc.y_offset + first + r;
    y[at] = pc.beta == 0.0 ? sum : pc.beta * y[at] + sum;
  }
}
