// The Vulkan entry points the backend uses, loaded from the system's loader
// (libvulkan.so.1) with dlopen at run time: libmamba3rt does not link libvulkan, so it loads
// and runs on machines without one (the backend then reports itself unavailable).
#pragma once

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace m3::vulkan {

#define M3_VK_GLOBAL_FUNCTIONS(X) \
  X(vkCreateInstance)             \
  X(vkEnumerateInstanceLayerProperties)

#define M3_VK_INSTANCE_FUNCTIONS(X)        \
  X(vkDestroyInstance)                     \
  X(vkEnumeratePhysicalDevices)            \
  X(vkGetPhysicalDeviceProperties)         \
  X(vkGetPhysicalDeviceProperties2)        \
  X(vkGetPhysicalDeviceFeatures2)          \
  X(vkGetPhysicalDeviceQueueFamilyProperties) \
  X(vkGetPhysicalDeviceMemoryProperties)   \
  X(vkCreateDevice)                        \
  X(vkGetDeviceProcAddr)

#define M3_VK_DEVICE_FUNCTIONS(X)     \
  X(vkDestroyDevice)                  \
  X(vkGetDeviceQueue)                 \
  X(vkCreateBuffer)                   \
  X(vkDestroyBuffer)                  \
  X(vkGetBufferMemoryRequirements)    \
  X(vkAllocateMemory)                 \
  X(vkFreeMemory)                     \
  X(vkBindBufferMemory)               \
  X(vkMapMemory)                      \
  X(vkUnmapMemory)                    \
  X(vkCreateShaderModule)             \
  X(vkDestroyShaderModule)            \
  X(vkCreateDescriptorSetLayout)      \
  X(vkDestroyDescriptorSetLayout)     \
  X(vkCreatePipelineLayout)           \
  X(vkDestroyPipelineLayout)          \
  X(vkCreateComputePipelines)         \
  X(vkDestroyPipeline)                \
  X(vkCreateDescriptorPool)           \
  X(vkDestroyDescriptorPool)          \
  X(vkAllocateDescriptorSets)         \
  X(vkFreeDescriptorSets)             \
  X(vkUpdateDescriptorSets)           \
  X(vkCreateCommandPool)              \
  X(vkDestroyCommandPool)             \
  X(vkAllocateCommandBuffers)         \
  X(vkFreeCommandBuffers)             \
  X(vkBeginCommandBuffer)             \
  X(vkEndCommandBuffer)               \
  X(vkResetCommandBuffer)             \
  X(vkCmdBindPipeline)                \
  X(vkCmdBindDescriptorSets)          \
  X(vkCmdPushConstants)               \
  X(vkCmdDispatch)                    \
  X(vkCmdPipelineBarrier)             \
  X(vkCmdCopyBuffer)                  \
  X(vkCmdFillBuffer)                  \
  X(vkQueueSubmit)                    \
  X(vkCreateFence)                    \
  X(vkDestroyFence)                   \
  X(vkWaitForFences)                  \
  X(vkResetFences)                    \
  X(vkDeviceWaitIdle)                 \
  X(vkCreateQueryPool)                \
  X(vkDestroyQueryPool)               \
  X(vkCmdResetQueryPool)              \
  X(vkCmdWriteTimestamp)              \
  X(vkGetQueryPoolResults)

#define M3_VK_DECLARE(name) PFN_##name name = nullptr;

// Global and instance-level functions; filled by load_loader() and load_instance().
struct InstanceApi {
  PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
  M3_VK_GLOBAL_FUNCTIONS(M3_VK_DECLARE)
  M3_VK_INSTANCE_FUNCTIONS(M3_VK_DECLARE)
  PFN_vkCreateDebugUtilsMessengerEXT vkCreateDebugUtilsMessengerEXT = nullptr;    // optional
  PFN_vkDestroyDebugUtilsMessengerEXT vkDestroyDebugUtilsMessengerEXT = nullptr;  // optional
};

// Device-level functions, through vkGetDeviceProcAddr (no loader dispatch per call).
struct DeviceApi {
  M3_VK_DEVICE_FUNCTIONS(M3_VK_DECLARE)
};

#undef M3_VK_DECLARE

// Opens the Vulkan loader once per process and resolves the global functions. Returns
// false with the reason when there is none (the handle stays open for the process's life).
bool load_loader(InstanceApi& api, std::string* why);
// Resolves the instance functions; false with the missing function's name.
bool load_instance(InstanceApi& api, VkInstance instance, std::string* why);
bool load_device(const InstanceApi& api, VkDevice device, DeviceApi& out, std::string* why);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.
const char* result_name(VkResult r);

}  // namespace m3::vulkan
