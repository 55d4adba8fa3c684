#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "common/error.h"
#include "common/quote.h"
#include "tokenizer/unicode_props.h"
#include "tokenizer/utf8.h"

namespace m3 {

void TokenTrie::insert(std::string_view pattern, int32_t value) {
  int32_t node = 0;
  for (const char ch : pattern) {
    const auto b = static_cast<unsigned char>(ch);
    int32_t next = child(node, b);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_.emplace_back();
      auto& edges = nodes_[static_cast<std::size_t>(node)].edges;
      edges.insert(std::lower_bound(edges.begin(), edges.end(), std::make_pair(b, int32_t{-1})), {b, next});
    }
    node = next;
  }
  nodes_[static_cast<std::size_t>(node)].value = value;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

int32_t TokenTrie::child(int32_t node, unsigned char b) const {
  const auto& edges = nodes_[static_cast<std::size_t>(node)].edges;
  auto it = std::lower_bound(edges.begin(), edges.end(), std::make_pair(b, int32_t{-1}));
  return it != edges.end() && it->first == b ? it->second : -1;
}

int32_t TokenTrie::find(std::string_view text, std::size_t from, std::size_t& start, std::size_t& end) const {
  if (empty()) return -1;
  for (std::size_t p = from; p < text.size(); ++p) {
    if (!first_byte_[static_cast<unsigned char>(text[p])]) continue;
    int32_t node = 0, best = -1;
    for (std::size_t q = p; q < text.size(); ++q) {
      node = child(node, static_cast<unsigned char>(text[q]));
      if (node < 0) break;
      if (const int32_t v = nodes_[static_cast<std::size_t>(node)].value; v >= 0) {
        best = v;
        end = q + 1;
      }
    }
    if (best >= 0) {
      start = p;
      return best;
    }
  }
  return -1;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns,
                                 const std::string& where)
    : tokens_(std::move(tokens)) {
  int32_t max_id = -1;
  for (const AddedToken& t : tokens_) max_id = std::max(max_id, t.id);
  index_of_id_.assign(static_cast<std::size_t>(max_id + 1), -1);
  // Patterns must be unique within a group (HF's matcher refuses duplicates).
  std::vector<std::pair<std::string, bool>> seen;
  for (std::size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    index_of_id_[static_cast<std::size_t>(t.id)] = static_cast<int32_t>(k);
    const std::string& pat = patterns[k];
    if (pat.empty()) continue;  // a token normalized to nothing can never match
    TokenTrie& trie = t.normalized ? normalized_ : raw_;
    std::size_t s = 0, e = 0;
    if (trie.find(pat, 0, s, e) >= 0 && s == 0 && e == pat.size()) {
      fail(M3_ERR_FORMAT, where + ": added tokens " + quote_for_message(pat) + " match the same text twice");
    }
    trie.insert(pat, t.id);
  }
  word_char_ = Regex::from_pcre2(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}])", where);
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= index_of_id_.size()) return nullptr;
  const int32_t k = index_of_id_[static_cast<std::size_t>(id)];
  return k < 0 ? nullptr : &tokens_[static_cast<std::size_t>(k)];
}

void AddedVocabulary::split(std::vector<Piece>& pieces, bool normalized_group, RegexScratch& scratch) const {
  const TokenTrie& trie = normalized_group ? normalized_ : raw_;
  std::vector<Piece> out;
  out.reserve(pieces.size() + 8);
  for (Piece& p : pieces) {
    if (p.id >= 0 || trie.empty()) {
      if (p.id >= 0 || !p.text.empty()) out.push_back(std::move(p));
    } else {
      split_one(p.text, trie, out, scratch);
    }
  }
  pieces = std::move(out);
}

void AddedVocabulary::split_one(const std::string& text, const TokenTrie& trie, std::vector<Piece>& out,
                                RegexScratch& scratch) const {
  // Rust regex \w on one character (ASCII without PCRE2).
  auto is_word = [&](std::size_t at) {
    const auto b = static_cast<unsigned char>(text[at]);
    if (b < 0x80) return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || b == '_';
    return word_char_->matches_at_start(std::string_view(text).substr(at, utf8::seq_len(b)), scratch);
  };
  auto char_start_before = [&](std::size_t at) {
    std::size_t s = at - 1;
    while (s > 0 && (static_cast<unsigned char>(text[s]) & 0xC0) == 0x80) --s;
    return s;
  };

  std::size_t start_offset = 0;  // end of the last emitted token
  std::size_t pos = 0;           // where the matcher resumes (after the last raw match)
  std::size_t ms = 0, me = 0;
  int32_t id;
  while ((id = trie.find(text, pos, ms, me)) >= 0) {
    pos = me;
    const AddedToken& tok = *by_id(id);
    std::size_t start = ms, stop = me;
    if (tok.single_word) {
      const bool space_before = start == 0 || !is_word(char_start_before(start));
      const bool space_after = stop == text.size() || !is_word(stop);
      if (!space_before || !space_after) continue;
    }
    if (tok.lstrip) {
      std::size_t s = start;
      while (s > 0) {
        const std::size_t c = char_start_before(s);
        std::size_t j = c;
        if (!unicode::is_white_space(utf8::next(text, j))) break;
        s = c;
      }
      start = std::max(s, start_offset);
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        std::size_t j = stop;
        if (!unicode::is_white_space(utf8::next(text, j))) break;
        stop = j;
      }
    }
    if (start_offset < start) out.push_back(Piece{text.substr(start_offset, start - start_offset), -1});
    out.push_back(Piece{text.substr(start, stop - start), id});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back(Piece{text.substr(start_offset), -1});
}

}  // namespace m3
