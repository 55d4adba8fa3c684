// A model with random weights held in memory, for backend parity tests: any config, matrices
// in f32, bf16 or f16, bound exactly like a loaded checkpoint.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "model/quantization.h"  // f32_to_bf16, f32_to_f16
#include "model/model_config.h"
#include "model/model_weights.h"
#include "session/state_layout.h"
#include "src/backend.h"

namespace test {

struct RandomModel {
  m3::ModelConfig config;
  m3::ModelWeights weights;
  m3::StateLayout layout;
  std::vector<std::vector<uint8_t>> buffers;

  RandomModel(const std::string& config_json, m3::DType matrix_dtype, uint32_t seed) {
    config = m3::parse_model_config(config_json, "random config");
    const auto& c = config;
    const int64_t D = c.d_model, E = c.d_inner, H = c.nheads, N = c.d_state, R = c.mimo_rank, P = c.headdim,
                  V = c.vocab_padded;
    const int64_t hid = (c.d_intermediate + 127) / 128 * 128;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<m3::TensorView> views;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset, bool matrix) {
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      const m3::DType dtype = matrix ? matrix_dtype : m3::DType::F32;
      std::vector<uint8_t> bytes(static_cast<size_t>(n) * m3::dtype_size(dtype));
      for (int64_t i = 0; i < n; ++i) {
        const float v = offset + scale * normal(rng);
        if (dtype == m3::DType::F32) std::memcpy(bytes.data() + 4 * i, &v, 4);
        else {
          const uint16_t h = dtype == m3::DType::BF16 ? m3::f32_to_bf16(v) : m3::f32_to_f16(v);
          std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
      }
      buffers.push_back(std::move(bytes));
      m3::TensorView t;
      t.name = name;
      t.dtype = dtype;
      t.shape = shape;
      t.data = buffers.back().data();
      t.nbytes = buffers.back().size();
      views.push_back(t);
    };
    add("backbone.embedding.weight", {V, D}, 1.0f, 0.0f, true);
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = "backbone.layers." + std::to_string(l) + ".";
      add(p + "norm.weight", {D}, 0.1f, 1.0f, false);
      add(p + "mixer.dt_bias", {H}, 0.5f, -3.0f, false);
      add(p + "mixer.B_bias", {H, R, N}, 0.2f, 1.0f, false);
      add(p + "mixer.C_bias", {H, R, N}, 0.2f, 1.0f, false);
      if (c.is_mimo) {
        add(p + "mixer.mimo_x", {H, R, P}, 0.1f, 1.0f, false);
        add(p + "mixer.mimo_z", {H, R, P}, 0.1f, 1.0f, false);
        add(p + "mixer.mimo_o", {H, R, P}, 0.1f / static_cast<float>(R), 1.0f / static_cast<float>(R), false);
      }
      add(p + "mixer.D", {H}, 0.1f, 1.0f, false);
      add(p + "mixer.in_proj.weight", {c.d_in_proj, D}, 1.0f / std::sqrt(static_cast<float>(D)), 0.0f, true);
      add(p + "mixer.B_norm.weight", {N}, 0.1f, 1.0f, false);
      add(p + "mixer.C_norm.weight", {N}, 0.1f, 1.0f, false);
      if (c.is_outproj_norm) add(p + "mixer.norm.weight", {E}, 0.1f, 1.0f, false);
      add(p + "mixer.out_proj.weight", {D, E}, 0.5f / std::sqrt(static_cast<float>(E)), 0.0f, true);
      if (hid) {
        add(p + "norm2.weight", {D}, 0.1f, 1.0f, false);
        add(p + "mlp.fc1.weight", {2 * hid, D}, 1.0f / std::sqrt(static_cast<float>(D)), 0.0f, true);
        add(p + "mlp.fc2.weight", {D, hid}, 0.5f / std::sqrt(static_cast<float>(hid)), 0.0f, true);
      }
    }
    add("backbone.norm_f.weight", {D}, 0.1f, 1.0f, false);
    if (!c.tie_embeddings) add("lm_head.weight", {V, D}, 1.0f / std::sqrt(static_cast<float>(D)), 0.0f, true);
    weights = m3::bind_model_weights(config, views, "random model");
    layout = m3::make_state_layout(config);
  }
};

inline std::string config_json(int d_model, int n_layer, int vocab, int d_state, int headdim, int ngroups, bool mimo,
                        int rank, bool outnorm, int d_intermediate, bool tie) {
  return "{\"d_model\": " + std::to_string(d_model) + ", \"n_layer\": " + std::to_string(n_layer) +
         ", \"vocab_size\": " + std::to_string(vocab) + ", \"d_intermediate\": " + std::to_string(d_intermediate) +
         ", \"tie_embeddings\": " + (tie ? "true" : "false") +
         ", \"ssm_cfg\": {\"layer\": \"Mamba3\", \"d_state\": " + std::to_string(d_state) +
         ", \"headdim\": " + std::to_string(headdim) + ", \"ngroups\": " + std::to_string(ngroups) +
         ", \"is_mimo\": " + (mimo ? "true" : "false") + ", \"mimo_rank\": " + std::to_string(rank) +
         ", \"is_outproj_norm\": " + (outnorm ? "true" : "false") + "}}";
}

// The parity suites' random configurations: SISO and MIMO, odd sizes (scalar tails), grouped
// B/C, untied heads, an MLP, an output norm; matrices in each float type.
struct ParityCase {
  const char* name;
  std::string json;
  m3::DType dtype;
};

inline std::vector<ParityCase> small_parity_cases() {
  return {
      {"siso_f32", config_json(64, 2, 100, 16, 16, 1, false, 1, false, 0, true), m3::DType::F32},
      {"mimo_r2_outnorm_mlp_bf16", config_json(64, 2, 77, 12, 16, 1, true, 2, true, 96, true), m3::DType::BF16},
      {"odd_sizes_groups_untied_f16", config_json(40, 3, 51, 20, 10, 2, false, 1, false, 0, false), m3::DType::F16},
      {"mimo_r4_odd_f32", config_json(36, 2, 33, 8, 12, 1, true, 4, true, 40, false), m3::DType::F32},
  };
}

inline double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline std::vector<int32_t> random_tokens(size_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return t;
}

// A slot's whole state, read back from any backend.
inline std::vector<float> read_state(m3::Backend& b, const RandomModel& m, m3::StateSlot& s) {
  std::vector<float> st(static_cast<size_t>(m.layout.total_floats()));
  b.read_slot(s, st.data());
  return st;
}

// What backend parity tests compare: a prefill with all logits, a second prompt with the last
// logits, then six batched decode steps of three slots; the logits of all that and the final
// states of the three slots.
struct Trace {
  std::vector<float> logits, states;
};

inline Trace run_trace(m3::Backend& b, const RandomModel& m, size_t prompt_len) {
  const int64_t V = m.config.vocab_padded;
  Trace tr;
  auto s0 = b.create_slot(), s1 = b.create_slot(), s2 = b.create_slot();
  const auto prompt = random_tokens(prompt_len, m.config.vocab_size, 1);
  std::vector<float> logits(prompt_len * V);
  b.prefill(*s0, prompt.data(), prompt.size(), M3_LOGITS_ALL, logits.data());
  tr.logits = logits;
  const auto short_prompt = random_tokens(5, m.config.vocab_size, 2);
  logits.assign(V, 0.0f);
  b.prefill(*s1, short_prompt.data(), short_prompt.size(), M3_LOGITS_LAST, logits.data());
  tr.logits.insert(tr.logits.end(), logits.begin(), logits.end());
  m3::StateSlot* slots[] = {s0.get(), s1.get(), s2.get()};
  for (int step = 0; step < 6; ++step) {
    const auto toks = random_tokens(3, m.config.vocab_size, 100 + step);
    std::vector<float> out(3 * V);
    b.decode(slots, toks.data(), 3, out.data());
    tr.logits.insert(tr.logits.end(), out.begin(), out.end());
  }
  for (auto* s : slots) {
    const auto st = read_state(b, m, *s);
    tr.states.insert(tr.states.end(), st.begin(), st.end());
  }
  return tr;
}

}  // namespace test
