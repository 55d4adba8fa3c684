// Quantized weights (docs/QUANTIZATION.md, docs/FORMATS.md "Quantized weights"):
//  - the conversions: f32 -> f16/bf16 rounding, quantize_matrix's error bounds, the q4 nibble
//    layout against an independent decoder, the scalar reference matvec on Q8/Q4;
//  - `mamba3rt quantize` end to end on every golden case and type: the fast backend agrees
//    with the reference backend, and the logits stay within each type's documented tolerance
//    of the official float64 outputs; info keys of quantized models;
//  - the quality on the bundled (trained) model;
//  - bad quantized files and bad command lines: a clear error, never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sys/wait.h>

#include "backends/cpu/reference_matvec.h"
#include "common/error.h"
#include "model/float_convert.h"
#include "model/mapped_file.h"
#include "model/quantization.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace {

using m3::kQuantGroup;
using m3::WeightType;

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---------------------------------------------------------------------------------------
// f32 -> f16 / bf16

TEST(F16Rounding, KnownValues) {
  EXPECT_EQ(m3::f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(m3::f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(m3::f32_to_f16(0.0f), 0x0000);
  EXPECT_EQ(m3::f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(m3::f32_to_f16(65504.0f), 0x7bff);                  // the largest half
  EXPECT_EQ(m3::f32_to_f16(65519.99f), 0x7bff);                 // still rounds down
  EXPECT_EQ(m3::f32_to_f16(65520.0f), 0x7c00);                  // ties to even: inf
  EXPECT_EQ(m3::f32_to_f16(1e10f), 0x7c00);                     // overflow -> inf
  EXPECT_EQ(m3::f32_to_f16(-1e10f), 0xfc00);
  EXPECT_EQ(m3::f32_to_f16(INFINITY), 0x7c00);
  EXPECT_EQ(m3::f32_to_f16(-INFINITY), 0xfc00);
  EXPECT_EQ(m3::f32_to_f16(1.0f + 0x1p-11f), 0x3c00);           // halfway: to even
  EXPECT_EQ(m3::f32_to_f16(1.0f + 3 * 0x1p-11f), 0x3c02);       // halfway: to even (up)
  EXPECT_EQ(m3::f32_to_f16(0x1p-14f), 0x0400);                  // smallest normal
  EXPECT_EQ(m3::f32_to_f16(0x1p-24f), 0x0001);                  // smallest subnormal
  EXPECT_EQ(m3::f32_to_f16(0x1p-25f), 0x0000);                  // half of it: to even (0)
  EXPECT_EQ(m3::f32_to_f16(3 * 0x1p-25f), 0x0002);              // 1.5 steps: to even (2)
  EXPECT_EQ(m3::f32_to_f16(1e-9f), 0x0000);                     // underflow
  EXPECT_EQ(m3::f32_to_f16(0x1p-14f - 0x1p-25f), 0x0400);       // rounds up into the normals
  const uint16_t nan = m3::f32_to_f16(NAN);
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);  // still a NaN, not inf
  EXPECT_NE(m3::f32_to_f16(float_of(0x7f800001u)) & 0x03ff, 0);  // a signalling NaN stays NaN
}

// The compiler's _Float16 conversion (round to nearest even) is an independent oracle.
TEST(F16Rounding, MatchesCompilerConversionOnSampledBitPatterns) {
  int checked = 0;
  for (uint64_t u = 0; u <= 0xffffffffull; u += 4099) {
    const float f = float_of(static_cast<uint32_t>(u));
    const uint16_t got = m3::f32_to_f16(f);
    if (f != f) {
      EXPECT_EQ(got & 0x7c00, 0x7c00);
      EXPECT_NE(got & 0x03ff, 0);
      continue;
    }
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(got, want) << "f32 bits 0x" << std::hex << u;
    ++checked;
  }
  EXPECT_GT(checked, 1000000);
}

TEST(Bf16Rounding, KnownValues) {
  EXPECT_EQ(m3::f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(m3::f32_to_bf16(-3.0f), 0xc040);
  EXPECT_EQ(m3::f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);       // halfway: to even
  EXPECT_EQ(m3::f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);   // halfway: to even (up)
  EXPECT_EQ(m3::f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(m3::f32_to_bf16(3.4e38f), 0x7f80);               // overflow -> inf
  EXPECT_EQ(m3::f32_to_bf16(-INFINITY), 0xff80);
  EXPECT_EQ(m3::f32_to_bf16(float_of(0x00010000u)), 0x0001);  // subnormals keep their top bits
  EXPECT_EQ(m3::f32_to_bf16(float_of(0x00008000u)), 0x0000);  // halfway below the smallest: to even
  EXPECT_EQ(m3::f32_to_bf16(float_of(0x00018000u)), 0x0002);
  EXPECT_EQ(m3::f32_to_bf16(-0.0f), 0x8000);
  const uint16_t nan = m3::f32_to_bf16(float_of(0x7f800001u));  // a NaN whose payload is in the low half
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x007f, 0);
  for (float f : {0.15625f, -1232.0f, 0x1p-126f, 0x1p100f})  // exactly representable: unchanged
    EXPECT_EQ(m3::bf16_to_f32(m3::f32_to_bf16(f)), f);
}

// ---------------------------------------------------------------------------------------
// quantize_matrix

// Rows of groups whose magnitudes span what weights have, and what f16 scales make hard
// (subnormal scales below ~1e-3 for int8).
std::vector<float> test_matrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float magnitudes[] = {1e-6f, 1e-4f, 3e-3f, 0.02f, 1.0f, 40.0f, 3000.0f};
  std::vector<float> w(static_cast<std::size_t>(rows * cols));
  for (int64_t g = 0; g < rows * cols / kQuantGroup; ++g) {
    const float m = magnitudes[g % std::size(magnitudes)];
    for (int64_t i = 0; i < kQuantGroup; ++i) w[g * kQuantGroup + i] = m * normal(rng);
  }
  return w;
}

// Independent decoders of the documented layouts (model_weights.h).
float decode_q8(const std::vector<int8_t>& q, const std::vector<uint16_t>& s, int64_t i) {
  return static_cast<float>(q[i]) * m3::f16_to_f32(s[i / kQuantGroup]);
}
float decode_q4(const std::vector<uint8_t>& q, const std::vector<uint16_t>& s, int64_t i) {
  const int64_t group = i / kQuantGroup, col = i % kQuantGroup;
  const uint8_t byte = q[group * 16 + (col < 16 ? col : col - 16)];
  const int code = col < 16 ? (byte & 0x0f) : (byte >> 4);
  return static_cast<float>(code - 8) * m3::f16_to_f32(s[group]);
}

struct Quantized {
  std::vector<int8_t> q8;
  std::vector<uint8_t> q4;
  std::vector<uint16_t> scales;
};
Quantized quantize(WeightType type, const std::vector<float>& w, int64_t rows, int64_t cols) {
  Quantized out;
  out.scales.resize(static_cast<std::size_t>(rows * cols / kQuantGroup));
  if (type == WeightType::Q8) {
    out.q8.resize(w.size());
    m3::quantize_matrix(type, w.data(), rows, cols, out.q8.data(), out.scales.data());
  } else {
    out.q4.resize(w.size() / 2);
    m3::quantize_matrix(type, w.data(), rows, cols, out.q4.data(), out.scales.data());
  }
  return out;
}

TEST(QuantizeInt8, EveryElementWithinHalfAStep) {
  const int64_t rows = 21, cols = 96;
  const auto w = test_matrix(rows, cols, 1);
  const auto q = quantize(WeightType::Q8, w, rows, cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float scale = m3::f16_to_f32(q.scales[i / kQuantGroup]);
    ASSERT_GE(q.q8[i], -127) << i;
    ASSERT_LE(std::fabs(w[i] - decode_q8(q.q8, q.scales, i)), scale / 2 * (1 + 1e-6f)) << "element " << i;
  }
  // The scale is the group's max |w| / 127 rounded to f16 (up when nearest went down).
  for (int64_t g = 0; g < rows * cols / kQuantGroup; ++g) {
    float amax = 0;
    for (int64_t i = 0; i < kQuantGroup; ++i) amax = std::max(amax, std::fabs(w[g * kQuantGroup + i]));
    const float scale = m3::f16_to_f32(q.scales[g]);
    EXPECT_GE(scale * 127.0f, amax) << g;
    EXPECT_LE(scale, std::max(amax / 127.0f * (1 + 0x1p-10f), amax / 127.0f + 0x1p-24f)) << g;
  }
}

// The plain q4 choice (extreme -> code -8) and its squared error per group, independently.
double plain_q4_error(const float* w) {
  float extreme = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i)
    if (std::fabs(w[i]) > std::fabs(extreme)) extreme = w[i];
  const float d = m3::f16_to_f32(m3::f32_to_f16(extreme / -8.0f));
  double err = 0;
  for (int64_t i = 0; i < kQuantGroup; ++i) {
    const float c = d == 0 ? 0.0f : std::clamp(std::nearbyint(w[i] / d), -8.0f, 7.0f);
    err += (w[i] - c * d) * (w[i] - c * d);
  }
  return err;
}

TEST(QuantizeQ4, GroupErrorNeverAboveThePlainChoiceAndRmsWithinAStep) {
  const int64_t rows = 35, cols = 128;
  const auto w = test_matrix(rows, cols, 2);
  const auto q = quantize(WeightType::Q4, w, rows, cols);
  for (int64_t g = 0; g < rows * cols / kQuantGroup; ++g) {
    double err = 0;
    float amax = 0;
    for (int64_t i = g * kQuantGroup; i < (g + 1) * kQuantGroup; ++i) {
      const double e = w[i] - decode_q4(q.q4, q.scales, i);
      err += e * e;
      amax = std::max(amax, std::fabs(w[i]));
    }
    EXPECT_LE(err, plain_q4_error(&w[g * kQuantGroup]) * (1 + 1e-5)) << "group " << g;
    // The plain choice is off by at most one step (|extreme| / 8) per element.
    EXPECT_LE(std::sqrt(err / kQuantGroup), amax / 8 * 1.01 + 1e-7) << "group " << g;
  }
}

TEST(QuantizeQ4, ScaleSearchLowersTheErrorOfGaussianWeights) {
  const int64_t rows = 256, cols = 256;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(rows * cols);
  for (auto& x : w) x = normal(rng);
  const auto q = quantize(WeightType::Q4, w, rows, cols);
  double searched = 0, plain = 0;
  for (int64_t i = 0; i < rows * cols; ++i) searched += std::pow(w[i] - decode_q4(q.q4, q.scales, i), 2);
  for (int64_t g = 0; g < rows * cols / kQuantGroup; ++g) plain += plain_q4_error(&w[g * kQuantGroup]);
  std::printf("[ metrics  ] q4 squared error on N(0, 0.05) weights: searched scales %.4g, plain %.4g (%.1f%% lower)\n",
              searched, plain, 100 * (1 - searched / plain));
  EXPECT_LT(searched, 0.95 * plain);
}

TEST(Quantize, ZeroGroupsHaveZeroScaleAndDecodeToZero) {
  const int64_t rows = 2, cols = 64;
  std::vector<float> w(rows * cols, 0.0f);
  for (int64_t i = 32; i < 64; ++i) w[i] = 0.25f * static_cast<float>(i - 48);  // one nonzero group
  for (WeightType type : {WeightType::Q8, WeightType::Q4}) {
    const auto q = quantize(type, w, rows, cols);
    for (int64_t g : {0, 2, 3}) EXPECT_EQ(q.scales[g], 0) << m3::weight_type_name(type) << " group " << g;
    EXPECT_NE(q.scales[1], 0);
    for (int64_t i = 0; i < rows * cols; ++i) {
      if (i / kQuantGroup == 1) continue;
      if (type == WeightType::Q8) {
        EXPECT_EQ(q.q8[i], 0);
      } else {
        EXPECT_EQ(decode_q4(q.q4, q.scales, i), 0.0f);
        if (i % kQuantGroup < 16) {
          EXPECT_EQ(q.q4[i / kQuantGroup * 16 + i % 16], 0x88) << i;  // code 0 twice
        }
      }
    }
  }
}

TEST(Quantize, ExtremeValues) {
  const int64_t cols = kQuantGroup;
  // One spike among small values, either sign: the spike is exact to f16 precision.
  for (float spike : {5.0f, -5.0f}) {
    std::vector<float> w(cols, 0.01f);
    w[7] = spike;
    const auto q8 = quantize(WeightType::Q8, w, 1, cols);
    EXPECT_EQ(std::abs(q8.q8[7]), 127);
    EXPECT_NEAR(decode_q8(q8.q8, q8.scales, 7), spike, 5.0 / 127 / 2);
    const auto q4 = quantize(WeightType::Q4, w, 1, cols);
    EXPECT_NEAR(decode_q4(q4.q4, q4.scales, 7), spike, 5.0 * 0x1p-10);  // the spike dominates the error
  }
  // The largest magnitudes the types take (quantization.h) give finite scales.
  for (auto [type, limit] : {std::pair{WeightType::Q8, m3::kMaxQ8Weight}, std::pair{WeightType::Q4, m3::kMaxQ4Weight}}) {
    for (float sign : {1.0f, -1.0f}) {
      std::vector<float> w(cols, 0.5f * limit);
      w[3] = sign * limit;
      const auto q = quantize(type, w, 1, cols);
      const float scale = m3::f16_to_f32(q.scales[0]);
      EXPECT_TRUE(std::isfinite(scale)) << m3::weight_type_name(type);
      const float got = type == WeightType::Q8 ? decode_q8(q.q8, q.scales, 3) : decode_q4(q.q4, q.scales, 3);
      EXPECT_NEAR(got, sign * limit, std::fabs(scale)) << m3::weight_type_name(type);
    }
  }
  // Values so small that the scale is subnormal or underflows: the error stays within a step.
  for (float m : {1e-5f, 1e-7f, 1e-9f}) {
    std::vector<float> w(cols);
    for (int64_t i = 0; i < cols; ++i) w[i] = m * static_cast<float>(i - 16) / 16;
    const auto q = quantize(WeightType::Q8, w, 1, cols);
    const float scale = m3::f16_to_f32(q.scales[0]);
    EXPECT_GT(scale, 0.0f) << m;  // rounded up, never to zero
    for (int64_t i = 0; i < cols; ++i) EXPECT_LE(std::fabs(w[i] - decode_q8(q.q8, q.scales, i)), scale / 2) << m;
  }
}

// ---------------------------------------------------------------------------------------
// The reference path's dequantization against the layout, written out by hand.

TEST(Q4Layout, HandMadeBytesDecodeAsDocumented) {
  // One row of two groups. Group 0: byte j = code j (low) | code 15 - j (high); group 1: all 0x8f.
  std::vector<uint8_t> data(32);
  for (int j = 0; j < 16; ++j) data[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  for (int j = 16; j < 32; ++j) data[j] = 0x8f;
  const std::vector<uint16_t> scales = {0x3c00 /* 1.0 */, 0xb800 /* -0.5 */};
  const m3::WeightMatrix w{WeightType::Q4, 1, 64, data.data(), scales.data()};
  std::vector<float> row(64);
  m3::cpu::load_row(w, 0, row.data());
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(row[c], static_cast<float>(c - 8)) << c;             // low nibbles: columns 0..15
    EXPECT_EQ(row[16 + c], static_cast<float>(7 - c)) << 16 + c;   // high nibbles: columns 16..31
    EXPECT_EQ(row[32 + c], (15 - 8) * -0.5f) << 32 + c;             // 0x8f: low 15, high 8
    EXPECT_EQ(row[48 + c], 0.0f) << 48 + c;
  }
  std::vector<float> x(64, 1.0f);
  float y = 0;
  m3::cpu::matvec(w, x.data(), &y);
  EXPECT_EQ(y, -16.0f + 16 * -3.5f);  // group 0: sum(c - 8) = sum(7 - c) = -8 over c < 16; group 1: 16 * -3.5
}

TEST(Q8Layout, HandMadeBytesDecodeAsDocumented) {
  std::vector<int8_t> data(64);
  for (int c = 0; c < 64; ++c) data[c] = static_cast<int8_t>(c * 4 - 128);  // -128 .. 124: all codes decode
  const std::vector<uint16_t> scales = {0x3800 /* 0.5 */, 0x4000 /* 2.0 */};
  const m3::WeightMatrix w{WeightType::Q8, 1, 64, data.data(), scales.data()};
  std::vector<float> row(64);
  m3::cpu::load_row(w, 0, row.data());
  for (int c = 0; c < 64; ++c) EXPECT_EQ(row[c], static_cast<float>(c * 4 - 128) * (c < 32 ? 0.5f : 2.0f)) << c;
}

TEST(QuantizedMatvec, ReferenceEqualsIndependentDecodingForBothTypes) {
  const int64_t rows = 7, cols = 160;
  const auto w = test_matrix(rows, cols, 4);
  std::vector<float> x(cols);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  for (auto& v : x) v = normal(rng);
  for (WeightType type : {WeightType::Q8, WeightType::Q4}) {
    const auto q = quantize(type, w, rows, cols);
    const m3::WeightMatrix m{type, rows, cols, type == WeightType::Q8 ? static_cast<const void*>(q.q8.data()) : q.q4.data(),
                             q.scales.data()};
    std::vector<float> row(cols), y(rows);
    m3::cpu::matvec(m, x.data(), y.data());
    for (int64_t r = 0; r < rows; ++r) {
      m3::cpu::load_row(m, r, row.data());
      double dot = 0, mag = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = r * cols + c;
        const float want = type == WeightType::Q8 ? decode_q8(q.q8, q.scales, i) : decode_q4(q.q4, q.scales, i);
        ASSERT_EQ(row[c], want) << m3::weight_type_name(type) << " [" << r << ", " << c << "]";
        dot += static_cast<double>(want) * x[c];
        mag += std::fabs(static_cast<double>(want) * x[c]);
      }
      EXPECT_NEAR(y[r], dot, 1e-6 * mag + 1e-30) << m3::weight_type_name(type) << " row " << r;
    }
  }
}

// ---------------------------------------------------------------------------------------
// safetensors metadata and the streaming writer.

std::string write_raw_safetensors(const std::string& header_json, std::size_t data_bytes) {
  const std::string path = test::make_temp_dir() + "/raw.safetensors";
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header_json << std::string(data_bytes, '\0');
  return path;
}

TEST(SafetensorsMetadata, StringValuesAreReadOthersIgnored) {
  const std::string path = write_raw_safetensors(
      R"({"__metadata__":{"a":"b","n":3,"mamba3rt.weight_type":"q4"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 2);
  m3::MappedFile f(path);
  std::vector<std::vector<uint64_t>> copies;
  m3::SafetensorsMetadata meta;
  const auto tensors = m3::read_safetensors(f, copies, meta);
  EXPECT_EQ(tensors.size(), 1u);
  EXPECT_EQ(meta, (m3::SafetensorsMetadata{{"a", "b"}, {"mamba3rt.weight_type", "q4"}}));
  test::remove_tree(fs::path(path).parent_path().string());
}

TEST(SafetensorsMetadata, NotAnObjectIsAnError) {
  const std::string path = write_raw_safetensors(R"({"__metadata__":"x"})", 0);
  m3::MappedFile f(path);
  std::vector<std::vector<uint64_t>> copies;
  try {
    m3::read_safetensors(f, copies);
    ADD_FAILURE() << "no error";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("__metadata__ is not a JSON object"), std::string::npos) << e.what();
  }
  test::remove_tree(fs::path(path).parent_path().string());
}

TEST(SafetensorsWriter, StreamsTensorsInPiecesWithMetadata) {
  const std::string dir = test::make_temp_dir(), path = dir + "/s.safetensors";
  {
    m3::SafetensorsStreamWriter w(path, {{"a", m3::DType::F32, {2, 2}}, {"b", m3::DType::I8, {3}}}, {{"k", "v"}});
    const float a[4] = {1, 2, 3, 4};
    const int8_t b[3] = {-1, 0, 1};
    w.write(a, 8);
    w.write(a + 2, 8);  // a tensor may come in pieces
    w.write(b, 3);
    w.finish();
  }
  m3::MappedFile f(path);
  std::vector<std::vector<uint64_t>> copies;
  m3::SafetensorsMetadata meta;
  const auto t = m3::read_safetensors(f, copies, meta);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(meta.at("k"), "v");
  EXPECT_EQ(static_cast<const float*>(t[0].data)[3], 4.0f);
  EXPECT_EQ(static_cast<const int8_t*>(t[1].data)[0], -1);
  test::remove_tree(dir);
}

TEST(SafetensorsWriter, WrongByteCountsAreErrors) {
  const std::string dir = test::make_temp_dir(), path = dir + "/s.safetensors";
  auto status_of = [](auto&& fn) {
    try {
      fn();
    } catch (const m3::Error& e) {
      return e.status();
    }
    return M3_OK;
  };
  const uint8_t bytes[16] = {};
  EXPECT_EQ(status_of([&] {
              m3::SafetensorsStreamWriter w(path, {{"a", m3::DType::F16, {4}}});
              w.write(bytes, 10);
            }),
            M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] {
              m3::SafetensorsStreamWriter w(path, {{"a", m3::DType::F16, {4}}});
              w.write(bytes, 6);
              w.finish();
            }),
            M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { m3::write_safetensors(path, {{"a", m3::DType::F32, {3}, std::vector<uint8_t>(8)}}); }),
            M3_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(status_of([&] { m3::SafetensorsStreamWriter w(dir + "/no/such/dir/x", {}); }), M3_ERR_IO);
  test::remove_tree(dir);
}

// ---------------------------------------------------------------------------------------
// `mamba3rt quantize` end to end.

struct CliRun {
  int rc = -1;
  std::string output;  // stdout and stderr
};
CliRun run_cli(const std::string& args) {
  CliRun r;
  FILE* pipe = popen((std::string(MAMBA3RT_CLI) + " " + args + " 2>&1").c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  const int status = pclose(pipe);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Quantizes `model` into a fresh directory (removed by the caller).
std::string quantize_dir(const std::string& model, const std::string& type, const std::string& extra = "") {
  const std::string out = test::make_temp_dir() + "/" + type;
  const CliRun r = run_cli("quantize --model " + model + " --type " + type + " --out " + out + " " + extra);
  EXPECT_EQ(r.rc, 0) << r.output;
  return out;
}

// Logits of every position of `tokens` (prefill, or feed of half then steps).
std::vector<float> logits_of(const std::string& dir, m3_backend backend, const std::vector<int32_t>& tokens,
                             bool split = false) {
  m3_model* model = test::load(dir, backend);
  if (!model) return {};
  const int64_t V = test::info(model, M3_INFO_VOCAB_PADDED);
  m3_session* s = nullptr;
  EXPECT_EQ(m3_session_create(model, &s), M3_OK);
  std::vector<float> logits(tokens.size() * V);
  const std::size_t n = split ? tokens.size() / 2 : tokens.size();
  EXPECT_EQ(m3_session_feed(s, tokens.data(), n, M3_LOGITS_ALL, logits.data(), n * V), M3_OK) << m3_last_error();
  for (std::size_t t = n; t < tokens.size(); ++t)
    EXPECT_EQ(m3_session_step(s, tokens[t], &logits[t * V], V), M3_OK) << m3_last_error();
  m3_session_free(s);
  m3_model_free(model);
  return logits;
}

// Documented tolerances (docs/QUANTIZATION.md): logits rel-L2 against the official float64
// outputs on the golden cases (random weights, which quantize worse than trained ones).
double golden_tolerance(const std::string& type) {
  if (type == "f32") return 1e-4;
  if (type == "f16") return 3e-3;
  if (type == "bf16") return 3e-2;
  if (type == "int8") return 8e-2;
  return 0.6;  // q4 (a wrong nibble order gives > 1)
}

// Fast vs reference backend on a quantized model: the fast kernels multiply the quantized
// weights with int16-quantized activations (kernels_impl.h), the reference with the float
// activations. Measured ~1e-4 rel-L2 on the golden cases: 1000x below the quantization
// error itself, and still well above 1e-5 if the activations were used unquantized.
double fast_vs_reference_tolerance(const std::string& type) {
  return type == "int8" || type == "q4" ? 5e-4 : 1e-5;
}

class QuantizedGolden : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(QuantizedGolden, FastMatchesReferenceAndStaysWithinTolerance) {
  const auto& [name, type] = GetParam();
  const std::string src = std::string(test::kGoldenDir) + "/" + name;
  const std::string out = quantize_dir(src, type);
  const auto expected = test::read_tensors(src + "/expected.safetensors");
  const auto& tok = expected.at("tokens");
  const std::vector<int32_t> row(tok.values.begin(), tok.values.begin() + tok.shape[1]);

  const auto fast = logits_of(out, M3_BACKEND_CPU, row);
  const auto reference = logits_of(out, M3_BACKEND_CPU_REFERENCE, row);
  ASSERT_EQ(fast.size(), reference.size());
  const double fast_vs_ref = test::rel_l2(fast, reference);
  EXPECT_LE(fast_vs_ref, fast_vs_reference_tolerance(type)) << "fast vs reference backend";
  EXPECT_LE(test::rel_l2(logits_of(out, M3_BACKEND_CPU, row, true), reference), fast_vs_reference_tolerance(type))
      << "fast, split mode";

  const std::vector<float> official(expected.at("logits").values.begin(),
                                    expected.at("logits").values.begin() + fast.size());
  const double err = test::rel_l2(fast, official);
  std::printf("[ metrics  ] %s %s: logits rel-L2 vs float64 %.3g (fast vs reference %.2g)\n", name.c_str(),
              type.c_str(), err, fast_vs_ref);
  EXPECT_LE(err, golden_tolerance(type));
  if (type != "f32") {
    EXPECT_GT(err, 1e-7) << "the weights were not converted";
  }

  // Info of the written model: its type, the logical parameter count of the original, and the
  // bytes as stored (everything after the header: matrices, scales, small tensors).
  m3_model* q = test::load(out);
  m3_model* original = test::load(src);
  ASSERT_TRUE(q && original);
  const std::map<std::string, int64_t> codes = {{"f32", M3_WEIGHT_F32}, {"f16", M3_WEIGHT_F16}, {"bf16", M3_WEIGHT_BF16},
                                                {"int8", M3_WEIGHT_INT8}, {"q4", M3_WEIGHT_Q4}};
  EXPECT_EQ(test::info(q, M3_INFO_WEIGHT_TYPE), codes.at(type));
  EXPECT_EQ(test::info(original, M3_INFO_WEIGHT_TYPE), M3_WEIGHT_F32);
  EXPECT_EQ(test::info(q, M3_INFO_N_PARAMS), test::info(original, M3_INFO_N_PARAMS));
  std::ifstream f(out + "/model.safetensors", std::ios::binary);
  uint64_t header = 0;
  f.read(reinterpret_cast<char*>(&header), 8);
  EXPECT_EQ(test::info(q, M3_INFO_WEIGHT_BYTES), static_cast<int64_t>(fs::file_size(out + "/model.safetensors") - 8 - header));
  m3_model_free(q);
  m3_model_free(original);
  test::remove_tree(fs::path(out).parent_path().string());
}

INSTANTIATE_TEST_SUITE_P(Cases, QuantizedGolden,
                         ::testing::Combine(::testing::Values("siso_basic", "siso_basic_bin", "siso_outnorm_mlp",
                                                              "mimo_r2_outnorm", "mimo_r4"),
                                            ::testing::Values("f32", "f16", "bf16", "int8", "q4")),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(QuantizeCli, WeightBytesFollowTheLayout) {
  // siso_basic: embedding [304, 64], per layer in_proj [340, 64] and out_proj [64, 128].
  const int64_t matrices[][2] = {{304, 64}, {340, 64}, {64, 128}, {340, 64}, {64, 128}};
  const std::string src = std::string(test::kGoldenDir) + "/siso_basic";
  m3_model* original = test::load(src);
  int64_t matrix_bytes_f32 = 0;
  for (const auto& m : matrices) matrix_bytes_f32 += m[0] * m[1] * 4;
  const int64_t small = test::info(original, M3_INFO_WEIGHT_BYTES) - matrix_bytes_f32;
  m3_model_free(original);
  for (const char* type : {"int8", "q4"}) {
    const std::string out = quantize_dir(src, type, "--embedding-type " + std::string(type));
    int64_t want = small;
    for (const auto& m : matrices) want += m[0] * m3::weight_row_bytes(*m3::parse_weight_type(type), m[1]);
    m3_model* q = test::load(out);
    EXPECT_EQ(test::info(q, M3_INFO_WEIGHT_BYTES), want) << type;
    m3_model_free(q);
    test::remove_tree(fs::path(out).parent_path().string());
  }
}

TEST(QuantizeCli, Q4KeepsTheEmbeddingInInt8UnlessAsked) {
  const std::string src = std::string(test::kGoldenDir) + "/siso_basic";
  for (const std::string extra : {"", "--embedding-type q4"}) {
    const std::string out = quantize_dir(src, "q4", extra);
    m3::MappedFile f(out + "/model.safetensors");
    std::vector<std::vector<uint64_t>> copies;
    m3::SafetensorsMetadata meta;
    for (const auto& t : m3::read_safetensors(f, copies, meta)) {
      const m3::DType want = t.name == "backbone.embedding.weight"                ? (extra.empty() ? m3::DType::I8 : m3::DType::U8)
                             : t.name == "backbone.layers.0.mixer.in_proj.weight" ? m3::DType::U8
                             : t.name == "backbone.layers.0.mixer.D"              ? m3::DType::F32  // small: as they were
                                                                                  : t.dtype;
      EXPECT_EQ(t.dtype, want) << t.name;
    }
    EXPECT_EQ(meta["mamba3rt.weight_type"], "q4");
    EXPECT_EQ(meta["mamba3rt.quant_group"], "32");
    EXPECT_EQ(meta.count("mamba3rt.embedding_type"), extra.empty() ? 1u : 0u);
    test::remove_tree(fs::path(out).parent_path().string());
  }
}

TEST(QuantizeCli, WritesACompleteModelDirectory) {
  const std::string src = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_basic");
  std::filesystem::copy_file("data/tokenizers/tiny_301.json", src + "/tokenizer.json");
  std::ofstream(src + "/generation_config.json") << R"({"eos_token_id": 3})";
  const std::string out = quantize_dir(src, "int8");
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"})
    EXPECT_TRUE(fs::is_regular_file(out + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(out + "/model.safetensors.partial"));
  m3_model* q = test::load(out);
  const m3_tokenizer* tok = nullptr;
  EXPECT_EQ(m3_model_tokenizer(q, &tok), M3_OK);
  m3_model_free(q);
  test::remove_tree(src);
  test::remove_tree(fs::path(out).parent_path().string());
}

TEST(QuantizeCli, AlreadyQuantizedInputIsDequantizedFirst) {
  const std::string src = std::string(test::kGoldenDir) + "/siso_outnorm_mlp";
  const std::string int8 = quantize_dir(src, "int8");
  // int8 -> f32 is exact: the same logits as the int8 model.
  const CliRun r = run_cli("quantize --model " + int8 + " --type f32 --out " + int8 + "_f32");
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("already quantized"), std::string::npos) << r.output;
  const auto tokens = test::random_tokens(24, 389, 7);
  EXPECT_EQ(logits_of(int8 + "_f32", M3_BACKEND_CPU_REFERENCE, tokens),
            logits_of(int8, M3_BACKEND_CPU_REFERENCE, tokens));
  test::remove_tree(fs::path(int8).parent_path().string());
}

// A copy of siso_outnorm_mlp whose MLP is 80 wide (fc2 has 80 columns, not a multiple of 32).
std::string model_with_mlp_80() {
  const std::string dir = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_outnorm_mlp");
  std::vector<m3::OwnedTensor> tensors;
  {
    m3::MappedFile f(dir + "/model.safetensors");
    std::vector<std::vector<uint64_t>> copies;
    for (const auto& t : m3::read_safetensors(f, copies)) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      m3::OwnedTensor o{t.name, t.dtype, t.shape, {}};
      if (t.name.ends_with("mlp.fc1.weight")) {  // [256, 64] -> [160, 64]
        o.shape = {160, 64};
        o.bytes.assign(p, p + 160 * 64 * 4);
      } else if (t.name.ends_with("mlp.fc2.weight")) {  // [64, 128] -> [64, 80]
        o.shape = {64, 80};
        for (int r = 0; r < 64; ++r) o.bytes.insert(o.bytes.end(), p + r * 128 * 4, p + (r * 128 + 80) * 4);
      } else {
        o.bytes.assign(p, p + t.nbytes);
      }
      tensors.push_back(std::move(o));
    }
  }
  m3::write_safetensors(dir + "/model.safetensors", tensors);
  return dir;
}

TEST(QuantizeCli, MatrixWhoseColumnsAreNotAMultipleOf32StaysFloat) {
  const std::string src = model_with_mlp_80();
  const std::string out = test::make_temp_dir() + "/q4";
  const CliRun r = run_cli("quantize --model " + src + " --type q4 --out " + out);
  ASSERT_EQ(r.rc, 0) << r.output;
  EXPECT_NE(r.output.find("mlp.fc2.weight has 80 columns, not a multiple of 32: kept as f32"), std::string::npos)
      << r.output;
  m3_model* q = test::load(out);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(test::info(q, M3_INFO_WEIGHT_TYPE), M3_WEIGHT_Q4);
  EXPECT_EQ(test::info(q, M3_INFO_MLP_HIDDEN), 80);
  m3_model_free(q);
  const auto tokens = test::random_tokens(16, 389, 8);
  EXPECT_LE(test::rel_l2(logits_of(out, M3_BACKEND_CPU, tokens), logits_of(out, M3_BACKEND_CPU_REFERENCE, tokens)),
            fast_vs_reference_tolerance("q4"));
  test::remove_tree(src);
  test::remove_tree(fs::path(out).parent_path().string());
}

TEST(QuantizeCli, BadCommandLines) {
  const std::string src = std::string(test::kGoldenDir) + "/siso_basic";
  const std::string tmp = test::make_temp_dir();
  struct Case {
    std::string args;
    int rc;
    std::string message;
  };
  std::ofstream(tmp + "/a_file") << "x";
  fs::create_directories(tmp + "/full");
  std::ofstream(tmp + "/full/something") << "x";
  const Case cases[] = {
      {"--model " + src + " --type int4 --out " + tmp + "/o1", 2, "unknown --type 'int4'"},
      {"--model " + src + " --out " + tmp + "/o2", 2, "missing required option --type"},
      {"--model " + src + " --type int8", 2, "missing required option --out"},
      {"--model " + src + " --type q4 --embedding-type q3 --out " + tmp + "/o3", 2, "unknown --embedding-type 'q3'"},
      {"--model /nonexistent/model --type int8 --out " + tmp + "/o4", 1, "/nonexistent/model"},
      {"--model " + tmp + " --type int8 --out " + tmp + "/o5", 1, "config.json"},
      {"--model " + src + " --type int8 --out " + tmp + "/full", 1, "not empty (pass --force"},
      {"--model " + src + " --type int8 --out " + src, 1, "is the input directory"},
      {"--model " + src + " --type int8 --out " + tmp + "/a_file", 1, "not a directory"},
      {"--model " + src + " --type int8 --out " + tmp + "/a_file/sub", 1, "cannot create"},
  };
  for (const Case& c : cases) {
    const CliRun r = run_cli("quantize " + c.args);
    EXPECT_EQ(r.rc, c.rc) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(tmp + "/o1"));
  // --force writes into a non-empty directory and leaves other files alone.
  const CliRun forced = run_cli("quantize --model " + src + " --type int8 --out " + tmp + "/full --force");
  EXPECT_EQ(forced.rc, 0) << forced.output;
  EXPECT_TRUE(fs::exists(tmp + "/full/something"));
  test::remove_tree(tmp);
}

// Writes a copy of siso_basic with one matrix scaled so that it no longer fits the target.
TEST(QuantizeCli, WeightsTheTypeCannotHoldAreRefused) {
  const std::string dir = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_basic");
  const std::string tmp = test::make_temp_dir();
  for (auto [value, type, message] :
       {std::tuple{NAN, "int8", "non-finite weight"}, std::tuple{INFINITY, "bf16", "non-finite weight"},
        std::tuple{1e6f, "f16", "beyond what f16 can store"}, std::tuple{1e7f, "q4", "beyond what q4 can store"}}) {
    std::vector<m3::OwnedTensor> tensors;
    {
      m3::MappedFile f(dir + "/model.safetensors");
      std::vector<std::vector<uint64_t>> copies;
      for (const auto& t : m3::read_safetensors(f, copies)) {
        const auto* p = static_cast<const uint8_t*>(t.data);
        tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
        if (t.name == "backbone.layers.1.mixer.out_proj.weight") std::memcpy(&tensors.back().bytes[4 * 200], &value, 4);
      }
    }
    m3::write_safetensors(dir + "/model.safetensors", tensors);
    const std::string out = tmp + "/" + type;
    const CliRun r = run_cli("quantize --model " + dir + " --type " + type + " --out " + out);
    EXPECT_EQ(r.rc, 1) << type << ": " << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("backbone.layers.1.mixer.out_proj.weight' row 1"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "the directory it created is removed again";
  }
  test::remove_tree(dir);
  test::remove_tree(tmp);
}

// ---------------------------------------------------------------------------------------
// Bad quantized files: each an M3_ERR_FORMAT (or UNSUPPORTED) naming the file and tensor.

class QuantizedFile {
 public:
  explicit QuantizedFile(const std::string& type)
      : dir_(quantize_dir(std::string(test::kGoldenDir) + "/siso_basic", type, "--embedding-type " + type)) {
    m3::MappedFile f(weights());
    std::vector<std::vector<uint64_t>> copies;
    for (const auto& t : m3::read_safetensors(f, copies, metadata_)) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      tensors_.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
    }
  }
  ~QuantizedFile() { test::remove_tree(fs::path(dir_).parent_path().string()); }

  std::string weights() const { return dir_ + "/model.safetensors"; }
  m3::OwnedTensor& at(const std::string& name) {
    for (auto& t : tensors_)
      if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
  }
  void erase(const std::string& name) {
    std::erase_if(tensors_, [&](const m3::OwnedTensor& t) { return t.name == name; });
  }
  void add(m3::OwnedTensor t) { tensors_.push_back(std::move(t)); }
  std::map<std::string, std::string>& metadata() { return metadata_; }

  void expect_loads() {
    m3::write_safetensors(weights(), tensors_, metadata_);
    m3_model* model = test::load(dir_);
    EXPECT_NE(model, nullptr);
    m3_model_free(model);
  }

  // Writes the edited file and expects loading it to fail with `status` and a message
  // naming the file and containing `needle`.
  void expect_error(m3_status status, const std::string& needle) {
    m3::write_safetensors(weights(), tensors_, metadata_);
    for (m3_backend backend : {M3_BACKEND_CPU, M3_BACKEND_CPU_REFERENCE}) {
      m3_model_params* params = nullptr;
      ASSERT_EQ(m3_model_params_create(&params), M3_OK);
      m3_model_params_set_backend(params, backend);
      m3_model* model = nullptr;
      EXPECT_EQ(m3_model_load(dir_.c_str(), params, &model), status) << needle;
      m3_model_params_destroy(params);
      EXPECT_EQ(model, nullptr);
      m3_model_free(model);
      const std::string message = m3_last_error();
      EXPECT_NE(message.find(weights()), std::string::npos) << message;
      EXPECT_NE(message.find(needle), std::string::npos) << "message '" << message << "' lacks '" << needle << "'";
    }
  }

 private:
  std::string dir_;
  std::vector<m3::OwnedTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

const std::string kOutProj = "backbone.layers.0.mixer.out_proj.weight";  // [64, 128]

TEST(BadQuantizedFiles, TheUneditedFilesLoad) {
  for (const char* type : {"int8", "q4"}) {
    QuantizedFile f(type);  // read and written back unchanged (metadata included)
    f.expect_loads();
  }
}

TEST(BadQuantizedFiles, MissingScales) {
  QuantizedFile f("int8");
  f.erase(kOutProj + "_scales");
  f.expect_error(M3_ERR_FORMAT, "missing tensor '" + kOutProj + "_scales' (F16 [64, 4])");
}

TEST(BadQuantizedFiles, ScalesOfTheWrongDtype) {
  QuantizedFile f("q4");
  auto& s = f.at(kOutProj + "_scales");
  s.dtype = m3::DType::BF16;
  f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "_scales' has dtype BF16; quantization scales are F16");
}

TEST(BadQuantizedFiles, ScalesOfTheWrongShape) {
  QuantizedFile f("int8");
  f.at(kOutProj + "_scales").shape = {4, 64};
  f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "_scales' has shape [4, 64], expected [64, 4]");
}

TEST(BadQuantizedFiles, Int8WeightOfTheWrongShape) {
  QuantizedFile f("int8");
  f.at(kOutProj).shape = {128, 64};
  f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "' has shape [128, 64], expected [64, 128]");
}

TEST(BadQuantizedFiles, Q4WeightStoredOneColumnPerByte) {
  QuantizedFile f("q4");
  auto& w = f.at(kOutProj);
  w.shape = {64, 128};
  w.bytes.resize(64 * 128);
  f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "' has shape [64, 128], expected [64, 64]");
}

TEST(BadQuantizedFiles, ColumnsNotAMultipleOfTheGroup) {
  // A model whose fc2 has 80 columns, with fc2 stored as int8 all the same.
  const std::string src = model_with_mlp_80();
  std::vector<m3::OwnedTensor> tensors;
  {
    m3::MappedFile f(src + "/model.safetensors");
    std::vector<std::vector<uint64_t>> copies;
    for (const auto& t : m3::read_safetensors(f, copies)) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (t.name == "backbone.layers.0.mlp.fc2.weight") {
        tensors.push_back({t.name, m3::DType::I8, {64, 80}, std::vector<uint8_t>(64 * 80)});
        tensors.push_back({t.name + "_scales", m3::DType::F16, {64, 2}, std::vector<uint8_t>(64 * 2 * 2)});
      } else {
        tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
      }
    }
  }
  m3::write_safetensors(src + "/model.safetensors", tensors, {{"mamba3rt.weight_type", "int8"}});
  m3_model* model = nullptr;
  EXPECT_EQ(m3_model_load(src.c_str(), nullptr, &model), M3_ERR_FORMAT);
  EXPECT_NE(std::string(m3_last_error()).find("mlp.fc2.weight' (int8): the matrix has 80 columns, not a multiple of "
                                              "the quantization group 32"),
            std::string::npos)
      << m3_last_error();
  test::remove_tree(src);
}

TEST(BadQuantizedFiles, NonFiniteScales) {
  for (uint16_t bad : {uint16_t{0x7e00} /* NaN */, uint16_t{0xfc00} /* -inf */}) {
    QuantizedFile f("int8");
    auto& s = f.at(kOutProj + "_scales");
    std::memcpy(&s.bytes[2 * (4 * 5 + 2)], &bad, 2);  // row 5, group 2
    f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "_scales' has a non-finite scale (" +
                                      (bad == 0x7e00 ? "NaN" : "inf") + ") at row 5, group 2");
  }
}

TEST(BadQuantizedFiles, ScalesWithoutAQuantizedWeight) {
  {
    QuantizedFile f("int8");  // out_proj back to float, its scales left behind
    auto& w = f.at(kOutProj);
    w.dtype = m3::DType::F32;
    w.bytes.assign(64 * 128 * 4, 0);
    f.expect_error(M3_ERR_FORMAT, "'" + kOutProj + "_scales' has no quantized weight to scale ('" + kOutProj +
                                      "' is F32, not I8 or U8)");
  }
  {
    QuantizedFile f("int8");  // scales for a tensor that does not exist
    f.add({"backbone.layers.0.mixer.xyz.weight_scales", m3::DType::F16, {2, 2}, std::vector<uint8_t>(8)});
    f.expect_error(M3_ERR_FORMAT, "'backbone.layers.0.mixer.xyz.weight_scales' has no quantized weight to scale "
                                  "('backbone.layers.0.mixer.xyz.weight' is not part of this model)");
  }
  {
    QuantizedFile f("int8");  // scales for a norm
    f.add({"backbone.norm_f.weight_scales", m3::DType::F16, {1, 2}, std::vector<uint8_t>(4)});
    f.expect_error(M3_ERR_FORMAT, "'backbone.norm_f.weight_scales' has no quantized weight to scale "
                                  "('backbone.norm_f.weight' is not a quantizable matrix)");
  }
}

TEST(BadQuantizedFiles, OnlyTheLargeMatricesMayBeQuantized) {
  QuantizedFile f("int8");
  auto& norm = f.at("backbone.layers.0.norm.weight");
  norm.dtype = m3::DType::I8;
  norm.bytes.resize(64);
  f.expect_error(M3_ERR_FORMAT, "'backbone.layers.0.norm.weight' has dtype I8; expected F32, BF16 or F16 (only the "
                                "embedding, lm_head, in_proj, out_proj, fc1 and fc2 may be quantized)");
}

TEST(BadQuantizedFiles, Metadata) {
  {
    QuantizedFile f("int8");
    f.metadata().clear();
    f.expect_error(M3_ERR_FORMAT, "has quantized (I8/U8) tensors but no \"mamba3rt.weight_type\" metadata");
  }
  {
    QuantizedFile f("q4");
    f.metadata()["mamba3rt.weight_type"] = "int8";
    f.expect_error(M3_ERR_FORMAT, "metadata mamba3rt.weight_type = 'int8' but the block matrices are stored as q4");
  }
  {
    QuantizedFile f("int8");
    f.metadata()["mamba3rt.weight_type"] = "int3";
    f.expect_error(M3_ERR_FORMAT, "metadata mamba3rt.weight_type = 'int3' is not one of f32, f16, bf16, int8, q4");
  }
  {
    QuantizedFile f("q4");
    f.metadata()["mamba3rt.quant_group"] = "64";
    f.expect_error(M3_ERR_UNSUPPORTED, "metadata mamba3rt.quant_group = '64': this runtime reads quantization groups of 32");
  }
}

TEST(BadQuantizedFiles, FloatFileLabelledQuantized) {
  const std::string dir = test::copy_to_temp(std::string(test::kGoldenDir) + "/siso_basic");
  std::vector<m3::OwnedTensor> tensors;
  {
    m3::MappedFile f(dir + "/model.safetensors");
    std::vector<std::vector<uint64_t>> copies;
    for (const auto& t : m3::read_safetensors(f, copies)) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
    }
  }
  m3::write_safetensors(dir + "/model.safetensors", tensors, {{"mamba3rt.weight_type", "q4"}});
  m3_model* model = nullptr;
  EXPECT_EQ(m3_model_load(dir.c_str(), nullptr, &model), M3_ERR_FORMAT);
  EXPECT_NE(std::string(m3_last_error()).find("'q4' but the block matrices are stored as f32"), std::string::npos)
      << m3_last_error();
  test::remove_tree(dir);
}

TEST(QuantizedFiles, ScalesAreInTheFingerprint) {
  const std::string out = quantize_dir(std::string(test::kGoldenDir) + "/siso_basic", "int8");
  m3_model* model = test::load(out);
  m3_session* s = nullptr;
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  const int32_t tokens[] = {1, 2, 3};
  ASSERT_EQ(m3_session_feed(s, tokens, 3, M3_LOGITS_NONE, nullptr, 0), M3_OK);
  std::size_t size = 0;
  EXPECT_EQ(m3_session_save(s, nullptr, 0, &size), M3_ERR_BUFFER_TOO_SMALL);
  std::vector<uint8_t> blob(size);
  ASSERT_EQ(m3_session_save(s, blob.data(), blob.size(), &size), M3_OK);
  m3_session_free(s);
  m3_model_free(model);

  // The same file with one scale changed (the weights' bytes all equal) is another model.
  {
    std::vector<m3::OwnedTensor> tensors;
    m3::SafetensorsMetadata meta;
    {
      m3::MappedFile f(out + "/model.safetensors");
      std::vector<std::vector<uint64_t>> copies;
      for (const auto& t : m3::read_safetensors(f, copies, meta)) {
        const auto* p = static_cast<const uint8_t*>(t.data);
        tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(p, p + t.nbytes)});
        if (t.name == kOutProj + "_scales") tensors.back().bytes[0] ^= 1;
      }
    }
    m3::write_safetensors(out + "/model.safetensors", tensors, meta);
  }
  model = test::load(out);
  ASSERT_EQ(m3_session_create(model, &s), M3_OK);
  EXPECT_EQ(m3_session_restore(s, blob.data(), blob.size()), M3_ERR_MODEL_MISMATCH);
  m3_session_free(s);
  m3_model_free(model);
  test::remove_tree(fs::path(out).parent_path().string());
}

// ---------------------------------------------------------------------------------------
// Quality on the bundled (trained) model: next-token distributions of the quantized model
// against the f16 original over held-out text (docs/QUANTIZATION.md has the full table).

TEST(QuantizedBundledModel, NextTokenDistributionsStayClose) {
  const std::string model_dir = "../models/default";
  ASSERT_TRUE(fs::exists(model_dir + "/config.json"));
  std::ifstream in(model_dir + "/heldout_sample.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  m3_model* original = test::load(model_dir);
  const m3_tokenizer* tok = nullptr;
  ASSERT_EQ(m3_model_tokenizer(original, &tok), M3_OK);
  std::vector<int32_t> ids(4096);
  std::size_t n = 0;
  ASSERT_EQ(m3_tokenize(tok, text.data(), text.size(), 0, ids.data(), ids.size(), &n), M3_OK);
  ids.resize(std::min<std::size_t>(n, 256));
  const int64_t V = test::info(original, M3_INFO_VOCAB_PADDED), vocab = test::info(original, M3_INFO_VOCAB_SIZE);
  m3_model_free(original);
  const auto base = logits_of(model_dir, M3_BACKEND_CPU, ids);

  // Documented bounds: mean KL(original || quantized) in nats and top-1 agreement.
  for (auto [type, max_kl, min_top1] : {std::tuple{"int8", 5e-4, 0.97}, std::tuple{"q4", 0.03, 0.85}}) {
    const std::string out = quantize_dir(model_dir, type);
    const auto got = logits_of(out, M3_BACKEND_CPU, ids);
    double kl = 0;
    int agree = 0;
    for (std::size_t p = 0; p < ids.size(); ++p) {
      const float* a = &base[p * V];
      const float* b = &got[p * V];
      const double ma = *std::max_element(a, a + vocab), mb = *std::max_element(b, b + vocab);
      double sa = 0, sb = 0;
      for (int64_t i = 0; i < vocab; ++i) {
        sa += std::exp(a[i] - ma);
        sb += std::exp(b[i] - mb);
      }
      const double la = ma + std::log(sa), lb = mb + std::log(sb);
      for (int64_t i = 0; i < vocab; ++i) kl += std::exp(a[i] - la) * ((a[i] - la) - (b[i] - lb));
      agree += std::max_element(a, a + vocab) - a == std::max_element(b, b + vocab) - b;
    }
    kl /= static_cast<double>(ids.size());
    const double top1 = agree / static_cast<double>(ids.size());
    std::printf("[ metrics  ] bundled model %s: mean KL %.3g nats, top-1 agreement %.1f%% over %zu positions\n", type,
                kl, 100 * top1, ids.size());
    EXPECT_LT(kl, max_kl) << type;
    EXPECT_GT(top1, min_top1) << type;
    test::remove_tree(fs::path(out).parent_path().string());
  }
}

}  // namespace
