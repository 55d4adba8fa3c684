// The extern "C" layer for tokenizers and generation: handle and argument checks only;
// the work is done by m3::Tokenizer and m3::Generation.
#include <cmath>
#include <string>

#include "api/api_guard.h"
#include "api/handles.h"
#include "common/error.h"
#include "mamba3rt.h"

namespace {

using m3::fail;
using m3::api::copy_out;
using m3::api::guarded;
using m3::api::require;

const m3::Tokenizer& tokenizer_of(const m3_tokenizer* t) {
  require(t, "tokenizer");
  return *t->tokenizer;
}

m3::GenerationParams& params_of(m3_gen_params* p) {
  require(p, "params");
  return p->params;
}

void require_finite(float v, const char* what) {
  if (!std::isfinite(v)) fail(M3_ERR_INVALID_ARGUMENT, std::string(what) + " must be finite");
}

}  // namespace

extern "C" {

m3_status m3_tokenizer_load(const char* path, m3_tokenizer** out_tokenizer) {
  return guarded([&] {
    require(out_tokenizer, "out_tokenizer");
    *out_tokenizer = nullptr;
    require(path, "path");
    auto t = std::make_unique<m3_tokenizer>();
    t->owned = m3::Tokenizer::from_file(path);
    t->tokenizer = t->owned.get();
    *out_tokenizer = t.release();
    m3::api::handle_created();
  });
}

void m3_tokenizer_free(m3_tokenizer* tokenizer) {
  if (tokenizer && tokenizer->owned) {  // borrowed views belong to their model
    m3::api::handle_freed();
    delete tokenizer;
  }
}

m3_status m3_model_tokenizer(const m3_model* model, const m3_tokenizer** out_tokenizer) {
  return guarded([&] {
    require(out_tokenizer, "out_tokenizer");
    *out_tokenizer = nullptr;
    require(model, "model");
    if (!model->tokenizer.tokenizer) fail(M3_ERR_UNSUPPORTED, "the model directory has no tokenizer.json");
    *out_tokenizer = &model->tokenizer;
  });
}

m3_status m3_tokenize(const m3_tokenizer* tokenizer, const char* text, size_t len, int add_special, int32_t* out_tokens,
                      size_t capacity, size_t* out_count) {
  return guarded([&] {
    const m3::Tokenizer& tok = tokenizer_of(tokenizer);
    require(out_count, "out_count");
    if (len > 0) require(text, "text");
    const auto ids = tok.encode(std::string_view(text ? text : "", len), add_special != 0);
    *out_count = ids.size();
    if (ids.size() > capacity || (!out_tokens && !ids.empty()))
      fail(M3_ERR_BUFFER_TOO_SMALL, "token buffer needs " + std::to_string(ids.size()) + " entries");
    std::copy(ids.begin(), ids.end(), out_tokens);
  });
}

m3_status m3_detokenize(const m3_tokenizer* tokenizer, const int32_t* tokens, size_t n_tokens, int skip_special,
                        char* out_text, size_t capacity, size_t* out_len) {
  return guarded([&] {
    const m3::Tokenizer& tok = tokenizer_of(tokenizer);
    require(out_len, "out_len");
    if (n_tokens > 0) require(tokens, "tokens");
    copy_out(tok.decode(std::span<const int32_t>(tokens, n_tokens), skip_special != 0), out_text, capacity, out_len,
             "text");
  });
}

m3_status m3_token_bytes(const m3_tokenizer* tokenizer, int32_t token, char* out_bytes, size_t capacity,
                         size_t* out_len) {
  return guarded([&] {
    const m3::Tokenizer& tok = tokenizer_of(tokenizer);
    require(out_len, "out_len");
    if (token < 0 || token >= tok.vocab_size())
      fail(M3_ERR_INVALID_ARGUMENT, "token id " + std::to_string(token) + " is out of range [0, " +
                                        std::to_string(tok.vocab_size()) + ")");
    copy_out(tok.token_bytes(token), out_bytes, capacity, out_len, "token");
  });
}

m3_status m3_tokenizer_vocab_size(const m3_tokenizer* tokenizer, int32_t* out_size) {
  return guarded([&] {
    const m3::Tokenizer& tok = tokenizer_of(tokenizer);
    require(out_size, "out_size");
    *out_size = tok.vocab_size();
  });
}

m3_status m3_gen_params_create(m3_gen_params** out_params) {
  return guarded([&] {
    require(out_params, "out_params");
    *out_params = nullptr;
    *out_params = new m3_gen_params();
    m3::api::handle_created();
  });
}

void m3_gen_params_destroy(m3_gen_params* params) {
  if (params) m3::api::handle_freed();
  delete params;
}

m3_status m3_gen_params_set_temperature(m3_gen_params* params, float temperature) {
  return guarded([&] {
    require_finite(temperature, "temperature");
    params_of(params).sampling.temperature = temperature;
  });
}

m3_status m3_gen_params_set_greedy(m3_gen_params* params) {
  return guarded([&] { params_of(params).sampling.temperature = 0.0f; });
}

m3_status m3_gen_params_set_top_k(m3_gen_params* params, int32_t top_k) {
  return guarded([&] {
    if (top_k < 0) fail(M3_ERR_INVALID_ARGUMENT, "top_k must be >= 0");
    params_of(params).sampling.top_k = top_k;
  });
}

m3_status m3_gen_params_set_top_p(m3_gen_params* params, float top_p) {
  return guarded([&] {
    if (!(top_p > 0.0f && top_p <= 1.0f)) fail(M3_ERR_INVALID_ARGUMENT, "top_p must be in (0, 1]");
    params_of(params).sampling.top_p = top_p;
  });
}

m3_status m3_gen_params_set_min_p(m3_gen_params* params, float min_p) {
  return guarded([&] {
    if (!(min_p >= 0.0f && min_p <= 1.0f)) fail(M3_ERR_INVALID_ARGUMENT, "min_p must be in [0, 1]");
    params_of(params).sampling.min_p = min_p;
  });
}

m3_status m3_gen_params_set_repeat_penalty(m3_gen_params* params, float penalty, int32_t last_n) {
  return guarded([&] {
    if (!(penalty > 0.0f) || !std::isfinite(penalty)) fail(M3_ERR_INVALID_ARGUMENT, "repeat penalty must be > 0");
    if (last_n < -1) fail(M3_ERR_INVALID_ARGUMENT, "repeat window must be >= -1");
    params_of(params).sampling.repeat_penalty = penalty;
    params_of(params).sampling.repeat_last_n = last_n;
  });
}

m3_status m3_gen_params_set_presence_penalty(m3_gen_params* params, float penalty) {
  return guarded([&] {
    require_finite(penalty, "presence penalty");
    params_of(params).sampling.presence_penalty = penalty;
  });
}

m3_status m3_gen_params_set_frequency_penalty(m3_gen_params* params, float penalty) {
  return guarded([&] {
    require_finite(penalty, "frequency penalty");
    params_of(params).sampling.frequency_penalty = penalty;
  });
}

m3_status m3_gen_params_set_seed(m3_gen_params* params, uint64_t seed) {
  return guarded([&] { params_of(params).sampling.seed = seed; });
}

m3_status m3_gen_params_add_logit_bias(m3_gen_params* params, int32_t token, float bias) {
  return guarded([&] {
    if (std::isnan(bias)) fail(M3_ERR_INVALID_ARGUMENT, "logit bias is NaN");
    if (token < 0) fail(M3_ERR_INVALID_ARGUMENT, "logit bias token " + std::to_string(token) + " is negative");
    params_of(params).sampling.logit_bias.emplace_back(token, bias);
  });
}

m3_status m3_gen_params_set_max_tokens(m3_gen_params* params, int32_t max_tokens) {
  return guarded([&] {
    if (max_tokens < 0) fail(M3_ERR_INVALID_ARGUMENT, "max_tokens must be >= 0");
    params_of(params).max_tokens = max_tokens;
  });
}

m3_status m3_gen_params_add_stop_token(m3_gen_params* params, int32_t token) {
  return guarded([&] {
    if (token < 0) fail(M3_ERR_INVALID_ARGUMENT, "stop token " + std::to_string(token) + " is negative");
    params_of(params).stop_tokens.push_back(token);
  });
}

m3_status m3_gen_params_add_stop_string(m3_gen_params* params, const char* text) {
  return guarded([&] {
    require(text, "text");
    if (!*text) fail(M3_ERR_INVALID_ARGUMENT, "stop string is empty");
    params_of(params).stop_strings.emplace_back(text);
  });
}

m3_status m3_gen_params_set_ignore_eos(m3_gen_params* params, int ignore) {
  return guarded([&] { params_of(params).ignore_eos = ignore != 0; });
}

m3_status m3_gen_params_set_add_special(m3_gen_params* params, int add) {
  return guarded([&] { params_of(params).add_special = add != 0; });
}

m3_status m3_generation_create(m3_session* session, const m3_gen_params* params, m3_generation** out_generation) {
  return guarded([&] {
    require(out_generation, "out_generation");
    *out_generation = nullptr;
    require(session, "session");
    const m3::GenerationParams defaults;
    *out_generation = new m3_generation{m3::Generation(*session->session, params ? params->params : defaults), {}};
    m3::api::handle_created();
  });
}

void m3_generation_free(m3_generation* generation) {
  if (generation) m3::api::handle_freed();
  delete generation;
}

m3_status m3_generation_push_text(m3_generation* generation, const char* text, size_t len) {
  return guarded([&] {
    require(generation, "generation");
    if (len > 0) require(text, "text");
    generation->generation.push_text(std::string_view(text ? text : "", len));
  });
}

m3_status m3_generation_push_tokens(m3_generation* generation, const int32_t* tokens, size_t n_tokens) {
  return guarded([&] {
    require(generation, "generation");
    generation->generation.push_tokens(tokens, n_tokens);
  });
}

m3_status m3_generation_next(m3_generation* generation, int32_t* out_token, char* piece, size_t capacity,
                             size_t* out_len, m3_finish_reason* out_finish) {
  return guarded([&] {
    require(generation, "generation");
    require(out_token, "out_token");
    require(out_len, "out_len");
    if (!generation->undelivered) generation->undelivered = generation->generation.next();
    const m3::GenerationStep& step = *generation->undelivered;
    *out_token = step.token;
    if (out_finish) *out_finish = step.finish;
    copy_out(step.piece, piece, capacity, out_len, "piece");  // on a short buffer, keep it for the next call
    generation->undelivered.reset();
  });
}

m3_status m3_generation_run(m3_generation* generation, m3_piece_callback callback, void* user_data,
                            m3_finish_reason* out_finish) {
  return guarded([&] {
    require(generation, "generation");
    if (!callback) fail(M3_ERR_INVALID_ARGUMENT, "callback is NULL");
    m3_finish_reason finish = M3_FINISH_NONE;
    while (finish == M3_FINISH_NONE) {
      m3::GenerationStep step = generation->undelivered ? std::move(*generation->undelivered)
                                                        : generation->generation.next();
      generation->undelivered.reset();
      finish = step.finish;
      if ((step.token >= 0 || !step.piece.empty()) &&
          callback(user_data, step.token, step.piece.data(), step.piece.size()) != 0 && finish == M3_FINISH_NONE) {
        generation->generation.cancel();
        finish = generation->generation.next().finish;  // ends the turn as cancelled
      }
    }
    if (out_finish) *out_finish = finish;
  });
}

m3_status m3_generation_cancel(m3_generation* generation) {
  return guarded([&] {
    require(generation, "generation");
    generation->generation.cancel();
  });
}

m3_status m3_generation_stat(const m3_generation* generation, m3_gen_stat stat, double* out_value) {
  return guarded([&] {
    require(generation, "generation");
    require(out_value, "out_value");
    *out_value = generation->generation.stat(stat);
  });
}

}  // extern "C"
