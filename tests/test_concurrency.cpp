// The thread-safety contract of mamba3rt.h, hammered: one model shared by 8 threads, each
// running independent sessions through every session call (create, feed, step, fork, save,
// restore, reset, free) plus the model's tokenizer, for a bounded time. Every scenario's
// results are compared bitwise with the same scenario run alone before the threads start, so
// a stream that another stream corrupts fails the test; run under ThreadSanitizer (CI's
// build-tsan), a data race fails it too. M3_HAMMER_SECONDS sets the time (default 2).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace {

const std::string kModel = "../models/default";  // MIMO, with a tokenizer
constexpr int kThreads = 8;
constexpr int kScenarios = 16;

double hammer_seconds() {
  const char* s = std::getenv("M3_HAMMER_SECONDS");
  return s ? std::atof(s) : 2.0;
}

// What one scenario observed: logits at its checkpoints, the saved state, the token count and
// the tokenizer's ids. Equal scenarios must observe equal things, whatever runs beside them.
struct Observed {
  std::vector<float> logits;
  std::vector<uint8_t> blob;
  int64_t n_tokens = -1;
  std::vector<int32_t> ids;
  std::string failure;  // the first call that failed, with its message
  bool operator==(const Observed& o) const {
    return logits == o.logits && blob == o.blob && n_tokens == o.n_tokens && ids == o.ids && failure == o.failure;
  }
};

class Scenario {
 public:
  Scenario(m3_model* model, int seed) : model_(model), seed_(seed) {
    vocab_ = test::info(model, M3_INFO_VOCAB_SIZE);
    padded_ = static_cast<size_t>(test::info(model, M3_INFO_VOCAB_PADDED));
  }

  // Every session call once or more; the checkpoints go into `out`.
  Observed run() {
    Observed out;
    const auto prompt = test::random_tokens(5 + seed_ % 11, vocab_, 100 + seed_);
    const auto more = test::random_tokens(6, vocab_, 200 + seed_);
    m3_session* a = nullptr;
    m3_session* b = nullptr;
    m3_session* c = nullptr;
    if (check(m3_session_create(model_, &a), "create", out)) {
      std::vector<float> row(padded_);
      if (check(m3_session_feed(a, prompt.data(), prompt.size(), M3_LOGITS_LAST, row.data(), row.size()), "feed", out))
        keep(row, out);
      if (check(m3_session_fork(a, &b), "fork", out)) {
        // The fork and its origin take different tokens: neither may see the other's.
        step(a, more[0], out);
        step(b, more[1], out);
        step(a, more[2], out);
      }
      size_t size = 0;
      m3_session_save(a, nullptr, 0, &size);
      out.blob.resize(size);
      check(m3_session_save(a, out.blob.data(), out.blob.size(), &size), "save", out);
      if (check(m3_session_create(model_, &c), "create", out) &&
          check(m3_session_restore(c, out.blob.data(), out.blob.size()), "restore", out)) {
        step(c, more[3], out);  // equals a's next step below
        step(a, more[3], out);
      }
      check(m3_session_n_tokens(a, &out.n_tokens), "n_tokens", out);
      if (b && check(m3_session_reset(b), "reset", out)) step(b, more[4], out);
    }
    m3_session_free(a);
    m3_session_free(b);
    m3_session_free(c);
    tokenize(out);
    return out;
  }

 private:
  bool check(m3_status status, const char* call, Observed& out) {
    if (status == M3_OK) return true;
    if (out.failure.empty()) out.failure = std::string(call) + ": " + m3_last_error();
    return false;
  }
  void keep(const std::vector<float>& row, Observed& out) {
    out.logits.insert(out.logits.end(), row.begin(), row.end());
  }
  void step(m3_session* s, int32_t token, Observed& out) {
    std::vector<float> row(padded_);
    if (check(m3_session_step(s, token, row.data(), row.size()), "step", out)) keep(row, out);
  }
  void tokenize(Observed& out) {
    const m3_tokenizer* tok = nullptr;
    if (!check(m3_model_tokenizer(model_, &tok), "tokenizer", out)) return;
    const std::string text = "stream " + std::to_string(seed_) + " says hello, world";
    out.ids.resize(64);
    size_t n = 0;
    if (check(m3_tokenize(tok, text.data(), text.size(), 1, out.ids.data(), out.ids.size(), &n), "tokenize", out))
      out.ids.resize(n);
  }

  m3_model* model_;
  int seed_;
  int64_t vocab_ = 0;
  size_t padded_ = 0;
};

TEST(Concurrency, EightThreadsHammerOneModelWithIndependentSessions) {
  m3_model* model = test::load(kModel);
  ASSERT_NE(model, nullptr);
  std::vector<Observed> expected;
  for (int i = 0; i < kScenarios; ++i) {
    expected.push_back(Scenario(model, i).run());
    ASSERT_EQ(expected.back().failure, "") << "scenario " << i << " fails even alone";
    ASSERT_FALSE(expected.back().logits.empty());
  }
  // Guard against a scenario that observes nothing that could differ between seeds.
  ASSERT_FALSE(expected[0] == expected[1]);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(hammer_seconds());
  std::atomic<int> runs{0}, mismatches{0};
  std::vector<std::string> first_mismatch(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = t; std::chrono::steady_clock::now() < deadline || i < t + 2; ++i) {
        const int seed = (i * 7 + t) % kScenarios;
        const Observed got = Scenario(model, seed).run();
        ++runs;
        if (!(got == expected[seed])) {
          ++mismatches;
          if (first_mismatch[t].empty())
            first_mismatch[t] = "scenario " + std::to_string(seed) + " on thread " + std::to_string(t) +
                                " differs from its solo run" + (got.failure.empty() ? "" : " (" + got.failure + ")");
        }
      }
    });
  for (auto& th : threads) th.join();
  std::printf("[ metrics  ] %d scenarios on %d threads in %.1f s\n", runs.load(), kThreads, hammer_seconds());
  EXPECT_EQ(mismatches.load(), 0);
  for (const auto& m : first_mismatch)
    if (!m.empty()) ADD_FAILURE() << m;
  EXPECT_GE(runs.load(), 2 * kThreads);
  m3_model_free(model);
}

// Documented misuse: one session from two threads at once. Each call either runs or gets
// M3_ERR_SESSION_BUSY; none is lost or torn: the token count equals the calls that ran, and
// the state equals that many steps taken on one thread.
TEST(Concurrency, OneSessionFromTwoThreadsIsRefusedNotRaced) {
  m3_model* model = test::load(kModel);
  ASSERT_NE(model, nullptr);
  m3_session* shared = nullptr;
  ASSERT_EQ(m3_session_create(model, &shared), M3_OK);
  constexpr int kCalls = 200;
  constexpr int32_t kToken = 17;
  std::atomic<int> ran{0}, busy{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        const m3_status s = m3_session_step(shared, kToken, nullptr, 0);
        if (s == M3_OK)
          ++ran;
        else if (s == M3_ERR_SESSION_BUSY)
          ++busy;
        else
          ++other;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(ran.load() + busy.load(), 2 * kCalls);
  std::printf("[ metrics  ] %d calls ran, %d refused as busy\n", ran.load(), busy.load());
  int64_t n = 0;
  ASSERT_EQ(m3_session_n_tokens(shared, &n), M3_OK);
  EXPECT_EQ(n, ran.load());

  m3_session* alone = nullptr;
  ASSERT_EQ(m3_session_create(model, &alone), M3_OK);
  for (int i = 0; i < ran.load(); ++i) ASSERT_EQ(m3_session_step(alone, kToken, nullptr, 0), M3_OK);
  size_t size = static_cast<size_t>(test::info(model, M3_INFO_STATE_BLOB_BYTES));
  std::vector<uint8_t> got(size), want(size);
  ASSERT_EQ(m3_session_save(shared, got.data(), size, &size), M3_OK);
  ASSERT_EQ(m3_session_save(alone, want.data(), size, &size), M3_OK);
  EXPECT_TRUE(got == want) << "the state of the shared session is not that of " << ran.load() << " steps";
  m3_session_free(alone);
  m3_session_free(shared);
  m3_model_free(model);
}

}  // namespace
