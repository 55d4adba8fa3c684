// Fuzzes the tokenizer's encode and decode paths (src/tokenizer) on arbitrary bytes with the
// bundled tokenizers: the test tokenizers and the bundled model's. The first input byte picks
// the tokenizer and the mode; the rest is the text, or for decode the token ids (int32, LE).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "tokenizer/tokenizer.h"

namespace {

const std::vector<std::unique_ptr<m3::Tokenizer>>& bundled_tokenizers() {
  static const auto tokenizers = [] {
    std::vector<std::unique_ptr<m3::Tokenizer>> t;
    for (const char* path : {"/tests/data/tokenizers/tiny_301.json", "/tests/data/tokenizers/bytes_300_eot.json",
                             "/models/brown-mimo-6m/tokenizer.json"}) {
      t.push_back(m3::Tokenizer::from_file(std::string(MAMBA3RT_SOURCE_DIR) + path));
    }
    return t;
  }();
  return tokenizers;
}

// Encode: valid UTF-8 must encode, and decoding gives the text back exactly (these byte-level
// tokenizers have no normalizer and their post-processors add nothing); invalid UTF-8 must be
// refused as an invalid argument.
void check_encode(const m3::Tokenizer& tok, std::string_view text, bool add_special) {
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, add_special);
  } catch (const m3::Error& e) {
    FUZZ_CHECK(!fuzz::is_valid_utf8(text));
    FUZZ_CHECK(e.status() == M3_ERR_INVALID_ARGUMENT);
    return;
  }
  FUZZ_CHECK(fuzz::is_valid_utf8(text));
  std::string bytes;
  for (const int32_t id : ids) {
    FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
    bytes += tok.token_bytes(id);
  }
  FUZZ_CHECK(bytes == text);
  FUZZ_CHECK(tok.decode(ids, false) == text);
  FUZZ_CHECK(fuzz::is_valid_utf8(tok.decode(ids, true)));
}

// Decode: any ids (negative, unknown, special) give valid UTF-8.
void check_decode(const m3::Tokenizer& tok, const uint8_t* data, std::size_t size, bool skip_special) {
  std::vector<int32_t> ids(size / sizeof(int32_t));
  if (!ids.empty()) std::memcpy(ids.data(), data, ids.size() * sizeof(int32_t));
  FUZZ_CHECK(fuzz::is_valid_utf8(tok.decode(ids, skip_special)));
  for (const int32_t id : ids) {
    (void)tok.token_bytes(id);
    if (tok.is_special(id)) FUZZ_CHECK(id >= 0 && id < tok.vocab_size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& tokenizers = bundled_tokenizers();
  const uint8_t mode = data[0];
  const m3::Tokenizer& tok = *tokenizers[(mode & 3u) % tokenizers.size()];
  const bool flag = (mode & 4u) != 0;  // add_special_tokens, or skip_special_tokens for decode
  if (mode & 8u) {
    check_decode(tok, data + 1, size - 1, flag);
  } else {
    check_encode(tok, std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), flag);
  }
  return 0;
}
