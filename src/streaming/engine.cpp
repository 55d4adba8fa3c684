#include "streaming/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/error.h"

namespace m3::streaming {
namespace {

void check_option(int32_t value, int32_t lo, int32_t hi, const char* name) {
  if (value < lo || value > hi)
    fail(M3_ERR_INVALID_ARGUMENT, std::string(name) + " must be in [" + std::to_string(lo) + ", " +
                                      std::to_string(hi) + "], got " + std::to_string(value));
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

void validate(const EngineOptions& options) {
  check_option(options.max_batch, 1, 65536, "max_batch");
  check_option(options.max_streams, 1, 1 << 24, "max_streams");
  check_option(options.prefill_chunk, 1, 1 << 20, "prefill_chunk");
  check_option(options.prefill_budget, 1, 1 << 24, "prefill_budget");
  check_option(options.queue_capacity, 1, 1 << 20, "queue_capacity");
}

Engine::Engine(std::shared_ptr<const Model> model, const EngineOptions& options)
    : model_(std::move(model)), options_(options) {
  validate(options_);
  if (const char* p = std::getenv("MAMBA3RT_ENGINE_PROFILE")) profile_ = std::string(p) == "1";
  const m3_backend kind = model_->backend().kind();
  if (kind != M3_BACKEND_CPU && kind != M3_BACKEND_CPU_REFERENCE) {
    const int threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 2, 1, 8);
    if (threads > 1) sampling_pool_ = std::make_unique<cpu::ThreadPool>(threads);
  }
  scheduler_ = std::thread([this] { run(); });
}

Engine::~Engine() {
  signal_->stop();
  scheduler_.join();
  if (profile_)
    std::fprintf(stderr,
                 "mamba3rt engine: %lld steps, %lld tokens generated, %lld fed; scheduler time: prefill %.3f s, "
                 "decode %.3f s, sampling and output %.3f s\n",
                 static_cast<long long>(stats_.steps.load()), static_cast<long long>(stats_.generated_tokens.load()),
                 static_cast<long long>(stats_.prompt_tokens.load()), prefill_seconds_, decode_seconds_,
                 sample_seconds_);
  take_submitted();
  for (auto& s : streams_) {
    if (s->take_input().closed) continue;  // freed handles get no more output
    if (s->turn().finished() == M3_FINISH_NONE && (s->turn().has_logits() || s->turn().unfed() >= 0 ||
                                                   !s->turn().input().empty()))
      s->emit(s->turn().finish(M3_FINISH_CANCELLED));
  }
}

std::shared_ptr<Stream> Engine::submit(const GenerationParams& params, const Session* prefix,
                                       EventCallback callback) {
  if (stats_.live_streams->fetch_add(1) >= options_.max_streams) {
    stats_.live_streams->fetch_sub(1);
    fail(M3_ERR_LIMIT_EXCEEDED, "the engine already runs its maximum of " + std::to_string(options_.max_streams) +
                                    " streams (max_streams)");
  }
  try {
    std::unique_ptr<Session> session;
    if (prefix) {
      if (&prefix->model() != model_.get())
        fail(M3_ERR_MODEL_MISMATCH, "the prefix session belongs to another model");
      Session::InUse use(*prefix);
      session = prefix->fork();
    } else {
      session = std::make_unique<Session>(model_);
    }
    auto stream = std::make_shared<Stream>(std::move(session), params,
                                           static_cast<std::size_t>(options_.queue_capacity), std::move(callback),
                                           signal_, stats_.live_streams);
    {
      std::lock_guard<std::mutex> lock(submit_mutex_);
      submitted_.push_back(stream);
    }
    signal_->notify();
    return stream;
  } catch (...) {
    stats_.live_streams->fetch_sub(1);
    throw;
  }
}

void Engine::run() {
  while (signal_->wait()) {
    try {
      while (!signal_->stopped() && step()) {
      }
    } catch (...) {
      // Nothing above throws by design (backend errors end their streams); should something
      // still escape, fail the streams of this step rather than take the process down.
      for (Stream* s : prefilling_) s->emit_error(M3_ERR_INTERNAL, "the engine's scheduler failed");
      for (Stream* s : decoding_) s->emit_error(M3_ERR_INTERNAL, "the engine's scheduler failed");
      signal_->notify();  // the other streams' work is still there
    }
  }
}

void Engine::take_submitted() {
  std::lock_guard<std::mutex> lock(submit_mutex_);
  for (auto& s : submitted_) streams_.push_back(std::move(s));
  submitted_.clear();
}

bool Engine::step() {
  take_submitted();

  // Input, cancels and frees.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    Stream& s = *streams_[i];
    const Stream::Intake intake = s.take_input();
    if (intake.closed) continue;  // the session is freed with the last reference
    if (intake.cancel && s.turn().finished() == M3_FINISH_NONE) s.emit(s.turn().finish(M3_FINISH_CANCELLED));
    if (kept != i) streams_[kept] = std::move(streams_[i]);
    ++kept;
  }
  streams_.resize(kept);

  // Who runs this step: the first max_batch streams with work and room for output.
  prefilling_.clear();
  decoding_.clear();
  int64_t waiting = 0, paused = 0;
  for (auto& p : streams_) {
    Stream& s = *p;
    Turn& t = s.turn();
    if (t.finished() != M3_FINISH_NONE) continue;
    const bool has_input = !t.input().empty();
    if (!has_input && t.unfed() < 0) continue;  // idle: no prompt yet
    if (!s.accepts_output()) {
      ++paused;
      continue;
    }
    if (static_cast<int64_t>(prefilling_.size() + decoding_.size()) >= options_.max_batch) {
      ++waiting;
      continue;
    }
    (has_input ? prefilling_ : decoding_).push_back(&s);
  }
  stats_.waiting = waiting;
  stats_.paused = paused;
  stats_.running = static_cast<int64_t>(prefilling_.size() + decoding_.size());
  if (prefilling_.empty() && decoding_.empty()) return false;

  // Prefill shares the step with the decoding streams: at most prefill_budget tokens, and
  // while streams are decoding, prefill for no longer than half a decode step (beyond the
  // first chunk), so that their inter-token time stays steady however many requests arrive.
  std::size_t budget = static_cast<std::size_t>(options_.prefill_budget);
  const double time_cap = decoding_.empty() ? 1e30 : 0.5 * last_decode_seconds_;
  const auto prefill_start = std::chrono::steady_clock::now();
  bool fed_any = false;
  for (Stream* s : prefilling_) {
    // Whole chunks only (their boundaries must not depend on other streams); the first
    // chunk of a step may overrun the budgets so that every step makes progress.
    while (!s->turn().input().empty() && s->turn().finished() == M3_FINISH_NONE) {
      const std::size_t next = std::min<std::size_t>(options_.prefill_chunk, s->turn().input().size());
      if (fed_any && (next > budget || seconds_since(prefill_start) >= time_cap)) break;
      budget -= std::min(budget, prefill_chunk(*s, next));
      fed_any = true;
    }
    if (fed_any && (budget == 0 || seconds_since(prefill_start) >= time_cap)) break;
  }
  if (!decoding_.empty()) decode(decoding_);
  stats_.steps.fetch_add(1);
  return true;
}

std::size_t Engine::prefill_chunk(Stream& s, std::size_t n) {
  const auto t0 = std::chrono::steady_clock::now();
  Turn& t = s.turn();
  const std::span<const int32_t> input = t.input();
  const std::size_t padded = static_cast<std::size_t>(model_->config().vocab_padded);
  if (logits_.size() < padded) logits_.resize(padded);
  try {
    s.session().feed(input.data(), n, M3_LOGITS_LAST, logits_.data(), padded);
  } catch (const Error& e) {
    s.emit_error(e.status(), e.what());
    return n;
  } catch (const std::bad_alloc&) {
    s.emit_error(M3_ERR_OUT_OF_MEMORY, "out of memory while feeding the prompt");
    return n;
  }
  t.input_fed(n);
  stats_.prompt_tokens.fetch_add(static_cast<int64_t>(n));
  s.add_prefill_seconds(seconds_since(t0));
  prefill_seconds_ += seconds_since(t0);
  if (t.input().empty()) sample(s, logits_.data());
  return n;
}

void Engine::decode(std::vector<Stream*>& streams) {
  const std::size_t padded = static_cast<std::size_t>(model_->config().vocab_padded);
  const std::size_t n = streams.size();
  if (logits_.size() < n * padded) logits_.resize(n * padded);
  batch_sessions_.clear();
  batch_tokens_.clear();
  for (Stream* s : streams) {
    batch_sessions_.push_back(&s->session());
    batch_tokens_.push_back(s->turn().unfed());
  }
  const auto t0 = std::chrono::steady_clock::now();
  try {
    Session::decode_batch(batch_sessions_.data(), batch_tokens_.data(), n, logits_.data(), n * padded);
  } catch (const Error& e) {
    for (Stream* s : streams) s->emit_error(e.status(), e.what());
    return;
  } catch (const std::bad_alloc&) {
    for (Stream* s : streams) s->emit_error(M3_ERR_OUT_OF_MEMORY, "out of memory while decoding");
    return;
  }
  stats_.last_batch = static_cast<int64_t>(n);
  const auto t1 = std::chrono::steady_clock::now();
  last_decode_seconds_ = std::chrono::duration<double>(t1 - t0).count();
  decode_seconds_ += last_decode_seconds_;
  for (Stream* s : streams) s->turn().unfed_fed();
  sample_batch(streams, logits_.data());
  sample_seconds_ += seconds_since(t1);
}

void Engine::sample_batch(std::vector<Stream*>& streams, const float* logits) {
  const std::size_t padded = static_cast<std::size_t>(model_->config().vocab_padded);
  const std::size_t n = streams.size();
  if (!sampling_pool_ || n < 4) {
    for (std::size_t i = 0; i < n; ++i) sample(*streams[i], logits + i * padded);
    return;
  }
  steps_.resize(n);
  generated_before_.resize(n);
  sampling_failed_.assign(n, 0);
  sampling_pool_->run_chunks(static_cast<int64_t>(n), [&](int64_t i, int) {
    Turn& t = streams[i]->turn();
    generated_before_[i] = t.generated_tokens();
    try {  // nothing may escape a pool thread
      steps_[i] = t.sample(std::span<const float>(logits + i * padded, padded));
    } catch (...) {
      sampling_failed_[i] = 1;
    }
  });
  for (std::size_t i = 0; i < n; ++i) {
    if (sampling_failed_[i]) {
      streams[i]->emit_error(M3_ERR_OUT_OF_MEMORY, "sampling failed (out of memory)");
      continue;
    }
    stats_.generated_tokens.fetch_add(streams[i]->turn().generated_tokens() - generated_before_[i]);
    streams[i]->emit(std::move(steps_[i]));
  }
}

void Engine::sample(Stream& s, const float* logits) {
  const std::size_t padded = static_cast<std::size_t>(model_->config().vocab_padded);
  const int64_t before = s.turn().generated_tokens();
  GenerationStep step = s.turn().sample(std::span<const float>(logits, padded));
  stats_.generated_tokens.fetch_add(s.turn().generated_tokens() - before);
  s.emit(std::move(step));
}

}  // namespace m3::streaming
