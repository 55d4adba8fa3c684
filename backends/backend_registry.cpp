// Maps m3_backend values to backend implementations. The only file that knows them all.
#include "backends/cpu/cpu_fast_backend.h"
#include "backends/cpu/cpu_reference_backend.h"
#include "backends/cuda_module_loader.h"
#ifdef MAMBA3RT_HAVE_VULKAN
#include "backends/vulkan/vulkan_backend.h"
#endif
#include "common/error.h"
#include "src/backend.h"

namespace m3 {

m3_status backend_availability(m3_backend kind, std::string* why) {
  switch (kind) {
    case M3_BACKEND_AUTO:
    case M3_BACKEND_CPU:
    case M3_BACKEND_CPU_REFERENCE: return M3_OK;
    case M3_BACKEND_VULKAN:
#ifdef MAMBA3RT_HAVE_VULKAN
      return VulkanBackend::availability(why);
#else
      *why = "the Vulkan backend is not built into this library (built without the Vulkan headers, glslc and "
             "SPIRV-Cross)";
      return M3_ERR_BACKEND_UNAVAILABLE;
#endif
    case M3_BACKEND_CUDA: {
      const CudaModuleEntry* cuda = cuda_module(why);
      if (!cuda) return M3_ERR_BACKEND_UNAVAILABLE;
      return cuda->availability(why);
    }
  }
  *why = "unknown backend value " + std::to_string(static_cast<int>(kind));
  return M3_ERR_INVALID_ARGUMENT;
}

std::unique_ptr<Backend> create_backend(m3_backend kind, const BackendOptions& options, const ModelConfig& config,
                                        const ModelWeights& weights, const StateLayout& layout) {
  std::string why;
  m3_status status = backend_availability(kind, &why);
  if (status != M3_OK) fail(status, "backend " + std::string(m3_backend_name(kind)) + ": " + why);
  if (kind == M3_BACKEND_CPU_REFERENCE) return std::make_unique<CpuReferenceBackend>(config, weights, layout);
  if (kind == M3_BACKEND_CUDA) return cuda_module(nullptr)->create(config, weights, layout, options);
#ifdef MAMBA3RT_HAVE_VULKAN
  if (kind == M3_BACKEND_VULKAN) return std::make_unique<VulkanBackend>(config, weights, layout, options);
#endif
  // AUTO resolves to the CPU while it is the only backend.
  return std::make_unique<CpuFastBackend>(config, weights, layout, options.threads, cpu::best_kernel_table(),
                                          options.release_weight_pages);
}

}  // namespace m3
