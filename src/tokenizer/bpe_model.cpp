#include "tokenizer/bpe_model.h"

#include <cstdio>
#include <mutex>
#include <algorithm>

#include "common/error.h"
#include "common/quote.h"
#include "tokenizer/utf8.h"

namespace m3 {
namespace {

constexpr std::size_t kCacheEntries = 1 << 17;
constexpr std::size_t kCacheMaxWordBytes = 256;

}  // namespace

BpeModel::BpeModel(BpeConfig config, const std::string& where)
    : where_(where),
      vocab_(std::move(config.vocab)),
      unk_token_(std::move(config.unk_token)),
      prefix_(config.continuing_subword_prefix.value_or("")),
      suffix_(config.end_of_word_suffix.value_or("")),
      fuse_unk_(config.fuse_unk),
      byte_fallback_(config.byte_fallback),
      ignore_merges_(config.ignore_merges) {
  // Ids may have holes (HF allows it) but not without bound: the id table is dense.
  int64_t max_id = -1;
  for (const auto& [token, id] : vocab_) {
    if (id < 0) fail(M3_ERR_FORMAT, where_ + ": vocab id " + std::to_string(id) + " is negative");
    if (id > max_id) max_id = id;
  }
  if (max_id >= static_cast<int64_t>(2 * vocab_.size() + 65536)) {
    fail(M3_ERR_FORMAT, where_ + ": vocab id " + std::to_string(max_id) + " is far beyond the vocab size " +
                            std::to_string(vocab_.size()));
  }
  by_id_.assign(static_cast<std::size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : vocab_) {
    const std::string*& slot = by_id_[static_cast<std::size_t>(id)];
    if (slot != nullptr) {
      fail(M3_ERR_FORMAT, where_ + ": vocab entries " + quote_for_message(*slot) + " and " +
                              quote_for_message(token) + " share id " + std::to_string(id));
    }
    slot = &token;
  }

  if (unk_token_) {
    if (auto it = vocab_.find(*unk_token_); it != vocab_.end()) unk_id_ = it->second;
  }
  if (byte_fallback_) {
    byte_fallback_ids_.assign(256, -1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      if (auto it = vocab_.find(std::string_view(name)); it != vocab_.end()) byte_fallback_ids_[static_cast<std::size_t>(b)] = it->second;
    }
  }

  merges_.reserve(config.merges.size());
  std::string joined;
  for (std::size_t rank = 0; rank < config.merges.size(); ++rank) {
    // Plain references, not a structured binding: clang before 16 cannot capture those in `at`.
    const std::string& a = config.merges[rank].first;
    const std::string& b = config.merges[rank].second;
    // Messages are built only on failure: this loop runs for every merge of big vocabularies.
    auto at = [&, rank] {
      return where_ + ": merge " + std::to_string(rank) + " (" + quote_for_message(a) + ", " + quote_for_message(b) + ")";
    };
    auto ia = vocab_.find(a);
    auto ib = vocab_.find(b);
    if (ia == vocab_.end() || ib == vocab_.end()) fail(M3_ERR_FORMAT, at() + " uses a token that is not in the vocab");
    // The merged token drops the continuing-subword prefix of the right part, as HF does.
    if (b.size() < prefix_.size() || (b.size() > prefix_.size() &&
                                      (static_cast<unsigned char>(b[prefix_.size()]) & 0xC0) == 0x80)) {
      fail(M3_ERR_FORMAT, at() + ": right part shorter than the continuing_subword_prefix");
    }
    joined.assign(a);
    joined.append(b, prefix_.size());
    auto ij = vocab_.find(joined);
    if (ij == vocab_.end()) fail(M3_ERR_FORMAT, at() + ": merged token " + quote_for_message(joined) + " is not in the vocab");
    // A repeated pair takes its last rank (HF collects the merges into a map in order).
    merges_[pair_key(ia->second, ib->second)] = MergeTarget{static_cast<uint32_t>(rank), ij->second};
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= by_id_.size()) return nullptr;
  return by_id_[static_cast<std::size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() < kCacheMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const std::size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheEntries) cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    std::size_t len;  // bytes covered; 0 once merged into its left neighbour
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  auto add = [&](int32_t id, std::size_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(Symbol{id, n - 1, -1, len});
  };

  // Initial symbols: one per character (with prefix/suffix), unknowns via byte fallback or unk.
  int32_t unk_id = -1;  // a pending (maybe fused) unk, not yet added
  std::size_t unk_len = 0;
  std::string piece;
  std::size_t i = 0;
  while (i < word.size()) {
    const std::size_t start = i;
    i += utf8::seq_len(static_cast<unsigned char>(word[i]));
    if (i > word.size()) i = word.size();
    const std::size_t byte_len = i - start;
    piece.clear();
    if (start > 0) piece += prefix_;
    piece.append(word.substr(start, byte_len));
    if (i == word.size()) piece += suffix_;
    if (auto it = vocab_.find(piece); it != vocab_.end()) {
      if (unk_id >= 0) {
        add(unk_id, unk_len);
        unk_id = -1;
      }
      add(it->second, byte_len);
      continue;
    }
    if (byte_fallback_) {
      // All bytes of the piece (prefix/suffix included, as HF does) must have a <0xXX> token.
      bool all = true;
      for (const char c : piece) all = all && byte_fallback_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (const char c : piece) add(byte_fallback_ids_[static_cast<unsigned char>(c)], 1);
        continue;
      }
    }
    if (!unk_token_) continue;  // HF drops characters it cannot represent when there is no unk
    if (!unk_id_) fail(M3_ERR_FORMAT, where_ + ": unk_token " + quote_for_message(*unk_token_) + " is not in the vocab");
    if (unk_id >= 0 && fuse_unk_) {
      unk_len += byte_len;
    } else {
      if (unk_id >= 0) add(unk_id, unk_len);
      unk_id = *unk_id_;
      unk_len = byte_len;
    }
  }
  if (unk_id >= 0) add(unk_id, unk_len);

  // HF's merge loop: a heap ordered by (rank, position); stale entries are skipped when the
  // pair at that position no longer produces the same token. A 4-ary heap, like HF's: long
  // pre-tokens (megabytes of digits) push millions of entries and shallow heaps miss less.
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t new_id;
    bool before(const Candidate& o) const { return rank != o.rank ? rank < o.rank : pos < o.pos; }
  };
  std::vector<Candidate> heap;
  heap.reserve(symbols.size());
  auto push = [&heap](Candidate c) {
    std::size_t i = heap.size();
    heap.push_back(c);
    while (i > 0) {
      const std::size_t parent = (i - 1) / 4;
      if (!heap[i].before(heap[parent])) break;
      std::swap(heap[i], heap[parent]);
      i = parent;
    }
  };
  auto pop = [&heap]() {
    const Candidate top = heap.front();
    heap.front() = heap.back();
    heap.pop_back();
    const std::size_t n = heap.size();
    std::size_t i = 0;
    while (true) {
      const std::size_t first = 4 * i + 1;
      if (first >= n) break;
      std::size_t best = first;
      for (std::size_t c = first + 1; c < std::min(first + 4, n); ++c) {
        if (heap[c].before(heap[best])) best = c;
      }
      if (!heap[best].before(heap[i])) break;
      std::swap(heap[i], heap[best]);
      i = best;
    }
    return top;
  };
  auto lookup = [&](int32_t a, int32_t b) -> const MergeTarget* {
    auto it = merges_.find(pair_key(a, b));
    return it == merges_.end() ? nullptr : &it->second;
  };
  for (std::size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (const MergeTarget* m = lookup(symbols[k].id, symbols[k + 1].id)) {
      push(Candidate{m->rank, static_cast<int32_t>(k), m->id});
    }
  }
  while (!heap.empty()) {
    const Candidate top = pop();
    Symbol& cur = symbols[static_cast<std::size_t>(top.pos)];
    if (cur.len == 0 || cur.next == -1) continue;
    const int32_t right_pos = cur.next;
    const Symbol right = symbols[static_cast<std::size_t>(right_pos)];
    const MergeTarget* m = lookup(cur.id, right.id);
    if (m == nullptr || m->id != top.new_id) continue;

    cur.id = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    symbols[static_cast<std::size_t>(right_pos)].len = 0;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = top.pos;

    if (cur.prev >= 0) {
      const Symbol& prev = symbols[static_cast<std::size_t>(cur.prev)];
      if (const MergeTarget* pm = lookup(prev.id, cur.id)) push(Candidate{pm->rank, cur.prev, pm->id});
    }
    if (cur.next >= 0) {
      const Symbol& next = symbols[static_cast<std::size_t>(cur.next)];
      if (const MergeTarget* nm = lookup(cur.id, next.id)) push(Candidate{nm->rank, top.pos, nm->id});
    }
  }
  for (const Symbol& s : symbols) {
    if (s.len != 0) out.push_back(s.id);
  }
}

}  // namespace m3
