// m3::Tokenizer for HF tokenizer.json byte-level BPE files: the encode pipeline
// (added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor) and decode.
#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "common/error.h"
#include "common/read_file.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_parts.h"
#include "tokenizer/utf8.h"

namespace m3 {
namespace {

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(TokenizerParts parts) : p_(std::move(parts)) {
    // HF decides "special" by the token's string, so a vocab entry spelled like a special
    // token is skipped by decode(skip_special) too.
    special_.assign(static_cast<std::size_t>(p_.vocab_size), false);
    for (const std::string& content : p_.special_contents) {
      auto id = p_.model->token_to_id(content);
      if (id && !p_.added_display.contains(*id)) special_[static_cast<std::size_t>(*id)] = true;
    }
    for (const auto& [id, display] : p_.added_display) {
      if (p_.special_contents.contains(display)) special_[static_cast<std::size_t>(id)] = true;
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    if (auto bad = utf8::first_invalid(text)) {
      fail(M3_ERR_INVALID_ARGUMENT, p_.source + ": encode: invalid UTF-8 at byte offset " + std::to_string(*bad));
    }
    RegexScratch scratch;
    std::vector<Piece> pieces;
    if (!text.empty()) pieces.push_back(Piece{std::string(text), -1});
    // 1. Added tokens matched on the raw text, 2. the rest normalized, 3. normalized added tokens.
    p_.added->split(pieces, false, scratch);
    if (p_.normalizer) {
      for (Piece& piece : pieces) {
        if (piece.id < 0) piece.text = p_.normalizer->normalize(piece.text, scratch);
      }
    }
    p_.added->split(pieces, true, scratch);

    std::vector<int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    std::vector<std::string> words;
    for (Piece& piece : pieces) {
      if (piece.id >= 0) {
        ids.push_back(piece.id);
        continue;
      }
      if (piece.text.empty()) continue;
      words.clear();
      words.push_back(std::move(piece.text));
      if (p_.pre_tokenizer) p_.pre_tokenizer->apply(words, scratch);
      for (const std::string& w : words) p_.model->tokenize(w, ids);
    }
    p_.post_processor->process(ids, add_special_tokens);
    return ids;
  }

  std::string token_bytes(int32_t id) const override {
    if (auto it = p_.added->by_id(id)) return it->content;
    const std::string* s = p_.model->id_to_token(id);
    return s == nullptr ? std::string() : byte_level::decode_token(*s);
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    // HF: unknown ids are dropped, then the ByteLevel decoder maps every token string (added
    // tokens included) back to bytes, and the result is made valid UTF-8 lossily.
    std::string bytes;
    for (const int32_t id : ids) {
      const std::string* s = token_string(id);
      if (s == nullptr) continue;
      if (skip_special_tokens && is_special(id)) continue;
      bytes += byte_level::decode_token(*s);
    }
    return utf8::to_valid_lossy(bytes);
  }

  int32_t vocab_size() const override { return p_.vocab_size; }

  bool is_special(int32_t id) const override {
    return id >= 0 && id < p_.vocab_size && special_[static_cast<std::size_t>(id)];
  }

  std::optional<int32_t> token_id(std::string_view content) const override {
    if (auto it = p_.added_by_content.find(content); it != p_.added_by_content.end()) return it->second;
    return p_.model->token_to_id(content);
  }

 private:
  // What HF's id_to_token gives: the added token (as displayed) first, then the vocab.
  const std::string* token_string(int32_t id) const {
    if (auto it = p_.added_display.find(id); it != p_.added_display.end()) return &it->second;
    return p_.model->id_to_token(id);
  }

  TokenizerParts p_;
  std::vector<bool> special_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_json(std::string_view json_text, const std::string& source) {
  return std::make_unique<HfTokenizer>(parse_tokenizer_json(json_text, source));
}

// Llama-3's tokenizer.json is 9 MB; a file past this is not a tokenizer.
constexpr std::size_t kMaxTokenizerJsonBytes = std::size_t{1} << 30;

std::unique_ptr<Tokenizer> Tokenizer::from_file(const std::string& path) {
  return from_json(read_whole_file(path, kMaxTokenizerJsonBytes, "tokenizer.json"), path);
}

}  // namespace m3
