#include "backends/vulkan/vulkan_context.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/error.h"

namespace m3::vulkan {
namespace {

constexpr std::size_t kStagingBytes = 16u << 20;
constexpr uint32_t kMaxMarks = 4096;  // profiled dispatches per submission
constexpr const char* kValidationLayer = "VK_LAYER_KHRONOS_validation";

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::strcmp(v, "0") != 0;
}

bool disabled(const char* feature) {
  const char* v = std::getenv("MAMBA3RT_VULKAN_DISABLE");
  if (!v) return false;
  std::string list = std::string(",") + v + ",";
  return list.find(std::string(",") + feature + ",") != std::string::npos;
}

const char* type_name(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
  }
}

int type_rank(VkPhysicalDeviceType t) {
  switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int compute_queue_family(const InstanceApi& api, VkPhysicalDevice pd) {
  uint32_t n = 0;
  api.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> families(n);
  api.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, families.data());
  int any = -1;
  for (uint32_t i = 0; i < n; ++i) {
    if (!(families[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
    if (!(families[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) return static_cast<int>(i);  // a compute-only queue
    if (any < 0) any = static_cast<int>(i);
  }
  return any;
}

// An instance with nothing enabled but (optionally) validation; null with the reason.
VkInstance create_instance(InstanceApi& api, bool validation, std::string* why) {
  VkApplicationInfo app{};
  app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
  app.pApplicationName = "mamba3rt";
  app.pEngineName = "mamba3rt";
  app.apiVersion = VK_API_VERSION_1_1;
  VkInstanceCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
  info.pApplicationInfo = &app;
  const char* layers[] = {kValidationLayer};
  const char* extensions[] = {VK_EXT_DEBUG_UTILS_EXTENSION_NAME};
  if (validation) {
    uint32_t n = 0;
    api.vkEnumerateInstanceLayerProperties(&n, nullptr);
    std::vector<VkLayerProperties> props(n);
    api.vkEnumerateInstanceLayerProperties(&n, props.data());
    const bool present = std::any_of(props.begin(), props.end(),
                                     [](const VkLayerProperties& p) { return std::strcmp(p.layerName, kValidationLayer) == 0; });
    if (!present) {
      *why = std::string("MAMBA3RT_VULKAN_VALIDATION is set but ") + kValidationLayer +
             " is not installed (Debian: vulkan-validationlayers)";
      return VK_NULL_HANDLE;
    }
    info.enabledLayerCount = 1;
    info.ppEnabledLayerNames = layers;
    info.enabledExtensionCount = 1;
    info.ppEnabledExtensionNames = extensions;
  }
  VkInstance instance = VK_NULL_HANDLE;
  const VkResult r = api.vkCreateInstance(&info, nullptr, &instance);
  if (r != VK_SUCCESS) {
    *why = std::string("vkCreateInstance failed: ") + result_name(r) +
           (r == VK_ERROR_INCOMPATIBLE_DRIVER ? " (no Vulkan driver installed?)" : "");
    return VK_NULL_HANDLE;
  }
  if (!load_instance(api, instance, why)) {
    auto destroy = reinterpret_cast<PFN_vkDestroyInstance>(api.vkGetInstanceProcAddr(instance, "vkDestroyInstance"));
    if (destroy) destroy(instance, nullptr);
    return VK_NULL_HANDLE;
  }
  return instance;
}

std::vector<VkPhysicalDevice> physical_devices(const InstanceApi& api, VkInstance instance) {
  uint32_t n = 0;
  api.vkEnumeratePhysicalDevices(instance, &n, nullptr);
  std::vector<VkPhysicalDevice> v(n);
  if (n) api.vkEnumeratePhysicalDevices(instance, &n, v.data());
  v.resize(n);
  return v;
}

DeviceDescription describe(const InstanceApi& api, VkPhysicalDevice pd) {
  VkPhysicalDeviceProperties p{};
  api.vkGetPhysicalDeviceProperties(pd, &p);
  DeviceDescription d;
  d.name = p.deviceName;
  d.type = type_name(p.deviceType);
  d.api_version = p.apiVersion;
  d.usable = p.apiVersion >= VK_API_VERSION_1_1 && compute_queue_family(api, pd) >= 0;
  d.rank = type_rank(p.deviceType);
  return d;
}

// The process's Vulkan instance (one with the validation layers, one without), made on
// first use and kept for the process's life: drivers need not support many instances made
// and destroyed in turn (NVIDIA's 580 driver refused new ones after about thirty).
struct SharedInstance {
  InstanceApi api;
  VkInstance instance = VK_NULL_HANDLE;
  VkDebugUtilsMessengerEXT messenger = VK_NULL_HANDLE;
  std::string why;  // why there is none
  std::mutex errors_mutex;
  std::vector<std::string> errors;  // reported by the validation layers, not yet thrown
};

VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT,
                                                     const VkDebugUtilsMessengerCallbackDataEXT* data, void* user) {
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
    auto* shared = static_cast<SharedInstance*>(user);
    std::lock_guard<std::mutex> lock(shared->errors_mutex);
    shared->errors.push_back(data && data->pMessage ? data->pMessage : "(no message)");
  }
  return VK_FALSE;
}

SharedInstance* shared_instance(bool validation, std::string* why) {
  static SharedInstance* instances[2] = {nullptr, nullptr};
  static std::once_flag once[2];
  std::call_once(once[validation ? 1 : 0], [&] {
    auto* s = new SharedInstance;  // never freed: see above
    instances[validation ? 1 : 0] = s;
    if (!load_loader(s->api, &s->why)) return;
    s->instance = create_instance(s->api, validation, &s->why);
    if (s->instance && validation && s->api.vkCreateDebugUtilsMessengerEXT) {
      VkDebugUtilsMessengerCreateInfoEXT m{};
      m.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT;
      m.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT;
      m.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                      VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
      m.pfnUserCallback = on_validation_message;
      m.pUserData = s;
      if (s->api.vkCreateDebugUtilsMessengerEXT(s->instance, &m, nullptr, &s->messenger) != VK_SUCCESS) {
        s->instance = VK_NULL_HANDLE;  // validation was asked for and cannot report: unusable
        s->why = "vkCreateDebugUtilsMessengerEXT failed";
      }
    }
  });
  SharedInstance* s = instances[validation ? 1 : 0];
  if (!s->instance) *why = s->why;
  return s->instance ? s : nullptr;
}

}  // namespace

void check(VkResult r, const char* what) {
  if (r == VK_SUCCESS) return;
  const bool oom = r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY;
  fail(oom ? M3_ERR_OUT_OF_MEMORY : M3_ERR_INTERNAL, std::string("Vulkan backend: ") + what + ": " + result_name(r));
}

std::vector<DeviceDescription> list_devices(std::string* why) {
  SharedInstance* shared = shared_instance(false, why);
  if (!shared) return {};
  std::vector<DeviceDescription> out;
  for (VkPhysicalDevice pd : physical_devices(shared->api, shared->instance)) out.push_back(describe(shared->api, pd));
  if (out.empty()) *why = "the Vulkan loader found no device (is a Vulkan driver installed? Debian: mesa-vulkan-drivers)";
  return out;
}

Context::Context(const std::string& selector) {
  std::string why;
  SharedInstance* shared = shared_instance(env_flag("MAMBA3RT_VULKAN_VALIDATION"), &why);
  if (!shared) fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: " + why);
  shared_ = shared;
  instance_api_ = shared->api;
  instance_ = shared->instance;
  try {
    const InstanceApi& vi = instance_api_;

    // The device: the selector's, or the best usable type (first of equals).
    const std::vector<VkPhysicalDevice> devices = physical_devices(vi, instance_);
    std::vector<DeviceDescription> described;
    std::string listing;
    for (std::size_t i = 0; i < devices.size(); ++i) {
      const DeviceDescription& d = described.emplace_back(describe(vi, devices[i]));
      listing += (listing.empty() ? "" : ", ") + std::to_string(i) + ": " + d.name + " (" + d.type +
                 (d.usable ? "" : ", unusable: needs Vulkan 1.1 and a compute queue") + ")";
    }
    if (devices.empty())
      fail(M3_ERR_BACKEND_UNAVAILABLE,
           "Vulkan backend: the Vulkan loader found no device (is a Vulkan driver installed? Debian: mesa-vulkan-drivers)");
    int chosen = -1;
    if (!selector.empty()) {
      const bool is_index = std::all_of(selector.begin(), selector.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
      for (std::size_t i = 0; i < devices.size() && chosen < 0; ++i) {
        const bool match = is_index ? std::strtoul(selector.c_str(), nullptr, 10) == i
                                    : lower(described[i].name).find(lower(selector)) != std::string::npos;
        if (match) chosen = static_cast<int>(i);
      }
      if (chosen < 0) fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: no device matches \"" + selector + "\"; devices: " + listing);
      if (!described[static_cast<std::size_t>(chosen)].usable)
        fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: device \"" + selector + "\" is not usable; devices: " + listing);
    } else {
      int best_rank = -1;
      for (std::size_t i = 0; i < devices.size(); ++i)
        if (described[i].usable && described[i].rank > best_rank) {
          best_rank = described[i].rank;
          chosen = static_cast<int>(i);
        }
      if (chosen < 0) fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: no usable device; devices: " + listing);
    }
    physical_ = devices[static_cast<std::size_t>(chosen)];

    VkPhysicalDeviceSubgroupProperties subgroup{};
    subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    VkPhysicalDeviceProperties2 props2{};
    props2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    props2.pNext = &subgroup;
    vi.vkGetPhysicalDeviceProperties2(physical_, &props2);
    const VkPhysicalDeviceLimits& limits = props2.properties.limits;
    device_name_ = props2.properties.deviceName;
    VkPhysicalDevice16BitStorageFeatures storage16{};
    storage16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    VkPhysicalDeviceFeatures2 features2{};
    features2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    features2.pNext = &storage16;
    vi.vkGetPhysicalDeviceFeatures2(physical_, &features2);
    vi.vkGetPhysicalDeviceMemoryProperties(physical_, &memory_);

    caps_.storage_16bit = storage16.storageBuffer16BitAccess && !disabled("16bit_storage");
    caps_.subgroup_arithmetic = (subgroup.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                                (subgroup.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
                                !disabled("subgroups");
    caps_.max_storage_buffer_range = limits.maxStorageBufferRange;
    caps_.max_workgroup_invocations = limits.maxComputeWorkGroupInvocations;
    caps_.max_shared_memory = limits.maxComputeSharedMemorySize;
    caps_.max_workgroup_count_x = limits.maxComputeWorkGroupCount[0];

    const int family = compute_queue_family(vi, physical_);
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue{};
    queue.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    queue.queueFamilyIndex = static_cast<uint32_t>(family);
    queue.queueCount = 1;
    queue.pQueuePriorities = &priority;
    // Enable only what the shaders will use.
    VkPhysicalDevice16BitStorageFeatures enable16{};
    enable16.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES;
    enable16.storageBuffer16BitAccess = caps_.storage_16bit ? VK_TRUE : VK_FALSE;
    VkDeviceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    info.pNext = &enable16;
    info.queueCreateInfoCount = 1;
    info.pQueueCreateInfos = &queue;
    check(vi.vkCreateDevice(physical_, &info, nullptr, &device_), "vkCreateDevice");
    if (!load_device(vi, device_, device_api_, &why)) fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: " + why);
    const DeviceApi& d = device_api_;
    d.vkGetDeviceQueue(device_, static_cast<uint32_t>(family), 0, &queue_);
    VkCommandPoolCreateInfo pool{};
    pool.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    pool.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pool.queueFamilyIndex = static_cast<uint32_t>(family);
    check(d.vkCreateCommandPool(device_, &pool, nullptr, &command_pool_), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo alloc{};
    alloc.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    alloc.commandPool = command_pool_;
    alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    alloc.commandBufferCount = 1;
    check(d.vkAllocateCommandBuffers(device_, &alloc, &command_buffer_), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fence{};
    fence.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    check(d.vkCreateFence(device_, &fence, nullptr, &fence_), "vkCreateFence");
    staging_ = std::make_unique<Buffer>(*this, kStagingBytes, true);
    if (env_flag("MAMBA3RT_VULKAN_PROFILE") && limits.timestampComputeAndGraphics) {
      VkQueryPoolCreateInfo q{};
      q.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO;
      q.queryType = VK_QUERY_TYPE_TIMESTAMP;
      q.queryCount = kMaxMarks + 1;
      check(d.vkCreateQueryPool(device_, &q, nullptr, &query_pool_), "vkCreateQueryPool");
      timestamp_ns_ = limits.timestampPeriod;
    }
    check_validation();
  } catch (...) {
    release();  // the constructor did not finish: no destructor will run
    throw;
  }
}

Context::~Context() { release(); }

void Context::release() {
  staging_.reset();
  if (device_) {
    device_api_.vkDeviceWaitIdle(device_);
    if (query_pool_) {
      std::fprintf(stderr, "mamba3rt Vulkan profile (%s), GPU time per shader:\n", device_name_.c_str());
      std::sort(profile_.begin(), profile_.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
      for (const auto& [name, e] : profile_)
        std::fprintf(stderr, "  %-24s %10.3f ms %8ld calls %9.2f us/call\n", name.c_str(), e.ms, e.calls,
                     1000.0 * e.ms / static_cast<double>(std::max(e.calls, 1L)));
      device_api_.vkDestroyQueryPool(device_, query_pool_, nullptr);
      query_pool_ = VK_NULL_HANDLE;
    }
    if (fence_) device_api_.vkDestroyFence(device_, fence_, nullptr);
    if (command_pool_) device_api_.vkDestroyCommandPool(device_, command_pool_, nullptr);
    device_api_.vkDestroyDevice(device_, nullptr);
  }
  device_ = VK_NULL_HANDLE;
  fence_ = VK_NULL_HANDLE;
  command_pool_ = VK_NULL_HANDLE;
}

uint32_t Context::find_memory_type(uint32_t type_bits, bool host_visible) const {
  const VkMemoryPropertyFlags need = host_visible ? (VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
                                                  : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  // Host memory: cached reads where offered; device memory: any device-local type, else any.
  const VkMemoryPropertyFlags want = host_visible ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT : 0;
  int fallback = -1;
  for (uint32_t i = 0; i < memory_.memoryTypeCount; ++i) {
    if (!(type_bits & (1u << i))) continue;
    const VkMemoryPropertyFlags f = memory_.memoryTypes[i].propertyFlags;
    if ((f & need) != need) {
      if (!host_visible && fallback < 0) fallback = static_cast<int>(i);
      continue;
    }
    if ((f & want) == want) return i;
    if (fallback < 0 || (memory_.memoryTypes[fallback].propertyFlags & need) != need) fallback = static_cast<int>(i);
  }
  if (fallback < 0 || (host_visible && (memory_.memoryTypes[fallback].propertyFlags & need) != need))
    fail(M3_ERR_BACKEND_UNAVAILABLE, "Vulkan backend: the device has no suitable memory type");
  return static_cast<uint32_t>(fallback);
}

void Context::begin() {
  check(device_api_.vkResetCommandBuffer(command_buffer_, 0), "vkResetCommandBuffer");
  VkCommandBufferBeginInfo info{};
  info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  info.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  check(device_api_.vkBeginCommandBuffer(command_buffer_, &info), "vkBeginCommandBuffer");
  if (query_pool_) {
    marks_.clear();
    device_api_.vkCmdResetQueryPool(command_buffer_, query_pool_, 0, kMaxMarks + 1);
    device_api_.vkCmdWriteTimestamp(command_buffer_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pool_, 0);
  }
}

void Context::mark(VkCommandBuffer cb, const char* what) {
  if (!query_pool_ || marks_.size() >= kMaxMarks) return;
  marks_.push_back(what);
  device_api_.vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, query_pool_,
                                  static_cast<uint32_t>(marks_.size()));
}

void Context::collect_profile() {
  if (!query_pool_ || marks_.empty()) return;
  std::vector<uint64_t> stamps(marks_.size() + 1);
  if (device_api_.vkGetQueryPoolResults(device_, query_pool_, 0, static_cast<uint32_t>(stamps.size()),
                                        stamps.size() * sizeof(uint64_t), stamps.data(), sizeof(uint64_t),
                                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
    return;
  for (std::size_t i = 0; i < marks_.size(); ++i) {
    auto it = std::find_if(profile_.begin(), profile_.end(), [&](const auto& e) { return e.first == marks_[i]; });
    if (it == profile_.end()) it = profile_.insert(profile_.end(), {marks_[i], ProfileEntry{}});
    it->second.ms += static_cast<double>(stamps[i + 1] - stamps[i]) * timestamp_ns_ * 1e-6;
    it->second.calls += 1;
  }
}

VkCommandBuffer Context::allocate_commands() {
  VkCommandBufferAllocateInfo alloc{};
  alloc.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
  alloc.commandPool = command_pool_;
  alloc.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  alloc.commandBufferCount = 1;
  VkCommandBuffer cb = VK_NULL_HANDLE;
  check(device_api_.vkAllocateCommandBuffers(device_, &alloc, &cb), "vkAllocateCommandBuffers");
  VkCommandBufferBeginInfo info{};
  info.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  const VkResult r = device_api_.vkBeginCommandBuffer(cb, &info);
  if (r != VK_SUCCESS) free_commands(cb);
  check(r, "vkBeginCommandBuffer");
  return cb;
}

void Context::free_commands(VkCommandBuffer cb) { device_api_.vkFreeCommandBuffers(device_, command_pool_, 1, &cb); }

void Context::submit(VkCommandBuffer cb) {
  VkSubmitInfo submit{};
  submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
  submit.commandBufferCount = 1;
  submit.pCommandBuffers = &cb;
  check(device_api_.vkResetFences(device_, 1, &fence_), "vkResetFences");
  check(device_faults::next_submission_fails() ? VK_ERROR_DEVICE_LOST
                                               : device_api_.vkQueueSubmit(queue_, 1, &submit, fence_),
        "vkQueueSubmit");
  check(device_api_.vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX), "vkWaitForFences");
  collect_profile();
  check_validation();
}

void Context::submit_and_wait() {
  check(device_api_.vkEndCommandBuffer(command_buffer_), "vkEndCommandBuffer");
  submit(command_buffer_);
}

void Context::check_validation() {
  auto* shared = static_cast<SharedInstance*>(shared_);
  std::vector<std::string> errors;
  {
    std::lock_guard<std::mutex> lock(shared->errors_mutex);
    errors.swap(shared->errors);
  }
  if (errors.empty()) return;
  std::string all;
  for (const std::string& e : errors) all += "\n  " + e;
  fail(M3_ERR_INTERNAL, "Vulkan backend: the validation layers reported errors:" + all);
}

void Context::upload(const Buffer& dst, std::size_t dst_offset, const void* src, std::size_t bytes) {
  const auto* from = static_cast<const unsigned char*>(src);
  for (std::size_t done = 0; done < bytes; done += kStagingBytes) {
    const std::size_t n = std::min(kStagingBytes, bytes - done);
    std::memcpy(staging_->mapped(), from + done, n);
    run([&](VkCommandBuffer cb) {
      VkBufferCopy region{0, dst_offset + done, n};
      device_api_.vkCmdCopyBuffer(cb, staging_->handle(), dst.handle(), 1, &region);
    });
  }
}

void Context::download(const Buffer& src, std::size_t src_offset, void* dst, std::size_t bytes) {
  auto* to = static_cast<unsigned char*>(dst);
  for (std::size_t done = 0; done < bytes; done += kStagingBytes) {
    const std::size_t n = std::min(kStagingBytes, bytes - done);
    run([&](VkCommandBuffer cb) {
      VkBufferCopy region{src_offset + done, 0, n};
      device_api_.vkCmdCopyBuffer(cb, src.handle(), staging_->handle(), 1, &region);
    });
    std::memcpy(to + done, staging_->mapped(), n);
  }
}

Buffer::Buffer(Context& ctx, std::size_t bytes, bool host_visible)
    : api_(&ctx.api()), device_(ctx.device()), size_(bytes) {
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = std::max<std::size_t>(bytes, 16);
  info.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  check(allocate_device_object(true, [&] { return api_->vkCreateBuffer(device_, &info, nullptr, &buffer_); }),
        "vkCreateBuffer");
  try {
    VkMemoryRequirements req{};
    api_->vkGetBufferMemoryRequirements(device_, buffer_, &req);
    VkMemoryAllocateInfo alloc{};
    alloc.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    alloc.allocationSize = req.size;
    alloc.memoryTypeIndex = ctx.find_memory_type(req.memoryTypeBits, host_visible);
    check(allocate_device_object(true, [&] { return api_->vkAllocateMemory(device_, &alloc, nullptr, &memory_); }),
          "vkAllocateMemory");
    check(api_->vkBindBufferMemory(device_, buffer_, memory_, 0), "vkBindBufferMemory");
    if (host_visible) check(api_->vkMapMemory(device_, memory_, 0, VK_WHOLE_SIZE, 0, &mapped_), "vkMapMemory");
  } catch (...) {
    release();
    throw;
  }
}

Buffer::~Buffer() { release(); }

void Buffer::release() {
  if (!api_) return;
  if (buffer_) {
    api_->vkDestroyBuffer(device_, buffer_, nullptr);
    freed_device_object();
  }
  if (memory_) {
    api_->vkFreeMemory(device_, memory_, nullptr);  // unmaps too
    freed_device_object();
  }
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
}

void Buffer::swap(Buffer& o) noexcept {
  std::swap(api_, o.api_);
  std::swap(device_, o.device_);
  std::swap(buffer_, o.buffer_);
  std::swap(memory_, o.memory_);
  std::swap(size_, o.size_);
  std::swap(mapped_, o.mapped_);
}

}  // namespace m3::vulkan
