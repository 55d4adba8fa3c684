// The CLI's subcommands. Adding one: write cmd_<name>.cpp with a run function and add a
// row to the table in main.cpp.
#pragma once

#include <string>
#include <vector>

#include "mamba3rt.h"

namespace cli {

// Each returns the process exit code. Errors are reported on stderr.
int run_info(const std::vector<std::string>& args);
int run_logits(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);
int run_generate(const std::vector<std::string>& args);
int run_chat(const std::vector<std::string>& args);
int run_perplexity(const std::vector<std::string>& args);
int run_quantize(const std::vector<std::string>& args);
int run_bench(const std::vector<std::string>& args);
int run_serve(const std::vector<std::string>& args);

// Shared helpers.
m3_backend parse_backend(const std::string& name);
// The model used when --model is not given: $MAMBA3RT_MODEL, else the bundled default model
// next to the executable (<exe>/../share/mamba3rt/models/default or <exe>/../models/default).
std::string default_model_dir();
class Args;
// The --model option's value, or default_model_dir().
std::string model_dir_arg(const Args& args);
// Loads a model with the --backend, --device and --threads options (when given), or throws
// std::runtime_error with m3_last_error().
m3_model* load_model(const std::string& dir, const Args& args);
// The device the model runs on (m3_model_device_name), e.g. "CPU" or a GPU's name.
std::string device_name(const m3_model* model);
// Throws std::runtime_error("<what>: <status>: <m3_last_error()>") when status != M3_OK.
void check(m3_status status, const std::string& what);

}  // namespace cli
