#include "backends/cpu/cpu_fast_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "backends/cpu/mamba3_scalar_math.h"

namespace m3 {
namespace {

// Rows per pass: bounds the workspace; prefill feeds longer inputs in blocks of this many.
constexpr int64_t kMaxRows = 128;
// Multiply-adds below which a parallel region costs more in hand-offs than it saves.
constexpr int64_t kMinParallelWork = 32 * 1024;

// 64-byte aligned float storage.
class AlignedFloats {
 public:
  AlignedFloats() = default;
  explicit AlignedFloats(int64_t n) {
    const std::size_t bytes = (static_cast<std::size_t>(std::max<int64_t>(n, 1)) * sizeof(float) + 63) / 64 * 64;
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, bytes);
  }
  AlignedFloats(AlignedFloats&& o) noexcept : data_(o.data_) { o.data_ = nullptr; }
  AlignedFloats& operator=(AlignedFloats&& o) noexcept {
    std::swap(data_, o.data_);
    return *this;
  }
  ~AlignedFloats() { std::free(data_); }
  float* get() const { return data_; }

 private:
  float* data_ = nullptr;
};

// The weights with every matrix copied into the tiled layout of kernels `lanes` floats wide;
// the copies live in `storage` and the sources copied are handed to `release`.
ModelWeights tile_model_weights(const ModelWeights& src, int64_t lanes, std::vector<cpu::AlignedBytes>& storage,
                                const ReleaseWeightPages& release) {
  ModelWeights out = src;
  auto tile = [&](WeightMatrix& m) {
    if (!m.data) return;
    cpu::AlignedBytes data, scales;
    const WeightMatrix tiled = cpu::tile_weight_matrix(m, lanes, data, scales);
    if (tiled.data == m.data) return;  // left as it was
    if (release) {
      release(m.data, static_cast<std::size_t>(m.rows * weight_data_bytes(m.type, m.cols)));
      if (m.scales) release(m.scales, static_cast<std::size_t>(m.rows * (m.cols / kQuantGroup) * 2));
    }
    m = tiled;
    storage.push_back(std::move(data));
    if (scales.bytes) storage.push_back(std::move(scales));
  };
  for (MambaLayerWeights& layer : out.layers) {
    tile(layer.in_proj);
    tile(layer.out_proj);
    tile(layer.fc1);
    tile(layer.fc2);
  }
  const bool tied = out.embedding.data == out.lm_head.data;
  tile(out.lm_head);
  if (tied) out.embedding = out.lm_head;  // lookups read the head's tiled rows
  return out;
}

}  // namespace

// No per-slot scratch: a pass uses the backend's shared workspace.
struct CpuFastBackend::Slot final : HostStateSlot {
};

// Activations of up to kMaxRows rows, plus per-thread scratch; allocated once.
struct CpuFastBackend::Workspace {
  AlignedFloats residual, normed, proj, y, out, hidden;
  AlignedFloats bc_normed;  // per row: RMSNorm(B) [R, G, N] then RMSNorm(C) [R, G, N]
  struct PerThread {
    AlignedFloats q, k, wp, wc, y_rank;  // one head's step
  };
  std::vector<PerThread> threads;
};

CpuFastBackend::CpuFastBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
                               int threads, const cpu::KernelTable& kernels, const ReleaseWeightPages& release)
    : c_(config),
      w_(tile_model_weights(weights, kernels.float_lanes, tiled_storage_, release)),
      layout_(layout),
      kernels_(kernels),
      pool_(threads > 0 ? threads : cpu::default_thread_count()),
      ws_(std::make_unique<Workspace>()) {
  const int64_t D = c_.d_model, E = c_.d_inner, R = c_.mimo_rank, N = c_.d_state, P = c_.headdim,
                G = c_.ngroups;
  ws_->residual = AlignedFloats(kMaxRows * D);
  ws_->normed = AlignedFloats(kMaxRows * D);
  ws_->proj = AlignedFloats(kMaxRows * c_.d_in_proj);
  ws_->y = AlignedFloats(kMaxRows * E);
  ws_->out = AlignedFloats(kMaxRows * D);
  ws_->hidden = AlignedFloats(kMaxRows * 2 * std::max<int64_t>(w_.mlp_hidden, 1));
  ws_->bc_normed = AlignedFloats(kMaxRows * 2 * R * G * N);
  ws_->threads.resize(static_cast<std::size_t>(pool_.size()));
  for (auto& t : ws_->threads) {
    t.q = AlignedFloats(R * N);
    t.k = AlignedFloats(R * N);
    t.wp = AlignedFloats(R * P);
    t.wc = AlignedFloats(R * P);
    t.y_rank = AlignedFloats(R * P);
  }
}

CpuFastBackend::~CpuFastBackend() = default;

std::unique_ptr<StateSlot> CpuFastBackend::create_slot() {
  auto s = std::make_unique<Slot>();
  s->state.assign(static_cast<std::size_t>(layout_.total_floats()), 0.0f);
  return s;
}

void CpuFastBackend::prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
                             float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  Slot* s = &static_cast<Slot&>(slot);
  Slot* slots[kMaxRows];
  std::fill(slots, slots + kMaxRows, s);
  for_each_prefill_pass(n, kMaxRows, mode, logits, c_.vocab_padded,
                        [&](int64_t t0, int64_t rows, int64_t first, float* out) {
                          run_rows(slots, tokens + t0, rows, first, out);
                        });
}

void CpuFastBackend::decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  const int64_t total = static_cast<int64_t>(n);
  for (int64_t t0 = 0; t0 < total; t0 += kMaxRows) {
    const int64_t rows = std::min(kMaxRows, total - t0);
    Slot* block[kMaxRows];
    for (int64_t i = 0; i < rows; ++i) block[i] = static_cast<Slot*>(slots[t0 + i]);
    run_rows(block, tokens + t0, rows, logits ? 0 : rows, logits ? logits + t0 * c_.vocab_padded : nullptr);
  }
}

void CpuFastBackend::matmul(const WeightMatrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                            int64_t y_stride) {
  // Threads only pay off with enough work each: a few tens of thousands of multiply-adds.
  // Whole storage tiles per range, so no tile is split between threads.
  int64_t grain = std::max<int64_t>(16, kMinParallelWork / std::max<int64_t>(1, w.cols * n));
  static_assert(cpu::kMaxColumnTileRows % cpu::kWeightTileRows == 0);
  grain = (grain + cpu::kMaxColumnTileRows - 1) / cpu::kMaxColumnTileRows * cpu::kMaxColumnTileRows;
  pool_.parallel_for(w.rows, grain, [&](int64_t r0, int64_t r1, int) {
    kernels_.matmul(w, r0, r1, x, x_stride, n, y + r0, y_stride);
  });
}

void CpuFastBackend::run_rows(Slot* const* slots, const int32_t* tokens, int64_t n, int64_t first_logits_row,
                              float* logits) {
  const int64_t D = c_.d_model;
  float* residual = ws_->residual.get();
  float* normed = ws_->normed.get();
  for (int64_t t = 0; t < n; ++t) kernels_.load_row(w_.embedding, tokens[t], residual + t * D);
  for (int64_t l = 0; l < c_.n_layer; ++l) {
    const MambaLayerWeights& L = w_.layers[l];
    for (int64_t t = 0; t < n; ++t) cpu::rms_norm(residual + t * D, L.norm.data(), D, normed + t * D);
    mixer(slots, n, l);
    if (w_.mlp_hidden > 0) {
      for (int64_t t = 0; t < n; ++t) cpu::rms_norm(residual + t * D, L.norm2.data(), D, normed + t * D);
      mlp(n, l);
    }
  }
  if (logits && first_logits_row < n) {
    for (int64_t t = first_logits_row; t < n; ++t) cpu::rms_norm(residual + t * D, w_.norm_f.data(), D, normed + t * D);
    matmul(w_.lm_head, normed + first_logits_row * D, D, n - first_logits_row, logits, c_.vocab_padded);
  }
}

void CpuFastBackend::mlp(int64_t n, int64_t layer) {
  // GatedMLP: the first half of fc1's output is the value, the second half the gate.
  const MambaLayerWeights& L = w_.layers[layer];
  const int64_t D = c_.d_model, hid = w_.mlp_hidden;
  float* h = ws_->hidden.get();
  matmul(L.fc1, ws_->normed.get(), D, n, h, 2 * hid);
  for (int64_t t = 0; t < n; ++t) {
    float* row = h + t * 2 * hid;
    for (int64_t i = 0; i < hid; ++i) row[i] = row[i] * cpu::silu(row[hid + i]);
  }
  matmul(L.fc2, h, 2 * hid, n, ws_->out.get(), D);
  float* residual = ws_->residual.get();
  const float* out = ws_->out.get();
  for (int64_t i = 0; i < n * D; ++i) residual[i] += out[i];
}

void CpuFastBackend::mixer(Slot* const* slots, int64_t n, int64_t layer) {
  const MambaLayerWeights& L = w_.layers[layer];
  const int64_t D = c_.d_model, E = c_.d_inner, H = c_.nheads;
  float* proj = ws_->proj.get();
  float* y = ws_->y.get();
  matmul(L.in_proj, ws_->normed.get(), D, n, proj, c_.d_in_proj);
  // B and C are shared by the heads of a group: normalized once per row, not once per head.
  const int64_t RGN = c_.mimo_rank * c_.ngroups * c_.d_state;
  float* bcn = ws_->bc_normed.get();
  for (int64_t t = 0; t < n; ++t) {
    const float* B = proj + t * c_.d_in_proj + 2 * E;
    for (int64_t i = 0; i < RGN; i += c_.d_state) {
      cpu::rms_norm(B + i, L.B_norm.data(), c_.d_state, bcn + t * 2 * RGN + i);
      cpu::rms_norm(B + RGN + i, L.C_norm.data(), c_.d_state, bcn + t * 2 * RGN + RGN + i);
    }
  }
  // Heads are independent; each walks the rows in order, so a slot's tokens stay in sequence.
  const int64_t head_work = 3 * c_.headdim * c_.d_state * c_.mimo_rank * n;
  pool_.parallel_for(H, std::max<int64_t>(1, kMinParallelWork / head_work), [&](int64_t h0, int64_t h1, int thread) {
    for (int64_t h = h0; h < h1; ++h)
      for (int64_t t = 0; t < n; ++t)
        mixer_head(*slots[t], layer, h, proj + t * c_.d_in_proj, bcn + t * 2 * RGN, y + t * E, thread);
  });
  matmul(L.out_proj, y, E, n, ws_->out.get(), D);
  float* residual = ws_->residual.get();
  const float* out = ws_->out.get();
  for (int64_t i = 0; i < n * D; ++i) residual[i] += out[i];
}

void CpuFastBackend::mixer_head(Slot& slot, int64_t layer, int64_t h, const float* proj, const float* bc_normed,
                                float* y, int thread) {
  const MambaLayerWeights& L = w_.layers[layer];
  const int64_t E = c_.d_inner, H = c_.nheads, P = c_.headdim, N = c_.d_state, G = c_.ngroups, R = c_.mimo_rank,
                S = c_.n_angles;
  const bool mimo = c_.is_mimo;
  Workspace::PerThread& ws = ws_->threads[static_cast<std::size_t>(thread)];

  // in_proj rows: z [E] | x [E] | B [R, G, N] | C [R, G, N] | dd_dt [H] | dd_A [H] | trap [H] | theta [S]
  const float* z = proj;
  const float* x = z + E;
  const float* B = x + E;
  const float* C = B + R * G * N;
  const float* dd_dt = C + R * G * N;
  const float* dd_A = dd_dt + H;
  const float* trap = dd_A + H;
  const float* theta = trap + H;
  const int64_t g = h / (H / G);

  float* state = slot.state.data();
  float* phi = state + layout_.offset(layer, M3_STATE_ANGLE) + h * S;
  float* hs = state + layout_.offset(layer, M3_STATE_SSM) + h * P * N;
  float* k_prev = state + layout_.offset(layer, M3_STATE_K) + h * N;  // rank stride H*N
  float* x_prev = state + layout_.offset(layer, M3_STATE_V) + h * P;

  const cpu::HeadCoefficients hc = cpu::head_coefficients(c_, dd_dt[h], L.dt_bias[h], dd_A[h], trap[h]);
  cpu::advance_angles(phi, theta, S, hc.dt);

  // q_r = Rot(phi)(RMSNorm(C_r,g) + C_bias), k_r likewise from B; and the rank-r weights of
  // the previous (beta) and current (gamma) outer products.
  float* q = ws.q.get();
  float* k = ws.k.get();
  float* wp = ws.wp.get();
  float* wc = ws.wc.get();
  for (int64_t r = 0; r < R; ++r) {
    float* qr = q + r * N;
    float* kr = k + r * N;
    const float* cn = bc_normed + R * G * N + (r * G + g) * N;  // RMSNorm(C_r,g) * C_norm
    const float* bn = bc_normed + (r * G + g) * N;          // RMSNorm(B_r,g) * B_norm
    const float* cb = L.C_bias.data() + (h * R + r) * N;
    const float* bb = L.B_bias.data() + (h * R + r) * N;
    for (int64_t i = 0; i < N; ++i) {
      qr[i] = cn[i] + cb[i];
      kr[i] = bn[i] + bb[i];
    }
    cpu::rotate(qr, phi, S, N, mimo);
    cpu::rotate(kr, phi, S, N, mimo);
    for (int64_t p = 0; p < P; ++p) {
      const float mx = mimo ? L.mimo_x[(h * R + r) * P + p] : 1.0f;
      wp[r * P + p] = hc.beta * x_prev[p] * mx;
      wc[r * P + p] = hc.gamma * x[h * P + p] * mx;
    }
  }
  float* yr = ws.y_rank.get();  // [R, P]
  kernels_.ssm_head_step(hs, P, N, R, hc.alpha, wp, wc, k_prev, H * N, k, q, yr);

  // y_r += D (x * mx_r), then the gate (or headwise norm + gate) and the sum over ranks.
  float* yh = y + h * P;
  std::fill(yh, yh + P, 0.0f);
  for (int64_t r = 0; r < R; ++r) {
    float* yrr = yr + r * P;
    for (int64_t p = 0; p < P; ++p) {
      const float mx = mimo ? L.mimo_x[(h * R + r) * P + p] : 1.0f;
      yrr[p] += L.D[h] * x[h * P + p] * mx;
    }
    if (c_.is_outproj_norm) cpu::rms_norm(yrr, L.out_norm.data() + h * P, P, yrr);
    for (int64_t p = 0; p < P; ++p) {
      const float mz = mimo ? L.mimo_z[(h * R + r) * P + p] : 1.0f;
      const float mo = mimo ? L.mimo_o[(h * R + r) * P + p] : 1.0f;
      yh[p] += mo * yrr[p] * cpu::silu(z[h * P + p] * mz);
    }
  }
  // The cache keeps this token's rotated, biased key and its raw x for the next step's beta term.
  for (int64_t r = 0; r < R; ++r) std::memcpy(k_prev + r * H * N, k + r * N, sizeof(float) * N);
  std::memcpy(x_prev, x + h * P, sizeof(float) * P);
}

}  // namespace m3
