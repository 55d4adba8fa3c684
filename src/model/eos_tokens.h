// Which token ids end a generation. tokenizer.json does not say; the HF model directory does,
// in generation_config.json (eos_token_id) or tokenizer_config.json (eos_token).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace m3 {

class Tokenizer;

// Looks in dir/generation_config.json, then dir/tokenizer_config.json, then falls back to the
// tokenizer's special tokens with a conventional end-of-text name. Throws m3::Error(M3_ERR_FORMAT)
// for a malformed file or an id outside [0, vocab_size).
std::vector<int32_t> find_eos_tokens(const std::string& dir, const Tokenizer* tokenizer, int64_t vocab_size);

}  // namespace m3
