// Loads the CUDA backend module on first use (backends/cuda/cuda_module_abi.h).
#pragma once

#include <string>

#include "backends/cuda/cuda_module_abi.h"

namespace m3 {

// The module's entry, or null with the reason in *why (module not built or not found, a
// library it needs missing, a module from another build). Loaded once per process.
const CudaModuleEntry* cuda_module(std::string* why);

}  // namespace m3
