// The streaming engine through the C API: batching never changes what a request produces
// (checked against m3_generation, the one-stream path), prefix sharing, incremental input,
// backpressure, cancellation, freeing, limits and bad input.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"

namespace {

using namespace std::chrono_literals;

const std::string kModel = "../models/default";

struct Request {
  std::vector<int32_t> prompt;
  int32_t max_tokens = 16;
  float temperature = 0;  // <= 0: greedy
  int32_t top_k = 0;
  float top_p = 1;
  float repeat_penalty = 1;
  uint64_t seed = 0;
  bool ignore_eos = true;
};

struct Output {
  std::vector<int32_t> tokens;
  std::string text;
  m3_finish_reason finish = M3_FINISH_NONE;
};

// Liveness bounds, not timings: generous, because CI runs this beside other tests on two
// cores and under sanitizers, where a step can take a hundred times longer than alone.
constexpr int kPatienceMs = 180000;

// Waits (bounded) until pred() holds; returns whether it did.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(kPatienceMs)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The backend under test: the CPU backend (CI), or another one named by
// MAMBA3RT_ENGINE_TEST_BACKEND=cuda|vulkan (runs on the device machine).
m3_backend backend_under_test() {
  const char* name = std::getenv("MAMBA3RT_ENGINE_TEST_BACKEND");
  const std::string b = name ? name : "cpu";
  return b == "cuda" ? M3_BACKEND_CUDA : b == "vulkan" ? M3_BACKEND_VULKAN : M3_BACKEND_CPU;
}

class Engine : public ::testing::Test {
 protected:
  void SetUp() override {
    handles_before_ = m3_live_handles();
    model_ = test::load(kModel, backend_under_test());
    ASSERT_NE(model_, nullptr);
    vocab_ = test::info(model_, M3_INFO_VOCAB_SIZE);
  }
  void TearDown() override {
    m3_model_free(model_);
    EXPECT_EQ(m3_live_handles(), handles_before_) << "handles leaked";
  }

  m3_gen_params* params_for(const Request& r) {
    m3_gen_params* p = nullptr;
    EXPECT_EQ(m3_gen_params_create(&p), M3_OK);
    if (r.temperature <= 0) {
      EXPECT_EQ(m3_gen_params_set_greedy(p), M3_OK);
    } else {
      EXPECT_EQ(m3_gen_params_set_temperature(p, r.temperature), M3_OK);
    }
    EXPECT_EQ(m3_gen_params_set_top_k(p, r.top_k), M3_OK);
    EXPECT_EQ(m3_gen_params_set_top_p(p, r.top_p), M3_OK);
    EXPECT_EQ(m3_gen_params_set_repeat_penalty(p, r.repeat_penalty, 64), M3_OK);
    EXPECT_EQ(m3_gen_params_set_seed(p, r.seed), M3_OK);
    EXPECT_EQ(m3_gen_params_set_max_tokens(p, r.max_tokens), M3_OK);
    EXPECT_EQ(m3_gen_params_set_ignore_eos(p, r.ignore_eos ? 1 : 0), M3_OK);
    return p;
  }

  // Runs m3_generation's current turn to its finish; pushes_after: input pushed after the
  // k-th token.
  static Output run_turn(m3_generation* g, const std::vector<std::pair<int, std::vector<int32_t>>>& pushes_after = {}) {
    Output out;
    std::vector<char> piece(4096);
    for (;;) {
      int32_t token = -1;
      size_t len = 0;
      m3_finish_reason finish = M3_FINISH_NONE;
      EXPECT_EQ(m3_generation_next(g, &token, piece.data(), piece.size(), &len, &finish), M3_OK) << m3_last_error();
      if (token >= 0) out.tokens.push_back(token);
      out.text.append(piece.data(), len);
      for (const auto& [after, input] : pushes_after)
        if (token >= 0 && static_cast<int>(out.tokens.size()) == after) {
          EXPECT_EQ(m3_generation_push_tokens(g, input.data(), input.size()), M3_OK);
        }
      if (finish != M3_FINISH_NONE) {
        out.finish = finish;
        return out;
      }
    }
  }

  // The request alone, through m3_generation (no engine, no batching). The session may
  // hold a prefix already.
  Output alone(const Request& r, m3_session* session = nullptr,
               const std::vector<std::pair<int, std::vector<int32_t>>>& pushes_after = {}) {
    m3_session* own = nullptr;
    if (!session) {
      EXPECT_EQ(m3_session_create(model_, &own), M3_OK);
      session = own;
    }
    m3_gen_params* p = params_for(r);
    m3_generation* g = nullptr;
    EXPECT_EQ(m3_generation_create(session, p, &g), M3_OK) << m3_last_error();
    EXPECT_EQ(m3_generation_push_tokens(g, r.prompt.data(), r.prompt.size()), M3_OK) << m3_last_error();
    const Output out = run_turn(g, pushes_after);
    m3_generation_free(g);
    m3_gen_params_destroy(p);
    m3_session_free(own);
    return out;
  }

  m3_engine* engine(int32_t max_batch = 256, int32_t queue_capacity = 64, int32_t prefill_chunk = 256,
                    int32_t prefill_budget = 512, int32_t max_streams = 4096) {
    m3_engine_params* p = nullptr;
    EXPECT_EQ(m3_engine_params_create(&p), M3_OK);
    EXPECT_EQ(m3_engine_params_set_max_batch(p, max_batch), M3_OK);
    EXPECT_EQ(m3_engine_params_set_queue_capacity(p, queue_capacity), M3_OK);
    EXPECT_EQ(m3_engine_params_set_prefill_chunk(p, prefill_chunk), M3_OK);
    EXPECT_EQ(m3_engine_params_set_prefill_budget(p, prefill_budget), M3_OK);
    EXPECT_EQ(m3_engine_params_set_max_streams(p, max_streams), M3_OK);
    m3_engine* e = nullptr;
    EXPECT_EQ(m3_engine_create(model_, p, &e), M3_OK) << m3_last_error();
    m3_engine_params_destroy(p);
    return e;
  }

  m3_stream* submit(m3_engine* e, const Request& r, const m3_session* prefix = nullptr,
                    m3_stream_callback cb = nullptr, void* user = nullptr) {
    m3_gen_params* p = params_for(r);
    m3_stream* s = nullptr;
    EXPECT_EQ(m3_engine_submit(e, p, prefix, cb, user, &s), M3_OK) << m3_last_error();
    m3_gen_params_destroy(p);
    return s;
  }

  // A stream of the request with its prompt pushed.
  m3_stream* start(m3_engine* e, const Request& r, const m3_session* prefix = nullptr) {
    m3_stream* s = submit(e, r, prefix);
    EXPECT_EQ(m3_stream_push_tokens(s, r.prompt.data(), r.prompt.size()), M3_OK) << m3_last_error();
    return s;
  }

  // Pulls until the turn finishes. cancel_after > 0: cancels after that many tokens.
  static Output pull(m3_stream* s, int cancel_after = 0) {
    Output out;
    std::vector<char> piece(4096);
    for (;;) {
      int32_t token = -1;
      size_t len = 0;
      m3_finish_reason finish = M3_FINISH_NONE;
      const m3_status st = m3_stream_next(s, kPatienceMs, &token, piece.data(), piece.size(), &len, &finish);
      EXPECT_EQ(st, M3_OK) << m3_last_error();
      if (st != M3_OK) return out;
      if (token >= 0) out.tokens.push_back(token);
      out.text.append(piece.data(), len);
      if (cancel_after > 0 && static_cast<int>(out.tokens.size()) == cancel_after) m3_stream_cancel(s);
      if (finish != M3_FINISH_NONE) {
        out.finish = finish;
        return out;
      }
    }
  }

  int64_t stat(m3_engine* e, m3_engine_stat_key key) {
    int64_t v = -1;
    EXPECT_EQ(m3_engine_stat(e, key, &v), M3_OK);
    return v;
  }

  m3_model* model_ = nullptr;
  int64_t vocab_ = 0;
  int64_t handles_before_ = 0;
};

// Output gathered by a callback on the scheduler thread.
struct Collected {
  std::mutex mutex;
  std::condition_variable done_cv;
  Output out;
  bool done = false;
  int cancel_after = 0;
  // Input the callback pushes into its own stream after `push_after` tokens.
  m3_stream* self = nullptr;
  int push_after = 0;
  std::vector<int32_t> push;

  static int on_event(void* user, int32_t token, const char* piece, size_t len, m3_finish_reason finish) {
    auto* c = static_cast<Collected*>(user);
    std::lock_guard<std::mutex> lock(c->mutex);
    if (token >= 0) c->out.tokens.push_back(token);
    c->out.text.append(piece, len);
    const int n = static_cast<int>(c->out.tokens.size());
    if (token >= 0 && c->push_after > 0 && n == c->push_after) {
      EXPECT_EQ(m3_stream_push_tokens(c->self, c->push.data(), c->push.size()), M3_OK) << m3_last_error();
    }
    if (finish != M3_FINISH_NONE) {
      c->out.finish = finish;
      c->done = true;
      c->done_cv.notify_all();
      return 0;
    }
    return token >= 0 && c->cancel_after > 0 && n >= c->cancel_after ? 1 : 0;
  }
  Output wait() {
    std::unique_lock<std::mutex> lock(mutex);
    EXPECT_TRUE(done_cv.wait_for(lock, std::chrono::milliseconds(kPatienceMs), [&] { return done; }))
        << "the stream did not finish";
    return out;
  }
};

bool is_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

TEST_F(Engine, SixtyFourConcurrentStreamsProduceWhatEachRequestGivesAlone) {
  constexpr int kStreams = 64;
  std::mt19937_64 rng(2026);
  std::vector<Request> requests(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    Request& r = requests[i];
    r.prompt = test::random_tokens(1 + rng() % 300, vocab_, 1000 + i);
    r.max_tokens = 1 + static_cast<int32_t>(rng() % 48);
    r.seed = 77 + i;
    r.ignore_eos = i % 5 != 0;
    switch (i % 4) {
      case 0: break;  // greedy
      case 1: r.temperature = 0.9f; r.top_k = 40; break;
      case 2: r.temperature = 1.1f; r.top_p = 0.9f; r.repeat_penalty = 1.3f; break;
      case 3: r.temperature = 0.7f; break;
    }
  }
  std::vector<Output> expected;
  for (const Request& r : requests) expected.push_back(alone(r));

  // Fewer batch places than streams (some wait), prompt chunks that differ from
  // m3_generation's, and short queues (readers fall behind, streams pause).
  // On a GPU a prompt's result depends on how it is cut into passes (the products round per
  // pass shape), so there the engine's chunks must be m3_generation's (64 tokens); on the CPU
  // any cut gives the same bits.
  const int32_t chunk = backend_under_test() == M3_BACKEND_CPU ? 37 : 64;
  m3_engine* e = engine(/*max_batch=*/24, /*queue_capacity=*/3, chunk, /*prefill_budget=*/90);
  std::vector<m3_stream*> streams(kStreams);
  std::vector<std::unique_ptr<Collected>> collected(kStreams);
  std::vector<Output> got(kStreams);
  std::vector<std::thread> readers;
  auto cancel_after = [](int i) { return i % 7 == 3 ? 2 + i % 5 : 0; };
  for (int i = 0; i < kStreams; ++i) {
    const bool with_callback = i % 2 == 1;
    if (with_callback) {
      collected[i] = std::make_unique<Collected>();
      collected[i]->cancel_after = cancel_after(i);
    }
    streams[i] = submit(e, requests[i], nullptr, with_callback ? Collected::on_event : nullptr,
                        with_callback ? collected[i].get() : nullptr);
    ASSERT_EQ(m3_stream_push_tokens(streams[i], requests[i].prompt.data(), requests[i].prompt.size()), M3_OK)
        << m3_last_error();
    if (!with_callback) readers.emplace_back([&, i] { got[i] = pull(streams[i], cancel_after(i)); });
    // Arrive in waves while earlier streams are decoding.
    if (i % 16 == 15) {
      const int64_t before = stat(e, M3_ENGINE_GENERATED_TOKENS);
      EXPECT_TRUE(eventually([&] { return stat(e, M3_ENGINE_GENERATED_TOKENS) > before + 20; }));
    }
  }
  for (auto& t : readers) t.join();
  for (int i = 0; i < kStreams; ++i)
    if (collected[i]) got[i] = collected[i]->wait();

  int cancelled = 0;
  for (int i = 0; i < kStreams; ++i) {
    if (cancel_after(i) > 0 && got[i].finish == M3_FINISH_CANCELLED) {
      ++cancelled;
      EXPECT_GE(static_cast<int>(got[i].tokens.size()), cancel_after(i)) << "stream " << i;
      EXPECT_TRUE(is_prefix(got[i].tokens, expected[i].tokens)) << "stream " << i;
      continue;
    }
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "stream " << i;
    EXPECT_EQ(got[i].text, expected[i].text) << "stream " << i;
    EXPECT_EQ(got[i].finish, expected[i].finish) << "stream " << i;
  }
  EXPECT_GT(cancelled, 0) << "no cancellation landed before its stream's end";
  EXPECT_GT(stat(e, M3_ENGINE_STEPS), 0);
  for (m3_stream* s : streams) m3_stream_free(s);
  EXPECT_TRUE(eventually([&] { return stat(e, M3_ENGINE_LIVE_STREAMS) == 0; }));
  m3_engine_free(e);
}

TEST_F(Engine, BatchedStepsReallyBatch) {
  // The equality above would hold trivially if streams ran one at a time.
  m3_engine* e = engine();
  constexpr int kStreams = 8;
  std::vector<m3_stream*> streams;
  Request r;
  r.max_tokens = 40;
  r.prompt = test::random_tokens(5, vocab_, 3);
  int64_t largest = 0;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(start(e, r));
  }
  std::vector<std::thread> readers;
  for (m3_stream* s : streams) readers.emplace_back([s] { pull(s); });
  while (largest < kStreams && stat(e, M3_ENGINE_GENERATED_TOKENS) < kStreams * r.max_tokens) {
    largest = std::max(largest, stat(e, M3_ENGINE_LAST_BATCH));
    std::this_thread::yield();
  }
  for (auto& t : readers) t.join();
  largest = std::max(largest, stat(e, M3_ENGINE_LAST_BATCH));
  EXPECT_GT(largest, 1) << "every decode step ran a single stream";
  EXPECT_LT(stat(e, M3_ENGINE_STEPS), kStreams * r.max_tokens) << "no step decoded more than one stream";
  for (m3_stream* s : streams) m3_stream_free(s);
  m3_engine_free(e);
}

TEST_F(Engine, PrefixSharingByForkContinuesFromTheSharedState) {
  const auto system = test::random_tokens(120, vocab_, 11);
  m3_session* prefix = nullptr;
  ASSERT_EQ(m3_session_create(model_, &prefix), M3_OK);
  ASSERT_EQ(m3_session_feed(prefix, system.data(), system.size(), M3_LOGITS_NONE, nullptr, 0), M3_OK);
  std::vector<uint8_t> blob_before(static_cast<size_t>(test::info(model_, M3_INFO_STATE_BLOB_BYTES)));
  size_t n = 0;
  ASSERT_EQ(m3_session_save(prefix, blob_before.data(), blob_before.size(), &n), M3_OK);

  m3_engine* e = engine();
  for (int i = 0; i < 4; ++i) {
    Request r;
    r.prompt = test::random_tokens(3 + 10 * i, vocab_, 20 + i);
    r.max_tokens = 12;
    r.temperature = 0.8f;
    r.seed = i;
    // Alone: a session holding the same prefix, then the request.
    m3_session* copy = nullptr;
    ASSERT_EQ(m3_session_fork(prefix, &copy), M3_OK);
    const Output expected = alone(r, copy);
    m3_session_free(copy);
    // And it differs from the request without the prefix, so the prefix was used.
    EXPECT_NE(alone(r).tokens, expected.tokens);

    m3_stream* s = start(e, r, prefix);
    const Output got = pull(s);
    EXPECT_EQ(got.tokens, expected.tokens) << "request " << i;
    m3_stream_free(s);
  }
  std::vector<uint8_t> blob_after(blob_before.size());
  ASSERT_EQ(m3_session_save(prefix, blob_after.data(), blob_after.size(), &n), M3_OK);
  EXPECT_EQ(blob_after, blob_before) << "submitting changed the prefix session";
  m3_engine_free(e);
  m3_session_free(prefix);
}

TEST_F(Engine, ADialogueTurnAfterAFinishContinuesTheStream) {
  Request first;
  first.prompt = test::random_tokens(30, vocab_, 5);
  first.max_tokens = 10;
  first.temperature = 0.9f;
  first.seed = 3;
  const auto second_input = test::random_tokens(7, vocab_, 6);

  // Alone: the same two turns through m3_generation.
  m3_session* session = nullptr;
  ASSERT_EQ(m3_session_create(model_, &session), M3_OK);
  m3_gen_params* p = params_for(first);
  m3_generation* g = nullptr;
  ASSERT_EQ(m3_generation_create(session, p, &g), M3_OK);
  std::vector<int32_t> expected[2];
  for (int turn = 0; turn < 2; ++turn) {
    const auto& input = turn == 0 ? first.prompt : second_input;
    ASSERT_EQ(m3_generation_push_tokens(g, input.data(), input.size()), M3_OK);
    expected[turn] = run_turn(g).tokens;
  }
  m3_generation_free(g);
  m3_gen_params_destroy(p);
  m3_session_free(session);

  m3_engine* e = engine();
  m3_stream* s = start(e, first);
  const Output one = pull(s);
  EXPECT_EQ(one.tokens, expected[0]);
  EXPECT_EQ(one.finish, M3_FINISH_MAX_TOKENS);
  // Until new input arrives, the finish is reported again at once.
  int32_t token = 0;
  size_t len = 1;
  m3_finish_reason finish = M3_FINISH_NONE;
  char piece[64];
  ASSERT_EQ(m3_stream_next(s, 0, &token, piece, sizeof piece, &len, &finish), M3_OK);
  EXPECT_EQ(token, -1);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(finish, M3_FINISH_MAX_TOKENS);
  ASSERT_EQ(m3_stream_push_tokens(s, second_input.data(), second_input.size()), M3_OK);
  EXPECT_EQ(pull(s).tokens, expected[1]);
  m3_stream_free(s);
  m3_engine_free(e);
}

TEST_F(Engine, InputPushedWhileGeneratingIsFedBeforeTheNextToken) {
  // The callback runs on the scheduler thread, so input it pushes after token k lands
  // exactly between tokens k and k+1: the same as m3_generation with a push after k.
  Request r;
  r.prompt = test::random_tokens(25, vocab_, 8);
  r.max_tokens = 20;
  const auto live = test::random_tokens(9, vocab_, 9);
  const Output expected = alone(r, nullptr, {{6, live}});
  EXPECT_NE(expected.tokens, alone(r).tokens) << "the pushed input changed nothing";

  m3_engine* e = engine();
  Collected c;
  c.push_after = 6;
  c.push = live;
  m3_stream* s = submit(e, r, nullptr, Collected::on_event, &c);
  c.self = s;
  ASSERT_EQ(m3_stream_push_tokens(s, r.prompt.data(), r.prompt.size()), M3_OK);
  EXPECT_EQ(c.wait().tokens, expected.tokens);
  m3_stream_free(s);
  m3_engine_free(e);
}

TEST_F(Engine, ASlowReaderPausesOnlyItsOwnStream) {
  constexpr int kCapacity = 4;
  m3_engine* e = engine(256, kCapacity);
  Request r;
  r.prompt = test::random_tokens(10, vocab_, 12);
  r.max_tokens = 60;
  const Output expected = alone(r);
  m3_stream* slow = start(e, r);
  ASSERT_TRUE(eventually([&] { return stat(e, M3_ENGINE_PAUSED_STREAMS) == 1; })) << "the unread stream never paused";

  // Another stream runs to its end meanwhile.
  m3_stream* fast = start(e, r);
  EXPECT_EQ(pull(fast).tokens, expected.tokens);

  double made = 0;
  ASSERT_EQ(m3_stream_stat(slow, M3_STAT_GENERATED_TOKENS, &made), M3_OK);
  EXPECT_EQ(made, kCapacity) << "the paused stream kept generating";
  EXPECT_EQ(pull(slow).tokens, expected.tokens);  // and resumes where it paused
  m3_stream_free(slow);
  m3_stream_free(fast);
  m3_engine_free(e);
}

TEST_F(Engine, CancelFromAnotherThreadEndsTheTurnAndTheStreamCanGoOn) {
  m3_engine* e = engine();
  Request r;
  r.prompt = test::random_tokens(10, vocab_, 13);
  r.max_tokens = 100000;
  m3_stream* s = start(e, r);
  std::thread canceller([&] {
    double made = 0;
    eventually([&] { return m3_stream_stat(s, M3_STAT_GENERATED_TOKENS, &made) == M3_OK && made >= 5; });
    EXPECT_EQ(m3_stream_cancel(s), M3_OK);
  });
  const Output out = pull(s);
  canceller.join();
  EXPECT_EQ(out.finish, M3_FINISH_CANCELLED);
  EXPECT_LT(out.tokens.size(), 100000u);
  // A new turn on the same stream.
  const int32_t more[] = {1, 2, 3};
  ASSERT_EQ(m3_stream_push_tokens(s, more, 3), M3_OK);
  int32_t token = -1;
  size_t len = 0;
  char piece[256];
  m3_finish_reason finish = M3_FINISH_NONE;
  ASSERT_EQ(m3_stream_next(s, kPatienceMs, &token, piece, sizeof piece, &len, &finish), M3_OK) << m3_last_error();
  EXPECT_GE(token, 0);
  m3_stream_free(s);
  m3_engine_free(e);
}

TEST_F(Engine, FreeingRunningStreamsReleasesTheirSlots) {
  m3_engine* e = engine();
  Request r;
  r.prompt = test::random_tokens(50, vocab_, 14);
  r.max_tokens = 100000;
  std::vector<m3_stream*> streams;
  for (int i = 0; i < 6; ++i) {
    streams.push_back(start(e, r));
  }
  EXPECT_EQ(stat(e, M3_ENGINE_LIVE_STREAMS), 6);
  ASSERT_TRUE(eventually([&] { return stat(e, M3_ENGINE_GENERATED_TOKENS) > 12; }));
  for (m3_stream* s : streams) m3_stream_free(s);
  EXPECT_TRUE(eventually([&] { return stat(e, M3_ENGINE_LIVE_STREAMS) == 0; })) << "freed streams stayed live";
  EXPECT_TRUE(eventually([&] { return stat(e, M3_ENGINE_RUNNING_STREAMS) == 0; }));
  m3_engine_free(e);
}

TEST_F(Engine, FreeingTheEngineCancelsItsStreams) {
  m3_engine* e = engine();
  Request r;
  r.prompt = test::random_tokens(20, vocab_, 15);
  r.max_tokens = 100000;
  m3_stream* running = submit(e, r);
  m3_stream* idle = submit(e, r);
  ASSERT_EQ(m3_stream_push_tokens(running, r.prompt.data(), r.prompt.size()), M3_OK);
  double made = 0;
  ASSERT_TRUE(eventually([&] { return m3_stream_stat(running, M3_STAT_GENERATED_TOKENS, &made) == M3_OK && made > 2; }));
  m3_engine_free(e);
  EXPECT_EQ(pull(running).finish, M3_FINISH_CANCELLED);
  EXPECT_EQ(m3_stream_push_tokens(idle, r.prompt.data(), r.prompt.size()), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("engine"), std::string::npos) << m3_last_error();
  int32_t token = 0;
  size_t len = 0;
  char piece[16];
  EXPECT_EQ(m3_stream_next(idle, 1000, &token, piece, sizeof piece, &len, nullptr), M3_ERR_INVALID_ARGUMENT);
  m3_stream_free(running);
  m3_stream_free(idle);
}

TEST_F(Engine, NoCallbackArrivesAfterItsStreamIsFreed) {
  m3_engine* e = engine();
  Request r;
  r.prompt = test::random_tokens(10, vocab_, 17);
  r.max_tokens = 100000;
  auto c = std::make_unique<Collected>();
  m3_stream* s = submit(e, r, nullptr, Collected::on_event, c.get());
  ASSERT_EQ(m3_stream_push_tokens(s, r.prompt.data(), r.prompt.size()), M3_OK);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> lock(c->mutex);
    return c->out.tokens.size() > 5;
  }));
  m3_stream_free(s);
  size_t seen = 0;
  {
    std::lock_guard<std::mutex> lock(c->mutex);
    seen = c->out.tokens.size();
    c->self = nullptr;
  }
  m3_engine_free(e);  // at once: the stream may not be retired yet, and must get no final cancel
  std::lock_guard<std::mutex> lock(c->mutex);
  EXPECT_EQ(c->out.tokens.size(), seen) << "tokens arrived after m3_stream_free returned";
  EXPECT_FALSE(c->done) << "a finish arrived after m3_stream_free returned";
}

// Blocks the scheduler inside a callback until released.
struct Gate {
  std::mutex mutex;
  std::condition_variable cv;
  bool entered = false, open = false;
  static int on_event(void* user, int32_t, const char*, size_t, m3_finish_reason) {
    auto* g = static_cast<Gate*>(user);
    std::unique_lock<std::mutex> lock(g->mutex);
    g->entered = true;
    g->cv.notify_all();
    g->cv.wait(lock, [&] { return g->open; });
    return 0;
  }
};

TEST_F(Engine, NextTimesOutAndKeepsAnEventTheBufferWasTooSmallFor) {
  m3_engine* e = engine();
  Request r;
  r.prompt = test::random_tokens(8, vocab_, 16);
  r.max_tokens = 3;
  Gate gate;
  m3_stream* blocker = submit(e, r, nullptr, Gate::on_event, &gate);
  ASSERT_EQ(m3_stream_push_tokens(blocker, r.prompt.data(), r.prompt.size()), M3_OK);
  {
    std::unique_lock<std::mutex> lock(gate.mutex);
    ASSERT_TRUE(gate.cv.wait_for(lock, std::chrono::milliseconds(kPatienceMs), [&] { return gate.entered; }));
  }
  // The scheduler is held: nothing can arrive.
  m3_stream* s = start(e, r);
  int32_t token = 0;
  size_t len = 0;
  m3_finish_reason finish = M3_FINISH_NONE;
  EXPECT_EQ(m3_stream_next(s, 30, &token, nullptr, 0, &len, &finish), M3_ERR_TIMEOUT);
  {
    std::lock_guard<std::mutex> lock(gate.mutex);
    gate.open = true;
  }
  gate.cv.notify_all();

  // Pieces of the bundled model's tokens are never empty: a zero-size buffer is too small,
  // and the event waits for a larger one.
  ASSERT_EQ(m3_stream_next(s, kPatienceMs, &token, nullptr, 0, &len, &finish), M3_ERR_BUFFER_TOO_SMALL);
  ASSERT_GT(len, 0u);
  std::vector<char> piece(len);
  int32_t again = -1;
  ASSERT_EQ(m3_stream_next(s, 0, &again, piece.data(), piece.size(), &len, &finish), M3_OK);
  EXPECT_EQ(again, token);
  Request alone_request = r;
  EXPECT_EQ(again, alone(alone_request).tokens.at(0));
  m3_stream_free(s);
  m3_stream_free(blocker);
  m3_engine_free(e);
}

TEST_F(Engine, LimitsAndBadInputGiveClearErrors) {
  m3_engine_params* p = nullptr;
  ASSERT_EQ(m3_engine_params_create(&p), M3_OK);
  EXPECT_EQ(m3_engine_params_set_max_batch(p, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("max_batch"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_engine_params_set_max_streams(p, -1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_params_set_prefill_chunk(p, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_params_set_prefill_budget(p, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_params_set_queue_capacity(p, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_params_set_max_batch(nullptr, 4), M3_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(m3_engine_params_set_max_streams(p, 2), M3_OK);
  m3_engine* e = nullptr;
  EXPECT_EQ(m3_engine_create(nullptr, p, &e), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(e, nullptr);
  EXPECT_EQ(m3_engine_create(model_, p, nullptr), M3_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(m3_engine_create(model_, p, &e), M3_OK);
  m3_engine_params_destroy(p);

  m3_stream* a = nullptr;
  m3_stream* b = nullptr;
  m3_stream* c = nullptr;
  ASSERT_EQ(m3_engine_submit(e, nullptr, nullptr, nullptr, nullptr, &a), M3_OK);
  ASSERT_EQ(m3_engine_submit(e, nullptr, nullptr, nullptr, nullptr, &b), M3_OK);
  EXPECT_EQ(m3_engine_submit(e, nullptr, nullptr, nullptr, nullptr, &c), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_NE(std::string(m3_last_error()).find("max_streams"), std::string::npos) << m3_last_error();
  EXPECT_EQ(c, nullptr);
  EXPECT_EQ(m3_engine_submit(nullptr, nullptr, nullptr, nullptr, nullptr, &c), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_submit(e, nullptr, nullptr, nullptr, nullptr, nullptr), M3_ERR_INVALID_ARGUMENT);

  const int32_t bad = static_cast<int32_t>(vocab_);
  EXPECT_EQ(m3_stream_push_tokens(a, &bad, 1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("out of range"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_stream_push_tokens(a, nullptr, 3), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_push_tokens(nullptr, &bad, 1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_push_text(a, nullptr, 4), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_push_text(a, "", 0), M3_ERR_INVALID_ARGUMENT);
  int32_t token = 0;
  size_t len = 0;
  char piece[8];
  EXPECT_EQ(m3_stream_next(a, 0, &token, piece, sizeof piece, &len, nullptr), M3_ERR_INVALID_ARGUMENT)
      << "next before any input";
  EXPECT_EQ(m3_stream_next(a, 0, nullptr, piece, sizeof piece, &len, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_next(nullptr, 0, &token, piece, sizeof piece, &len, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_cancel(nullptr), M3_ERR_INVALID_ARGUMENT);
  double v = 0;
  EXPECT_EQ(m3_stream_stat(nullptr, M3_STAT_TTFT_MS, &v), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_stream_stat(a, static_cast<m3_gen_stat>(99), &v), M3_ERR_INVALID_ARGUMENT);
  int64_t n = 0;
  EXPECT_EQ(m3_engine_stat(nullptr, M3_ENGINE_STEPS, &n), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_engine_stat(e, static_cast<m3_engine_stat_key>(99), &n), M3_ERR_INVALID_ARGUMENT);
  m3_stream_free(nullptr);
  m3_engine_free(nullptr);

  // A callback stream has no pull queue.
  Collected collected;
  m3_stream_free(b);
  ASSERT_EQ(m3_engine_submit(e, nullptr, nullptr, Collected::on_event, &collected, &b), M3_OK) << m3_last_error();
  EXPECT_EQ(m3_stream_next(b, 0, &token, piece, sizeof piece, &len, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("callback"), std::string::npos) << m3_last_error();

  // A prefix session of another model.
  m3_model* other = test::load(std::string(test::kGoldenDir) + "/siso_basic");
  m3_session* foreign = nullptr;
  ASSERT_EQ(m3_session_create(other, &foreign), M3_OK);
  m3_stream_free(a);
  EXPECT_EQ(m3_engine_submit(e, nullptr, foreign, nullptr, nullptr, &a), M3_ERR_MODEL_MISMATCH);
  m3_session_free(foreign);
  m3_model_free(other);
  m3_stream_free(b);
  m3_engine_free(e);
}

TEST_F(Engine, TextPromptsGetSpecialTokensOnlyAtTheStart) {
  m3_engine* e = engine();
  const std::string prompt = "The jury said";
  Request r;
  r.max_tokens = 8;
  // Alone, through m3_generation_push_text.
  m3_session* session = nullptr;
  ASSERT_EQ(m3_session_create(model_, &session), M3_OK);
  m3_gen_params* p = params_for(r);
  m3_generation* g = nullptr;
  ASSERT_EQ(m3_generation_create(session, p, &g), M3_OK);
  ASSERT_EQ(m3_generation_push_text(g, prompt.data(), prompt.size()), M3_OK);
  const std::string expected = run_turn(g).text;
  m3_generation_free(g);
  m3_gen_params_destroy(p);
  m3_session_free(session);

  m3_stream* s = submit(e, r);
  ASSERT_EQ(m3_stream_push_text(s, prompt.data(), prompt.size()), M3_OK) << m3_last_error();
  EXPECT_EQ(pull(s).text, expected);
  double prompt_tokens = 0, ttft = 0;
  ASSERT_EQ(m3_stream_stat(s, M3_STAT_PROMPT_TOKENS, &prompt_tokens), M3_OK);
  ASSERT_EQ(m3_stream_stat(s, M3_STAT_TTFT_MS, &ttft), M3_OK);
  EXPECT_GT(prompt_tokens, 0);
  EXPECT_GE(ttft, 0);
  m3_stream_free(s);
  m3_engine_free(e);
}

}  // namespace
