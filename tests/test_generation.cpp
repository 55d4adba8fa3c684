// Streaming generation through the C API: text pieces, stop conditions, incremental input,
// cancellation, determinism, and equality with the plain logits path.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <thread>

#include "generation/text_stream.h"
#include "tokenizer/utf8.h"
#include "test_support.h"

namespace {

// --- TextStream ------------------------------------------------------------------------

std::string lossy(std::string_view bytes) {
  std::string out;
  m3::utf8::append_lossy(bytes, out, false);
  return out;
}

const std::string kFFFD = "\xEF\xBF\xBD";

TEST(TextStream, LossyDecodingFollowsUnicodeMaximalSubparts) {
  // Expected values from the Unicode standard's "best practice" for U+FFFD substitution.
  EXPECT_EQ(lossy("abc"), "abc");
  EXPECT_EQ(lossy("\xC0\xAF"), kFFFD + kFFFD);                   // C0 is never a lead byte
  EXPECT_EQ(lossy("\xE0\x80\x80"), kFFFD + kFFFD + kFFFD);       // overlong: E0 needs A0..BF next
  EXPECT_EQ(lossy("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);       // surrogate
  EXPECT_EQ(lossy("\xF0\x9F\x98"), kFFFD);                        // truncated 4-byte: one subpart
  EXPECT_EQ(lossy("\xF0\x9F" "A"), kFFFD + "A");
  EXPECT_EQ(lossy("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD);  // above U+10FFFF
  EXPECT_EQ(lossy("\xFF"), kFFFD);
  EXPECT_EQ(lossy("\xE2\x82\xAC"), "\xE2\x82\xAC");               // the euro sign is fine
}

TEST(TextStream, PiecesNeverSplitACharacter) {
  const std::string text = "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x8E\x89!";  // héllo 世界 🎉!
  m3::TextStream stream;
  std::string joined;
  for (char c : text) {
    bool stopped = false;
    const std::string piece = stream.push(std::string_view(&c, 1), &stopped);
    EXPECT_FALSE(stopped);
    EXPECT_EQ(lossy(piece), piece) << "piece is not valid UTF-8";
    joined += piece;
  }
  joined += stream.flush();
  EXPECT_EQ(joined, text);
}

TEST(TextStream, IncompleteTailBecomesReplacementAtFlush) {
  m3::TextStream stream;
  bool stopped = false;
  EXPECT_EQ(stream.push("ok\xE4\xB8", &stopped), "ok");
  EXPECT_EQ(stream.flush(), kFFFD);
}

TEST(TextStream, StopStringAcrossPiecesIsCutAndNeverShown) {
  m3::TextStream stream({"world"});
  bool stopped = false;
  EXPECT_EQ(stream.push("hello wo", &stopped), "hello ");  // "wo" may start "world"
  EXPECT_FALSE(stopped);
  EXPECT_EQ(stream.push("rl", &stopped), "");
  EXPECT_EQ(stream.push("d! more", &stopped), "");
  EXPECT_TRUE(stopped);
}

TEST(TextStream, HeldTextIsReleasedWhenItStopsMatching) {
  m3::TextStream stream({"\n\n", "END"});
  bool stopped = false;
  EXPECT_EQ(stream.push("a\n", &stopped), "a");
  EXPECT_EQ(stream.push("b EN", &stopped), "\nb ");
  EXPECT_EQ(stream.push("Dless", &stopped), "");
  EXPECT_TRUE(stopped);
  m3::TextStream other({"END"});
  EXPECT_EQ(other.push("EN", &stopped), "");
  EXPECT_EQ(other.flush(), "EN");
}

// --- Generation on a small model with a tokenizer --------------------------------------------

// siso_basic (vocab 301) plus a byte-level BPE tokenizer.json with 301 tokens whose last
// token is <|endoftext|>.
class Generation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_basic");
    std::filesystem::copy_file("data/tokenizers/tiny_301.json", dir_ + "/tokenizer.json");
  }
  static void TearDownTestSuite() { test::remove_tree(dir_); }
  void SetUp() override {
    model_ = test::load(dir_);
    ASSERT_NE(model_, nullptr);
    ASSERT_EQ(m3_model_tokenizer(model_, &tok_), M3_OK) << m3_last_error();
    vocab_ = test::info(model_, M3_INFO_VOCAB_SIZE);
    padded_ = test::info(model_, M3_INFO_VOCAB_PADDED);
    ASSERT_EQ(m3_gen_params_create(&params_), M3_OK);
  }
  void TearDown() override {
    m3_gen_params_destroy(params_);
    m3_model_free(model_);
  }

  m3_session* session() {
    m3_session* s = nullptr;
    EXPECT_EQ(m3_session_create(model_, &s), M3_OK);
    sessions_.emplace_back(s, m3_session_free);
    return s;
  }
  m3_generation* generation(m3_session* s) {
    m3_generation* g = nullptr;
    EXPECT_EQ(m3_generation_create(s, params_, &g), M3_OK) << m3_last_error();
    generations_.emplace_back(g, m3_generation_free);
    return g;
  }
  std::vector<int32_t> tokenize(const std::string& text) {
    size_t n = 0;
    m3_tokenize(tok_, text.data(), text.size(), 0, nullptr, 0, &n);
    std::vector<int32_t> ids(n);
    EXPECT_EQ(m3_tokenize(tok_, text.data(), text.size(), 0, ids.data(), ids.size(), &n), M3_OK) << m3_last_error();
    return ids;
  }
  std::string detokenize(const std::vector<int32_t>& ids) {
    size_t n = 0;
    m3_detokenize(tok_, ids.data(), ids.size(), 0, nullptr, 0, &n);
    std::string s(n, '\0');
    EXPECT_EQ(m3_detokenize(tok_, ids.data(), ids.size(), 0, s.data(), s.size(), &n), M3_OK);
    return s;
  }

  struct Output {
    std::vector<int32_t> tokens;
    std::string text;
    m3_finish_reason finish = M3_FINISH_NONE;
  };
  // Pulls until the turn finishes.
  Output pull(m3_generation* g) {
    Output out;
    char buf[256];
    while (out.finish == M3_FINISH_NONE) {
      int32_t token = -1;
      size_t len = 0;
      EXPECT_EQ(m3_generation_next(g, &token, buf, sizeof buf, &len, &out.finish), M3_OK) << m3_last_error();
      if (token >= 0) out.tokens.push_back(token);
      out.text.append(buf, len);
    }
    return out;
  }
  // The plain path: feed, then argmax over real ids and step, n times.
  std::vector<int32_t> argmax_path(const std::vector<int32_t>& prompt, int n) {
    m3_session* s = session();
    std::vector<float> logits(padded_);
    EXPECT_EQ(m3_session_feed(s, prompt.data(), prompt.size(), M3_LOGITS_LAST, logits.data(), logits.size()), M3_OK);
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      const int32_t t = static_cast<int32_t>(std::max_element(logits.begin(), logits.begin() + vocab_) - logits.begin());
      out.push_back(t);
      EXPECT_EQ(m3_session_step(s, t, logits.data(), logits.size()), M3_OK);
    }
    return out;
  }

  static std::string dir_;
  m3_model* model_ = nullptr;
  const m3_tokenizer* tok_ = nullptr;
  m3_gen_params* params_ = nullptr;
  int64_t vocab_ = 0, padded_ = 0;
  std::vector<std::unique_ptr<m3_session, void (*)(m3_session*)>> sessions_;
  std::vector<std::unique_ptr<m3_generation, void (*)(m3_generation*)>> generations_;
};
std::string Generation::dir_;

const std::string kPrompt = "The quick brown fox jumps over the lazy dog. ";

TEST_F(Generation, GreedyEqualsTheArgmaxPathAndPiecesJoinToTheDecodedText) {
  ASSERT_EQ(m3_gen_params_set_greedy(params_), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 40), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK) << m3_last_error();
  const Output out = pull(g);
  EXPECT_EQ(out.finish, M3_FINISH_MAX_TOKENS);
  ASSERT_EQ(out.tokens.size(), 40u);
  EXPECT_EQ(out.tokens, argmax_path(tokenize(kPrompt), 40));
  EXPECT_EQ(out.text, detokenize(out.tokens));
}

TEST_F(Generation, AppendedInputEqualsFeedingEverythingAtOnce) {
  ASSERT_EQ(m3_gen_params_set_greedy(params_), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 6), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  const auto p1 = tokenize("Once upon a time");
  const auto p2 = tokenize(" there was a tiny model.");
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_tokens(g, p1.data(), p1.size()), M3_OK);
  const Output first = pull(g);
  ASSERT_EQ(first.tokens.size(), 6u);
  ASSERT_EQ(m3_generation_push_tokens(g, p2.data(), p2.size()), M3_OK);  // a new turn
  const Output second = pull(g);
  ASSERT_EQ(second.tokens.size(), 6u);

  // One feed of everything the model saw: p1, its own 6 tokens, p2; then argmax onwards.
  std::vector<int32_t> all = p1;
  all.insert(all.end(), first.tokens.begin(), first.tokens.end());
  all.insert(all.end(), p2.begin(), p2.end());
  EXPECT_EQ(second.tokens, argmax_path(all, 6));
}

TEST_F(Generation, SameSeedSameTextDifferentSeedDifferentText) {
  ASSERT_EQ(m3_gen_params_set_temperature(params_, 1.0f), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 30), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  auto run = [&](uint64_t seed) {
    EXPECT_EQ(m3_gen_params_set_seed(params_, seed), M3_OK);
    m3_generation* g = generation(session());
    EXPECT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
    return pull(g).tokens;
  };
  const auto a = run(42), b = run(42), c = run(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST_F(Generation, StopTokenEndsTheTurnWithoutEmittingIt) {
  ASSERT_EQ(m3_gen_params_set_greedy(params_), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  const auto path = argmax_path(tokenize(kPrompt), 5);
  // Stop at the first occurrence of the third token.
  const auto first = std::find(path.begin(), path.end(), path[2]) - path.begin();
  ASSERT_EQ(m3_gen_params_add_stop_token(params_, path[2]), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  const Output out = pull(g);
  EXPECT_EQ(out.finish, M3_FINISH_STOP_TOKEN);
  EXPECT_EQ(out.tokens, std::vector<int32_t>(path.begin(), path.begin() + first));
}

TEST_F(Generation, StopStringIsCutFromTheOutput) {
  ASSERT_EQ(m3_gen_params_set_greedy(params_), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 40), M3_OK);
  const std::string full = detokenize(argmax_path(tokenize(kPrompt), 40));
  // A 3-byte ASCII stop string from the middle of the greedy text (random weights may also
  // produce bytes that are not text).
  std::size_t at = 5;
  while (at + 3 <= full.size() && !std::all_of(full.begin() + at, full.begin() + at + 3,
                                                [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
    ++at;
  if (at + 3 > full.size()) GTEST_SKIP() << "the greedy text has no 3 ASCII bytes in a row to stop at";
  const std::string stop = full.substr(at, 3);
  const std::string expected = full.substr(0, full.find(stop));
  ASSERT_EQ(m3_gen_params_add_stop_string(params_, stop.c_str()), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  const Output out = pull(g);
  EXPECT_EQ(out.finish, M3_FINISH_STOP_STRING);
  EXPECT_EQ(out.text, expected);
}

TEST_F(Generation, EndOfTextTokenFinishes) {
  const int32_t eos = static_cast<int32_t>(vocab_ - 1);  // tiny_301's <|endoftext|>
  ASSERT_EQ(m3_gen_params_add_logit_bias(params_, eos, 1e9f), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  const Output out = pull(g);
  EXPECT_EQ(out.finish, M3_FINISH_EOS);
  EXPECT_TRUE(out.tokens.empty());
}

TEST_F(Generation, CancelFromAnotherThreadStopsBetweenTokens) {
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 1000), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  struct Shared {
    std::atomic<int> tokens{0};
    std::atomic<bool> cancelled{false};
  } shared;
  std::thread canceller([&] {
    while (shared.tokens.load() < 3) std::this_thread::yield();
    EXPECT_EQ(m3_generation_cancel(g), M3_OK);
    shared.cancelled = true;
  });
  auto on_piece = [](void* user, int32_t token, const char*, size_t) {
    auto* sh = static_cast<Shared*>(user);
    if (token >= 0 && ++sh->tokens == 3)
      while (!sh->cancelled.load()) std::this_thread::yield();  // the cancel lands before token 4
    return 0;
  };
  m3_finish_reason finish = M3_FINISH_NONE;
  ASSERT_EQ(m3_generation_run(g, on_piece, &shared, &finish), M3_OK) << m3_last_error();
  canceller.join();
  EXPECT_EQ(finish, M3_FINISH_CANCELLED);
  EXPECT_EQ(shared.tokens.load(), 3);
}

TEST_F(Generation, CallbackReturningNonZeroStops) {
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  int calls = 0;
  auto stop_at_two = [](void* user, int32_t, const char*, size_t) { return ++*static_cast<int*>(user) == 2 ? 1 : 0; };
  m3_finish_reason finish = M3_FINISH_NONE;
  ASSERT_EQ(m3_generation_run(g, stop_at_two, &calls, &finish), M3_OK);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(finish, M3_FINISH_CANCELLED);
}

TEST_F(Generation, SmallPieceBufferLosesNothing) {
  ASSERT_EQ(m3_gen_params_set_greedy(params_), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params_, 12), M3_OK);
  ASSERT_EQ(m3_gen_params_set_ignore_eos(params_, 1), M3_OK);
  m3_generation* g = generation(session());
  ASSERT_EQ(m3_generation_push_text(g, kPrompt.data(), kPrompt.size()), M3_OK);
  std::vector<int32_t> tokens;
  std::string text;
  m3_finish_reason finish = M3_FINISH_NONE;
  while (finish == M3_FINISH_NONE) {
    int32_t token = -1;
    size_t len = 0;
    m3_status s = m3_generation_next(g, &token, nullptr, 0, &len, &finish);
    if (s == M3_ERR_BUFFER_TOO_SMALL) {
      std::string piece(len, '\0');
      ASSERT_EQ(m3_generation_next(g, &token, piece.data(), piece.size(), &len, &finish), M3_OK);
      text += piece;
    } else {
      ASSERT_EQ(s, M3_OK);
    }
    if (token >= 0) tokens.push_back(token);
  }
  EXPECT_EQ(tokens, argmax_path(tokenize(kPrompt), 12));
  EXPECT_EQ(text, detokenize(tokens));
}

TEST_F(Generation, BadInput) {
  m3_generation* g = generation(session());
  int32_t token = 0;
  size_t len = 0;
  m3_finish_reason finish;
  EXPECT_EQ(m3_generation_next(g, &token, nullptr, 0, &len, &finish), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("prompt"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_generation_push_text(g, "", 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("empty"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_generation_push_text(g, "bad \xFF byte", 10), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("UTF-8"), std::string::npos) << m3_last_error();
  const int32_t out_of_range = static_cast<int32_t>(vocab_);
  EXPECT_EQ(m3_generation_push_tokens(g, &out_of_range, 1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_generation_push_text(nullptr, "x", 1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_generation_create(nullptr, params_, &g), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_gen_params_set_top_p(params_, 0.0f), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_gen_params_set_temperature(params_, NAN), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_gen_params_add_stop_string(params_, ""), M3_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(m3_gen_params_add_logit_bias(params_, 100000, 1.0f), M3_OK);  // checked against the model below
  m3_generation* bad = nullptr;
  EXPECT_EQ(m3_generation_create(session(), params_, &bad), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);
}

TEST(GenerationWithoutTokenizer, TextNeedsATokenizerButTokensWork) {
  m3_model* model = test::load(std::string(test::kGoldenDir) + "/siso_basic");
  const m3_tokenizer* tok = nullptr;
  EXPECT_EQ(m3_model_tokenizer(model, &tok), M3_ERR_UNSUPPORTED);
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  m3_generation* g = nullptr;
  ASSERT_EQ(m3_generation_create(s, nullptr, &g), M3_OK);
  EXPECT_EQ(m3_generation_push_text(g, "hi", 2), M3_ERR_UNSUPPORTED);
  const int32_t prompt[] = {1, 2, 3};
  ASSERT_EQ(m3_generation_push_tokens(g, prompt, 3), M3_OK);
  int32_t token = -1;
  size_t len = 0;
  m3_finish_reason finish;
  ASSERT_EQ(m3_generation_next(g, &token, nullptr, 0, &len, &finish), M3_OK);
  EXPECT_GE(token, 0);
  EXPECT_EQ(len, 0u);  // no tokenizer, no text
  m3_generation_free(g);
  m3_session_free(s);
  m3_model_free(model);
}

// --- CLI -------------------------------------------------------------------------------

std::string run_stdout(const std::string& cmd, int* rc) {
  const std::string tmp = test::make_temp_dir();
  *rc = std::system((cmd + " > " + tmp + "/out 2> " + tmp + "/err").c_str());
  std::ifstream in(tmp + "/out", std::ios::binary);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  test::remove_tree(tmp);
  return out;
}

TEST_F(Generation, CliGenerateGreedyPrintsTheArgmaxContinuation) {
  int rc = 0;
  const std::string out = run_stdout(std::string(MAMBA3RT_CLI) + " generate --model " + dir_ +
                                         " --prompt '" + kPrompt + "' --greedy -n 25 --ignore-eos",
                                     &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(out, detokenize(argmax_path(tokenize(kPrompt), 25)));
}

TEST_F(Generation, CliTokenizePrintsIds) {
  int rc = 0;
  const std::string out =
      run_stdout(std::string(MAMBA3RT_CLI) + " tokenize --model " + dir_ + " --text 'hello world'", &rc);
  ASSERT_EQ(rc, 0);
  std::string expected;
  for (int32_t id : tokenize("hello world")) {
    if (!expected.empty()) expected += ' ';
    expected += std::to_string(id);
  }
  EXPECT_EQ(out, expected + "\n");
}

}  // namespace

namespace {

TEST(CliChat, AnswersEachLineOnOneSession) {
  const std::string dir = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_basic");
  std::filesystem::copy_file("data/tokenizers/tiny_301.json", dir + "/tokenizer.json");
  int rc = 0;
  const std::string out = run_stdout("printf 'hello there\\nhow are you\\n' | " + std::string(MAMBA3RT_CLI) +
                                         " chat --model " + dir + " --greedy -n 5 --ignore-eos",
                                     &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;  // one answer line per input line
  test::remove_tree(dir);
}

}  // namespace
