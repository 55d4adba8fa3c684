#version 450
// The Mamba-3 recurrence (spec §4.2) for one layer: one workgroup per head walks the rows
// row0 .. row0 + rows - 1 of the in_proj output in order (a prefill's tokens, or one decode
// row), keeping the head's state in registers: thread t owns state row p = t / TPR, columns
// t % TPR + TPR e for e < ELEMS (interleaved, so that neighbouring threads touch neighbouring
// floats: coalesced loads and stores, no shared-memory bank conflicts). The slot's state
// (canonical layout) is bound as set 1.
#extension GL_GOOGLE_include_directive : require
#include "scalar_math.glsl"

layout(local_size_x_id = 0) in;  // P * TPR
layout(constant_id = 1) const uint H = 1;
layout(constant_id = 2) const uint P = 1;
layout(constant_id = 3) const uint N = 2;
layout(constant_id = 4) const uint G = 1;
layout(constant_id = 5) const uint R = 1;
layout(constant_id = 6) const uint S = 1;
layout(constant_id = 7) const uint TPR = 1;    // threads per state row; divides N
layout(constant_id = 8) const uint ELEMS = 2;  // N / TPR
layout(constant_id = 9) const bool MIMO = false;
layout(constant_id = 10) const bool OUT_NORM = false;
layout(constant_id = 11) const bool HEAVY_TAIL = false;
const uint kLanes = 16u;  // threads per sum of squares
const float kEps = 1e-5;

layout(std430, set = 0, binding = 0) readonly buffer Proj { float proj[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, set = 0, binding = 2) readonly buffer Params { float params[]; };
layout(std430, set = 1, binding = 0) buffer State { float state[]; };

layout(push_constant) uniform Push {
  uint rows, row0;
  uint d_in_proj, E;
  uint off_angle, off_ssm, off_k, off_v;  // the layer's parts in the state, in floats
  // The layer's parameters in the params buffer, in floats.
  uint dt_bias, D, B_bias, C_bias, mimo_x, mimo_z, mimo_o, B_norm, C_norm, out_norm;
  float a_floor;
} pc;

shared float sh_x[P], sh_x_prev[P], sh_z[P];
shared float sh_q[R * N];
shared float sh_k[2u * R * N];  // this token's and the previous token's keys, alternating
shared float sh_phi[S + 1u];
shared float sh_sum[2u * R * kLanes];
shared float sh_scale[2u * R];
shared float sh_part[R * P * TPR];
shared float sh_y[R * P];

float mimo_param(uint offset, uint r, uint h, uint p) { return MIMO ? params[offset + (h * R + r) * P + p] : 1.0; }

void main() {
  const uint threads = P * TPR;
  const uint tid = gl_LocalInvocationID.x, h = gl_WorkGroupID.x, g = h / (H / G);
  const uint own_p = tid / TPR, own_n = tid % TPR;  // columns own_n + TPR e
  const uint RN = R * N;

  float st[ELEMS];
  const uint ssm_at = pc.off_ssm + (h * P + own_p) * N + own_n;
  for (uint e = 0u; e < ELEMS; ++e) st[e] = state[ssm_at + TPR * e];
  uint prev = 0u, cur = 1u;  // halves of sh_k
  for (uint i = tid; i < P; i += threads) sh_x_prev[i] = state[pc.off_v + h * P + i];
  for (uint i = tid; i < RN; i += threads) sh_k[prev * RN + i] = state[pc.off_k + ((i / N) * H + h) * N + i % N];
  for (uint i = tid; i < S; i += threads) sh_phi[i] = state[pc.off_angle + h * S + i];

  for (uint t = 0u; t < pc.rows; ++t) {
    const uint base = (pc.row0 + t) * pc.d_in_proj;
    const uint b_at = base + 2u * pc.E, c_at = b_at + R * G * N, dd_at = c_at + R * G * N;
    for (uint i = tid; i < P; i += threads) {
      sh_z[i] = proj[base + h * P + i];
      sh_x[i] = proj[base + pc.E + h * P + i];
    }
    for (uint i = tid; i < RN; i += threads) {
      const uint at = ((i / N) * G + g) * N + i % N;
      sh_k[cur * RN + i] = proj[b_at + at];
      sh_q[i] = proj[c_at + at];
    }
    // Every thread derives the head's coefficients (cheaper than a barrier).
    const float dt = softplus(proj[dd_at + h] + params[pc.dt_bias + h]);
    const float dd_a = proj[dd_at + H + h];
    const float f = HEAVY_TAIL ? (dd_a >= 0.0 ? 1.0 + dd_a : 1.0 / (1.0 - dd_a)) : softplus(dd_a);
    const float alpha = exp(min(-f, -pc.a_floor) * dt);
    const float lambda = sigmoid(proj[dd_at + 2u * H + h]);
    const float beta = (1.0 - lambda) * dt * alpha, gamma = lambda * dt;
    // This token's angle increment comes before rotating it.
    for (uint i = tid; i < S; i += threads)
      sh_phi[i] = wrap_angle(sh_phi[i] + kPi * tanh_accurate(proj[dd_at + 3u * H + i]) * dt);
    barrier();

    // RMSNorm over N of each rank's B (k) and C (q) row: partial sums of squares, then totals.
    for (uint j = tid; j < 2u * R * kLanes; j += threads) {
      const uint pair = j / kLanes, lane = j % kLanes, r = pair % R;
      float s = 0.0;
      for (uint n = lane; n < N; n += kLanes) {
        const float v = pair < R ? sh_k[cur * RN + r * N + n] : sh_q[r * N + n];
        s += v * v;
      }
      sh_sum[j] = s;
    }
    barrier();
    for (uint j = tid; j < 2u * R; j += threads) {
      float s = 0.0;
      for (uint l = 0u; l < kLanes; ++l) s += sh_sum[j * kLanes + l];
      sh_scale[j] = inversesqrt(s / float(N) + kEps);
    }
    barrier();
    for (uint i = tid; i < RN; i += threads) {
      const uint r = i / N, n = i % N, bias = (h * R + r) * N + n;
      sh_k[cur * RN + i] = sh_k[cur * RN + i] * sh_scale[r] * params[pc.B_norm + n] + params[pc.B_bias + bias];
      sh_q[i] = sh_q[i] * sh_scale[R + r] * params[pc.C_norm + n] + params[pc.C_bias + bias];
    }
    barrier();
    // Rotary pairs: SISO (2s, 2s+1), MIMO (s, s + N/2).
    for (uint j = tid; j < R * S; j += threads) {
      const uint r = j / S, s = j % S;
      const uint a = r * N + (MIMO ? s : 2u * s), b = r * N + (MIMO ? s + N / 2u : 2u * s + 1u);
      float sn, cs;
      sin_cos(sh_phi[s], sn, cs);
      const float qa = sh_q[a], qb = sh_q[b], ka = sh_k[cur * RN + a], kb = sh_k[cur * RN + b];
      sh_q[a] = qa * cs - qb * sn;
      sh_q[b] = qa * sn + qb * cs;
      sh_k[cur * RN + a] = ka * cs - kb * sn;
      sh_k[cur * RN + b] = ka * sn + kb * cs;
    }
    barrier();

    // h <- alpha h + beta sum_r (x_prev mx_r) k_prev_r^T + gamma sum_r (x mx_r) k_r^T, then
    // this thread's share of y_r[p] = sum_n h[p, n] q_r[n].
    {
      const float xp = sh_x_prev[own_p], xc = sh_x[own_p];
      for (uint e = 0u; e < ELEMS; ++e) st[e] *= alpha;
      for (uint r = 0u; r < R; ++r) {
        const float mx = mimo_param(pc.mimo_x, r, h, own_p);
        const float wp = beta * xp * mx, wc = gamma * xc * mx;
        for (uint e = 0u; e < ELEMS; ++e)
          st[e] += wp * sh_k[prev * RN + r * N + own_n + TPR * e] + wc * sh_k[cur * RN + r * N + own_n + TPR * e];
      }
      for (uint r = 0u; r < R; ++r) {
        float acc = 0.0;
        for (uint e = 0u; e < ELEMS; ++e) acc += st[e] * sh_q[r * N + own_n + TPR * e];
        sh_part[r * threads + tid] = acc;
      }
    }
    barrier();
    for (uint j = tid; j < R * P; j += threads) {
      const uint r = j / P, p = j % P;
      float acc = 0.0;
      for (uint i = 0u; i < TPR; ++i) acc += sh_part[r * threads + p * TPR + i];
      sh_y[j] = acc + params[pc.D + h] * sh_x[p] * mimo_param(pc.mimo_x, r, h, p);
    }
    barrier();
    if (OUT_NORM) {  // RMSNorm of each rank's y over P, weights out_norm[h * P ..]
      for (uint j = tid; j < R * kLanes; j += threads) {
        const uint r = j / kLanes, lane = j % kLanes;
        float s = 0.0;
        for (uint p = lane; p < P; p += kLanes) s += sh_y[r * P + p] * sh_y[r * P + p];
        sh_sum[j] = s;
      }
      barrier();
      for (uint r = tid; r < R; r += threads) {
        float s = 0.0;
        for (uint l = 0u; l < kLanes; ++l) s += sh_sum[r * kLanes + l];
        sh_scale[r] = inversesqrt(s / float(P) + kEps);
      }
      barrier();
    }
    // The gate and the sum over ranks.
    for (uint p = tid; p < P; p += threads) {
      float out_p = 0.0;
      for (uint r = 0u; r < R; ++r) {
        float yr = sh_y[r * P + p];
        if (OUT_NORM) yr *= sh_scale[r] * params[pc.out_norm + h * P + p];
        const float gate = sh_z[p] * mimo_param(pc.mimo_z, r, h, p);
        out_p += mimo_param(pc.mimo_o, r, h, p) * yr * (gate / (1.0 + exp(-gate)));
      }
      y[(pc.row0 + t) * pc.E + h * P + p] = out_p;
      sh_x_prev[p] = sh_x[p];
    }
    barrier();
    prev = cur;
    cur = 1u - cur;
  }

  // The cache keeps the last token's rotated, biased key and its raw x.
  for (uint e = 0u; e < ELEMS; ++e) state[ssm_at + TPR * e] = st[e];
  for (uint i = tid; i < P; i += threads) state[pc.off_v + h * P + i] = sh_x_prev[i];
  for (uint i = tid; i < RN; i += threads) state[pc.off_k + ((i / N) * H + h) * N + i % N] = sh_k[prev * RN + i];
  for (uint i = tid; i < S; i += threads) state[pc.off_angle + h * S + i] = sh_phi[i];
}
