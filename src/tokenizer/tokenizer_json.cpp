// tokenizer.json -> TokenizerParts. Everything a file can say is checked here: types, sizes,
// ids, and every setting we do not implement is refused by name (M3_ERR_UNSUPPORTED) rather
// than silently encoding differently from HF.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/error.h"
#include "common/json_document.h"
#include "common/quote.h"
#include "tokenizer/tokenizer_parts.h"

namespace m3 {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxJsonBytes = std::size_t{1} << 30;
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxVocab = 8'000'000;
constexpr std::size_t kMaxMerges = 16'000'000;
constexpr std::size_t kMaxTokenBytes = 16 * 1024;
constexpr std::size_t kMaxAddedTokens = 1'000'000;
constexpr std::size_t kMaxAddedTokenBytes = 512;

// Context for messages: "<source>: <path>".
struct Ctx {
  const std::string& source;
  std::string at(const std::string& path) const { return source + ": " + path; }
  [[noreturn]] void format(const std::string& path, const std::string& what) const {
    fail(M3_ERR_FORMAT, at(path) + " " + what);
  }
  [[noreturn]] void unsupported(const std::string& path, const std::string& what) const {
    fail(M3_ERR_UNSUPPORTED, at(path) + ": unsupported " + what);
  }
};

// Rejects nesting deeper than kMaxDepth before the DOM parser sees it, so no input can
// exhaust the stack.
void check_depth(std::string_view text, const Ctx& ctx) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) fail(M3_ERR_FORMAT, ctx.source + ": JSON nested deeper than 64 levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool get_bool(const json& obj, const char* key, bool fallback, const std::string& path, const Ctx& ctx) {
  const json* v = member(obj, key);
  if (v == nullptr || v->is_null()) return fallback;
  if (!v->is_boolean()) ctx.format(path + "." + key, "must be a boolean");
  return v->get<bool>();
}

std::optional<std::string> get_opt_string(const json& obj, const char* key, const std::string& path, const Ctx& ctx) {
  const json* v = member(obj, key);
  if (v == nullptr || v->is_null()) return std::nullopt;
  if (!v->is_string()) ctx.format(path + "." + key, "must be a string");
  return v->get<std::string>();
}

std::string get_string(const json& obj, const char* key, const std::string& path, const Ctx& ctx) {
  auto s = get_opt_string(obj, key, path, ctx);
  if (!s) ctx.format(path + "." + key, "is missing");
  return *s;
}

int32_t as_id(const json& v, const std::string& path, const Ctx& ctx) {
  if (!v.is_number_integer()) ctx.format(path, "must be an integer id");
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT32_MAX)) ctx.format(path, "id " + std::to_string(u) + " is out of range");
    return static_cast<int32_t>(u);
  }
  const auto s = v.get<int64_t>();
  if (s < 0 || s > INT32_MAX) ctx.format(path, "id " + std::to_string(s) + " is out of range");
  return static_cast<int32_t>(s);
}

std::string type_of(const json& obj, const std::string& path, const Ctx& ctx) {
  if (!obj.is_object()) ctx.format(path, "must be an object");
  return get_string(obj, "type", path, ctx);
}

std::unique_ptr<Regex> parse_pattern(const json& obj, const std::string& path, const Ctx& ctx) {
  const json* p = member(obj, "pattern");
  if (p == nullptr || !p->is_object() || p->size() != 1) ctx.format(path + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}");
  if (auto s = get_opt_string(*p, "String", path + ".pattern", ctx)) {
    if (s->empty()) ctx.unsupported(path + ".pattern", "empty String pattern");
    return Regex::literal(*s, ctx.at(path + ".pattern"));
  }
  if (auto r = get_opt_string(*p, "Regex", path + ".pattern", ctx)) return Regex::from_oniguruma(*r, ctx.at(path + ".pattern"));
  ctx.format(path + ".pattern", "must be {\"String\": ...} or {\"Regex\": ...}");
}

// ---- normalizer ----

std::unique_ptr<Normalizer> parse_normalizer(const json& n, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(n, path, ctx);
  if (type == "NFC") return make_unicode_normalizer(UnicodeForm::kNFC);
  if (type == "NFD") return make_unicode_normalizer(UnicodeForm::kNFD);
  if (type == "NFKC") return make_unicode_normalizer(UnicodeForm::kNFKC);
  if (type == "NFKD") return make_unicode_normalizer(UnicodeForm::kNFKD);
  if (type == "Lowercase") return make_lowercase_normalizer();
  if (type == "Strip") {
    return make_strip_normalizer(get_bool(n, "strip_left", false, path, ctx), get_bool(n, "strip_right", false, path, ctx));
  }
  if (type == "Prepend") return make_prepend_normalizer(get_string(n, "prepend", path, ctx));
  if (type == "Replace") return make_replace_normalizer(parse_pattern(n, path, ctx), get_string(n, "content", path, ctx));
  if (type == "Sequence") {
    const json* list = member(n, "normalizers");
    if (list == nullptr || !list->is_array()) ctx.format(path + ".normalizers", "must be an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (std::size_t k = 0; k < list->size(); ++k) {
      steps.push_back(parse_normalizer((*list)[k], path + ".normalizers[" + std::to_string(k) + "]", ctx));
    }
    return make_sequence_normalizer(std::move(steps));
  }
  ctx.unsupported(path, "normalizer type " + quote_for_message(type));
}

// ---- pre-tokenizer ----

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& p, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(p, path, ctx);
  if (type == "ByteLevel") {
    // trim_offsets only changes offsets, which we do not report.
    return make_byte_level_pre_tokenizer(get_bool(p, "add_prefix_space", true, path, ctx),
                                         get_bool(p, "use_regex", true, path, ctx), ctx.at(path));
  }
  if (type == "Split") {
    const std::string behavior = get_string(p, "behavior", path, ctx);
    SplitBehavior b;
    if (behavior == "Removed") b = SplitBehavior::kRemoved;
    else if (behavior == "Isolated") b = SplitBehavior::kIsolated;
    else if (behavior == "MergedWithPrevious") b = SplitBehavior::kMergedWithPrevious;
    else if (behavior == "MergedWithNext") b = SplitBehavior::kMergedWithNext;
    else if (behavior == "Contiguous") b = SplitBehavior::kContiguous;
    else ctx.unsupported(path + ".behavior", "Split behavior " + quote_for_message(behavior));
    return make_split_pre_tokenizer(parse_pattern(p, path, ctx), b, get_bool(p, "invert", false, path, ctx));
  }
  if (type == "Sequence") {
    const json* list = member(p, "pretokenizers");
    if (list == nullptr || !list->is_array()) ctx.format(path + ".pretokenizers", "must be an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (std::size_t k = 0; k < list->size(); ++k) {
      steps.push_back(parse_pre_tokenizer((*list)[k], path + ".pretokenizers[" + std::to_string(k) + "]", ctx));
    }
    return make_sequence_pre_tokenizer(std::move(steps));
  }
  ctx.unsupported(path, "pre_tokenizer type " + quote_for_message(type));
}

// ---- model ----

BpeConfig parse_bpe(const json& m, const Ctx& ctx) {
  const std::string path = "model";
  if (!m.is_object()) ctx.format(path, "must be an object");
  if (const json* t = member(m, "type"); t != nullptr) {
    if (!t->is_string()) ctx.format("model.type", "must be a string");
    if (t->get<std::string>() != "BPE") ctx.unsupported(path, "model type " + quote_for_message(t->get<std::string>()));
  }
  BpeConfig cfg;
  if (const json* d = member(m, "dropout"); d != nullptr && !d->is_null()) {
    if (!d->is_number()) ctx.format("model.dropout", "must be a number or null");
    const double p = d->get<double>();
    if (!(p >= 0.0 && p <= 1.0)) ctx.format("model.dropout", "must be in [0, 1]");
    // Dropout samples merges at random; only "no dropout" is deterministic.
    if (p != 0.0) ctx.unsupported("model.dropout", "BPE dropout " + std::to_string(p) + " (must be null or 0 for inference)");
  }
  cfg.unk_token = get_opt_string(m, "unk_token", path, ctx);
  cfg.continuing_subword_prefix = get_opt_string(m, "continuing_subword_prefix", path, ctx);
  cfg.end_of_word_suffix = get_opt_string(m, "end_of_word_suffix", path, ctx);
  cfg.fuse_unk = get_bool(m, "fuse_unk", false, path, ctx);
  cfg.byte_fallback = get_bool(m, "byte_fallback", false, path, ctx);
  cfg.ignore_merges = get_bool(m, "ignore_merges", false, path, ctx);

  const json* vocab = member(m, "vocab");
  if (vocab == nullptr || !vocab->is_object()) ctx.format("model.vocab", "must be an object of token -> id");
  if (vocab->size() > kMaxVocab) ctx.unsupported("model.vocab", "vocab of " + std::to_string(vocab->size()) + " entries");
  cfg.vocab.reserve(vocab->size());
  for (const auto& [token, id] : vocab->items()) {
    if (token.size() > kMaxTokenBytes) ctx.unsupported("model.vocab", "token longer than 16 KiB");
    // The common case without building a path string (this loop sees every vocab entry).
    const int32_t value = id.is_number_unsigned() && id.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX)
                              ? static_cast<int32_t>(id.get<uint64_t>())
                              : as_id(id, "model.vocab[" + quote_for_message(token) + "]", ctx);
    cfg.vocab.emplace(token, value);
  }

  const json* merges = member(m, "merges");
  if (merges == nullptr || !merges->is_array()) ctx.format("model.merges", "must be an array");
  if (merges->size() > kMaxMerges) ctx.unsupported("model.merges", std::to_string(merges->size()) + " merges");
  cfg.merges.reserve(merges->size());
  // Either all "a b" strings (legacy; "#version" lines skipped) or all [a, b] pairs.
  const bool legacy = !merges->empty() && (*merges)[0].is_string();
  for (std::size_t k = 0; k < merges->size(); ++k) {
    const json& e = (*merges)[k];
    auto where = [k] { return "model.merges[" + std::to_string(k) + "]"; };
    if (legacy) {
      if (!e.is_string()) ctx.format(where(), "must be a string like the other merges");
      const std::string& line = e.get_ref<const std::string&>();
      if (line.rfind("#version", 0) == 0) continue;
      const std::size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
        ctx.format(where(), quote_for_message(line) + " is not two tokens separated by one space");
      }
      cfg.merges.emplace_back(line.substr(0, sp), line.substr(sp + 1));
    } else {
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_string()) {
        ctx.format(where(), "must be a pair of strings");
      }
      cfg.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
    }
  }
  return cfg;
}

// ---- post-processor ----

std::unique_ptr<PostProcessor> parse_post_processor(const json& p, const std::string& path, const Ctx& ctx,
                                                    int32_t vocab_size) {
  const std::string type = type_of(p, path, ctx);
  auto check_id = [&](int32_t id, const std::string& where) {
    if (id >= vocab_size) ctx.format(where, "id " + std::to_string(id) + " is not in the vocab");
    return id;
  };
  if (type == "ByteLevel") return make_noop_post_processor();  // offsets only
  if (type == "TemplateProcessing") {
    const json* special = member(p, "special_tokens");
    std::map<std::string, std::vector<int32_t>> specials;
    if (special != nullptr && !special->is_null()) {
      if (!special->is_object()) ctx.format(path + ".special_tokens", "must be an object");
      for (const auto& [name, tok] : special->items()) {
        const std::string where = path + ".special_tokens[" + quote_for_message(name) + "]";
        const json* ids = member(tok, "ids");
        if (ids == nullptr || !ids->is_array()) ctx.format(where + ".ids", "must be an array");
        std::vector<int32_t> v;
        for (std::size_t k = 0; k < ids->size(); ++k) v.push_back(check_id(as_id((*ids)[k], where + ".ids", ctx), where + ".ids"));
        specials[name] = std::move(v);
      }
    }
    const json* single = member(p, "single");
    if (single == nullptr || !single->is_array()) ctx.format(path + ".single", "must be an array");
    std::vector<TemplateItem> items;
    for (std::size_t k = 0; k < single->size(); ++k) {
      const json& piece = (*single)[k];
      const std::string where = path + ".single[" + std::to_string(k) + "]";
      std::string seq_id;
      std::optional<std::string> special_name;
      if (const json* s = member(piece, "Sequence")) {
        seq_id = get_string(*s, "id", where + ".Sequence", ctx);
      } else if (const json* t = member(piece, "SpecialToken")) {
        special_name = get_string(*t, "id", where + ".SpecialToken", ctx);
      } else if (piece.is_string()) {
        // The string form: "$A", "$B", "$0", "$" with optional ":type_id", or a token name.
        const std::string text = piece.get<std::string>();
        if (!text.empty() && text[0] == '$') {
          const std::size_t colon = text.find(':');
          seq_id = text.substr(1, colon == std::string::npos ? std::string::npos : colon - 1);
          if (seq_id.empty() || seq_id == "0" || seq_id == "a") seq_id = "A";
          if (seq_id == "1" || seq_id == "b") seq_id = "B";
        } else {
          special_name = text.substr(0, text.find(':'));
        }
      } else {
        ctx.format(where, "must be a Sequence or SpecialToken piece");
      }
      if (special_name) {
        auto it = specials.find(*special_name);
        if (it == specials.end()) ctx.format(where, "names special token " + quote_for_message(*special_name) + " missing from special_tokens");
        items.push_back(TemplateItem{false, it->second});
      } else if (seq_id == "A") {
        items.push_back(TemplateItem{true, {}});
      } else {
        // HF would index a second sequence that a single encode does not have.
        ctx.unsupported(where, "sequence " + quote_for_message(seq_id) + " in the single template");
      }
    }
    return make_template_post_processor(std::move(items));
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto pair_id = [&](const char* key) {
      const json* v = member(p, key);
      if (v == nullptr || !v->is_array() || v->size() != 2 || !(*v)[0].is_string()) {
        ctx.format(path + "." + key, "must be [token, id]");
      }
      return check_id(as_id((*v)[1], path + "." + key, ctx), path + "." + key);
    };
    std::vector<TemplateItem> items;
    items.push_back(TemplateItem{false, {pair_id("cls")}});
    items.push_back(TemplateItem{true, {}});
    items.push_back(TemplateItem{false, {pair_id("sep")}});
    return make_template_post_processor(std::move(items));
  }
  if (type == "Sequence") {
    const json* list = member(p, "processors");
    if (list == nullptr || !list->is_array()) ctx.format(path + ".processors", "must be an array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (std::size_t k = 0; k < list->size(); ++k) {
      steps.push_back(parse_post_processor((*list)[k], path + ".processors[" + std::to_string(k) + "]", ctx, vocab_size));
    }
    return make_sequence_post_processor(std::move(steps));
  }
  ctx.unsupported(path, "post_processor type " + quote_for_message(type));
}

// ---- decoder ----

void check_decoder(const json& d, const std::string& path, const Ctx& ctx) {
  const std::string type = type_of(d, path, ctx);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const json* list = member(d, "decoders");
    if (list == nullptr || !list->is_array()) ctx.format(path + ".decoders", "must be an array");
    for (std::size_t k = 0; k < list->size(); ++k) check_decoder((*list)[k], path + ".decoders[" + std::to_string(k) + "]", ctx);
    return;
  }
  ctx.unsupported(path, "decoder type " + quote_for_message(type));
}

// ---- added tokens ----

struct JsonAddedToken {
  AddedToken token;
  int32_t file_id;
};

std::vector<JsonAddedToken> parse_added_tokens(const json& list, const Ctx& ctx) {
  if (!list.is_array()) ctx.format("added_tokens", "must be an array");
  if (list.size() > kMaxAddedTokens) ctx.unsupported("added_tokens", std::to_string(list.size()) + " added tokens");
  std::vector<JsonAddedToken> out;
  for (std::size_t k = 0; k < list.size(); ++k) {
    const json& t = list[k];
    const std::string path = "added_tokens[" + std::to_string(k) + "]";
    if (!t.is_object()) ctx.format(path, "must be an object");
    JsonAddedToken a;
    const json* id = member(t, "id");
    if (id == nullptr) ctx.format(path + ".id", "is missing");
    a.file_id = as_id(*id, path + ".id", ctx);
    a.token.content = get_string(t, "content", path, ctx);
    if (a.token.content.size() > kMaxAddedTokenBytes) ctx.unsupported(path, "added token longer than 512 bytes");
    a.token.special = get_bool(t, "special", false, path, ctx);
    a.token.single_word = get_bool(t, "single_word", false, path, ctx);
    a.token.lstrip = get_bool(t, "lstrip", false, path, ctx);
    a.token.rstrip = get_bool(t, "rstrip", false, path, ctx);
    a.token.normalized = get_bool(t, "normalized", !a.token.special, path, ctx);
    out.push_back(std::move(a));
  }
  return out;
}

bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip && a.rstrip == b.rstrip &&
         a.normalized == b.normalized && a.special == b.special;
}

}  // namespace

TokenizerParts parse_tokenizer_json(std::string_view text, const std::string& source) {
  const Ctx ctx{source};
  if (text.size() > kMaxJsonBytes) fail(M3_ERR_UNSUPPORTED, source + ": tokenizer.json larger than 1 GiB");
  check_depth(text, ctx);
  JsonDocument document;  // freed without allocating (json_document.h)
  json& root = document.root;
  try {
    root = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    fail(M3_ERR_FORMAT, source + ": malformed JSON: " + e.what());
  }
  if (!root.is_object()) fail(M3_ERR_FORMAT, source + ": top level must be a JSON object");

  TokenizerParts parts;
  parts.source = source;
  try {
    if (auto v = get_opt_string(root, "version", "", ctx); v && *v != "1.0") {
      ctx.unsupported("version", "tokenizer.json version " + quote_for_message(*v));
    }
    // truncation/padding are left out on purpose: transformers resets both before encoding
    // by default, and a runtime encoding prompts must never cut them silently.

    const json* model = member(root, "model");
    if (model == nullptr) ctx.format("model", "is missing");
    parts.model = std::make_unique<BpeModel>(parse_bpe(*model, ctx), ctx.at("model"));

    if (const json* n = member(root, "normalizer"); n != nullptr && !n->is_null()) {
      parts.normalizer = parse_normalizer(*n, "normalizer", ctx);
    }
    if (const json* p = member(root, "pre_tokenizer"); p != nullptr && !p->is_null()) {
      parts.pre_tokenizer = parse_pre_tokenizer(*p, "pre_tokenizer", ctx);
    }
    if (const json* d = member(root, "decoder"); d != nullptr && !d->is_null()) check_decoder(*d, "decoder", ctx);

    // Added tokens: replay HF's AddedVocabulary::add_tokens to get the ids HF uses, and refuse
    // files whose stated ids disagree (HF would only warn and then encode with other ids).
    std::vector<JsonAddedToken> listed;
    if (const json* a = member(root, "added_tokens"); a != nullptr && !a->is_null()) listed = parse_added_tokens(*a, ctx);
    std::map<int32_t, AddedToken> by_id;
    int64_t next_id = static_cast<int64_t>(parts.model->size());
    for (std::size_t k = 0; k < listed.size(); ++k) {
      const AddedToken& t = listed[k].token;
      if (t.content.empty()) continue;
      auto known = parts.added_by_content.find(t.content);
      if (known != parts.added_by_content.end() && same_token(by_id[known->second], t)) continue;
      int64_t id;
      if (known != parts.added_by_content.end()) id = known->second;
      else if (auto m = parts.model->token_to_id(t.content)) id = *m;
      else id = next_id++;
      if (id != listed[k].file_id) {
        ctx.format("added_tokens[" + std::to_string(k) + "]",
                   quote_for_message(t.content) + " has id " + std::to_string(listed[k].file_id) +
                       " but HF tokenizers would give it id " + std::to_string(id));
      }
      parts.added_by_content[t.content] = static_cast<int32_t>(id);
      if (t.special) parts.special_contents.insert(t.content);  // never removed, as in HF
      AddedToken stored = t;
      stored.id = static_cast<int32_t>(id);
      by_id[static_cast<int32_t>(id)] = stored;
    }
    std::vector<AddedToken> tokens;
    std::vector<std::string> patterns;
    RegexScratch scratch;
    for (auto& [id, t] : by_id) {
      std::string pattern = t.content;
      if (t.normalized && parts.normalizer) pattern = parts.normalizer->normalize(t.content, scratch);
      parts.added_display[id] = pattern;
      patterns.push_back(std::move(pattern));
      tokens.push_back(t);
    }
    parts.added = std::make_unique<AddedVocabulary>(std::move(tokens), patterns, ctx.at("added_tokens"));

    int32_t max_id = parts.model->max_id();
    if (!by_id.empty()) max_id = std::max(max_id, by_id.rbegin()->first);
    parts.vocab_size = max_id + 1;

    if (const json* p = member(root, "post_processor"); p != nullptr && !p->is_null()) {
      parts.post_processor = parse_post_processor(*p, "post_processor", ctx, parts.vocab_size);
    } else {
      parts.post_processor = make_noop_post_processor();
    }
  } catch (const json::exception& e) {
    // Only reachable through a type mismatch we did not anticipate; still a format error.
    fail(M3_ERR_FORMAT, source + ": unexpected JSON structure: " + e.what());
  }
  return parts;
}

}  // namespace m3
