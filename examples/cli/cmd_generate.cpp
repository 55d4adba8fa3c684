// mamba3rt generate: stream the continuation of a prompt to stdout as it is produced.
#include <cstdio>
#include <memory>

#include "cli_args.h"
#include "commands.h"
#include "generation_options.h"

namespace cli {
int run_generate(const std::vector<std::string>& argv) {
  auto values = generation_value_options();
  values.insert("prompt");
  Args args(argv, values, generation_flag_options());
  const std::string prompt = args.require("prompt");
  std::unique_ptr<m3_gen_params, void (*)(m3_gen_params*)> params(make_gen_params(args, 128), m3_gen_params_destroy);

  GenerationSetup setup = open_generation(args, params.get());
  m3_generation* g = setup.generation.get();

  check(m3_generation_push_text(g, prompt.data(), prompt.size()), "prompt");
  m3_finish_reason finish = M3_FINISH_NONE;
  check(m3_generation_run(g, print_piece_to_stdout, nullptr, &finish), "generating");
  print_stats(g);
  return 0;
}

}  // namespace cli
