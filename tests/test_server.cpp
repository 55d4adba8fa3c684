// The streaming server: request parsing, and a live server on loopback (in this process and
// as `mamba3rt serve`) answering completions, streams, malformed requests and disconnects.
#include <gtest/gtest.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <memory>
#include <mutex>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "completion_request.h"
#include "completion_server.h"
#include "mamba3rt.h"

extern char** environ;

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

const std::string kModel = "../models/default";

// --- Request parsing ------------------------------------------------------------------

server::CompletionRequest parse(const std::string& body) { return server::parse_completion_request(body, {}); }

int status_of(const std::string& body, std::string* param = nullptr) {
  try {
    parse(body);
  } catch (const server::RequestError& e) {
    if (param) *param = e.param;
    return e.http_status;
  }
  return 200;
}

TEST(CompletionRequest, ReadsTheOpenAIFields) {
  const auto r = parse(R"({"model":"m","prompt":"hi","max_tokens":7,"stream":true,"temperature":0.5,"top_p":0.9,
      "seed":42,"stop":["\n","."],"presence_penalty":0.1,"frequency_penalty":-0.2,"logit_bias":{"5":-100},
      "user":"ignored","top_k":3,"min_p":0.05,"repetition_penalty":1.2,"ignore_eos":true,"n":1,"echo":false})");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.prompt_text, "hi");
  EXPECT_FALSE(r.prompt_is_tokens);
  EXPECT_EQ(r.max_tokens, 7);
  EXPECT_TRUE(r.stream);
  EXPECT_FLOAT_EQ(r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n", "."}));
  EXPECT_FLOAT_EQ(r.presence_penalty, 0.1f);
  EXPECT_FLOAT_EQ(r.frequency_penalty, -0.2f);
  ASSERT_EQ(r.logit_bias.size(), 1u);
  EXPECT_EQ(r.logit_bias[0].first, 5);
  EXPECT_EQ(r.top_k, 3);
  EXPECT_TRUE(r.ignore_eos);
}

TEST(CompletionRequest, DefaultsAndPromptForms) {
  const auto r = parse(R"({"prompt":"x"})");
  EXPECT_EQ(r.max_tokens, 16);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.seed.has_value());
  EXPECT_EQ(parse(R"({"prompt":["one text"]})").prompt_text, "one text");
  const auto t = parse(R"({"prompt":[1,2,3]})");
  EXPECT_TRUE(t.prompt_is_tokens);
  EXPECT_EQ(t.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse(R"({"prompt":"x","stop":"END"})").stop, std::vector<std::string>{"END"});
}

TEST(CompletionRequest, MalformedRequestsAre400WithTheParameter) {
  std::string param;
  EXPECT_EQ(status_of("{bad"), 400);
  EXPECT_EQ(status_of(""), 400);
  EXPECT_EQ(status_of("[1,2]"), 400);
  EXPECT_EQ(status_of(R"({})", &param), 400);
  EXPECT_EQ(param, "prompt");
  EXPECT_EQ(status_of(R"({"prompt":""})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":[]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":5})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":["a","b"]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":[1,-2]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":[1,2.5]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","max_tokens":-1})", &param), 400);
  EXPECT_EQ(param, "max_tokens");
  EXPECT_EQ(status_of(R"({"prompt":"x","max_tokens":4097})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","max_tokens":99999999999999999999})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","max_tokens":"10"})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","max_tokens":1.5})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","temperature":"hot"})", &param), 400);
  EXPECT_EQ(param, "temperature");
  EXPECT_EQ(status_of(R"({"prompt":"x","temperature":3})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","top_p":0})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","stream":"yes"})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","stop":[1]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","stop":["a","b","c","d","e"]})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","stop":""})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","logit_bias":{"abc":1}})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","logit_bias":{"5":500}})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","n":2})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","echo":true})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","logprobs":3})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","model":7})"), 400);
  EXPECT_EQ(status_of(R"({"prompt":"x","seed":"s"})"), 400);
}

// --- A live server in this process -----------------------------------------------------

class Server : public ::testing::Test {
 protected:
  void SetUp() override { start(); }
  void TearDown() override { stop(); }

  void start(int32_t max_streams = 64, int32_t queue_capacity = 8) {
    m3_model_params* mp = nullptr;
    ASSERT_EQ(m3_model_params_create(&mp), M3_OK);
    ASSERT_EQ(m3_model_params_set_backend(mp, M3_BACKEND_CPU), M3_OK);
    ASSERT_EQ(m3_model_load(kModel.c_str(), mp, &model_), M3_OK) << m3_last_error();
    m3_model_params_destroy(mp);
    m3_engine_params* ep = nullptr;
    ASSERT_EQ(m3_engine_params_create(&ep), M3_OK);
    ASSERT_EQ(m3_engine_params_set_max_streams(ep, max_streams), M3_OK);
    ASSERT_EQ(m3_engine_params_set_queue_capacity(ep, queue_capacity), M3_OK);
    ASSERT_EQ(m3_engine_create(model_, ep, &engine_), M3_OK) << m3_last_error();
    m3_engine_params_destroy(ep);
    server::ServerOptions options;
    options.port = 0;
    options.model_name = "test-model";
    options.max_body_bytes = 64 * 1024;
    options.idle_ping_ms = 1000;
    server_ = std::make_unique<server::CompletionServer>(model_, engine_, options);
    port_ = server_->bind();
    listener_ = std::thread([this] { server_->listen(); });
    server_->wait_until_listening();
  }
  void stop() {
    if (server_) server_->stop();
    if (listener_.joinable()) listener_.join();
    server_.reset();
    m3_engine_free(engine_);
    engine_ = nullptr;
    m3_model_free(model_);
    model_ = nullptr;
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(180, 0);  // a liveness bound: CI runs this on two busy cores
    return c;
  }
  httplib::Result post(const json& body) { return client().Post("/v1/completions", body.dump(), "application/json"); }

  int64_t engine_stat(m3_engine_stat_key key) {
    int64_t v = -1;
    EXPECT_EQ(m3_engine_stat(engine_, key, &v), M3_OK);
    return v;
  }

  // What m3_generation gives for a text prompt with greedy or seeded sampling.
  std::string alone(const std::string& prompt, int max_tokens, float temperature, uint64_t seed) {
    m3_session* s = nullptr;
    EXPECT_EQ(m3_session_create(model_, &s), M3_OK);
    m3_gen_params* p = nullptr;
    EXPECT_EQ(m3_gen_params_create(&p), M3_OK);
    if (temperature <= 0) {
      EXPECT_EQ(m3_gen_params_set_greedy(p), M3_OK);
    } else {
      EXPECT_EQ(m3_gen_params_set_temperature(p, temperature), M3_OK);
    }
    EXPECT_EQ(m3_gen_params_set_seed(p, seed), M3_OK);
    EXPECT_EQ(m3_gen_params_set_max_tokens(p, max_tokens), M3_OK);
    m3_generation* g = nullptr;
    EXPECT_EQ(m3_generation_create(s, p, &g), M3_OK);
    EXPECT_EQ(m3_generation_push_text(g, prompt.data(), prompt.size()), M3_OK);
    std::string text;
    for (m3_finish_reason f = M3_FINISH_NONE; f == M3_FINISH_NONE;) {
      int32_t token = -1;
      size_t len = 0;
      char piece[512];
      EXPECT_EQ(m3_generation_next(g, &token, piece, sizeof piece, &len, &f), M3_OK);
      text.append(piece, len);
    }
    m3_generation_free(g);
    m3_gen_params_destroy(p);
    m3_session_free(s);
    return text;
  }

  // The "text" of each SSE chunk, concatenated; sets *done when "[DONE]" came last.
  static std::string sse_text(const std::string& body, bool* done, std::string* last_finish) {
    std::string text;
    *done = false;
    size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      const size_t end = body.find("\n\n", pos);
      const std::string data = body.substr(pos + 6, end - pos - 6);
      pos = end;
      if (data == "[DONE]") {
        *done = true;
        continue;
      }
      const json chunk = json::parse(data);
      text += chunk["choices"][0]["text"].get<std::string>();
      if (!chunk["choices"][0]["finish_reason"].is_null()) *last_finish = chunk["choices"][0]["finish_reason"];
    }
    return text;
  }

  m3_model* model_ = nullptr;
  m3_engine* engine_ = nullptr;
  std::unique_ptr<server::CompletionServer> server_;
  std::thread listener_;
  int port_ = 0;
};

TEST_F(Server, HealthModelsAndMetrics) {
  auto health = client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto models = client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "test-model");
  ASSERT_TRUE(post({{"prompt", "The"}, {"max_tokens", 3}}));
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  for (const char* name : {"# TYPE mamba3rt_streams_live gauge", "mamba3rt_generated_tokens_total ",
                           "mamba3rt_http_requests_total{path=\"/v1/completions\",code=\"200\"} 1",
                           "mamba3rt_time_to_first_token_milliseconds_count 1"})
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << " missing from\n" << metrics->body;
}

TEST_F(Server, CompletionEqualsTheSameRequestThroughTheLibrary) {
  const std::string prompt = "The jury said";
  auto res = post({{"prompt", prompt}, {"max_tokens", 24}, {"temperature", 0.8}, {"seed", 5}, {"model", "test-model"}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["model"], "test-model");
  EXPECT_EQ(body["choices"][0]["text"], alone(prompt, 24, 0.8f, 5));
  EXPECT_EQ(body["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(body["usage"]["completion_tokens"], 24);
  EXPECT_GT(body["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST_F(Server, StreamingSendsTheSameTextAsEventsThenDone) {
  const std::string prompt = "It was a";
  auto res = post({{"prompt", prompt}, {"max_tokens", 30}, {"stream", true}, {"temperature", 0}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
  bool done = false;
  std::string finish;
  EXPECT_EQ(sse_text(res->body, &done, &finish), alone(prompt, 30, 0, 0));
  EXPECT_TRUE(done) << "no [DONE] at the end";
  EXPECT_EQ(finish, "length");
}

TEST_F(Server, ManyConcurrentStreamingClientsEachGetTheirOwnAnswer) {
  constexpr int kClients = 16;
  std::vector<std::string> got(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      const auto t0 = std::chrono::steady_clock::now();
      auto res = post({{"prompt", "Number " + std::to_string(i)}, {"max_tokens", 10 + i}, {"stream", true},
                       {"temperature", 1.0}, {"seed", i}});
      if (!res || res->status != 200) {
        got[i] = !res ? "(no response: " + httplib::to_string(res.error()) + " after " + std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + " s)" : "(" + res->body + ")";
        return;
      }
      bool done = false;
      std::string finish;
      got[i] = sse_text(res->body, &done, &finish);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i)
    EXPECT_EQ(got[i], alone("Number " + std::to_string(i), 10 + i, 1.0f, i)) << "client " << i;
}

TEST_F(Server, MalformedRequestsGet4xxAndTheServerKeepsRunning) {
  auto c = client();
  struct Case {
    std::string body;
    int status;
  };
  const Case cases[] = {
      {"{not json", 400},
      {R"({"prompt": 12})", 400},
      {R"({"prompt": "x", "max_tokens": -5})", 400},
      {R"({"prompt": "x", "max_tokens": 1000000000})", 400},
      {R"({"prompt": "x", "model": "unknown-model"})", 404},
      {R"({"prompt": [999999]})", 400},  // a token id beyond the vocabulary
      {R"({"prompt": "x", "n": 3})", 400},
      {std::string(R"({"prompt": ")") + std::string(70 * 1024, 'a') + "\"}", 413},
  };
  for (const Case& k : cases) {
    auto res = c.Post("/v1/completions", k.body, "application/json");
    ASSERT_TRUE(res) << k.body.substr(0, 60);
    EXPECT_EQ(res->status, k.status) << k.body.substr(0, 60) << " -> " << res->body;
    const json err = json::parse(res->body, nullptr, false);
    ASSERT_FALSE(err.is_discarded()) << res->body;
    EXPECT_TRUE(err["error"]["message"].is_string()) << res->body;
    EXPECT_FALSE(err["error"]["message"].get<std::string>().empty());
  }
  auto missing = c.Get("/v1/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(engine_stat(M3_ENGINE_LIVE_STREAMS), 0) << "a refused request left a stream behind";
}

TEST_F(Server, AClientThatDisconnectsMidStreamFreesItsStream) {
  std::atomic<int> chunks{0};
  auto c = client();
  const json body = {{"prompt", "Once"}, {"max_tokens", 4096}, {"stream", true}, {"ignore_eos", true}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 3; };  // leave after 3
  auto res = c.send(req);
  EXPECT_GE(chunks.load(), 3);
  const auto deadline = std::chrono::steady_clock::now() + 120s;  // a liveness bound (loaded CI)
  while (engine_stat(M3_ENGINE_LIVE_STREAMS) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  EXPECT_EQ(engine_stat(M3_ENGINE_LIVE_STREAMS), 0) << "the stream outlived its client";
  EXPECT_LT(engine_stat(M3_ENGINE_GENERATED_TOKENS), 4096) << "the stream ran to its end";
  auto metrics = client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("mamba3rt_http_client_disconnects_total 1"), std::string::npos) << metrics->body;
}

TEST_F(Server, BeyondMaxStreamsRequestsGet503) {
  stop();
  start(/*max_streams=*/1, /*queue_capacity=*/2);
  // One client holds the only stream by not reading (its queue fills, the stream pauses).
  std::mutex m;
  std::condition_variable cv;
  bool release = false, holding = false;
  std::thread holder([&] {
    auto c = client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = json({{"prompt", "Hold"}, {"max_tokens", 200}, {"stream", true}}).dump();
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      std::unique_lock<std::mutex> lock(m);
      holding = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      return false;
    };
    c.send(req);
  });
  {
    std::unique_lock<std::mutex> lock(m);
    ASSERT_TRUE(cv.wait_for(lock, 120s, [&] { return holding; }));
  }
  auto res = post({{"prompt", "x"}, {"max_tokens", 2}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_NE(res->body.find("max_streams"), std::string::npos) << res->body;
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  holder.join();
}

// --- `mamba3rt serve` as its own process ----------------------------------------------------

TEST(ServeCommand, ListensAnswersRefusesOverlongBodiesAndStopsOnSigterm) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const char* argv[] = {MAMBA3RT_CLI, "serve", "--model", kModel.c_str(), "--port", "0", "--max-body-bytes", "512",
                        nullptr};
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, MAMBA3RT_CLI, &actions, nullptr, const_cast<char**>(argv), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[512] = {};
  ASSERT_NE(fgets(line, sizeof line, f), nullptr) << "the server printed nothing";
  int port = 0;
  const char* colon = strrchr(line, ':');
  ASSERT_NE(colon, nullptr) << line;
  port = atoi(colon + 1);
  ASSERT_GT(port, 0) << line;
  EXPECT_NE(std::string(line).find("listening on http://127.0.0.1:"), std::string::npos) << line;

  httplib::Client c("127.0.0.1", port);
  auto res = c.Post("/v1/completions", R"({"prompt":"The","max_tokens":4})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  // --max-body-bytes 512: a 600-byte body is refused before it is parsed.
  const std::string long_body = R"({"max_tokens":4,"prompt":")" + std::string(600, 'a') + "\"}";
  res = c.Post("/v1/completions", long_body, "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413) << res->body;
  EXPECT_NE(res->body.find("larger than 512 bytes"), std::string::npos) << res->body;
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  fclose(f);
}

}  // namespace
