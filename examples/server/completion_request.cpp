#include "completion_request.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace server {
namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message, const std::string& param) { throw RequestError(400, message, param); }

float number_in(const json& v, const char* name, double lo, double hi) {
  if (!v.is_number()) bad(std::string(name) + " must be a number", name);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(std::string(name) + " must be between " + json(lo).dump() + " and " + json(hi).dump(), name);
  return static_cast<float>(x);
}

int64_t integer_in(const json& v, const char* name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) bad(std::string(name) + " must be an integer", name);
  bool in_range;
  int64_t x = 0;
  if (v.is_number_unsigned()) {  // non-negative JSON integers, up to 2^64 - 1
    const uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(hi);
    x = in_range ? static_cast<int64_t>(u) : hi;
  } else {
    x = v.get<int64_t>();
    in_range = x <= hi;
  }
  if (!in_range || x < lo)
    bad(std::string(name) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi), name);
  return x;
}

void parse_prompt(const json& v, CompletionRequest& r) {
  if (v.is_string()) {
    r.prompt_text = v.get<std::string>();
    if (r.prompt_text.empty()) bad("prompt is empty", "prompt");
    return;
  }
  if (v.is_array()) {
    if (v.empty()) bad("prompt is empty", "prompt");
    if (v.size() == 1 && v[0].is_string()) return parse_prompt(v[0], r);  // ["text"]: one prompt
    if (v[0].is_string()) bad("only one prompt per request is supported", "prompt");
    r.prompt_is_tokens = true;
    r.prompt_tokens.reserve(v.size());
    for (const json& t : v)
      r.prompt_tokens.push_back(static_cast<int32_t>(integer_in(t, "prompt", 0, std::numeric_limits<int32_t>::max())));
    return;
  }
  bad("prompt must be a string or an array of token ids", "prompt");
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body, const RequestLimits& limits) {
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad("the request body is not valid JSON", "");
  if (!j.is_object()) bad("the request body must be a JSON object", "");

  CompletionRequest r;
  for (const auto& [key, v] : j.items()) {
    if (key == "model") {
      if (!v.is_string()) bad("model must be a string", "model");
      r.model = v.get<std::string>();
    } else if (key == "prompt") {
      parse_prompt(v, r);
    } else if (key == "max_tokens") {
      if (!v.is_null()) r.max_tokens = static_cast<int32_t>(integer_in(v, "max_tokens", 0, limits.max_tokens));
    } else if (key == "stream") {
      if (!v.is_boolean() && !v.is_null()) bad("stream must be a boolean", "stream");
      r.stream = v.is_boolean() && v.get<bool>();
    } else if (key == "temperature") {
      if (!v.is_null()) r.temperature = number_in(v, "temperature", 0, 2);
    } else if (key == "top_p") {
      if (!v.is_null()) r.top_p = number_in(v, "top_p", 0, 1);
      if (!v.is_null() && r.top_p <= 0) bad("top_p must be greater than 0", "top_p");
    } else if (key == "top_k") {
      if (!v.is_null()) r.top_k = static_cast<int32_t>(integer_in(v, "top_k", 0, 1 << 30));
    } else if (key == "min_p") {
      if (!v.is_null()) r.min_p = number_in(v, "min_p", 0, 1);
    } else if (key == "presence_penalty") {
      if (!v.is_null()) r.presence_penalty = number_in(v, "presence_penalty", -2, 2);
    } else if (key == "frequency_penalty") {
      if (!v.is_null()) r.frequency_penalty = number_in(v, "frequency_penalty", -2, 2);
    } else if (key == "repetition_penalty") {
      if (!v.is_null()) r.repetition_penalty = number_in(v, "repetition_penalty", 0.01, 100);
    } else if (key == "seed") {
      if (!v.is_null()) {
        if (!v.is_number_integer()) bad("seed must be an integer", "seed");
        r.seed = v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(v.get<int64_t>());
      }
    } else if (key == "stop") {
      if (v.is_string()) {
        r.stop.push_back(v.get<std::string>());
      } else if (v.is_array()) {
        if (v.size() > limits.max_stop)
          bad("at most " + std::to_string(limits.max_stop) + " stop sequences are allowed", "stop");
        for (const json& s : v) {
          if (!s.is_string()) bad("stop must be a string or an array of strings", "stop");
          r.stop.push_back(s.get<std::string>());
        }
      } else if (!v.is_null()) {
        bad("stop must be a string or an array of strings", "stop");
      }
      for (const std::string& s : r.stop)
        if (s.empty()) bad("stop sequences must not be empty", "stop");
    } else if (key == "logit_bias") {
      if (v.is_null()) continue;
      if (!v.is_object()) bad("logit_bias must be an object of token id to bias", "logit_bias");
      if (v.size() > limits.max_logit_bias)
        bad("at most " + std::to_string(limits.max_logit_bias) + " logit_bias entries are allowed", "logit_bias");
      for (const auto& [id, bias] : v.items()) {
        std::size_t used = 0;
        long long token = -1;
        try {
          token = std::stoll(id, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (used != id.size() || token < 0 || token > std::numeric_limits<int32_t>::max())
          bad("logit_bias keys must be token ids", "logit_bias");
        r.logit_bias.emplace_back(static_cast<int32_t>(token), number_in(bias, "logit_bias", -100, 100));
      }
    } else if (key == "ignore_eos") {
      if (!v.is_boolean()) bad("ignore_eos must be a boolean", "ignore_eos");
      r.ignore_eos = v.get<bool>();
    } else if (key == "n" || key == "best_of") {
      if (!v.is_null() && integer_in(v, key.c_str(), 1, 1 << 20) != 1) bad(key + " > 1 is not supported", key);
    } else if (key == "echo") {
      if (!v.is_null() && (!v.is_boolean() || v.get<bool>())) bad("echo is not supported", "echo");
    } else if (key == "logprobs") {
      if (!v.is_null()) bad("logprobs is not supported", "logprobs");
    } else if (key == "suffix") {
      if (!v.is_null()) bad("suffix is not supported", "suffix");
    }
    // Anything else (user, stream_options, ...) is accepted and ignored, as OpenAI clients
    // send fields a server may not know.
  }
  if (!r.prompt_is_tokens && r.prompt_text.empty()) bad("prompt is required", "prompt");
  return r;
}

}  // namespace server
