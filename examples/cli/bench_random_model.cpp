#include "bench_random_model.h"

#include <algorithm>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/error.h"
#include "model/model_config.h"
#include "model/quantization.h"
#include "model/tensor.h"
#include "sampling/rng.h"

namespace cli {
namespace {

using m3::DType;
using m3::Rng;
using m3::splitmix64_next;
using m3::WeightType;

// How a tensor's values are drawn. Matrices and the embedding are uniform with the given
// standard deviation; the rest follow tools/make_random_model.py.
enum class Fill { Uniform, Ones, DtBias, Mimo };

// One logical tensor of the model. A matrix stored in a quantized type becomes two
// stored tensors (`<base>.weight` and `<base>.weight_scales`).
struct Item {
  std::string name;  // the official name (".weight" included for matrices)
  std::vector<int64_t> shape;
  Fill fill = Fill::Uniform;
  float stddev = 1.0f;  // Uniform
  float divisor = 1.0f;  // Mimo: mimo_o is divided by R
  bool matrix = false;   // stored in the model's weight type (the head's, for the embedding/lm_head); else F32
  bool head = false;     // the embedding or lm_head
  WeightType type = WeightType::F32;  // resolved by make_plan
};

struct Stored {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t bytes;
  uint64_t offset = 0;  // in the data section
};

// Uniform in [0, 1) with 24 bits: enough for timing weights, and cheaper than next_double.
float uniform01(Rng& rng) { return static_cast<float>(rng.next_u64() >> 40) * 0x1p-24f; }

bool quantized(WeightType t) { return t == WeightType::Q8 || t == WeightType::Q4; }

DType float_dtype(WeightType t) {
  switch (t) {
    case WeightType::F16: return DType::F16;
    case WeightType::BF16: return DType::BF16;
    default: return DType::F32;
  }
}

std::vector<Item> model_items(const m3::ModelConfig& c, int64_t mlp_hidden) {
  const int64_t D = c.d_model, E = c.d_inner, H = c.nheads, R = c.mimo_rank, N = c.d_state, P = c.headdim,
                V = c.vocab_padded, L = c.n_layer;
  const float inv_sqrt_layers = 1.0f / std::sqrt(2.0f * static_cast<float>(L));
  auto linear = [](std::string name, int64_t rows, int64_t cols, float extra = 1.0f) {
    return Item{std::move(name), {rows, cols}, Fill::Uniform, extra / std::sqrt(static_cast<float>(cols)), 1.0f, true,
                false};
  };
  auto ones = [](std::string name, std::vector<int64_t> shape) {
    return Item{std::move(name), std::move(shape), Fill::Ones, 0.0f, 1.0f, false};
  };
  std::vector<Item> items;
  items.push_back({"backbone.embedding.weight", {V, D}, Fill::Uniform, 1.0f, 1.0f, true, true});
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    items.push_back(ones(p + "norm.weight", {D}));
    items.push_back({p + "mixer.dt_bias", {H}, Fill::DtBias, 0.0f, 1.0f, false});
    items.push_back(ones(p + "mixer.B_bias", {H, R, N}));
    items.push_back(ones(p + "mixer.C_bias", {H, R, N}));
    if (c.is_mimo) {
      for (const char* name : {"mimo_x", "mimo_z", "mimo_o"})
        items.push_back({p + "mixer." + name, {H, R, P}, Fill::Mimo, 0.1f,
                         std::strcmp(name, "mimo_o") == 0 ? static_cast<float>(R) : 1.0f, false});
    }
    items.push_back(ones(p + "mixer.D", {H}));
    items.push_back(linear(p + "mixer.in_proj.weight", c.d_in_proj, D));
    items.push_back(ones(p + "mixer.B_norm.weight", {N}));
    items.push_back(ones(p + "mixer.C_norm.weight", {N}));
    if (c.is_outproj_norm) items.push_back(ones(p + "mixer.norm.weight", {E}));
    items.push_back(linear(p + "mixer.out_proj.weight", D, E, inv_sqrt_layers));
    if (mlp_hidden > 0) {
      items.push_back(ones(p + "norm2.weight", {D}));
      items.push_back(linear(p + "mlp.fc1.weight", 2 * mlp_hidden, D));
      items.push_back(linear(p + "mlp.fc2.weight", D, mlp_hidden, inv_sqrt_layers));
    }
  }
  items.push_back(ones("backbone.norm_f.weight", {D}));
  if (!c.tie_embeddings) {
    items.push_back(linear("lm_head.weight", V, D));
    items.back().head = true;
  }
  return items;
}

uint64_t numel(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::vector<Stored> stored_tensors(const Item& item) {
  const WeightType type = item.type;
  if (!item.matrix) return {{item.name, DType::F32, item.shape, numel(item.shape) * 4}};
  const int64_t rows = item.shape[0], cols = item.shape[1];
  if (!quantized(type)) {
    const DType dt = float_dtype(type);
    return {{item.name, dt, item.shape, numel(item.shape) * m3::dtype_size(dt)}};
  }
  // "<base>.weight" -> "<base>.weight_scales".
  const uint64_t groups = static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols / m3::kQuantGroup);
  if (type == WeightType::Q8)
    return {{item.name, DType::I8, item.shape, static_cast<uint64_t>(rows * cols)},
            {item.name + "_scales", DType::F16, {rows, cols / m3::kQuantGroup}, groups * 2}};
  return {{item.name, DType::U8, {rows, cols / 2}, static_cast<uint64_t>(rows * cols / 2)},
          {item.name + "_scales", DType::F16, {rows, cols / m3::kQuantGroup}, groups * 2}};
}

struct Plan {
  std::vector<Item> items;
  std::vector<std::vector<Stored>> stored;  // per item, with their offsets
  uint64_t data_bytes = 0;
  std::map<std::string, std::string> metadata;
};

Plan make_plan(const RandomModelSpec& spec) {
  const m3::ModelConfig c = m3::parse_model_config(spec.config_json, spec.source);
  const nlohmann::json j = nlohmann::json::parse(spec.config_json);
  const int64_t d_intermediate = j.value("d_intermediate", int64_t{0});
  const int64_t mlp_hidden = (d_intermediate + 127) / 128 * 128;
  const WeightType head_type = spec.embedding_type.value_or(default_embedding_type(spec.type));
  Plan plan;
  plan.items = model_items(c, mlp_hidden);
  bool any_quantized = false;
  for (Item& item : plan.items) {
    item.type = !item.matrix ? WeightType::F32 : item.head ? head_type : spec.type;
    if (quantized(item.type) && item.shape[1] % m3::kQuantGroup != 0)
      throw std::runtime_error(spec.source + ": " + item.name + " has " + std::to_string(item.shape[1]) +
                               " columns, not a multiple of " + std::to_string(m3::kQuantGroup) + ": cannot store it as " +
                               m3::weight_type_name(item.type));
    any_quantized |= quantized(item.type);
    plan.stored.push_back(stored_tensors(item));
  }
  // Widest elements first, so that every tensor is aligned for its dtype (safetensors has
  // no padding) and the loader maps all of them in place.
  std::vector<Stored*> order;
  for (auto& stored : plan.stored)
    for (Stored& st : stored) order.push_back(&st);
  std::stable_sort(order.begin(), order.end(),
                   [](const Stored* a, const Stored* b) { return m3::dtype_size(a->dtype) > m3::dtype_size(b->dtype); });
  for (Stored* st : order) {
    st->offset = plan.data_bytes;
    plan.data_bytes += st->bytes;
  }
  // As `mamba3rt quantize` labels its files (docs/FORMATS.md).
  if (any_quantized || spec.type != head_type) {
    plan.metadata["format"] = "pt";
    plan.metadata["mamba3rt.weight_type"] = m3::weight_type_name(spec.type);
    if (any_quantized) plan.metadata["mamba3rt.quant_group"] = std::to_string(m3::kQuantGroup);
    if (head_type != spec.type) plan.metadata["mamba3rt.embedding_type"] = m3::weight_type_name(head_type);
  }
  return plan;
}

uint64_t row_seed(uint64_t seed, uint64_t item, uint64_t row) {
  uint64_t x = seed ^ (item * 0x9e3779b97f4a7c15ull);
  splitmix64_next(x);
  x ^= row * 0xd1b54a32d192ed03ull;
  return splitmix64_next(x);
}

// Values of rows [r0, r1) of an item into out (row-major, cols per row).
void fill_rows(const Item& item, uint64_t seed, uint64_t index, int64_t cols, int64_t r0, int64_t r1, float* out) {
  constexpr float kSqrt3 = 1.7320508f;
  for (int64_t r = r0; r < r1; ++r) {
    float* row = out + (r - r0) * cols;
    Rng rng(row_seed(seed, index, static_cast<uint64_t>(r)));
    switch (item.fill) {
      case Fill::Ones: std::fill(row, row + cols, 1.0f); break;
      case Fill::Uniform: {
        const float a = kSqrt3 * item.stddev;
        for (int64_t i = 0; i < cols; ++i) row[i] = (2.0f * uniform01(rng) - 1.0f) * a;
        break;
      }
      case Fill::DtBias:  // softplus^-1 of a uniform dt in [1e-3, 0.1]
        for (int64_t i = 0; i < cols; ++i) row[i] = std::log(std::expm1(1e-3f + uniform01(rng) * (0.1f - 1e-3f)));
        break;
      case Fill::Mimo:
        for (int64_t i = 0; i < cols; ++i)
          row[i] = (1.0f + item.stddev * kSqrt3 * (2.0f * uniform01(rng) - 1.0f)) / item.divisor;
        break;
    }
  }
}

// Quantized rows drawn directly as random codes with one scale for all groups: about the
// uniform values that quantizing uniform floats would give, at a fraction of the cost (a 1.5B
// model's q4 file in seconds instead of minutes). Layouts: model_weights.h.
void fill_quantized_rows(const Item& item, WeightType type, uint64_t seed, uint64_t index, int64_t cols, int64_t r0,
                         int64_t r1, uint8_t* data, uint16_t* scales) {
  const float a = 1.7320508f * item.stddev;  // the uniform range [-a, a]
  const int64_t groups = cols / m3::kQuantGroup;
  const uint16_t scale = m3::f32_to_f16(type == WeightType::Q8 ? a / 127.0f : a / 8.0f);
  const int64_t row_bytes = type == WeightType::Q8 ? cols : cols / 2;
  for (int64_t r = r0; r < r1; ++r) {
    uint8_t* row = data + (r - r0) * row_bytes;
    Rng rng(row_seed(seed, index, static_cast<uint64_t>(r)));
    // Codes symmetric about zero (mean 0): the one code without a negation (int8 -128, q4 -8)
    // is replaced by the largest or the smallest other code, with equal chance.
    for (int64_t i = 0; i < row_bytes; i += 8) {
      uint64_t bits = rng.next_u64();
      const uint64_t coin = rng.next_u64();
      for (int64_t k = 0; k < 8 && i + k < row_bytes; ++k, bits >>= 8) {
        uint8_t b = static_cast<uint8_t>(bits);
        const bool up = (coin >> (2 * k)) & 1, up_high = (coin >> (2 * k + 1)) & 1;
        if (type == WeightType::Q8) {
          if (b == 0x80) b = up ? 0x81 : 0x7f;
        } else {
          if ((b & 0x0f) == 0) b = static_cast<uint8_t>(b | (up ? 0x01 : 0x0f));
          if ((b & 0xf0) == 0) b = static_cast<uint8_t>(b | (up_high ? 0x10 : 0xf0));
        }
        row[i + k] = b;
      }
    }
    std::fill(scales + (r - r0) * groups, scales + (r - r0 + 1) * groups, scale);
  }
}

// Converts rows of floats to a float storage type.
void encode_rows(WeightType type, const float* src, int64_t rows, int64_t cols, uint8_t* data) {
  const int64_t n = rows * cols;
  switch (type) {
    case WeightType::F32: std::memcpy(data, src, static_cast<std::size_t>(n) * 4); break;
    case WeightType::F16: {
      auto* out = reinterpret_cast<uint16_t*>(data);
      for (int64_t i = 0; i < n; ++i) out[i] = m3::f32_to_f16(src[i]);
      break;
    }
    case WeightType::BF16: {
      auto* out = reinterpret_cast<uint16_t*>(data);
      for (int64_t i = 0; i < n; ++i) out[i] = m3::f32_to_bf16(src[i]);
      break;
    }
    case WeightType::Q8:
    case WeightType::Q4: break;  // drawn directly by fill_quantized_rows
  }
}

// A file written at given offsets (tensors need not be produced in file order).
class OutFile {
 public:
  explicit OutFile(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) {
    if (fd_ < 0) m3::fail(M3_ERR_IO, path + ": cannot open for writing: " + std::strerror(errno));
  }
  ~OutFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  void write_at(uint64_t offset, const void* p, std::size_t n) {
    const auto* bytes = static_cast<const uint8_t*>(p);
    while (n > 0) {
      const ssize_t w = ::pwrite(fd_, bytes, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) m3::fail(M3_ERR_IO, path_ + ": write failed: " + std::strerror(w < 0 ? errno : ENOSPC));
      bytes += w;
      offset += static_cast<uint64_t>(w);
      n -= static_cast<std::size_t>(w);
    }
  }
  void close() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) m3::fail(M3_ERR_IO, path_ + ": write failed: " + std::strerror(errno));
  }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

m3::WeightType default_embedding_type(m3::WeightType type) { return type == WeightType::Q4 ? WeightType::Q8 : type; }

uint64_t random_model_bytes(const RandomModelSpec& spec) { return make_plan(spec).data_bytes; }

void write_random_model(const RandomModelSpec& spec, const std::string& dir,
                        const std::function<void(uint64_t, uint64_t)>& progress) {
  const Plan plan = make_plan(spec);

  {
    OutFile config(dir + "/config.json");
    config.write_at(0, spec.config_json.data(), spec.config_json.size());
    config.close();
  }

  std::vector<const Stored*> in_file_order;
  for (const auto& stored : plan.stored)
    for (const Stored& st : stored) in_file_order.push_back(&st);
  std::sort(in_file_order.begin(), in_file_order.end(),
            [](const Stored* a, const Stored* b) { return a->offset < b->offset; });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!plan.metadata.empty()) header["__metadata__"] = plan.metadata;
  for (const Stored* st : in_file_order)
    header[st->name] = {{"dtype", m3::dtype_name(st->dtype)},
                        {"shape", st->shape},
                        {"data_offsets", {st->offset, st->offset + st->bytes}}};
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');  // keeps the data 8-byte aligned

  const std::string path = dir + "/model.safetensors";
  OutFile out(path);
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
  out.write_at(0, len, 8);
  out.write_at(8, text.data(), text.size());
  const uint64_t data_start = 8 + text.size();

  const int threads = std::max(1, spec.threads);
  constexpr int64_t kChunkElements = int64_t{1} << 22;
  std::vector<float> values;
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> scales;
  uint64_t done = 0;
  for (std::size_t index = 0; index < plan.items.size(); ++index) {
    const Item& item = plan.items[index];
    const Stored& data = plan.stored[index][0];
    const int64_t rows = item.shape.size() == 1 ? 1 : item.shape[0];
    const int64_t cols = static_cast<int64_t>(numel(item.shape)) / rows;
    const WeightType type = item.type;
    const int64_t groups_per_row = quantized(type) ? cols / m3::kQuantGroup : 0;
    const int64_t row_bytes = m3::weight_row_bytes(type, cols) - groups_per_row * 2;
    const int64_t chunk_rows = std::max<int64_t>(1, std::min(rows, kChunkElements / cols));
    values.resize(static_cast<std::size_t>(chunk_rows * cols));
    bytes.resize(static_cast<std::size_t>(chunk_rows * row_bytes));
    scales.resize(static_cast<std::size_t>(chunk_rows * groups_per_row));
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const int64_t n = std::min(chunk_rows, rows - r0);
      // Each thread fills and converts a contiguous share of the chunk's rows.
      auto work = [&](int64_t a, int64_t b) {
        if (a >= b) return;
        if (quantized(type)) {
          fill_quantized_rows(item, type, spec.seed, index, cols, r0 + a, r0 + b, bytes.data() + a * row_bytes,
                              scales.data() + a * groups_per_row);
          return;
        }
        fill_rows(item, spec.seed, index, cols, r0 + a, r0 + b, values.data() + a * cols);
        encode_rows(type, values.data() + a * cols, b - a, cols, bytes.data() + a * row_bytes);
      };
      const int use = static_cast<int>(std::min<int64_t>(threads, n * cols / 65536 + 1));
      std::vector<std::thread> pool;
      for (int t = 1; t < use; ++t) pool.emplace_back(work, n * t / use, n * (t + 1) / use);
      work(0, n / use);
      for (auto& th : pool) th.join();
      out.write_at(data_start + data.offset + static_cast<uint64_t>(r0 * row_bytes), bytes.data(),
                   static_cast<std::size_t>(n * row_bytes));
      done += static_cast<uint64_t>(n * row_bytes);
      if (groups_per_row) {
        const Stored& sc = plan.stored[index][1];
        out.write_at(data_start + sc.offset + static_cast<uint64_t>(r0 * groups_per_row * 2), scales.data(),
                     static_cast<std::size_t>(n * groups_per_row * 2));
        done += static_cast<uint64_t>(n * groups_per_row * 2);
      }
      if (progress) progress(done, plan.data_bytes);
    }
  }
  out.close();
  if (progress) progress(done, plan.data_bytes);
}

}  // namespace cli
