// mamba3rt chat: an interactive loop on one session. Each line you type is pushed into the
// live generation and the model answers until a newline (or -n tokens). The state carries
// the whole conversation at a constant size, so long histories cost nothing.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli_args.h"
#include "commands.h"
#include "generation_options.h"

namespace cli {
int run_chat(const std::vector<std::string>& argv) {
  Args args(argv, generation_value_options(), generation_flag_options());
  std::unique_ptr<m3_gen_params, void (*)(m3_gen_params*)> params(make_gen_params(args, 200), m3_gen_params_destroy);
  if (!args.get("stop")) check(m3_gen_params_add_stop_string(params.get(), "\n"), "stop string");

  GenerationSetup setup = open_generation(args, params.get());
  m3_generation* g = setup.generation.get();
  int64_t state_bytes = 0;
  m3_model_info(setup.model.get(), M3_INFO_STATE_BYTES, &state_bytes);
  std::fprintf(stderr, "chat: state %.2f MiB per conversation, whatever its length. Ctrl-D to quit.\n",
               static_cast<double>(state_bytes) / (1 << 20));

  std::string line;
  while (true) {
    std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    line += '\n';
    const m3_status st = m3_generation_push_text(g, line.data(), line.size());
    if (st != M3_OK) {
      std::fprintf(stderr, "chat: %s\n", m3_last_error());
      continue;
    }
    m3_finish_reason finish = M3_FINISH_NONE;
    check(m3_generation_run(g, print_piece_to_stdout, nullptr, &finish), "generating");
    std::printf("\n");
    std::fflush(stdout);
  }
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace cli
