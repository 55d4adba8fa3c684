// The Vulkan backend against the CPU reference on random models: the CPU parity suite's small
// and odd configs and realistic head sizes, prefills longer than a pass, batches through both
// product shaders, forks, state round trips, prefill-then-decode against decode-only, the
// fallback shaders for devices without 16-bit storage or subgroup arithmetic, and the
// validation layers' plumbing. Runs on any Vulkan device (in CI: lavapipe, Mesa's CPU
// driver); skipped with the reason where there is none, unless MAMBA3RT_VULKAN_REQUIRE=1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/cpu_reference_backend.h"
#include "backends/vulkan/vulkan_backend.h"
#include "backends/vulkan/vulkan_context.h"
#include "common/device_faults.h"
#include "common/error.h"
#include "model/model.h"
#include "session/session.h"
#include "random_model.h"

namespace {

using test::config_json;
using test::RandomModel;
using test::random_tokens;
using test::read_state;
using test::rel_l2;
using test::Trace;

bool vulkan_required() {
  const char* v = std::getenv("MAMBA3RT_VULKAN_REQUIRE");
  return v && std::string(v) == "1";
}

// The Vulkan backend for m, or null with the reason.
std::unique_ptr<m3::VulkanBackend> make_vulkan(const RandomModel& m, std::string* why) {
  if (m3::VulkanBackend::availability(why) != M3_OK) return nullptr;
  return std::make_unique<m3::VulkanBackend>(m.config, m.weights, m.layout, m3::BackendOptions{});
}

#define VULKAN_OR_SKIP(var, model)                                                \
  std::string why_##var;                                                          \
  auto var = make_vulkan(model, &why_##var);                                      \
  if (!var) {                                                                     \
    if (vulkan_required()) FAIL() << "no Vulkan backend: " << why_##var;          \
    GTEST_SKIP() << "no Vulkan backend: " << why_##var;                           \
  }

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

bool has_pipeline(const m3::VulkanBackend& b, const std::string& name) {
  const auto names = b.pipelines();
  return std::find(names.begin(), names.end(), name) != names.end();
}

using Case = test::ParityCase;

std::vector<Case> cases() {
  std::vector<Case> v = test::small_parity_cases();
  v.push_back({"siso_p64_n128_bf16", config_json(256, 2, 300, 128, 64, 1, false, 1, false, 0, true), m3::DType::BF16});
  v.push_back({"mimo_r4_p64_n64_f32", config_json(256, 2, 300, 64, 64, 1, true, 4, true, 512, true), m3::DType::F32});
  v.push_back({"mimo_r2_p32_n32_groups_f16", config_json(128, 2, 200, 32, 32, 2, true, 2, false, 0, false),
               m3::DType::F16});
  return v;
}

// The weights are read exactly (bf16 and f16 widen to fp32) and all arithmetic is fp32, as on
// the CPU reference: every weight type is held to the golden tolerance.
constexpr double kTolerance = 1e-4;

class VulkanParity : public ::testing::TestWithParam<Case> {};

TEST_P(VulkanParity, MatchesTheCpuReference) {
  const Case& c = GetParam();
  const RandomModel m(c.json, c.dtype, 42);
  VULKAN_OR_SKIP(vulkan, m);
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  // 600 tokens: a prefill of two passes (512 rows each at most).
  for (size_t prompt_len : {size_t{1}, size_t{37}, size_t{600}}) {
    const Trace want = test::run_trace(reference, m, prompt_len);
    const Trace got = test::run_trace(*vulkan, m, prompt_len);
    const double logits_err = rel_l2(got.logits, want.logits), states_err = rel_l2(got.states, want.states);
    std::printf("[ metrics  ] vulkan %s prompt=%zu: logits rel-L2 %.3g, states rel-L2 %.3g\n", c.name, prompt_len,
                logits_err, states_err);
    EXPECT_LE(logits_err, kTolerance) << c.name << " prompt=" << prompt_len;
    EXPECT_LE(states_err, kTolerance) << c.name << " prompt=" << prompt_len;
  }
}

INSTANTIATE_TEST_SUITE_P(RandomModels, VulkanParity, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Without 16-bit storage and subgroup arithmetic the backend runs the packed-f16 and
// shared-memory variants, with the same results.
TEST(VulkanFallbacks, PackedHalvesAndSharedMemoryReductionsMatch) {
  const RandomModel m(config_json(64, 2, 100, 16, 16, 1, true, 2, true, 96, false), m3::DType::F16, 5);
  VULKAN_OR_SKIP(native, m);
  std::unique_ptr<m3::VulkanBackend> fallback, generic;
  {
    ScopedEnv env("MAMBA3RT_VULKAN_DISABLE", "16bit_storage,subgroups");
    fallback = std::make_unique<m3::VulkanBackend>(m.config, m.weights, m.layout, m3::BackendOptions{});
    // And the general matvec (x re-read per row), which odd column counts take.
    ScopedEnv no_slices("MAMBA3RT_VULKAN_MATVEC_SLICES", "0");
    generic = std::make_unique<m3::VulkanBackend>(m.config, m.weights, m.layout, m3::BackendOptions{});
  }
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  const Trace want = test::run_trace(reference, m, 40);
  const Trace a = test::run_trace(*native, m, 40);
  const Trace b = test::run_trace(*fallback, m, 40);
  const Trace g = test::run_trace(*generic, m, 40);
  EXPECT_LE(rel_l2(a.logits, want.logits), kTolerance);
  for (const Trace* t : {&b, &g}) {
    EXPECT_LE(rel_l2(t->logits, want.logits), kTolerance);
    EXPECT_LE(rel_l2(t->states, want.states), kTolerance);
  }
  EXPECT_TRUE(has_pipeline(*fallback, "matvec_slices_f16")) << "the packed, shared-memory matvec did not run";
  EXPECT_TRUE(has_pipeline(*fallback, "matmul_f16"));
  EXPECT_TRUE(has_pipeline(*generic, "matvec_f16"));
  const auto& caps_note = native->pipelines();
  std::printf("[ metrics  ] vulkan native pipelines:");
  for (const auto& n : caps_note) std::printf(" %s", n.c_str());
  std::printf("\n");
}

// A batch of 12 sessions (the tiled product; batches up to 8 use matvec) at different
// positions, against the reference one session at a time.
TEST(VulkanDecode, LargeBatchOfSessionsAtDifferentPositions) {
  const RandomModel m(config_json(64, 2, 100, 16, 16, 1, false, 1, false, 64, true), m3::DType::BF16, 9);
  VULKAN_OR_SKIP(vulkan, m);
  m3::CpuReferenceBackend reference(m.config, m.weights, m.layout);
  const int64_t V = m.config.vocab_padded;
  constexpr int kSessions = 12;
  std::vector<std::unique_ptr<m3::StateSlot>> ours, theirs;
  std::vector<m3::StateSlot*> our_ptrs;
  for (int i = 0; i < kSessions; ++i) {
    ours.push_back(vulkan->create_slot());
    theirs.push_back(reference.create_slot());
    our_ptrs.push_back(ours.back().get());
    const auto prompt = random_tokens(1 + 3 * i, m.config.vocab_size, 200 + i);
    vulkan->prefill(*ours.back(), prompt.data(), prompt.size(), M3_LOGITS_NONE, nullptr);
    reference.prefill(*theirs.back(), prompt.data(), prompt.size(), M3_LOGITS_NONE, nullptr);
  }
  for (int step = 0; step < 3; ++step) {
    const auto toks = random_tokens(kSessions, m.config.vocab_size, 300 + step);
    std::vector<float> got(kSessions * V), want(V);
    vulkan->decode(our_ptrs.data(), toks.data(), kSessions, got.data());
    for (int i = 0; i < kSessions; ++i) {
      m3::StateSlot* one[] = {theirs[i].get()};
      reference.decode(one, &toks[i], 1, want.data());
      const std::vector<float> row(got.begin() + i * V, got.begin() + (i + 1) * V);
      EXPECT_LE(rel_l2(row, want), kTolerance) << "session " << i << " step " << step;
    }
  }
  for (int i = 0; i < kSessions; ++i)
    EXPECT_LE(rel_l2(read_state(*vulkan, m, *ours[i]), read_state(reference, m, *theirs[i])), kTolerance) << i;
}

// Prefill then decode equals decoding every token; a fork continues exactly like its origin;
// a state written back reads the same and runs the same.
TEST(VulkanConsistency, PrefillThenDecodeForkAndStateRoundTrip) {
  const RandomModel m(config_json(64, 2, 100, 32, 16, 1, true, 2, true, 0, true), m3::DType::F32, 11);
  VULKAN_OR_SKIP(vulkan, m);
  const int64_t V = m.config.vocab_padded;
  const auto tokens = random_tokens(50, m.config.vocab_size, 12);
  auto a = vulkan->create_slot(), b = vulkan->create_slot();
  std::vector<float> la(V), lb(V);
  vulkan->prefill(*a, tokens.data(), 45, M3_LOGITS_NONE, nullptr);
  m3::StateSlot* sb[] = {b.get()};
  for (int i = 0; i < 45; ++i) vulkan->decode(sb, &tokens[i], 1, lb.data());
  EXPECT_LE(rel_l2(read_state(*vulkan, m, *a), read_state(*vulkan, m, *b)), 1e-5);
  m3::StateSlot* sa[] = {a.get()};
  for (int i = 45; i < 50; ++i) {
    vulkan->decode(sa, &tokens[i], 1, la.data());
    vulkan->decode(sb, &tokens[i], 1, lb.data());
    EXPECT_LE(rel_l2(la, lb), 1e-5) << "token " << i;
  }

  auto fork = vulkan->create_slot();
  vulkan->copy_slot(*a, *fork);
  EXPECT_EQ(read_state(*vulkan, m, *fork), read_state(*vulkan, m, *a));
  const auto more = random_tokens(7, m.config.vocab_size, 13);
  std::vector<float> from_fork(V), from_origin(V);
  vulkan->prefill(*fork, more.data(), more.size(), M3_LOGITS_LAST, from_fork.data());
  vulkan->prefill(*a, more.data(), more.size(), M3_LOGITS_LAST, from_origin.data());
  EXPECT_EQ(from_fork, from_origin);

  const std::vector<float> saved = read_state(*vulkan, m, *a);
  auto restored = vulkan->create_slot();
  vulkan->write_slot(*restored, saved.data());
  EXPECT_EQ(read_state(*vulkan, m, *restored), saved);
  vulkan->zero_slot(*a);
  const std::vector<float> zeros = read_state(*vulkan, m, *a);
  EXPECT_TRUE(std::all_of(zeros.begin(), zeros.end(), [](float x) { return x == 0.0f; }));
}

// The device-fault tests, through the hook of common/device_faults.h: skipped without a
// Vulkan device, and the hook is disarmed after each, whatever happened.
class VulkanFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (m3::VulkanBackend::availability(&why) != M3_OK) {
      if (vulkan_required()) FAIL() << "no Vulkan backend: " << why;
      GTEST_SKIP() << "no Vulkan backend: " << why;
    }
  }
  void TearDown() override { m3::device_faults::disarm(); }
};

// Device out-of-memory, forced through the hook of common/device_faults.h: each
// device allocation of a backend's creation and of a slot's creation fails in turn. Each
// failure must give M3_ERR_OUT_OF_MEMORY, leave no device allocation behind and leave other
// slots as they were. Feeding (over more than one pass), decoding, forking (the copy),
// zeroing, reading and writing a slot must allocate nothing, so they cannot run out half-way.
TEST_F(VulkanFaults, EachDeviceAllocationFailsCleanlyAndStepsAllocateNothing) {
  const RandomModel m(config_json(64, 2, 100, 32, 16, 1, true, 2, true, 0, true), m3::DType::F32, 21);
  namespace faults = m3::device_faults;
  const int64_t before = faults::live_allocations();

  std::unique_ptr<m3::VulkanBackend> vulkan;
  int load_failures = 0;
  for (int64_t n = 1; !vulkan; ++n) {
    ASSERT_LT(n, 100000) << "the backend never came up";
    faults::fail_from(n);
    try {
      vulkan = std::make_unique<m3::VulkanBackend>(m.config, m.weights, m.layout, m3::BackendOptions{});
    } catch (const m3::Error& e) {
      EXPECT_EQ(e.status(), M3_ERR_OUT_OF_MEMORY) << "allocation " << n << ": " << e.what();
      EXPECT_EQ(faults::live_allocations(), before) << "allocation " << n << " leaked";
      ++load_failures;
    }
    faults::disarm();
  }
  // Weights, workspaces, staging, descriptor pools and sets: dozens of allocations.
  EXPECT_GT(load_failures, 10);

  const auto tokens = random_tokens(600, m.config.vocab_size, 22);  // more than one pass of 512
  auto a = vulkan->create_slot();
  vulkan->prefill(*a, tokens.data(), 20, M3_LOGITS_NONE, nullptr);
  const std::vector<float> state_a = read_state(*vulkan, m, *a);
  const int64_t with_a = faults::live_allocations();
  std::unique_ptr<m3::StateSlot> b;
  int slot_failures = 0;
  for (int64_t n = 1; !b; ++n) {
    ASSERT_LT(n, 1000) << "the slot was never created";
    faults::fail_from(n);
    try {
      b = vulkan->create_slot();
    } catch (const m3::Error& e) {
      EXPECT_EQ(e.status(), M3_ERR_OUT_OF_MEMORY) << "allocation " << n << ": " << e.what();
      EXPECT_EQ(faults::live_allocations(), with_a) << "allocation " << n << " leaked";
      ++slot_failures;
    }
    faults::disarm();
  }
  EXPECT_GE(slot_failures, 3);  // state memory, descriptor pool, descriptor set
  EXPECT_EQ(read_state(*vulkan, m, *a), state_a);
  const int64_t with_b = faults::live_allocations();

  // From here every device allocation would fail.
  faults::fail_from(1);
  std::vector<float> logits(static_cast<std::size_t>(2 * m.config.vocab_padded));
  vulkan->prefill(*a, tokens.data(), tokens.size(), M3_LOGITS_LAST, logits.data());
  m3::StateSlot* both[] = {a.get(), b.get()};
  vulkan->decode(both, tokens.data(), 2, logits.data());
  m3::StateSlot* one[] = {b.get()};
  vulkan->decode(one, tokens.data(), 1, logits.data());
  vulkan->copy_slot(*a, *b);
  const std::vector<float> state = read_state(*vulkan, m, *b);
  vulkan->zero_slot(*b);
  vulkan->write_slot(*b, state.data());
  EXPECT_EQ(read_state(*vulkan, m, *b), state);
  faults::disarm();
  EXPECT_EQ(faults::live_allocations(), with_b);

  b.reset();
  a.reset();
  vulkan.reset();
  EXPECT_EQ(faults::live_allocations(), before);
}

// A device that fails part-way through a feed, simulated through the hook of
// common/device_faults.h: its second submission is refused as a lost device's would be. The
// call fails, and the session, whose state may have advanced part-way, is marked lost: every
// use gets M3_ERR_STATE_LOST until it is restored or reset, after which it runs exactly like a
// session that never failed. The other session of a refused batch is not touched.
TEST_F(VulkanFaults, APassThatFailsPartWayMarksTheSessionLostUntilRestoreOrReset) {
  namespace faults = m3::device_faults;
  m3::LoadOptions options;
  options.backend = M3_BACKEND_VULKAN;
  const std::shared_ptr<const m3::Model> model = m3::Model::load("data/golden/siso_basic", options);
  const std::size_t V = static_cast<std::size_t>(model->config().vocab_padded);
  const auto tokens = random_tokens(700, model->config().vocab_size, 41);
  m3::Session s(model), reference(model);
  s.feed(tokens.data(), 50, M3_LOGITS_NONE, nullptr, 0);
  reference.feed(tokens.data(), 50, M3_LOGITS_NONE, nullptr, 0);
  std::vector<unsigned char> saved(s.blob_size());
  std::size_t saved_size = 0;
  s.save(saved.data(), saved.size(), &saved_size);

  std::vector<float> got(V), want(V);
  faults::fail_submissions_from(2);  // 650 tokens take two passes of at most 512 rows
  try {
    s.feed(tokens.data() + 50, 650, M3_LOGITS_LAST, got.data(), V);
    FAIL() << "the feed did not fail";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_INTERNAL) << e.what();
    EXPECT_NE(std::string(e.what()).find("vkQueueSubmit: VK_ERROR_DEVICE_LOST"), std::string::npos) << e.what();
  }
  faults::disarm();

  auto expect_lost = [](const char* what, auto&& call) {
    try {
      call();
      ADD_FAILURE() << what << " ran on a lost state";
    } catch (const m3::Error& e) {
      EXPECT_EQ(e.status(), M3_ERR_STATE_LOST) << what << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("reset it or restore a saved state"), std::string::npos) << e.what();
    }
  };
  std::vector<unsigned char> blob(s.blob_size());
  std::size_t size = 0;
  std::vector<float> part(1 << 16);
  std::size_t count = 0;
  m3::Session* batch[] = {&reference, &s};
  expect_lost("feed", [&] { s.feed(tokens.data(), 1, M3_LOGITS_NONE, nullptr, 0); });
  expect_lost("step", [&] { s.step(tokens[0], nullptr, 0); });
  expect_lost("save", [&] { s.save(blob.data(), blob.size(), &size); });
  expect_lost("fork", [&] { s.fork(); });
  expect_lost("read_state", [&] { s.read_state(0, M3_STATE_ANGLE, part.data(), part.size(), &count); });
  expect_lost("decode_batch", [&] { m3::Session::decode_batch(batch, tokens.data(), 2, nullptr, 0); });
  EXPECT_EQ(reference.n_tokens(), 50);

  s.restore(saved.data(), saved_size);
  s.feed(tokens.data() + 50, 650, M3_LOGITS_LAST, got.data(), V);
  reference.feed(tokens.data() + 50, 650, M3_LOGITS_LAST, want.data(), V);
  EXPECT_EQ(got, want);

  // A failure at a step's first submission marks the session too; a reset clears it.
  faults::fail_submissions_from(1);
  EXPECT_THROW(s.step(tokens[0], got.data(), V), m3::Error);
  faults::disarm();
  expect_lost("step", [&] { s.step(tokens[0], got.data(), V); });
  s.reset();
  m3::Session fresh(model);
  s.step(tokens[1], got.data(), V);
  fresh.step(tokens[1], want.data(), V);
  EXPECT_EQ(got, want);
}

// A selector that matches no device fails with the list of devices; an index selects.
TEST(VulkanDevices, SelectorsChooseOrRefuse) {
  std::string why;
  const auto devices = m3::vulkan::list_devices(&why);
  if (devices.empty()) {
    if (vulkan_required()) FAIL() << why;
    GTEST_SKIP() << "no Vulkan device: " << why;
  }
  try {
    m3::vulkan::Context ctx("no-such-device-xyz");
    FAIL() << "a selector matching nothing was accepted";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_BACKEND_UNAVAILABLE);
    EXPECT_NE(std::string(e.what()).find("no-such-device-xyz"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(devices[0].name), std::string::npos) << e.what();
  }
  m3::vulkan::Context by_index("0");
  EXPECT_EQ(by_index.device_name(), devices[0].name);
  m3::vulkan::Context by_name(devices[0].name.substr(0, 4));
  EXPECT_NE(by_name.device_name().find(devices[0].name.substr(0, 4)), std::string::npos);
}

// Models come and go in a long-lived process: forty devices made and released in turn (each
// model load makes one; NVIDIA's driver once refused new instances after about thirty).
TEST(VulkanDevices, ManyDevicesInTurn) {
  std::string why;
  if (m3::vulkan::list_devices(&why).empty()) {
    if (vulkan_required()) FAIL() << why;
    GTEST_SKIP() << "no Vulkan device: " << why;
  }
  for (int i = 0; i < 40; ++i) {
    m3::vulkan::Context ctx("");
    m3::vulkan::Buffer buffer(ctx, 256, true);
    ctx.run([&](VkCommandBuffer cb) { ctx.api().vkCmdFillBuffer(cb, buffer.handle(), 0, VK_WHOLE_SIZE, 7u); });
    ASSERT_EQ(static_cast<const uint32_t*>(buffer.mapped())[63], 7u) << "device " << i;
  }
}

// With MAMBA3RT_VULKAN_VALIDATION=1 an invalid command is reported as an error, so that the
// suite's run under the validation layers (see tests/CMakeLists.txt) can fail.
TEST(VulkanValidation, LayerErrorsBecomeExceptions) {
  std::string why;
  if (m3::vulkan::list_devices(&why).empty()) {
    if (vulkan_required()) FAIL() << why;
    GTEST_SKIP() << "no Vulkan device: " << why;
  }
  ScopedEnv env("MAMBA3RT_VULKAN_VALIDATION", "1");
  std::unique_ptr<m3::vulkan::Context> ctx;
  try {
    ctx = std::make_unique<m3::vulkan::Context>("");
  } catch (const m3::Error& e) {
    if (std::string(e.what()).find("not installed") != std::string::npos && !vulkan_required())
      GTEST_SKIP() << e.what();
    throw;
  }
  m3::vulkan::Buffer buffer(*ctx, 64, false);
  try {
    // dstOffset must be a multiple of 4 (VUID-vkCmdFillBuffer-dstOffset-00025).
    ctx->run([&](VkCommandBuffer cb) { ctx->api().vkCmdFillBuffer(cb, buffer.handle(), 2, 4, 0); });
    FAIL() << "the invalid fill was not reported";
  } catch (const m3::Error& e) {
    EXPECT_NE(std::string(e.what()).find("validation"), std::string::npos) << e.what();
  }
}

}  // namespace
