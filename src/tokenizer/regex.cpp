#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"
#include "common/quote.h"
#include "tokenizer/utf8.h"

namespace m3 {
namespace {

constexpr std::size_t kMaxPatternBytes = 16 * 1024;
// Bounds on one pcre2_match call, so a pathological pattern cannot hang encode.
constexpr uint32_t kMatchLimit = 50'000'000;
constexpr uint32_t kDepthLimit = 1'000'000;

// Oniguruma's Unicode classes, spelled for PCRE2. Oniguruma's \s is the White_Space property
// (PCRE2's \s also takes U+180E); its \w is Letter|Mark|Number|Connector_Punctuation (PCRE2's
// lacks marks); its \h is a hex digit (PCRE2's is horizontal space).
constexpr const char* kSpace = "\\p{White_Space}";
constexpr const char* kWord = "\\p{L}\\p{M}\\p{N}\\p{Pc}";
constexpr const char* kHex = "0-9a-fA-F";

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string oniguruma_to_pcre2(std::string_view p, const std::string& where) {
  if (p.size() > kMaxPatternBytes) fail(M3_ERR_UNSUPPORTED, where + ": regex longer than 16 KiB");
  auto unsupported = [&](const std::string& what) {
    fail(M3_ERR_UNSUPPORTED, where + ": unsupported regex construct " + what + " in " + quote_for_message(p));
  };
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  std::size_t i = 0;
  // Copies from i up to and including the first `close` (for \p{..}, \x{..}, [:..:]).
  auto copy_through = [&](char close) {
    const std::size_t end = p.find(close, i);
    if (end == std::string_view::npos) {
      out.append(p.substr(i));
      i = p.size();
    } else {
      out.append(p.substr(i, end + 1 - i));
      i = end + 1;
    }
  };
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= p.size()) {
        out += c;  // PCRE2 reports the trailing backslash
        ++i;
        continue;
      }
      const char e = p[i + 1];
      const char* cls = nullptr;
      bool negated = false;
      switch (e) {
        case 's': cls = kSpace; break;
        case 'S': cls = kSpace; negated = true; break;
        case 'w': cls = kWord; break;
        case 'W': cls = kWord; negated = true; break;
        case 'h': cls = kHex; break;
        case 'H': cls = kHex; negated = true; break;
        default: break;
      }
      if (cls != nullptr) {
        if (!in_class) {
          out += negated ? "[^" : "[";
          out += cls;
          out += "]";
        } else if (negated) {
          unsupported(std::string("\\") + e + " inside a character class");
        } else {
          out += cls;
        }
        i += 2;
        continue;
      }
      if (e == 'v') {  // Oniguruma: the VT character; PCRE2: vertical space class
        out += "\\x0B";
        i += 2;
        continue;
      }
      if (e == 'u' && i + 6 <= p.size() && is_hex(p[i + 2]) && is_hex(p[i + 3]) &&
          is_hex(p[i + 4]) && is_hex(p[i + 5])) {
        out += "\\x{";
        out.append(p.substr(i + 2, 4));
        out += "}";
        i += 6;
        continue;
      }
      if ((e == 'p' || e == 'P' || e == 'x') && i + 2 < p.size() && p[i + 2] == '{') {
        copy_through('}');
        continue;
      }
      if (e == 'G') unsupported("\\G");
      // Everything else (\p without braces, \d, \b, \A, \z, \n, \t, escaped literals, ...) means
      // the same in both engines. Copy the escaped character whole (it may be multi-byte).
      const std::size_t n = 1 + (static_cast<unsigned char>(e) < 0x80 ? 1
                                 : static_cast<unsigned char>(e) < 0xE0 ? 2
                                 : static_cast<unsigned char>(e) < 0xF0 ? 3 : 4);
      out.append(p.substr(i, n));
      i += n;
      continue;
    }
    if (in_class) {
      if (c == ']') {
        in_class = false;
      } else if (c == '[') {
        if (i + 1 < p.size() && p[i + 1] == ':') {
          copy_through(']');
          continue;
        }
        unsupported("'[' (nested character class)");
      } else if (c == '&' && i + 1 < p.size() && p[i + 1] == '&') {
        unsupported("'&&' (class intersection)");
      }
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < p.size() && p[i] == '^') out += p[i++];
      if (i < p.size() && p[i] == ']') out += p[i++];  // a leading ']' is literal in both
      continue;
    }
    if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
      // Inline options: Ruby's (?m) is "dot matches newline", PCRE2's (?s).
      std::size_t j = i + 2;
      while (j < p.size() && (p[j] == 'i' || p[j] == 'm' || p[j] == 'x' || p[j] == '-')) ++j;
      if (j > i + 2 && j < p.size() && (p[j] == ':' || p[j] == ')')) {
        out += "(?";
        for (std::size_t k = i + 2; k < j; ++k) out += p[k] == 'm' ? 's' : p[k];
        i = j;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

struct Regex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Code() { pcre2_code_free(code); }
};

struct RegexScratch::Impl {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  ~Impl() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

RegexScratch::RegexScratch() : impl_(std::make_unique<Impl>()) {
  // One ovector pair is enough: we only read the whole match (rc == 0 then means "matched").
  impl_->data = pcre2_match_data_create(1, nullptr);
  impl_->context = pcre2_match_context_create(nullptr);
  if (impl_->data == nullptr || impl_->context == nullptr) fail(M3_ERR_OUT_OF_MEMORY, "tokenizer: out of memory");
  pcre2_set_match_limit(impl_->context, kMatchLimit);
  pcre2_set_depth_limit(impl_->context, kDepthLimit);
  impl_->jit_stack = pcre2_jit_stack_create(64 * 1024, 8 * 1024 * 1024, nullptr);
  if (impl_->jit_stack != nullptr) pcre2_jit_stack_assign(impl_->context, nullptr, impl_->jit_stack);
}

RegexScratch::~RegexScratch() = default;

Regex::Regex(const std::string& pattern, const std::string& where) : code_(std::make_unique<Code>()), where_(where) {
  int err = 0;
  PCRE2_SIZE err_off = 0;
  // Ruby syntax: ^ and $ are line anchors.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE | PCRE2_NEVER_BACKSLASH_C;
  code_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err,
                              &err_off, nullptr);
  if (code_->code == nullptr) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(M3_ERR_FORMAT, where + ": regex does not compile (" + reinterpret_cast<const char*>(msg) + " at offset " +
                            std::to_string(err_off) + "): " + quote_for_message(pattern));
  }
  code_->jit = pcre2_jit_compile(code_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() = default;

std::unique_ptr<Regex> Regex::from_oniguruma(std::string_view pattern, const std::string& where) {
  return std::unique_ptr<Regex>(new Regex(oniguruma_to_pcre2(pattern, where), where));
}

std::unique_ptr<Regex> Regex::from_pcre2(const std::string& pattern, const std::string& where) {
  return std::unique_ptr<Regex>(new Regex(pattern, where));
}

std::unique_ptr<Regex> Regex::literal(std::string_view text, const std::string& where) {
  if (text.size() > kMaxPatternBytes) fail(M3_ERR_UNSUPPORTED, where + ": pattern longer than 16 KiB");
  // \Q..\E quotes everything except a literal "\E", which we split around.
  std::string pat;
  std::size_t i = 0;
  while (i <= text.size()) {
    const std::size_t e = text.find("\\E", i);
    const std::size_t end = e == std::string_view::npos ? text.size() : e;
    if (end > i) {
      pat += "\\Q";
      pat.append(text.substr(i, end - i));
      pat += "\\E";
    }
    if (e == std::string_view::npos) break;
    pat += "\\\\E";
    i = e + 2;
  }
  return std::unique_ptr<Regex>(new Regex(pat, where));
}

namespace {

// One search from `start`; returns false when there is no match.
bool search(const pcre2_code* code, std::string_view text, std::size_t start, uint32_t options, RegexScratch::Impl& s,
            const std::string& where, std::size_t& ms, std::size_t& me) {
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                             options | PCRE2_NO_UTF_CHECK, s.data, s.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    fail(M3_ERR_INVALID_ARGUMENT, where + ": regex matching failed near byte " + std::to_string(start) + " (" +
                                      reinterpret_cast<const char*>(msg) + ")");
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.data);
  ms = ov[0];
  me = ov[1];
  return true;
}

}  // namespace

void Regex::find_all(std::string_view text, RegexScratch& scratch, std::vector<Span>& out) const {
  RegexScratch::Impl& s = *scratch.impl();
  std::size_t last_end = 0;
  bool skip_next_empty = false;
  while (last_end <= text.size()) {
    std::size_t ms = 0, me = 0;
    if (!search(code_->code, text, last_end, 0, s, where_, ms, me)) break;
    last_end = me;
    if (ms == me) {
      // onig's find_iter: step over one character after an empty match, and drop an empty
      // match that follows a non-empty one.
      last_end += last_end < text.size() ? utf8::seq_len(static_cast<unsigned char>(text[last_end])) : 1;
      if (skip_next_empty) {
        skip_next_empty = false;
        continue;
      }
    } else {
      skip_next_empty = true;
    }
    out.emplace_back(ms, me);
  }
}

bool Regex::matches_at_start(std::string_view text, RegexScratch& scratch) const {
  std::size_t ms = 0, me = 0;
  return search(code_->code, text, 0, PCRE2_ANCHORED, *scratch.impl(), where_, ms, me);
}

}  // namespace m3
