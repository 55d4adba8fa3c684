#include "completion_server.h"

#include <chrono>
#include <ctime>
#include <random>
#include <sys/socket.h>
#include <stdexcept>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace server {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* finish_name(m3_finish_reason f) {
  switch (f) {
    case M3_FINISH_MAX_TOKENS: return "length";
    case M3_FINISH_NONE: return nullptr;
    case M3_FINISH_CANCELLED: return "cancelled";
    default: return "stop";  // EOS, a stop token or a stop string
  }
}

std::string status_message(m3_status s) { return std::string(m3_status_name(s)) + ": " + m3_last_error(); }

// Fails the request with a 4xx/5xx chosen from the library's status.
void check(m3_status s, const char* param) {
  if (s == M3_OK) return;
  const int http = s == M3_ERR_LIMIT_EXCEEDED ? 503 : s == M3_ERR_INVALID_ARGUMENT || s == M3_ERR_UNSUPPORTED ? 400 : 500;
  throw RequestError(http, status_message(s), param, http == 503 ? "server_busy" : "invalid_request_error");
}

using StreamPtr = std::shared_ptr<m3_stream>;

struct Event {
  int32_t token = -1;
  std::string piece;
  m3_finish_reason finish = M3_FINISH_NONE;
};

// The next event, or false after timeout_ms without one.
bool next_event(m3_stream* s, int timeout_ms, Event& e) {
  std::string buf(256, '\0');
  size_t len = 0;
  m3_status st = m3_stream_next(s, timeout_ms, &e.token, buf.data(), buf.size(), &len, &e.finish);
  if (st == M3_ERR_TIMEOUT) return false;
  if (st == M3_ERR_BUFFER_TOO_SMALL) {
    buf.resize(len);
    st = m3_stream_next(s, 0, &e.token, buf.data(), buf.size(), &len, &e.finish);
  }
  check(st, "");
  e.piece.assign(buf.data(), len);
  return true;
}

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

}  // namespace

CompletionServer::CompletionServer(m3_model* model, m3_engine* engine, ServerOptions options)
    : model_(model), engine_(engine), options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
  if (m3_model_tokenizer(model_, &tokenizer_) != M3_OK) tokenizer_ = nullptr;  // token-id prompts only
  const int threads = options_.http_threads;
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_tcp_nodelay(true);  // each token is a small write that must leave at once
  http_->set_socket_options([this](int sock) {
    httplib::default_socket_options(sock);
    listen_socket_ = sock;
  });

  http_->Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
    metrics_.count_request("/health", 200);
  });
  http_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(engine_), "text/plain; version=0.0.4");
    metrics_.count_request("/metrics", 200);
  });
  http_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const json body = {{"object", "list"},
                       {"data", json::array({{{"id", options_.model_name}, {"object", "model"}, {"owned_by", "mamba3rt"}}})}};
    res.set_content(body.dump(), "application/json");
    metrics_.count_request("/v1/models", 200);
  });
  http_->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      completions(req, res);
    } catch (const RequestError& e) {
      reply_error(res, e);
    }
    metrics_.count_request("/v1/completions", res.status < 0 ? 200 : res.status);  // -1: httplib's "200 when sent"
  });
  // Unknown paths, over-long bodies (413) and handler exceptions get a JSON error too.
  http_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404 ? "no route " + req.method + " " + req.path
                                : res.status == 413 ? "the request body is larger than " +
                                                          std::to_string(options_.max_body_bytes) + " bytes"
                                                    : "request failed";
    reply_error(res, RequestError(res.status, message));
    metrics_.count_request("other", res.status);
  });
  http_->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    reply_error(res, RequestError(500, what, "", "internal_error"));
  });
}

CompletionServer::~CompletionServer() = default;

int CompletionServer::bind() {
  const int port = options_.port == 0 ? http_->bind_to_any_port(options_.host)
                                      : (http_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port < 0)
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port));
  // The packaged cpp-httplib listens with a backlog of 5; when many clients connect at once
  // while the CPUs are busy, the rest would be dropped. Listening again raises it.
  if (listen_socket_ >= 0) ::listen(listen_socket_, SOMAXCONN);
  return port;
}

void CompletionServer::listen() { http_->listen_after_bind(); }

bool CompletionServer::listening() const { return http_->is_running(); }

void CompletionServer::wait_until_listening() const {
  while (!listening()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void CompletionServer::stop() { http_->stop(); }

void CompletionServer::reply_error(httplib::Response& res, const RequestError& e) {
  res.status = e.http_status;
  const json body = {{"error",
                      {{"message", e.what()},
                       {"type", e.http_status >= 500 ? "server_error" : "invalid_request_error"},
                       {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                       {"code", e.code}}}};
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void CompletionServer::completions(const httplib::Request& req, httplib::Response& res) {
  const auto arrived = Clock::now();
  const CompletionRequest r = parse_completion_request(req.body, options_.limits);
  if (!r.model.empty() && r.model != options_.model_name)
    throw RequestError(404, "the model '" + r.model + "' does not exist; this server runs '" + options_.model_name + "'",
                       "model", "model_not_found");

  // The prompt's tokens, checked against the limit before anything is queued.
  std::vector<int32_t> prompt = r.prompt_tokens;
  if (!r.prompt_is_tokens) {
    if (!tokenizer_)
      throw RequestError(400, "this model has no tokenizer: send the prompt as an array of token ids", "prompt");
    size_t n = 0;
    m3_tokenize(tokenizer_, r.prompt_text.data(), r.prompt_text.size(), 1, nullptr, 0, &n);
    prompt.resize(n);
    check(m3_tokenize(tokenizer_, r.prompt_text.data(), r.prompt_text.size(), 1, prompt.data(), prompt.size(), &n),
          "prompt");
  }
  if (prompt.size() > static_cast<size_t>(options_.max_prompt_tokens))
    throw RequestError(400, "the prompt has " + std::to_string(prompt.size()) + " tokens; the limit is " +
                                std::to_string(options_.max_prompt_tokens), "prompt");

  std::unique_ptr<m3_gen_params, void (*)(m3_gen_params*)> params(nullptr, m3_gen_params_destroy);
  {
    m3_gen_params* p = nullptr;
    check(m3_gen_params_create(&p), "");
    params.reset(p);
  }
  m3_gen_params* p = params.get();
  if (r.temperature <= 0) {
    check(m3_gen_params_set_greedy(p), "temperature");
  } else {
    check(m3_gen_params_set_temperature(p, r.temperature), "temperature");
  }
  check(m3_gen_params_set_top_p(p, r.top_p), "top_p");
  check(m3_gen_params_set_top_k(p, r.top_k), "top_k");
  check(m3_gen_params_set_min_p(p, r.min_p), "min_p");
  check(m3_gen_params_set_presence_penalty(p, r.presence_penalty), "presence_penalty");
  check(m3_gen_params_set_frequency_penalty(p, r.frequency_penalty), "frequency_penalty");
  check(m3_gen_params_set_repeat_penalty(p, r.repetition_penalty, 64), "repetition_penalty");
  check(m3_gen_params_set_seed(p, r.seed ? *r.seed : std::random_device{}()), "seed");
  check(m3_gen_params_set_max_tokens(p, r.max_tokens), "max_tokens");
  check(m3_gen_params_set_ignore_eos(p, r.ignore_eos ? 1 : 0), "ignore_eos");
  for (const std::string& s : r.stop) check(m3_gen_params_add_stop_string(p, s.c_str()), "stop");
  for (const auto& [token, bias] : r.logit_bias) check(m3_gen_params_add_logit_bias(p, token, bias), "logit_bias");

  m3_stream* raw = nullptr;
  check(m3_engine_submit(engine_, p, nullptr, nullptr, nullptr, &raw), "");
  const StreamPtr stream(raw, m3_stream_free);
  check(m3_stream_push_tokens(raw, prompt.data(), prompt.size()), "prompt");

  const std::string id = "cmpl-" + std::to_string(next_id_++);
  const int64_t created = static_cast<int64_t>(std::time(nullptr));
  const auto ms_since_arrival = [arrived] {
    return std::chrono::duration<double, std::milli>(Clock::now() - arrived).count();
  };

  if (!r.stream) {
    std::string text;
    int64_t generated = 0;
    Event e;
    Clock::time_point last_token{};
    while (e.finish == M3_FINISH_NONE) {
      if (!next_event(raw, -1, e)) continue;
      if (e.token >= 0) {
        const auto now = Clock::now();
        if (generated++ == 0) {
          metrics_.add_ttft_ms(ms_since_arrival());
        } else {
          metrics_.add_inter_token_seconds(std::chrono::duration<double>(now - last_token).count());
        }
        last_token = now;
      }
      text += e.piece;
    }
    const json body = {{"id", id},
                       {"object", "text_completion"},
                       {"created", created},
                       {"model", options_.model_name},
                       {"choices", json::array({{{"text", text},
                                                 {"index", 0},
                                                 {"logprobs", nullptr},
                                                 {"finish_reason", finish_name(e.finish)}}})},
                       {"usage",
                        {{"prompt_tokens", prompt.size()},
                         {"completion_tokens", generated},
                         {"total_tokens", static_cast<int64_t>(prompt.size()) + generated}}}};
    res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    return;
  }

  metrics_.stream_opened();
  const std::string model_name = options_.model_name;
  const int ping_ms = options_.idle_ping_ms;
  // The previous token's arrival; epoch: none yet.
  auto last_token = std::make_shared<Clock::time_point>();
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, stream, id, created, model_name, ping_ms, last_token, ms_since_arrival](size_t, httplib::DataSink& sink) {
        Event e;
        try {
          if (!next_event(stream.get(), ping_ms, e)) {
            // Nothing new: a comment line keeps proxies open and finds clients that left.
            if (!sink.write(":\n\n", 3)) {
              metrics_.client_disconnected();
              return false;
            }
            return true;
          }
        } catch (const RequestError& err) {
          const std::string line = sse({{"error", {{"message", err.what()}, {"type", "server_error"}}}});
          sink.write(line.data(), line.size());
          sink.done();
          return true;
        }
        if (e.token >= 0) {
          const auto now = Clock::now();
          if (*last_token == Clock::time_point{}) {
            metrics_.add_ttft_ms(ms_since_arrival());
          } else {
            metrics_.add_inter_token_seconds(std::chrono::duration<double>(now - *last_token).count());
          }
          *last_token = now;
        }
        // One chunk per token (its text may be empty while a stop string or a UTF-8
        // character is incomplete), and one for the finish.
        if (e.token >= 0 || !e.piece.empty() || e.finish != M3_FINISH_NONE) {
          const json chunk = {{"id", id},
                              {"object", "text_completion"},
                              {"created", created},
                              {"model", model_name},
                              {"choices", json::array({{{"text", e.piece},
                                                        {"index", 0},
                                                        {"logprobs", nullptr},
                                                        {"finish_reason", finish_name(e.finish) ? json(finish_name(e.finish))
                                                                                                 : json(nullptr)}}})}};
          const std::string line = sse(chunk);
          if (!sink.write(line.data(), line.size())) {
            metrics_.client_disconnected();
            return false;  // the client left: the stream is freed with the provider
          }
        }
        if (e.finish != M3_FINISH_NONE) {
          static const std::string kDone = "data: [DONE]\n\n";
          sink.write(kDone.data(), kDone.size());
          sink.done();
        }
        return true;
      },
      [this](bool) { metrics_.stream_closed(); });
}

}  // namespace server
