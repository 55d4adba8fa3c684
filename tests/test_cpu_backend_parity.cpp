// The fast CPU backend against the scalar reference backend on random models: SISO and
// MIMO, odd sizes (scalar tails), grouped B/C, untied heads, an MLP, every supported
// instruction set and several thread counts; long prefills crossing the row-block size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_fast_backend.h"
#include "backends/cpu/cpu_reference_backend.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/quantization.h"
#include "random_model.h"
#include "session/state_layout.h"

namespace {

using test::RandomModel;
using test::config_json;
using test::rel_l2;
using test::random_tokens;

struct Case {
  const char* name;
  std::string json;
  m3::DType dtype;
};

std::vector<Case> cases() {
  return {
      {"siso_f32", config_json(64, 2, 100, 16, 16, 1, false, 1, false, 0, true), m3::DType::F32},
      {"mimo_r2_outnorm_mlp_bf16", config_json(64, 2, 77, 12, 16, 1, true, 2, true, 96, true), m3::DType::BF16},
      {"odd_sizes_groups_untied_f16", config_json(40, 3, 51, 20, 10, 2, false, 1, false, 0, false), m3::DType::F16},
      {"mimo_r4_odd_f32", config_json(36, 2, 33, 8, 12, 1, true, 4, true, 40, false), m3::DType::F32},
  };
}

// Prefill (all logits), then batched decode of three slots; returns logits and states.
struct Trace {
  std::vector<float> logits, states;
};

Trace run(m3::Backend& b, const RandomModel& m, size_t prompt_len) {
  const int64_t V = m.config.vocab_padded;
  Trace tr;
  auto s0 = b.create_slot(), s1 = b.create_slot(), s2 = b.create_slot();
  const auto prompt = random_tokens(prompt_len, m.config.vocab_size, 1);
  std::vector<float> logits(prompt_len * V);
  b.prefill(*s0, prompt.data(), prompt.size(), M3_LOGITS_ALL, logits.data());
  tr.logits = logits;
  const auto short_prompt = random_tokens(5, m.config.vocab_size, 2);
  logits.resize(std::max<size_t>(logits.size(), V));
  b.prefill(*s1, short_prompt.data(), short_prompt.size(), M3_LOGITS_LAST, logits.data());
  tr.logits.insert(tr.logits.end(), logits.begin(), logits.begin() + V);
  m3::StateSlot* slots[] = {s0.get(), s1.get(), s2.get()};
  for (int step = 0; step < 6; ++step) {
    const auto toks = random_tokens(3, m.config.vocab_size, 100 + step);
    std::vector<float> out(3 * V);
    b.decode(slots, toks.data(), 3, out.data());
    tr.logits.insert(tr.logits.end(), out.begin(), out.end());
  }
  for (auto* s : slots) {
    std::vector<float> st(static_cast<size_t>(m.layout.total_floats()));
    b.read_slot(*s, st.data());
    tr.states.insert(tr.states.end(), st.begin(), st.end());
  }
  return tr;
}

class FastBackendParity : public ::testing::TestWithParam<Case> {};

TEST_P(FastBackendParity, MatchesTheReferenceOnEveryIsaAndThreadCount) {
  const Case& c = GetParam();
  const RandomModel m(c.json, c.dtype, 42);
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  for (size_t prompt_len : {size_t{1}, size_t{37}, size_t{150}}) {
    const Trace want = run(reference, m, prompt_len);
    Trace first;
    for (const m3::cpu::KernelTable* table : m3::cpu::supported_kernel_tables())
      for (int threads : {1, 2, 3}) {
        m3::CpuFastBackend fast(m.config, m.weights, m.layout, threads, *table);
        EXPECT_EQ(fast.threads(), threads);
        const Trace got = run(fast, m, prompt_len);
        const std::string label = std::string(c.name) + " " + table->arch + " threads=" + std::to_string(threads) +
                                  " prompt=" + std::to_string(prompt_len);
        EXPECT_LE(rel_l2(got.logits, want.logits), 1e-5) << label;
        EXPECT_LE(rel_l2(got.states, want.states), 1e-5) << label;
        // Within one instruction set, the thread count never changes a bit.
        if (threads == 1) first = got;
        else {
          EXPECT_EQ(got.logits, first.logits) << label;
          EXPECT_EQ(got.states, first.states) << label;
        }
      }
  }
}

// The parity metric must be able to fail: a different model is far off.
TEST(FastBackendParitySensitivity, ADifferentModelIsFarOff) {
  const Case c = cases()[0];
  const RandomModel a(c.json, c.dtype, 42), b(c.json, c.dtype, 43);
  m3::CpuReferenceBackend ra(a.config, a.weights, a.layout);
  m3::CpuFastBackend fb(b.config, b.weights, b.layout, 2, m3::cpu::best_kernel_table());
  EXPECT_GT(rel_l2(run(fb, b, 20).logits, run(ra, a, 20).logits), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(RandomModels, FastBackendParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

}  // namespace
