// The sampling/stopping options shared by `generate` and `chat`.
#pragma once

#include <memory>
#include <set>
#include <string>

#include "cli_args.h"
#include "mamba3rt.h"

namespace cli {

// Option names (without --) that take a value / are flags.
std::set<std::string> generation_value_options();
std::set<std::string> generation_flag_options();

// Builds m3_gen_params from parsed options; the caller destroys it.
m3_gen_params* make_gen_params(const Args& args, int32_t default_max_tokens);

// A model (--model or the default), one session on it and one generation on that session.
struct GenerationSetup {
  std::unique_ptr<m3_model, void (*)(m3_model*)> model{nullptr, m3_model_free};
  std::unique_ptr<m3_session, void (*)(m3_session*)> session{nullptr, m3_session_free};
  std::unique_ptr<m3_generation, void (*)(m3_generation*)> generation{nullptr, m3_generation_free};
};
GenerationSetup open_generation(const Args& args, const m3_gen_params* params);

// m3_piece_callback that writes each piece to stdout at once.
int print_piece_to_stdout(void* user_data, int32_t token, const char* piece, size_t len);

// Prints timing statistics of a generation to stderr.
void print_stats(const m3_generation* generation);

}  // namespace cli
