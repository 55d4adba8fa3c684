// Session semantics on the public API: continuation, snapshots, forks, batching,
// threads and constant memory. Exact (bitwise) equality where the contract promises it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "replaced_operator_new.h"
#include "test_support.h"

// g_live_bytes: live heap bytes of the whole process (the library's C++ allocations
// included), so the constant-memory test can see any growth.
void before_allocation(std::size_t) {}

namespace {

class Sessions : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = test::load(std::string(test::kGoldenDir) + "/" + GetParam());
    ASSERT_NE(model_, nullptr);
    vocab_ = test::info(model_, M3_INFO_VOCAB_SIZE);
    padded_ = test::info(model_, M3_INFO_VOCAB_PADDED);
  }
  void TearDown() override { m3_model_free(model_); }

  m3_session* create() {
    m3_session* s = nullptr;
    EXPECT_EQ(m3_session_create(model_, &s), M3_OK) << m3_last_error();
    return s;
  }
  std::vector<float> feed(m3_session* s, const std::vector<int32_t>& t, m3_logits_mode mode = M3_LOGITS_LAST) {
    std::vector<float> logits(mode == M3_LOGITS_ALL ? t.size() * padded_ : padded_);
    EXPECT_EQ(m3_session_feed(s, t.data(), t.size(), mode, logits.data(), logits.size()), M3_OK) << m3_last_error();
    return logits;
  }
  std::vector<float> step(m3_session* s, int32_t token) {
    std::vector<float> logits(padded_);
    EXPECT_EQ(m3_session_step(s, token, logits.data(), logits.size()), M3_OK) << m3_last_error();
    return logits;
  }
  std::vector<uint8_t> save(m3_session* s) {
    size_t n = 0;
    EXPECT_EQ(m3_session_save(s, nullptr, 0, &n), M3_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(static_cast<int64_t>(n), test::info(model_, M3_INFO_STATE_BLOB_BYTES));
    std::vector<uint8_t> blob(n);
    EXPECT_EQ(m3_session_save(s, blob.data(), blob.size(), &n), M3_OK) << m3_last_error();
    return blob;
  }

  m3_model* model_ = nullptr;
  int64_t vocab_ = 0, padded_ = 0;
};

TEST_P(Sessions, PrefillThenDecodeEqualsDecodeOnly) {
  const auto tokens = test::random_tokens(40, vocab_, 1);
  m3_session* a = create();
  m3_session* b = create();
  std::vector<float> all = feed(a, {tokens.begin(), tokens.begin() + 25}, M3_LOGITS_ALL);
  for (size_t t = 25; t < tokens.size(); ++t) {
    auto row = step(a, tokens[t]);
    all.insert(all.end(), row.begin(), row.end());
  }
  std::vector<float> stepped;
  for (int32_t t : tokens) {
    auto row = step(b, t);
    stepped.insert(stepped.end(), row.begin(), row.end());
  }
  EXPECT_EQ(all, stepped);
  EXPECT_EQ(save(a), save(b));
  m3_session_free(a);
  m3_session_free(b);
}

TEST_P(Sessions, SecondFeedContinuesLikeOneFeedOfTheConcatenation) {
  const auto tokens = test::random_tokens(50, vocab_, 2);
  m3_session* whole = create();
  m3_session* parts = create();
  const auto expected = feed(whole, tokens, M3_LOGITS_ALL);
  auto got = feed(parts, {tokens.begin(), tokens.begin() + 17}, M3_LOGITS_ALL);
  const auto second = feed(parts, {tokens.begin() + 17, tokens.end()}, M3_LOGITS_ALL);
  got.insert(got.end(), second.begin(), second.end());
  EXPECT_EQ(got, expected);
  int64_t n = 0;
  EXPECT_EQ(m3_session_n_tokens(parts, &n), M3_OK);
  EXPECT_EQ(n, 50);
  m3_session_free(whole);
  m3_session_free(parts);
}

TEST_P(Sessions, SaveRestoreContinueIsBitExact) {
  const auto tokens = test::random_tokens(60, vocab_, 3);
  m3_session* a = create();
  feed(a, {tokens.begin(), tokens.begin() + 30});
  const auto blob = save(a);
  std::vector<float> uninterrupted;
  for (size_t t = 30; t < 60; ++t) uninterrupted = step(a, tokens[t]);

  m3_session* b = create();
  feed(b, test::random_tokens(7, vocab_, 99));  // some unrelated state to overwrite
  ASSERT_EQ(m3_session_restore(b, blob.data(), blob.size()), M3_OK) << m3_last_error();
  int64_t n = 0;
  EXPECT_EQ(m3_session_n_tokens(b, &n), M3_OK);
  EXPECT_EQ(n, 30);
  std::vector<float> resumed;
  for (size_t t = 30; t < 60; ++t) resumed = step(b, tokens[t]);
  EXPECT_EQ(resumed, uninterrupted);
  EXPECT_EQ(save(a), save(b));
  m3_session_free(a);
  m3_session_free(b);
}

TEST_P(Sessions, ForkGivesTwoIndependentStreams) {
  const auto prefix = test::random_tokens(20, vocab_, 4);
  const auto left = test::random_tokens(15, vocab_, 5);
  const auto right = test::random_tokens(15, vocab_, 6);
  m3_session* parent = create();
  feed(parent, prefix);
  m3_session* child = nullptr;
  ASSERT_EQ(m3_session_fork(parent, &child), M3_OK) << m3_last_error();
  const auto parent_out = feed(parent, left, M3_LOGITS_ALL);
  const auto child_out = feed(child, right, M3_LOGITS_ALL);

  // Each equals a fresh session fed prefix + its own continuation.
  for (const auto& [cont, out] : {std::pair{left, parent_out}, std::pair{right, child_out}}) {
    m3_session* fresh = create();
    feed(fresh, prefix);
    EXPECT_EQ(feed(fresh, cont, M3_LOGITS_ALL), out);
    m3_session_free(fresh);
  }
  EXPECT_NE(parent_out, child_out);
  m3_session_free(parent);
  m3_session_free(child);
}

TEST_P(Sessions, BatchedDecodeEqualsOneByOne) {
  constexpr int kSessions = 5;
  std::vector<m3_session*> batch, single;
  for (int i = 0; i < kSessions; ++i) {
    batch.push_back(create());
    single.push_back(create());
    const auto prompt = test::random_tokens(3 + 4 * i, vocab_, 10 + i);  // different lengths
    feed(batch.back(), prompt);
    feed(single.back(), prompt);
  }
  std::vector<float> batch_logits(kSessions * padded_);
  for (int t = 0; t < 12; ++t) {
    const auto tokens = test::random_tokens(kSessions, vocab_, 100 + t);
    ASSERT_EQ(m3_decode_batch(batch.data(), tokens.data(), kSessions, batch_logits.data(), batch_logits.size()),
              M3_OK)
        << m3_last_error();
    for (int i = 0; i < kSessions; ++i) {
      const auto one = step(single[i], tokens[i]);
      EXPECT_TRUE(std::equal(one.begin(), one.end(), batch_logits.begin() + i * padded_)) << "session " << i;
    }
  }
  for (auto* s : batch) m3_session_free(s);
  for (auto* s : single) m3_session_free(s);
}

TEST_P(Sessions, ResetEqualsFreshSession) {
  const auto tokens = test::random_tokens(12, vocab_, 7);
  m3_session* a = create();
  feed(a, test::random_tokens(9, vocab_, 8));
  ASSERT_EQ(m3_session_reset(a), M3_OK);
  m3_session* b = create();
  EXPECT_EQ(feed(a, tokens, M3_LOGITS_ALL), feed(b, tokens, M3_LOGITS_ALL));
  m3_session_free(a);
  m3_session_free(b);
}

TEST_P(Sessions, SessionsOnDifferentThreadsShareOneModel) {
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> expected(kThreads), got(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    m3_session* s = create();
    expected[i] = feed(s, test::random_tokens(30, vocab_, 20 + i), M3_LOGITS_ALL);
    m3_session_free(s);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      m3_session* s = nullptr;
      if (m3_session_create(model_, &s) != M3_OK) return;
      const auto tokens = test::random_tokens(30, vocab_, 20 + i);
      got[i].resize(tokens.size() * padded_);
      m3_session_feed(s, tokens.data(), tokens.size(), M3_LOGITS_ALL, got[i].data(), got[i].size());
      m3_session_free(s);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, expected);
}

TEST_P(Sessions, MemoryDoesNotGrowWithTokensDecoded) {
  m3_session* s = create();
  feed(s, test::random_tokens(10, vocab_, 30));
  const auto tokens = test::random_tokens(2000, vocab_, 31);
  std::vector<float> logits(padded_);
  for (int t = 0; t < 100; ++t) m3_session_step(s, tokens[t], logits.data(), logits.size());
  const long long after_100 = g_live_bytes.load();
  for (int t = 100; t < 2000; ++t) m3_session_step(s, tokens[t], logits.data(), logits.size());
  const long long after_2000 = g_live_bytes.load();
  EXPECT_EQ(after_2000, after_100) << "live heap bytes changed while decoding 1900 more tokens";
  EXPECT_EQ(save(s).size(), static_cast<size_t>(test::info(model_, M3_INFO_STATE_BLOB_BYTES)));
  m3_session_free(s);
}

TEST_P(Sessions, DecodeStepDoesNotAllocate) {
  m3_session* s = create();
  feed(s, test::random_tokens(5, vocab_, 32));
  const auto tokens = test::random_tokens(50, vocab_, 33);
  std::vector<float> logits(padded_);
  const long long before = g_allocations.load();
  for (int32_t t : tokens) ASSERT_EQ(m3_session_step(s, t, logits.data(), logits.size()), M3_OK);
  EXPECT_EQ(g_allocations.load(), before) << "heap allocations on the per-token decode path";
  m3_session_free(s);
}

// The counter must see the library's allocations, or the test above could not fail.
TEST(LiveByteCounter, SeesLibraryAllocations) {
  m3_model* model = test::load(std::string(test::kGoldenDir) + "/siso_basic");
  const long long before = g_live_bytes.load();
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  EXPECT_GE(g_live_bytes.load() - before, test::info(model, M3_INFO_STATE_BYTES));
  m3_session_free(s);
  EXPECT_EQ(g_live_bytes.load(), before);
  m3_model_free(model);
}

TEST(ModelLifetime, SessionsKeepTheModelAlive) {
  m3_model* model = test::load(std::string(test::kGoldenDir) + "/siso_basic");
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  m3_model_free(model);  // allowed: the session still holds the weights
  std::vector<float> logits(304);
  EXPECT_EQ(m3_session_step(s, 5, logits.data(), logits.size()), M3_OK) << m3_last_error();
  m3_session_free(s);
}

INSTANTIATE_TEST_SUITE_P(Golden, Sessions,
                         ::testing::Values("siso_basic", "siso_outnorm_mlp", "mimo_r4", "mimo_r2_outnorm"));

}  // namespace
