#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

// The full-vocabulary scans work on blocks of kBlock logits with fixed-size inner loops,
// which compilers vectorize; most blocks are dismissed by one test.
constexpr size_t kBlock = 16;

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

[[noreturn]] void invalid(const std::string& what) {
  fail(M3_ERR_INVALID_ARGUMENT, "sampler: " + what);
}

float nan_to_neg_inf(float x) { return std::isnan(x) ? kNegInf : x; }

// out[i] = in[i], NaN -> -inf. The buffers never overlap (in is the caller's, out ours);
// saying so lets the compiler vectorize without a runtime overlap check.
void copy_sanitized(const float* __restrict in, float* __restrict out, size_t n) {
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock)
    for (size_t j = 0; j < kBlock; ++j) out[i + j] = nan_to_neg_inf(in[i + j]);
  for (; i < n; ++i) out[i] = nan_to_neg_inf(in[i]);
}

// Whether any of p[0 .. kBlock) is > bar, or >= bar when or_equal (always false for NaN).
// This test runs on every block of the vocabulary, so it gets SSE2 where there is SSE2
// (compilers vectorize the plain loop at some optimisation levels only); the result is the
// same either way.
#if defined(__SSE2__)
inline bool block_any_above(const float* p, float bar, bool or_equal) {
  static_assert(kBlock == 16);
  const __m128 b = _mm_set1_ps(bar);
  const __m128 x0 = _mm_loadu_ps(p), x1 = _mm_loadu_ps(p + 4);
  const __m128 x2 = _mm_loadu_ps(p + 8), x3 = _mm_loadu_ps(p + 12);
  __m128 any;
  if (or_equal) {
    any = _mm_or_ps(_mm_or_ps(_mm_cmpge_ps(x0, b), _mm_cmpge_ps(x1, b)),
                    _mm_or_ps(_mm_cmpge_ps(x2, b), _mm_cmpge_ps(x3, b)));
  } else {
    any = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(x0, b), _mm_cmpgt_ps(x1, b)),
                    _mm_or_ps(_mm_cmpgt_ps(x2, b), _mm_cmpgt_ps(x3, b)));
  }
  return _mm_movemask_ps(any) != 0;
}
#else
inline bool block_any_above(const float* p, float bar, bool or_equal) {
  int any = 0;
  if (or_equal) {
    for (size_t j = 0; j < kBlock; ++j) any |= p[j] >= bar;
  } else {
    for (size_t j = 0; j < kBlock; ++j) any |= p[j] > bar;
  }
  return any != 0;
}
#endif

inline float max2(float a, float b) { return a > b ? a : b; }

// Maximum of a[0 .. n) (no NaN in a), as a tree of independent comparisons per block.
float max_of(const float* a, size_t n) {
  float best = kNegInf;
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    const float* p = a + i;
    float m[8];
    for (size_t j = 0; j < 8; ++j) m[j] = max2(p[j], p[j + 8]);
    for (size_t j = 0; j < 4; ++j) m[j] = max2(m[j], m[j + 4]);
    best = max2(best, max2(max2(m[0], m[2]), max2(m[1], m[3])));
  }
  for (; i < n; ++i) best = max2(best, a[i]);
  return best;
}

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
  touched_.assign(n, 0);
  overrides_.reserve(bias_.size() + distinct_.capacity());
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
//
// The adjusted logit of token i is: the input logit (NaN -> -inf), plus its logit_bias, then
// the penalties, NaN -> -inf again. Only the tokens with a bias or in the penalty window
// ("touched" ones) differ from the input. The greedy and top-k paths read the caller's
// logits directly and take the touched tokens from adjusted_ (computed for them only);
// sample_full, which visits every token several times, materialises adjusted_ in full.

void Sampler::adjust_touched(const float* logits, bool full) {
  float* a = adjusted_.data();
  overrides_.clear();
  for (const auto& [id, value] : bias_) {  // bias_ has one entry per id
    a[id] = nan_to_neg_inf(logits[id]) + value;
    touched_[id] = 1;
    overrides_.push_back(id);
  }
  if (penalties_active_) {
    const float rp = params_.repeat_penalty;
    const float presence = params_.presence_penalty;
    const float frequency = params_.frequency_penalty;
    for (int32_t t : distinct_) {  // each distinct token of the window once, after its bias
      if (!touched_[t]) {
        a[t] = nan_to_neg_inf(logits[t]);
        touched_[t] = 1;
        overrides_.push_back(t);
      }
      float x = a[t];
      if (rp != 1.0f) x = x > 0.0f ? x / rp : x * rp;
      x -= static_cast<float>(counts_[t]) * frequency + presence;
      a[t] = x;
    }
  }
  for (int32_t t : overrides_) {
    a[t] = nan_to_neg_inf(a[t]);  // e.g. -inf + inf, or inf - inf
    if (full) touched_[t] = 0;    // sample_full reads adjusted_ only
  }
}

void Sampler::clear_touched() {
  for (int32_t t : overrides_) touched_[t] = 0;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.size() < static_cast<size_t>(n_vocab_))
    invalid("sample: " + std::to_string(logits.size()) + " logits given, n_vocab is " +
            std::to_string(n_vocab_));
  const float* in = logits.data();
  const bool greedy = !(params_.temperature > 0.0f);

  if (greedy || (params_.top_k > 0 && params_.top_k < n_vocab_)) {
    adjust_touched(in, false);
    const size_t count = select_best(in, greedy ? 1 : static_cast<size_t>(params_.top_k));
    clear_touched();
    // Greedy: the argmax, ties to the lowest id; no random number is drawn.
    if (greedy) return count > 0 ? candidates_[0].id : 0;  // 0: every logit is -inf
    const double u = rng_.next_double();  // exactly one draw per non-greedy call
    if (count == 0) return 0;
    return sample_top_k(u, count);
  }

  const double u = rng_.next_double();
  const size_t n = static_cast<size_t>(n_vocab_);
  copy_sanitized(in, adjusted_.data(), n);
  adjust_touched(in, true);
  const float max_logit = max_of(adjusted_.data(), n);
  if (max_logit == kNegInf) return 0;  // nothing has probability > 0: the argmax, id 0
  return sample_full(u, max_logit);
}

// The k best tokens (canonical order: adjusted logit desc, id asc; -inf never) into
// candidates_[0 .. count), sorted; returns count = min(k, number of tokens > -inf).
//
// A buffer of up to 2k candidates is cut to the k best with nth_element whenever it fills,
// and the k-th best becomes the admission bar. Each cut costs O(k) and frees k slots, so
// the scan is O(V) amortized, and after the first cuts almost every block of the input is
// dismissed by a single vectorised test. Admission compares (logit, id) in full, since the
// touched tokens are admitted first, out of id order.
size_t Sampler::select_best(const float* logits, size_t k) {
  const size_t n = static_cast<size_t>(n_vocab_);
  Candidate* c = candidates_.data();
  const uint8_t* touched = touched_.data();
  const size_t limit = std::min(n, 2 * k);
  size_t count = 0;
  float bar = kNegInf;  // with bar_id -1: nothing at -inf is admitted
  int64_t bar_id = -1;
  auto above_bar = [&](float x, int64_t id) { return x > bar || (x == bar && id < bar_id); };
  auto admit = [&](float x, int32_t id) {  // x is above the bar
    c[count++] = Candidate{x, id};
    if (count == limit && count > k) {
      std::nth_element(c, c + (k - 1), c + count, Better{});
      bar = c[k - 1].logit;
      bar_id = c[k - 1].id;
      count = k;
    }
  };
  for (int32_t t : overrides_) {
    const float x = adjusted_[static_cast<size_t>(t)];
    if (above_bar(x, t)) admit(x, t);
  }
  // NaN is never above the bar; touched tokens were admitted above, with adjusted logits.
  auto scan = [&](size_t from, size_t to) {
    for (size_t j = from; j < to; ++j) {
      const float x = logits[j];
      if (above_bar(x, static_cast<int64_t>(j)) && !touched[j]) admit(x, static_cast<int32_t>(j));
    }
  };
  size_t at = 0;
  for (; at + kBlock <= n; at += kBlock) {
    // A token equal to the bar can only rank above it if its id is lower than the bar's.
    if (block_any_above(logits + at, bar, bar_id > static_cast<int64_t>(at))) scan(at, at + kBlock);
  }
  scan(at, n);

  if (count > k) {
    std::nth_element(c, c + (k - 1), c + count, Better{});
    count = k;
  }
  std::sort(c, c + count, Better{});
  return count;
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

// candidates_[0 .. count) are the top-k, sorted, count >= 1: softmax over them (top-k
// renormalises), then top-p, min-p, draw. O(k).
int32_t Sampler::sample_top_k(double u, size_t count) {
  const Candidate* c = candidates_.data();
  const float max_logit = c[0].logit;
  const WeightFn weight{static_cast<double>(max_logit), inv_temperature_, max_logit == kPosInf};
  double total = 0.0;
  for (size_t i = 0; i < count; ++i) total += (weights_[i] = weight(c[i].logit));

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
