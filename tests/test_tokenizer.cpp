// Tokenizer (HF tokenizer.json byte-level BPE) unit tests. Expected ids come from HF
// tokenizers' rules worked out by hand on tiny vocabularies, not from running this code.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"

namespace {

using json = nlohmann::json;
using Ids = std::vector<int32_t>;

constexpr const char* kFixture300 = "data/tokenizers/bytes_300_eot.json";

// A tokenizer.json skeleton: BPE with the given vocab and merges, no normalizer, the given
// pre-tokenizer (null by default, so BPE sees the raw text).
json make_json(json vocab, json merges, json pre_tokenizer = nullptr) {
  return json{{"version", "1.0"},
              {"truncation", nullptr},
              {"padding", nullptr},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", std::move(pre_tokenizer)},
              {"post_processor", nullptr},
              {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
              {"model",
               {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", std::move(vocab)},
                {"merges", std::move(merges)}}}};
}

json byte_level_pre(bool add_prefix_space, bool use_regex = true) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

json added(int id, const std::string& content, bool special = true, bool lstrip = false, bool rstrip = false,
           bool single_word = false, bool normalized = false) {
  return {{"id", id},           {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip},   {"normalized", normalized}, {"special", special}};
}

std::unique_ptr<m3::Tokenizer> load(const json& j) { return m3::Tokenizer::from_json(j.dump(), "test.json"); }

// The status and message of the error `f` throws.
template <typename F>
std::pair<m3_status, std::string> error_of(F&& f) {
  try {
    f();
  } catch (const m3::Error& e) {
    return {e.status(), e.what()};
  }
  return {M3_OK, ""};
}

std::pair<m3_status, std::string> load_error(const json& j) {
  return error_of([&] { load(j); });
}

// ---------------------------------------------------------------- BPE merges

// Vocab a=0 b=1 c=2 ab=3 bc=4 abc=5.
json abc_vocab() { return {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}}; }

TEST(TokenizerBpe, LowestRankMergesFirst) {
  // (b,c) has rank 0, (a,b) rank 1: "bc" forms first, then (a,bc) -> abc.
  auto t = load(make_json(abc_vocab(), {"b c", "a b", "a bc"}));
  EXPECT_EQ(t->encode("abc", false), (Ids{5}));
  // (a,b) first: ab + c, and no (ab,c) merge exists.
  auto u = load(make_json(abc_vocab(), {"a b", "b c", "a bc"}));
  EXPECT_EQ(u->encode("abc", false), (Ids{3, 2}));
}

TEST(TokenizerBpe, MergesAsPairsEqualLegacyStrings) {
  auto t = load(make_json(abc_vocab(), json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})})));
  EXPECT_EQ(t->encode("abc", false), (Ids{5}));
}

TEST(TokenizerBpe, TiesGoToTheLeftmostPair) {
  // "aaa": (a,a) at positions 0 and 1 tie; the left one merges: [aa, a].
  json vocab = {{"a", 0}, {"aa", 1}, {"aaaa", 2}};
  auto t = load(make_json(vocab, {"a a"}));
  EXPECT_EQ(t->encode("aaa", false), (Ids{1, 0}));
  EXPECT_EQ(t->encode("aaaa", false), (Ids{1, 1}));
  EXPECT_EQ(t->encode("aaaaa", false), (Ids{1, 1, 0}));
  auto u = load(make_json(vocab, {"a a", "aa aa"}));
  EXPECT_EQ(u->encode("aaaa", false), (Ids{2}));
  EXPECT_EQ(u->encode("aaaaaa", false), (Ids{2, 1}));
}

TEST(TokenizerBpe, IgnoreMergesTakesWholeWordsFromTheVocab) {
  // "abc" is in the vocab but no merge path reaches it: only ignore_merges finds it.
  json vocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}};
  json j = make_json(vocab, {"a b"});
  EXPECT_EQ(load(j)->encode("abc", false), (Ids{3, 2}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(load(j)->encode("abc", false), (Ids{4}));
  EXPECT_EQ(load(j)->encode("abca", false), (Ids{3, 2, 0}));  // not a vocab word: merges as usual
}

TEST(TokenizerBpe, UnknownCharactersWithoutUnkAreDropped) {
  // HF adds no symbol for a character outside the vocab, so its neighbours can merge.
  json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}};
  auto t = load(make_json(vocab, {"a b"}));
  EXPECT_EQ(t->encode("azb", false), (Ids{2}));
}

TEST(TokenizerBpe, UnkAndFuseUnk) {
  json vocab = {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"ab", 3}};
  json j = make_json(vocab, {"a b"});
  j["model"]["unk_token"] = "<unk>";
  EXPECT_EQ(load(j)->encode("abzzb", false), (Ids{3, 0, 0, 2}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(load(j)->encode("abzzb", false), (Ids{3, 0, 2}));
  // An unk splits what would otherwise merge.
  EXPECT_EQ(load(j)->encode("azb", false), (Ids{1, 0, 2}));
}

TEST(TokenizerBpe, ByteFallback) {
  json vocab = {{"<unk>", 0}, {"a", 1}, {"<0x7A>", 2}, {"<0xC3>", 3}, {"<0xA9>", 4}};
  json j = make_json(vocab, json::array());
  j["model"]["unk_token"] = "<unk>";
  j["model"]["byte_fallback"] = true;
  EXPECT_EQ(load(j)->encode("az", false), (Ids{1, 2}));
  EXPECT_EQ(load(j)->encode("\xC3\xA9", false), (Ids{3, 4}));  // é = C3 A9
  EXPECT_EQ(load(j)->encode("q", false), (Ids{0}));           // no <0x71>: unk
}

TEST(TokenizerBpe, ContinuingSubwordPrefixAndEndOfWordSuffix) {
  // With prefix "##", a non-initial character is looked up as "##c", and merge (a, ##b) makes "ab".
  json j = make_json({{"a", 0}, {"##b", 1}, {"ab", 2}}, {"a ##b"});
  j["model"]["continuing_subword_prefix"] = "##";
  EXPECT_EQ(load(j)->encode("ab", false), (Ids{2}));
  EXPECT_EQ(load(j)->encode("b", false), (Ids{}));  // a first "b" has no prefix and is unknown
  json k = make_json({{"a", 0}, {"b</w>", 1}, {"ab</w>", 2}, {"b", 3}}, {"a b</w>"});
  k["model"]["end_of_word_suffix"] = "</w>";
  EXPECT_EQ(load(k)->encode("ab", false), (Ids{2}));
  EXPECT_EQ(load(k)->encode("bb", false), (Ids{3, 1}));
  // Empty strings (what HF's ByteLevelBPETokenizer writes) are the same as none.
  json e = make_json(abc_vocab(), {"b c", "a b", "a bc"});
  e["model"]["continuing_subword_prefix"] = "";
  e["model"]["end_of_word_suffix"] = "";
  EXPECT_EQ(load(e)->encode("abc", false), (Ids{5}));
}

// ---------------------------------------------------------------- byte-level pre-tokenizer

// Byte-level vocab: Ġ is the space byte.
json small_byte_vocab() {
  return {{"a", 0}, {"b", 1}, {"Ġ", 2}, {"ab", 3}, {"Ġa", 4}, {"Ġab", 5}, {"'", 6}, {"s", 7}, {"'s", 8},
          {"1", 9}, {"2", 10}, {"!", 11}, {"Ċ", 12}, {"<", 13}, {">", 14}, {"x", 15}, {"Ã", 16}, {"©", 17}, {"Ã©", 18}, {"bĠ", 19}};
}
// "b Ġ" only ever applies when no regex separates a word from the space after it.
json small_byte_merges() { return {"Ġ a", "a b", "Ġa b", "' s", "Ã ©", "b Ġ"}; }

TEST(TokenizerByteLevel, Gpt2RegexAndByteMapping) {
  auto t = load(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)));
  // "ab ab" -> "ab" | " ab" -> "ab" "Ġab".
  EXPECT_EQ(t->encode("ab ab", false), (Ids{3, 5}));
  // Contraction split: "ab" | "'s".
  EXPECT_EQ(t->encode("ab's", false), (Ids{3, 8}));
  // Digits: " 12" is one pre-token but has no merges: Ġ 1 2.
  EXPECT_EQ(t->encode("a 12!", false), (Ids{0, 2, 9, 10, 11}));
  // Whitespace: "a  ab" -> "a" | " " | " ab" (\s+(?!\S) leaves the last space to the word).
  EXPECT_EQ(t->encode("a  ab", false), (Ids{0, 2, 5}));
  // Newline is byte 0x0A -> Ċ.
  EXPECT_EQ(t->encode("a\n", false), (Ids{0, 12}));
  // é is C3 A9 -> "Ã©", merged.
  EXPECT_EQ(t->encode("\xC3\xA9", false), (Ids{18}));
}

TEST(TokenizerByteLevel, AddPrefixSpace) {
  auto t = load(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(true)));
  EXPECT_EQ(t->encode("ab", false), (Ids{5}));
  EXPECT_EQ(t->encode(" ab", false), (Ids{5}));  // already starts with a space: nothing added
}

TEST(TokenizerByteLevel, WithoutRegexTheWholeTextIsOneWord) {
  // With the regex "b " is "b" | " "; without, it is one pre-token and (b, Ġ) merges.
  EXPECT_EQ(load(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)))->encode("b ", false), (Ids{1, 2}));
  auto t = load(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false, false)));
  EXPECT_EQ(t->encode("b ", false), (Ids{19}));
  // "ab ab": a b Ġ a b; (Ġ,a) rank 0, then (a,b) at 0, then (Ġa,b): ab Ġab. (b,Ġ) never gets a turn.
  EXPECT_EQ(t->encode("ab ab", false), (Ids{3, 5}));
}

// ---------------------------------------------------------------- added tokens

json with_added(json j, json tokens) {
  j["added_tokens"] = std::move(tokens);
  return j;
}

TEST(TokenizerAdded, SplitOutInBothModesAndLongestWins) {
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)),
                      {added(20, "<x>"), added(21, "<x>a")});
  auto t = load(j);
  EXPECT_EQ(t->encode("ab<x>!ab", false), (Ids{3, 20, 11, 3}));
  EXPECT_EQ(t->encode("ab<x>!ab", true), (Ids{3, 20, 11, 3}));
  // Longest at the leftmost start: "<x>a" beats "<x>", leaving "b".
  EXPECT_EQ(t->encode("<x>ab", false), (Ids{21, 1}));
  EXPECT_EQ(t->encode("ab<x>ab", false), (Ids{3, 21, 1}));
  EXPECT_EQ(t->vocab_size(), 22);
  EXPECT_TRUE(t->is_special(20));
  EXPECT_FALSE(t->is_special(3));
  EXPECT_EQ(t->token_id("<x>a"), 21);
  EXPECT_EQ(t->token_id("Ġab"), 5);
  EXPECT_EQ(t->token_id("nope"), std::nullopt);
}

TEST(TokenizerAdded, LeftmostMatchWinsOverALongerLaterOne) {
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)),
                      {added(20, "a<"), added(21, "<x>")});
  // "a<x>": "a<" starts first and is taken; "x>" is then tokenized normally.
  EXPECT_EQ(load(j)->encode("a<x>", false), (Ids{20, 15, 14}));
}

TEST(TokenizerAdded, LstripAndRstripEatWhitespace) {
  json base = make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false));
  // Plain: "a " | <x> | " b"  ->  a Ġ <x> Ġ b   (" b" is one pre-token, no Ġb token: Ġ b)
  EXPECT_EQ(load(with_added(base, {added(20, "<x>")}))->encode("a <x> b", false), (Ids{0, 2, 20, 2, 1}));
  // lstrip: the space before joins the token.
  EXPECT_EQ(load(with_added(base, {added(20, "<x>", true, true)}))->encode("a <x> b", false), (Ids{0, 20, 2, 1}));
  // rstrip: the space after joins the token.
  EXPECT_EQ(load(with_added(base, {added(20, "<x>", true, false, true)}))->encode("a <x> b", false), (Ids{0, 2, 20, 1}));
  // both, with several spaces (and a tab) around.
  EXPECT_EQ(load(with_added(base, {added(20, "<x>", true, true, true)}))->encode("a \t <x>   b", false), (Ids{0, 20, 1}));
}

TEST(TokenizerAdded, SingleWordNeedsNonWordNeighbours) {
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)),
                      {added(20, "<x>", true, false, false, true)});
  auto t = load(j);
  EXPECT_EQ(t->encode("a <x> b", false), (Ids{0, 2, 20, 2, 1}));
  // Touching a word character on either side: not a match, the text is tokenized normally.
  EXPECT_EQ(t->encode("a<x>", false), (Ids{0, 13, 15, 14}));
  EXPECT_EQ(t->encode("<x>b", false), (Ids{13, 15, 14, 1}));
  EXPECT_EQ(t->encode("!<x>!", false), (Ids{11, 20, 11}));
}

TEST(TokenizerAdded, IdsMustAgreeWithWhatHfAssigns) {
  // HF gives a new added token the next id after the model vocab (20 here), whatever the file says.
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges()), {added(25, "<x>")});
  auto [status, msg] = load_error(j);
  EXPECT_EQ(status, M3_ERR_FORMAT);
  EXPECT_NE(msg.find("would give it id 20"), std::string::npos) << msg;
  // An added token that is also a vocab entry keeps the vocab id.
  json k = with_added(make_json(small_byte_vocab(), small_byte_merges()), {added(3, "ab")});
  auto t = load(k);
  EXPECT_EQ(t->vocab_size(), 20);
  EXPECT_TRUE(t->is_special(3));
}

// ---------------------------------------------------------------- post-processing

json template_bos(int bos_id, const std::string& bos) {
  return {{"type", "TemplateProcessing"},
          {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
          {"pair", json::array()},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", {bos_id}}, {"tokens", {bos}}}}}}};
}

TEST(TokenizerPost, TemplateProcessingAddsBosOnlyWithSpecialTokens) {
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)), {added(20, "<s>")});
  j["post_processor"] = {{"type", "Sequence"},
                         {"processors", {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
                                         template_bos(20, "<s>")}}};
  auto t = load(j);
  EXPECT_EQ(t->encode("ab", true), (Ids{20, 3}));
  EXPECT_EQ(t->encode("ab", false), (Ids{3}));
  EXPECT_EQ(t->encode("", true), (Ids{20}));
  EXPECT_EQ(t->encode("", false), (Ids{}));
  EXPECT_EQ(t->encode("<s>ab", true), (Ids{20, 20, 3}));
}

TEST(TokenizerPost, BertProcessingWrapsTheSequence) {
  json j = make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false));
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"b", 1}}, {"cls", {"a", 0}}};
  EXPECT_EQ(load(j)->encode("ab", true), (Ids{0, 3, 1}));
  EXPECT_EQ(load(j)->encode("ab", false), (Ids{3}));
  j["post_processor"] = {{"type", "RobertaProcessing"}, {"sep", {"b", 1}}, {"cls", {"a", 0}}, {"trim_offsets", true}, {"add_prefix_space", false}};
  EXPECT_EQ(load(j)->encode("ab", true), (Ids{0, 3, 1}));
}

// ---------------------------------------------------------------- normalizers

TEST(TokenizerNormalizer, LowercaseAndNfc) {
  json j = make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false));
  j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  auto t = load(j);
  EXPECT_EQ(t->encode("AB", false), (Ids{3}));
  // E + combining acute -> É (NFC) -> é (lowercase) = C3 A9.
  EXPECT_EQ(t->encode("E\xCC\x81", false), (Ids{18}));
}

TEST(TokenizerNormalizer, StripReplacePrepend) {
  json j = make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false));
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                       {{"type", "Replace"}, {"pattern", {{"String", "x"}}}, {"content", "ab"}},
                       {{"type", "Prepend"}, {"prepend", " "}}}}};
  // "  x \t" -> "x" -> "ab" -> " ab" -> Ġab.
  EXPECT_EQ(load(j)->encode("  x \t", false), (Ids{5}));
  // Replace with a regex: every run of digits becomes "a".
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "\\p{N}+"}}}, {"content", "a"}};
  EXPECT_EQ(load(j)->encode("12b", false), (Ids{3}));
}

TEST(TokenizerNormalizer, NormalizedAddedTokensMatchAfterNormalization) {
  json j = with_added(make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false)),
                      {added(20, "<X>", false, false, false, false, /*normalized=*/true)});
  j["normalizer"] = {{"type", "Lowercase"}};
  auto t = load(j);
  // The pattern is the normalized content "<x>", found in the lowercased text.
  EXPECT_EQ(t->encode("ab<X>", false), (Ids{3, 20}));
  EXPECT_EQ(t->encode("ab<x>", false), (Ids{3, 20}));
  EXPECT_EQ(t->decode(Ids{20}, false), "<x>");  // HF shows a normalized token normalized
  EXPECT_EQ(t->token_bytes(20), "<X>");
}

TEST(TokenizerNormalizer, UnicodeForms) {
  using m3::UnicodeForm;
  EXPECT_EQ(m3::unicode_normalize("e\xCC\x81", UnicodeForm::kNFC), "\xC3\xA9");
  EXPECT_EQ(m3::unicode_normalize("\xC3\xA9", UnicodeForm::kNFD), "e\xCC\x81");
  EXPECT_EQ(m3::unicode_normalize("\xEF\xAC\x81", UnicodeForm::kNFKC), "fi");          // ﬁ ligature
  EXPECT_EQ(m3::unicode_normalize("\xEF\xAC\x81", UnicodeForm::kNFC), "\xEF\xAC\x81");  // compat only
  EXPECT_EQ(m3::unicode_normalize("\xE1\x84\x80\xE1\x85\xA1", UnicodeForm::kNFC), "\xEA\xB0\x80");  // ᄀ+ᅡ = 가
  EXPECT_EQ(m3::unicode_normalize("\xEA\xB0\x81", UnicodeForm::kNFD), "\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8");  // 각
  EXPECT_EQ(m3::unicode_normalize("\xE2\x91\xA0", UnicodeForm::kNFKD), "1");  // ①
  // Canonical reordering: dot below (220) goes before acute (230); then NFC composes ṣ + ́.
  EXPECT_EQ(m3::unicode_normalize("s\xCC\x81\xCC\xA3", UnicodeForm::kNFD), "s\xCC\xA3\xCC\x81");
  EXPECT_EQ(m3::unicode_normalize("s\xCC\x81\xCC\xA3", UnicodeForm::kNFC), "\xE1\xB9\xA3\xCC\x81");
  // Composition exclusion: U+0958 stays decomposed under NFC.
  EXPECT_EQ(m3::unicode_normalize("\xE0\xA5\x98", UnicodeForm::kNFC), "\xE0\xA4\x95\xE0\xA4\xBC");
}

TEST(TokenizerNormalizer, LowercaseIsPerCharacterFullMapping) {
  EXPECT_EQ(m3::lowercase("ABC \xC3\x89"), "abc \xC3\xA9");
  EXPECT_EQ(m3::lowercase("\xC4\xB0"), "i\xCC\x87");                 // İ -> i + combining dot
  EXPECT_EQ(m3::lowercase("\xCE\xA3\xCE\xA3"), "\xCF\x83\xCF\x83");  // Σ -> σ, never final ς
}

// ---------------------------------------------------------------- Split pre-tokenizer and regexes

std::vector<std::string> split(const std::string& text, const std::string& onig, m3::SplitBehavior b, bool invert = false) {
  auto re = m3::Regex::from_oniguruma(onig, "test");
  m3::RegexScratch scratch;
  std::vector<std::string> out;
  m3::split_with_behavior(text, *re, b, invert, scratch, out);
  return out;
}

using Strings = std::vector<std::string>;

TEST(TokenizerSplit, Behaviors) {
  using B = m3::SplitBehavior;
  const std::string s = "the-final--countdown";
  EXPECT_EQ(split(s, "-", B::kRemoved), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split(s, "-", B::kIsolated), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(s, "-", B::kMergedWithPrevious), (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(s, "-", B::kMergedWithNext), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(s, "-", B::kContiguous), (Strings{"the", "-", "final", "--", "countdown"}));
  // invert: the words are the matches.
  EXPECT_EQ(split(s, "-", B::kRemoved, true), (Strings{"-", "-", "-"}));
  EXPECT_EQ(split(s, "-", B::kMergedWithPrevious, true), (Strings{"the", "-final", "-", "-countdown"}));
}

constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

TEST(TokenizerSplit, Llama3Pattern) {
  using B = m3::SplitBehavior;
  EXPECT_EQ(split("Hello world's 12345 \r\n  x", kLlama3Pattern, B::kIsolated),
            (Strings{"Hello", " world", "'s", " ", "123", "45", " \r\n", " ", " x"}));
  // Case-insensitive contractions; punctuation runs keep trailing newlines.
  EXPECT_EQ(split("I'LL go!!\n\nOK", kLlama3Pattern, B::kIsolated), (Strings{"I", "'LL", " go", "!!\n\n", "OK"}));
  // U+00A0 and U+3000 are \s (White_Space); U+FEFF is not.
  EXPECT_EQ(split("a\xC2\xA0\xE3\x80\x80" "b", kLlama3Pattern, B::kIsolated), (Strings{"a", "\xC2\xA0", "\xE3\x80\x80" "b"}));
  EXPECT_EQ(split("a\xEF\xBB\xBF" "b", kLlama3Pattern, B::kIsolated), (Strings{"a", "\xEF\xBB\xBF" "b"}));
}

TEST(TokenizerSplit, OnigurumaEscapesAreTranslated) {
  EXPECT_EQ(m3::oniguruma_to_pcre2(R"(\s+|[^\s\p{L}]|\h)", "t"), R"([\p{White_Space}]+|[^\p{White_Space}\p{L}]|[0-9a-fA-F])");
  EXPECT_EQ(split("ab", R"(\h)", m3::SplitBehavior::kIsolated), (Strings{"a", "b"}));  // \h = hex digit
  auto [status, msg] = error_of([] { m3::Regex::from_oniguruma(R"([^\S])", "where"); });
  EXPECT_EQ(status, M3_ERR_UNSUPPORTED);
  auto [status2, msg2] = error_of([] { m3::Regex::from_oniguruma(R"(a(b)", "where"); });
  EXPECT_EQ(status2, M3_ERR_FORMAT);
}

TEST(TokenizerSplit, EmptyMatchesFollowOnigIteration) {
  // "a*" on "baac": "" at 0, "aa" at 1, the empty match at 3 (right after) is skipped, "" at 4.
  auto re = m3::Regex::from_oniguruma("a*", "t");
  m3::RegexScratch scratch;
  std::vector<m3::Regex::Span> found;
  re->find_all("baac", scratch, found);
  EXPECT_EQ(found, (std::vector<m3::Regex::Span>{{0, 0}, {1, 3}, {4, 4}}));
}

TEST(TokenizerSplit, SplitPreTokenizerFromJson) {
  json pre = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"String", "b"}}}, {"behavior", "MergedWithPrevious"}, {"invert", false}},
                byte_level_pre(false, false)}}};
  auto t = load(make_json(small_byte_vocab(), small_byte_merges(), pre));
  // "abab" -> "ab" | "ab" (each b merged into the piece before it).
  EXPECT_EQ(t->encode("abab", false), (Ids{3, 3}));
}

// ---------------------------------------------------------------- decode, round trips, UTF-8

TEST(TokenizerDecode, TokenBytesAndLossyDecode) {
  auto t = m3::Tokenizer::from_file(kFixture300);
  ASSERT_EQ(t->vocab_size(), 300);
  EXPECT_EQ(t->token_bytes(0x41), "A");
  EXPECT_EQ(t->token_bytes(0x20), " ");
  EXPECT_EQ(t->token_bytes(0xE2), "\xE2");
  EXPECT_EQ(t->token_bytes(299), "<|endoftext|>");
  EXPECT_EQ(t->token_bytes(300), "");
  EXPECT_EQ(t->token_bytes(-1), "");
  // A lone lead byte becomes U+FFFD; unknown ids are dropped.
  EXPECT_EQ(t->decode(Ids{0x41, 0xE2, 0x42, 12345}, false), "A\xEF\xBF\xBD" "B");
  EXPECT_EQ(t->decode(Ids{0xE2, 0x82, 0xAC}, false), "\xE2\x82\xAC");  // € across three tokens
  EXPECT_EQ(t->decode(Ids{0x41, 299, 0x42}, false), "A<|endoftext|>B");
  EXPECT_EQ(t->decode(Ids{0x41, 299, 0x42}, true), "AB");
  EXPECT_TRUE(t->is_special(299));
  EXPECT_EQ(t->encode("x<|endoftext|>y", false), (Ids{'x', 299, 'y'}));
}

std::string random_utf8(std::mt19937& rng, std::size_t n_chars) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E}, {0x20, 0x7E}, {0x20, 0x7E}, {0x09, 0x0D}, {0xA0, 0x24F}, {0x300, 0x36F}, {0x370, 0x3FF},
      {0x400, 0x4FF}, {0x600, 0x6FF}, {0x900, 0x97F}, {0x3040, 0x30FF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0x2000, 0x206F}, {0xFE00, 0xFFFD}, {0x1F300, 0x1FAFF}, {0x10000, 0x10FFFF}};
  std::string s;
  for (std::size_t k = 0; k < n_chars; ++k) {
    const auto& [lo, hi] = ranges[rng() % ranges.size()];
    char32_t c = lo + static_cast<char32_t>(rng() % (hi - lo + 1));
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else if (c < 0x800) {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
      s += static_cast<char>(0xE0 | (c >> 12));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (c >> 18));
      s += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return s;
}

TEST(TokenizerDecode, RoundTripsRandomUtf8) {
  auto t = m3::Tokenizer::from_file(kFixture300);
  std::mt19937 rng(1234);
  for (int k = 0; k < 300; ++k) {
    const std::string s = random_utf8(rng, rng() % 60);
    const Ids ids = t->encode(s, true);
    EXPECT_EQ(t->decode(ids, false), s);
    std::string joined;
    for (int32_t id : ids) joined += t->token_bytes(id);
    EXPECT_EQ(joined, s);
  }
  const std::string mixed = "Zoë 👩‍👩‍👧 naïve café 東京 한국어 e\xCC\x81 <|endoftext|>\r\n\t end";
  EXPECT_EQ(t->decode(t->encode(mixed, false), false), mixed);
}

TEST(TokenizerDecode, InvalidUtf8IsRejectedWithItsOffset) {
  auto t = m3::Tokenizer::from_file(kFixture300);
  const std::vector<std::pair<std::string, std::size_t>> cases = {
      {"abc\xFF", 3}, {"\x80", 0}, {"ab\xC3", 2}, {"a\xC0\xAF", 1}, {"xy\xED\xA0\x80", 2}, {"\xF4\x90\x80\x80", 0}, {"ok\xE2\x82", 2}};
  for (const auto& [text, offset] : cases) {
    auto [status, msg] = error_of([&] { t->encode(text, false); });
    EXPECT_EQ(status, M3_ERR_INVALID_ARGUMENT);
    EXPECT_NE(msg.find("byte offset " + std::to_string(offset)), std::string::npos) << msg;
  }
}

TEST(TokenizerDecode, ConcurrentEncodesAgree) {
  auto t = m3::Tokenizer::from_file(kFixture300);
  std::mt19937 rng(99);
  std::vector<std::string> texts;
  for (int k = 0; k < 64; ++k) texts.push_back(random_utf8(rng, 200));
  std::vector<Ids> expected;
  for (const auto& s : texts) expected.push_back(t->encode(s, false));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (int rep = 0; rep < 5; ++rep) {
        for (std::size_t k = 0; k < texts.size(); ++k) mismatches[w] += t->encode(texts[k], false) != expected[k];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ---------------------------------------------------------------- rejected files

TEST(TokenizerLoad, UnsupportedComponentsAreNamed) {
  const json base = make_json(small_byte_vocab(), small_byte_merges(), byte_level_pre(false));
  struct Case {
    const char* key;
    json value;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"normalizer", {{"type", "BertNormalizer"}}, "normalizer type 'BertNormalizer'"},
      {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "_"}}, "pre_tokenizer type 'Metaspace'"},
      {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}}}}}, "pre_tokenizer type 'Digits'"},
      {"decoder", {{"type", "WordPiece"}}, "decoder type 'WordPiece'"},
      {"post_processor", {{"type", "Fancy"}}, "post_processor type 'Fancy'"},
  };
  for (const Case& c : cases) {
    json j = base;
    j[c.key] = c.value;
    auto [status, msg] = load_error(j);
    EXPECT_EQ(status, M3_ERR_UNSUPPORTED) << c.expect;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("test.json: ", 0), 0u) << msg;
  }
  json unigram = base;
  unigram["model"]["type"] = "Unigram";
  EXPECT_NE(load_error(unigram).second.find("model type 'Unigram'"), std::string::npos);
  json dropout = base;
  dropout["model"]["dropout"] = 0.1;
  EXPECT_EQ(load_error(dropout).first, M3_ERR_UNSUPPORTED);
  json zero_dropout = base;
  zero_dropout["model"]["dropout"] = 0.0;
  EXPECT_EQ(load_error(zero_dropout).first, M3_OK);
  json behavior = base;
  behavior["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Sideways"}, {"invert", false}};
  EXPECT_EQ(load_error(behavior).first, M3_ERR_UNSUPPORTED);
}

TEST(TokenizerLoad, MalformedFilesAreFormatErrors) {
  auto status_of = [](const std::string& text) {
    return error_of([&] { m3::Tokenizer::from_json(text, "bad.json"); }).first;
  };
  EXPECT_EQ(status_of("{\"model\": "), M3_ERR_FORMAT);
  EXPECT_EQ(status_of("[]"), M3_ERR_FORMAT);
  EXPECT_EQ(status_of("{}"), M3_ERR_FORMAT);
  EXPECT_EQ(status_of(std::string(100000, '[') + std::string(100000, ']')), M3_ERR_FORMAT);
  EXPECT_EQ(status_of("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"x\"}, \"merges\": []}}"), M3_ERR_FORMAT);

  const json base = make_json(small_byte_vocab(), small_byte_merges());
  json unknown_merge = base;
  unknown_merge["model"]["merges"].push_back("a q");
  EXPECT_EQ(load_error(unknown_merge).first, M3_ERR_FORMAT);
  json bad_merge = base;
  bad_merge["model"]["merges"].push_back("a b c");
  EXPECT_EQ(load_error(bad_merge).first, M3_ERR_FORMAT);
  json no_result = base;
  no_result["model"]["merges"].push_back("b a");  // "ba" is not in the vocab
  EXPECT_EQ(load_error(no_result).first, M3_ERR_FORMAT);
  json dup_ids = base;
  dup_ids["model"]["vocab"]["zz"] = 3;
  EXPECT_EQ(load_error(dup_ids).first, M3_ERR_FORMAT);
  json negative = base;
  negative["model"]["vocab"]["zz"] = -5;
  EXPECT_EQ(load_error(negative).first, M3_ERR_FORMAT);
  json huge_id = base;
  huge_id["model"]["vocab"]["zz"] = 2000000000;
  EXPECT_EQ(load_error(huge_id).first, M3_ERR_FORMAT);
  json bad_template = base;
  bad_template["post_processor"] = template_bos(5000, "<s>");
  EXPECT_EQ(load_error(bad_template).first, M3_ERR_FORMAT);

  EXPECT_EQ(error_of([] { m3::Tokenizer::from_file("data/tokenizers/does_not_exist.json"); }).first, M3_ERR_IO);
}

}  // namespace
