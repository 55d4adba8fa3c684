// The body of an OpenAI-style POST /v1/completions, parsed and checked before anything runs.
// Pure (no model, no I/O), so it can be tested and fuzzed on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace server {

// A request the server refuses, with the HTTP status and the OpenAI error fields.
struct RequestError : std::runtime_error {
  RequestError(int http_status, const std::string& message, std::string param = {},
               std::string code = "invalid_request_error")
      : std::runtime_error(message), http_status(http_status), param(std::move(param)), code(std::move(code)) {}
  int http_status;
  std::string param;
  std::string code;
};

struct RequestLimits {
  int32_t max_tokens = 4096;       // largest max_tokens a request may ask for
  std::size_t max_stop = 4;        // stop strings per request (OpenAI allows 4)
  std::size_t max_logit_bias = 300;
};

struct CompletionRequest {
  std::string model;  // empty: not given
  bool prompt_is_tokens = false;
  std::string prompt_text;
  std::vector<int32_t> prompt_tokens;
  int32_t max_tokens = 16;  // OpenAI's default
  bool stream = false;
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int32_t top_k = 0;           // extension (0: off)
  float min_p = 0.0f;          // extension
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;  // extension
  std::optional<uint64_t> seed;     // absent: a fresh random seed
  std::vector<std::string> stop;
  std::vector<std::pair<int32_t, float>> logit_bias;
  bool ignore_eos = false;  // extension
};

// Throws RequestError (400) for malformed JSON, wrong types, out-of-range values and
// unsupported options (n > 1, echo, logprobs, best_of > 1, suffix).
CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits);

}  // namespace server
