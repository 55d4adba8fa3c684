// bf16 and f16 checkpoints. A model stored in a 16-bit type must compute exactly what the
// float32 model with the same (rounded) values computes: the loader converts exactly, so
// any difference is a conversion or indexing bug. Also: how far bf16/f16 rounding of the
// weights moves the logits from the official float64 reference.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "model/float_convert.h"
#include "model/mapped_file.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"
#include "test_support.h"

namespace {

uint16_t f32_to_bf16(float f) {  // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
uint16_t f32_to_f16(float f) {
  _Float16 h = static_cast<_Float16>(f);
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}

enum class Store { Bf16, F16 };

// Writes two copies of a golden model: `narrow` stores the tensors selected by `narrow_it`
// in the 16-bit type; `wide` stores every tensor as float32 holding the same rounded values.
void write_pair(const std::string& src, Store store, bool (*narrow_it)(const std::string&),
                const std::string& narrow_dir, const std::string& wide_dir) {
  std::vector<m3::OwnedTensor> narrow, wide;
  m3::MappedFile f(src + "/model.safetensors");
  std::vector<std::vector<uint64_t>> copies;
  for (const auto& t : m3::read_safetensors(f, copies)) {
    const float* v = static_cast<const float*>(t.data);
    const int64_t n = t.numel();
    m3::OwnedTensor w{t.name, m3::DType::F32, t.shape, std::vector<uint8_t>(n * 4)};
    if (!narrow_it(t.name)) {
      std::memcpy(w.bytes.data(), v, n * 4);
      narrow.push_back(w);
      wide.push_back(w);
      continue;
    }
    m3::OwnedTensor h{t.name, store == Store::Bf16 ? m3::DType::BF16 : m3::DType::F16, t.shape,
                      std::vector<uint8_t>(n * 2)};
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t bits = store == Store::Bf16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
      const float back = store == Store::Bf16 ? m3::bf16_to_f32(bits) : m3::f16_to_f32(bits);
      std::memcpy(&h.bytes[i * 2], &bits, 2);
      std::memcpy(&w.bytes[i * 4], &back, 4);
    }
    narrow.push_back(std::move(h));
    wide.push_back(std::move(w));
  }
  for (const auto& [dir, tensors] : {std::pair{narrow_dir, &narrow}, std::pair{wide_dir, &wide}}) {
    std::filesystem::copy_file(src + "/config.json", dir + "/config.json");
    m3::write_safetensors(dir + "/model.safetensors", *tensors);
  }
}

std::vector<float> all_logits(const std::string& dir, const std::vector<int32_t>& tokens) {
  m3_model* model = test::load(dir);
  const int64_t V = test::info(model, M3_INFO_VOCAB_PADDED);
  m3_session* s = nullptr;
  EXPECT_EQ(m3_session_create(model, &s), M3_OK);
  std::vector<float> logits(tokens.size() * V);
  EXPECT_EQ(m3_session_feed(s, tokens.data(), tokens.size(), M3_LOGITS_ALL, logits.data(), logits.size()), M3_OK)
      << m3_last_error();
  m3_session_free(s);
  m3_model_free(model);
  return logits;
}

bool everything(const std::string&) { return true; }
// The official runtime rule: matrices and norms in the model dtype, small per-head params in fp32.
bool matrices_and_norms(const std::string& name) {
  for (const char* fp32 : {"dt_bias", "B_bias", "C_bias", "mixer.D", "mimo_"})
    if (name.find(fp32) != std::string::npos) return false;
  return true;
}

class WeightDtypes : public ::testing::TestWithParam<std::tuple<std::string, Store, bool>> {};

TEST_P(WeightDtypes, SixteenBitModelEqualsFloat32ModelWithRoundedValues) {
  const auto& [name, store, all] = GetParam();
  const std::string src = std::string(test::kGoldenDir) + "/" + name;
  const std::string narrow = test::make_temp_dir(), wide = test::make_temp_dir();
  write_pair(src, store, all ? everything : matrices_and_norms, narrow, wide);

  const auto expected = test::read_tensors(src + "/expected.safetensors");
  const auto& tok = expected.at("tokens");
  std::vector<int32_t> row(tok.values.begin(), tok.values.begin() + tok.shape[1]);
  const auto got = all_logits(narrow, row);
  EXPECT_EQ(got, all_logits(wide, row));

  // Distance from the float64 reference caused by rounding the weights alone.
  std::vector<float> ref(expected.at("logits").values.begin(), expected.at("logits").values.begin() + got.size());
  const double err = test::rel_l2(got, ref);
  std::printf("[ metrics  ] %s %s%s: logits rel-L2 vs float64 reference %.3g\n", name.c_str(),
              store == Store::Bf16 ? "bf16" : "f16", all ? " (all tensors)" : "", err);
  EXPECT_LT(err, store == Store::Bf16 ? 5e-2 : 5e-3);
  EXPECT_GT(err, 1e-6);  // the weights really were rounded
  test::remove_tree(narrow);
  test::remove_tree(wide);
}

INSTANTIATE_TEST_SUITE_P(Golden, WeightDtypes,
                         ::testing::Combine(::testing::Values("siso_outnorm_mlp", "mimo_r2_outnorm"),
                                            ::testing::Values(Store::Bf16, Store::F16), ::testing::Bool()),
                         [](const auto& info) {
                           return std::get<0>(info.param) + (std::get<1>(info.param) == Store::Bf16 ? "_bf16" : "_f16") +
                                  (std::get<2>(info.param) ? "_all_tensors" : "_matrices_and_norms");
                         });

TEST(FloatConvert, F16MatchesCompilerConversionForAllBitPatterns) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t b = static_cast<uint16_t>(bits);
    _Float16 h;
    std::memcpy(&h, &b, 2);
    const float want = static_cast<float>(h);
    const float got = m3::f16_to_f32(b);
    if (want != want) {
      EXPECT_NE(got, got) << std::hex << bits;
    } else {
      uint32_t gw, gg;
      std::memcpy(&gw, &want, 4);
      std::memcpy(&gg, &got, 4);
      ASSERT_EQ(gg, gw) << "f16 bits 0x" << std::hex << bits;
    }
  }
}

TEST(FloatConvert, Bf16IsTheHighHalfOfFloat32) {
  EXPECT_EQ(m3::bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(m3::bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(m3::bf16_to_f32(f32_to_bf16(0.15625f)), 0.15625f);
}

}  // namespace
