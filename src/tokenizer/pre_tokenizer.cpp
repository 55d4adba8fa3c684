#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "tokenizer/byte_level.h"

namespace m3 {
namespace {

// The GPT-2 pattern HF's ByteLevel uses when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<Regex> re, SplitBehavior behavior, bool invert)
      : re_(std::move(re)), behavior_(behavior), invert_(invert) {}
  void apply(std::vector<std::string>& pieces, RegexScratch& scratch) const override {
    std::vector<std::string> out;
    out.reserve(pieces.size() * 2);
    for (const std::string& p : pieces) split_with_behavior(p, *re_, behavior_, invert_, scratch, out);
    pieces = std::move(out);
  }

 private:
  std::unique_ptr<Regex> re_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& where)
      : add_prefix_space_(add_prefix_space),
        re_(use_regex ? Regex::from_oniguruma(kGpt2Pattern, where + ": ByteLevel pattern") : nullptr) {}
  void apply(std::vector<std::string>& pieces, RegexScratch& scratch) const override {
    std::vector<std::string> split;
    split.reserve(pieces.size() * 2);
    for (std::string& p : pieces) {
      if (add_prefix_space_ && !p.empty() && p[0] != ' ') p.insert(p.begin(), ' ');
      if (re_) {
        split_with_behavior(p, *re_, SplitBehavior::kIsolated, false, scratch, split);
      } else if (!p.empty()) {
        split.push_back(std::move(p));
      }
    }
    // Then every byte becomes its printable stand-in.
    pieces.clear();
    pieces.reserve(split.size());
    for (const std::string& s : split) {
      std::string mapped;
      mapped.reserve(s.size() * 2);
      byte_level::encode(s, mapped);
      pieces.push_back(std::move(mapped));
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> re_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void apply(std::vector<std::string>& pieces, RegexScratch& scratch) const override {
    for (const auto& s : steps_) s->apply(pieces, scratch);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

void split_with_behavior(const std::string& text, const Regex& re, SplitBehavior behavior, bool invert,
                         RegexScratch& scratch, std::vector<std::string>& out) {
  if (text.empty()) return;
  // HF's Pattern::find_matches: the text as alternating (span, is_match) parts.
  std::vector<Regex::Span> found;
  re.find_all(text, scratch, found);
  struct Part {
    std::size_t begin, end;
    bool is_match;
  };
  std::vector<Part> parts;
  parts.reserve(found.size() * 2 + 1);
  std::size_t prev = 0;
  for (const auto& [s, e] : found) {
    if (prev != s) parts.push_back({prev, s, invert});
    parts.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size()) parts.push_back({prev, text.size(), invert});

  // Then HF's SplitDelimiterBehavior: which spans are kept, and which are glued together.
  std::vector<Part> spans;  // is_match here means "remove"
  spans.reserve(parts.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Part& p : parts) spans.push_back({p.begin, p.end, false});
      break;
    case SplitBehavior::kRemoved:
      spans = parts;
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !spans.empty()) {
          spans.back().end = p.end;
        } else {
          spans.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !spans.empty()) {
          spans.back().end = p.end;
        } else {
          spans.push_back({p.begin, p.end, false});
        }
        previous_match = p.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !spans.empty()) {
          spans.back().begin = it->begin;
        } else {
          spans.push_back({it->begin, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(spans.begin(), spans.end());
      break;
    }
  }
  for (const Part& s : spans) {
    if (!s.is_match && s.end > s.begin) out.push_back(text.substr(s.begin, s.end - s.begin));
  }
}

std::unique_ptr<PreTokenizer> make_split_pre_tokenizer(std::unique_ptr<Regex> pattern, SplitBehavior behavior,
                                                       bool invert) {
  return std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert);
}

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex,
                                                            const std::string& where) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex, where);
}

std::unique_ptr<PreTokenizer> make_sequence_pre_tokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) {
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

}  // namespace m3
