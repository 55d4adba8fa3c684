#include "session/session.h"

#include <cstdint>
#include <vector>

#include "common/error.h"
#include "session/state_blob.h"

namespace m3 {

Session::InUse::InUse(const Session& s) : s_(s) {
  if (s_.busy_.exchange(true, std::memory_order_acquire))
    fail(M3_ERR_SESSION_BUSY, "session is being used by another call (sessions are single-threaded)");
}
Session::InUse::~InUse() { s_.busy_.store(false, std::memory_order_release); }

Session::Session(std::shared_ptr<const Model> model) : model_(std::move(model)), place_(*model_) {
  slot_ = model_->backend().create_slot();
}

Session::~Session() = default;

void Session::check_tokens(const int32_t* tokens, std::size_t n) const {
  const int64_t vocab = model_->config().vocab_size;
  for (std::size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      fail(M3_ERR_INVALID_ARGUMENT, "token id " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                        " is out of range [0, " + std::to_string(vocab) + ")");
}

void Session::check_state() const {
  if (state_lost_)
    fail(M3_ERR_STATE_LOST, "the session's state is unknown: the device (" + model_->backend().device_name() +
                                ") failed during an earlier call on it; reset it or restore a saved state");
}

void Session::pass_failed() noexcept {
  if (!model_->backend().failed_pass_keeps_state()) state_lost_ = true;
}

namespace {
void check_logits_buffer(const float* logits, std::size_t capacity, std::size_t rows, std::size_t row_size) {
  if (!logits) fail(M3_ERR_INVALID_ARGUMENT, "logits buffer is NULL");
  if (rows > SIZE_MAX / row_size) fail(M3_ERR_INVALID_ARGUMENT, "token count " + std::to_string(rows) + " is too large");
  if (capacity < rows * row_size)
    fail(M3_ERR_BUFFER_TOO_SMALL, "logits buffer holds " + std::to_string(capacity) + " floats, needs " +
                                      std::to_string(rows * row_size) + " (" + std::to_string(rows) + " x " +
                                      std::to_string(row_size) + ")");
}
}  // namespace

void Session::reset() {
  model_->backend().zero_slot(*slot_);
  n_tokens_ = 0;
  state_lost_ = false;
}

void Session::feed(const int32_t* tokens, std::size_t n, m3_logits_mode mode, float* logits,
                   std::size_t capacity) {
  check_state();
  if (n > 0 && !tokens) fail(M3_ERR_INVALID_ARGUMENT, "tokens is NULL");
  if (mode != M3_LOGITS_NONE && mode != M3_LOGITS_LAST && mode != M3_LOGITS_ALL)
    fail(M3_ERR_INVALID_ARGUMENT, "unknown logits mode " + std::to_string(static_cast<int>(mode)));
  if (n == 0) {
    if (mode != M3_LOGITS_NONE) fail(M3_ERR_INVALID_ARGUMENT, "no tokens to compute logits for (n_tokens is 0)");
    return;
  }
  const std::size_t vp = static_cast<std::size_t>(model_->config().vocab_padded);
  if (mode == M3_LOGITS_LAST) check_logits_buffer(logits, capacity, 1, vp);
  if (mode == M3_LOGITS_ALL) check_logits_buffer(logits, capacity, n, vp);
  check_tokens(tokens, n);
  try {
    model_->backend().prefill(*slot_, tokens, n, mode, logits);
  } catch (...) {
    pass_failed();
    throw;
  }
  n_tokens_ += static_cast<int64_t>(n);
}

void Session::step(int32_t token, float* logits, std::size_t capacity) {
  // The per-token path: no allocation.
  check_state();
  check_tokens(&token, 1);
  if (logits) check_logits_buffer(logits, capacity, 1, static_cast<std::size_t>(model_->config().vocab_padded));
  StateSlot* slot = slot_.get();
  try {
    model_->backend().decode(&slot, &token, 1, logits);
  } catch (...) {
    pass_failed();
    throw;
  }
  n_tokens_ += 1;
}

void Session::decode_batch(Session* const* sessions, const int32_t* tokens, std::size_t n, float* logits,
                           std::size_t capacity) {
  if (n == 0) return;
  const Model& model = sessions[0]->model();
  std::vector<StateSlot*> slots(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (&sessions[i]->model() != &model)
      fail(M3_ERR_MODEL_MISMATCH, "sessions[" + std::to_string(i) + "] belongs to a different model than sessions[0]");
    sessions[i]->check_state();
    sessions[i]->check_tokens(tokens + i, 1);
    slots[i] = sessions[i]->slot_.get();
  }
  if (logits) check_logits_buffer(logits, capacity, n, static_cast<std::size_t>(model.config().vocab_padded));
  try {
    model.backend().decode(slots.data(), tokens, n, logits);
  } catch (...) {
    for (std::size_t i = 0; i < n; ++i) sessions[i]->pass_failed();
    throw;
  }
  for (std::size_t i = 0; i < n; ++i) sessions[i]->n_tokens_ += 1;
}

std::size_t Session::blob_size() const { return state_blob_size(model_->state_layout().total_bytes()); }

void Session::save(void* buffer, std::size_t capacity, std::size_t* out_size) const {
  check_state();
  const std::size_t need = blob_size();
  *out_size = need;
  if (!buffer || capacity < need)
    fail(M3_ERR_BUFFER_TOO_SMALL, "state blob needs " + std::to_string(need) + " bytes, buffer has " +
                                      std::to_string(buffer ? capacity : 0));
  std::vector<float> state(static_cast<std::size_t>(model_->state_layout().total_floats()));
  model_->backend().read_slot(*slot_, state.data());
  write_state_blob(model_->fingerprint(), n_tokens_, state.data(), model_->state_layout().total_bytes(), buffer);
}

void Session::restore(const void* blob, std::size_t size) {
  if (!blob) fail(M3_ERR_INVALID_ARGUMENT, "state blob is NULL");
  std::vector<float> state(static_cast<std::size_t>(model_->state_layout().total_floats()));
  int64_t tokens = 0;
  read_state_blob(blob, size, model_->fingerprint(), state.data(), model_->state_layout().total_bytes(), &tokens);
  model_->backend().write_slot(*slot_, state.data());
  n_tokens_ = tokens;
  state_lost_ = false;
}

std::unique_ptr<Session> Session::fork() const {
  check_state();
  auto copy = std::make_unique<Session>(model_);
  model_->backend().copy_slot(*slot_, *copy->slot_);
  copy->n_tokens_ = n_tokens_;
  return copy;
}

void Session::read_state(int32_t layer, m3_state_part part, float* out, std::size_t capacity,
                         std::size_t* out_count) const {
  check_state();
  const StateLayout& layout = model_->state_layout();
  if (layer < 0 || layer >= layout.n_layer)
    fail(M3_ERR_INVALID_ARGUMENT, "layer " + std::to_string(layer) + " is out of range [0, " +
                                      std::to_string(layout.n_layer) + ")");
  if (part < M3_STATE_ANGLE || part > M3_STATE_V)
    fail(M3_ERR_INVALID_ARGUMENT, "unknown state part " + std::to_string(static_cast<int>(part)));
  const std::size_t count = static_cast<std::size_t>(layout.part_floats(part));
  *out_count = count;
  if (!out || capacity < count)
    fail(M3_ERR_BUFFER_TOO_SMALL, "state part needs " + std::to_string(count) + " floats");
  std::vector<float> state(static_cast<std::size_t>(layout.total_floats()));
  model_->backend().read_slot(*slot_, state.data());
  const float* src = state.data() + layout.offset(layer, part);
  std::copy(src, src + count, out);
}

}  // namespace m3
