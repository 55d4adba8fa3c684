// Golden parity: logits and final states against the official implementation's float64
// outputs (tests/data/golden, from ../shared/golden), in prefill, step and split modes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <tuple>

#include "test_support.h"

namespace {

// float32 runtime vs float64 reference (golden README: measured float32 error <= 3e-6).
constexpr double kTolerance = 1e-4;

struct RunResult {
  std::vector<float> logits;                       // [B, L, V]
  std::map<std::string, std::vector<float>> state;  // "state.L.part" -> [B, ...]
};

// Runs every row of tokens [B, L] through its own session in the given mode:
//  prefill: one feed of the whole row;
//  step:    all rows decoded together, one position at a time, with m3_decode_batch;
//  split:   feed of the first half, then m3_session_step for the rest.
RunResult run_case(m3_model* model, const test::Tensor& tokens, const std::string& mode) {
  const int64_t B = tokens.shape[0], L = tokens.shape[1], V = test::info(model, M3_INFO_VOCAB_PADDED);
  std::vector<m3_session*> sessions(B);
  for (auto& s : sessions) EXPECT_EQ(m3_session_create(model, &s), M3_OK);
  std::vector<std::vector<int32_t>> rows(B);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t) rows[b].push_back(static_cast<int32_t>(tokens.values[b * L + t]));

  RunResult r;
  r.logits.assign(B * L * V, 0.0f);
  if (mode == "prefill" || mode == "split") {
    const int64_t n = mode == "prefill" ? L : L / 2;
    for (int64_t b = 0; b < B; ++b) {
      EXPECT_EQ(m3_session_feed(sessions[b], rows[b].data(), n, M3_LOGITS_ALL, &r.logits[b * L * V], n * V), M3_OK)
          << m3_last_error();
      for (int64_t t = n; t < L; ++t)
        EXPECT_EQ(m3_session_step(sessions[b], rows[b][t], &r.logits[(b * L + t) * V], V), M3_OK) << m3_last_error();
    }
  } else {
    std::vector<float> out(B * V);
    std::vector<int32_t> column(B);
    for (int64_t t = 0; t < L; ++t) {
      for (int64_t b = 0; b < B; ++b) column[b] = rows[b][t];
      EXPECT_EQ(m3_decode_batch(sessions.data(), column.data(), B, out.data(), out.size()), M3_OK) << m3_last_error();
      for (int64_t b = 0; b < B; ++b) std::copy_n(&out[b * V], V, &r.logits[(b * L + t) * V]);
    }
  }

  const std::pair<const char*, m3_state_part> parts[] = {
      {"angle", M3_STATE_ANGLE}, {"ssm", M3_STATE_SSM}, {"k", M3_STATE_K}, {"v", M3_STATE_V}};
  for (int32_t layer = 0; layer < test::info(model, M3_INFO_N_LAYER); ++layer) {
    for (const auto& [name, part] : parts) {
      std::vector<float>& dst = r.state["state." + std::to_string(layer) + "." + name];
      for (int64_t b = 0; b < B; ++b) {
        size_t count = 0;
        EXPECT_EQ(m3_session_read_state(sessions[b], layer, part, nullptr, 0, &count), M3_ERR_BUFFER_TOO_SMALL);
        std::vector<float> one(count);
        EXPECT_EQ(m3_session_read_state(sessions[b], layer, part, one.data(), one.size(), &count), M3_OK);
        dst.insert(dst.end(), one.begin(), one.end());
      }
    }
  }
  for (auto* s : sessions) m3_session_free(s);
  return r;
}

// Compares logits and every state tensor with the expected file.
void expect_matches_golden(const std::map<std::string, test::Tensor>& expected, const RunResult& got,
                           const std::string& label) {
  const double logits_err = test::rel_l2(got.logits, expected.at("logits").values);
  EXPECT_LE(logits_err, kTolerance) << label << ": logits";
  std::size_t n_states = 0;
  double worst_state = 0;
  for (const auto& [name, tensor] : expected) {
    if (name.rfind("state.", 0) != 0) continue;
    ++n_states;
    ASSERT_TRUE(got.state.count(name)) << label << ": no " << name;
    const bool angle = name.size() > 6 && name.substr(name.size() - 6) == ".angle";
    const double err = angle ? test::rel_l2_circular(got.state.at(name), tensor.values)
                             : test::rel_l2(got.state.at(name), tensor.values);
    EXPECT_LE(err, kTolerance) << label << ": " << name;
    worst_state = std::max(worst_state, err);
  }
  EXPECT_EQ(n_states, got.state.size()) << label << ": state tensor count";
  std::printf("[ metrics  ] %s: logits rel-L2 %.3g, worst state rel-L2 %.3g\n", label.c_str(), logits_err,
              worst_state);
}

using GoldenParam = std::tuple<std::string, std::string, m3_backend>;  // case, mode, backend
class GoldenParity : public ::testing::TestWithParam<GoldenParam> {};

TEST_P(GoldenParity, LogitsAndStatesMatchOfficialReference) {
  const auto& [name, mode, backend] = GetParam();
  if (m3_backend_available(backend) != M3_OK) GTEST_SKIP() << m3_last_error();
  const std::string dir = std::string(test::kGoldenDir) + "/" + name;
  const auto expected = test::read_tensors(dir + "/expected.safetensors");
  m3_model* model = test::load(dir, backend);
  ASSERT_NE(model, nullptr);
  const RunResult got = run_case(model, expected.at("tokens"), mode);
  expect_matches_golden(expected, got, name + "/" + mode + "/" + m3_backend_name(backend));
  m3_model_free(model);
}

// The metric must be able to fail: the same run scored against another sequence's logits,
// or with the A activation the golden models were not made with, is far off.
TEST(GoldenParitySensitivity, WrongActivationIsDetected) {
  const std::string dir = std::string(test::kGoldenDir) + "/siso_basic";
  const auto expected = test::read_tensors(dir + "/expected.safetensors");
  m3_model_params* params = nullptr;
  ASSERT_EQ(m3_model_params_create(&params), M3_OK);
  ASSERT_EQ(m3_model_params_set_a_activation(params, M3_A_ACTIVATION_SOFTPLUS), M3_OK);
  m3_model* model = nullptr;
  ASSERT_EQ(m3_model_load(dir.c_str(), params, &model), M3_OK) << m3_last_error();
  m3_model_params_destroy(params);
  EXPECT_EQ(test::info(model, M3_INFO_A_ACTIVATION), M3_A_ACTIVATION_SOFTPLUS);
  const RunResult got = run_case(model, expected.at("tokens"), "prefill");
  EXPECT_GT(test::rel_l2(got.logits, expected.at("logits").values), 100 * kTolerance);
  m3_model_free(model);
}

std::vector<std::tuple<std::string, std::string>> all_cases() {
  std::vector<std::tuple<std::string, std::string>> v;
  for (const auto& c : test::golden_cases())
    for (const char* mode : {"prefill", "step", "split"}) v.emplace_back(c, mode);
  return v;
}

std::string case_label(const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
  return std::get<0>(info.param) + "_" + std::get<1>(info.param);
}

// Every case and mode on the fast CPU backend (the default), the scalar oracle, and the GPU
// backends where the machine has one (skipped with the reason elsewhere).
std::vector<GoldenParam> all_backend_cases() {
  std::vector<GoldenParam> v;
  for (const auto& [c, mode] : all_cases())
    for (m3_backend b : {M3_BACKEND_CPU, M3_BACKEND_CPU_REFERENCE, M3_BACKEND_CUDA, M3_BACKEND_VULKAN}) v.emplace_back(c, mode, b);
  return v;
}

std::string backend_case_label(const ::testing::TestParamInfo<GoldenParam>& info) {
  std::string backend = m3_backend_name(std::get<2>(info.param));
  std::replace(backend.begin(), backend.end(), '-', '_');
  return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" + backend;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenParity, ::testing::ValuesIn(all_backend_cases()), backend_case_label);

TEST(GoldenCases, AllSharedCasesArePresent) {
  // Five cases ship with the project: four safetensors, one pytorch_model.bin.
  EXPECT_EQ(test::golden_cases().size(), 5u);
}

// The CLI's `logits` subcommand writes the same tensors as expected.safetensors.
class CliGoldenParity : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(CliGoldenParity, LogitsSubcommandMatchesReference) {
  const auto& [name, mode] = GetParam();
  const std::string dir = std::string(test::kGoldenDir) + "/" + name;
  const std::string tmp = test::make_temp_dir();
  const std::string out = tmp + "/out.safetensors";
  const std::string cmd = std::string(MAMBA3RT_CLI) + " logits --model " + dir + " --tokens " + dir +
                          "/expected.safetensors --out " + out + " --mode " + mode + " --backend cpu";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto expected = test::read_tensors(dir + "/expected.safetensors");
  auto got_tensors = test::read_tensors(out);
  RunResult got;
  got.logits = got_tensors.at("logits").values;
  EXPECT_EQ(got_tensors.at("logits").shape, expected.at("logits").shape);
  EXPECT_EQ(got_tensors.at("tokens").values, expected.at("tokens").values);
  for (auto& [n, t] : got_tensors) {
    if (n.rfind("state.", 0) != 0) continue;
    EXPECT_EQ(t.shape, expected.at(n).shape) << n;
    got.state[n] = t.values;
  }
  expect_matches_golden(expected, got, "cli " + name + "/" + mode);
  test::remove_tree(tmp);
}

INSTANTIATE_TEST_SUITE_P(Golden, CliGoldenParity, ::testing::ValuesIn(all_cases()), case_label);

}  // namespace

namespace {

// Runs a CLI command line; returns the exit code and fills `err` with its stderr.
int run_cli(const std::string& args, std::string* err, const std::string& env = "") {
  const std::string tmp = test::make_temp_dir();
  const std::string cmd = env + std::string(MAMBA3RT_CLI) + " " + args + " 2> " + tmp + "/err";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(tmp + "/err");
  err->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  test::remove_tree(tmp);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(Cli, ErrorsGoToStderrWithNonZeroExit) {
  std::string err;
  EXPECT_EQ(run_cli("info --model /nonexistent/dir", &err), 1);
  EXPECT_NE(err.find("/nonexistent/dir"), std::string::npos) << err;
  EXPECT_EQ(run_cli("logits --model data/golden/siso_basic --tokens /nonexistent.safetensors --out /dev/null", &err), 1);
  EXPECT_NE(err.find("/nonexistent.safetensors"), std::string::npos) << err;
  EXPECT_EQ(run_cli("logits --model data/golden/siso_basic", &err), 2);  // usage error
  EXPECT_NE(err.find("--tokens"), std::string::npos) << err;
  EXPECT_EQ(run_cli("frobnicate", &err), 2);
  if (m3_backend_available(M3_BACKEND_VULKAN) != M3_OK) {  // else Cli.DeviceOption makes it fail
    EXPECT_EQ(run_cli("info --model data/golden/siso_basic --backend vulkan", &err), 1);
    EXPECT_NE(err.find("M3_ERR_BACKEND_UNAVAILABLE"), std::string::npos) << err;
  }
}

TEST(Cli, InfoPrintsTheModel) {
  std::string err;
  EXPECT_EQ(run_cli("info --model data/golden/mimo_r4 > /dev/null", &err), 0) << err;
}

TEST(Cli, DeviceOption) {
  std::string err;
  const std::string tmp = test::make_temp_dir();
  // The CPU backends ignore --device; info names the device.
  EXPECT_EQ(run_cli("info --model data/golden/siso_basic --backend cpu --device 1 > " + tmp + "/out", &err), 0) << err;
  std::ifstream in(tmp + "/out");
  const std::string out{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  test::remove_tree(tmp);
  EXPECT_NE(out.find("device:           CPU\n"), std::string::npos) << out;
  if (m3_backend_available(M3_BACKEND_VULKAN) != M3_OK) return;  // the API tests cover the rest
  EXPECT_EQ(run_cli("info --model data/golden/siso_basic --backend vulkan --device no-such-gpu-7f3a", &err), 1);
  EXPECT_NE(err.find("M3_ERR_BACKEND_UNAVAILABLE"), std::string::npos) << err;
  EXPECT_NE(err.find("no-such-gpu-7f3a"), std::string::npos) << err;
}

// Without a Vulkan loader, or with a loader but no driver, the Vulkan backend is reported
// unavailable with the reason (a fresh process each: the loader is opened once per process).
TEST(Cli, VulkanWithoutLoaderOrDriverIsUnavailable) {
  std::string err;
  const std::string info = "info --model data/golden/siso_basic --backend vulkan";
  EXPECT_EQ(run_cli(info, &err, "MAMBA3RT_VULKAN_LOADER=/nonexistent/libvulkan.so.1 "), 1);
  EXPECT_NE(err.find("M3_ERR_BACKEND_UNAVAILABLE"), std::string::npos) << err;
  EXPECT_NE(err.find("no Vulkan loader"), std::string::npos) << err;
  if (m3_backend_available(M3_BACKEND_VULKAN) != M3_OK) GTEST_SKIP() << "no Vulkan here: " << m3_last_error();
  EXPECT_EQ(run_cli(info, &err, "VK_ICD_FILENAMES=/nonexistent/icd.json VK_DRIVER_FILES=/nonexistent/icd.json "), 1);
  EXPECT_NE(err.find("M3_ERR_BACKEND_UNAVAILABLE"), std::string::npos) << err;
  EXPECT_NE(err.find("Vulkan"), std::string::npos) << err;
}

}  // namespace
