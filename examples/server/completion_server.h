// `mamba3rt serve`: an OpenAI-compatible HTTP server over one model and one streaming engine.
//   POST /v1/completions   (stream false: one JSON answer; stream true: server-sent events)
//   GET  /v1/models, /health, /metrics (Prometheus text)
// Every request becomes a stream on the engine; a client that disconnects mid-stream frees it.
// Uses only the public C API (mamba3rt.h), cpp-httplib and nlohmann-json.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "completion_request.h"
#include "mamba3rt.h"
#include "server_metrics.h"

namespace httplib {
class Server;
class Request;
class Response;
}  // namespace httplib

namespace server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0: any free port (see bound_port())
  std::string model_name;              // the id clients name in "model"
  RequestLimits limits;
  int32_t max_prompt_tokens = 32768;
  std::size_t max_body_bytes = 1 << 20;
  int http_threads = 128;              // concurrent connections served (one per open stream)
  int idle_ping_ms = 1000;             // SSE comment sent when no token came for this long
};

class CompletionServer {
 public:
  // The model and engine must outlive the server.
  CompletionServer(m3_model* model, m3_engine* engine, ServerOptions options);
  ~CompletionServer();

  // Binds the socket; returns the port, or throws std::runtime_error.
  int bind();
  // Serves until stop() (from another thread or a signal handler thread).
  void listen();
  // Whether listen() accepts connections (a stop() before that would be lost).
  bool listening() const;
  // Blocks until listening().
  void wait_until_listening() const;
  void stop();

 private:
  void completions(const httplib::Request& req, httplib::Response& res);
  void reply_error(httplib::Response& res, const RequestError& e);

  m3_model* model_;
  m3_engine* engine_;
  ServerOptions options_;
  const m3_tokenizer* tokenizer_ = nullptr;
  std::unique_ptr<httplib::Server> http_;
  ServerMetrics metrics_;
  std::atomic<uint64_t> next_id_{1};
  int listen_socket_ = -1;
};

}  // namespace server
