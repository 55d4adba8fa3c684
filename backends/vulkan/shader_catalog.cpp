#include "backends/vulkan/shader_catalog.h"

#include <cstring>

namespace m3::vulkan {

const ShaderInfo* find_shader(const char* name) {
  for (std::size_t i = 0; i < kShaderCount; ++i)
    if (std::strcmp(kShaders[i].name, name) == 0) return &kShaders[i];
  return nullptr;
}

}  // namespace m3::vulkan
