// mamba3rt bench: prefill and decode speed of a model (or of random weights for any config),
// judged against this machine's memory bandwidth and FMA peak, which it measures itself.
// Method and formulas: docs/BENCHMARKS.md.
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/cpu/simd/kernel_table.h"
#include "bench_cost_model.h"
#include "bench_process_memory.h"
#include "bench_progress.h"
#include "bench_random_model.h"
#include "cli_args.h"
#include "commands.h"
#include "hardware_probe.h"

namespace cli {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double mb(double bytes) { return bytes / 1e6; }
// Rounds for the JSON output (timings are not worth more digits).
double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto i = static_cast<std::size_t>(pos);
  const double frac = pos - static_cast<double>(i);
  return i + 1 < v.size() ? v[i] * (1 - frac) + v[i + 1] * frac : v[i];
}

// A fresh directory for a random model; removed (with its contents) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& base) {
    std::string pattern = base + "/mamba3rt-bench-XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error(base + ": cannot create a temporary directory");
    path_ = pattern;
  }
  ~TempDir() { remove(); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  void remove() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    path_.clear();
  }

 private:
  std::string path_;
};

// Ctrl-C or SIGTERM while a random model is being written: stop and remove it (the
// temporary directory's destructor runs as the exception unwinds).
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) { g_interrupted = 1; }

class InterruptGuard {
 public:
  InterruptGuard() {
    old_int_ = std::signal(SIGINT, on_interrupt);
    old_term_ = std::signal(SIGTERM, on_interrupt);
  }
  ~InterruptGuard() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

uint64_t free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Where random models go: tmpfs (/dev/shm) when it has room, so that no disk writeback runs
// during the measurement; else $TMPDIR or /tmp.
std::string temp_base(uint64_t need) {
  const uint64_t margin = need / 8 + (uint64_t{64} << 20);
  if (access("/dev/shm", W_OK) == 0 && free_bytes("/dev/shm") > need + margin) return "/dev/shm";
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int32_t argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

struct Session {
  m3_session* s = nullptr;
  ~Session() { m3_session_free(s); }
};

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9)
    std::snprintf(buf, sizeof buf, "%.3fB", n / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  return buf;
}

}  // namespace

int run_bench(const std::vector<std::string>& argv) {
  Args args(argv,
            {"model", "config", "dtype", "backend", "device", "threads", "prompt", "gen", "batch", "seed", "reps",
             "tmp-dir", "keep-model", "bw-buffer-mb", "mem-bw", "fma-peak", "embedding-type"},
            {"json", "quiet"});
  const long long prompt = args.get_int("prompt", 512);
  const long long gen = args.get_int("gen", 128);
  const long long batch = args.get_int("batch", 1);
  const long long reps = args.get_int("reps", 3);
  const long long bw_mb = args.get_int("bw-buffer-mb", 1024);
  const long long seed = args.get_int("seed", 1);
  if (prompt < 0 || prompt > 1000000) throw UsageError("--prompt must be in 0..1000000");
  if (gen < 0 || gen > 100000000) throw UsageError("--gen must be in 0..100000000");
  if (batch < 1 || batch > 4096) throw UsageError("--batch must be in 1..4096");
  if (reps < 1 || reps > 1000) throw UsageError("--reps must be in 1..1000");
  if (bw_mb < 1 || bw_mb > (1 << 20)) throw UsageError("--bw-buffer-mb must be in 1..1048576");
  if (args.get_int("threads", 0) < 0) throw UsageError("--threads must be >= 0 (0: the backend's default)");
  if (prompt == 0 && gen == 0) throw UsageError("nothing to measure: --prompt and --gen are both 0");
  auto positive_double = [&](const char* name) -> std::optional<double> {
    const auto v = args.get(name);
    if (!v) return std::nullopt;
    char* end = nullptr;
    const double d = std::strtod(v->c_str(), &end);
    if (end == v->c_str() || *end || !(d > 0) || !std::isfinite(d))
      throw UsageError(std::string("--") + name + " expects a positive number, got '" + *v + "'");
    return d;
  };
  const std::optional<double> given_bw = positive_double("mem-bw");
  const std::optional<double> given_fma = positive_double("fma-peak");
  if (args.get("model") && args.get("config")) throw UsageError("give --model or --config, not both");
  if (args.get("dtype") && !args.get("config"))
    throw UsageError("--dtype applies to --config (random weights); a --model runs as stored");
  if (args.get("keep-model") && !args.get("config")) throw UsageError("--keep-model applies to --config");
  if (args.get("embedding-type") && !args.get("config")) throw UsageError("--embedding-type applies to --config");
  const std::string dtype_name = args.get_or("dtype", "bf16");
  const std::optional<m3::WeightType> dtype = m3::parse_weight_type(dtype_name);
  if (!dtype) throw UsageError("unknown --dtype '" + dtype_name + "' (expected f32, f16, bf16, int8 or q4)");
  std::optional<m3::WeightType> embedding_type;
  if (const auto e = args.get("embedding-type")) {
    embedding_type = m3::parse_weight_type(*e);
    if (!embedding_type) throw UsageError("unknown --embedding-type '" + *e + "' (expected f32, f16, bf16, int8 or q4)");
  }
  const bool json = args.flag("json");
  const bool quiet = args.flag("quiet");
  auto note = [&](const char* fmt, auto... v) {
    if (quiet) return;
    std::fprintf(stderr, fmt, v...);
    std::fflush(stderr);
  };

  // The model: a directory, or random weights for a config written to a temporary one.
  std::string dir, name, source;
  double write_s = 0;
  std::unique_ptr<TempDir> temp;
  std::optional<InterruptGuard> interrupt_guard;  // while the random model's files exist
  if (const auto config_path = args.get("config")) {
    RandomModelSpec spec;
    spec.config_json = read_text_file(*config_path);
    spec.source = *config_path;
    spec.type = *dtype;
    spec.embedding_type = embedding_type;
    spec.seed = static_cast<uint64_t>(seed);
    spec.threads = static_cast<int>(std::max<long long>(2, args.get_int("threads", 0)));
    const uint64_t bytes = random_model_bytes(spec);  // validates the config
    if (const auto keep = args.get("keep-model")) {
      std::filesystem::create_directories(*keep);
      dir = *keep;
    } else {
      temp = std::make_unique<TempDir>(args.get_or("tmp-dir", temp_base(bytes)));
      dir = temp->path();
    }
    if (free_bytes(dir) < bytes)
      throw std::runtime_error(dir + ": not enough free space for the " + human_bytes(static_cast<double>(bytes)) +
                               " random model");
    name = std::filesystem::path(*config_path).stem().string();
    source = "random weights from " + *config_path;
    note("writing a random %s model (%s) to %s\n", dtype_name.c_str(), human_bytes(static_cast<double>(bytes)).c_str(),
         dir.c_str());
    const auto t0 = Clock::now();
    ProgressLine progress(!quiet);
    interrupt_guard.emplace();
    write_random_model(spec, dir, [&](uint64_t done, uint64_t total) {
      if (g_interrupted) throw std::runtime_error("interrupted while writing the random model");
      progress.update("writing weights " + std::to_string(done * 100 / std::max<uint64_t>(total, 1)) + "%");
    });
    progress.finish();
    write_s = seconds_since(t0);
  } else {
    dir = model_dir_arg(args);
    name = std::filesystem::path(dir).lexically_normal().filename().string();
    if (name.empty()) name = std::filesystem::path(dir).lexically_normal().parent_path().filename().string();
    source = dir;
  }

  const auto load_t0 = Clock::now();
  std::unique_ptr<m3_model, void (*)(m3_model*)> model(load_model(dir, args), m3_model_free);
  const double load_s = seconds_since(load_t0);
  const ModelCost cost = model_cost(model.get(), dir);
  // The weights stay mapped; the files are no longer needed (nothing is left behind if the
  // run is interrupted).
  if (temp) temp->remove();
  interrupt_guard.reset();
  if (g_interrupted) throw std::runtime_error("interrupted");

  int64_t threads = 0, backend_id = 0, V = 0, vocab = 0;
  m3_model_info(model.get(), M3_INFO_THREADS, &threads);
  m3_model_info(model.get(), M3_INFO_BACKEND, &backend_id);
  m3_model_info(model.get(), M3_INFO_VOCAB_PADDED, &V);
  m3_model_info(model.get(), M3_INFO_VOCAB_SIZE, &vocab);
  const auto backend = static_cast<m3_backend>(backend_id);
  const std::string backend_name = m3_backend_name(backend);
  const std::string device = device_name(model.get());
  const std::string kernel_arch = backend == M3_BACKEND_CPU ? m3::cpu::best_kernel_table().arch
                                  : backend == M3_BACKEND_CPU_REFERENCE ? "scalar"
                                                                        : "";
  const std::string model_dtype = cost.weight_type;
  const std::string embedding_dtype = cost.embedding_type;

  // The machine's ceilings, with the bench's thread count, measured before and after the
  // runs: the machine may be shared, and the better of the two is the ceiling.
  double mem_bw = given_bw.value_or(0), fma_peak = given_fma.value_or(0);
  std::vector<double> bw_probes, fma_probes;
  auto probe = [&](const char* when) {
    if (!given_bw) {
      note("measuring memory bandwidth %s (%lld MiB, %lld threads)\n", when, bw_mb, static_cast<long long>(threads));
      bw_probes.push_back(
          measure_read_bandwidth(static_cast<int>(threads), static_cast<std::size_t>(bw_mb) << 20, 5).best_gbs);
      mem_bw = std::max(mem_bw, bw_probes.back());
    }
    if (!given_fma) {
      fma_probes.push_back(measure_fma_peak(static_cast<int>(threads), 0.05, 5).best_gflops);
      fma_peak = std::max(fma_peak, fma_probes.back());
    }
  };
  probe("before");
  const bool peak_reset = reset_peak_rss();

  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::vector<int32_t> tokens(static_cast<std::size_t>(std::max<long long>(prompt, 1)));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  std::vector<float> logits(static_cast<std::size_t>(V * batch));

  Session first;
  check(m3_session_create(model.get(), &first.s), "session");
  // Warm-up: one step reads every weight once (page faults, caches), then start clean.
  check(m3_session_step(first.s, tokens[0], logits.data(), logits.size()), "warm-up step");
  check(m3_session_reset(first.s), "reset");

  // Prefill: the prompt from a zero state, `reps` times (fewer when that takes over 20 s).
  std::vector<double> prefill_s;
  if (prompt > 0) {
    note("prefill: %lld tokens x up to %lld\n", prompt, reps);
    ProgressLine progress(!quiet);
    const auto t_all = Clock::now();
    for (long long r = 0; r < reps; ++r) {
      if (r > 0 && seconds_since(t_all) > 20) break;
      check(m3_session_reset(first.s), "reset");
      const auto t0 = Clock::now();
      check(m3_session_feed(first.s, tokens.data(), static_cast<size_t>(prompt), M3_LOGITS_LAST, logits.data(),
                            logits.size()),
            "prefill");
      prefill_s.push_back(seconds_since(t0));
      progress.update("prefill " + std::to_string(r + 1) + "/" + std::to_string(reps));
    }
  }

  // Decode: `batch` streams continuing from the prompt's state, greedy tokens.
  std::vector<double> step_ms;
  uint64_t rss_decode_start = 0, rss_decode_end = 0, rss_decode_max = 0;
  double decode_total_s = 0;  // the steps' own time (token picking and bookkeeping excluded)
  if (gen > 0) {
    std::vector<Session> extra(static_cast<std::size_t>(batch - 1));
    std::vector<m3_session*> sessions{first.s};
    for (auto& e : extra) {
      check(m3_session_fork(first.s, &e.s), "fork");
      sessions.push_back(e.s);
    }
    std::vector<int32_t> next(static_cast<std::size_t>(batch), prompt > 0 ? argmax(logits.data(), vocab) : tokens[0]);
    auto step = [&] {
      if (batch == 1)
        check(m3_session_step(first.s, next[0], logits.data(), logits.size()), "decode");
      else
        check(m3_decode_batch(sessions.data(), next.data(), sessions.size(), logits.data(), logits.size()), "decode");
    };
    auto pick = [&] {
      for (long long b = 0; b < batch; ++b) next[b] = argmax(logits.data() + b * V, vocab);
    };
    for (int w = 0; w < 2; ++w) {  // warm-up steps, not timed
      step();
      pick();
    }
    note("decode: %lld steps, batch %lld\n", gen, batch);
    // Written now, so that the pages of this record are resident before the RSS is sampled.
    step_ms.assign(static_cast<std::size_t>(gen), 0.0);
    ProgressLine progress(!quiet);
    rss_decode_start = rss_decode_max = current_rss_bytes();
    const auto t_all = Clock::now();
    for (long long i = 0; i < gen; ++i) {
      const auto t0 = Clock::now();
      step();
      step_ms[static_cast<std::size_t>(i)] = seconds_since(t0) * 1e3;
      pick();
      if ((i & 1023) == 1023) rss_decode_max = std::max(rss_decode_max, current_rss_bytes());
      if ((i & 7) == 7) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "decode %lld/%lld  %.2f ms/step  RSS %.1f MB", i + 1, gen,
                      seconds_since(t_all) * 1e3 / static_cast<double>(i + 1), mb(static_cast<double>(rss_decode_max)));
        progress.update(buf);
      }
    }
    for (double ms : step_ms) decode_total_s += ms / 1e3;
    progress.finish();
    rss_decode_end = current_rss_bytes();
    rss_decode_max = std::max(rss_decode_max, rss_decode_end);
  }
  const uint64_t peak_rss = peak_rss_bytes();
  probe("after");

  // Results.
  const double prefill_median = percentile(prefill_s, 50);
  const double prefill_tok_s = prefill_median > 0 ? static_cast<double>(prompt) / prefill_median : 0;
  const double prefill_flops = cost.prefill_flops_per_token(prompt);
  const double prefill_gflops = prefill_tok_s * prefill_flops / 1e9;
  const double decode_tok_s = decode_total_s > 0 ? static_cast<double>(gen * batch) / decode_total_s : 0;
  const double bytes_per_step = cost.decode_bytes_per_step(batch);
  const double decode_gbs = decode_total_s > 0 ? bytes_per_step * static_cast<double>(gen) / decode_total_s / 1e9 : 0;
  const double roofline_fraction = decode_gbs / mem_bw;
  const double roofline_ms = bytes_per_step / (mem_bw * 1e9) * 1e3;

  if (json) {
    Json j;
    j["model"] = name;
    j["source"] = source;
    j["dtype"] = model_dtype.empty() ? Json(nullptr) : Json(model_dtype);
    j["embedding_dtype"] = embedding_dtype.empty() ? Json(nullptr) : Json(embedding_dtype);
    j["backend"] = backend_name;
    j["kernel_arch"] = kernel_arch;
    j["device"] = device;
    j["threads"] = threads;
    j["cpu"] = cpu_model_name();
    j["n_params"] = cost.n_params;
    j["weight_bytes"] = cost.weight_bytes;
    j["state_bytes"] = cost.state_bytes;
    j["embedding_bytes"] = cost.embedding_bytes;
    j["tied_embeddings"] = cost.tied;
    j["batch"] = batch;
    j["prompt_tokens"] = prompt;
    j["gen_tokens"] = gen;
    j["mem_bw_gbs"] = round_to(mem_bw, 3);
    j["mem_bw_measured"] = !given_bw;
    j["mem_bw_probes_gbs"] = Json::array();
    for (double v : bw_probes) j["mem_bw_probes_gbs"].push_back(round_to(v, 3));
    j["fma_peak_gflops"] = round_to(fma_peak, 2);
    j["fma_peak_measured"] = !given_fma;
    j["fma_peak_probes_gflops"] = Json::array();
    for (double v : fma_probes) j["fma_peak_probes_gflops"].push_back(round_to(v, 2));
    const Json none(nullptr);
    j["prefill_reps"] = prefill_s.size();
    j["prefill_tok_s"] = prompt > 0 ? Json(round_to(prefill_tok_s, 3)) : none;
    j["prefill_ms"] = prompt > 0 ? Json(round_to(prefill_median * 1e3, 3)) : none;
    j["prefill_ms_best"] = prompt > 0 ? Json(round_to(percentile(prefill_s, 0) * 1e3, 3)) : none;
    j["prefill_flops_per_token"] = prompt > 0 ? Json(prefill_flops) : none;
    j["prefill_gflops"] = prompt > 0 ? Json(round_to(prefill_gflops, 3)) : none;
    j["prefill_fraction_of_peak"] = prompt > 0 ? Json(round_to(prefill_gflops / fma_peak, 4)) : none;
    j["decode_tok_s"] = gen > 0 ? Json(round_to(decode_tok_s, 3)) : none;
    j["decode_ms_p50"] = gen > 0 ? Json(round_to(percentile(step_ms, 50), 4)) : none;
    j["decode_ms_p99"] = gen > 0 ? Json(round_to(percentile(step_ms, 99), 4)) : none;
    j["decode_ms_mean"] = gen > 0 ? Json(round_to(decode_total_s * 1e3 / static_cast<double>(gen), 4)) : none;
    j["decode_ms_min"] = gen > 0 ? Json(round_to(percentile(step_ms, 0), 4)) : none;
    j["bytes_per_step"] = bytes_per_step;
    j["bytes_per_token"] = bytes_per_step / static_cast<double>(batch);
    j["decode_gbs"] = gen > 0 ? Json(round_to(decode_gbs, 3)) : none;
    j["roofline_ms_per_step"] = round_to(roofline_ms, 4);
    j["roofline_fraction"] = gen > 0 ? Json(round_to(roofline_fraction, 4)) : none;
    j["peak_rss_mb"] = round_to(mb(static_cast<double>(peak_rss)), 1);
    j["peak_rss_includes_probe"] = !peak_reset;
    j["rss_decode_start_mb"] = gen > 0 ? Json(round_to(mb(static_cast<double>(rss_decode_start)), 1)) : none;
    j["rss_decode_end_mb"] = gen > 0 ? Json(round_to(mb(static_cast<double>(rss_decode_end)), 1)) : none;
    j["rss_decode_max_mb"] = gen > 0 ? Json(round_to(mb(static_cast<double>(rss_decode_max)), 1)) : none;
    j["model_write_s"] = round_to(write_s, 3);
    j["load_s"] = round_to(load_s, 3);
    j["version"] = m3_version();
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }

  std::string types;
  if (!model_dtype.empty())
    types = ", " + model_dtype + (embedding_dtype != model_dtype ? " (embedding " + embedding_dtype + ")" : "");
  std::printf("model     %s (%s%s)  %s params, %s weights, %s state/stream\n", name.c_str(), source.c_str(),
              types.c_str(), human_count(static_cast<double>(cost.n_params)).c_str(),
              human_bytes(static_cast<double>(cost.weight_bytes)).c_str(),
              human_bytes(static_cast<double>(cost.state_bytes)).c_str());
  std::printf("backend   %s%s%s, %lld threads%s%s\n", backend_name.c_str(), kernel_arch.empty() ? "" : " / ",
              kernel_arch.c_str(), static_cast<long long>(threads), device == "CPU" ? "" : ", device ",
              device == "CPU" ? "" : device.c_str());
  std::printf("machine   %s: memory read %.1f GB/s%s, fp32 FMA peak %.1f GFLOP/s%s\n", cpu_model_name().c_str(), mem_bw,
              given_bw ? " (given)" : "", fma_peak, given_fma ? " (given)" : "");
  if (prompt > 0)
    std::printf("prefill   %lld tokens: %.1f tok/s (%.1f ms, median of %zu), %.1f GFLOP/s = %.1f%% of FMA peak\n", prompt,
                prefill_tok_s, prefill_median * 1e3, prefill_s.size(), prefill_gflops, 100 * prefill_gflops / fma_peak);
  if (gen > 0) {
    std::printf("decode    %lld steps x batch %lld: %.1f tok/s, %.2f ms/step p50, %.2f p99\n", gen, batch, decode_tok_s,
                percentile(step_ms, 50), percentile(step_ms, 99));
    std::printf("roofline  %s/step -> %.1f GB/s = %.1f%% of %.1f GB/s (roofline %.2f ms/step)\n",
                human_bytes(bytes_per_step).c_str(), decode_gbs, 100 * roofline_fraction, mem_bw, roofline_ms);
  }
  std::printf("memory    peak RSS %.1f MB%s", mb(static_cast<double>(peak_rss)), peak_reset ? "" : " (includes the probe)");
  if (gen > 0)
    std::printf("; decode RSS %.1f -> %.1f MB (max %.1f)", mb(static_cast<double>(rss_decode_start)),
                mb(static_cast<double>(rss_decode_end)), mb(static_cast<double>(rss_decode_max)));
  std::printf("\n");
  return 0;
}

}  // namespace cli
