// The library's configurable limits (docs/SECURITY.md): the largest tensor a checkpoint may
// hold and the most sessions alive at once on a model. Hitting one gives M3_ERR_LIMIT_EXCEEDED
// with a message naming the limit, and changes nothing.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mamba3rt.h"
#include "test_support.h"

namespace {

const std::string kSafetensorsCase = std::string(test::kGoldenDir) + "/siso_basic";
const std::string kPytorchCase = std::string(test::kGoldenDir) + "/siso_basic_bin";

using ParamsPtr = std::unique_ptr<m3_model_params, void (*)(m3_model_params*)>;

ParamsPtr make_params() {
  m3_model_params* p = nullptr;
  EXPECT_EQ(m3_model_params_create(&p), M3_OK);
  EXPECT_EQ(m3_model_params_set_backend(p, M3_BACKEND_CPU), M3_OK);
  return ParamsPtr(p, m3_model_params_destroy);
}

// The largest tensor of a safetensors file, in bytes, read from its header here rather than
// through the library: the data offsets [begin, end) of each entry.
uint64_t largest_tensor_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  EXPECT_TRUE(in.good()) << path;
  uint64_t largest = 0;
  const nlohmann::json entries = nlohmann::json::parse(header);
  for (const auto& [name, entry] : entries.items()) {
    if (name == "__metadata__") continue;
    const uint64_t n = entry["data_offsets"][1].get<uint64_t>() - entry["data_offsets"][0].get<uint64_t>();
    largest = std::max(largest, n);
  }
  return largest;
}

TEST(Limits, MaxTensorBytesRefusesALargerTensorAndAcceptsTheLargestExactly) {
  const uint64_t largest = largest_tensor_bytes(kSafetensorsCase + "/model.safetensors");
  ASSERT_GT(largest, 0u);
  ParamsPtr params = make_params();

  ASSERT_EQ(m3_model_params_set_max_tensor_bytes(params.get(), static_cast<int64_t>(largest) - 1), M3_OK);
  m3_model* model = nullptr;
  EXPECT_EQ(m3_model_load(kSafetensorsCase.c_str(), params.get(), &model), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_EQ(model, nullptr);
  const std::string message = m3_last_error();
  EXPECT_NE(message.find("model.safetensors: tensor '"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(largest) + " bytes, over the limit of " + std::to_string(largest - 1)),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("max_tensor_bytes"), std::string::npos) << message;

  ASSERT_EQ(m3_model_params_set_max_tensor_bytes(params.get(), static_cast<int64_t>(largest)), M3_OK);
  ASSERT_EQ(m3_model_load(kSafetensorsCase.c_str(), params.get(), &model), M3_OK) << m3_last_error();
  m3_model_free(model);
}

TEST(Limits, MaxTensorBytesAppliesToPytorchCheckpointsAndZeroMeansNoLimit) {
  ParamsPtr params = make_params();
  ASSERT_EQ(m3_model_params_set_max_tensor_bytes(params.get(), 1), M3_OK);
  m3_model* model = nullptr;
  EXPECT_EQ(m3_model_load(kPytorchCase.c_str(), params.get(), &model), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(m3_last_error()).find("pytorch_model.bin: tensor '"), std::string::npos) << m3_last_error();

  ASSERT_EQ(m3_model_params_set_max_tensor_bytes(params.get(), 0), M3_OK);
  ASSERT_EQ(m3_model_load(kPytorchCase.c_str(), params.get(), &model), M3_OK) << m3_last_error();
  m3_model_free(model);
}

TEST(Limits, LimitSettersRejectBadArguments) {
  ParamsPtr params = make_params();
  EXPECT_EQ(m3_model_params_set_max_tensor_bytes(params.get(), -1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("max_bytes"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_model_params_set_max_sessions(params.get(), -1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(m3_last_error()).find("max_sessions"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_model_params_set_max_tensor_bytes(nullptr, 1), M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(m3_model_params_set_max_sessions(nullptr, 1), M3_ERR_INVALID_ARGUMENT);
  static_assert(M3_DEFAULT_MAX_TENSOR_BYTES == (int64_t{16} << 30), "the documented default");
}

TEST(Limits, SessionsAreUnlimitedByDefaultAndCounted) {
  m3_model* model = test::load(kSafetensorsCase);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(test::info(model, M3_INFO_MAX_SESSIONS), 0);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 0);
  std::vector<m3_session*> sessions(40, nullptr);
  for (m3_session*& s : sessions) ASSERT_EQ(m3_session_create(model, &s), M3_OK) << m3_last_error();
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 40);
  for (m3_session* s : sessions) m3_session_free(s);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 0);
  m3_model_free(model);
}

TEST(Limits, MaxSessionsCountsCreatedForkedAndEngineSessions) {
  ParamsPtr params = make_params();
  ASSERT_EQ(m3_model_params_set_max_sessions(params.get(), 3), M3_OK);
  m3_model* model = nullptr;
  ASSERT_EQ(m3_model_load(kSafetensorsCase.c_str(), params.get(), &model), M3_OK) << m3_last_error();
  EXPECT_EQ(test::info(model, M3_INFO_MAX_SESSIONS), 3);

  m3_session* a = nullptr;
  m3_session* b = nullptr;
  ASSERT_EQ(m3_session_create(model, &a), M3_OK);
  const int32_t tokens[] = {1, 2, 3};
  ASSERT_EQ(m3_session_feed(a, tokens, 3, M3_LOGITS_NONE, nullptr, 0), M3_OK);
  ASSERT_EQ(m3_session_fork(a, &b), M3_OK);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 2);

  // The third place goes to an engine stream; then every way of making a session is refused.
  m3_engine* engine = nullptr;
  ASSERT_EQ(m3_engine_create(model, nullptr, &engine), M3_OK) << m3_last_error();
  m3_stream* stream = nullptr;
  ASSERT_EQ(m3_engine_submit(engine, nullptr, nullptr, nullptr, nullptr, &stream), M3_OK) << m3_last_error();
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 3);

  m3_session* refused = nullptr;
  EXPECT_EQ(m3_session_create(model, &refused), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_NE(std::string(m3_last_error()).find("maximum of 3 live sessions"), std::string::npos) << m3_last_error();
  EXPECT_EQ(m3_session_fork(a, &refused), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_EQ(refused, nullptr);
  m3_stream* refused_stream = nullptr;
  EXPECT_EQ(m3_engine_submit(engine, nullptr, a, nullptr, nullptr, &refused_stream), M3_ERR_LIMIT_EXCEEDED);
  EXPECT_EQ(refused_stream, nullptr);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 3);
  // The refused fork left its source as it was.
  EXPECT_EQ(m3_session_step(a, 4, nullptr, 0), M3_OK) << m3_last_error();

  // A freed place can be taken again.
  m3_session_free(b);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 2);
  ASSERT_EQ(m3_session_create(model, &b), M3_OK) << m3_last_error();

  m3_stream_free(stream);
  m3_engine_free(engine);
  m3_session_free(a);
  m3_session_free(b);
  EXPECT_EQ(test::info(model, M3_INFO_LIVE_SESSIONS), 0);
  m3_model_free(model);
}

}  // namespace
