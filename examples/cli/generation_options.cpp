#include "generation_options.h"

#include <cstdio>
#include <stdexcept>

#include "commands.h"

namespace cli {
namespace {

float to_float(const std::string& name, const std::string& v) {
  try {
    std::size_t used = 0;
    float f = std::stof(v, &used);
    if (used == v.size()) return f;
  } catch (...) {
  }
  throw UsageError("--" + name + " expects a number, got '" + v + "'");
}

}  // namespace

std::set<std::string> generation_value_options() {
  return {"model", "backend", "device", "threads", "n", "temp", "top-k", "top-p", "min-p", "repeat-penalty",
          "repeat-last-n", "presence-penalty", "frequency-penalty", "seed", "stop"};
}

std::set<std::string> generation_flag_options() { return {"greedy", "ignore-eos"}; }

m3_gen_params* make_gen_params(const Args& args, int32_t default_max_tokens) {
  m3_gen_params* p = nullptr;
  check(m3_gen_params_create(&p), "generation params");
  auto set = [&](m3_status s, const char* what) {
    if (s != M3_OK) {
      m3_gen_params_destroy(p);
      throw UsageError(std::string(what) + ": " + m3_last_error());
    }
  };
  set(m3_gen_params_set_max_tokens(p, static_cast<int32_t>(args.get_int("n", default_max_tokens))), "-n");
  if (args.flag("greedy")) {
    for (const char* o : {"temp", "top-k", "top-p", "min-p", "seed"})
      if (args.get(o)) throw UsageError(std::string("--greedy excludes --") + o);
    set(m3_gen_params_set_greedy(p), "--greedy");
  }
  if (auto v = args.get("temp")) set(m3_gen_params_set_temperature(p, to_float("temp", *v)), "--temp");
  if (args.get("top-k")) set(m3_gen_params_set_top_k(p, static_cast<int32_t>(args.get_int("top-k", 0))), "--top-k");
  if (auto v = args.get("top-p")) set(m3_gen_params_set_top_p(p, to_float("top-p", *v)), "--top-p");
  if (auto v = args.get("min-p")) set(m3_gen_params_set_min_p(p, to_float("min-p", *v)), "--min-p");
  if (auto v = args.get("repeat-penalty"))
    set(m3_gen_params_set_repeat_penalty(p, to_float("repeat-penalty", *v),
                                         static_cast<int32_t>(args.get_int("repeat-last-n", 64))),
        "--repeat-penalty");
  if (auto v = args.get("presence-penalty"))
    set(m3_gen_params_set_presence_penalty(p, to_float("presence-penalty", *v)), "--presence-penalty");
  if (auto v = args.get("frequency-penalty"))
    set(m3_gen_params_set_frequency_penalty(p, to_float("frequency-penalty", *v)), "--frequency-penalty");
  if (args.get("seed")) set(m3_gen_params_set_seed(p, static_cast<uint64_t>(args.get_int("seed", 0))), "--seed");
  if (auto v = args.get("stop")) set(m3_gen_params_add_stop_string(p, v->c_str()), "--stop");
  if (args.flag("ignore-eos")) set(m3_gen_params_set_ignore_eos(p, 1), "--ignore-eos");
  return p;
}

GenerationSetup open_generation(const Args& args, const m3_gen_params* params) {
  GenerationSetup g;
  g.model.reset(load_model(model_dir_arg(args), args));
  m3_session* s = nullptr;
  check(m3_session_create(g.model.get(), &s), "creating a session");
  g.session.reset(s);
  m3_generation* gen = nullptr;
  check(m3_generation_create(s, params, &gen), "starting generation");
  g.generation.reset(gen);
  return g;
}

int print_piece_to_stdout(void*, int32_t, const char* piece, size_t len) {
  std::fwrite(piece, 1, len, stdout);
  std::fflush(stdout);
  return 0;
}

void print_stats(const m3_generation* g) {
  auto stat = [&](m3_gen_stat s) {
    double v = 0;
    m3_generation_stat(g, s, &v);
    return v;
  };
  std::fprintf(stderr, "\n[prompt %.0f tokens, %.1f tok/s | generated %.0f tokens, %.1f tok/s | first token %.1f ms]\n",
               stat(M3_STAT_PROMPT_TOKENS), stat(M3_STAT_PREFILL_TOK_S), stat(M3_STAT_GENERATED_TOKENS),
               stat(M3_STAT_DECODE_TOK_S), stat(M3_STAT_TTFT_MS));
}

}  // namespace cli
