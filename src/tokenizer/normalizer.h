// Normalizers: text -> text before pre-tokenization. Supported: NFC, NFD, NFKC, NFKD,
// Lowercase (per-character full lowercase mapping, as Rust's char::to_lowercase), Strip,
// Prepend, Replace, Sequence.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace m3 {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text, RegexScratch& scratch) const = 0;
};

enum class UnicodeForm { kNFC, kNFD, kNFKC, kNFKD };

std::unique_ptr<Normalizer> make_unicode_normalizer(UnicodeForm form);
std::unique_ptr<Normalizer> make_lowercase_normalizer();
std::unique_ptr<Normalizer> make_strip_normalizer(bool left, bool right);
std::unique_ptr<Normalizer> make_prepend_normalizer(std::string prefix);
std::unique_ptr<Normalizer> make_replace_normalizer(std::unique_ptr<Regex> pattern, std::string content);
std::unique_ptr<Normalizer> make_sequence_normalizer(std::vector<std::unique_ptr<Normalizer>> steps);

// Exposed for tests.
std::string unicode_normalize(std::string_view text, UnicodeForm form);
std::string lowercase(std::string_view text);

}  // namespace m3
