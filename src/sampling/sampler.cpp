#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "common/error.h"

namespace m3 {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kPosInf = std::numeric_limits<float>::infinity();

// sample_full groups candidates into bands of the weight w = exp((x - max) / T):
// band b holds 2^-(b+1)/4 < w <= 2^-b/4 (four bands per halving), the last band everything
// below. Only the bands up to the one where the needed mass is reached get sorted.
constexpr int kBands = 256;
constexpr double kBandsPerUnitLogit = 4.0 / 0.69314718055994530942;  // 4 / ln 2

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

[[noreturn]] void invalid(const std::string& what) {
  fail(M3_ERR_INVALID_ARGUMENT, "sampler: " + what);
}

float nan_to_neg_inf(float x) { return std::isnan(x) ? kNegInf : x; }

struct Better {
  template <class C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

// Weight of a logit relative to the maximum; the maximum itself has weight exactly 1.
// max == +inf: the limit of softmax, uniform over the +inf logits.
struct WeightFn {
  double max;
  double inv_t;
  bool max_is_inf;
  double operator()(float x) const {
    if (max_is_inf) return x == kPosInf ? 1.0 : 0.0;
    return std::exp((static_cast<double>(x) - max) * inv_t);
  }
  // Non-decreasing in (max - x); the same expression everywhere, so it is consistent.
  int band(float x) const {
    if (max_is_inf) return x == kPosInf ? 0 : kBands - 1;
    const double d = (max - static_cast<double>(x)) * inv_t * kBandsPerUnitLogit;
    return d < static_cast<double>(kBands - 1) ? static_cast<int>(d) : kBands - 1;
  }
};

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {
  const SamplingParams& p = params_;
  if (n_vocab <= 0) invalid("n_vocab must be positive, got " + std::to_string(n_vocab));
  if (!std::isfinite(p.temperature)) invalid("temperature must be finite, got " + num(p.temperature));
  if (p.top_k < 0) invalid("top_k must be >= 0 (0 = off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) invalid("top_p must be in (0, 1], got " + num(p.top_p));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) invalid("min_p must be in [0, 1], got " + num(p.min_p));
  if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f)
    invalid("repeat_penalty must be finite and > 0, got " + num(p.repeat_penalty));
  if (p.repeat_last_n < -1)
    invalid("repeat_last_n must be >= -1 (-1 = all), got " + std::to_string(p.repeat_last_n));
  if (!std::isfinite(p.presence_penalty))
    invalid("presence_penalty must be finite, got " + num(p.presence_penalty));
  if (!std::isfinite(p.frequency_penalty))
    invalid("frequency_penalty must be finite, got " + num(p.frequency_penalty));

  bias_.reserve(p.logit_bias.size());
  for (const auto& [id, value] : p.logit_bias) {
    if (id < 0 || id >= n_vocab)
      invalid("logit_bias token id " + std::to_string(id) + " is out of range [0, " +
              std::to_string(n_vocab) + ")");
    if (std::isnan(value)) invalid("logit_bias for token " + std::to_string(id) + " is NaN");
    bias_.emplace_back(id, value);
  }
  std::stable_sort(bias_.begin(), bias_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t merged = 0;
  for (size_t i = 0; i < bias_.size(); ++i) {
    if (merged > 0 && bias_[merged - 1].first == bias_[i].first) {
      const float sum = bias_[merged - 1].second + bias_[i].second;
      if (std::isnan(sum))
        invalid("logit_bias for token " + std::to_string(bias_[i].first) +
                " has both +inf and -inf entries");
      bias_[merged - 1].second = sum;
    } else {
      bias_[merged++] = bias_[i];
    }
  }
  bias_.resize(merged);

  if (p.temperature > 0.0f) inv_temperature_ = 1.0 / static_cast<double>(p.temperature);

  const size_t n = static_cast<size_t>(n_vocab);
  penalties_active_ = p.repeat_last_n != 0 &&
                      (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f ||
                       p.frequency_penalty != 0.0f);
  if (penalties_active_) {
    counts_.assign(n, 0);
    if (p.repeat_last_n > 0) {
      window_pos_.assign(n, -1);
      distinct_.reserve(std::min(n, static_cast<size_t>(p.repeat_last_n)));
      ring_.reserve(std::min<size_t>(static_cast<size_t>(p.repeat_last_n), 4096));
    } else {
      distinct_.reserve(n);
    }
  }

  adjusted_.resize(n);
  candidates_.resize(n);
  weights_.resize(n);
}

// ---- history ---------------------------------------------------------------------------

void Sampler::history_add(int32_t t) {
  if (counts_[t]++ == 0) {
    if (!window_pos_.empty()) window_pos_[t] = static_cast<int32_t>(distinct_.size());
    distinct_.push_back(t);  // capacity reserved: at most min(window, n_vocab) distinct tokens
  }
}

void Sampler::history_remove(int32_t t) {
  if (--counts_[t] == 0) {
    const int32_t at = window_pos_[t];
    const int32_t last = distinct_.back();
    distinct_[at] = last;
    window_pos_[last] = at;
    distinct_.pop_back();
    window_pos_[t] = -1;
  }
}

void Sampler::accept(int32_t token) {
  if (token < 0 || token >= n_vocab_)
    invalid("accept: token id " + std::to_string(token) + " is out of range [0, " +
            std::to_string(n_vocab_) + ")");
  if (!penalties_active_) return;
  if (params_.repeat_last_n > 0) {
    const size_t window = static_cast<size_t>(params_.repeat_last_n);
    if (ring_.size() < window) {
      ring_.push_back(token);
    } else {
      const int32_t oldest = ring_[ring_head_];
      ring_[ring_head_] = token;
      ring_head_ = (ring_head_ + 1) % window;
      history_remove(oldest);
    }
  }
  history_add(token);
}

void Sampler::reset() {
  for (int32_t t : distinct_) {
    counts_[t] = 0;
    if (!window_pos_.empty()) window_pos_[t] = -1;
  }
  distinct_.clear();
  ring_.clear();
  ring_head_ = 0;
  rng_.reseed(params_.seed);
}

// ---- sampling --------------------------------------------------------------------------

void Sampler::apply_bias_and_penalties(std::span<const float> logits) {
  const size_t n = static_cast<size_t>(n_vocab_);
  float* a = adjusted_.data();
  for (size_t i = 0; i < n; ++i) a[i] = nan_to_neg_inf(logits[i]);
  for (const auto& [id, value] : bias_) a[id] = nan_to_neg_inf(a[id] + value);
  if (penalties_active_) {
    const float rp = params_.repeat_penalty;
    const float presence = params_.presence_penalty;
    const float frequency = params_.frequency_penalty;
    for (int32_t t : distinct_) {  // each distinct token of the window once
      float x = a[t];
      if (rp != 1.0f) x = x > 0.0f ? x / rp : x * rp;
      x -= static_cast<float>(counts_[t]) * frequency + presence;
      a[t] = nan_to_neg_inf(x);
    }
  }
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.size() < static_cast<size_t>(n_vocab_))
    invalid("sample: " + std::to_string(logits.size()) + " logits given, n_vocab is " +
            std::to_string(n_vocab_));
  apply_bias_and_penalties(logits);
  const float* a = adjusted_.data();

  if (!(params_.temperature > 0.0f)) {  // greedy: argmax, ties to the lowest id; no RNG
    int32_t best = 0;
    float best_logit = a[0];
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (a[i] > best_logit) best_logit = a[i], best = i;
    return best;  // id 0 when every logit is -inf
  }

  const double u = rng_.next_double();  // exactly one draw per non-greedy call
  if (params_.top_k > 0 && params_.top_k < n_vocab_) return sample_top_k(u);
  float max_logit = kNegInf;
  for (int32_t i = 0; i < n_vocab_; ++i) max_logit = a[i] > max_logit ? a[i] : max_logit;
  if (max_logit == kNegInf) return 0;  // nothing has probability > 0: the argmax, id 0
  return sample_full(u, max_logit);
}

// Inverse CDF over weights_[0 .. n_keep) (canonical order), n_keep >= 1, weights_[0] > 0.
int32_t Sampler::pick(double u, size_t n_keep) const {
  double total = 0.0;
  for (size_t i = 0; i < n_keep; ++i) total += weights_[i];
  const double target = u * total;
  double cum = 0.0;
  size_t last_positive = 0;
  for (size_t i = 0; i < n_keep; ++i) {
    if (weights_[i] > 0.0) last_positive = i;
    cum += weights_[i];
    if (cum > target) return candidates_[i].id;
  }
  return candidates_[last_positive].id;  // only reachable through rounding
}

// top_k in [1, n_vocab): O(V) selection of the k best into candidates_, then O(k log k).
int32_t Sampler::sample_top_k(double u) {
  const size_t k = static_cast<size_t>(params_.top_k);
  const size_t n = static_cast<size_t>(n_vocab_);
  const float* a = adjusted_.data();
  Candidate* c = candidates_.data();

  // Keep a buffer of up to 2k candidates; when full, cut it to the k best with nth_element
  // and raise the admission bar to the k-th best. Each cut costs O(k) and frees k slots, so
  // the scan is O(V) amortized. Ids are scanned in ascending order, so a later token equal
  // to the bar ranks below it: admission is strictly "logit > bar".
  const size_t limit = std::min(n, 2 * k);
  size_t count = 0;
  float bar = kNegInf;  // -inf logits are never candidates
  for (size_t i = 0; i < n; ++i) {
    const float x = a[i];
    if (!(x > bar)) continue;
    c[count++] = Candidate{x, static_cast<int32_t>(i)};
    if (count == limit && count > k) {
      std::nth_element(c, c + (k - 1), c + count, Better{});
      bar = c[k - 1].logit;
      count = k;
    }
  }
  if (count > k) {
    std::nth_element(c, c + (k - 1), c + count, Better{});
    count = k;
  }
  if (count == 0) return 0;  // every logit is -inf: the argmax, id 0
  std::sort(c, c + count, Better{});

  const float max_logit = c[0].logit;
  const WeightFn weight{static_cast<double>(max_logit), inv_temperature_, max_logit == kPosInf};
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) total += (weights_[i] = weight(c[i].logit));

  // top-p over the distribution renormalised to the top-k survivors.
  size_t keep = count;
  if (params_.top_p < 1.0f) {
    const double target = static_cast<double>(params_.top_p) * total;
    double cum = 0.0;
    for (size_t i = 0; i < count; ++i) {
      cum += weights_[i];
      if (cum >= target) {
        keep = i + 1;
        break;
      }
    }
  }
  // min-p: the survivors of a sorted list are a prefix; weights_[0] is the maximum (1).
  if (params_.min_p > 0.0f) {
    const double bar_w = static_cast<double>(params_.min_p) * weights_[0];
    size_t i = 1;
    while (i < keep && weights_[i] >= bar_w) ++i;
    keep = i;
  }
  return pick(u, keep);
}

// No top-k: one pass computes every weight (needed for the total mass) and the mass per
// band; the band where the needed mass (top_p * total, or u * total when there is no top-p)
// is reached tells which candidates must be sorted: only those in that band or higher ones.
int32_t Sampler::sample_full(double u, float max_logit) {
  const size_t n = static_cast<size_t>(n_vocab_);
  const float* a = adjusted_.data();
  Candidate* c = candidates_.data();
  const WeightFn weight{static_cast<double>(max_logit), inv_temperature_, max_logit == kPosInf};
  const bool top_p_active = params_.top_p < 1.0f;
  const double min_w = static_cast<double>(params_.min_p);  // min_p * w_max, w_max == 1

  // With top-p the histogram covers every candidate (top-p looks at the whole distribution);
  // without it, only the min-p survivors (the draw is over them).
  const double hist_min_w = top_p_active ? 0.0 : min_w;
  bucket_mass_.fill(0.0);
  double total = 0.0;
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float x = a[i];
    if (x == kNegInf) continue;
    const double w = weight(x);
    if (!(w > 0.0)) continue;  // underflow: probability 0, never drawn, no mass
    c[count++] = Candidate{x, static_cast<int32_t>(i)};
    if (w >= hist_min_w) {
      total += w;
      bucket_mass_[weight.band(x)] += w;
    }
  }
  // count >= 1: the maximum has weight 1.

  const double target = (top_p_active ? static_cast<double>(params_.top_p) : u) * total;
  int needed_band = kBands - 1;
  {
    double cum = 0.0;
    for (int b = 0; b < kBands; ++b) {
      cum += bucket_mass_[b];
      if (top_p_active ? cum >= target : cum > target) {
        needed_band = b;
        break;
      }
    }
  }

  // candidates_[0 .. sorted) holds, in canonical order, every candidate of band <= sorted_band.
  size_t sorted = 0;
  int sorted_band = -1;
  auto extend = [&](int band) {
    Candidate* mid = std::partition(c + sorted, c + count,
                                    [&](const Candidate& e) { return weight.band(e.logit) <= band; });
    std::sort(c + sorted, mid, Better{});
    const size_t end = static_cast<size_t>(mid - c);
    for (size_t i = sorted; i < end; ++i) weights_[i] = weight(c[i].logit);
    sorted = end;
    sorted_band = band;
  };
  extend(needed_band);

  // Walk the canonical order. Rounding (the histogram sums in id order) can leave the walk
  // just short of the target at the end of the sorted part; then take in the rest.
  double cum = 0.0;
  for (size_t i = 0;; ++i) {
    if (i == sorted) {
      if (sorted_band < kBands - 1 && sorted < count) {
        extend(kBands - 1);
      } else {  // no more candidates: the target was missed by rounding only
        return top_p_active ? pick(u, sorted) : c[i - 1].id;
      }
    }
    const double w = weights_[i];
    if (i > 0 && w < min_w) {  // the min-p survivors end here
      return top_p_active ? pick(u, i) : c[i - 1].id;
    }
    cum += w;
    if (top_p_active) {
      if (cum >= target) return pick(u, i + 1);
    } else {
      if (cum > target) return c[i].id;
    }
  }
}

}  // namespace m3
