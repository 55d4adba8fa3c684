// Regular expressions for pre-tokenizer/normalizer patterns. HF compiles them with Oniguruma
// (Ruby syntax); we use PCRE2 (UTF + UCP, JIT when available) after rewriting the few escapes
// whose Unicode meaning differs (\s, \w, \h and their negations), and iterate matches the way
// the `onig` crate's find_iter does.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace m3 {

// Per-call matching state (PCRE2 match data and JIT stack): regexes are shared between
// threads, this is not.
class RegexScratch {
 public:
  RegexScratch();
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;
  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

class Regex {
 public:
  // `where` prefixes error messages (M3_ERR_UNSUPPORTED for constructs we cannot translate,
  // M3_ERR_FORMAT for patterns that do not compile).
  static std::unique_ptr<Regex> from_oniguruma(std::string_view pattern, const std::string& where);
  static std::unique_ptr<Regex> literal(std::string_view text, const std::string& where);
  // A pattern already in PCRE2 syntax (our own patterns).
  static std::unique_ptr<Regex> from_pcre2(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  using Span = std::pair<std::size_t, std::size_t>;
  // Appends the matches in `text` (valid UTF-8) to `out`, as onig's find_iter yields them
  // (non-overlapping, leftmost-first, empty matches right after a match skipped).
  void find_all(std::string_view text, RegexScratch& scratch, std::vector<Span>& out) const;

  // Whether the pattern matches at the very start of `text`.
  bool matches_at_start(std::string_view text, RegexScratch& scratch) const;

 private:
  Regex(const std::string& pcre2_pattern, const std::string& where);
  struct Code;
  std::unique_ptr<Code> code_;
  std::string where_;
};

// The translation of an Oniguruma pattern to PCRE2 syntax (exposed for tests).
std::string oniguruma_to_pcre2(std::string_view pattern, const std::string& where);

}  // namespace m3
