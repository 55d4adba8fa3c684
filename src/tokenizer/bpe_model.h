// The BPE model of HF tokenizers: a vocab, ranked merges, and the merge loop that turns one
// pre-token into ids (lowest rank first, leftmost on ties, as HF's heap does).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace m3 {

// Transparent hash (lookups by string_view without a copy). Deliberately not noexcept: that makes
// libstdc++ cache hash codes in the nodes, which big vocab tables need to stay fast.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct BpeConfig {
  Vocab vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // Validates (ids, merges against the vocab) and builds the merge table. Throws m3::Error
  // (M3_ERR_FORMAT) with `where` as the prefix.
  BpeModel(BpeConfig config, const std::string& where);

  // Appends the ids of one pre-token (the model's alphabet, e.g. byte-level text).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The vocab string of an id, or nullptr.
  const std::string* id_to_token(int32_t id) const;
  std::size_t size() const { return vocab_.size(); }
  int32_t max_id() const { return static_cast<int32_t>(by_id_.size()) - 1; }

 private:
  struct MergeTarget {
    uint32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::string where_;
  Vocab vocab_;
  std::vector<const std::string*> by_id_;  // id -> key in vocab_ (nullptr for holes)
  std::unordered_map<uint64_t, MergeTarget> merges_;
  std::optional<std::string> unk_token_;
  std::optional<int32_t> unk_id_;
  std::string prefix_, suffix_;
  bool fuse_unk_, byte_fallback_, ignore_merges_;
  std::vector<int32_t> byte_fallback_ids_;  // <0xXX> ids, -1 when absent

  // Results per pre-token; HF caches too, so repeated words cost one lookup.
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace m3
