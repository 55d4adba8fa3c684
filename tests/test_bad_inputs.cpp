// Bad input gets the right status and a message naming the problem; nothing crashes,
// and a failed call leaves the session as it was.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "model/mapped_file.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

const std::string kSiso = std::string(test::kGoldenDir) + "/siso_basic";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Loads dir and expects failure with `status` and a message containing `needle`.
void expect_load_error(const std::string& dir, m3_status status, const std::string& needle) {
  m3_model* model = reinterpret_cast<m3_model*>(0x1);
  EXPECT_EQ(m3_model_load(dir.c_str(), nullptr, &model), status) << m3_last_error();
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(m3_last_error()).find(needle), std::string::npos)
      << "message '" << m3_last_error() << "' does not mention '" << needle << "'";
}

// A copy of siso_basic whose safetensors is rewritten by `edit` (on float32 tensors).
class ModelDir {
 public:
  ModelDir() : dir_(test::copy_to_temp(kSiso)) {}
  ~ModelDir() { test::remove_tree(dir_); }
  const std::string& path() const { return dir_; }
  std::string weights() const { return dir_ + "/model.safetensors"; }

  template <class Edit>
  void rewrite_tensors(Edit edit) {
    std::vector<m3::OwnedTensor> tensors;
    {
      m3::MappedFile f(weights());
      std::vector<std::vector<uint64_t>> copies;
      for (const auto& t : m3::read_safetensors(f, copies)) {
        const auto* p = static_cast<const uint8_t*>(t.data);
        tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
      }
    }
    edit(tensors);
    m3::write_safetensors(weights(), tensors);
  }
  void set_config(const std::string& text) { write_file(dir_ + "/config.json", text); }
  std::string config() const { return read_file(dir_ + "/config.json"); }

 private:
  std::string dir_;
};

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

TEST(BadModelFiles, MissingDirectory) { expect_load_error("/nonexistent/model", M3_ERR_IO, "/nonexistent/model"); }

TEST(BadModelFiles, PathIsAFile) { expect_load_error(kSiso + "/config.json", M3_ERR_IO, "not a directory"); }

TEST(BadModelFiles, MissingConfig) {
  ModelDir d;
  fs::remove(d.path() + "/config.json");
  expect_load_error(d.path(), M3_ERR_IO, "config.json");
}

TEST(BadModelFiles, MissingWeights) {
  ModelDir d;
  fs::remove(d.weights());
  expect_load_error(d.path(), M3_ERR_IO, "model.safetensors or pytorch_model.bin");
}

TEST(BadModelFiles, MissingTensor) {
  ModelDir d;
  d.rewrite_tensors([](auto& ts) {
    std::erase_if(ts, [](const m3::OwnedTensor& t) { return t.name == "backbone.layers.1.mixer.dt_bias"; });
  });
  expect_load_error(d.path(), M3_ERR_FORMAT, "backbone.layers.1.mixer.dt_bias");
}

TEST(BadModelFiles, WrongShape) {
  ModelDir d;
  d.rewrite_tensors([](auto& ts) {
    for (auto& t : ts)
      if (t.name == "backbone.layers.0.mixer.out_proj.weight") t.shape = {128, 64};  // transposed
  });
  expect_load_error(d.path(), M3_ERR_FORMAT, "out_proj.weight' has shape [128, 64], expected [64, 128]");
}

TEST(BadModelFiles, WrongDtype) {
  ModelDir d;
  d.rewrite_tensors([](auto& ts) {
    for (auto& t : ts)
      if (t.name == "backbone.norm_f.weight") t.dtype = m3::DType::I32;
  });
  expect_load_error(d.path(), M3_ERR_FORMAT, "norm_f.weight' has dtype I32");
}

TEST(BadModelFiles, UnexpectedTensor) {
  ModelDir d;
  d.rewrite_tensors([](auto& ts) {
    ts.push_back({"backbone.layers.0.mixer.conv1d.weight", m3::DType::F32, {1}, std::vector<uint8_t>(4)});
  });
  expect_load_error(d.path(), M3_ERR_FORMAT, "conv1d.weight");
}

TEST(BadModelFiles, TruncatedSafetensorsHeader) {
  ModelDir d;
  const std::string bytes = read_file(d.weights());
  write_file(d.weights(), bytes.substr(0, 5));
  expect_load_error(d.path(), M3_ERR_FORMAT, "truncated");
  write_file(d.weights(), bytes.substr(0, 200));  // cut inside the JSON header
  expect_load_error(d.path(), M3_ERR_FORMAT, "truncated");
}

TEST(BadModelFiles, TruncatedSafetensorsData) {
  ModelDir d;
  const std::string bytes = read_file(d.weights());
  write_file(d.weights(), bytes.substr(0, bytes.size() - 100));
  expect_load_error(d.path(), M3_ERR_FORMAT, "truncated");
}

TEST(BadModelFiles, EveryTruncationFailsCleanly) {
  ModelDir d;
  const std::string bytes = read_file(d.weights());
  for (size_t len = 0; len < bytes.size(); len += 1 + len / 3) {
    write_file(d.weights(), bytes.substr(0, len));
    m3_model* model = nullptr;
    EXPECT_NE(m3_model_load(d.path().c_str(), nullptr, &model), M3_OK) << "length " << len;
    EXPECT_EQ(model, nullptr);
  }
}

TEST(BadModelFiles, CorruptSafetensorsHeader) {
  ModelDir d;
  std::string bytes = read_file(d.weights());
  bytes[8] = '[';  // the header must be a JSON object
  write_file(d.weights(), bytes);
  expect_load_error(d.path(), M3_ERR_FORMAT, "header");
}

TEST(BadConfig, MalformedJson) {
  ModelDir d;
  d.set_config("{\"d_model\": 64,");
  expect_load_error(d.path(), M3_ERR_FORMAT, "malformed JSON");
}

// Values nested this deep once overflowed the stack while an error message printed them.
TEST(BadConfig, DeepNestingIsRefused) {
  const std::string deep = std::string(300000, '[') + "1" + std::string(300000, ']');
  ModelDir d;
  d.set_config(replace(d.config(), "\"n_layer\": 2", "\"n_layer\": " + deep));
  expect_load_error(d.path(), M3_ERR_FORMAT, "config.json: JSON nested deeper than 64 levels");
  d.set_config(read_file(kSiso + "/config.json"));
  write_file(d.path() + "/generation_config.json", "{\"eos_token_id\": " + deep + "}");
  expect_load_error(d.path(), M3_ERR_FORMAT, "generation_config.json: JSON nested deeper than 64 levels");
}

TEST(BadConfig, WrongFieldType) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"n_layer\": 2", "\"n_layer\": \"two\""));
  expect_load_error(d.path(), M3_ERR_FORMAT, "n_layer");
}

TEST(BadConfig, UnsupportedLayerType) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"Mamba3\"", "\"Mamba2\""));
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "Mamba2");
}

TEST(BadConfig, MissingLayerDefaultsToMamba1) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"layer\": \"Mamba3\",", ""));
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "Mamba1");
}

TEST(BadConfig, AttentionLayersAreRejected) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"attn_layer_idx\": []", "\"attn_layer_idx\": [1]"));
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "attn_layer_idx");
}

TEST(BadConfig, UnknownTopLevelField) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"d_model\"", "\"use_magic\": true, \"d_model\""));
  expect_load_error(d.path(), M3_ERR_FORMAT, "use_magic");
}

TEST(BadConfig, LayerNormModelsAreRejected) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"rms_norm\": true", "\"rms_norm\": false"));
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "rms_norm");
}

TEST(BadConfig, BadRopeFraction) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"rope_fraction\": 0.5", "\"rope_fraction\": 0.25"));
  expect_load_error(d.path(), M3_ERR_FORMAT, "rope_fraction");
}

TEST(BadConfig, BadActivationName) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"layer\": \"Mamba3\"", "\"layer\": \"Mamba3\", \"A_activation\": \"relu\""));
  expect_load_error(d.path(), M3_ERR_FORMAT, "A_activation");
}

TEST(BadConfig, SoftplusActivationFromConfig) {
  ModelDir d;
  d.set_config(replace(d.config(), "\"layer\": \"Mamba3\"", "\"layer\": \"Mamba3\", \"A_activation\": \"softplus\""));
  m3_model* model = test::load(d.path());
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(test::info(model, M3_INFO_A_ACTIVATION), M3_A_ACTIVATION_SOFTPLUS);
  m3_model_free(model);
}

TEST(BadPickle, DisallowedGlobalIsRejected) {
  // Same-length patch of the tensor-rebuild global in a real torch.save file: a loader that
  // honoured it would call builtins.eval.
  ModelDir d;
  fs::remove(d.weights());
  fs::copy_file(std::string(test::kGoldenDir) + "/siso_basic_bin/pytorch_model.bin", d.path() + "/pytorch_model.bin");
  std::string bytes = read_file(d.path() + "/pytorch_model.bin");
  const std::string from = "torch._utils\n_rebuild_tensor_v2\n";
  const std::string to = "builtins\neval__________________\n";
  ASSERT_EQ(from.size(), to.size());
  write_file(d.path() + "/pytorch_model.bin", replace(bytes, from, to));
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "builtins");
}

class BadCalls : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::load(kSiso);
    ASSERT_EQ(m3_session_create(model_, &session_), M3_OK);
    vocab_ = test::info(model_, M3_INFO_VOCAB_SIZE);
    padded_ = test::info(model_, M3_INFO_VOCAB_PADDED);
    const int32_t prompt[] = {1, 2, 3};
    ASSERT_EQ(m3_session_feed(session_, prompt, 3, M3_LOGITS_NONE, nullptr, 0), M3_OK);
  }
  void TearDown() override {
    m3_session_free(session_);
    m3_model_free(model_);
  }
  std::vector<uint8_t> snapshot() {
    size_t n = 0;
    m3_session_save(session_, nullptr, 0, &n);
    std::vector<uint8_t> b(n);
    EXPECT_EQ(m3_session_save(session_, b.data(), b.size(), &n), M3_OK);
    return b;
  }
  m3_model* model_ = nullptr;
  m3_session* session_ = nullptr;
  int64_t vocab_ = 0, padded_ = 0;
};

TEST_F(BadCalls, TokenOutOfRangeLeavesStateUnchanged) {
  const auto before = snapshot();
  std::vector<float> logits(padded_ * 3);
  const int32_t bad[] = {5, static_cast<int32_t>(vocab_), 7};
  EXPECT_EQ(m3_session_feed(session_, bad, 3, M3_LOGITS_ALL, logits.data(), logits.size()), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("token id 301 at position 1"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_session_step(session_, -1, logits.data(), logits.size()), M3_ERR_INVALID_ARGUMENT);
  // A padded id (vocab_size <= id < vocab_padded) is not a token either.
  EXPECT_EQ(m3_session_step(session_, static_cast<int32_t>(padded_ - 1), nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(BadCalls, SmallLogitsBufferLeavesStateUnchanged) {
  const auto before = snapshot();
  std::vector<float> logits(padded_);
  const int32_t t[] = {4, 5};
  EXPECT_EQ(m3_session_feed(session_, t, 2, M3_LOGITS_ALL, logits.data(), logits.size()), M3_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(m3_session_feed(session_, t, 2, M3_LOGITS_LAST, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_feed(session_, t, 2, static_cast<m3_logits_mode>(7), logits.data(), logits.size()),
            M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_step(session_, 4, logits.data(), padded_ - 1), M3_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(BadCalls, NullHandlesAndPointers) {
  int64_t v = 0;
  size_t n = 0;
  float f[8];
  int32_t tok = 1;
  m3_model* m = nullptr;
  m3_session* s = nullptr;
  m3_model_params* p = nullptr;
  EXPECT_EQ(m3_model_load(nullptr, nullptr, &m), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("model_dir"), std::string::npos);
  EXPECT_EQ(m3_model_load(kSiso.c_str(), nullptr, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_info(nullptr, M3_INFO_D_MODEL, &v), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_info(model_, M3_INFO_D_MODEL, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_info(model_, static_cast<m3_model_info_key>(999), &v), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_params_create(nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_params_set_backend(nullptr, M3_BACKEND_CPU), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_params_set_a_activation(nullptr, M3_A_ACTIVATION_SOFTPLUS), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_create(nullptr, &s), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_create(model_, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_reset(nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_feed(nullptr, &tok, 1, M3_LOGITS_NONE, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_feed(session_, nullptr, 1, M3_LOGITS_NONE, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_step(nullptr, 1, f, 8), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_decode_batch(nullptr, &tok, 1, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  m3_session* with_null[] = {session_, nullptr};
  int32_t toks[] = {1, 2};
  EXPECT_EQ(m3_decode_batch(with_null, toks, 2, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_n_tokens(nullptr, &v), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_save(nullptr, nullptr, 0, &n), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_save(session_, nullptr, 0, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_restore(nullptr, f, 8), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_restore(session_, nullptr, 8), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_fork(nullptr, &s), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_fork(session_, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_read_state(nullptr, 0, M3_STATE_SSM, f, 8, &n), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_session_read_state(session_, 5, M3_STATE_SSM, f, 8, &n), M3_ERR_INVALID_ARGUMENT);
  // Freeing NULL is a no-op.
  m3_model_free(nullptr);
  m3_session_free(nullptr);
  m3_model_params_destroy(p);
}

TEST_F(BadCalls, DuplicateSessionInBatch) {
  m3_session* twice[] = {session_, session_};
  int32_t toks[] = {1, 2};
  EXPECT_EQ(m3_decode_batch(twice, toks, 2, nullptr, 0), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("twice"), std::string::npos);
}

TEST_F(BadCalls, StateBlobFromAnotherModel) {
  m3_model* other = test::load(std::string(test::kGoldenDir) + "/mimo_r4");
  m3_session* os = nullptr;
  ASSERT_EQ(m3_session_create(other, &os), M3_OK);
  size_t n = 0;
  m3_session_save(os, nullptr, 0, &n);
  std::vector<uint8_t> blob(n);
  ASSERT_EQ(m3_session_save(os, blob.data(), blob.size(), &n), M3_OK);
  const auto before = snapshot();
  EXPECT_EQ(m3_session_restore(session_, blob.data(), blob.size()), M3_ERR_MODEL_MISMATCH);
  EXPECT_NE(std::string(m3_last_error()).find("different model"), std::string::npos) << m3_last_error();
  EXPECT_EQ(snapshot(), before);
  m3_session_free(os);
  m3_model_free(other);
}

TEST_F(BadCalls, StateBlobFromSameConfigDifferentWeights) {
  // Same shapes, other weights: the fingerprint samples weight bytes, so this is caught.
  ModelDir d;
  d.rewrite_tensors([](auto& ts) {
    for (auto& t : ts)
      if (t.name == "backbone.layers.0.mixer.D") t.bytes[0] ^= 0x40;
  });
  m3_model* other = test::load(d.path());
  m3_session* os = nullptr;
  ASSERT_EQ(m3_session_create(other, &os), M3_OK);
  size_t n = 0;
  m3_session_save(os, nullptr, 0, &n);
  std::vector<uint8_t> blob(n);
  ASSERT_EQ(m3_session_save(os, blob.data(), blob.size(), &n), M3_OK);
  EXPECT_EQ(m3_session_restore(session_, blob.data(), blob.size()), M3_ERR_MODEL_MISMATCH);
  m3_session_free(os);
  m3_model_free(other);
}

TEST_F(BadCalls, DamagedStateBlob) {
  auto blob = snapshot();
  const auto before = blob;
  auto damaged = blob;
  damaged[blob.size() / 2] ^= 0x01;
  EXPECT_EQ(m3_session_restore(session_, damaged.data(), damaged.size()), M3_ERR_FORMAT);
  EXPECT_NE(std::string(m3_last_error()).find("checksum"), std::string::npos);
  EXPECT_EQ(m3_session_restore(session_, blob.data(), blob.size() - 1), M3_ERR_FORMAT);
  EXPECT_EQ(m3_session_restore(session_, blob.data(), 10), M3_ERR_FORMAT);
  auto bad_magic = blob;
  bad_magic[0] = 'X';
  EXPECT_EQ(m3_session_restore(session_, bad_magic.data(), bad_magic.size()), M3_ERR_FORMAT);
  EXPECT_EQ(snapshot(), before);
}

TEST(Backends, UnavailableBackendsSayWhy) {
  EXPECT_EQ(m3_backend_available(M3_BACKEND_CPU), M3_OK);
  EXPECT_EQ(m3_backend_available(M3_BACKEND_AUTO), M3_OK);
  for (m3_backend b : {M3_BACKEND_CUDA, M3_BACKEND_VULKAN}) {
    // A machine with a GPU runs it (the CUDA tests cover that); elsewhere: a reason, no crash.
    if (m3_backend_available(b) == M3_OK) continue;
    EXPECT_EQ(m3_backend_available(b), M3_ERR_BACKEND_UNAVAILABLE);
    EXPECT_NE(std::string(m3_last_error()).find(m3_backend_name(b)), std::string::npos);
    m3_model_params* p = nullptr;
    ASSERT_EQ(m3_model_params_create(&p), M3_OK);
    ASSERT_EQ(m3_model_params_set_backend(p, b), M3_OK);
    m3_model* m = nullptr;
    EXPECT_EQ(m3_model_load(kSiso.c_str(), p, &m), M3_ERR_BACKEND_UNAVAILABLE);
    EXPECT_EQ(m, nullptr);
    m3_model_params_destroy(p);
  }
}

// --- device selection (m3_model_params_set_device, m3_model_device_name) -------------------

// Loads kSiso on `backend` with `device` as the selector; returns the status, *out the model.
m3_status load_on(m3_backend backend, const char* device, m3_model** out) {
  m3_model_params* p = nullptr;
  EXPECT_EQ(m3_model_params_create(&p), M3_OK);
  EXPECT_EQ(m3_model_params_set_backend(p, backend), M3_OK);
  EXPECT_EQ(m3_model_params_set_device(p, device), M3_OK) << m3_last_error();
  *out = nullptr;
  const m3_status s = m3_model_load(kSiso.c_str(), p, out);
  m3_model_params_destroy(p);
  return s;
}

std::string device_name_of(const m3_model* model) {
  size_t len = 0;
  EXPECT_EQ(m3_model_device_name(model, nullptr, 0, &len), M3_ERR_BUFFER_TOO_SMALL);
  std::string name(len, '\0');
  EXPECT_EQ(m3_model_device_name(model, name.data(), name.size(), &len), M3_OK) << m3_last_error();
  EXPECT_EQ(len, name.size());
  return name;
}

// The reason a Vulkan test skips, or "" when the backend runs here.
std::string vulkan_skip_reason() {
  if (m3_backend_available(M3_BACKEND_VULKAN) == M3_OK) return "";
  return std::string("the Vulkan backend cannot run here: ") + m3_last_error();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TEST(DeviceSelection, NullParamsAndOverlongSelectorsAreRejected) {
  EXPECT_EQ(m3_model_params_set_device(nullptr, "0"), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("params"), std::string::npos) << m3_last_error();
  m3_model_params* p = nullptr;
  ASSERT_EQ(m3_model_params_create(&p), M3_OK);
  const std::string longest(255, 'x');
  EXPECT_EQ(m3_model_params_set_device(p, longest.c_str()), M3_OK) << m3_last_error();
  const std::string too_long(256, 'x');
  EXPECT_EQ(m3_model_params_set_device(p, too_long.c_str()), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("255 bytes"), std::string::npos) << m3_last_error();
  const std::string much_too_long(1 << 20, 'y');
  EXPECT_EQ(m3_model_params_set_device(p, much_too_long.c_str()), M3_ERR_INVALID_ARGUMENT);
  // NULL and "" reset to the backend's choice.
  EXPECT_EQ(m3_model_params_set_device(p, nullptr), M3_OK);
  EXPECT_EQ(m3_model_params_set_device(p, ""), M3_OK);
  m3_model_params_destroy(p);
}

TEST(DeviceSelection, DeviceNameFollowsTheTwoCallPattern) {
  m3_model* m = test::load(kSiso, M3_BACKEND_CPU);
  ASSERT_NE(m, nullptr);
  size_t len = 99;
  char buf[64];
  EXPECT_EQ(m3_model_device_name(nullptr, buf, sizeof buf, &len), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("model"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_model_device_name(m, buf, sizeof buf, nullptr), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_device_name(m, nullptr, 0, &len), M3_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(m3_model_device_name(m, buf, 2, &len), M3_ERR_BUFFER_TOO_SMALL);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(m3_model_device_name(m, buf, sizeof buf, &len), M3_OK);
  EXPECT_EQ(std::string(buf, len), "CPU");
  m3_model_free(m);
}

TEST(DeviceSelection, CpuBackendsIgnoreTheDevice) {
  for (m3_backend b : {M3_BACKEND_CPU, M3_BACKEND_CPU_REFERENCE}) {
    m3_model* m = nullptr;
    ASSERT_EQ(load_on(b, "no-such-device", &m), M3_OK) << m3_backend_name(b) << ": " << m3_last_error();
    EXPECT_NE(test::info(m, M3_INFO_BACKEND), M3_BACKEND_VULKAN);
    EXPECT_EQ(device_name_of(m), "CPU");
    m3_model_free(m);
  }
}

TEST(DeviceSelection, VulkanSelectorMatchingNothingFailsNamingIt) {
  if (const std::string why = vulkan_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  for (const char* selector : {"no-such-gpu-7f3a", "9999"}) {
    m3_model* m = reinterpret_cast<m3_model*>(0x1);
    EXPECT_EQ(load_on(M3_BACKEND_VULKAN, selector, &m), M3_ERR_BACKEND_UNAVAILABLE) << selector;
    EXPECT_EQ(m, nullptr);
    const std::string message = m3_last_error();
    EXPECT_NE(message.find(selector), std::string::npos) << message;
    EXPECT_NE(message.find("devices"), std::string::npos) << "the message lists the devices: " << message;
  }
}

TEST(DeviceSelection, VulkanSelectsByIndexAndByNameIgnoringCase) {
  if (const std::string why = vulkan_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  m3_model* first = nullptr;
  ASSERT_EQ(load_on(M3_BACKEND_VULKAN, "0", &first), M3_OK) << m3_last_error();
  const std::string name = device_name_of(first);
  ASSERT_FALSE(name.empty());
  EXPECT_EQ(test::info(first, M3_INFO_BACKEND), M3_BACKEND_VULKAN);
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(first, &s), M3_OK);
  const int32_t tokens[] = {1, 2, 3};
  std::vector<float> logits(static_cast<std::size_t>(test::info(first, M3_INFO_VOCAB_PADDED)));
  EXPECT_EQ(m3_session_feed(s, tokens, 3, M3_LOGITS_LAST, logits.data(), logits.size()), M3_OK) << m3_last_error();
  m3_session_free(s);
  m3_model_free(first);

  // Part of device 0's name, in other case, picks a device of that name (device 0 is the
  // first to match). On CI, that is lavapipe: "llvmpipe (LLVM ...)".
  const std::string word = name.substr(0, name.find(' '));
  std::string upper = word;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  m3_model* by_name = nullptr;
  ASSERT_EQ(load_on(M3_BACKEND_VULKAN, upper.c_str(), &by_name), M3_OK) << upper << ": " << m3_last_error();
  EXPECT_EQ(device_name_of(by_name), name);
  m3_model_free(by_name);

  if (lower(name).find("llvmpipe") != std::string::npos) {
    m3_model* lavapipe = nullptr;
    ASSERT_EQ(load_on(M3_BACKEND_VULKAN, "llvmpipe", &lavapipe), M3_OK) << m3_last_error();
    EXPECT_NE(lower(device_name_of(lavapipe)).find("llvmpipe"), std::string::npos);
    m3_model_free(lavapipe);
  }
}

TEST(DeviceSelection, VulkanParamsOverrideTheEnvironment) {
  if (const std::string why = vulkan_skip_reason(); !why.empty()) GTEST_SKIP() << why;
  const char* old = std::getenv("MAMBA3RT_VULKAN_DEVICE");
  const std::string saved = old ? old : "";
  ASSERT_EQ(setenv("MAMBA3RT_VULKAN_DEVICE", "no-such-gpu-from-env", 1), 0);
  m3_model* m = nullptr;
  EXPECT_EQ(load_on(M3_BACKEND_VULKAN, nullptr, &m), M3_ERR_BACKEND_UNAVAILABLE);
  EXPECT_NE(std::string(m3_last_error()).find("no-such-gpu-from-env"), std::string::npos) << m3_last_error();
  EXPECT_EQ(load_on(M3_BACKEND_VULKAN, "0", &m), M3_OK) << m3_last_error();
  m3_model_free(m);
  if (old)
    setenv("MAMBA3RT_VULKAN_DEVICE", saved.c_str(), 1);
  else
    unsetenv("MAMBA3RT_VULKAN_DEVICE");
}

TEST(Version, AbiAndVersion) {
  EXPECT_EQ(m3_abi_version(), static_cast<uint32_t>(M3_ABI_VERSION));
  EXPECT_STRNE(m3_version(), "");
  EXPECT_STREQ(m3_status_name(M3_ERR_FORMAT), "M3_ERR_FORMAT");
  EXPECT_STREQ(m3_status_name(M3_ERR_LIMIT_EXCEEDED), "M3_ERR_LIMIT_EXCEEDED");
  EXPECT_STREQ(m3_status_name(M3_ERR_STATE_LOST), "M3_ERR_STATE_LOST");
}

}  // namespace

namespace {

TEST(BadTokenizer, MalformedTokenizerJsonFailsTheModelLoad) {
  ModelDir d;
  write_file(d.path() + "/tokenizer.json", "{\"model\": {\"type\": \"BPE\", ");
  expect_load_error(d.path(), M3_ERR_FORMAT, "tokenizer.json");
}

TEST(BadTokenizer, UnsupportedPreTokenizerIsNamed) {
  ModelDir d;
  std::string json = read_file("data/tokenizers/tiny_301.json");
  const auto at = json.find("\"pre_tokenizer\"");
  ASSERT_NE(at, std::string::npos);
  const auto type = json.find("\"type\"", at);
  const auto value_begin = json.find('"', json.find(':', type) + 1);
  const auto value_end = json.find('"', value_begin + 1);
  json.replace(value_begin, value_end - value_begin + 1, "\"Metaspace\"");
  write_file(d.path() + "/tokenizer.json", json);
  expect_load_error(d.path(), M3_ERR_UNSUPPORTED, "Metaspace");
}

TEST(BadTokenizer, TokenizerLargerThanTheModelVocab) {
  ModelDir d;  // siso_basic has 301 tokens
  fs::copy_file("data/tokenizers/tiny_301.json", d.path() + "/tokenizer.json");
  m3_model* ok = test::load(d.path());
  EXPECT_NE(ok, nullptr);
  m3_model_free(ok);
  fs::remove(d.path() + "/tokenizer.json");
  ASSERT_EQ(std::system(("/usr/bin/python3 ../tools/make_test_tokenizer.py 400 " + d.path() + "/tokenizer.json").c_str()), 0);
  expect_load_error(d.path(), M3_ERR_FORMAT, "vocab_size");
}

}  // namespace
