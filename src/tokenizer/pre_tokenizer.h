// Pre-tokenizers: split normalized text into pre-tokens the model encodes one by one.
// Supported: Split (String or Regex pattern, every SplitDelimiterBehavior, invert), ByteLevel
// (add_prefix_space, use_regex with the GPT-2 pattern), Sequence.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/regex.h"

namespace m3 {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `pieces` by their splits; empty pieces are dropped (as HF's PreTokenizedString does).
  virtual void apply(std::vector<std::string>& pieces, RegexScratch& scratch) const = 0;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(std::unique_ptr<Regex> pattern, SplitBehavior behavior,
                                                       bool invert);
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex,
                                                            const std::string& where);
std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps);

// Splits `text` at the matches of `re` (HF's NormalizedString::split); appends non-empty
// pieces to `out`. Shared with the Split pre-tokenizer and tests.
void split_with_behavior(const std::string& text, const Regex& re, SplitBehavior behavior, bool invert,
                         RegexScratch& scratch, std::vector<std::string>& out);

}  // namespace m3
