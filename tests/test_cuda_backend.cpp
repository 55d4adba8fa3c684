// The CUDA backend against the CPU backends on random models: the CPU parity suite's small
// and odd configs, realistic head sizes (P = 64, N = 128), prefills longer than a pass
// (1024 rows) and of 8k tokens, both prefill kernels (token by token, and chunked for
// bf16/f16), and batches of 1 to 256 sessions of different lengths.
// Needs a CUDA device and the module (libmamba3rt_cuda.so, found through
// MAMBA3RT_CUDA_MODULE, which CTest sets); skipped with the reason elsewhere (CI).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_fast_backend.h"
#include "backends/cpu/cpu_reference_backend.h"
#include "backends/cuda_module_loader.h"
#include "common/error.h"
#include "random_model.h"

namespace {

using test::config_json;
using test::RandomModel;
using test::random_tokens;
using test::rel_l2;
using test::read_state;
using test::Trace;

// The CUDA backend for m, or null with the reason.
std::unique_ptr<m3::Backend> make_cuda(const RandomModel& m, std::string* why) {
  const m3::CudaModuleEntry* module = m3::cuda_module(why);
  if (!module || module->availability(why) != M3_OK) return nullptr;
  return module->create(m.config, m.weights, m.layout, m3::BackendOptions{});
}

#define CUDA_OR_SKIP(var, model)                              \
  std::string why_##var;                                      \
  auto var = make_cuda(model, &why_##var);                    \
  if (!var) GTEST_SKIP() << "no CUDA backend: " << why_##var

// What a weight type allows against the fp32 CPU reference, logits and states apart. bf16
// and f16 weights multiply activations rounded to the same type on the tensor cores (the
// CPU keeps them fp32): measured on the H100, logits rel-L2 2e-3 (bf16) and 7e-4 (f16),
// states 3e-3 after 37 tokens growing to 7e-2 (bf16) and 5e-3 (f16) after 1100 tokens of a
// random model (docs/ARCHITECTURE.md, "The CUDA backend"). A wrong formula is off by O(1).
struct Tolerance {
  double logits, states;
};

Tolerance tolerance(m3::DType dtype) {
  switch (dtype) {
    case m3::DType::F32: return {1e-4, 1e-4};
    case m3::DType::F16: return {3e-3, 2e-2};
    default: return {1e-2, 0.15};
  }
}

using Case = test::ParityCase;

std::vector<Case> cases() {
  std::vector<Case> v = test::small_parity_cases();
  // The published models' head shapes: P = 64, N = 128 (SISO) and MIMO rank 4.
  v.push_back({"siso_p64_n128_f32", config_json(256, 2, 300, 128, 64, 1, false, 1, false, 0, true), m3::DType::F32});
  v.push_back({"siso_p64_n128_bf16", config_json(256, 2, 300, 128, 64, 1, false, 1, false, 0, true), m3::DType::BF16});
  v.push_back({"mimo_r4_p64_n64_f32", config_json(256, 2, 300, 64, 64, 1, true, 4, true, 512, true), m3::DType::F32});
  // Shapes the chunked prefill takes (bf16/f16 weights use it): MIMO chunks of 16 and 32
  // tokens, grouped B/C, an output norm.
  v.push_back({"mimo_r4_p64_n64_bf16", config_json(256, 2, 300, 64, 64, 1, true, 4, true, 512, true), m3::DType::BF16});
  v.push_back({"mimo_r2_p32_n32_groups_f16", config_json(128, 2, 200, 32, 32, 2, true, 2, false, 0, false),
               m3::DType::F16});
  return v;
}

class CudaParity : public ::testing::TestWithParam<Case> {};

TEST_P(CudaParity, MatchesTheCpuReference) {
  const Case& c = GetParam();
  const RandomModel m(c.json, c.dtype, 42);
  CUDA_OR_SKIP(cuda, m);
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  // 1100 tokens: a prefill of two passes (1024 rows each at most).
  for (size_t prompt_len : {size_t{1}, size_t{37}, size_t{1100}}) {
    const Trace want = test::run_trace(reference, m, prompt_len);
    const Trace got = test::run_trace(*cuda, m, prompt_len);
    const double logits_err = rel_l2(got.logits, want.logits), states_err = rel_l2(got.states, want.states);
    std::printf("[ metrics  ] cuda %s prompt=%zu: logits rel-L2 %.3g, states rel-L2 %.3g\n", c.name, prompt_len,
                logits_err, states_err);
    EXPECT_LE(logits_err, tolerance(c.dtype).logits) << c.name << " prompt=" << prompt_len;
    EXPECT_LE(states_err, tolerance(c.dtype).states) << c.name << " prompt=" << prompt_len;
  }
}

INSTANTIATE_TEST_SUITE_P(RandomModels, CudaParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// 8k tokens in one prefill, then decode: against the fast CPU backend (the reference agrees
// with it to 1e-5 and is too slow here), final state and last logits.
TEST(CudaLongSequence, EightThousandTokensMatchTheCpu) {
  const RandomModel m(config_json(64, 2, 100, 32, 16, 1, false, 1, false, 0, true), m3::DType::F32, 7);
  CUDA_OR_SKIP(cuda, m);
  m3::CpuFastBackend cpu(m.config, m.weights, m.layout, 0, m3::cpu::best_kernel_table());
  const auto prompt = random_tokens(8192, m.config.vocab_size, 3);
  const int64_t V = m.config.vocab_padded;
  std::vector<float> want(V), got(V);
  auto a = cpu.create_slot(), b = cuda->create_slot();
  cpu.prefill(*a, prompt.data(), prompt.size(), M3_LOGITS_LAST, want.data());
  cuda->prefill(*b, prompt.data(), prompt.size(), M3_LOGITS_LAST, got.data());
  EXPECT_LE(rel_l2(got, want), 1e-4);
  EXPECT_LE(rel_l2(read_state(*cuda, m, *b), read_state(cpu, m, *a)), 1e-4);
  m3::StateSlot* sa[] = {a.get()};
  m3::StateSlot* sb[] = {b.get()};
  for (int step = 0; step < 4; ++step) {
    const auto tok = random_tokens(1, m.config.vocab_size, 50 + step);
    cpu.decode(sa, tok.data(), 1, want.data());
    cuda->decode(sb, tok.data(), 1, got.data());
    EXPECT_LE(rel_l2(got, want), 1e-4) << "step " << step;
  }
}

// The CUDA backend for m with MAMBA3RT_CUDA_PREFILL=kind ("sequential" or "chunked").
std::unique_ptr<m3::Backend> make_cuda_prefill(const RandomModel& m, const char* kind, std::string* why) {
  setenv("MAMBA3RT_CUDA_PREFILL", kind, 1);
  auto b = make_cuda(m, why);
  unsetenv("MAMBA3RT_CUDA_PREFILL");
  return b;
}

// The chunked prefill (tf32 products within a chunk) on fp32 models, where the reference
// is exact: against the CPU reference and the token-by-token kernel, over prompts that end
// inside a chunk, span chunks and span two passes, SISO and MIMO. tf32 keeps 10 mantissa
// bits: measured on the H100, rel-L2 (logits, states) of order 1e-4 to 1e-3.
TEST(CudaChunkedPrefill, MatchesTheReferenceAndTheTokenByTokenKernel) {
  for (const Case& c : {Case{"siso_p64_n128", config_json(256, 2, 300, 128, 64, 1, false, 1, false, 0, true),
                             m3::DType::F32},
                        Case{"mimo_r4_p16_n32_outnorm", config_json(64, 2, 100, 32, 16, 1, true, 4, true, 0, true),
                             m3::DType::F32}}) {
    const RandomModel m(c.json, c.dtype, 21);
    std::string why;
    auto chunked = make_cuda_prefill(m, "chunked", &why);
    if (!chunked) GTEST_SKIP() << "no CUDA backend: " << why;
    auto sequential = make_cuda_prefill(m, "sequential", &why);
    ASSERT_TRUE(sequential) << why;
    m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
    for (size_t prompt_len : {size_t{1}, size_t{13}, size_t{200}, size_t{1100}}) {
      const Trace want = test::run_trace(reference, m, prompt_len);
      const Trace got = test::run_trace(*chunked, m, prompt_len);
      const Trace seq = test::run_trace(*sequential, m, prompt_len);
      const double logits_err = rel_l2(got.logits, want.logits), states_err = rel_l2(got.states, want.states);
      std::printf("[ metrics  ] cuda chunked %s prompt=%zu: logits rel-L2 %.3g, states rel-L2 %.3g\n", c.name,
                  prompt_len, logits_err, states_err);
      EXPECT_LE(logits_err, 5e-3) << c.name << " prompt=" << prompt_len;
      EXPECT_LE(states_err, 5e-3) << c.name << " prompt=" << prompt_len;
      EXPECT_LE(rel_l2(seq.logits, want.logits), 1e-4) << c.name << " prompt=" << prompt_len;
      // Different kernels ran: tf32 rounding shows (a prompt of 1 token still makes a chunk).
      EXPECT_GT(rel_l2(got.states, seq.states), 1e-7) << c.name << " prompt=" << prompt_len;
    }
  }
}

// 8k tokens through the chunked prefill (8 passes of 16 chunks), then decode: against the
// fast CPU backend on an fp32 model, so that only the chunked kernel's tf32 rounding shows.
TEST(CudaChunkedPrefill, EightThousandTokensMatchTheCpu) {
  const RandomModel m(config_json(64, 2, 100, 32, 16, 1, false, 1, false, 0, true), m3::DType::F32, 8);
  std::string why;
  auto cuda = make_cuda_prefill(m, "chunked", &why);
  if (!cuda) GTEST_SKIP() << "no CUDA backend: " << why;
  m3::CpuFastBackend cpu(m.config, m.weights, m.layout, 0, m3::cpu::best_kernel_table());
  const auto prompt = random_tokens(8192, m.config.vocab_size, 5);
  const int64_t V = m.config.vocab_padded;
  std::vector<float> want(V), got(V);
  auto a = cpu.create_slot(), b = cuda->create_slot();
  cpu.prefill(*a, prompt.data(), prompt.size(), M3_LOGITS_LAST, want.data());
  cuda->prefill(*b, prompt.data(), prompt.size(), M3_LOGITS_LAST, got.data());
  const auto got_state = read_state(*cuda, m, *b), want_state = read_state(cpu, m, *a);
  const double logits_err = rel_l2(got, want), states_err = rel_l2(got_state, want_state);
  std::printf("[ metrics  ] cuda chunked 8192 tokens: logits rel-L2 %.3g, states rel-L2 %.3g\n", logits_err,
              states_err);
  // Layer 0 shows the kernel's own error. Later layers' angles are running sums over all 8k
  // tokens of increments computed from the layer below, whose tf32 differences add up: their
  // state drifts further (measured on the H100: 1e-2 to 3e-2 in layer 1, 3e-4 in layer 0).
  for (int64_t layer = 0; layer < m.config.n_layer; ++layer)
    for (m3_state_part part : {M3_STATE_ANGLE, M3_STATE_SSM, M3_STATE_K, M3_STATE_V}) {
      const int64_t at = m.layout.offset(layer, part), len = m.layout.part_floats(part);
      const std::vector<float> g(got_state.begin() + at, got_state.begin() + at + len),
          w(want_state.begin() + at, want_state.begin() + at + len);
      const double err = rel_l2(g, w);
      std::printf("[ metrics  ]   layer %lld part %d: rel-L2 %.3g\n", static_cast<long long>(layer),
                  static_cast<int>(part), err);
      if (layer == 0) {
        EXPECT_LE(err, 2e-3) << "part " << part;
      }
    }
  EXPECT_LE(logits_err, 5e-3);
  EXPECT_LE(states_err, 5e-2);
  m3::StateSlot* sa[] = {a.get()};
  m3::StateSlot* sb[] = {b.get()};
  for (int step = 0; step < 4; ++step) {
    const auto tok = random_tokens(1, m.config.vocab_size, 60 + step);
    cpu.decode(sa, tok.data(), 1, want.data());
    cuda->decode(sb, tok.data(), 1, got.data());
    EXPECT_LE(rel_l2(got, want), 5e-3) << "step " << step;
  }
}

// Prefill-then-decode equals decode-only on the GPU itself.
TEST(CudaConsistency, PrefillEqualsDecodeOnly) {
  const RandomModel m(config_json(128, 2, 100, 64, 32, 1, true, 2, false, 0, true), m3::DType::F32, 9);
  CUDA_OR_SKIP(cuda, m);
  const auto prompt = random_tokens(60, m.config.vocab_size, 4);
  const int64_t V = m.config.vocab_padded;
  std::vector<float> prefill_logits(V), step_logits(V);
  auto a = cuda->create_slot(), b = cuda->create_slot();
  cuda->prefill(*a, prompt.data(), prompt.size(), M3_LOGITS_LAST, prefill_logits.data());
  m3::StateSlot* sb[] = {b.get()};
  for (int32_t t : prompt) cuda->decode(sb, &t, 1, step_logits.data());
  EXPECT_LE(rel_l2(step_logits, prefill_logits), 1e-5);
  EXPECT_LE(rel_l2(read_state(*cuda, m, *b), read_state(*cuda, m, *a)), 1e-5);
}

// The same through the chunked prefill: a prompt in two calls (the second starts from a
// cached state, mid-chunk), then decode, against decode-only, to tf32 accuracy.
TEST(CudaConsistency, ChunkedPrefillThenDecodeEqualsDecodeOnly) {
  const RandomModel m(config_json(128, 2, 100, 32, 32, 1, true, 2, false, 0, true), m3::DType::F32, 10);
  std::string why;
  auto cuda = make_cuda_prefill(m, "chunked", &why);
  if (!cuda) GTEST_SKIP() << "no CUDA backend: " << why;
  const auto prompt = random_tokens(150, m.config.vocab_size, 6);
  const int64_t V = m.config.vocab_padded;
  std::vector<float> prefill_logits(V), step_logits(V);
  auto a = cuda->create_slot(), b = cuda->create_slot();
  cuda->prefill(*a, prompt.data(), 77, M3_LOGITS_NONE, nullptr);
  cuda->prefill(*a, prompt.data() + 77, prompt.size() - 77, M3_LOGITS_LAST, prefill_logits.data());
  m3::StateSlot* sb[] = {b.get()};
  for (int32_t t : prompt) cuda->decode(sb, &t, 1, step_logits.data());
  EXPECT_LE(rel_l2(step_logits, prefill_logits), 5e-3);
  EXPECT_LE(rel_l2(read_state(*cuda, m, *b), read_state(*cuda, m, *a)), 5e-3);
}

// Each session of a batch (its own prompt length) decoded together on the GPU and on the CPU:
// every session's logits and state agree.
void expect_batches_match_the_cpu(const RandomModel& m, m3::Backend& cuda, std::initializer_list<int> batches) {
  m3::CpuFastBackend cpu(m.config, m.weights, m.layout, 0, m3::cpu::best_kernel_table());
  const int64_t V = m.config.vocab_padded;
  for (int batch : batches) {
    std::vector<std::unique_ptr<m3::StateSlot>> cpu_slots, gpu_slots;
    std::vector<m3::StateSlot*> cs, gs;
    std::vector<float> scratch(V);
    for (int i = 0; i < batch; ++i) {
      cpu_slots.push_back(cpu.create_slot());
      gpu_slots.push_back(cuda.create_slot());
      const auto prompt = random_tokens(1 + (i * 37) % 90, m.config.vocab_size, 1000 + i);
      cpu.prefill(*cpu_slots.back(), prompt.data(), prompt.size(), M3_LOGITS_NONE, nullptr);
      cuda.prefill(*gpu_slots.back(), prompt.data(), prompt.size(), M3_LOGITS_NONE, nullptr);
      cs.push_back(cpu_slots.back().get());
      gs.push_back(gpu_slots.back().get());
    }
    std::vector<float> want(batch * V), got(batch * V);
    for (int step = 0; step < 3; ++step) {
      const auto toks = random_tokens(batch, m.config.vocab_size, 77 + step);
      cpu.decode(cs.data(), toks.data(), batch, want.data());
      cuda.decode(gs.data(), toks.data(), batch, got.data());
      EXPECT_LE(rel_l2(got, want), 1e-4) << "batch " << batch << " step " << step;
    }
    double worst = 0;
    for (int i = 0; i < batch; ++i) worst = std::max(worst, rel_l2(read_state(cuda, m, *gs[i]), read_state(cpu, m, *cs[i])));
    EXPECT_LE(worst, 1e-4) << "batch " << batch;
  }
}

// Batches of 1 to 256 sessions of different lengths (cuBLAS products from batch 2 on).
TEST(CudaBatchedDecode, ManySessionsOfDifferentLengthsMatchTheCpu) {
  const RandomModel m(config_json(128, 2, 100, 64, 32, 1, false, 1, true, 0, true), m3::DType::F32, 11);
  CUDA_OR_SKIP(cuda, m);
  expect_batches_match_the_cpu(m, *cuda, {1, 7, 64, 256});
}

// The small-batch product kernel for every batch size it takes (by default only batch 1
// uses it), with an MLP.
TEST(CudaBatchedDecode, SmallBatchKernelMatchesTheCpuUpToItsLimit) {
  const RandomModel m(config_json(128, 2, 100, 64, 32, 1, false, 1, true, 256, true), m3::DType::F32, 12);
  setenv("MAMBA3RT_CUDA_SMALL_BATCH", "8", 1);
  std::string why;
  auto cuda = make_cuda(m, &why);
  unsetenv("MAMBA3RT_CUDA_SMALL_BATCH");
  if (!cuda) GTEST_SKIP() << "no CUDA backend: " << why;
  expect_batches_match_the_cpu(m, *cuda, {1, 2, 3, 5, 8});
}

// The metric can fail: another model's outputs are far off.
TEST(CudaParitySensitivity, ADifferentModelIsFarOff) {
  const Case c = cases()[0];
  const RandomModel a(c.json, c.dtype, 42), b(c.json, c.dtype, 43);
  CUDA_OR_SKIP(cuda, b);
  m3::CpuReferenceBackend reference(a.config, a.weights, a.layout);
  EXPECT_GT(rel_l2(test::run_trace(*cuda, b, 20).logits, test::run_trace(reference, a, 20).logits), 1e-2);
}

// A real out-of-memory: the device is filled with sessions of a model whose state is 16 MB,
// then with those of a tiny model, to the last few kilobytes. Creating another session and
// creating another backend must then fail with M3_ERR_OUT_OF_MEMORY; the sessions that exist
// keep their state, and feeding, decoding and forking into an existing slot still run (the
// failed allocations leave no error behind for the next launch). After everything is freed,
// as many sessions fit again: the failures leaked nothing.
// The passes run once before the device is filled: their first run loads kernels (CUDA's lazy
// module loading) and instantiates the decode graph of the batch size, and both take device
// memory. On a device already full, that first run fails with M3_ERR_OUT_OF_MEMORY part-way
// (measured: mamba3_step_decode's first launch), which is why a session whose GPU pass failed
// is marked lost (Backend::failed_pass_keeps_state; tested on Vulkan by VulkanFaults).
TEST(CudaOutOfMemory, AFullDeviceRefusesCleanlyAndExistingSessionsStillRun) {
  std::string why;
  const m3::CudaModuleEntry* module = m3::cuda_module(&why);
  if (!module || module->availability(&why) != M3_OK) GTEST_SKIP() << "no CUDA backend: " << why;
  const RandomModel big(config_json(512, 16, 1000, 256, 64, 1, false, 1, false, 0, true), m3::DType::BF16, 31);
  const RandomModel tiny(config_json(32, 1, 50, 16, 16, 1, false, 1, false, 0, true), m3::DType::F32, 32);
  CUDA_OR_SKIP(cuda, big);
  auto tiny_cuda = make_cuda(tiny, &why);
  ASSERT_TRUE(tiny_cuda) << why;

  const auto prompt = random_tokens(600, big.config.vocab_size, 33);
  auto a = cuda->create_slot();
  cuda->prefill(*a, prompt.data(), 40, M3_LOGITS_NONE, nullptr);
  const std::vector<float> state_a = read_state(*cuda, big, *a);
  {
    auto warm = cuda->create_slot(), warm2 = cuda->create_slot();
    std::vector<float> logits(static_cast<std::size_t>(2 * big.config.vocab_padded));
    cuda->prefill(*warm, prompt.data(), prompt.size() - 40, M3_LOGITS_LAST, logits.data());
    m3::StateSlot* both[] = {warm.get(), warm2.get()};
    cuda->decode(both, prompt.data(), 2, logits.data());
    cuda->copy_slot(*warm, *warm2);
  }

  using Slots = std::vector<std::unique_ptr<m3::StateSlot>>;
  // Creates slots until the device refuses one; returns the refusal.
  auto fill = [](m3::Backend& backend, Slots& slots) -> m3::Error {
    for (;;) {
      try {
        slots.push_back(backend.create_slot());
      } catch (const m3::Error& e) {
        return e;
      }
    }
  };
  Slots big_slots, tiny_slots;
  const m3::Error refused = fill(*cuda, big_slots);
  EXPECT_EQ(refused.status(), M3_ERR_OUT_OF_MEMORY) << refused.what();
  EXPECT_NE(std::string(refused.what()).find("cudaErrorMemoryAllocation"), std::string::npos) << refused.what();
  const std::size_t n_big = big_slots.size();
  EXPECT_GT(n_big, 100u);
  const m3::Error tiny_refused = fill(*tiny_cuda, tiny_slots);
  EXPECT_EQ(tiny_refused.status(), M3_ERR_OUT_OF_MEMORY) << tiny_refused.what();
  std::printf("[ full     ] %zu sessions of %zu bytes, then %zu of %zu bytes\n", n_big,
              static_cast<std::size_t>(big.layout.total_bytes()), tiny_slots.size(),
              static_cast<std::size_t>(tiny.layout.total_bytes()));

  for (int i = 0; i < 20; ++i) {
    try {
      big_slots.push_back(cuda->create_slot());
      ADD_FAILURE() << "a session was created on a full device";
    } catch (const m3::Error& e) {
      EXPECT_EQ(e.status(), M3_ERR_OUT_OF_MEMORY) << e.what();
    }
  }
  try {
    auto third = make_cuda(tiny, &why);
    ADD_FAILURE() << "a backend was created on a full device";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_OUT_OF_MEMORY) << e.what();
  }

  EXPECT_EQ(read_state(*cuda, big, *a), state_a);
  const int64_t V = big.config.vocab_padded;
  std::vector<float> logits(static_cast<std::size_t>(2 * V));
  cuda->prefill(*a, prompt.data() + 40, prompt.size() - 40, M3_LOGITS_LAST, logits.data());
  m3::StateSlot* both[] = {a.get(), big_slots[0].get()};
  cuda->decode(both, prompt.data(), 2, logits.data());
  cuda->copy_slot(*a, *big_slots[1]);
  EXPECT_EQ(read_state(*cuda, big, *big_slots[1]), read_state(*cuda, big, *a));

  tiny_slots.clear();
  big_slots.clear();
  Slots again;
  const m3::Error refused_again = fill(*cuda, again);
  EXPECT_EQ(refused_again.status(), M3_ERR_OUT_OF_MEMORY) << refused_again.what();
  EXPECT_EQ(again.size(), n_big) << "fewer sessions fit after the failures: something leaked";
}

}  // namespace
