// A Vulkan device ready for compute: the instance, the chosen physical device and what it
// can do, the logical device with one compute queue, and the buffers and command
// submission the backend builds on. Device choice: discrete > integrated > virtual > CPU
// (lavapipe), unless a selector (an index into list_devices(), or part of a device's name)
// says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/vulkan/vulkan_api.h"
#include "common/device_faults.h"

namespace m3::vulkan {

struct DeviceDescription {
  std::string name;
  std::string type;  // "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other"
  uint32_t api_version = 0;
  bool usable = false;  // Vulkan 1.1 and a compute queue
  int rank = 0;         // preference by type: discrete 4 > integrated > virtual > CPU 1 > other 0
};

// The devices of the system's Vulkan driver(s), in the loader's order; empty with the
// reason when there is no loader or driver.
std::vector<DeviceDescription> list_devices(std::string* why);

// What the chosen device offers that the shaders can use (after MAMBA3RT_VULKAN_DISABLE,
// a comma list of "16bit_storage" and "subgroups", which tests use to force the fallbacks).
struct DeviceCapabilities {
  bool storage_16bit = false;        // storageBuffer16BitAccess
  bool subgroup_arithmetic = false;  // subgroup add in compute shaders
  uint64_t max_storage_buffer_range = 0;
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_shared_memory = 0;
  uint32_t max_workgroup_count_x = 0;
};

class Context;

// Checks a VkResult; throws m3::Error naming the call.
void check(VkResult r, const char* what);

// Every device allocation (buffers, memory, descriptor pools and sets) goes through here: the test
// hook of common/device_faults.h can make it report out-of-memory as a full device
// would, and what succeeds is counted (`counted`: freed on its own, not with a pool).
template <class Allocate>
VkResult allocate_device_object(bool counted, Allocate&& allocate) {
  if (device_faults::next_allocation_fails()) return VK_ERROR_OUT_OF_DEVICE_MEMORY;
  const VkResult r = allocate();
  if (r == VK_SUCCESS && counted) device_faults::count_allocated(1);
  return r;
}
// The counterpart of a counted allocate_device_object, when the object is freed.
inline void freed_device_object() { device_faults::count_allocated(-1); }

// A buffer with its own memory: device-local, or host-visible and mapped.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Context& ctx, std::size_t bytes, bool host_visible);
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    swap(o);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  VkBuffer handle() const { return buffer_; }
  std::size_t size() const { return size_; }
  void* mapped() const { return mapped_; }

 private:
  void swap(Buffer& o) noexcept;
  void release();
  const DeviceApi* api_ = nullptr;
  VkDevice device_ = VK_NULL_HANDLE;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  std::size_t size_ = 0;
  void* mapped_ = nullptr;
};

class Context {
 public:
  // Throws m3::Error(M3_ERR_BACKEND_UNAVAILABLE) when no device fits; selector may be empty.
  explicit Context(const std::string& selector);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const DeviceApi& api() const { return device_api_; }
  VkDevice device() const { return device_; }
  const DeviceCapabilities& caps() const { return caps_; }
  const std::string& device_name() const { return device_name_; }

  // Records commands into the one command buffer, submits them and waits. Throws
  // m3::Error on a Vulkan error or when the validation layers reported one meanwhile.
  template <class Record>
  void run(Record&& record) {
    begin();
    record(command_buffer_);
    submit_and_wait();
  }

  // A command buffer recorded once to be submitted many times (a decode step: the inputs
  // arrive through host-visible buffers). Freed with free_commands.
  template <class Record>
  VkCommandBuffer record(Record&& record) {
    VkCommandBuffer cb = allocate_commands();
    try {
      record(cb);
      check(device_api_.vkEndCommandBuffer(cb), "vkEndCommandBuffer");
    } catch (...) {
      free_commands(cb);
      throw;
    }
    return cb;
  }
  void submit(VkCommandBuffer cb);  // and wait
  void free_commands(VkCommandBuffer cb);

  // Copies between host memory and a device buffer through a staging buffer.
  void upload(const Buffer& dst, std::size_t dst_offset, const void* src, std::size_t bytes);
  void download(const Buffer& src, std::size_t src_offset, void* dst, std::size_t bytes);

  // Throws with the messages when the validation layers reported errors.
  void check_validation();

  // MAMBA3RT_VULKAN_PROFILE=1: GPU time per shader from timestamps written after every
  // dispatch, summed over the context's life and printed to stderr when it ends.
  bool profiling() const { return query_pool_ != VK_NULL_HANDLE; }
  void mark(VkCommandBuffer cb, const char* what);

  uint32_t find_memory_type(uint32_t type_bits, bool host_visible) const;

 private:
  void begin();
  void submit_and_wait();
  VkCommandBuffer allocate_commands();
  void release();

  void* shared_ = nullptr;  // the process's instance this device was made from
  InstanceApi instance_api_;
  DeviceApi device_api_;
  VkInstance instance_ = VK_NULL_HANDLE;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkPhysicalDeviceMemoryProperties memory_{};
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  VkCommandPool command_pool_ = VK_NULL_HANDLE;
  VkCommandBuffer command_buffer_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
  DeviceCapabilities caps_;
  std::string device_name_;
  std::unique_ptr<Buffer> staging_;
  VkQueryPool query_pool_ = VK_NULL_HANDLE;
  double timestamp_ns_ = 1.0;
  std::vector<const char*> marks_;  // this submission's timestamps after the first
  struct ProfileEntry {
    double ms = 0;
    long calls = 0;
  };
  std::vector<std::pair<std::string, ProfileEntry>> profile_;
  void collect_profile();
};

}  // namespace m3::vulkan
