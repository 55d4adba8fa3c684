// The extern "C" layer for the streaming engine: handle and argument checks only; the work
// is done by m3::streaming::Engine and Stream.
#include <chrono>
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

m3::streaming::EngineOptions& options_of(m3_engine_params* p) {
  require(p, "params");
  return p->options;
}

// Sets one option, keeping the old value when the new one is out of range.
void set_option(m3_engine_params* params, int32_t m3::streaming::EngineOptions::*field, int32_t value) {
  m3::streaming::EngineOptions changed = options_of(params);
  changed.*field = value;
  m3::streaming::validate(changed);
  options_of(params) = changed;
}

m3::streaming::Stream& stream_of(const m3_stream* s) {
  require(s, "stream");
  return *s->stream;
}

}  // namespace

extern "C" {

m3_status m3_engine_params_create(m3_engine_params** out_params) {
  return guarded([&] {
    require(out_params, "out_params");
    *out_params = new m3_engine_params{};
    m3::api::handle_created();
  });
}

void m3_engine_params_destroy(m3_engine_params* params) {
  if (params) m3::api::handle_freed();
  delete params;
}

m3_status m3_engine_params_set_max_batch(m3_engine_params* params, int32_t max_batch) {
  return guarded([&] { set_option(params, &m3::streaming::EngineOptions::max_batch, max_batch); });
}

m3_status m3_engine_params_set_max_streams(m3_engine_params* params, int32_t max_streams) {
  return guarded([&] { set_option(params, &m3::streaming::EngineOptions::max_streams, max_streams); });
}

m3_status m3_engine_params_set_prefill_chunk(m3_engine_params* params, int32_t tokens) {
  return guarded([&] { set_option(params, &m3::streaming::EngineOptions::prefill_chunk, tokens); });
}

m3_status m3_engine_params_set_prefill_budget(m3_engine_params* params, int32_t tokens) {
  return guarded([&] { set_option(params, &m3::streaming::EngineOptions::prefill_budget, tokens); });
}

m3_status m3_engine_params_set_queue_capacity(m3_engine_params* params, int32_t events) {
  return guarded([&] { set_option(params, &m3::streaming::EngineOptions::queue_capacity, events); });
}

m3_status m3_engine_create(m3_model* model, const m3_engine_params* params, m3_engine** out_engine) {
  return guarded([&] {
    require(out_engine, "out_engine");
    *out_engine = nullptr;
    require(model, "model");
    const m3::streaming::EngineOptions defaults;
    auto engine = std::make_unique<m3_engine>();
    engine->engine = std::make_unique<m3::streaming::Engine>(model->model, params ? params->options : defaults);
    *out_engine = engine.release();
    m3::api::handle_created();
  });
}

void m3_engine_free(m3_engine* engine) {
  if (engine) m3::api::handle_freed();
  delete engine;
}

m3_status m3_engine_submit(m3_engine* engine, const m3_gen_params* params, const m3_session* prefix,
                           m3_stream_callback callback, void* user_data, m3_stream** out_stream) {
  return guarded([&] {
    require(out_stream, "out_stream");
    *out_stream = nullptr;
    require(engine, "engine");
    const m3::GenerationParams defaults;
    m3::streaming::EventCallback on_event;
    if (callback) {
      on_event = [callback, user_data](const m3::streaming::StreamEvent& e) {
        return callback(user_data, e.token, e.piece.data(), e.piece.size(), e.finish) == 0;
      };
    }
    auto handle = std::make_unique<m3_stream>();
    handle->stream = engine->engine->submit(params ? params->params : defaults,
                                            prefix ? prefix->session.get() : nullptr, std::move(on_event));
    *out_stream = handle.release();
    m3::api::handle_created();
  });
}

void m3_stream_free(m3_stream* stream) {
  if (!stream) return;
  stream->stream->close();
  m3::api::handle_freed();
  delete stream;
}

m3_status m3_stream_push_text(m3_stream* stream, const char* text, size_t len) {
  return guarded([&] {
    m3::streaming::Stream& s = stream_of(stream);
    if (len > 0) require(text, "text");
    s.push_text(std::string_view(text ? text : "", len));
  });
}

m3_status m3_stream_push_tokens(m3_stream* stream, const int32_t* tokens, size_t n_tokens) {
  return guarded([&] { stream_of(stream).push_tokens(tokens, n_tokens); });
}

m3_status m3_stream_next(m3_stream* stream, int32_t timeout_ms, int32_t* out_token, char* piece, size_t capacity,
                         size_t* out_len, m3_finish_reason* out_finish) {
  return guarded([&] {
    m3::streaming::Stream& s = stream_of(stream);
    require(out_token, "out_token");
    require(out_len, "out_len");
    std::lock_guard<std::mutex> lock(stream->next_mutex);
    if (!stream->undelivered) {
      m3::streaming::StreamEvent event;
      if (!s.next(std::chrono::milliseconds(timeout_ms), &event))
        fail(M3_ERR_TIMEOUT, "no output within " + std::to_string(timeout_ms) + " ms");
      stream->undelivered = std::move(event);
    }
    const m3::streaming::StreamEvent& e = *stream->undelivered;
    *out_token = e.token;
    if (out_finish) *out_finish = e.finish;
    if (e.status != M3_OK) {
      const m3::Error error(e.status, e.error);
      stream->undelivered.reset();
      throw error;
    }
    copy_out(e.piece, piece, capacity, out_len, "piece");  // on a short buffer, keep it for the next call
    stream->undelivered.reset();
  });
}

m3_status m3_stream_cancel(m3_stream* stream) {
  return guarded([&] { stream_of(stream).cancel(); });
}

m3_status m3_stream_stat(const m3_stream* stream, m3_gen_stat stat, double* out_value) {
  return guarded([&] {
    const m3::streaming::Stream& s = stream_of(stream);
    require(out_value, "out_value");
    *out_value = s.stat(stat);
  });
}

m3_status m3_engine_stat(const m3_engine* engine, m3_engine_stat_key stat, int64_t* out_value) {
  return guarded([&] {
    require(engine, "engine");
    require(out_value, "out_value");
    const m3::streaming::EngineStats& st = engine->engine->stats();
    switch (stat) {
      case M3_ENGINE_LIVE_STREAMS: *out_value = st.live_streams->load(); return;
      case M3_ENGINE_RUNNING_STREAMS: *out_value = st.running.load(); return;
      case M3_ENGINE_WAITING_STREAMS: *out_value = st.waiting.load(); return;
      case M3_ENGINE_PAUSED_STREAMS: *out_value = st.paused.load(); return;
      case M3_ENGINE_STEPS: *out_value = st.steps.load(); return;
      case M3_ENGINE_GENERATED_TOKENS: *out_value = st.generated_tokens.load(); return;
      case M3_ENGINE_PROMPT_TOKENS: *out_value = st.prompt_tokens.load(); return;
      case M3_ENGINE_LAST_BATCH: *out_value = st.last_batch.load(); return;
    }
    fail(M3_ERR_INVALID_ARGUMENT, "unknown engine statistic " + std::to_string(static_cast<int>(stat)));
  });
}

}  // extern "C"
