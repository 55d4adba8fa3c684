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
using test::Trace;

using Case = test::ParityCase;

std::vector<Case> cases() { return test::small_parity_cases(); }

class FastBackendParity : public ::testing::TestWithParam<Case> {};

TEST_P(FastBackendParity, MatchesTheReferenceOnEveryIsaAndThreadCount) {
  const Case& c = GetParam();
  const RandomModel m(c.json, c.dtype, 42);
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  for (size_t prompt_len : {size_t{1}, size_t{37}, size_t{150}}) {
    const Trace want = test::run_trace(reference, m, prompt_len);
    Trace first;
    for (const m3::cpu::KernelTable* table : m3::cpu::supported_kernel_tables())
      for (int threads : {1, 2, 3}) {
        m3::CpuFastBackend fast(m.config, m.weights, m.layout, threads, *table);
        EXPECT_EQ(fast.threads(), threads);
        const Trace got = test::run_trace(fast, m, prompt_len);
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
  EXPECT_GT(rel_l2(test::run_trace(fb, b, 20).logits, test::run_trace(ra, a, 20).logits), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(RandomModels, FastBackendParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

}  // namespace
