// Overlapped kernel launches (programmatic dependent launch, sm_90 and newer). A decode step
// is a chain of short kernels, each waiting for the one before: without overlap every
// kernel pays its launch, its ramp-up and the previous kernel's tail. With it, a kernel is
// launched while the one before still runs and first does the part that depends on nothing
// earlier in the pass (loading its weights, a session's state of its own layer), then waits.
//
// The contract of a kernel launched with launch_overlapped:
//   - before wait_for_previous_kernel() it reads only what no kernel of the same pass
//     writes (weights, and data written by earlier passes or copies before the pass);
//   - it calls wait_for_previous_kernel() before touching anything else, in every thread
//     that does (the wait covers all earlier kernels: each of them waited for its own
//     predecessor before finishing);
//   - it calls let_next_kernel_start() after its wait, so that at most one kernel runs ahead.
// On older GPUs, and with MAMBA3RT_CUDA_PDL=0, launches are plain and the two calls do nothing.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>

namespace m3::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Whether launches on the current device may overlap (compute capability 9.0 or newer).
inline bool overlapped_launches_available() {
  static const bool disabled = [] {
    const char* s = std::getenv("MAMBA3RT_CUDA_PDL");
    return s && std::strcmp(s, "0") == 0;
  }();
  if (disabled) return false;
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) return false;
  return major >= 9;
}

// kernel<<<grid, block, smem, stream>>>(args...), allowed to start before the previous
// kernel on the stream has finished (see the contract above).
template <class... Params, class... Args>
cudaError_t launch_overlapped(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                              Args... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute overlap[1];
  overlap[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap[0].val.programmaticStreamSerializationAllowed = 1;
  if (overlapped_launches_available()) {
    config.attrs = overlap;
    config.numAttrs = 1;
  }
  return cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

}  // namespace m3::cuda
