#include "tokenizer/normalizer.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "tokenizer/unicode_props.h"
#include "tokenizer/unicode_tables.h"
#include "tokenizer/utf8.h"

namespace m3 {
namespace {

namespace ut = unicode_tables;

bool all_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// Binary search in a table of rows of `width` uint32 whose first column is sorted.
const uint32_t* find_row(const uint32_t* table, std::size_t rows, std::size_t width, uint32_t key) {
  std::size_t lo = 0, hi = rows;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t k = table[mid * width];
    if (k == key) return table + mid * width;
    if (k < key) lo = mid + 1; else hi = mid;
  }
  return nullptr;
}

uint32_t combining_class(char32_t c) {
  if (c < 0x300) return 0;
  std::size_t lo = 0, hi = ut::kCccRunCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t* r = ut::kCccRuns + mid * 3;
    if (c < r[0]) hi = mid;
    else if (c > r[1]) lo = mid + 1;
    else return r[2];
  }
  return 0;
}

// Hangul syllables decompose and compose algorithmically (Unicode ch. 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t c, bool compat, std::u32string& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount != 0) out += kTBase + s % kTCount;
    return;
  }
  const uint32_t* row = compat ? find_row(ut::kCompat, ut::kCompatCount, 3, c) : nullptr;
  if (row == nullptr) row = find_row(ut::kCanonical, ut::kCanonicalCount, 3, c);
  if (row == nullptr) {
    out += c;
    return;
  }
  for (uint32_t k = 0; k < row[2]; ++k) out += static_cast<char32_t>(ut::kPool[row[1] + k]);
}

std::optional<char32_t> compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  std::size_t lo = 0, hi = ut::kComposeCount;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const uint32_t* r = ut::kCompose + mid * 3;
    if (r[0] == a && r[1] == b) return static_cast<char32_t>(r[2]);
    if (r[0] < a || (r[0] == a && r[1] < b)) lo = mid + 1; else hi = mid;
  }
  return std::nullopt;
}

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  std::string normalize(std::string_view text, RegexScratch&) const override { return unicode_normalize(text, form_); }

 private:
  UnicodeForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string_view text, RegexScratch&) const override { return lowercase(text); }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text, RegexScratch&) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        std::size_t j = begin;
        if (!unicode::is_white_space(utf8::next(text, j))) break;
        begin = j;
      }
    }
    if (right_) {
      while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        std::size_t j = start;
        if (!unicode::is_white_space(utf8::next(text, j))) break;
        end = start;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_, right_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view text, RegexScratch&) const override {
    if (text.empty()) return std::string();
    return prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> re, std::string content) : re_(std::move(re)), content_(std::move(content)) {}
  std::string normalize(std::string_view text, RegexScratch& scratch) const override {
    std::vector<Regex::Span> found;
    re_->find_all(text, scratch, found);
    std::string out;
    std::size_t last = 0;
    for (const auto& [s, e] : found) {
      out.append(text.substr(last, s - last));
      out += content_;
      last = e;
    }
    out.append(text.substr(last));
    return out;
  }

 private:
  std::unique_ptr<Regex> re_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string_view text, RegexScratch& scratch) const override {
    std::string s(text);
    for (const auto& step : steps_) s = step->normalize(s, scratch);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

std::string unicode_normalize(std::string_view text, UnicodeForm form) {
  if (all_ascii(text)) return std::string(text);  // ASCII is invariant under every form
  const bool compat = form == UnicodeForm::kNFKC || form == UnicodeForm::kNFKD;
  const bool compose = form == UnicodeForm::kNFC || form == UnicodeForm::kNFKC;
  std::u32string buf;
  buf.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) decompose(utf8::next(text, i), compat, buf);

  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < buf.size();) {
    if (combining_class(buf[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < buf.size() && combining_class(buf[j]) != 0) ++j;
    std::stable_sort(buf.begin() + static_cast<std::ptrdiff_t>(i), buf.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }

  if (compose && !buf.empty()) {
    // Canonical composition (UAX #15): combine each character with the last starter unless a
    // character in between blocks it.
    std::size_t starter = 0;
    uint32_t last_class = combining_class(buf[0]);
    bool have_starter = last_class == 0;
    if (!have_starter) last_class = 256;
    std::size_t w = 1;
    for (std::size_t r = 1; r < buf.size(); ++r) {
      const char32_t c = buf[r];
      const uint32_t cls = combining_class(c);
      std::optional<char32_t> composite;
      if (have_starter && (last_class < cls || last_class == 0)) composite = compose_pair(buf[starter], c);
      if (composite) {
        buf[starter] = *composite;
        continue;
      }
      if (cls == 0) {
        starter = w;
        have_starter = true;
      }
      last_class = cls;
      buf[w++] = c;
    }
    buf.resize(w);
  }
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : buf) utf8::append(out, c);
  return out;
}

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++i;
      continue;
    }
    const char32_t c = utf8::next(text, i);
    if (const uint32_t* r = find_row(ut::kLowerSingle, ut::kLowerSingleCount, 2, c)) {
      utf8::append(out, r[1]);
    } else if (const uint32_t* m = find_row(ut::kLowerMulti, ut::kLowerMultiCount, 5, c)) {
      for (uint32_t k = 0; k < m[1]; ++k) utf8::append(out, m[2 + k]);
    } else {
      utf8::append(out, c);
    }
  }
  return out;
}

std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form) { return std::make_unique<UnicodeNormalizer>(form); }
std::unique_ptr<Normalizer> make_lowercase_normalizer() { return std::make_unique<LowercaseNormalizer>(); }
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right) {
  return std::make_unique<StripNormalizer>(left, right);
}
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix) {
  return std::make_unique<PrependNormalizer>(std::move(prefix));
}
std::unique_ptr<Normalizer> make_replace_normalizer(std::unique_ptr<Regex> pattern, std::string content) {
  return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
}
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps) {
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}

}  // namespace m3
