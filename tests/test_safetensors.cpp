// The safetensors reader against hand-made headers, and a write/read round trip.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "model/mapped_file.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"

namespace {

std::string temp_path(const char* name) { return ::testing::TempDir() + "/" + name; }

// Writes a file with the given JSON header followed by `data_bytes` zero bytes.
std::string write_raw(const char* name, const std::string& header, std::size_t data_bytes) {
  const std::string path = temp_path(name);
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>(n >> (8 * i)));
  out << header << std::string(data_bytes, '\0');
  return path;
}

m3_status read_status(const std::string& path, std::string* message = nullptr) {
  try {
    m3::MappedFile f(path);
    std::vector<std::vector<uint64_t>> copies;
    m3::read_safetensors(f, copies);
    return M3_OK;
  } catch (const m3::Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
}

TEST(Safetensors, RoundTrip) {
  std::vector<m3::OwnedTensor> in = {{"a", m3::DType::F32, {2, 3}, std::vector<uint8_t>(24)},
                                     {"b", m3::DType::I32, {4}, std::vector<uint8_t>(16)}};
  for (std::size_t i = 0; i < in[0].bytes.size(); ++i) in[0].bytes[i] = static_cast<uint8_t>(i);
  const std::string path = temp_path("rt.safetensors");
  m3::write_safetensors(path, in);
  m3::MappedFile f(path);
  std::vector<std::vector<uint64_t>> copies;
  const auto out = m3::read_safetensors(f, copies);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].name, "a");
  EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(std::memcmp(out[0].data, in[0].bytes.data(), 24), 0);
  EXPECT_EQ(out[1].dtype, m3::DType::I32);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out[0].data) % 4, 0u);
}

TEST(Safetensors, ValidHandMadeFile) {
  EXPECT_EQ(read_status(write_raw("ok", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8)), M3_OK);
}

TEST(Safetensors, SizeMismatch) {
  std::string msg;
  EXPECT_EQ(read_status(write_raw("sz", R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), &msg),
            M3_ERR_FORMAT);
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;
}

TEST(Safetensors, OffsetsBeyondData) {
  EXPECT_EQ(read_status(write_raw("off", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)),
            M3_ERR_FORMAT);
  EXPECT_EQ(read_status(write_raw("rev", R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8)),
            M3_ERR_FORMAT);
}

TEST(Safetensors, ShapeOverflow) {
  EXPECT_EQ(read_status(write_raw(
                "ovf", R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}})", 0)),
            M3_ERR_FORMAT);
}

TEST(Safetensors, BadFields) {
  EXPECT_EQ(read_status(write_raw("neg", R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0)),
            M3_ERR_FORMAT);
  EXPECT_EQ(read_status(write_raw("dt", R"({"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", 1)),
            M3_ERR_UNSUPPORTED);
  EXPECT_EQ(read_status(write_raw("miss", R"({"x":{"dtype":"F32","shape":[1]}})", 4)), M3_ERR_FORMAT);
  EXPECT_EQ(read_status(write_raw("arr", R"([1,2,3])", 0)), M3_ERR_FORMAT);
  EXPECT_EQ(read_status(write_raw("json", R"({"x":)", 0)), M3_ERR_FORMAT);
}

TEST(Safetensors, HugeHeaderLength) {
  const std::string path = temp_path("huge");
  std::ofstream(path, std::ios::binary) << std::string(8, '\xff') << "{}";
  std::string msg;
  EXPECT_EQ(read_status(path, &msg), M3_ERR_FORMAT);
}

TEST(Safetensors, EmptyAndMissingFiles) {
  const std::string path = temp_path("empty");
  std::ofstream(path, std::ios::binary).close();
  EXPECT_EQ(read_status(path), M3_ERR_FORMAT);
  EXPECT_EQ(read_status(temp_path("does-not-exist")), M3_ERR_IO);
}

TEST(Safetensors, MisalignedDataIsCopied) {
  // A 1-byte U8 tensor first puts the F32 tensor at an odd offset.
  const std::string path = write_raw(
      "mis", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})",
      5);
  m3::MappedFile f(path);
  std::vector<std::vector<uint64_t>> copies;
  const auto ts = m3::read_safetensors(f, copies);
  for (const auto& t : ts) {
    if (t.name == "b") {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 4, 0u);
    }
  }
}

}  // namespace
