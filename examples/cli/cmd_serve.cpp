// mamba3rt serve: the OpenAI-compatible streaming server (examples/server) on one model.
// Prints "listening on http://HOST:PORT" once it accepts connections; SIGINT/SIGTERM stop it.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <pthread.h>
#include <thread>

#include "cli_args.h"
#include "commands.h"
#include "completion_server.h"

namespace cli {
namespace {

int32_t int_option(const Args& args, const std::string& name, long long fallback, long long lo, long long hi) {
  const long long v = args.get_int(name, fallback);
  if (v < lo || v > hi)
    throw UsageError("--" + name + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int32_t>(v);
}

}  // namespace

int run_serve(const std::vector<std::string>& argv) {
  Args args(argv,
            {"model", "backend", "device", "threads", "host", "port", "model-name", "max-streams", "max-batch",
             "max-tokens", "max-prompt-tokens", "max-body-bytes", "queue-capacity", "prefill-chunk", "prefill-budget",
             "http-threads"},
            {});
  server::ServerOptions options;
  options.host = args.get_or("host", "127.0.0.1");
  options.port = int_option(args, "port", 8080, 0, 65535);
  options.limits.max_tokens = int_option(args, "max-tokens", 4096, 1, 1 << 24);
  options.max_prompt_tokens = int_option(args, "max-prompt-tokens", 32768, 1, 1 << 24);
  options.max_body_bytes = static_cast<std::size_t>(int_option(args, "max-body-bytes", 1 << 20, 64, 1 << 30));
  options.http_threads = int_option(args, "http-threads", 128, 1, 4096);

  // Block the stop signals before any thread starts, so that only the waiter below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string dir = model_dir_arg(args);
  std::unique_ptr<m3_model, void (*)(m3_model*)> model(load_model(dir, args), m3_model_free);
  options.model_name =
      args.get_or("model-name", std::filesystem::canonical(dir).filename().string());

  std::unique_ptr<m3_engine_params, void (*)(m3_engine_params*)> engine_params(nullptr, m3_engine_params_destroy);
  {
    m3_engine_params* p = nullptr;
    check(m3_engine_params_create(&p), "engine params");
    engine_params.reset(p);
  }
  check(m3_engine_params_set_max_streams(engine_params.get(), int_option(args, "max-streams", 1024, 1, 1 << 24)),
        "--max-streams");
  check(m3_engine_params_set_max_batch(engine_params.get(), int_option(args, "max-batch", 256, 1, 65536)), "--max-batch");
  check(m3_engine_params_set_queue_capacity(engine_params.get(), int_option(args, "queue-capacity", 64, 1, 1 << 20)),
        "--queue-capacity");
  check(m3_engine_params_set_prefill_chunk(engine_params.get(), int_option(args, "prefill-chunk", 256, 1, 1 << 20)),
        "--prefill-chunk");
  check(m3_engine_params_set_prefill_budget(engine_params.get(), int_option(args, "prefill-budget", 512, 1, 1 << 24)),
        "--prefill-budget");
  m3_engine* raw_engine = nullptr;
  check(m3_engine_create(model.get(), engine_params.get(), &raw_engine), "starting the engine");
  std::unique_ptr<m3_engine, void (*)(m3_engine*)> engine(raw_engine, m3_engine_free);

  server::CompletionServer http(model.get(), engine.get(), options);
  const int port = http.bind();
  std::printf("listening on http://%s:%d (model %s on %s)\n", options.host.c_str(), port, options.model_name.c_str(),
              device_name(model.get()).c_str());
  std::fflush(stdout);

  std::atomic<bool> returned{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    while (!returned && !http.listening()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!returned) http.stop();
  });
  http.listen();
  // listen() also returns on its own (a socket error): wake the waiter so it can be joined.
  returned = true;
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  std::fprintf(stderr, "mamba3rt serve: stopped\n");
  return 0;
}

}  // namespace cli
