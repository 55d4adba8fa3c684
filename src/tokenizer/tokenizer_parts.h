// The pieces of a loaded tokenizer.json (parsed by tokenizer_json.cpp, run by tokenizer.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace m3 {

struct TokenizerParts {
  std::string source;
  std::unique_ptr<Normalizer> normalizer;      // null: none
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // null: none
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<AddedVocabulary> added;
  std::unique_ptr<PostProcessor> post_processor;  // never null
  // What decode shows for an added token: its content, normalized when the token is.
  std::unordered_map<int32_t, std::string> added_display;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> added_by_content;
  std::unordered_set<std::string> special_contents;  // HF's special_tokens_set
  int32_t vocab_size = 0;
};

// Throws m3::Error: M3_ERR_FORMAT (malformed JSON/structure), M3_ERR_UNSUPPORTED.
TokenizerParts parse_tokenizer_json(std::string_view json_text, const std::string& source);

}  // namespace m3
