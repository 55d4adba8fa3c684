// A Hugging Face tokenizer.json tokenizer for byte-level BPE models (GPT-2 / GPT-NeoX family,
// Llama-3, and what the HF tokenizers library writes when it trains one).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace m3 {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Parses tokenizer.json. Throws m3::Error: M3_ERR_IO (unreadable file), M3_ERR_FORMAT
  // (malformed JSON or structure), M3_ERR_UNSUPPORTED (a normalizer, pre-tokenizer, model,
  // post-processor or decoder type/setting this implementation does not support; the message
  // names it). `source` names the file in messages.
  static std::unique_ptr<Tokenizer> from_file(const std::string& path);
  static std::unique_ptr<Tokenizer> from_json(std::string_view json_text, const std::string& source);

  // Encodes UTF-8 text exactly as HF tokenizers' `encode(text, add_special_tokens)` does
  // (added/special tokens in the text are split out and matched in both modes).
  // Throws m3::Error(M3_ERR_INVALID_ARGUMENT) for invalid UTF-8, naming the byte offset.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;

  // The raw bytes a token stands for (byte-level decoded: may be part of a UTF-8 character).
  // Added/special tokens give their content. Unknown ids give "".
  virtual std::string token_bytes(int32_t id) const = 0;

  // decode(ids) as HF does with skip_special_tokens; invalid UTF-8 becomes U+FFFD.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  // One more than the largest id (model vocab and added tokens).
  virtual int32_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // Id of a token by its content (vocab entry or added token), if any.
  virtual std::optional<int32_t> token_id(std::string_view content) const = 0;
};

}  // namespace m3
