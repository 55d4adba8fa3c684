// Token sampling from logits: greedy, temperature, top-k, top-p, min-p, repetition /
// presence / frequency penalties, logit bias, with a seeded, platform-independent RNG so the
// same seed gives the same tokens on every machine and backend.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "sampling/rng.h"

namespace m3 {

struct SamplingParams {
  float temperature = 1.0f;      // <= 0: greedy (argmax after bias and penalties)
  int32_t top_k = 0;             // 0: off
  float top_p = 1.0f;            // 1: off
  float min_p = 0.0f;            // 0: off; keeps tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;   // 1: off; CTRL-style: logit / penalty if > 0 else logit * penalty
  int32_t repeat_last_n = 64;    // window of recent tokens the penalties look at; -1: all
  float presence_penalty = 0.0f; // OpenAI-style: logit -= presence * (count > 0)
  float frequency_penalty = 0.0f;//              logit -= frequency * count
  uint64_t seed = 0;
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the logit; -inf bans a token
};

// Semantics in detail (tests/test_sampler.cpp checks each point):
//  - Adjusted logit = input (NaN counts as -inf) + logit_bias (duplicate ids add up), then
//    for each distinct token among the last repeat_last_n accepted ones (count c > 0):
//    x = x > 0 ? x / repeat_penalty : x * repeat_penalty; x -= c * frequency + presence.
//  - Canonical order: adjusted logit descending (= probability descending), id ascending.
//    Greedy returns the first token in it; top-k keeps the first k (-inf never counts).
//  - Softmax at temperature T over the top-k survivors (all tokens without top-k), in
//    double; +inf logits share the mass equally. top-p on that distribution keeps the
//    smallest prefix with cumulative probability >= top_p; min-p then keeps p >= min_p * p_max.
//    The survivors are renormalised and one uniform u in [0, 1) picks the first of them (in
//    canonical order) whose cumulative probability exceeds u.
//  - Every non-greedy sample() takes exactly one number from the RNG (xoshiro256**, seeded
//    by SplitMix64, sampling/rng.h); greedy takes none. If every adjusted logit is -inf,
//    sample() returns 0.
//  - accept() throws for ids outside [0, n_vocab), and keeps no history when no penalty is
//    active. sample() throws if logits.size() < n_vocab.
//  - Cost per sample() on V = n_vocab: greedy and top-k O(V) + O(k log k) (one pass over
//    the input, no copy); otherwise O(V) exp() calls plus sorting only the tokens that the
//    top-p cut or the draw reaches (O(V log V) for a flat distribution).
class Sampler {
 public:
  // n_vocab: number of valid token ids (logits beyond it are padding and never sampled).
  // Throws m3::Error(M3_ERR_INVALID_ARGUMENT) for out-of-range params or bias ids.
  Sampler(const SamplingParams& params, int32_t n_vocab);

  // Picks the next token from logits[0 .. n_vocab). Does not modify logits and does not
  // allocate after construction. Order: logit bias, penalties, then greedy or
  // temperature -> top-k -> top-p -> min-p on the survivors -> draw.
  int32_t sample(std::span<const float> logits);

  // Records a token in the history the penalties use (prompt tokens and generated ones).
  void accept(int32_t token);
  // Forgets the history and restarts the RNG from the seed.
  void reset();

  const SamplingParams& params() const { return params_; }

 private:
  // A candidate token: its adjusted logit and id. Canonical order ("better" first): logit
  // descending (= probability descending), then id ascending.
  struct Candidate {
    float logit;
    int32_t id;
  };

  void adjust_touched(const float* logits, bool full);
  void clear_touched();
  size_t select_best(const float* logits, size_t k);
  int32_t sample_top_k(double u, size_t count);
  int32_t sample_full(double u, float max_logit);
  int32_t pick(double u, size_t n_keep) const;
  void history_add(int32_t token);
  void history_remove(int32_t token);

  SamplingParams params_;
  int32_t n_vocab_;

  Rng rng_;
  double inv_temperature_ = 0.0;               // 1 / temperature when temperature > 0
  std::vector<std::pair<int32_t, float>> bias_;  // logit_bias, duplicates summed, sorted by id

  // History for the penalties (only kept when a penalty is active and repeat_last_n != 0).
  // counts_[t] is the number of occurrences of t in the window; distinct_ lists the tokens
  // with counts_ > 0 (reserved at construction, never reallocates); window_pos_[t] is t's
  // index in distinct_ (windowed mode only). ring_ holds the last repeat_last_n tokens; it
  // grows in accept() up to repeat_last_n entries (amortized), so a huge window costs memory
  // only as tokens arrive. repeat_last_n == -1 counts every accepted token and needs no ring.
  bool penalties_active_ = false;
  std::vector<int64_t> counts_;
  std::vector<int32_t> distinct_;
  std::vector<int32_t> window_pos_;
  std::vector<int32_t> ring_;
  size_t ring_head_ = 0;

  // Scratch, sized at construction; sample() never allocates.
  std::vector<float> adjusted_;         // adjusted logits: all (sample_full) or touched ones
  std::vector<uint8_t> touched_;        // 1 for the tokens in overrides_ during a sample()
  std::vector<int32_t> overrides_;      // tokens with a bias or a penalty this call
  std::vector<Candidate> candidates_;   // selection / partial-sort workspace
  std::vector<double> weights_;         // exp((logit - max) / T) of the sorted prefix
  std::array<double, 256> bucket_mass_{};  // sample_full: mass per logit band (see .cpp)
};

}  // namespace m3
