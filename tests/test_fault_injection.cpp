// Fault injection on the public API: every heap allocation a call makes is made to fail in
// turn (the n-th allocation of the calling thread throws std::bad_alloc, for n = 1, 2, ...
// until the call makes no more), and truncated model files. Each failed call must return a
// status and a message, leak nothing (heap bytes, handles, file descriptors) and, for calls on
// a session, leave the session exactly as it was (mamba3rt.h: "Failure leaves things as they
// were"). Its own executable: it replaces the global operator new.
#include <dirent.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <new>
#include <string>
#include <vector>

#include "replaced_operator_new.h"
#include "test_support.h"

// ---------------------------------------------------------------------------------------
// The allocation hook (replaced_operator_new.h counts the live bytes): once armed on a
// thread, it fails that thread's n-th allocation, the library's included.

namespace {
thread_local long long t_countdown = 0;  // 0: not armed
thread_local bool t_fired = false;

void arm(long long n) {
  t_fired = false;
  t_countdown = n;
}
// Disarms; true if the armed failure happened.
bool disarm() {
  t_countdown = 0;
  return t_fired;
}
}  // namespace

void before_allocation(std::size_t) {
  if (t_countdown > 0 && --t_countdown == 0) {
    t_fired = true;
    throw std::bad_alloc();
  }
}

namespace {

const std::string kGolden = std::string(test::kGoldenDir) + "/siso_basic";
const std::string kBundled = "../models/default";  // with a tokenizer

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}

// What must be unchanged by a failed call: heap, handles, descriptors.
struct Footprint {
  long long bytes;
  int64_t handles;
  int fds;
  static Footprint now() { return {g_live_bytes.load(), m3_live_handles(), open_fds()}; }
};

m3_model* load(const std::string& dir) {
  m3_model_params* params = nullptr;
  EXPECT_EQ(m3_model_params_create(&params), M3_OK);
  EXPECT_EQ(m3_model_params_set_threads(params, 1), M3_OK);  // every allocation on this thread
  m3_model* model = nullptr;
  EXPECT_EQ(m3_model_load(dir.c_str(), params, &model), M3_OK) << m3_last_error();
  m3_model_params_destroy(params);
  return model;
}

class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override {
    // The thread's error message keeps its capacity once grown: grow it first, so that the
    // messages of the failures below do not count as leaked bytes.
    m3_model* none = nullptr;
    const std::string long_path(400, 'x');
    EXPECT_NE(m3_model_load(long_path.c_str(), nullptr, &none), M3_OK);
  }

  // Every handle a test made, by its calls or by the runs below, must be freed by its end.
  void TearDown() override { EXPECT_EQ(m3_live_handles(), 0) << "handles left unfreed"; }

  // Runs call() with its n-th allocation failing, for every n until it makes no more.
  // Each failed run: a status other than M3_OK, a message, the footprint unchanged, and
  // unchanged() true. Returns the number of failures injected.
  int for_each_failure(const char* what, const std::function<m3_status()>& call,
                       const std::function<bool()>& unchanged = {}, const std::function<void()>& undo_success = {}) {
    SCOPED_TRACE(what);
    int injected = 0;
    for (long long n = 1; n < 1000000; ++n) {
      const Footprint before = Footprint::now();
      arm(n);
      const m3_status status = call();
      const bool fired = disarm();
      if (!fired) {
        EXPECT_EQ(status, M3_OK) << m3_last_error();
        std::printf("[ metrics  ] %s: %d allocations failed in turn\n", what, injected);
        return injected;
      }
      ++injected;
      if (status == M3_OK) {  // the failure was absorbed: a valid outcome; undo it for the next run
        if (undo_success) undo_success();
        continue;
      }
      EXPECT_EQ(status, M3_ERR_OUT_OF_MEMORY) << "allocation " << n << ": " << m3_last_error();
      EXPECT_STRNE(m3_last_error(), "") << "allocation " << n;
      const Footprint after = Footprint::now();
      EXPECT_EQ(after.bytes, before.bytes) << "heap bytes leaked by the failure of allocation " << n;
      EXPECT_EQ(after.handles, before.handles) << "handle leaked by the failure of allocation " << n;
      EXPECT_EQ(after.fds, before.fds) << "file descriptor leaked by the failure of allocation " << n;
      if (unchanged) {
        EXPECT_TRUE(unchanged()) << "state changed by the failed call (allocation " << n << ")";
      }
      if (::testing::Test::HasFailure()) return injected;
    }
    ADD_FAILURE() << "the call never stopped allocating";
    return injected;
  }
};

// The session's whole observable state: its saved blob and token count.
struct Snapshot {
  std::vector<uint8_t> blob;
  int64_t n_tokens = -1;
  bool operator==(const Snapshot&) const = default;
};
Snapshot snapshot(const m3_session* s) {
  Snapshot snap;
  size_t size = 0;
  m3_session_save(s, nullptr, 0, &size);
  snap.blob.resize(size);
  EXPECT_EQ(m3_session_save(s, snap.blob.data(), size, &size), M3_OK);
  EXPECT_EQ(m3_session_n_tokens(s, &snap.n_tokens), M3_OK);
  return snap;
}

TEST_F(FaultInjection, ModelLoadFailsCleanlyAtEveryAllocation) {
  m3_model* model = nullptr;
  const int injected = for_each_failure(
      "model_load", [&] { return m3_model_load(kGolden.c_str(), nullptr, &model); }, [&] { return model == nullptr; },
      [&] { m3_model_free(model), model = nullptr; });
  EXPECT_GT(injected, 10);
  m3_model_free(model);
}

TEST_F(FaultInjection, SessionCallsFailCleanlyAndLeaveTheSessionAsItWas) {
  m3_model* model = load(kGolden);
  ASSERT_NE(model, nullptr);
  const int64_t vocab = test::info(model, M3_INFO_VOCAB_SIZE);
  const size_t padded = static_cast<size_t>(test::info(model, M3_INFO_VOCAB_PADDED));
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  const auto prompt = test::random_tokens(20, vocab, 1);
  ASSERT_EQ(m3_session_feed(s, prompt.data(), 10, M3_LOGITS_NONE, nullptr, 0), M3_OK);
  std::vector<float> logits(prompt.size() * padded);

  // Calls that change the session: after a failure it is as it was; after a success the
  // next run starts again from the same state.
  Snapshot before = snapshot(s);
  const auto unchanged = [&] { return snapshot(s) == before; };
  const auto restore_before = [&] { ASSERT_EQ(m3_session_restore(s, before.blob.data(), before.blob.size()), M3_OK); };
  const auto check_changing = [&](const char* what, const std::function<m3_status()>& call) {
    for_each_failure(what, call, unchanged, restore_before);
    restore_before();
    // Reset n_tokens too: restore sets it from the blob.
    EXPECT_TRUE(unchanged());
  };
  check_changing("feed", [&] {
    return m3_session_feed(s, prompt.data(), prompt.size(), M3_LOGITS_ALL, logits.data(), logits.size());
  });
  check_changing("step", [&] { return m3_session_step(s, prompt[3], logits.data(), logits.size()); });
  m3_session* other = nullptr;
  ASSERT_EQ(m3_session_create(model, &other), M3_OK);
  m3_session* pair[2] = {s, other};
  const int32_t tokens[2] = {prompt[4], prompt[5]};
  const Snapshot other_before = snapshot(other);
  check_changing("decode_batch", [&] {
    const m3_status st = m3_decode_batch(pair, tokens, 2, logits.data(), logits.size());
    if (st == M3_OK) m3_session_restore(other, other_before.blob.data(), other_before.blob.size());
    return st;
  });
  EXPECT_TRUE(snapshot(other) == other_before);
  check_changing("reset", [&] { return m3_session_reset(s); });

  // A restore of another state: on failure the old one stays.
  m3_session* source = nullptr;
  ASSERT_EQ(m3_session_create(model, &source), M3_OK);
  ASSERT_EQ(m3_session_feed(source, prompt.data(), 3, M3_LOGITS_NONE, nullptr, 0), M3_OK);
  const Snapshot other_state = snapshot(source);
  check_changing("restore", [&] { return m3_session_restore(s, other_state.blob.data(), other_state.blob.size()); });

  // Calls that create or only read: nothing is created on failure and the source is as it was.
  m3_session* fork = nullptr;
  {
    for_each_failure(
        "fork", [&] { return m3_session_fork(s, &fork); }, [&] { return fork == nullptr && unchanged(); },
        [&] { m3_session_free(fork), fork = nullptr; });
  }
  m3_session_free(fork);
  m3_session* created = nullptr;
  {
    for_each_failure(
        "create", [&] { return m3_session_create(model, &created); }, [&] { return created == nullptr; },
        [&] { m3_session_free(created), created = nullptr; });
  }
  m3_session_free(created);
  std::vector<uint8_t> blob(before.blob.size());
  size_t size = 0;
  {
    for_each_failure(
        "save", [&] { return m3_session_save(s, blob.data(), blob.size(), &size); }, unchanged);
  }
  EXPECT_TRUE(blob == before.blob);

  m3_session_free(source);
  m3_session_free(other);
  m3_session_free(s);
  m3_model_free(model);
}

TEST_F(FaultInjection, TokenizerAndGenerationFailCleanly) {
  m3_tokenizer* tok = nullptr;
  {
    // A small tokenizer.json: the bundled one takes minutes this way.
    const std::string small = "data/tokenizers/tiny_301.json";
    for_each_failure(
        "tokenizer_load", [&] { return m3_tokenizer_load(small.c_str(), &tok); }, [&] { return tok == nullptr; },
        [&] { m3_tokenizer_free(tok), tok = nullptr; });
    m3_tokenizer_free(tok);
  }
  const std::string path = kBundled + "/tokenizer.json";
  ASSERT_EQ(m3_tokenizer_load(path.c_str(), &tok), M3_OK);
  const std::string text = "Hello, fault injection: every allocation fails once.";
  std::vector<int32_t> ids(256);
  size_t n = 0;
  // Once without failures first: the BPE cache keeps the words (bounded), which is not a leak.
  ASSERT_EQ(m3_tokenize(tok, text.data(), text.size(), 1, ids.data(), ids.size(), &n), M3_OK);
  {
    for_each_failure("tokenize",
                     [&] { return m3_tokenize(tok, text.data(), text.size(), 1, ids.data(), ids.size(), &n); });
  }
  ids.resize(n);
  std::vector<char> out(1024);
  size_t len = 0;
  {
    for_each_failure("detokenize",
                     [&] { return m3_detokenize(tok, ids.data(), ids.size(), 0, out.data(), out.size(), &len); });
  }
  m3_tokenizer_free(tok);

  m3_model* model = load(kBundled);
  ASSERT_NE(model, nullptr);
  const m3_tokenizer* model_tok = nullptr;
  ASSERT_EQ(m3_model_tokenizer(model, &model_tok), M3_OK);
  ids.resize(256);
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  m3_gen_params* params = nullptr;
  ASSERT_EQ(m3_gen_params_create(&params), M3_OK);
  ASSERT_EQ(m3_gen_params_set_seed(params, 5), M3_OK);
  ASSERT_EQ(m3_gen_params_set_max_tokens(params, 4), M3_OK);
  m3_generation* gen = nullptr;
  {
    for_each_failure(
        "generation_create", [&] { return m3_generation_create(s, params, &gen); }, [&] { return gen == nullptr; },
        [&] { m3_generation_free(gen), gen = nullptr; });
  }
  ASSERT_NE(gen, nullptr);  // created by the last, successful run of the loop
  ASSERT_EQ(m3_tokenize(model_tok, text.data(), text.size(), 0, ids.data(), ids.size(), &n),
            M3_OK);  // the cache, as above
  {
    const Snapshot before = snapshot(s);
    for_each_failure(
        "generation_push_text", [&] { return m3_generation_push_text(gen, text.data(), text.size()); },
        [&] { return snapshot(s) == before; }, [&] {});  // pushed text queues without touching the state
  }
  m3_generation_free(gen);
  m3_gen_params_destroy(params);
  m3_session_free(s);
  m3_model_free(model);
}

// Truncated checkpoints, at every tenth of the file and in the header: a clear error and
// nothing leaked.
TEST_F(FaultInjection, TruncatedModelFilesGiveErrorsAndLeakNothing) {
  const std::string dir = test::copy_to_temp(kGolden);
  const std::string file = dir + "/model.safetensors";
  const auto full = std::filesystem::file_size(file);
  std::vector<std::uintmax_t> sizes = {0, 1, 7, 8, 9, 64};
  for (int tenth = 1; tenth < 10; ++tenth) sizes.push_back(full * tenth / 10);
  sizes.push_back(full - 1);
  std::vector<char> bytes(full);
  {
    FILE* f = std::fopen(file.c_str(), "rb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fread(bytes.data(), 1, full, f), full);
    std::fclose(f);
  }
  for (const auto size : sizes) {
    FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(bytes.data(), 1, size, f);
    std::fclose(f);
    const Footprint before = Footprint::now();
    m3_model* model = nullptr;
    const m3_status status = m3_model_load(dir.c_str(), nullptr, &model);
    EXPECT_EQ(status, M3_ERR_FORMAT) << size << " of " << full << " bytes: " << m3_last_error();
    EXPECT_EQ(model, nullptr);
    EXPECT_STRNE(m3_last_error(), "");
    const Footprint after = Footprint::now();
    EXPECT_EQ(after.bytes, before.bytes) << size << " bytes";
    EXPECT_EQ(after.handles, before.handles) << size << " bytes";
    EXPECT_EQ(after.fds, before.fds) << size << " bytes";
  }
  test::remove_tree(dir);
}

}  // namespace
