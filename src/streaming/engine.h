// The streaming engine: many concurrent streams on one model, run by one scheduler thread
// with continuous batching.
//
// Each step the scheduler (1) takes the streams' new input, cancels and frees, (2) feeds
// prompt chunks of the streams still prefilling, at most `prefill_budget` tokens in all and,
// while streams are decoding, for no longer than half a decode step, so that running
// streams keep a steady token rate while new requests are admitted, and (3)
// decodes one token for every stream that is generating, all in one batched backend call.
// Streams run in the order they were submitted; beyond `max_batch` runnable streams the
// rest wait. A stream leaves the step the moment its turn finishes.
//
// A stream's chunk boundaries depend only on its own input, never on the other streams, and
// the backends' batched decode computes each row as a batch of one would, so batching does
// not change what a request produces (tests/test_engine.cpp checks it against Generation).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/cpu/thread_pool.h"
#include "model/model.h"
#include "streaming/stream.h"

namespace m3::streaming {

struct EngineOptions {
  int32_t max_batch = 256;       // streams decoded together in one step
  int32_t max_streams = 4096;    // live streams (each holds a state slot)
  int32_t prefill_chunk = 256;   // prompt tokens per prefill call of one stream
  int32_t prefill_budget = 512;  // prompt tokens per step over all streams
  int32_t queue_capacity = 64;   // output events buffered per pull stream
};

// Throws M3_ERR_INVALID_ARGUMENT naming the first option out of its range.
void validate(const EngineOptions& options);

// Engine statistics (m3_engine_stat keys).
struct EngineStats {
  // Shared with the streams, which leave the count when freed.
  std::shared_ptr<std::atomic<int64_t>> live_streams = std::make_shared<std::atomic<int64_t>>(0);
  std::atomic<int64_t> running{0}, waiting{0}, paused{0};
  std::atomic<int64_t> steps{0}, generated_tokens{0}, prompt_tokens{0}, last_batch{0};
};

class Engine {
 public:
  // Throws for out-of-range options.
  Engine(std::shared_ptr<const Model> model, const EngineOptions& options);
  ~Engine();  // cancels every running stream and stops the scheduler
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // A new stream, idle until input is pushed. With `prefix`, it starts from a copy of that
  // session's state (the caller keeps the session and must not use it during the call).
  // Throws M3_ERR_LIMIT_EXCEEDED beyond max_streams, M3_ERR_MODEL_MISMATCH for a prefix of
  // another model.
  std::shared_ptr<Stream> submit(const GenerationParams& params, const Session* prefix, EventCallback callback);

  const EngineStats& stats() const { return stats_; }
  const EngineOptions& options() const { return options_; }

 private:
  void run();
  // One scheduler step; false when there was nothing to do.
  bool step();
  void take_submitted();
  // Feeds one chunk of a prefilling stream; returns the tokens fed.
  std::size_t prefill_chunk(Stream& s, std::size_t max_tokens);
  void decode(std::vector<Stream*>& streams);
  // Samples the stream's next token from its logits and hands the result to the stream.
  void sample(Stream& s, const float* logits);
  // The same for a whole decoded batch: sampling in parallel (each stream has its own
  // sampler), then the results handed over in order on the scheduler thread.
  void sample_batch(std::vector<Stream*>& streams, const float* logits);

  const std::shared_ptr<const Model> model_;
  const EngineOptions options_;
  const std::shared_ptr<SchedulerSignal> signal_ = std::make_shared<SchedulerSignal>();
  EngineStats stats_;

  std::mutex submit_mutex_;
  std::vector<std::shared_ptr<Stream>> submitted_;  // not yet seen by the scheduler

  // Scheduler thread only.
  std::vector<std::shared_ptr<Stream>> streams_;    // in submission order
  std::vector<Stream*> prefilling_, decoding_;
  std::vector<Session*> batch_sessions_;
  std::vector<int32_t> batch_tokens_;
  std::vector<float> logits_;
  std::vector<GenerationStep> steps_;
  std::vector<int64_t> generated_before_;
  std::vector<char> sampling_failed_;
  // Sampling a large vocabulary costs about as much per stream as a GPU's decode step
  // does per row, so batches are sampled on several threads (GPU backends only: on the
  // CPU backends the cores are busy with the model).
  std::unique_ptr<cpu::ThreadPool> sampling_pool_;

  // MAMBA3RT_ENGINE_PROFILE=1: where the scheduler's time went, printed when the engine stops.
  bool profile_ = false;
  double prefill_seconds_ = 0, decode_seconds_ = 0, sample_seconds_ = 0;
  double last_decode_seconds_ = 0;  // the prefill time allowed in a step with decoding streams

  std::thread scheduler_;
};

}  // namespace m3::streaming
