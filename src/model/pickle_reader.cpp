#include "model/pickle_reader.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iterator>
#include <limits>
#include <set>
#include <utility>

#include "common/error.h"
#include "common/quote.h"

namespace m3 {
namespace {

// Caps on what a pickle may build. A state dict needs a handful of items per tensor; these
// are far above any real model and far below what would exhaust memory.
constexpr std::size_t kMaxStack = std::size_t{1} << 20;
constexpr std::size_t kMaxMarks = std::size_t{1} << 20;
constexpr std::size_t kMaxContainer = std::size_t{1} << 20;
constexpr uint64_t kMaxMemoIndex = uint64_t{1} << 24;
constexpr std::size_t kMaxRank = 64;
constexpr std::size_t kMaxStorageKey = 256;  // torch keys are short decimal numbers
constexpr std::size_t kMaxGlobalLine = 256;
constexpr int kHighestProtocol = 5;

// Pickle opcodes (see Python's pickletools).
enum Op : uint8_t {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', FLOAT = 'F', INT = 'I',
  BININT = 'J', BININT1 = 'K', LONG = 'L', BININT2 = 'M', NONE = 'N', PERSID = 'P',
  BINPERSID = 'Q', REDUCE = 'R', STRING = 'S', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  UNICODE = 'V', BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd',
  EMPTY_DICT = '}', APPENDS = 'e', GET = 'g', BINGET = 'h', INST = 'i', LONG_BINGET = 'j',
  LIST = 'l', EMPTY_LIST = ']', OBJ = 'o', PUT = 'p', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINFLOAT = 'G',
  PROTO = 0x80, NEWOBJ = 0x81, EXT1 = 0x82, EXT2 = 0x83, EXT4 = 0x84, TUPLE1 = 0x85,
  TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a, LONG4 = 0x8b,
  BINBYTES = 'B', SHORT_BINBYTES = 'C', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d,
  BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92,
  STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95, BYTEARRAY8 = 0x96, NEXT_BUFFER = 0x97,
  READONLY_BUFFER = 0x98,
};

// Name of a standard pickle opcode, or nullptr for a byte that is not one.
const char* opcode_name(uint8_t op) {
  switch (op) {
    case MARK: return "MARK";
    case STOP: return "STOP";
    case POP: return "POP";
    case POP_MARK: return "POP_MARK";
    case DUP: return "DUP";
    case FLOAT: return "FLOAT";
    case INT: return "INT";
    case BININT: return "BININT";
    case BININT1: return "BININT1";
    case LONG: return "LONG";
    case BININT2: return "BININT2";
    case NONE: return "NONE";
    case PERSID: return "PERSID";
    case BINPERSID: return "BINPERSID";
    case REDUCE: return "REDUCE";
    case STRING: return "STRING";
    case BINSTRING: return "BINSTRING";
    case SHORT_BINSTRING: return "SHORT_BINSTRING";
    case UNICODE: return "UNICODE";
    case BINUNICODE: return "BINUNICODE";
    case APPEND: return "APPEND";
    case BUILD: return "BUILD";
    case GLOBAL: return "GLOBAL";
    case DICT: return "DICT";
    case EMPTY_DICT: return "EMPTY_DICT";
    case APPENDS: return "APPENDS";
    case GET: return "GET";
    case BINGET: return "BINGET";
    case INST: return "INST";
    case LONG_BINGET: return "LONG_BINGET";
    case LIST: return "LIST";
    case EMPTY_LIST: return "EMPTY_LIST";
    case OBJ: return "OBJ";
    case PUT: return "PUT";
    case BINPUT: return "BINPUT";
    case LONG_BINPUT: return "LONG_BINPUT";
    case SETITEM: return "SETITEM";
    case TUPLE: return "TUPLE";
    case EMPTY_TUPLE: return "EMPTY_TUPLE";
    case SETITEMS: return "SETITEMS";
    case BINFLOAT: return "BINFLOAT";
    case PROTO: return "PROTO";
    case NEWOBJ: return "NEWOBJ";
    case EXT1: return "EXT1";
    case EXT2: return "EXT2";
    case EXT4: return "EXT4";
    case TUPLE1: return "TUPLE1";
    case TUPLE2: return "TUPLE2";
    case TUPLE3: return "TUPLE3";
    case NEWTRUE: return "NEWTRUE";
    case NEWFALSE: return "NEWFALSE";
    case LONG1: return "LONG1";
    case LONG4: return "LONG4";
    case BINBYTES: return "BINBYTES";
    case SHORT_BINBYTES: return "SHORT_BINBYTES";
    case SHORT_BINUNICODE: return "SHORT_BINUNICODE";
    case BINUNICODE8: return "BINUNICODE8";
    case BINBYTES8: return "BINBYTES8";
    case EMPTY_SET: return "EMPTY_SET";
    case ADDITEMS: return "ADDITEMS";
    case FROZENSET: return "FROZENSET";
    case NEWOBJ_EX: return "NEWOBJ_EX";
    case STACK_GLOBAL: return "STACK_GLOBAL";
    case MEMOIZE: return "MEMOIZE";
    case FRAME: return "FRAME";
    case BYTEARRAY8: return "BYTEARRAY8";
    case NEXT_BUFFER: return "NEXT_BUFFER";
    case READONLY_BUFFER: return "READONLY_BUFFER";
  }
  return nullptr;
}

std::string hex_byte(uint8_t b) {
  static const char* hex = "0123456789abcdef";
  return std::string("0x") + hex[b >> 4] + hex[b & 15];
}

// Python decodes pickle strings as UTF-8 with 'surrogatepass', so lone surrogates are allowed.
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (n - i < len) return false;
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

// The only globals a state dict may name. Anything else is refused before it is even pushed.
enum class Global : uint8_t { OrderedDict, RebuildTensorV2, RebuildTensor, StorageType };

struct AllowedGlobal {
  std::string_view module, name;
  Global global;
  DType dtype;  // for StorageType
};

constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Global::OrderedDict, DType::U8},
    {"torch._utils", "_rebuild_tensor_v2", Global::RebuildTensorV2, DType::U8},
    {"torch._utils", "_rebuild_tensor", Global::RebuildTensor, DType::U8},
    {"torch", "FloatStorage", Global::StorageType, DType::F32},
    {"torch", "HalfStorage", Global::StorageType, DType::F16},
    {"torch", "BFloat16Storage", Global::StorageType, DType::BF16},
    {"torch", "DoubleStorage", Global::StorageType, DType::F64},
    {"torch", "LongStorage", Global::StorageType, DType::I64},
    {"torch", "IntStorage", Global::StorageType, DType::I32},
    {"torch", "ShortStorage", Global::StorageType, DType::I16},
    {"torch", "CharStorage", Global::StorageType, DType::I8},
    {"torch", "ByteStorage", Global::StorageType, DType::U8},
    {"torch", "BoolStorage", Global::StorageType, DType::Bool},
};

// A value is a small tagged handle. Strings, containers, storages and tensors live in
// per-kind arenas owned by the unpickler and are referred to by index: sharing through the
// memo works as in Python (the same list/dict object), cycles are harmless, and tearing down
// deeply nested data never recurses.
struct Value {
  Kind kind = Kind::None;
  uint32_t ref = 0;  // arena index (Str/Bytes, Tuple/List, Dict, Storage, Tensor); allowed-global index
  int64_t num = 0;   // Bool/Int value; Float bit pattern
};

struct Dict {
  std::vector<std::pair<Value, Value>> items;  // insertion order
  bool ordered_dict = false;                   // made by collections.OrderedDict()
};

struct Tensor {
  std::size_t storage = 0;
  int64_t storage_offset = 0;
  std::vector<int64_t> shape, stride;
};

class Unpickler {
 public:
  Unpickler(std::span<const uint8_t> in, const std::string& where) : in_(in), where_(where) {}

  PickledStateDict run() {
    // Every opcode creates at most one arena object, so this keeps all indices in uint32_t.
    if (in_.size() >= std::numeric_limits<uint32_t>::max()) {
      fail(M3_ERR_UNSUPPORTED, where_ + ": pickle of " + std::to_string(in_.size()) + " bytes is too large");
    }
    while (pos_ < in_.size()) {
      op_pos_ = pos_;
      op_ = in_[pos_++];
      if (step()) return state_dict(stack_.front());
    }
    fail(M3_ERR_FORMAT, where_ + ": truncated pickle: ended after " + std::to_string(in_.size()) +
                            " bytes without a STOP opcode");
  }

 private:
  // ---- errors -------------------------------------------------------------------------------
  [[noreturn]] void bad(m3_status status, const std::string& msg) const {
    const char* name = opcode_name(op_);
    fail(status, where_ + ": at offset " + std::to_string(op_pos_) + " (" +
                     (name ? name : hex_byte(op_)) + "): " + msg);
  }

  // ---- input --------------------------------------------------------------------------------
  const uint8_t* take(uint64_t len) {
    if (len > in_.size() - pos_) {
      bad(M3_ERR_FORMAT, "truncated pickle: needs " + std::to_string(len) + " more bytes, " +
                             std::to_string(in_.size() - pos_) + " left");
    }
    const uint8_t* p = in_.data() + pos_;
    pos_ += static_cast<std::size_t>(len);
    return p;
  }
  uint64_t read_le(unsigned bytes) {
    const uint8_t* p = take(bytes);
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
  }
  std::string_view read_text(uint64_t len) {
    const uint8_t* p = take(len);
    std::string_view s(reinterpret_cast<const char*>(p), static_cast<std::size_t>(len));
    if (!valid_utf8(s)) bad(M3_ERR_FORMAT, "string is not valid UTF-8");
    return s;
  }
  // A newline-terminated line (GLOBAL operands), without the newline.
  std::string_view read_line() {
    const std::size_t avail = std::min(in_.size() - pos_, kMaxGlobalLine + 1);
    const uint8_t* start = in_.data() + pos_;
    const void* nl = std::memchr(start, '\n', avail);
    if (!nl) bad(M3_ERR_FORMAT, "truncated or overlong GLOBAL operand (no newline)");
    const auto len = static_cast<std::size_t>(static_cast<const uint8_t*>(nl) - start);
    std::string_view s = read_text(len);
    ++pos_;  // the newline
    return s;
  }

  // ---- stack --------------------------------------------------------------------------------
  // As in Python, a MARK hides everything below it: ops between a MARK and its consumer can
  // only pop what was pushed after the MARK.
  std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) {
    if (stack_.size() >= kMaxStack) bad(M3_ERR_FORMAT, "stack exceeds " + std::to_string(kMaxStack) + " items");
    stack_.push_back(v);
  }
  Value pop() {
    if (stack_.size() <= floor()) bad(M3_ERR_FORMAT, "stack underflow");
    Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= floor()) bad(M3_ERR_FORMAT, "stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) bad(M3_ERR_FORMAT, "no MARK on the stack");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  // ---- arenas -------------------------------------------------------------------------------
  template <class T>
  static uint32_t add(std::vector<T>& arena, T item) {
    arena.push_back(std::move(item));
    return static_cast<uint32_t>(arena.size() - 1);
  }
  Value str_value(Kind kind, std::string_view s) { return {kind, add(strings_, s), 0}; }
  Value seq_value(Kind kind, std::vector<Value> items) {
    if (items.size() > kMaxContainer) {
      bad(M3_ERR_FORMAT, "container exceeds " + std::to_string(kMaxContainer) + " items");
    }
    return {kind, add(seqs_, std::move(items)), 0};
  }
  Value dict_value(bool ordered) { return {Kind::Dict, add(dicts_, Dict{{}, ordered}), 0}; }
  static Value int_value(int64_t v) { return {Kind::Int, 0, v}; }
  static Value bool_value(bool v) { return {Kind::Bool, 0, v ? 1 : 0}; }

  std::string describe(const Value& v) const {
    if (v.kind == Kind::Global) {
      const AllowedGlobal& g = kAllowedGlobals[v.ref];
      return "global '" + std::string(g.module) + " " + std::string(g.name) + "'";
    }
    return kind_name(v.kind);
  }
  std::string_view text(const Value& v) const { return strings_[v.ref]; }

  void dict_set(Value dict, Value key, Value value) {
    if (dict.kind != Kind::Dict) bad(M3_ERR_FORMAT, "target is a " + describe(dict) + ", not a dict");
    if (key.kind == Kind::List || key.kind == Kind::Dict) {
      bad(M3_ERR_FORMAT, "unhashable dict key of type " + describe(key));
    }
    auto& items = dicts_[dict.ref].items;
    if (items.size() >= kMaxContainer) bad(M3_ERR_FORMAT, "dict exceeds " + std::to_string(kMaxContainer) + " items");
    // Duplicate keys are detected once, on the top-level dict; inner dicts are never looked up.
    items.emplace_back(key, value);
  }
  void list_append(Value list, const Value* items, std::size_t count) {
    if (list.kind != Kind::List) bad(M3_ERR_FORMAT, "target is a " + describe(list) + ", not a list");
    auto& seq = seqs_[list.ref];
    if (count > kMaxContainer - seq.size()) {
      bad(M3_ERR_FORMAT, "list exceeds " + std::to_string(kMaxContainer) + " items");
    }
    seq.insert(seq.end(), items, items + count);
  }

  // ---- memo ---------------------------------------------------------------------------------
  void memo_put(uint64_t index) {
    // A pickler numbers memo entries 0, 1, 2, ... and each needs an opcode, so an index beyond
    // the pickle's size is bogus; refusing it bounds the memo's memory by the input size.
    if (index >= kMaxMemoIndex || index > in_.size()) {
      bad(M3_ERR_FORMAT, "memo index " + std::to_string(index) + " out of range");
    }
    const Value v = top();
    const auto i = static_cast<std::size_t>(index);
    if (i >= memo_.size()) {
      memo_.resize(i + 1);
      memo_set_.resize(i + 1, false);
    }
    if (!memo_set_[i]) ++memo_count_;
    memo_[i] = v;
    memo_set_[i] = true;
  }
  void memo_get(uint64_t index) {
    if (index >= memo_.size() || !memo_set_[static_cast<std::size_t>(index)]) {
      bad(M3_ERR_FORMAT, "memo index " + std::to_string(index) + " was never stored");
    }
    push(memo_[static_cast<std::size_t>(index)]);
  }

  // ---- globals, persistent ids, calls -------------------------------------------------------
  Value global(std::string_view module, std::string_view name) {
    for (std::size_t i = 0; i < std::size(kAllowedGlobals); ++i) {
      if (kAllowedGlobals[i].module == module && kAllowedGlobals[i].name == name) {
        return {Kind::Global, static_cast<uint32_t>(i), 0};
      }
    }
    std::string full(module);
    full += ' ';
    full += name;
    bad(M3_ERR_UNSUPPORTED, "references disallowed global " + quote_for_message(full) +
                                " (only tensor state dicts can be loaded)");
  }

  // ('storage', torch.<T>Storage, key, location, numel), as torch.save writes for each storage.
  Value storage(Value pid) {
    const std::string expected =
        "persistent id is not ('storage', <storage type>, key, location, numel)";
    if (pid.kind != Kind::Tuple || seqs_[pid.ref].size() != 5) bad(M3_ERR_FORMAT, expected);
    const std::vector<Value>& t = seqs_[pid.ref];
    if (t[0].kind != Kind::Str || text(t[0]) != "storage") bad(M3_ERR_FORMAT, expected);
    if (t[1].kind != Kind::Global || kAllowedGlobals[t[1].ref].global != Global::StorageType) {
      bad(M3_ERR_FORMAT, "persistent id names " + describe(t[1]) + " where a storage type belongs");
    }
    if (t[2].kind != Kind::Str || t[3].kind != Kind::Str || t[4].kind != Kind::Int) bad(M3_ERR_FORMAT, expected);
    const std::string_view key = text(t[2]);
    if (key.empty() || key.size() > kMaxStorageKey) {
      bad(M3_ERR_FORMAT, "storage key " + quote_for_message(key) + " is empty or too long");
    }
    if (t[4].num < 0) bad(M3_ERR_FORMAT, "storage " + quote_for_message(key) + " has a negative size");
    PickledStorage s;
    s.dtype = kAllowedGlobals[t[1].ref].dtype;
    s.key = key;
    s.location = text(t[3]);
    s.numel = t[4].num;
    return {Kind::Storage, add(storages_, s), 0};
  }

  std::vector<int64_t> int_sequence(Value v, const char* what) {
    if (v.kind != Kind::Tuple && v.kind != Kind::List) {
      bad(M3_ERR_FORMAT, std::string("tensor ") + what + " is a " + describe(v) + ", not a tuple");
    }
    const std::vector<Value>& items = seqs_[v.ref];
    if (items.size() > kMaxRank) {
      bad(M3_ERR_UNSUPPORTED, std::string("tensor ") + what + " has " + std::to_string(items.size()) +
                                  " dimensions (at most " + std::to_string(kMaxRank) + ")");
    }
    std::vector<int64_t> out;
    out.reserve(items.size());
    for (const Value& item : items) {
      if (item.kind != Kind::Int) bad(M3_ERR_FORMAT, std::string("tensor ") + what + " holds a " + describe(item));
      out.push_back(item.num);
    }
    return out;
  }

  Value call(Value callable, Value args) {
    if (callable.kind != Kind::Global) bad(M3_ERR_FORMAT, "cannot call a " + describe(callable));
    if (args.kind != Kind::Tuple) bad(M3_ERR_FORMAT, "arguments are a " + describe(args) + ", not a tuple");
    const std::vector<Value>& a = seqs_[args.ref];
    const Global g = kAllowedGlobals[callable.ref].global;
    switch (g) {
      case Global::OrderedDict:
        // Its items arrive afterwards through SETITEM(S); only the empty constructor is needed.
        if (!a.empty()) bad(M3_ERR_UNSUPPORTED, "collections.OrderedDict called with arguments");
        return dict_value(true);
      case Global::RebuildTensorV2:
      case Global::RebuildTensor: {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
        //                    backward_hooks[, metadata]);  _rebuild_tensor(storage, offset, size, stride)
        const bool v2 = g == Global::RebuildTensorV2;
        if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4) {
          bad(M3_ERR_FORMAT, describe(callable) + " called with " + std::to_string(a.size()) + " arguments");
        }
        if (a[0].kind != Kind::Storage) bad(M3_ERR_FORMAT, "tensor storage is a " + describe(a[0]));
        if (a[1].kind != Kind::Int) bad(M3_ERR_FORMAT, "tensor storage offset is a " + describe(a[1]));
        if (v2 && a[4].kind != Kind::Bool) bad(M3_ERR_FORMAT, "tensor requires_grad is a " + describe(a[4]));
        if (v2 && a[5].kind != Kind::Dict) bad(M3_ERR_FORMAT, "tensor backward_hooks is a " + describe(a[5]));
        Tensor t;
        t.storage = a[0].ref;
        t.storage_offset = a[1].num;
        t.shape = int_sequence(a[2], "size");
        t.stride = int_sequence(a[3], "stride");
        if (t.shape.size() != t.stride.size()) {
          bad(M3_ERR_FORMAT, "tensor size has " + std::to_string(t.shape.size()) + " dimensions but stride has " +
                                 std::to_string(t.stride.size()));
        }
        return {Kind::Tensor, add(tensors_, std::move(t)), 0};
      }
      case Global::StorageType:
        break;
    }
    bad(M3_ERR_UNSUPPORTED, describe(callable) + " cannot be called");
  }

  void build(Value obj, Value state) {
    // OrderedDict.__reduce__ passes the instance __dict__ as state; for a state dict that is
    // {'_metadata': ...}, which only matters to nn.Module loading and is dropped here.
    if (obj.kind != Kind::Dict || !dicts_[obj.ref].ordered_dict) {
      bad(M3_ERR_UNSUPPORTED, "BUILD on a " + describe(obj) + " (only an OrderedDict's attributes are accepted)");
    }
    if (state.kind != Kind::Dict && state.kind != Kind::None) {
      bad(M3_ERR_UNSUPPORTED, "BUILD with a " + describe(state) + " state");
    }
  }

  // ---- the interpreter ----------------------------------------------------------------------
  // Executes the opcode in op_; returns true at STOP.
  bool step() {
    switch (op_) {
      case PROTO: {
        const uint64_t v = read_le(1);
        if (v > kHighestProtocol) bad(M3_ERR_UNSUPPORTED, "pickle protocol " + std::to_string(v));
        return false;
      }
      case FRAME: {
        // Frames only group opcodes for buffered reading; the content is read as usual.
        const uint64_t len = read_le(8);
        if (len > in_.size() - pos_) {
          bad(M3_ERR_FORMAT, "truncated pickle: frame of " + std::to_string(len) + " bytes, " +
                                 std::to_string(in_.size() - pos_) + " left");
        }
        return false;
      }
      case STOP:
        if (stack_.size() != 1 || !marks_.empty()) {
          bad(M3_ERR_FORMAT, "STOP with " + std::to_string(stack_.size()) + " stack items and " +
                                 std::to_string(marks_.size()) + " open MARKs (expected exactly one object)");
        }
        return true;
      case MARK:
        if (marks_.size() >= kMaxMarks) bad(M3_ERR_FORMAT, "too many open MARKs");
        marks_.push_back(stack_.size());
        return false;

      case NONE: push({}); return false;
      case NEWTRUE: push(bool_value(true)); return false;
      case NEWFALSE: push(bool_value(false)); return false;
      case BININT1: push(int_value(static_cast<int64_t>(read_le(1)))); return false;
      case BININT2: push(int_value(static_cast<int64_t>(read_le(2)))); return false;
      case BININT: push(int_value(static_cast<int32_t>(static_cast<uint32_t>(read_le(4))))); return false;
      case LONG1: {
        // Little-endian two's complement of n bytes; Python ints are unbounded, ours are 64-bit.
        const uint64_t n = read_le(1);
        if (n > 8) bad(M3_ERR_UNSUPPORTED, "integer of " + std::to_string(n) + " bytes exceeds 64 bits");
        if (n == 0) {
          push(int_value(0));
          return false;
        }
        uint64_t v = read_le(static_cast<unsigned>(n));
        if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(int_value(std::bit_cast<int64_t>(v)));
        return false;
      }
      case BINFLOAT: {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];  // big-endian
        push({Kind::Float, 0, std::bit_cast<int64_t>(bits)});
        return false;
      }

      case SHORT_BINUNICODE: push(str_value(Kind::Str, read_text(read_le(1)))); return false;
      case BINUNICODE: push(str_value(Kind::Str, read_text(read_le(4)))); return false;
      case BINUNICODE8: push(str_value(Kind::Str, read_text(read_le(8)))); return false;
      case SHORT_BINBYTES: {
        const uint64_t n = read_le(1);
        push(str_value(Kind::Bytes, {reinterpret_cast<const char*>(take(n)), static_cast<std::size_t>(n)}));
        return false;
      }
      case BINBYTES: {
        const uint64_t n = read_le(4);
        push(str_value(Kind::Bytes, {reinterpret_cast<const char*>(take(n)), static_cast<std::size_t>(n)}));
        return false;
      }

      case EMPTY_TUPLE: push(seq_value(Kind::Tuple, {})); return false;
      case EMPTY_LIST: push(seq_value(Kind::List, {})); return false;
      case EMPTY_DICT: push(dict_value(false)); return false;
      case TUPLE: push(seq_value(Kind::Tuple, pop_mark())); return false;
      case TUPLE1:
      case TUPLE2:
      case TUPLE3: {
        const std::size_t n = op_ - TUPLE1 + 1;
        std::vector<Value> items(n);
        for (std::size_t i = n; i-- > 0;) items[i] = pop();
        push(seq_value(Kind::Tuple, std::move(items)));
        return false;
      }

      case BINPUT: memo_put(read_le(1)); return false;
      case LONG_BINPUT: memo_put(read_le(4)); return false;
      case MEMOIZE: memo_put(memo_count_); return false;
      case BINGET: memo_get(read_le(1)); return false;
      case LONG_BINGET: memo_get(read_le(4)); return false;

      case GLOBAL: {
        const std::string_view module = read_line();
        const std::string_view name = read_line();
        push(global(module, name));
        return false;
      }
      case STACK_GLOBAL: {
        const Value name = pop();
        const Value module = pop();
        if (module.kind != Kind::Str || name.kind != Kind::Str) {
          bad(M3_ERR_FORMAT, "operands are " + describe(module) + " and " + describe(name) + ", not strings");
        }
        push(global(text(module), text(name)));
        return false;
      }
      case BINPERSID: push(storage(pop())); return false;
      case REDUCE: {
        const Value args = pop();
        const Value callable = pop();
        push(call(callable, args));
        return false;
      }
      case BUILD: {
        const Value state = pop();
        build(top(), state);
        return false;
      }

      case SETITEM: {
        const Value value = pop();
        const Value key = pop();
        dict_set(top(), key, value);
        return false;
      }
      case SETITEMS: {
        const std::vector<Value> items = pop_mark();
        if (items.size() % 2 != 0) bad(M3_ERR_FORMAT, "odd number of items (" + std::to_string(items.size()) + ")");
        const Value dict = top();
        for (std::size_t i = 0; i < items.size(); i += 2) dict_set(dict, items[i], items[i + 1]);
        return false;
      }
      case APPEND: {
        const Value value = pop();
        list_append(top(), &value, 1);
        return false;
      }
      case APPENDS: {
        const std::vector<Value> items = pop_mark();
        list_append(top(), items.data(), items.size());
        return false;
      }

      default:
        break;
    }
    if (opcode_name(op_)) {
      bad(M3_ERR_UNSUPPORTED, "unsupported pickle opcode " + hex_byte(op_) + " " + opcode_name(op_) +
                                  " (not used by tensor state dicts)");
    }
    bad(M3_ERR_FORMAT, "invalid pickle opcode " + hex_byte(op_));
  }

  // ---- the result ---------------------------------------------------------------------------
  PickledStateDict state_dict(Value root) {
    const std::string at = where_ + ": ";
    if (root.kind != Kind::Dict) {
      fail(M3_ERR_FORMAT, at + "top-level object is a " + describe(root) + ", not a state dict");
    }
    PickledStateDict out;
    const auto& items = dicts_[root.ref].items;
    out.tensors.reserve(items.size());
    std::set<std::string_view> seen;  // a tree: untrusted keys cannot force hash collisions
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& [key, value] = items[i];
      if (key.kind != Kind::Str) {
        fail(M3_ERR_FORMAT, at + "state dict key #" + std::to_string(i) + " is a " + describe(key) + ", not a string");
      }
      const std::string_view name = text(key);
      if (value.kind != Kind::Tensor) {
        fail(M3_ERR_FORMAT, at + "state dict entry " + quote_for_message(name) + " is a " + describe(value) +
                                ", not a tensor");
      }
      if (!seen.insert(name).second) fail(M3_ERR_FORMAT, at + "duplicate state dict key " + quote_for_message(name));
      const Tensor& t = tensors_[value.ref];
      out.tensors.push_back(PickledTensor{name, t.storage, t.storage_offset, t.shape, t.stride});
    }
    out.storages = std::move(storages_);
    return out;
  }

  std::span<const uint8_t> in_;
  const std::string& where_;
  std::size_t pos_ = 0;
  std::size_t op_pos_ = 0;
  uint8_t op_ = 0;

  std::vector<Value> stack_;
  std::vector<std::size_t> marks_;
  std::vector<Value> memo_;
  std::vector<bool> memo_set_;
  uint64_t memo_count_ = 0;

  std::vector<std::string_view> strings_;
  std::vector<std::vector<Value>> seqs_;
  std::vector<Dict> dicts_;
  std::vector<PickledStorage> storages_;
  std::vector<Tensor> tensors_;
};

}  // namespace


PickledStateDict read_pickled_state_dict(std::span<const uint8_t> pickle, const std::string& where) {
  return Unpickler(pickle, where).run();
}

}  // namespace m3
