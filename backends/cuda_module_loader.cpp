#include "backends/cuda_module_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace m3 {
namespace {

constexpr const char* kModuleFile = "libmamba3rt_cuda.so";

// The directory this code was loaded from (libmamba3rt.so, or an executable linking the
// core statically): the module is installed and built next to it.
std::string own_directory() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&own_directory), &info) == 0 || !info.dli_fname) return {};
  const std::string path = info.dli_fname;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

struct LoadedModule {
  const CudaModuleEntry* entry = nullptr;
  std::string error;
};

LoadedModule load() {
  LoadedModule m;
  // MAMBA3RT_CUDA_MODULE names the file outright; else next to this library, then the
  // loader's search path.
  std::string candidates[2];
  if (const char* env = std::getenv("MAMBA3RT_CUDA_MODULE"); env && *env) {
    candidates[0] = env;
  } else {
    candidates[0] = own_directory() + kModuleFile;
    candidates[1] = kModuleFile;
  }
  void* handle = nullptr;
  std::string errors;
  for (const std::string& path : candidates) {
    if (path.empty()) continue;
    // RTLD_LOCAL: the module's copy of the core stays private to it.
    handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) break;
    const char* e = dlerror();
    errors += (errors.empty() ? "" : "; ") + std::string(e ? e : path + ": cannot load");
  }
  if (!handle) {
    m.error = "the CUDA backend module could not be loaded (" + errors +
              "); build with CUDA (cmake -DMAMBA3RT_CUDA=ON) and keep " + kModuleFile +
              " next to libmamba3rt, or set MAMBA3RT_CUDA_MODULE";
    return m;
  }
  auto fn = reinterpret_cast<CudaModuleEntryFn>(dlsym(handle, M3_CUDA_MODULE_SYMBOL));
  const CudaModuleEntry* entry = fn ? fn() : nullptr;
  if (!entry) {
    m.error = std::string(kModuleFile) + " has no " + M3_CUDA_MODULE_SYMBOL + " entry";
  } else if (entry->abi != kCudaModuleAbi || cuda_module_build_id(MAMBA3RT_VERSION_STRING) != entry->build_id) {
    m.error = std::string(kModuleFile) + " is from another build (" + entry->build_id + ", expected " +
              cuda_module_build_id(MAMBA3RT_VERSION_STRING) + ")";
  } else {
    m.entry = entry;
    return m;  // stays loaded for the life of the process: backends hold its code
  }
  dlclose(handle);
  return m;
}

}  // namespace

const CudaModuleEntry* cuda_module(std::string* why) {
  static const LoadedModule loaded = load();
  if (!loaded.entry && why) *why = loaded.error;
  return loaded.entry;
}

}  // namespace m3
