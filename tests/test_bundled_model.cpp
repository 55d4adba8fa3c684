// The model shipped in models/default: it loads, generates text, and the runtime's held-out
// perplexity equals the training code's float64 value (tools/train/eval_perplexity.py, with
// Hugging Face's tokenizer) on the held-out sample shipped beside it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

const std::string kModel = "../models/default";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(BundledModel, HeldOutPerplexityEqualsTheTrainingCodesValue) {
  ASSERT_TRUE(std::filesystem::exists(kModel + "/config.json")) << "no bundled model at " << kModel;
  const auto reference = nlohmann::json::parse(read_file(kModel + "/heldout_eval.json"));
  const std::string cmd = std::string(MAMBA3RT_CLI) + " perplexity --model " + kModel + " --file " + kModel +
                          "/heldout_sample.txt --json --backend cpu";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << cmd;
  const auto got = nlohmann::json::parse(out);
  EXPECT_EQ(got["tokens"].get<int64_t>(), reference["tokens"].get<int64_t>()) << "tokenization differs";
  const double ours = got["loss"].get<double>(), theirs = reference["loss"].get<double>();
  std::printf("[ metrics  ] bundled model held-out loss: runtime %.7f, training code %.7f (ppl %.3f)\n", ours, theirs,
              std::exp(theirs));
  EXPECT_NEAR(ours, theirs, 1e-4 * theirs);
}

TEST(BundledModel, GeneratesEnglishLookingText) {
  m3_model* model = test::load(kModel);
  ASSERT_NE(model, nullptr);
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  m3_gen_params* p = nullptr;
  ASSERT_EQ(m3_gen_params_create(&p), M3_OK);
  m3_gen_params_set_greedy(p);
  m3_gen_params_set_max_tokens(p, 40);
  m3_gen_params_set_ignore_eos(p, 1);
  m3_generation* g = nullptr;
  ASSERT_EQ(m3_generation_create(s, p, &g), M3_OK);
  const std::string prompt = "The president said that";
  ASSERT_EQ(m3_generation_push_text(g, prompt.data(), prompt.size()), M3_OK) << m3_last_error();
  std::string text;
  auto collect = [](void* user, int32_t, const char* piece, size_t len) {
    static_cast<std::string*>(user)->append(piece, len);
    return 0;
  };
  m3_finish_reason finish;
  ASSERT_EQ(m3_generation_run(g, collect, &text, &finish), M3_OK);
  // English-looking: mostly lowercase letters and spaces, several words.
  size_t letters = 0, spaces = 0;
  for (char c : text) {
    letters += std::isalpha(static_cast<unsigned char>(c)) != 0;
    spaces += c == ' ';
  }
  std::printf("[ sample   ] %s%s\n", prompt.c_str(), text.c_str());
  EXPECT_GT(letters, text.size() * 6 / 10) << text;
  EXPECT_GE(spaces, 5u) << text;
  m3_generation_free(g);
  m3_gen_params_destroy(p);
  m3_session_free(s);
  m3_model_free(model);
}

}  // namespace

namespace {

TEST(BundledModel, IsTheDefaultWhenNoModelIsGiven) {
  const std::string cmd = std::string(MAMBA3RT_CLI) + " generate --prompt 'The jury said' --greedy -n 5 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0);
  EXPECT_FALSE(out.empty());
}

}  // namespace
