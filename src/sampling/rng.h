// Platform-independent pseudo-random numbers for sampling: xoshiro256** (Blackman & Vigna),
// seeded by four steps of SplitMix64, and a uniform double built from the top 53 bits.
// Everything is plain 64-bit integer arithmetic, so a seed gives the same stream on every
// compiler, standard library and CPU (std::*_distribution is implementation-defined and is
// deliberately not used).
#pragma once

#include <array>
#include <cstdint>

namespace m3 {

// One SplitMix64 step: advances *state and returns the next output.
uint64_t splitmix64_next(uint64_t& state) noexcept;

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) noexcept { reseed(seed); }

  // State s[i] = splitmix64_next(seed-state) for i = 0..3 (the seeding the authors recommend;
  // the state cannot become all zero this way, since SplitMix64 is a bijection of its counter).
  void reseed(uint64_t seed) noexcept;

  // Raw state access (reference-vector tests, snapshots). An all-zero state is a fixed point
  // of xoshiro and is not a valid state.
  static Rng from_state(const std::array<uint64_t, 4>& s) noexcept;
  const std::array<uint64_t, 4>& state() const noexcept { return s_; }

  uint64_t next_u64() noexcept;
  // Uniform in [0, 1): (next_u64() >> 11) * 2^-53. Every value is a multiple of 2^-53.
  double next_double() noexcept;

 private:
  std::array<uint64_t, 4> s_{};
};

}  // namespace m3
