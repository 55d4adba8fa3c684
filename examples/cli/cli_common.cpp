#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "cli_args.h"
#include "commands.h"

namespace cli {

void check(m3_status status, const std::string& what) {
  if (status != M3_OK) throw std::runtime_error(what + ": " + m3_status_name(status) + ": " + m3_last_error());
}

m3_backend parse_backend(const std::string& name) {
  if (name == "auto") return M3_BACKEND_AUTO;
  if (name == "cpu") return M3_BACKEND_CPU;
  if (name == "vulkan") return M3_BACKEND_VULKAN;
  if (name == "cuda") return M3_BACKEND_CUDA;
  if (name == "cpu-reference") return M3_BACKEND_CPU_REFERENCE;
  throw UsageError("unknown backend '" + name + "' (expected auto, cpu, cpu-reference, vulkan or cuda)");
}

std::string default_model_dir() {
  if (const char* env = std::getenv("MAMBA3RT_MODEL"); env && *env) return env;
  std::error_code ec;
  const auto exe_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec) {
    for (const char* rel : {"../share/mamba3rt/models/default", "../models/default"}) {
      const auto dir = exe_dir / rel;
      std::error_code missing;
      if (std::filesystem::is_directory(dir, missing)) return dir.lexically_normal().string();
    }
  }
  throw UsageError("no --model given and no bundled default model found (set MAMBA3RT_MODEL or pass --model DIR)");
}

std::string model_dir_arg(const Args& args) {
  if (auto dir = args.get("model")) return *dir;
  return default_model_dir();
}

m3_model* load_model(const std::string& dir, const Args& args) {
  const m3_backend backend = parse_backend(args.get_or("backend", "auto"));
  const long long threads = args.get_int("threads", 0);
  m3_model_params* params = nullptr;
  check(m3_model_params_create(&params), "model params");
  m3_status s = m3_model_params_set_backend(params, backend);
  if (s == M3_OK) s = m3_model_params_set_threads(params, static_cast<int32_t>(threads));
  if (s == M3_OK) {
    if (auto device = args.get("device")) s = m3_model_params_set_device(params, device->c_str());
  }
  m3_model* model = nullptr;
  if (s == M3_OK) s = m3_model_load(dir.c_str(), params, &model);
  m3_model_params_destroy(params);
  check(s, "loading " + dir);
  return model;
}

std::string device_name(const m3_model* model) {
  std::string name(64, '\0');
  size_t len = 0;
  m3_status s = m3_model_device_name(model, name.data(), name.size(), &len);
  if (s == M3_ERR_BUFFER_TOO_SMALL) {
    name.resize(len);
    s = m3_model_device_name(model, name.data(), name.size(), &len);
  }
  check(s, "device name");
  name.resize(len);
  return name;
}

}  // namespace cli
