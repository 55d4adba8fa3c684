#include "backends/cpu/cpu_reference_backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "backends/cpu/mamba3_scalar_math.h"
#include "backends/cpu/reference_matvec.h"

namespace m3 {

using cpu::rms_norm;
using cpu::silu;

struct CpuReferenceBackend::Slot final : HostStateSlot {
  // Scratch, sized once so that a forward pass never allocates.
  std::vector<float> residual, normed, block_out, proj, bc_normed, q, k, y_rank, y, mlp_hidden;
};

CpuReferenceBackend::CpuReferenceBackend(const ModelConfig& config, const ModelWeights& weights,
                                         const StateLayout& layout)
    : c_(config), w_(weights), layout_(layout) {}

std::unique_ptr<StateSlot> CpuReferenceBackend::create_slot() {
  auto s = std::make_unique<Slot>();
  const int64_t D = c_.d_model, R = c_.mimo_rank, H = c_.nheads, N = c_.d_state;
  s->state.assign(static_cast<std::size_t>(layout_.total_floats()), 0.0f);
  s->residual.resize(D);
  s->normed.resize(D);
  s->block_out.resize(D);
  s->proj.resize(c_.d_in_proj);
  s->bc_normed.resize(2 * R * c_.ngroups * N);
  s->q.resize(R * H * N);
  s->k.resize(R * H * N);
  s->y_rank.resize(R * c_.headdim);
  s->y.resize(c_.d_inner);
  s->mlp_hidden.resize(2 * w_.mlp_hidden);
  return s;
}

void CpuReferenceBackend::prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
                                  float* logits) {
  // The reference prefill is the recurrence itself (O(L)); the chunked form is for the
  // fast backends, which are tested against this.
  auto& s = static_cast<Slot&>(slot);
  for (std::size_t t = 0; t < n; ++t) {
    float* row = nullptr;
    if (mode == M3_LOGITS_ALL) row = logits + t * c_.vocab_padded;
    if (mode == M3_LOGITS_LAST && t + 1 == n) row = logits;
    forward_token(s, tokens[t], row);
  }
}

void CpuReferenceBackend::decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) {
  for (std::size_t i = 0; i < n; ++i)
    forward_token(static_cast<Slot&>(*slots[i]), tokens[i], logits ? logits + i * c_.vocab_padded : nullptr);
}

void CpuReferenceBackend::forward_token(Slot& s, int32_t token, float* logits) const {
  const int64_t D = c_.d_model;
  cpu::load_row(w_.embedding, token, s.residual.data());
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    const MambaLayerWeights& L = w_.layers[l];
    rms_norm(s.residual.data(), L.norm.data(), D, s.normed.data());
    mixer_step(s, l, s.normed.data(), s.block_out.data());
    for (int64_t i = 0; i < D; ++i) s.residual[i] += s.block_out[i];
    if (w_.mlp_hidden > 0) {
      rms_norm(s.residual.data(), L.norm2.data(), D, s.normed.data());
      mlp(s, l, s.normed.data(), s.block_out.data());
      for (int64_t i = 0; i < D; ++i) s.residual[i] += s.block_out[i];
    }
  }
  if (logits) {
    rms_norm(s.residual.data(), w_.norm_f.data(), D, s.normed.data());
    cpu::matvec(w_.lm_head, s.normed.data(), logits);
  }
}

void CpuReferenceBackend::mlp(Slot& s, int64_t layer, const float* u, float* out) const {
  // GatedMLP: the first half of fc1's output is the value, the second half the gate.
  const MambaLayerWeights& L = w_.layers[layer];
  const int64_t hid = w_.mlp_hidden;
  float* h = s.mlp_hidden.data();
  cpu::matvec(L.fc1, u, h);
  for (int64_t i = 0; i < hid; ++i) h[i] = h[i] * silu(h[hid + i]);
  cpu::matvec(L.fc2, h, out);
}

void CpuReferenceBackend::mixer_step(Slot& s, int64_t layer, const float* u, float* out) const {
  const MambaLayerWeights& L = w_.layers[layer];
  const int64_t E = c_.d_inner, H = c_.nheads, P = c_.headdim, N = c_.d_state, G = c_.ngroups,
                R = c_.mimo_rank, S = c_.n_angles;
  const bool mimo = c_.is_mimo;

  // in_proj rows: z [E] | x [E] | B [R, G, N] | C [R, G, N] | dd_dt [H] | dd_A [H] | trap [H] | theta [S]
  cpu::matvec(L.in_proj, u, s.proj.data());
  const float* z = s.proj.data();
  const float* x = z + E;
  const float* B = x + E;
  const float* C = B + R * G * N;
  const float* dd_dt = C + R * G * N;
  const float* dd_A = dd_dt + H;
  const float* trap = dd_A + H;
  const float* theta = trap + H;

  // RMSNorm over N of every (rank, group) row of B and C, with the shared norm weights.
  float* Bn = s.bc_normed.data();
  float* Cn = Bn + R * G * N;
  for (int64_t rg = 0; rg < R * G; ++rg) {
    rms_norm(B + rg * N, L.B_norm.data(), N, Bn + rg * N);
    rms_norm(C + rg * N, L.C_norm.data(), N, Cn + rg * N);
  }

  float* angle = s.state.data() + layout_.offset(layer, M3_STATE_ANGLE);  // [H, S]
  float* ssm = s.state.data() + layout_.offset(layer, M3_STATE_SSM);      // [H, P, N]
  float* k_prev = s.state.data() + layout_.offset(layer, M3_STATE_K);     // [R, H, N]
  float* x_prev = s.state.data() + layout_.offset(layer, M3_STATE_V);     // [H, P]
  float* q = s.q.data();  // [R, H, N]
  float* k = s.k.data();  // [R, H, N]
  const int64_t heads_per_group = H / G;

  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / heads_per_group;
    const cpu::HeadCoefficients hc = cpu::head_coefficients(c_, dd_dt[h], L.dt_bias[h], dd_A[h], trap[h]);
    const float alpha = hc.alpha, beta = hc.beta, gamma = hc.gamma;
    float* phi = angle + h * S;
    cpu::advance_angles(phi, theta, S, hc.dt);

    // q = Rot(phi)(Cn + C_bias), k = Rot(phi)(Bn + B_bias).
    for (int64_t r = 0; r < R; ++r) {
      float* qr = q + (r * H + h) * N;
      float* kr = k + (r * H + h) * N;
      const float* cb = L.C_bias.data() + (h * R + r) * N;
      const float* bb = L.B_bias.data() + (h * R + r) * N;
      for (int64_t n = 0; n < N; ++n) {
        qr[n] = Cn[(r * G + g) * N + n] + cb[n];
        kr[n] = Bn[(r * G + g) * N + n] + bb[n];
      }
      cpu::rotate(qr, phi, S, N, mimo);
      cpu::rotate(kr, phi, S, N, mimo);
    }

    // h <- alpha h + beta sum_r (x_prev * mx_r) k_prev_r^T + gamma sum_r (x * mx_r) k_r^T
    float* hs = ssm + h * P * N;
    for (int64_t p = 0; p < P; ++p) {
      float* row = hs + p * N;
      for (int64_t n = 0; n < N; ++n) row[n] *= alpha;
      for (int64_t r = 0; r < R; ++r) {
        const float mx = mimo ? L.mimo_x[(h * R + r) * P + p] : 1.0f;
        const float wp = beta * x_prev[h * P + p] * mx;
        const float wc = gamma * x[h * P + p] * mx;
        const float* kp = k_prev + (r * H + h) * N;
        const float* kc = k + (r * H + h) * N;
        for (int64_t n = 0; n < N; ++n) row[n] += wp * kp[n] + wc * kc[n];
      }
    }

    // y_r = h q_r + D (x * mx_r), then the gate (or headwise norm + gate) and the sum over ranks.
    float* yh = s.y.data() + h * P;
    std::fill(yh, yh + P, 0.0f);
    for (int64_t r = 0; r < R; ++r) {
      float* yr = s.y_rank.data();
      const float* qr = q + (r * H + h) * N;
      for (int64_t p = 0; p < P; ++p) {
        const float mx = mimo ? L.mimo_x[(h * R + r) * P + p] : 1.0f;
        float acc = 0;
        for (int64_t n = 0; n < N; ++n) acc += hs[p * N + n] * qr[n];
        yr[p] = acc + L.D[h] * x[h * P + p] * mx;
      }
      if (c_.is_outproj_norm) rms_norm(yr, L.out_norm.data() + h * P, P, yr);
      for (int64_t p = 0; p < P; ++p) {
        const float mz = mimo ? L.mimo_z[(h * R + r) * P + p] : 1.0f;
        const float mo = mimo ? L.mimo_o[(h * R + r) * P + p] : 1.0f;
        yh[p] += mo * yr[p] * silu(z[h * P + p] * mz);
      }
    }
  }

  // The cache keeps this token's rotated, biased key and its raw x for the next step's beta term.
  std::memcpy(k_prev, k, sizeof(float) * R * H * N);
  std::memcpy(x_prev, x, sizeof(float) * H * P);
  cpu::matvec(L.out_proj, s.y.data(), out);
}

}  // namespace m3
