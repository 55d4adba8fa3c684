#include "model/eos_tokens.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_document.h"
#include "common/json_parse.h"
#include "common/read_file.h"
#include "tokenizer/tokenizer.h"

namespace m3 {
namespace {

// generation_config.json and tokenizer_config.json (which may hold chat templates).
constexpr std::size_t kMaxJsonBytes = std::size_t{64} << 20;

bool read_json(const std::string& path, nlohmann::json* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  const std::string text = read_whole_file(path, kMaxJsonBytes, "file");
  *out = parse_json(text, path);  // nesting bounded: add_id's message dumps values
  return true;
}

void add_id(const nlohmann::json& v, const std::string& where, int64_t vocab, std::vector<int32_t>& ids) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
    fail(M3_ERR_FORMAT, where + ": eos_token_id " + v.dump() + " is not a token id in [0, " + std::to_string(vocab) + ")");
  ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
}

}  // namespace

std::vector<int32_t> find_eos_tokens(const std::string& dir, const Tokenizer* tokenizer, int64_t vocab_size) {
  std::vector<int32_t> ids;
  JsonDocument generation_config, tokenizer_config;  // freed without allocating (json_document.h)
  nlohmann::json& j = generation_config.root;
  const std::string gen = dir + "/generation_config.json";
  if (read_json(gen, &j) && j.is_object() && j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const auto& v = j["eos_token_id"];
    if (v.is_array())
      for (const auto& x : v) add_id(x, gen, vocab_size, ids);
    else
      add_id(v, gen, vocab_size, ids);
    return ids;
  }
  if (!tokenizer) return ids;
  const std::string tc = dir + "/tokenizer_config.json";
  nlohmann::json& t = tokenizer_config.root;
  if (read_json(tc, &t) && t.is_object() && t.contains("eos_token")) {
    const auto& v = t["eos_token"];
    const nlohmann::json* content = v.is_object() && v.contains("content") ? &v["content"] : &v;
    if (content->is_string()) {
      if (auto id = tokenizer->token_id(content->get<std::string>())) return {*id};
      fail(M3_ERR_FORMAT, tc + ": eos_token " + content->dump() + " is not in the tokenizer");
    }
  }
  for (const char* name : {"<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "</s>", "<eos>"})
    if (auto id = tokenizer->token_id(name); id && tokenizer->is_special(*id) && *id < vocab_size) ids.push_back(*id);
  return ids;
}

}  // namespace m3
