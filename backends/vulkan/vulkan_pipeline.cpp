#include "backends/vulkan/vulkan_pipeline.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace m3::vulkan {
namespace {

constexpr uint32_t kSetsPerPool = 256;
constexpr uint32_t kBuffersPerSet = 4;  // the most bindings any shader's set has

}  // namespace

Pipeline::Pipeline(Context& ctx, const char* shader_name, std::vector<std::pair<uint32_t, uint32_t>> spec) : ctx_(ctx) {
  shader_ = find_shader(shader_name);
  if (!shader_) fail(M3_ERR_INTERNAL, std::string("Vulkan backend: no embedded shader ") + shader_name);
  const DeviceApi& api = ctx.api();
  try {
    uint32_t sets = 0;
    for (uint32_t i = 0; i < shader_->binding_count; ++i) sets = std::max(sets, shader_->bindings[i].set + 1);
    for (uint32_t s = 0; s < sets; ++s) {
      std::vector<VkDescriptorSetLayoutBinding> bindings;
      for (uint32_t i = 0; i < shader_->binding_count; ++i) {
        const ShaderBinding& b = shader_->bindings[i];
        if (b.set != s) continue;
        if (b.binding != bindings.size())
          fail(M3_ERR_INTERNAL, std::string("Vulkan backend: shader ") + shader_name + " set " + std::to_string(s) +
                                    " does not number its bindings 0, 1, ...");
        bindings.push_back({b.binding, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, nullptr});
      }
      VkDescriptorSetLayoutCreateInfo info{};
      info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
      info.bindingCount = static_cast<uint32_t>(bindings.size());
      info.pBindings = bindings.data();
      VkDescriptorSetLayout layout = VK_NULL_HANDLE;
      check(api.vkCreateDescriptorSetLayout(ctx.device(), &info, nullptr, &layout), "vkCreateDescriptorSetLayout");
      set_layouts_.push_back(layout);
    }
    VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, shader_->push_constant_bytes};
    VkPipelineLayoutCreateInfo layout_info{};
    layout_info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    layout_info.setLayoutCount = static_cast<uint32_t>(set_layouts_.size());
    layout_info.pSetLayouts = set_layouts_.data();
    layout_info.pushConstantRangeCount = shader_->push_constant_bytes ? 1 : 0;
    layout_info.pPushConstantRanges = &range;
    check(api.vkCreatePipelineLayout(ctx.device(), &layout_info, nullptr, &layout_), "vkCreatePipelineLayout");

    std::vector<VkSpecializationMapEntry> entries;
    std::vector<uint32_t> values;
    for (const auto& [id, value] : spec) {
      if (!std::count(shader_->spec_constant_ids, shader_->spec_constant_ids + shader_->spec_constant_count, id))
        fail(M3_ERR_INTERNAL, std::string("Vulkan backend: shader ") + shader_name + " has no specialization constant " +
                                  std::to_string(id));
      entries.push_back({id, static_cast<uint32_t>(values.size() * sizeof(uint32_t)), sizeof(uint32_t)});
      values.push_back(value);
    }
    VkSpecializationInfo spec_info{static_cast<uint32_t>(entries.size()), entries.data(), values.size() * sizeof(uint32_t),
                                   values.data()};
    VkShaderModuleCreateInfo module_info{};
    module_info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
    module_info.codeSize = shader_->words * sizeof(uint32_t);
    module_info.pCode = shader_->code;
    VkShaderModule module = VK_NULL_HANDLE;
    check(api.vkCreateShaderModule(ctx.device(), &module_info, nullptr, &module), "vkCreateShaderModule");
    VkComputePipelineCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    info.stage = {};
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module;
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = entries.empty() ? nullptr : &spec_info;
    info.layout = layout_;
    const VkResult r = api.vkCreateComputePipelines(ctx.device(), VK_NULL_HANDLE, 1, &info, nullptr, &pipeline_);
    api.vkDestroyShaderModule(ctx.device(), module, nullptr);
    check(r, (std::string("vkCreateComputePipelines (") + shader_name + ")").c_str());
  } catch (...) {
    release();
    throw;
  }
}

Pipeline::~Pipeline() { release(); }

void Pipeline::release() {
  const DeviceApi& api = ctx_.api();
  if (pipeline_) api.vkDestroyPipeline(ctx_.device(), pipeline_, nullptr);
  if (layout_) api.vkDestroyPipelineLayout(ctx_.device(), layout_, nullptr);
  for (VkDescriptorSetLayout l : set_layouts_) api.vkDestroyDescriptorSetLayout(ctx_.device(), l, nullptr);
  pipeline_ = VK_NULL_HANDLE;
  layout_ = VK_NULL_HANDLE;
  set_layouts_.clear();
}

uint32_t Pipeline::bindings_in_set(uint32_t set) const {
  return static_cast<uint32_t>(std::count_if(shader_->bindings, shader_->bindings + shader_->binding_count,
                                             [&](const ShaderBinding& b) { return b.set == set; }));
}

void Pipeline::record(VkCommandBuffer cb, std::initializer_list<VkDescriptorSet> sets, const void* push,
                      uint32_t push_bytes, uint32_t groups_x, uint32_t groups_y) const {
  if (push_bytes != shader_->push_constant_bytes || sets.size() != set_layouts_.size())
    fail(M3_ERR_INTERNAL, std::string("Vulkan backend: dispatch of ") + shader_->name +
                              " does not match its reflected interface (push constants " + std::to_string(push_bytes) +
                              " vs " + std::to_string(shader_->push_constant_bytes) + " bytes)");
  const DeviceApi& api = ctx_.api();
  api.vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline_);
  api.vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, layout_, 0, static_cast<uint32_t>(sets.size()),
                              sets.begin(), 0, nullptr);
  if (push_bytes) api.vkCmdPushConstants(cb, layout_, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
  api.vkCmdDispatch(cb, groups_x, groups_y, 1);
  compute_barrier(api, cb);
  ctx_.mark(cb, shader_->name);
}

DescriptorSets::~DescriptorSets() {
  for (VkDescriptorPool p : pools_) {
    ctx_.api().vkDestroyDescriptorPool(ctx_.device(), p, nullptr);
    freed_device_object();
  }
}

VkDescriptorSet DescriptorSets::make(const Pipeline& pipeline, uint32_t set, std::initializer_list<const Buffer*> buffers) {
  if (buffers.size() != pipeline.bindings_in_set(set) || buffers.size() > kBuffersPerSet)
    fail(M3_ERR_INTERNAL, std::string("Vulkan backend: ") + std::to_string(buffers.size()) + " buffers for set " +
                              std::to_string(set) + " of " + pipeline.shader().name + ", which has " +
                              std::to_string(pipeline.bindings_in_set(set)) + " bindings");
  const DeviceApi& api = ctx_.api();
  if (left_in_pool_ == 0) {
    VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kSetsPerPool * kBuffersPerSet};
    VkDescriptorPoolCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
    info.maxSets = kSetsPerPool;
    info.poolSizeCount = 1;
    info.pPoolSizes = &size;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    check(allocate_device_object(true, [&] { return api.vkCreateDescriptorPool(ctx_.device(), &info, nullptr, &pool); }),
          "vkCreateDescriptorPool");
    pools_.push_back(pool);
    left_in_pool_ = kSetsPerPool;
  }
  VkDescriptorSetLayout layout = pipeline.set_layout(set);
  VkDescriptorSetAllocateInfo alloc{};
  alloc.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
  alloc.descriptorPool = pools_.back();
  alloc.descriptorSetCount = 1;
  alloc.pSetLayouts = &layout;
  VkDescriptorSet out = VK_NULL_HANDLE;
  check(allocate_device_object(false, [&] { return api.vkAllocateDescriptorSets(ctx_.device(), &alloc, &out); }),
        "vkAllocateDescriptorSets");
  --left_in_pool_;
  std::vector<VkDescriptorBufferInfo> infos;
  for (const Buffer* b : buffers) infos.push_back({b->handle(), 0, VK_WHOLE_SIZE});
  std::vector<VkWriteDescriptorSet> writes;
  for (uint32_t i = 0; i < infos.size(); ++i) {
    VkWriteDescriptorSet w{};
    w.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
    w.dstSet = out;
    w.dstBinding = i;
    w.descriptorCount = 1;
    w.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    w.pBufferInfo = &infos[i];
    writes.push_back(w);
  }
  api.vkUpdateDescriptorSets(ctx_.device(), static_cast<uint32_t>(writes.size()), writes.data(), 0, nullptr);
  return out;
}

void compute_barrier(const DeviceApi& api, VkCommandBuffer cb) {
  VkMemoryBarrier barrier{};
  barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
  barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  barrier.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                          VK_ACCESS_TRANSFER_WRITE_BIT;
  api.vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                           VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &barrier, 0,
                           nullptr, 0, nullptr);
}

}  // namespace m3::vulkan
