// Helpers shared by the API tests: golden-case discovery, reading expected tensors, and
// the error metrics of ../shared/golden/README.md.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mamba3rt.h"

namespace test {

constexpr const char* kGoldenDir = "data/golden";

// Names of the golden case folders (sorted).
std::vector<std::string> golden_cases();

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;  // int32 tensors are converted
};
// All tensors of a safetensors file (F32 and I32 only).
std::map<std::string, Tensor> read_tensors(const std::string& path);

// ||a - b|| / ||b||.
double rel_l2(const std::vector<float>& a, const std::vector<float>& b);
// The same with differences taken modulo 2pi (angles).
double rel_l2_circular(const std::vector<float>& a, const std::vector<float>& b);

// Loads a model or fails the current test.
m3_model* load(const std::string& dir, m3_backend backend = M3_BACKEND_CPU);
int64_t info(const m3_model* model, m3_model_info_key key);

// Deterministic pseudo-random token ids in [0, vocab).
std::vector<int32_t> random_tokens(std::size_t n, int64_t vocab, uint64_t seed);

// Copies a directory tree into a fresh temporary directory and returns its path.
std::string copy_to_temp(const std::string& dir);
std::string make_temp_dir();
void remove_tree(const std::string& dir);

}  // namespace test
