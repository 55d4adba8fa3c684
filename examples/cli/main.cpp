// mamba3rt — command-line front end of the runtime.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "cli_args.h"
#include "commands.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* usage;
};

const Command kCommands[] = {
    {"info", cli::run_info,
     "info --model DIR [--backend auto|cpu|cpu-reference|vulkan|cuda] [--device SEL] [--threads N]"},
    {"logits", cli::run_logits,
     "logits --model DIR --tokens IN.safetensors --out OUT.safetensors [--mode prefill|step|split] "
     "[--backend B] [--device SEL] [--threads N]"},
    {"generate", cli::run_generate,
     "generate [--model DIR] --prompt TEXT [-n N] [--temp T --top-k K --top-p P --min-p M --repeat-penalty R "
     "[--repeat-last-n N] --presence-penalty X --frequency-penalty X --seed S | --greedy] [--stop TEXT] "
     "[--ignore-eos] [--backend B] [--device SEL] [--threads N]"},
    {"chat", cli::run_chat, "chat [--model DIR] [sampling options as for generate] [-n N per answer]"},
    {"perplexity", cli::run_perplexity,
     "perplexity [--model DIR] --file TEXT_FILE [--json] [--backend B] [--device SEL] [--threads N]"},
    {"bench", cli::run_bench,
     "bench (--model DIR | --config FILE.json [--dtype f32|f16|bf16|int8|q4]) [--prompt N] [--gen M] [--batch B] "
     "[--backend B] [--device SEL] [--threads N] [--reps R] [--seed S] [--json] [--quiet] [--mem-bw GB/s] "
     "[--fma-peak GFLOP/s] [--bw-buffer-mb MB] [--tmp-dir DIR] [--keep-model DIR]"},
    {"quantize", cli::run_quantize,
     "quantize --model DIR --type f32|f16|bf16|int8|q4 --out DIR2 [--embedding-type T] [--force]"},
    {"serve", cli::run_serve,
     "serve [--model DIR] [--port P (8080; 0: any)] [--host H] [--max-streams N] [--max-batch N] [--max-tokens N]\n"
     "        [--max-prompt-tokens N] [--max-body-bytes N] [--queue-capacity N] [--prefill-chunk N] [--prefill-budget N]\n"
     "        [--model-name S]\n"
     "        OpenAI-compatible /v1/completions (SSE when stream is true), /v1/models, /health, /metrics"},
    {"tokenize", cli::run_tokenize, "tokenize (--model DIR | --tokenizer FILE.json) (--text T | --file F) [--special]"},
};

void print_usage(FILE* out) {
  std::fprintf(out, "mamba3rt %s — run Mamba-3 language models\n\nusage:\n", m3_version());
  for (const Command& c : kCommands) std::fprintf(out, "  mamba3rt %s\n", c.usage);
  std::fprintf(out,
               "\n--device SEL: the GPU a vulkan or cuda backend runs on: an index in the backend's order, or\n"
               "(vulkan) a case-insensitive part of the device's name, e.g. llvmpipe; the CPU backends ignore it.\n"
               "`mamba3rt info --backend vulkan --device SEL` shows which device that is.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("mamba3rt %s (ABI %u)\n", m3_version(), m3_abi_version());
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(args);
    } catch (const cli::UsageError& e) {
      std::fprintf(stderr, "mamba3rt %s: %s\nusage: mamba3rt %s\n", c.name, e.what(), c.usage);
      return 2;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "mamba3rt %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "mamba3rt: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return 2;
}
