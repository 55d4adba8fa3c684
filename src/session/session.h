// A session: one stream's recurrent state slot on the model's backend, with the argument
// checks that make every call all-or-nothing (a failed call leaves the state untouched).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "backend.h"
#include "model/model.h"

namespace m3 {

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model);
  ~Session();

  const Model& model() const { return *model_; }
  int64_t n_tokens() const { return n_tokens_; }

  void reset();
  void feed(const int32_t* tokens, std::size_t n, m3_logits_mode mode, float* logits, std::size_t capacity);
  void step(int32_t token, float* logits, std::size_t capacity);
  // The sessions must be distinct (the C API checks that before marking them in use).
  static void decode_batch(Session* const* sessions, const int32_t* tokens, std::size_t n, float* logits,
                           std::size_t capacity);

  std::size_t blob_size() const;
  // Writes *out_size; throws M3_ERR_BUFFER_TOO_SMALL if capacity is short.
  void save(void* buffer, std::size_t capacity, std::size_t* out_size) const;
  void restore(const void* blob, std::size_t size);
  std::unique_ptr<Session> fork() const;
  void read_state(int32_t layer, m3_state_part part, float* out, std::size_t capacity,
                  std::size_t* out_count) const;

  // Marks the session in use for one API call; a concurrent second call gets
  // M3_ERR_SESSION_BUSY instead of a data race.
  class InUse {
   public:
    explicit InUse(const Session& s);
    ~InUse();
    InUse(const InUse&) = delete;
    InUse& operator=(const InUse&) = delete;

   private:
    const Session& s_;
  };

 private:
  void check_tokens(const int32_t* tokens, std::size_t n) const;
  // Refuses every use of a session whose state was lost, until reset or restore.
  void check_state() const;
  // After a pass threw: a backend that cannot promise the slot is untouched loses the state.
  void pass_failed() noexcept;

  // Holds one of the model's live-session places for the session's lifetime (released after
  // the slot, and also when the constructor throws).
  class Place {
   public:
    explicit Place(const Model& model) : model_(model) { model_.acquire_session(); }
    ~Place() { model_.release_session(); }
    Place(const Place&) = delete;
    Place& operator=(const Place&) = delete;

   private:
    const Model& model_;
  };

  std::shared_ptr<const Model> model_;
  Place place_;
  std::unique_ptr<StateSlot> slot_;
  int64_t n_tokens_ = 0;
  bool state_lost_ = false;  // see Backend::failed_pass_keeps_state
  mutable std::atomic<bool> busy_{false};
};

}  // namespace m3
