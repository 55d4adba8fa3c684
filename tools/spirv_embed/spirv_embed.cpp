// Build tool: embeds compiled compute shaders into C++ and records, from the SPIR-V itself
// (SPIRV-Cross reflection), the storage-buffer bindings, push-constant size, workgroup size,
// specialization constants and the capabilities each needs (backends/vulkan/shader_catalog.h).
// Usage: spirv_embed OUT.cpp NAME=FILE.spv ...
#include <spirv_cross_c.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "spirv_embed: %s\n", message.c_str());
  std::exit(1);
}

void check(spvc_result r, spvc_context ctx, const std::string& what) {
  if (r != SPVC_SUCCESS) die(what + ": " + spvc_context_get_last_error_string(ctx));
}

std::vector<uint32_t> read_words(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) die("cannot open " + path);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % 4 != 0) die(path + " is not SPIR-V (size " + std::to_string(bytes.size()) + ")");
  std::vector<uint32_t> words(bytes.size() / 4);
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(words.data()));
  return words;
}

struct Reflected {
  std::map<std::pair<uint32_t, uint32_t>, bool> bindings;  // (set, binding) -> read only
  uint32_t push_bytes = 0;
  uint32_t local_size[3] = {1, 1, 1};
  int local_size_x_spec_id = -1;
  std::vector<uint32_t> spec_ids;
  bool subgroup_arithmetic = false, storage16 = false;
};

Reflected reflect(const std::vector<uint32_t>& words, const std::string& name) {
  spvc_context ctx = nullptr;
  if (spvc_context_create(&ctx) != SPVC_SUCCESS) die("spvc_context_create failed");
  spvc_parsed_ir ir = nullptr;
  check(spvc_context_parse_spirv(ctx, words.data(), words.size(), &ir), ctx, name + ": parse");
  spvc_compiler compiler = nullptr;
  check(spvc_context_create_compiler(ctx, SPVC_BACKEND_NONE, ir, SPVC_CAPTURE_MODE_TAKE_OWNERSHIP, &compiler), ctx,
        name + ": compiler");
  spvc_resources resources = nullptr;
  check(spvc_compiler_create_shader_resources(compiler, &resources), ctx, name + ": resources");
  Reflected out;

  const spvc_reflected_resource* list = nullptr;
  size_t count = 0;
  check(spvc_resources_get_resource_list_for_type(resources, SPVC_RESOURCE_TYPE_STORAGE_BUFFER, &list, &count), ctx,
        name + ": storage buffers");
  for (size_t i = 0; i < count; ++i) {
    const uint32_t set = spvc_compiler_get_decoration(compiler, list[i].id, SpvDecorationDescriptorSet);
    const uint32_t binding = spvc_compiler_get_decoration(compiler, list[i].id, SpvDecorationBinding);
    spvc_type type = spvc_compiler_get_type_handle(compiler, list[i].base_type_id);
    bool read_only = true;
    for (unsigned m = 0; m < spvc_type_get_num_member_types(type); ++m)
      read_only = read_only && spvc_compiler_has_member_decoration(compiler, list[i].base_type_id, m,
                                                                   SpvDecorationNonWritable);
    // Aliased blocks at one binding: read-only only if all of them are.
    auto [it, inserted] = out.bindings.emplace(std::make_pair(set, binding), read_only);
    if (!inserted) it->second = it->second && read_only;
  }
  for (spvc_resource_type t : {SPVC_RESOURCE_TYPE_UNIFORM_BUFFER, SPVC_RESOURCE_TYPE_SAMPLED_IMAGE,
                               SPVC_RESOURCE_TYPE_STORAGE_IMAGE, SPVC_RESOURCE_TYPE_SEPARATE_IMAGE}) {
    check(spvc_resources_get_resource_list_for_type(resources, t, &list, &count), ctx, name + ": resources");
    if (count > 0) die(name + ": only storage buffers and push constants are supported");
  }

  check(spvc_resources_get_resource_list_for_type(resources, SPVC_RESOURCE_TYPE_PUSH_CONSTANT, &list, &count), ctx,
        name + ": push constants");
  if (count > 1) die(name + ": more than one push-constant block");
  if (count == 1) {
    size_t size = 0;
    check(spvc_compiler_get_declared_struct_size(compiler, spvc_compiler_get_type_handle(compiler, list[0].base_type_id),
                                                 &size),
          ctx, name + ": push-constant size");
    out.push_bytes = static_cast<uint32_t>(size);
  }

  for (unsigned d = 0; d < 3; ++d)
    out.local_size[d] = spvc_compiler_get_execution_mode_argument_by_index(compiler, SpvExecutionModeLocalSize, d);
  spvc_specialization_constant x{}, y{}, z{};
  spvc_compiler_get_work_group_size_specialization_constants(compiler, &x, &y, &z);
  if (x.id != 0) out.local_size_x_spec_id = static_cast<int>(x.constant_id);

  const spvc_specialization_constant* constants = nullptr;
  size_t n_constants = 0;
  check(spvc_compiler_get_specialization_constants(compiler, &constants, &n_constants), ctx, name + ": spec constants");
  for (size_t i = 0; i < n_constants; ++i) out.spec_ids.push_back(constants[i].constant_id);
  std::sort(out.spec_ids.begin(), out.spec_ids.end());

  const SpvCapability* caps = nullptr;
  size_t n_caps = 0;
  check(spvc_compiler_get_declared_capabilities(compiler, &caps, &n_caps), ctx, name + ": capabilities");
  for (size_t i = 0; i < n_caps; ++i) {
    if (caps[i] == SpvCapabilityGroupNonUniformArithmetic) out.subgroup_arithmetic = true;
    if (caps[i] == SpvCapabilityStorageBuffer16BitAccess || caps[i] == SpvCapabilityStorageUniformBufferBlock16)
      out.storage16 = true;
  }
  spvc_context_destroy(ctx);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: spirv_embed OUT.cpp NAME=FILE.spv ...");
  std::ostringstream data, table;
  table << "const ShaderInfo kShaders[] = {\n";
  for (int a = 2; a < argc; ++a) {
    const std::string arg = argv[a];
    const auto eq = arg.find('=');
    if (eq == std::string::npos) die("expected NAME=FILE.spv, got " + arg);
    const std::string name = arg.substr(0, eq);
    const std::vector<uint32_t> words = read_words(arg.substr(eq + 1));
    const Reflected r = reflect(words, name);
    data << "const uint32_t k_" << name << "_code[] = {";
    for (size_t i = 0; i < words.size(); ++i) data << (i % 8 == 0 ? "\n    " : " ") << words[i] << "u,";
    data << "\n};\n";
    data << "const ShaderBinding k_" << name << "_bindings[] = {";
    for (const auto& [key, ro] : r.bindings)
      data << "{" << key.first << ", " << key.second << ", " << (ro ? "true" : "false") << "}, ";
    if (r.bindings.empty()) die(name + ": no storage buffers");
    data << "};\n";
    data << "const uint32_t k_" << name << "_spec_ids[] = {";
    for (uint32_t id : r.spec_ids) data << id << "u, ";
    if (r.spec_ids.empty()) data << "0u";
    data << "};\n";
    table << "    {\"" << name << "\", k_" << name << "_code, " << words.size() << ", " << r.push_bytes << ", {"
          << r.local_size[0] << ", " << r.local_size[1] << ", " << r.local_size[2] << "}, " << r.local_size_x_spec_id
          << ", k_" << name << "_bindings, " << r.bindings.size() << ", k_" << name << "_spec_ids, "
          << r.spec_ids.size() << ", " << (r.subgroup_arithmetic ? "true" : "false") << ", "
          << (r.storage16 ? "true" : "false") << "},\n";
  }
  table << "};\n";
  std::ofstream out(argv[1]);
  out << "// Generated by tools/spirv_embed from backends/vulkan/shaders; do not edit.\n"
      << "#include \"backends/vulkan/shader_catalog.h\"\n\nnamespace m3::vulkan {\nnamespace {\n"
      << data.str() << "}  // namespace\n\n"
      << table.str() << "const std::size_t kShaderCount = " << (argc - 2) << ";\n\n}  // namespace m3::vulkan\n";
  if (!out) die(std::string("cannot write ") + argv[1]);
  return 0;
}
