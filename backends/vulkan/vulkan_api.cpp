#include "backends/vulkan/vulkan_api.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace m3::vulkan {

bool load_loader(InstanceApi& api, std::string* why) {
  static void* handle = nullptr;
  static std::string open_error;
  static std::once_flag once;
  std::call_once(once, [] {
    // MAMBA3RT_VULKAN_LOADER names another loader (tests; unusual installs).
    const char* override_path = std::getenv("MAMBA3RT_VULKAN_LOADER");
    const char* path = override_path && *override_path ? override_path : "libvulkan.so.1";
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* e = dlerror();
      open_error = std::string("no Vulkan loader (") + (e ? e : path) + "); install libvulkan1 and a Vulkan driver";
    }
  });
  if (!handle) {
    *why = open_error;
    return false;
  }
  api.vkGetInstanceProcAddr = reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(handle, "vkGetInstanceProcAddr"));
  if (!api.vkGetInstanceProcAddr) {
    *why = "the Vulkan loader has no vkGetInstanceProcAddr";
    return false;
  }
#define M3_VK_LOAD_GLOBAL(name)                                                               \
  api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name)); \
  if (!api.name) {                                                                            \
    *why = "the Vulkan loader lacks " #name;                                                  \
    return false;                                                                             \
  }
  M3_VK_GLOBAL_FUNCTIONS(M3_VK_LOAD_GLOBAL)
#undef M3_VK_LOAD_GLOBAL
  return true;
}

bool load_instance(InstanceApi& api, VkInstance instance, std::string* why) {
#define M3_VK_LOAD_INSTANCE(name)                                                       \
  api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(instance, #name)); \
  if (!api.name) {                                                                      \
    *why = "the Vulkan instance lacks " #name " (Vulkan 1.1 is needed)";                \
    return false;                                                                       \
  }
  M3_VK_INSTANCE_FUNCTIONS(M3_VK_LOAD_INSTANCE)
#undef M3_VK_LOAD_INSTANCE
  api.vkCreateDebugUtilsMessengerEXT = reinterpret_cast<PFN_vkCreateDebugUtilsMessengerEXT>(
      api.vkGetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT"));
  api.vkDestroyDebugUtilsMessengerEXT = reinterpret_cast<PFN_vkDestroyDebugUtilsMessengerEXT>(
      api.vkGetInstanceProcAddr(instance, "vkDestroyDebugUtilsMessengerEXT"));
  return true;
}

bool load_device(const InstanceApi& api, VkDevice device, DeviceApi& out, std::string* why) {
#define M3_VK_LOAD_DEVICE(name)                                                      \
  out.name = reinterpret_cast<PFN_##name>(api.vkGetDeviceProcAddr(device, #name)); \
  if (!out.name) {                                                                   \
    *why = "the Vulkan device lacks " #name;                                         \
    return false;                                                                    \
  }
  M3_VK_DEVICE_FUNCTIONS(M3_VK_LOAD_DEVICE)
#undef M3_VK_LOAD_DEVICE
  return true;
}

const char* result_name(VkResult r) {
  switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult error";
  }
}

}  // namespace m3::vulkan
