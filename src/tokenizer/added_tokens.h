// Added tokens (special or not): matched in the text before normalization/pre-tokenization,
// leftmost then longest, with HF's lstrip / rstrip / single_word rules. Tokens with
// normalized=false are matched on the raw text; normalized ones on each normalized piece.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace m3 {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A run of text still to tokenize (id < 0) or an added token already resolved.
struct Piece {
  std::string text;
  int32_t id = -1;
};

// Leftmost-longest matcher over a set of byte strings.
class TokenTrie {
 public:
  void insert(std::string_view pattern, int32_t value);  // value >= 0; patterns non-empty
  bool empty() const { return nodes_.size() <= 1; }
  // First match starting at or after `from`: sets start/end and returns its value, or -1.
  int32_t find(std::string_view text, std::size_t from, std::size_t& start, std::size_t& end) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> edges;  // sorted by byte
    int32_t value = -1;
  };
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  // `tokens`: the final set (ids already assigned), each with the pattern to match: its content,
  // or for normalized tokens the normalized content. Throws M3_ERR_FORMAT on duplicate patterns.
  AddedVocabulary(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns, const std::string& where);

  // Splits every unresolved piece of `pieces` around the tokens of one group (normalized or
  // not), as HF's AddedVocabulary::find_matches does; drops empty pieces.
  void split(std::vector<Piece>& pieces, bool normalized_group, RegexScratch& scratch) const;
  bool has_group(bool normalized_group) const { return !(normalized_group ? normalized_ : raw_).empty(); }

  const AddedToken* by_id(int32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  void split_one(const std::string& text, const TokenTrie& trie, std::vector<Piece>& out, RegexScratch& scratch) const;

  std::vector<AddedToken> tokens_;
  std::vector<int32_t> index_of_id_;  // id -> index into tokens_, -1 if none (ids may be sparse)
  TokenTrie raw_, normalized_;
  std::unique_ptr<Regex> word_char_;  // Rust regex \w, for single_word
};

}  // namespace m3
