// Fuzzes loading tokenizer.json (src/tokenizer/tokenizer_json and the parts it builds: BPE
// model, added tokens, normalizers, pre-tokenizers with their regexes, post-processors). A file
// that loads is then used once: a fixed text is encoded and decoded, and a few ids are looked up.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "tokenizer/tokenizer.h"

namespace {

// ASCII words, digits, spaces and newlines, accents, CJK, an emoji, and an added token's look.
constexpr std::string_view kSample =
    "Hello world!  It's 2024-11-22, 3.14 \xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80\n\n"
    "\t<|endoftext|> don't <s></s>[CLS]";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string kSource = "tokenizer.json";
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<m3::Tokenizer> tok;
  try {
    tok = m3::Tokenizer::from_json(text, kSource);
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, kSource + ": ");
    return 0;
  }
  const int32_t vocab = tok->vocab_size();
  FUZZ_CHECK(vocab >= 0);
  for (const bool add_special : {false, true}) {
    std::vector<int32_t> ids;
    try {
      ids = tok->encode(kSample, add_special);
    } catch (const m3::Error& e) {
      fuzz::check_rejection(e, kSource + ": ");  // e.g. an unk_token missing from the vocab
      continue;
    }
    for (const int32_t id : ids) FUZZ_CHECK(id >= 0 && id < vocab);
    FUZZ_CHECK(fuzz::is_valid_utf8(tok->decode(ids, false)));
    FUZZ_CHECK(fuzz::is_valid_utf8(tok->decode(ids, true)));
  }
  for (int32_t id : {-1, 0, 1, vocab / 2, vocab - 1, vocab}) {
    (void)tok->token_bytes(id);
    (void)tok->is_special(id);
  }
  if (auto id = tok->token_id("<|endoftext|>")) FUZZ_CHECK(*id >= 0 && *id < vocab);
  return 0;
}
