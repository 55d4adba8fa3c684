// The CUDA module's one exported symbol (cuda_module_abi.h).
#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_module_abi.h"

namespace m3 {
namespace {

m3_status availability(std::string* why) { return CudaBackend::availability(why); }

std::unique_ptr<Backend> create(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
                                const BackendOptions& options) {
  return std::make_unique<CudaBackend>(config, weights, layout, options);
}

}  // namespace
}  // namespace m3

extern "C" __attribute__((visibility("default"))) const m3::CudaModuleEntry* mamba3rt_cuda_module_entry() {
  static const std::string build_id = m3::cuda_module_build_id(MAMBA3RT_VERSION_STRING);
  static const m3::CudaModuleEntry entry{m3::kCudaModuleAbi, build_id.c_str(), &m3::availability, &m3::create};
  return &entry;
}
