#include "test_support.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <random>

#include "model/mapped_file.h"
#include "model/safetensors_reader.h"

namespace fs = std::filesystem;

namespace test {

std::vector<std::string> golden_cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(kGoldenDir))
    if (e.is_directory() && fs::exists(e.path() / "expected.safetensors")) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::string, Tensor> read_tensors(const std::string& path) {
  m3::MappedFile file(path);
  std::vector<std::vector<uint64_t>> copies;
  std::map<std::string, Tensor> out;
  for (const auto& t : m3::read_safetensors(file, copies)) {
    Tensor x{t.shape, std::vector<float>(static_cast<std::size_t>(t.numel()))};
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (t.dtype == m3::DType::F32) x.values[i] = static_cast<const float*>(t.data)[i];
      else if (t.dtype == m3::DType::I32) x.values[i] = static_cast<float>(static_cast<const int32_t*>(t.data)[i]);
      else ADD_FAILURE() << path << ": unexpected dtype of " << t.name;
    }
    out.emplace(t.name, std::move(x));
  }
  return out;
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

double rel_l2_circular(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  const double two_pi = 2 * std::numbers::pi;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::remainder(static_cast<double>(a[i]) - b[i], two_pi);
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

m3_model* load(const std::string& dir, m3_backend backend) {
  m3_model_params* params = nullptr;
  EXPECT_EQ(m3_model_params_create(&params), M3_OK);
  EXPECT_EQ(m3_model_params_set_backend(params, backend), M3_OK);
  m3_model* model = nullptr;
  m3_status s = m3_model_load(dir.c_str(), params, &model);
  m3_model_params_destroy(params);
  EXPECT_EQ(s, M3_OK) << dir << ": " << m3_last_error();
  return model;
}

int64_t info(const m3_model* model, m3_model_info_key key) {
  int64_t v = -1;
  EXPECT_EQ(m3_model_info(model, key, &v), M3_OK) << m3_last_error();
  return v;
}

std::vector<int32_t> random_tokens(std::size_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> t(n);
  for (auto& x : t) x = dist(rng);
  return t;
}

std::string make_temp_dir() {
  std::string templ = (fs::temp_directory_path() / "mamba3rt-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) ADD_FAILURE() << "mkdtemp failed";
  return templ;
}

std::string copy_to_temp(const std::string& dir) {
  std::string tmp = make_temp_dir();
  fs::copy(dir, tmp, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  for (const auto& e : fs::recursive_directory_iterator(tmp))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  return tmp;
}

void remove_tree(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace test
