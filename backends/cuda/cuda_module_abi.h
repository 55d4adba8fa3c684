// The boundary between libmamba3rt and its CUDA backend module (libmamba3rt_cuda.so),
// which the library loads only when the CUDA backend is asked for: users without a GPU,
// driver or CUDA toolkit never need libcudart, libcublas or libcuda. Both sides are built
// from the same tree in one build; `build_id` guards against mixing builds.
#pragma once

#include <memory>
#include <string>

#include "src/backend.h"

namespace m3 {

constexpr int kCudaModuleAbi = 3;  // 2: Backend::device_name(), BackendOptions::device; 3: failed_pass_keeps_state()

struct CudaModuleEntry {
  int abi;               // kCudaModuleAbi
  const char* build_id;  // MAMBA3RT_VERSION_STRING and the C++ ABI it was built with
  // M3_OK when a CUDA device can run the backend; otherwise the status and the reason.
  m3_status (*availability)(std::string* why);
  // Throws m3::Error (the type's name matches across the boundary) on failure.
  std::unique_ptr<Backend> (*create)(const ModelConfig& config, const ModelWeights& weights,
                                     const StateLayout& layout, const BackendOptions& options);
};

// The one symbol the module exports.
#define M3_CUDA_MODULE_SYMBOL "mamba3rt_cuda_module_entry"
using CudaModuleEntryFn = const CudaModuleEntry* (*)();

// Both sides call it with their MAMBA3RT_VERSION_STRING.
inline std::string cuda_module_build_id(const char* version) {
  return std::string(version) + " gcc-abi " + std::to_string(__GXX_ABI_VERSION) + " cxx11-abi " +
         std::to_string(_GLIBCXX_USE_CXX11_ABI);
}

}  // namespace m3
