// A compute pipeline made from an embedded shader: its descriptor-set layouts and
// push-constant range come from the shader's reflection (shader_catalog.h), its
// specialization constants from the caller. Plus the descriptor sets that bind buffers to it.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>
#include <vector>

#include "backends/vulkan/shader_catalog.h"
#include "backends/vulkan/vulkan_context.h"

namespace m3::vulkan {

class Pipeline {
 public:
  // spec: (constant id, value) pairs; each id must be one the shader declares.
  Pipeline(Context& ctx, const char* shader_name, std::vector<std::pair<uint32_t, uint32_t>> spec = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  const ShaderInfo& shader() const { return *shader_; }
  VkDescriptorSetLayout set_layout(uint32_t set) const { return set_layouts_.at(set); }
  uint32_t bindings_in_set(uint32_t set) const;

  // Binds the pipeline and its descriptor sets (set 0, 1, ...), pushes the constants
  // (exactly the reflected size) and dispatches.
  template <class Push>
  void dispatch(VkCommandBuffer cb, std::initializer_list<VkDescriptorSet> sets, const Push& push, uint32_t groups_x,
                uint32_t groups_y = 1) const {
    record(cb, sets, &push, sizeof(Push), groups_x, groups_y);
  }

 private:
  void record(VkCommandBuffer cb, std::initializer_list<VkDescriptorSet> sets, const void* push, uint32_t push_bytes,
              uint32_t groups_x, uint32_t groups_y) const;
  void release();

  Context& ctx_;
  const ShaderInfo* shader_ = nullptr;
  std::vector<VkDescriptorSetLayout> set_layouts_;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

// Descriptor sets of storage buffers, from pools that grow as needed; all freed together.
class DescriptorSets {
 public:
  explicit DescriptorSets(Context& ctx) : ctx_(ctx) {}
  ~DescriptorSets();
  DescriptorSets(const DescriptorSets&) = delete;
  DescriptorSets& operator=(const DescriptorSets&) = delete;

  // A set of `pipeline`'s layout `set` with buffers[i] at binding i (whole buffers).
  VkDescriptorSet make(const Pipeline& pipeline, uint32_t set, std::initializer_list<const Buffer*> buffers);

 private:
  Context& ctx_;
  std::vector<VkDescriptorPool> pools_;
  uint32_t left_in_pool_ = 0;
};

// Makes the writes of every dispatch so far visible to the next one (compute to compute,
// and to transfers).
void compute_barrier(const DeviceApi& api, VkCommandBuffer cb);

}  // namespace m3::vulkan
