// ring_log.cpp — a small fixed-capacity log with a ring buffer, for the tokenizer peer corpus.
// Written for this corpus; exercises typical C++ token shapes: templates, ::, ->, <<=, lambdas.
#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ringlog {

enum class Level : std::uint8_t { kTrace = 0, kDebug, kInfo, kWarn, kError };

constexpr const char* level_name(Level l) noexcept {
  switch (l) {
    case Level::kTrace: return "TRACE";
    case Level::kDebug: return "DEBUG";
    case Level::kInfo:  return "INFO ";
    case Level::kWarn:  return "WARN ";
    case Level::kError: return "ERROR";
  }
  return "?????";
}

struct Entry {
  std::uint64_t seq = 0;
  Level level = Level::kInfo;
  std::string text;
};

template <typename T, std::size_t N>
class Ring {
  static_assert(N > 0 && (N & (N - 1)) == 0, "capacity must be a power of two");

 public:
  void push(T value) {
    data_[head_ & (N - 1)] = std::move(value);
    ++head_;
    if (head_ - tail_ > N) tail_ = head_ - N;
  }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(head_ - tail_); }
  [[nodiscard]] bool empty() const noexcept { return head_ == tail_; }
  const T& operator[](std::size_t i) const {
    assert(i < size());
    return data_[(tail_ + i) & (N - 1)];
  }
  template <typename F>
  void for_each(F&& f) const {
    for (std::uint64_t i = tail_; i != head_; ++i) f(data_[i & (N - 1)]);
  }

 private:
  std::array<T, N> data_{};
  std::uint64_t head_ = 0, tail_ = 0;
};

class Log {
 public:
  using Sink = std::function<void(const Entry&)>;

  explicit Log(Level min_level = Level::kInfo) : min_level_(min_level) {}

  void add_sink(std::string name, Sink sink) { sinks_.emplace(std::move(name), std::move(sink)); }
  bool remove_sink(const std::string& name) { return sinks_.erase(name) != 0; }

  void write(Level level, std::string_view text) {
    if (level < min_level_) return;
    Entry e{++seq_, level, std::string(text)};
    for (auto& [name, sink] : sinks_) {
      (void)name;
      sink(e);
    }
    ring_.push(std::move(e));
    counts_[level_name(level)] += 1;
  }

  [[nodiscard]] std::optional<Entry> last() const {
    if (ring_.empty()) return std::nullopt;
    return ring_[ring_.size() - 1];
  }

  std::vector<Entry> grep(std::string_view needle) const {
    std::vector<Entry> out;
    ring_.for_each([&](const Entry& e) {
      if (e.text.find(needle) != std::string::npos) out.push_back(e);
    });
    return out;
  }

  const std::unordered_map<std::string, int>& counts() const { return counts_; }

 private:
  Level min_level_;
  std::uint64_t seq_ = 0;
  Ring<Entry, 64> ring_;
  std::map<std::string, Sink> sinks_;
  std::unordered_map<std::string, int> counts_;
};

// Bit tricks, because every log eventually grows some.
inline std::uint32_t next_pow2(std::uint32_t v) {
  if (v <= 1) return 1;
  --v;
  v |= v >> 1;
  v |= v >> 2;
  v |= v >> 4;
  v |= v >> 8;
  v |= v >> 16;
  return v + 1;
}

inline std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace ringlog

int main(int argc, char** argv) {
  using namespace ringlog;
  Log log(argc > 1 ? Level::kDebug : Level::kInfo);
  int printed = 0;
  log.add_sink("stderr", [&printed](const Entry& e) {
    std::fprintf(stderr, "[%06llu] %s %s\n", static_cast<unsigned long long>(e.seq),
                 level_name(e.level), e.text.c_str());
    ++printed;
  });
  for (int i = 0; i < 100; ++i) {
    const Level l = (i % 10 == 0) ? Level::kWarn : (i % 3 == 0 ? Level::kDebug : Level::kInfo);
    log.write(l, "tick " + std::to_string(i) + (i % 7 == 0 ? " (lucky)" : ""));
  }
  auto lucky = log.grep("lucky");
  std::printf("lucky=%zu printed=%d next_pow2(100)=%u fnv=%016llx\n", lucky.size(), printed,
              next_pow2(100), static_cast<unsigned long long>(fnv1a(argv[0])));
  if (auto e = log.last(); e && e->seq >= 1) {
    std::printf("last: #%llu \"%s\"\n", static_cast<unsigned long long>(e->seq), e->text.c_str());
  }
  int x = 5;
  x <<= 2; x >>= 1; x ^= 0x0F; x &= ~0x3; x |= 1 << 4;
  bool ok = x != 0 && !(x == 3) || x >= 2 && x <= 1000;
  std::printf("%s\t%d\n", ok ? "ok" : "not ok", x);
  return ok ? 0 : 1;
}
