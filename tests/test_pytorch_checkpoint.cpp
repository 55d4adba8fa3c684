// Tests of the torch.save() checkpoint reader: the ZIP layer, the restricted unpickler and the
// glue between them. Malformed and malicious inputs are built here, byte by byte; the one
// committed fixture (data/pickle/ordered_p4.bin) comes from the real Python pickler, see
// data/pickle/make_fixtures.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "model/mapped_file.h"
#include "model/pickle_reader.h"
#include "model/pytorch_checkpoint_reader.h"
#include "model/tensor.h"
#include "model/zip_archive.h"

namespace {

using Bytes = std::vector<uint8_t>;

const char* kGoldenBin = "data/golden/siso_basic_bin/pytorch_model.bin";
const char* kGoldenSafetensors = "data/golden/siso_basic/model.safetensors";
const char* kFixtureP4 = "data/pickle/ordered_p4.bin";
const std::string kLabel = "mem.bin";

Bytes slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return Bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// An exactly-sized, 64-byte aligned heap copy: aligned like a mapped file, and any read past
// its end is caught by AddressSanitizer.
class AlignedBuf {
 public:
  explicit AlignedBuf(std::span<const uint8_t> src)
      : size_(src.size()),
        data_(static_cast<uint8_t*>(::operator new(std::max<std::size_t>(size_, 1), std::align_val_t{64}))) {
    if (size_) std::memcpy(data_, src.data(), size_);
  }
  ~AlignedBuf() { ::operator delete(data_, std::align_val_t{64}); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }

 private:
  std::size_t size_;
  uint8_t* data_;
};

struct Loaded {
  std::unique_ptr<AlignedBuf> buf;
  std::vector<m3::TensorView> views;
};

Loaded load(std::span<const uint8_t> bytes) {
  Loaded l;
  l.buf = std::make_unique<AlignedBuf>(bytes);
  l.views = m3::read_pytorch_checkpoint(l.buf->data(), l.buf->size(), kLabel);
  return l;
}

// Runs f, expects an m3::Error with `status`, returns its message ("" if none was thrown).
std::string error_of(const std::function<void()>& f, m3_status status) {
  try {
    f();
  } catch (const m3::Error& e) {
    EXPECT_EQ(m3_status(e.status()), status) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected an m3::Error";
  return "";
}

std::string load_error(std::span<const uint8_t> bytes, m3_status status) {
  std::string msg = error_of([&] { load(bytes); }, status);
  EXPECT_EQ(msg.rfind(kLabel + ": ", 0), 0u) << "message does not start with the path: " << msg;
  return msg;
}

// ---- byte builders ------------------------------------------------------------------------------

void put(Bytes& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put(Bytes& b, std::string_view s) { b.insert(b.end(), s.begin(), s.end()); }

// A pickle, written opcode by opcode.
struct P {
  Bytes b;
  P& op(uint8_t o) { b.push_back(o); return *this; }
  P& proto(uint8_t v) { return op(0x80).op(v); }
  P& str(std::string_view s) { op('X'); put(b, s.size(), 4); put(b, s); return *this; }
  P& sstr(std::string_view s) { op(0x8c); put(b, s.size(), 1); put(b, s); return *this; }
  P& global(std::string_view mod, std::string_view name) {
    op('c');
    put(b, mod);
    op('\n');
    put(b, name);
    return op('\n');
  }
  // Smallest encoding, as Python's pickler chooses it.
  P& integer(int64_t v) {
    if (v >= 0 && v < 256) return op('K').op(static_cast<uint8_t>(v));
    if (v >= 0 && v < 65536) { op('M'); put(b, static_cast<uint64_t>(v), 2); return *this; }
    if (v >= INT32_MIN && v <= INT32_MAX) { op('J'); put(b, static_cast<uint32_t>(v), 4); return *this; }
    int n = 1;
    while (n < 8 && !(v >= -(int64_t{1} << (8 * n - 1)) && v < (int64_t{1} << (8 * n - 1)))) ++n;
    op(0x8a).op(static_cast<uint8_t>(n));
    put(b, static_cast<uint64_t>(v), n);
    return *this;
  }
  P& raw(std::initializer_list<uint8_t> bytes) { b.insert(b.end(), bytes); return *this; }
};

std::vector<int64_t> contiguous(const std::vector<int64_t>& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

struct TSpec {
  TSpec(std::string name_, std::string key_, int64_t numel_, std::vector<int64_t> shape_,
        std::vector<int64_t> stride_ = {}, int64_t offset_ = 0, std::string storage_type_ = "FloatStorage")
      : name(std::move(name_)), key(std::move(key_)), numel(numel_), shape(std::move(shape_)),
        stride(std::move(stride_)), offset(offset_), storage_type(std::move(storage_type_)) {}
  std::string name;
  std::string key;  // storage key
  int64_t numel;    // storage elements
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // empty: contiguous
  int64_t offset;
  std::string storage_type;
};

// One tensor as torch pickles it: _rebuild_tensor_v2((storage pid), offset, size, stride,
// False, OrderedDict()).
void put_tensor(P& p, const TSpec& t) {
  p.global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", t.storage_type).str(t.key).str("cpu").integer(t.numel).op('t');
  p.op('Q').integer(t.offset).op('(');
  for (int64_t d : t.shape) p.integer(d);
  p.op('t').op('(');
  for (int64_t d : t.stride.empty() ? contiguous(t.shape) : t.stride) p.integer(d);
  p.op('t').op(0x89).global("collections", "OrderedDict").op(')').op('R').op('t').op('R');
}

// A protocol-2 state dict like torch.save(): {name: tensor, ...}.
Bytes state_dict_pickle(const std::vector<TSpec>& tensors) {
  P p;
  p.proto(2).op('}').op('(');
  for (const TSpec& t : tensors) {
    p.str(t.name);
    put_tensor(p, t);
  }
  p.op('u').op('.');
  return p.b;
}

struct ZipItem {
  std::string name;
  Bytes data;
  uint16_t method = 0;
};

struct ZipOptions {
  bool zip64 = false;
  uint64_t align = 64;
  uint64_t misalign = 0;  // data offset % align
};

// A ZIP laid out as torch writes it: stored entries whose local extra field ("FB" padding)
// puts the data at a multiple of `align`; optionally with ZIP64 records throughout.
Bytes make_zip(const std::vector<ZipItem>& items, ZipOptions opt = {}) {
  Bytes out;
  std::vector<uint64_t> offsets;
  for (const ZipItem& it : items) {
    offsets.push_back(out.size());
    const uint64_t base = out.size() + 30 + it.name.size() + 4;
    const uint64_t pad = (opt.align + opt.misalign - base % opt.align) % opt.align;
    put(out, 0x04034b50, 4);
    put(out, 20, 2);
    put(out, 0x0800, 2);
    put(out, it.method, 2);
    put(out, 0, 4);  // time, date
    put(out, 0, 4);  // crc (not checked)
    put(out, it.data.size(), 4);
    put(out, it.data.size(), 4);
    put(out, it.name.size(), 2);
    put(out, 4 + pad, 2);
    put(out, it.name);
    put(out, 0x4246, 2);
    put(out, pad, 2);
    out.insert(out.end(), pad, 'Z');
    out.insert(out.end(), it.data.begin(), it.data.end());
  }
  const uint64_t cd_offset = out.size();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const ZipItem& it = items[i];
    put(out, 0x02014b50, 4);
    put(out, 45, 2);
    put(out, 45, 2);
    put(out, 0x0800, 2);
    put(out, it.method, 2);
    put(out, 0, 4);
    put(out, 0, 4);
    put(out, opt.zip64 ? 0xFFFFFFFFu : it.data.size(), 4);
    put(out, opt.zip64 ? 0xFFFFFFFFu : it.data.size(), 4);
    put(out, it.name.size(), 2);
    put(out, opt.zip64 ? 28 : 0, 2);
    put(out, 0, 2);  // comment
    put(out, 0, 2);  // disk
    put(out, 0, 2);
    put(out, 0, 4);
    put(out, opt.zip64 ? 0xFFFFFFFFu : offsets[i], 4);
    put(out, it.name);
    if (opt.zip64) {
      put(out, 0x0001, 2);
      put(out, 24, 2);
      put(out, it.data.size(), 8);
      put(out, it.data.size(), 8);
      put(out, offsets[i], 8);
    }
  }
  const uint64_t cd_size = out.size() - cd_offset;
  if (opt.zip64) {
    const uint64_t record = out.size();
    put(out, 0x06064b50, 4);
    put(out, 44, 8);
    put(out, 45, 2);
    put(out, 45, 2);
    put(out, 0, 4);
    put(out, 0, 4);
    put(out, items.size(), 8);
    put(out, items.size(), 8);
    put(out, cd_size, 8);
    put(out, cd_offset, 8);
    put(out, 0x07064b50, 4);
    put(out, 0, 4);
    put(out, record, 8);
    put(out, 1, 4);
  }
  put(out, 0x06054b50, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, opt.zip64 ? 0xFFFF : items.size(), 2);
  put(out, opt.zip64 ? 0xFFFF : items.size(), 2);
  put(out, opt.zip64 ? 0xFFFFFFFFu : cd_size, 4);
  put(out, opt.zip64 ? 0xFFFFFFFFu : cd_offset, 4);
  put(out, 0, 2);
  return out;
}

Bytes floats(std::size_t n, float start = 0.f) {
  Bytes b(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float f = start + static_cast<float>(i);
    std::memcpy(b.data() + 4 * i, &f, 4);
  }
  return b;
}

// A complete torch-style checkpoint: archive/data.pkl, archive/data/<key>..., archive/version.
Bytes checkpoint(const Bytes& pkl, const std::vector<std::pair<std::string, Bytes>>& storages,
                 ZipOptions opt = {}, std::string byteorder = "little") {
  std::vector<ZipItem> items{{"archive/data.pkl", pkl}};
  if (!byteorder.empty()) items.push_back({"archive/byteorder", Bytes(byteorder.begin(), byteorder.end())});
  for (const auto& [key, data] : storages) items.push_back({"archive/data/" + key, data});
  items.push_back({"archive/version", {'3', '\n'}});
  return make_zip(items, opt);
}

// Two float tensors: "a" [2, 3] on storage "0", "b" [4] on storage "1".
Bytes simple_checkpoint(ZipOptions opt = {}) {
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}, {"b", "1", 4, {4}}});
  return checkpoint(pkl, {{"0", floats(6)}, {"1", floats(4, 100.f)}}, opt);
}

// A bare pickle wrapped in a checkpoint whose storage "0" holds 16 floats.
Bytes wrap(const Bytes& pkl) { return checkpoint(pkl, {{"0", floats(16)}}); }

std::string pickle_error(const Bytes& pkl, m3_status status) {
  return error_of([&] { m3::read_pickled_state_dict(pkl, "x.pkl"); }, status);
}

const m3::TensorView& find(const std::vector<m3::TensorView>& views, const std::string& name) {
  for (const auto& v : views) {
    if (v.name == name) return v;
  }
  throw std::runtime_error("no tensor " + name);
}

template <class T>
std::vector<T> values(const m3::TensorView& v) {
  std::vector<T> out(v.nbytes / sizeof(T));
  std::memcpy(out.data(), v.data, v.nbytes);
  return out;
}

// ---- real files -----------------------------------------------------------------------------

TEST(PytorchCheckpoint, GoldenMatchesSafetensors) {
  m3::MappedFile bin(kGoldenBin);
  const std::vector<m3::TensorView> views = m3::read_pytorch_checkpoint(bin);

  m3::MappedFile st(kGoldenSafetensors);
  ASSERT_GE(st.size(), 8u);
  uint64_t header_len = 0;
  std::memcpy(&header_len, st.data(), 8);
  ASSERT_LE(header_len, st.size() - 8);
  const auto header = nlohmann::json::parse(st.data() + 8, st.data() + 8 + header_len);
  const uint8_t* st_data = st.data() + 8 + header_len;

  std::size_t compared = 0;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    SCOPED_TRACE(name);
    const m3::TensorView& v = find(views, name);
    EXPECT_EQ(info["dtype"].get<std::string>(), m3::dtype_name(v.dtype));
    EXPECT_EQ(info["shape"].get<std::vector<int64_t>>(), v.shape);
    const auto begin = info["data_offsets"][0].get<std::size_t>();
    const auto end = info["data_offsets"][1].get<std::size_t>();
    ASSERT_EQ(end - begin, v.nbytes);
    EXPECT_EQ(v.nbytes, static_cast<std::size_t>(v.numel()) * m3::dtype_size(v.dtype));
    EXPECT_EQ(std::memcmp(st_data + begin, v.data, v.nbytes), 0);
    // Zero copy: the view points into the mapped file.
    EXPECT_GE(static_cast<const uint8_t*>(v.data), bin.data());
    EXPECT_LE(static_cast<const uint8_t*>(v.data) + v.nbytes, bin.data() + bin.size());
    ++compared;
  }
  // The .bin has every safetensors tensor plus the tied lm_head.weight, in pickle order.
  EXPECT_EQ(compared, 20u);
  ASSERT_EQ(views.size(), compared + 1);
  EXPECT_EQ(views.front().name, "backbone.embedding.weight");
  EXPECT_EQ(views.back().name, "lm_head.weight");
  const m3::TensorView& emb = find(views, "backbone.embedding.weight");
  const m3::TensorView& head = find(views, "lm_head.weight");
  EXPECT_EQ(head.data, emb.data);
  EXPECT_EQ(head.nbytes, emb.nbytes);
  EXPECT_EQ(head.shape, (std::vector<int64_t>{304, 64}));
  EXPECT_EQ(head.dtype, m3::DType::F32);
}

TEST(PytorchCheckpoint, Protocol4OrderedDictFromPythonPickler) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, OrderedDict() + SETITEMS + BUILD(_metadata).
  m3::MappedFile file(kFixtureP4);
  const auto views = m3::read_pytorch_checkpoint(file);
  std::vector<std::string> names;
  for (const auto& v : views) names.push_back(v.name);
  EXPECT_EQ(names, (std::vector<std::string>{"embedding.weight", "half", "longs", "scalar", "flags", "bf16",
                                             "lm_head.weight"}));

  const auto& emb = find(views, "embedding.weight");
  EXPECT_EQ(emb.dtype, m3::DType::F32);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{3, 4}));
  const auto ev = values<float>(emb);
  ASSERT_EQ(ev.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(ev[i], 0.5f * i);
  EXPECT_EQ(find(views, "lm_head.weight").data, emb.data);

  const auto& half = find(views, "half");  // storage offset 1, size-1 dim with stride 7
  EXPECT_EQ(half.dtype, m3::DType::F16);
  EXPECT_EQ(half.shape, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(values<uint16_t>(half), (std::vector<uint16_t>{0xC000, 0x3400, 0x7BFF}));

  const auto& longs = find(views, "longs");
  EXPECT_EQ(longs.dtype, m3::DType::I64);
  EXPECT_EQ(values<int64_t>(longs), (std::vector<int64_t>{-1, int64_t{1} << 40, 3}));

  const auto& scalar = find(views, "scalar");  // shares the storage of "longs", offset 2
  EXPECT_TRUE(scalar.shape.empty());
  EXPECT_EQ(scalar.nbytes, 8u);
  EXPECT_EQ(scalar.data, static_cast<const uint8_t*>(longs.data) + 16);

  const auto& flags = find(views, "flags");
  EXPECT_EQ(flags.dtype, m3::DType::Bool);
  EXPECT_EQ(flags.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(values<uint8_t>(flags), (std::vector<uint8_t>{1, 0, 1}));

  const auto& bf16 = find(views, "bf16");
  EXPECT_EQ(bf16.dtype, m3::DType::BF16);
  EXPECT_EQ(values<uint16_t>(bf16), (std::vector<uint16_t>{0x3F80, 0xC000}));
}

// ---- well-formed synthetic checkpoints -----------------------------------------------------------

TEST(PytorchCheckpoint, SimpleSyntheticCheckpoint) {
  const Loaded l = load(simple_checkpoint());
  ASSERT_EQ(l.views.size(), 2u);
  EXPECT_EQ(l.views[0].name, "a");
  EXPECT_EQ(l.views[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(values<float>(l.views[0]), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(l.views[1].name, "b");
  EXPECT_EQ(values<float>(l.views[1]), (std::vector<float>{100, 101, 102, 103}));
}

TEST(PytorchCheckpoint, Zip64Archive) {
  const Loaded l = load(simple_checkpoint({.zip64 = true}));
  ASSERT_EQ(l.views.size(), 2u);
  EXPECT_EQ(values<float>(l.views[1]), (std::vector<float>{100, 101, 102, 103}));
}

TEST(PytorchCheckpoint, EveryRemainingOpcode) {
  // The rarer opcodes, placed where the reader must accept and ignore them: in the BUILD state
  // of an OrderedDict and in _rebuild_tensor_v2's optional metadata argument. Also the old
  // _rebuild_tensor, LONG1 sizes, BINUNICODE8, LONG_BINPUT/LONG_BINGET and MEMOIZE.
  P p;
  p.proto(4).op(0x95);
  put(p.b, 0, 8);  // an empty frame is legal
  p.global("collections", "OrderedDict").op(')').op('R').op('r');
  put(p.b, 150, 4);  // LONG_BINPUT
  // "a": _rebuild_tensor(storage, 2, (2, 2), (2, 1)) with numel as an 8-byte LONG1
  p.op(0x8d);
  put(p.b, 1, 8);
  put(p.b, "a");
  p.global("torch._utils", "_rebuild_tensor").op('(');
  p.op('(').sstr("storage").global("torch", "IntStorage").sstr("0").sstr("cuda:0").op(0x8a).op(8);
  put(p.b, 6, 8);
  p.op('t').op('Q').integer(2).integer(2).integer(2).op(0x86).integer(2).integer(1).op(0x86).op('t').op('R');
  p.op('s');
  // "b": v2 with metadata {'x': [None, True, 1.5, b'..', -3, -300, -70000, -2**40]}
  p.sstr("b").global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", "ShortStorage").str("1").str("cpu").integer(3).op('t').op('Q');
  p.integer(0).integer(3).op(0x85).integer(1).op(0x85).op(0x88).op('}').op('}').op(0x94).sstr("x").op(']');
  p.op('N').op('a').op('(').op(0x88).op('G').raw({0x3f, 0xf8, 0, 0, 0, 0, 0, 0}).op('C').op(2).raw({1, 2});
  p.op('B');
  put(p.b, 1, 4);
  p.raw({9}).integer(-3).integer(-300).integer(-70000).integer(-(int64_t{1} << 40)).op('e').op('s');
  p.op('t').op('R').op('s');
  // BUILD with a state that holds every scalar kind; then reuse "a" through the memo.
  p.op('}').sstr("_metadata").op('j');
  put(p.b, 150, 4);  // LONG_BINGET: the OrderedDict itself (a cycle is harmless)
  p.op('s').op('b').op('.');

  Bytes ints(24, 0);
  for (int i = 0; i < 6; ++i) ints[4 * i] = static_cast<uint8_t>(10 + i);
  const Loaded l = load(checkpoint(p.b, {{"0", ints}, {"1", {1, 0, 2, 0, 3, 0}}}));
  ASSERT_EQ(l.views.size(), 2u);
  EXPECT_EQ(l.views[0].name, "a");
  EXPECT_EQ(l.views[0].dtype, m3::DType::I32);
  EXPECT_EQ(l.views[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(values<int32_t>(l.views[0]), (std::vector<int32_t>{12, 13, 14, 15}));
  EXPECT_EQ(l.views[1].dtype, m3::DType::I16);
  EXPECT_EQ(values<int16_t>(l.views[1]), (std::vector<int16_t>{1, 2, 3}));
}

TEST(PytorchCheckpoint, EmptyStateDictAndEmptyTensor) {
  EXPECT_TRUE(load(wrap(P().proto(2).op('}').op('.').b)).views.empty());
  const Loaded l = load(checkpoint(state_dict_pickle({{"e", "0", 0, {0, 5}, {7, 3}}}), {{"0", {}}}));
  ASSERT_EQ(l.views.size(), 1u);
  EXPECT_EQ(l.views[0].nbytes, 0u);
  EXPECT_EQ(l.views[0].shape, (std::vector<int64_t>{0, 5}));
}

// ---- disallowed globals and opcodes ----------------------------------------------------------

TEST(PytorchCheckpoint, RejectsOsSystemViaGlobal) {
  const Bytes pkl = P().proto(2).global("os", "system").str("touch /tmp/pwned").op(0x85).op('R').op('.').b;
  const std::string msg = load_error(wrap(pkl), M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("archive/data.pkl"), std::string::npos) << msg;
  EXPECT_NE(msg.find("disallowed global 'os system'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 2"), std::string::npos) << msg;
}

TEST(PytorchCheckpoint, RejectsOsSystemViaStackGlobal) {
  P p;
  p.proto(4).sstr("os").op(0x94).sstr("system").op(0x94).op(0x93).op(0x94).sstr("id").op(0x85).op('R').op('.');
  const std::string msg = load_error(wrap(p.b), M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("disallowed global 'os system'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("STACK_GLOBAL"), std::string::npos) << msg;
}

TEST(PytorchCheckpoint, RejectsBuiltinsEvalAndOtherGlobals) {
  const Bytes eval = P().proto(2).global("builtins", "eval").str("1+1").op(0x85).op('R').op('.').b;
  EXPECT_NE(load_error(wrap(eval), M3_ERR_UNSUPPORTED).find("disallowed global 'builtins eval'"), std::string::npos);
  // A global from torch that a state dict does not need, even in an otherwise valid file.
  P p;
  p.proto(2).op('}').str("w").global("torch._utils", "_rebuild_parameter");
  EXPECT_NE(pickle_error(p.b, M3_ERR_UNSUPPORTED).find("'torch._utils _rebuild_parameter'"), std::string::npos);
  // Near misses of allowed names are still refused.
  EXPECT_NE(pickle_error(P().proto(2).global("torch", "FloatStorage ").b, M3_ERR_UNSUPPORTED).find("disallowed"),
            std::string::npos);
  EXPECT_NE(pickle_error(P().proto(2).global("collections ", "OrderedDict").b, M3_ERR_UNSUPPORTED).find("disallowed"),
            std::string::npos);
  // Allowed names used in the wrong role.
  pickle_error(P().proto(2).global("torch", "FloatStorage").op(')').op('R').op('.').b, M3_ERR_UNSUPPORTED);
  pickle_error(P().proto(2).global("collections", "OrderedDict").str("x").op(0x85).op('R').op('.').b,
               M3_ERR_UNSUPPORTED);
  pickle_error(P().proto(2).op('}').op('}').op('b').op('.').b, M3_ERR_UNSUPPORTED);  // BUILD on a plain dict
}

TEST(PytorchCheckpoint, RejectsUnknownAndUnsupportedOpcodes) {
  std::string msg = load_error(wrap(P().proto(2).op(0xff).op('.').b), M3_ERR_FORMAT);
  EXPECT_NE(msg.find("invalid pickle opcode 0xff"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 2"), std::string::npos) << msg;
  // Real opcodes that can construct arbitrary objects or are simply not needed.
  for (uint8_t op : {uint8_t('i'), uint8_t('o'), uint8_t(0x81), uint8_t(0x92), uint8_t('0'), uint8_t('d'),
                     uint8_t('S'), uint8_t(0x82), uint8_t(0x97), uint8_t('P')}) {
    msg = pickle_error(P().proto(2).op('N').op(op).b, M3_ERR_UNSUPPORTED);
    EXPECT_NE(msg.find("unsupported pickle opcode"), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset 3"), std::string::npos) << msg;
  }
  EXPECT_NE(pickle_error(P().proto(2).op('N').op(0x81).b, M3_ERR_UNSUPPORTED).find("NEWOBJ"), std::string::npos);
  EXPECT_NE(pickle_error(P().proto(6).b, M3_ERR_UNSUPPORTED).find("protocol 6"), std::string::npos);
}

// ---- truncation and corruption -----------------------------------------------------------------

Bytes golden_pickle() {
  const Bytes file = slurp(kGoldenBin);
  const m3::ZipArchive zip(file.data(), file.size(), kGoldenBin);
  const m3::ZipEntry* e = zip.find("pytorch_model/data.pkl");
  EXPECT_NE(e, nullptr);
  const auto span = zip.stored_data(*e);
  return Bytes(span.begin(), span.end());
}

TEST(PytorchCheckpoint, EveryTruncatedPickleFails) {
  const Bytes pkl = golden_pickle();
  ASSERT_GT(pkl.size(), 1000u);
  EXPECT_EQ(m3::read_pickled_state_dict(pkl, "x").tensors.size(), 21u);
  for (std::size_t n = 0; n < pkl.size(); ++n) {
    const AlignedBuf prefix(std::span<const uint8_t>(pkl).first(n));
    const std::string msg =
        error_of([&] { m3::read_pickled_state_dict({prefix.data(), prefix.size()}, "x.pkl"); }, M3_ERR_FORMAT);
    ASSERT_NE(msg.find("truncated"), std::string::npos) << "prefix " << n << ": " << msg;
  }
  // The same through the whole reader, for a sample of lengths.
  for (std::size_t n = 0; n < pkl.size(); n += 97) {
    const Bytes cut(pkl.begin(), pkl.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_NE(load_error(checkpoint(cut, {}), M3_ERR_FORMAT).find("archive/data.pkl"), std::string::npos);
  }
}

TEST(PytorchCheckpoint, EveryTruncatedZipFails) {
  const Bytes file = slurp(kGoldenBin);
  ASSERT_GT(file.size(), 1000u);
  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i < 170; ++i) lengths.push_back(i * (file.size() / 170));
  for (std::size_t i = 1; i <= 30; ++i) lengths.push_back(file.size() - i);  // the tail holds the directory
  for (std::size_t n : lengths) {
    const AlignedBuf cut(std::span<const uint8_t>(file).first(n));
    error_of([&] { m3::read_pytorch_checkpoint(cut.data(), cut.size(), kLabel); }, M3_ERR_FORMAT);
  }
}

TEST(PytorchCheckpoint, CorruptedBytesNeverCrash) {
  // Random byte changes in the structural parts of the real file (pickle, local headers,
  // central directory): each either still loads or throws m3::Error, nothing else.
  Bytes file = slurp(kGoldenBin);
  const AlignedBuf pristine(file);
  std::mt19937 rng(1234);
  std::vector<std::pair<std::size_t, std::size_t>> regions{{0, 2100}, {file.size() - 1700, file.size()}};
  const m3::ZipArchive zip(file.data(), file.size(), kGoldenBin);
  for (const auto& e : zip.entries()) regions.emplace_back(e.local_header_offset, e.local_header_offset + 60);
  int loaded = 0, failed = 0;
  for (int iter = 0; iter < 1500; ++iter) {
    Bytes buf(pristine.data(), pristine.data() + pristine.size());
    const int changes = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < changes; ++c) {
      const auto& [lo, hi] = regions[rng() % regions.size()];
      const std::size_t pos = lo + rng() % (hi - lo);
      buf[pos] = rng() % 3 == 0 ? static_cast<uint8_t>(0xff) : static_cast<uint8_t>(rng());
    }
    const AlignedBuf mutated(buf);
    try {
      m3::read_pytorch_checkpoint(mutated.data(), mutated.size(), kLabel);
      ++loaded;
    } catch (const m3::Error& e) {
      ++failed;
      EXPECT_TRUE(e.status() == M3_ERR_FORMAT || e.status() == M3_ERR_UNSUPPORTED) << e.what();
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(loaded, 0);  // changes inside ignored bytes (timestamps, CRCs, padding) are harmless
}

TEST(PytorchCheckpoint, CorruptedPickleNeverCrashes) {
  const Bytes pkl = golden_pickle();
  std::mt19937 rng(99);
  for (int iter = 0; iter < 4000; ++iter) {
    Bytes buf = pkl;
    const int changes = 1 + static_cast<int>(rng() % 3);
    for (int c = 0; c < changes; ++c) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
    if (rng() % 4 == 0) buf.resize(rng() % buf.size());
    const AlignedBuf mutated(buf);
    try {
      m3::read_pickled_state_dict({mutated.data(), mutated.size()}, "x.pkl");
    } catch (const m3::Error&) {
    }
  }
}

// ---- malformed content -----------------------------------------------------------------------

TEST(PytorchCheckpoint, MissingStorageEntry) {
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}, {"b", "7", 4, {4}}});
  const std::string msg = load_error(checkpoint(pkl, {{"0", floats(6)}}), M3_ERR_FORMAT);
  EXPECT_NE(msg.find("storage '7' has no archive entry 'archive/data/7'"), std::string::npos) << msg;
}

TEST(PytorchCheckpoint, TensorLargerThanItsStorage) {
  std::string msg = load_error(checkpoint(state_dict_pickle({{"big", "0", 8, {4, 4}}}), {{"0", floats(8)}}),
                               M3_ERR_FORMAT);
  EXPECT_NE(msg.find("tensor 'big'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exceeds its storage '0'"), std::string::npos) << msg;
  // Within the storage's size, but not from its offset.
  TSpec t{"shifted", "0", 8, {4}};
  t.offset = 5;
  msg = load_error(checkpoint(state_dict_pickle({t}), {{"0", floats(8)}}), M3_ERR_FORMAT);
  EXPECT_NE(msg.find("tensor 'shifted'"), std::string::npos) << msg;
  // Negative and overflowing sizes.
  load_error(checkpoint(state_dict_pickle({{"neg", "0", 8, {-1, 4}, {4, 1}}}), {{"0", floats(8)}}), M3_ERR_FORMAT);
  const int64_t huge = int64_t{1} << 40;
  load_error(checkpoint(state_dict_pickle({{"ovf", "0", 8, {huge, huge}, {huge, 1}}}), {{"0", floats(8)}}),
             M3_ERR_FORMAT);
  t.offset = -1;
  load_error(checkpoint(state_dict_pickle({t}), {{"0", floats(8)}}), M3_ERR_FORMAT);
}

TEST(PytorchCheckpoint, StorageEntrySmallerThanDeclared) {
  const std::string msg =
      load_error(checkpoint(state_dict_pickle({{"a", "0", 100, {10}}}), {{"0", floats(4)}}), M3_ERR_FORMAT);
  EXPECT_NE(msg.find("storage '0' declares 100 F32 elements"), std::string::npos) << msg;
}

TEST(PytorchCheckpoint, NonContiguousStrides) {
  // A transposed [2, 3] view: strides (1, 2).
  const std::string msg =
      load_error(checkpoint(state_dict_pickle({{"t", "0", 6, {2, 3}, {1, 2}}}), {{"0", floats(6)}}),
                 M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("tensor 't'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("non-contiguous strides (1, 2)"), std::string::npos) << msg;
  // Size and stride ranks must agree.
  load_error(checkpoint(state_dict_pickle({{"r", "0", 6, {2, 3}, {3}}}), {{"0", floats(6)}}), M3_ERR_FORMAT);
}

TEST(PytorchCheckpoint, CompressedEntries) {
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}});
  // A deflated storage (the reader refuses by method, before looking at the bytes).
  Bytes zip = make_zip({{"archive/data.pkl", pkl}, {"archive/data/0", floats(6), 8}});
  std::string msg = load_error(zip, M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("'archive/data/0'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("compressed"), std::string::npos) << msg;
  // A deflated data.pkl.
  zip = make_zip({{"archive/data.pkl", pkl, 8}, {"archive/data/0", floats(6)}});
  msg = load_error(zip, M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("'archive/data.pkl'"), std::string::npos) << msg;
}

TEST(PytorchCheckpoint, NotAZip) {
  std::string garbage = "this is not a zip file, just some text that goes on for a while....";
  EXPECT_NE(load_error(Bytes(garbage.begin(), garbage.end()), M3_ERR_FORMAT).find("not a ZIP archive"),
            std::string::npos);
  std::mt19937 rng(7);
  Bytes noise(5000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  load_error(noise, M3_ERR_FORMAT);
  load_error(Bytes{}, M3_ERR_FORMAT);
  load_error(Bytes(21, 0), M3_ERR_FORMAT);
  // A bare pickle (what torch.save wrote before 1.6) is recognised and refused.
  Bytes legacy{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
  EXPECT_NE(load_error(legacy, M3_ERR_UNSUPPORTED).find("legacy"), std::string::npos);
  // A valid ZIP that is not a checkpoint.
  EXPECT_NE(load_error(make_zip({{"hello.txt", {'h', 'i'}}}), M3_ERR_FORMAT).find("data.pkl"), std::string::npos);
}

TEST(PytorchCheckpoint, DictValueThatIsNotATensor) {
  P p;
  p.proto(2).op('}').op('(').str("a");
  put_tensor(p, {"a", "0", 6, {2, 3}});
  p.str("step").integer(1000).op('u').op('.');
  const std::string msg = load_error(wrap(p.b), M3_ERR_FORMAT);
  EXPECT_NE(msg.find("state dict entry 'step' is a int, not a tensor"), std::string::npos) << msg;
  // A nested checkpoint {'model': state_dict} is not a state dict either.
  P nested;
  nested.proto(2).op('}').str("model").op('}').op('s').op('.');
  EXPECT_NE(load_error(wrap(nested.b), M3_ERR_FORMAT).find("'model' is a dict"), std::string::npos);
}

TEST(PytorchCheckpoint, TopLevelMustBeADictOfStrings) {
  EXPECT_NE(pickle_error(P().proto(2).op(']').op('.').b, M3_ERR_FORMAT).find("top-level object is a list"),
            std::string::npos);
  P p;
  p.proto(2).op('}').integer(3);
  put_tensor(p, {"a", "0", 6, {2, 3}});
  p.op('s').op('.');
  EXPECT_NE(pickle_error(p.b, M3_ERR_FORMAT).find("key #0 is a int"), std::string::npos);
  // Duplicate keys would make the result depend on which one wins.
  P d;
  d.proto(2).op('}').op('(').str("w");
  put_tensor(d, {"w", "0", 6, {2, 3}});
  d.str("w").op('h').op(0);  // memo 0 is never set: rejected
  EXPECT_NE(pickle_error(d.b, M3_ERR_FORMAT).find("memo index 0"), std::string::npos);
  P dup;
  dup.proto(2).op('}').op('(').str("w").op('q').op(0);
  put_tensor(dup, {"w", "0", 6, {2, 3}});
  dup.op('q').op(1).op('h').op(0).op('h').op(1).op('u').op('.');
  EXPECT_NE(pickle_error(dup.b, M3_ERR_FORMAT).find("duplicate state dict key 'w'"), std::string::npos);
}

TEST(PytorchCheckpoint, MetadataEntries) {
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}});
  std::string msg = load_error(checkpoint(pkl, {{"0", floats(6)}}, {}, "big"), M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("big-endian"), std::string::npos) << msg;
  load_error(checkpoint(pkl, {{"0", floats(6)}}, {}, "middle"), M3_ERR_FORMAT);
  EXPECT_EQ(load(checkpoint(pkl, {{"0", floats(6)}}, {}, "")).views.size(), 1u);  // no byteorder entry
  // Two candidate data.pkl entries.
  load_error(make_zip({{"a/data.pkl", pkl}, {"b/data.pkl", pkl}, {"a/data/0", floats(6)}}), M3_ERR_FORMAT);
}

TEST(PytorchCheckpoint, MisalignedData) {
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}});
  const std::string msg = load_error(checkpoint(pkl, {{"0", floats(6)}}, {.misalign = 2}), M3_ERR_UNSUPPORTED);
  EXPECT_NE(msg.find("not aligned"), std::string::npos) << msg;
  // Byte-sized elements need no alignment.
  EXPECT_EQ(load(checkpoint(state_dict_pickle({{"u", "0", 6, {6}, {}, 0, "ByteStorage"}}), {{"0", Bytes(6, 1)}},
                            {.misalign = 3}))
                .views.size(),
            1u);
}

TEST(PytorchCheckpoint, CorruptZipStructures) {
  const Bytes good = simple_checkpoint();
  ASSERT_EQ(load(good).views.size(), 2u);
  const std::size_t eocd = good.size() - 22;
  const auto rd32 = [&](const Bytes& b, std::size_t at) {
    uint32_t v;
    std::memcpy(&v, b.data() + at, 4);
    return v;
  };
  const uint32_t cd_offset = rd32(good, eocd + 16);
  auto patched = [&](std::size_t at, uint64_t v, int n) {
    Bytes b = good;
    for (int i = 0; i < n; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
    return b;
  };
  load_error(patched(eocd + 16, 0xFFFFFFF0u, 4), M3_ERR_FORMAT);  // directory offset past the end
  load_error(patched(eocd + 12, 0xFFFFFFF0u, 4), M3_ERR_FORMAT);  // directory size past the end
  load_error(patched(eocd + 8, 60000u | (60000u << 16), 4), M3_ERR_FORMAT);  // more entries than fit
  load_error(patched(eocd + 10, 7, 2), M3_ERR_FORMAT);            // inconsistent counts
  load_error(patched(eocd + 4, 1, 2), M3_ERR_UNSUPPORTED);        // multi-disk
  load_error(patched(cd_offset, 0x12345678, 4), M3_ERR_FORMAT);   // bad central signature
  load_error(patched(cd_offset + 42, 0xFFFFFF00u, 4), M3_ERR_FORMAT);  // data.pkl's local header offset
  load_error(patched(cd_offset + 28, 0xFFFF, 2), M3_ERR_FORMAT);       // name runs past the directory
  load_error(patched(cd_offset + 20, 0x7FFFFFFF, 4), M3_ERR_FORMAT);   // compressed != uncompressed size
  load_error(patched(cd_offset + 20, 0x7FFFFFFF7FFFFFFF, 8), M3_ERR_FORMAT);  // data runs past the end
  load_error(patched(0, 0x04034b51, 4), M3_ERR_FORMAT);                 // bad local signature
  load_error(patched(8, 8, 2), M3_ERR_FORMAT);                          // local method disagrees
  load_error(patched(30, 'X', 1), M3_ERR_FORMAT);                       // local name differs
  load_error(patched(cd_offset + 8, 1, 2), M3_ERR_UNSUPPORTED);         // encrypted
  // A duplicate entry name.
  const Bytes pkl = state_dict_pickle({{"a", "0", 6, {2, 3}}});
  const Bytes twice =
      make_zip({{"archive/data.pkl", pkl}, {"archive/data/0", floats(6)}, {"archive/data/0", floats(6)}});
  EXPECT_NE(load_error(twice, M3_ERR_FORMAT).find("duplicate entry 'archive/data/0'"), std::string::npos);
  // ZIP64 records that point nowhere.
  const Bytes z64 = simple_checkpoint({.zip64 = true});
  Bytes bad = z64;
  bad[z64.size() - 22 - 20 + 8] ^= 0x40;  // locator's record offset
  load_error(bad, M3_ERR_FORMAT);
  bad = z64;
  bad[z64.size() - 22 - 20 - 56 + 48 + 6] = 0x7f;  // ZIP64 directory offset
  load_error(bad, M3_ERR_FORMAT);
}

// ---- resource abuse --------------------------------------------------------------------------

TEST(PytorchCheckpoint, ResourceLimits) {
  // Deep nesting costs nothing and tears down without recursion.
  P deep;
  deep.proto(2).op(']');
  deep.b.insert(deep.b.end(), 500000, 0x85);  // TUPLE1, TUPLE1, ...
  deep.op('.');
  EXPECT_NE(pickle_error(deep.b, M3_ERR_FORMAT).find("top-level object is a tuple"), std::string::npos);
  P nested_lists;  // [[[[...]]]], 200000 levels deep
  nested_lists.proto(2).op(']');
  for (int i = 0; i < 200000; ++i) nested_lists.op(']').op('q').op(1).op('a').op('h').op(1);
  nested_lists.op('.');
  EXPECT_NE(pickle_error(nested_lists.b, M3_ERR_FORMAT).find("STOP with 200001 stack items"), std::string::npos);

  P marks;
  marks.proto(2);
  marks.b.insert(marks.b.end(), (1 << 20) + 5, '(');
  EXPECT_NE(pickle_error(marks.b, M3_ERR_FORMAT).find("too many open MARKs"), std::string::npos);
  P flood;
  flood.proto(2);
  flood.b.insert(flood.b.end(), (1 << 20) + 5, 'N');
  EXPECT_NE(pickle_error(flood.b, M3_ERR_FORMAT).find("stack exceeds"), std::string::npos);
  P list;
  list.proto(2).op(']').op('N');
  for (int i = 0; i < (1 << 20) + 5; ++i) list.op('a').op('N');
  EXPECT_NE(pickle_error(list.b, M3_ERR_FORMAT).find("list exceeds"), std::string::npos);

  P memo;
  memo.proto(2).op('N').op('r');
  put(memo.b, 0xFFFFFFFFu, 4);
  EXPECT_NE(pickle_error(memo.b, M3_ERR_FORMAT).find("memo index 4294967295 out of range"), std::string::npos);
  // A self-containing list: a harmless cycle.
  EXPECT_NE(pickle_error(P().proto(2).op(']').op('q').op(0).op('h').op(0).op('a').op('.').b, M3_ERR_FORMAT)
                .find("top-level object is a list"),
            std::string::npos);
  P frame;
  frame.proto(4).op(0x95);
  put(frame.b, uint64_t{1} << 62, 8);
  EXPECT_NE(pickle_error(frame.b, M3_ERR_FORMAT).find("truncated"), std::string::npos);
  P str8;
  str8.proto(4).op(0x8d);
  put(str8.b, ~uint64_t{0}, 8);
  EXPECT_NE(pickle_error(str8.b, M3_ERR_FORMAT).find("truncated"), std::string::npos);
  EXPECT_NE(pickle_error(P().proto(2).op(0x8a).op(9).b, M3_ERR_UNSUPPORTED).find("64 bits"), std::string::npos);
}

TEST(PytorchCheckpoint, MalformedPickleStructure) {
  pickle_error(P().proto(2).op('a').b, M3_ERR_FORMAT);                       // stack underflow
  pickle_error(P().proto(2).op(']').op('(').op('a').b, M3_ERR_FORMAT);       // APPEND cannot reach below MARK
  pickle_error(P().proto(2).op('t').b, M3_ERR_FORMAT);                       // TUPLE without MARK
  pickle_error(P().proto(2).op('}').op('(').op('N').op('u').op('.').b, M3_ERR_FORMAT);  // odd SETITEMS
  pickle_error(P().proto(2).op('N').op('N').op('.').b, M3_ERR_FORMAT);       // STOP with two items
  pickle_error(P().proto(2).op('.').b, M3_ERR_FORMAT);                       // STOP with nothing
  pickle_error(P().proto(2).op(']').op('N').op('N').op('s').op('.').b, M3_ERR_FORMAT);  // SETITEM on a list
  pickle_error(P().proto(2).op('}').op(']').op('N').op('s').op('.').b, M3_ERR_FORMAT);  // unhashable key
  pickle_error(P().proto(2).op('}').op('}').op('N').op('s').op('.').b, M3_ERR_FORMAT);  // unhashable key
  pickle_error(P().proto(2).op('c').raw({'o', 's'}).b, M3_ERR_FORMAT);        // unterminated GLOBAL
  pickle_error(P().proto(2).op('X').raw({2, 0, 0, 0, 0xc3, 0x28}).b, M3_ERR_FORMAT);  // invalid UTF-8
  pickle_error(P().proto(4).op('N').op('N').op(0x93).b, M3_ERR_FORMAT);     // STACK_GLOBAL on non-strings
  // Malformed persistent ids and tensor arguments.
  pickle_error(P().proto(2).str("x").op('Q').b, M3_ERR_FORMAT);
  P pid;
  pid.proto(2).op('(').str("storage").global("collections", "OrderedDict").str("0").str("cpu").integer(4);
  pickle_error(P(pid).op('t').op('Q').b, M3_ERR_FORMAT);
  P neg;
  neg.proto(2).op('(').str("storage").global("torch", "FloatStorage").str("0").str("cpu").integer(-4);
  pickle_error(P(neg).op('t').op('Q').b, M3_ERR_FORMAT);
  P args;
  args.proto(2).global("torch._utils", "_rebuild_tensor_v2").op('(').integer(1).op('t').op('R');
  EXPECT_NE(pickle_error(args.b, M3_ERR_FORMAT).find("1 arguments"), std::string::npos);
}

}  // namespace
