// `mamba3rt bench` runs end to end on a tiny config and reports sane fields; bad command
// lines and configs give clear errors. Nothing here depends on speed.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "test_support.h"

namespace {

constexpr const char* kTinyConfig = "../bench/configs/tiny.json";
// Small probes: the test checks that they run, not what they find.
constexpr const char* kFastProbes = " --bw-buffer-mb 16 --quiet";

struct BenchRun {
  int rc = -1;
  std::string out, err;
};

BenchRun run_bench(const std::string& args) {
  const std::string tmp = test::make_temp_dir();
  const std::string cmd = std::string(MAMBA3RT_CLI) + " bench " + args + " > " + tmp + "/out 2> " + tmp + "/err";
  const int status = std::system(cmd.c_str());
  BenchRun r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream out(tmp + "/out"), err(tmp + "/err");
  r.out.assign(std::istreambuf_iterator<char>(out), std::istreambuf_iterator<char>());
  r.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  test::remove_tree(tmp);
  return r;
}

bool positive(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() && std::isfinite(j[key].get<double>()) && j[key].get<double>() > 0;
}

void expect_sane_report(const nlohmann::json& j, int64_t batch) {
  for (const char* key : {"prefill_tok_s", "decode_tok_s", "decode_ms_p50", "decode_ms_p99", "peak_rss_mb", "mem_bw_gbs",
                          "roofline_fraction", "fma_peak_gflops", "prefill_gflops", "prefill_fraction_of_peak",
                          "bytes_per_token", "decode_gbs", "rss_decode_start_mb", "rss_decode_end_mb"})
    EXPECT_TRUE(positive(j, key)) << key << " in " << j.dump();
  EXPECT_LE(j["decode_ms_p50"].get<double>(), j["decode_ms_p99"].get<double>());
  EXPECT_EQ(j["batch"], batch);
  EXPECT_GE(j["threads"].get<int64_t>(), 1);
  // Weights once per step (tied: the table is the head), plus each stream's state read and written.
  if (j["tied_embeddings"] == true) {
    EXPECT_EQ(j["bytes_per_step"].get<double>(),
              j["weight_bytes"].get<double>() + 2.0 * batch * j["state_bytes"].get<double>());
  }
  EXPECT_GT(j["peak_rss_mb"].get<double>(), j["weight_bytes"].get<double>() / 1e6);
}

TEST(CliBench, TinyConfigEmitsOneJsonObjectWithSaneFields) {
  const std::string tmp = test::make_temp_dir();
  const BenchRun r = run_bench(std::string("--config ") + kTinyConfig + " --prompt 16 --gen 8 --json --tmp-dir " + tmp +
                          kFastProbes);
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);  // throws (fails) unless exactly one JSON value
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["dtype"], "bf16");
  EXPECT_EQ(j["n_params"], 139680);  // tools/make_random_model.py's count for this config
  EXPECT_EQ(j["prompt_tokens"], 16);
  EXPECT_EQ(j["gen_tokens"], 8);
  expect_sane_report(j, 1);
  // The random model's temporary directory is gone.
  EXPECT_TRUE(std::filesystem::is_empty(tmp));
  test::remove_tree(tmp);
}

TEST(CliBench, EveryWeightTypeAndABatch) {
  for (const char* dtype : {"f32", "f16", "bf16", "int8", "q4"}) {
    const BenchRun r = run_bench(std::string("--config ") + kTinyConfig + " --dtype " + dtype +
                            " --prompt 8 --gen 4 --batch 3 --json --reps 1" + kFastProbes);
    ASSERT_EQ(r.rc, 0) << dtype << ": " << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["dtype"], dtype);
    EXPECT_EQ(j["embedding_dtype"], std::string(dtype) == "q4" ? "int8" : dtype);  // as `mamba3rt quantize`
    expect_sane_report(j, 3);
  }
}

TEST(CliBench, ModelDirectoryAndGivenCeilings) {
  const BenchRun r = run_bench("--model data/golden/siso_basic --prompt 4 --gen 4 --json --mem-bw 20 --fma-peak 100 --quiet");
  ASSERT_EQ(r.rc, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mem_bw_gbs"], 20.0);
  EXPECT_EQ(j["fma_peak_gflops"], 100.0);
  EXPECT_EQ(j["mem_bw_measured"], false);
  EXPECT_EQ(j["dtype"], "f32");  // read from the file
  expect_sane_report(j, 1);
}

TEST(CliBench, HumanReadableByDefault) {
  const BenchRun r = run_bench(std::string("--config ") + kTinyConfig + " --prompt 8 --gen 4" + kFastProbes);
  ASSERT_EQ(r.rc, 0) << r.err;
  for (const char* word : {"prefill", "decode", "roofline", "peak RSS", "GB/s"})
    EXPECT_NE(r.out.find(word), std::string::npos) << word << " in\n" << r.out;
}

TEST(CliBench, BadInputsGiveClearErrors) {
  const std::string tmp = test::make_temp_dir();
  {
    std::ofstream(tmp + "/bad.json") << "{\"d_model\": 64, ";
    std::ofstream(tmp + "/not_mamba3.json") << R"({"d_model": 64, "n_layer": 2, "vocab_size": 512})";
  }
  struct Case {
    std::string args;
    int rc;
    std::string message;
  } cases[] = {
      {"--config " + tmp + "/missing.json", 1, "missing.json"},
      {"--config " + tmp + "/bad.json", 1, "bad.json"},
      {"--config " + tmp + "/not_mamba3.json", 1, "not_mamba3.json"},
      {std::string("--config ") + kTinyConfig + " --dtype f8", 2, "--dtype"},
      {std::string("--config ") + kTinyConfig + " --batch 0", 2, "--batch"},
      {std::string("--config ") + kTinyConfig + " --gen -1", 2, "--gen"},
      {std::string("--config ") + kTinyConfig + " --prompt 0 --gen 0", 2, "nothing to measure"},
      {std::string("--config ") + kTinyConfig + " --mem-bw fast", 2, "--mem-bw"},
      {std::string("--config ") + kTinyConfig + " --model data/golden/siso_basic", 2, "not both"},
      {"--model data/golden/siso_basic --dtype int8", 2, "--dtype"},
      {"--model data/golden/siso_basic --embedding-type int8", 2, "--embedding-type"},
      {std::string("--config ") + kTinyConfig + " --embedding-type q3", 2, "--embedding-type"},
      {"--model /nonexistent/dir", 1, "/nonexistent/dir"},
      {"--frobnicate", 2, "--frobnicate"},
  };
  for (const Case& c : cases) {
    const BenchRun r = run_bench(c.args + " --json");
    EXPECT_EQ(r.rc, c.rc) << c.args << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << c.args << "\n" << r.out;
  }
  test::remove_tree(tmp);
}

}  // namespace
