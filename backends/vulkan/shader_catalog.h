// The compute shaders built into the library: SPIR-V compiled from backends/vulkan/shaders
// at build time, with what the pipelines need to know about each, read from the SPIR-V
// itself by tools/spirv_embed (SPIRV-Cross reflection) rather than kept by hand.
#pragma once

#include <cstddef>
#include <cstdint>

namespace m3::vulkan {

struct ShaderBinding {
  uint32_t set;
  uint32_t binding;
  bool read_only;  // every block declared at this binding is readonly
};

struct ShaderInfo {
  const char* name;  // e.g. "matvec_bf16_subgroup"
  const uint32_t* code;
  std::size_t words;
  uint32_t push_constant_bytes;  // 0: no push constants
  uint32_t local_size[3];
  int32_t local_size_x_spec_id;  // -1: local_size_x is a literal
  const ShaderBinding* bindings;  // storage buffers, by (set, binding)
  uint32_t binding_count;
  const uint32_t* spec_constant_ids;  // specialization constants the shader declares
  uint32_t spec_constant_count;
  bool needs_subgroup_arithmetic;
  bool needs_16bit_storage;
};

// Generated (shader_catalog_data.cpp in the build tree).
extern const ShaderInfo kShaders[];
extern const std::size_t kShaderCount;

// The shader of that name, or null.
const ShaderInfo* find_shader(const char* name);

}  // namespace m3::vulkan
