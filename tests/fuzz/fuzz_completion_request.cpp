// Fuzzes the server's request parsing (examples/server/completion_request): any body either
// becomes a request within the limits, or is refused with a RequestError (HTTP 400).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "completion_request.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const server::RequestLimits limits;
  server::CompletionRequest r;
  try {
    r = server::parse_completion_request(body, limits);
  } catch (const server::RequestError& e) {
    FUZZ_CHECK(e.http_status == 400);
    FUZZ_CHECK(*e.what() != '\0');
    FUZZ_CHECK(e.code == "invalid_request_error");
    return 0;
  }
  if (r.prompt_is_tokens) {
    FUZZ_CHECK(!r.prompt_tokens.empty() && r.prompt_text.empty());
    for (const int32_t t : r.prompt_tokens) FUZZ_CHECK(t >= 0);
  } else {
    FUZZ_CHECK(!r.prompt_text.empty() && r.prompt_tokens.empty());
  }
  FUZZ_CHECK(r.max_tokens >= 0 && r.max_tokens <= limits.max_tokens);
  FUZZ_CHECK(r.temperature >= 0.0f && r.temperature <= 2.0f);
  FUZZ_CHECK(r.top_p > 0.0f && r.top_p <= 1.0f);
  FUZZ_CHECK(r.top_k >= 0);
  FUZZ_CHECK(r.min_p >= 0.0f && r.min_p <= 1.0f);
  FUZZ_CHECK(r.presence_penalty >= -2.0f && r.presence_penalty <= 2.0f);
  FUZZ_CHECK(r.frequency_penalty >= -2.0f && r.frequency_penalty <= 2.0f);
  FUZZ_CHECK(r.repetition_penalty >= 0.01f && r.repetition_penalty <= 100.0f);
  FUZZ_CHECK(r.stop.size() <= limits.max_stop);
  for (const auto& s : r.stop) FUZZ_CHECK(!s.empty());
  FUZZ_CHECK(r.logit_bias.size() <= limits.max_logit_bias);
  for (const auto& [token, bias] : r.logit_bias) FUZZ_CHECK(token >= 0 && bias >= -100.0f && bias <= 100.0f);
  return 0;
}
