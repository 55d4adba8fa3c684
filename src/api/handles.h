// The structs behind the opaque C handles, shared by the api/*.cpp files.
#pragma once

#include <memory>
#include <mutex>
#include <optional>

#include "generation/generation.h"
#include "model/model.h"
#include "session/session.h"
#include "streaming/engine.h"
#include "tokenizer/tokenizer.h"

struct m3_model_params {
  m3::LoadOptions options;
};

struct m3_tokenizer {
  // Either owned (m3_tokenizer_load) or borrowed from a model (m3_model_tokenizer).
  std::unique_ptr<m3::Tokenizer> owned;
  const m3::Tokenizer* tokenizer = nullptr;
};

struct m3_model {
  // Sessions share ownership, so freeing the handle before its sessions is safe.
  std::shared_ptr<const m3::Model> model;
  m3_tokenizer tokenizer;  // borrowed view of model->tokenizer() for m3_model_tokenizer
};

struct m3_session {
  std::unique_ptr<m3::Session> session;
};

struct m3_gen_params {
  m3::GenerationParams params;
};

struct m3_generation {
  m3::Generation generation;
  // A produced step the caller's buffer was too small for; delivered by the next call.
  std::optional<m3::GenerationStep> undelivered;
};

struct m3_engine_params {
  m3::streaming::EngineOptions options;
};

struct m3_engine {
  std::unique_ptr<m3::streaming::Engine> engine;
};

struct m3_stream {
  std::shared_ptr<m3::streaming::Stream> stream;
  std::mutex next_mutex;  // m3_stream_next from several threads: one event each
  // An event the caller's buffer was too small for; delivered by the next call.
  std::optional<m3::streaming::StreamEvent> undelivered;
};
