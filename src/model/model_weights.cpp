#include "model/model_weights.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "common/error.h"
#include "common/hash.h"
#include "model/float_convert.h"

namespace m3 {

float read_float(const void* data, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::F32: return static_cast<const float*>(data)[i];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    default: return 0.0f;  // unreachable: dtypes are checked when binding
  }
}

namespace {

WeightType float_weight_type(DType dtype) {
  return dtype == DType::BF16 ? WeightType::BF16 : dtype == DType::F16 ? WeightType::F16 : WeightType::F32;
}

// Lower is less precise; the model's weight type is the least precise block matrix's.
int precision_rank(WeightType t) {
  switch (t) {
    case WeightType::Q4: return 0;
    case WeightType::Q8: return 1;
    case WeightType::BF16: return 2;
    case WeightType::F16: return 3;
    case WeightType::F32: return 4;
  }
  return 4;
}

constexpr const char* kTypeKey = "mamba3rt.weight_type";
constexpr const char* kGroupKey = "mamba3rt.quant_group";

class TensorBinder {
 public:
  TensorBinder(const std::vector<TensorView>& tensors, std::string source) : source_(std::move(source)) {
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }

  // A float tensor of exactly this shape.
  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorView& t = find(name);
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                              "; expected F32, BF16 or F16" +
                              (t.dtype == DType::I8 || t.dtype == DType::U8
                                   ? " (only the embedding, lm_head, in_proj, out_proj, fc1 and fc2 may be quantized)"
                                   : ""));
    check_shape(t, shape);
    use(t, t.numel());
    return t;
  }

  // A [rows, cols] matrix: float, or quantized (I8 -> int8, U8 -> q4) with its f16 scales.
  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView& t = find(name);
    if (t.dtype == DType::I8 || t.dtype == DType::U8) return quantized(t, rows, cols);
    get(name, {rows, cols});
    if (has(name + "_scales"))
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + name + "_scales' has no quantized weight to scale ('" + name +
                              "' is " + dtype_name(t.dtype) + ", not I8 or U8)");
    return WeightMatrix{float_weight_type(t.dtype), rows, cols, t.data, nullptr};
  }

  std::vector<float> vector(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorView& t = get(name, shape);
    std::vector<float> v(static_cast<std::size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = read_float(t.data, t.dtype, i);
    return v;
  }

  // Tensors the model does not use mean the file is not what the config says it is.
  void reject_unused() const {
    for (const auto& [name, t] : by_name_) {
      if (used_.count(name)) continue;
      const std::string suffix = "_scales";
      if (name.size() > suffix.size() && name.ends_with(suffix)) {
        const std::string base = name.substr(0, name.size() - suffix.size());
        fail(M3_ERR_FORMAT, source_ + ": tensor '" + name + "' has no quantized weight to scale ('" + base +
                                (used_.count(base) ? "' is not a quantizable matrix)" : "' is not part of this model)"));
      }
      fail(M3_ERR_FORMAT, source_ + ": unexpected tensor '" + name + "' (not part of this Mamba-3 config)");
    }
  }

  void count_all(ModelWeights& w, const std::string& skip) const {
    for (const auto& [name, params] : used_) {
      if (name == skip) continue;
      w.n_params += params;
      w.weight_bytes += static_cast<int64_t>(by_name_.at(name)->nbytes);
    }
  }
  uint64_t hash() const { return hash_.digest(); }
  bool has_quantized(WeightType t) const { return quantized_.count(t) != 0; }

 private:
  const TensorView& find(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) fail(M3_ERR_FORMAT, source_ + ": missing tensor '" + name + "'");
    return *it->second;
  }

  void check_shape(const TensorView& t, const std::vector<int64_t>& shape) const {
    if (t.shape == shape) return;
    TensorView want;
    want.shape = shape;
    fail(M3_ERR_FORMAT, source_ + ": tensor '" + t.name + "' has shape " + t.shape_string() + ", expected " +
                            want.shape_string());
  }

  // Marks a tensor as bound (counted with `params` logical parameters) and hashes it once.
  void use(const TensorView& t, int64_t params) {
    if (used_.emplace(t.name, params).second) hash_tensor(t);
  }

  WeightMatrix quantized(const TensorView& t, int64_t rows, int64_t cols) {
    const WeightType type = t.dtype == DType::I8 ? WeightType::Q8 : WeightType::Q4;
    const std::string what = source_ + ": tensor '" + t.name + "' (" + weight_type_name(type) + ")";
    if (cols % kQuantGroup != 0)
      fail(M3_ERR_FORMAT, what + ": the matrix has " + std::to_string(cols) +
                              " columns, not a multiple of the quantization group " + std::to_string(kQuantGroup));
    check_shape(t, {rows, type == WeightType::Q8 ? cols : cols / 2});
    const std::string scales_name = t.name + "_scales";
    const std::vector<int64_t> scales_shape = {rows, cols / kQuantGroup};
    auto it = by_name_.find(scales_name);
    if (it == by_name_.end())
      fail(M3_ERR_FORMAT, what + " needs its scales: missing tensor '" + scales_name + "' (F16 [" +
                              std::to_string(rows) + ", " + std::to_string(cols / kQuantGroup) + "])");
    const TensorView& s = *it->second;
    if (s.dtype != DType::F16)
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + scales_name + "' has dtype " + dtype_name(s.dtype) +
                              "; quantization scales are F16");
    check_shape(s, scales_shape);
    // Every scale is read by every forward pass, so a non-finite one would poison the
    // logits; checking costs one pass over 1/16 (int8) or 1/8 (q4) of the matrix's bytes.
    const auto* bits = static_cast<const uint16_t*>(s.data);
    const int64_t n = s.numel();
    bool nonfinite = false;
    for (int64_t i = 0; i < n; ++i) nonfinite |= (bits[i] & 0x7c00u) == 0x7c00u;
    if (nonfinite) {
      int64_t i = 0;
      while ((bits[i] & 0x7c00u) != 0x7c00u) ++i;
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + scales_name + "' has a non-finite scale (" +
                              ((bits[i] & 0x3ffu) ? "NaN" : "inf") + ") at row " + std::to_string(i / scales_shape[1]) +
                              ", group " + std::to_string(i % scales_shape[1]));
    }
    use(t, rows * cols);
    use(s, 0);
    quantized_.insert(type);
    return WeightMatrix{type, rows, cols, t.data, bits};
  }

  // Names, shapes, dtypes and a sample of the bytes: enough to tell checkpoints apart
  // without reading gigabytes at load time.
  void hash_tensor(const TensorView& t) {
    hash_.update(t.name);
    hash_.update(dtype_name(t.dtype));
    for (int64_t d : t.shape) hash_.update_value(d);
    const auto* bytes = static_cast<const uint8_t*>(t.data);
    constexpr std::size_t kSamples = 16, kSampleBytes = 64;
    if (t.nbytes <= kSamples * kSampleBytes) {
      hash_.update(bytes, t.nbytes);
    } else {
      for (std::size_t s = 0; s < kSamples; ++s) {
        std::size_t at = (t.nbytes - kSampleBytes) / (kSamples - 1) * s;
        hash_.update(bytes + at, kSampleBytes);
      }
    }
  }

  std::string source_;
  std::map<std::string, const TensorView*> by_name_;
  std::map<std::string, int64_t> used_;  // name -> logical parameters
  std::set<WeightType> quantized_;
  Fnv1a64 hash_;
};

// The metadata's own validity, checked before any tensor so that a file written with
// another group size gets this message rather than a shape error.
std::optional<WeightType> metadata_weight_type(const std::map<std::string, std::string>& meta,
                                               const std::string& source) {
  std::optional<WeightType> type;
  if (auto it = meta.find(kTypeKey); it != meta.end()) {
    type = parse_weight_type(it->second);
    if (!type)
      fail(M3_ERR_FORMAT, source + ": metadata " + kTypeKey + " = '" + it->second +
                              "' is not one of f32, f16, bf16, int8, q4");
  }
  if (auto it = meta.find(kGroupKey); it != meta.end() && it->second != std::to_string(kQuantGroup))
    fail(M3_ERR_UNSUPPORTED, source + ": metadata " + kGroupKey + " = '" + it->second +
                                 "': this runtime reads quantization groups of " + std::to_string(kQuantGroup));
  return type;
}

// The tensors against the metadata: quantized tensors only with the type recorded (it
// marks the file as using this layout convention; the group size is implied by the scales'
// shape, and checked against "mamba3rt.quant_group" when that is present), and a recorded
// type that is what the block matrices are.
void check_weight_type(std::optional<WeightType> recorded, WeightType actual, const TensorBinder& b,
                       const std::string& source) {
  if ((b.has_quantized(WeightType::Q8) || b.has_quantized(WeightType::Q4)) && !recorded)
    fail(M3_ERR_FORMAT, source + ": has quantized (I8/U8) tensors but no \"" + kTypeKey +
                            "\" metadata (as `mamba3rt quantize` writes)");
  if (recorded && *recorded != actual)
    fail(M3_ERR_FORMAT, source + ": metadata " + kTypeKey + " = '" + weight_type_name(*recorded) +
                            "' but the block matrices are stored as " + weight_type_name(actual));
}

}  // namespace

ModelWeights bind_model_weights(const ModelConfig& c, const std::vector<TensorView>& tensors,
                                const std::string& source, const std::map<std::string, std::string>& metadata) {
  const std::optional<WeightType> recorded = metadata_weight_type(metadata, source);
  TensorBinder b(tensors, source);
  ModelWeights w;
  const int64_t D = c.d_model, E = c.d_inner, H = c.nheads, P = c.headdim, N = c.d_state, R = c.mimo_rank;

  w.embedding = b.matrix("backbone.embedding.weight", c.vocab_padded, D);
  w.norm_f = b.vector("backbone.norm_f.weight", {D});
  if (c.tie_embeddings) {
    w.lm_head = w.embedding;
    // torch.save writes the tied head under its own key too (sharing the storage).
    if (b.has("lm_head.weight")) b.get("lm_head.weight", {c.vocab_padded, D});
  } else {
    w.lm_head = b.matrix("lm_head.weight", c.vocab_padded, D);
  }

  const bool mlp = c.d_intermediate > 0;
  if (mlp) {
    const std::string fc2 = "backbone.layers.0.mlp.fc2.weight";
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const TensorView& t) { return t.name == fc2; });
    if (it == tensors.end()) fail(M3_ERR_FORMAT, source + ": missing tensor '" + fc2 + "' (config has d_intermediate > 0)");
    if (it->shape.size() != 2 || it->shape[1] <= 0)
      fail(M3_ERR_FORMAT, source + ": tensor '" + fc2 + "' has shape " + it->shape_string() + ", expected [d_model, hidden]");
    // A q4 matrix stores two columns per byte.
    w.mlp_hidden = it->dtype == DType::U8 ? it->shape[1] * 2 : it->shape[1];
  }

  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    MambaLayerWeights L;
    L.norm = b.vector(p + "norm.weight", {D});
    L.in_proj = b.matrix(p + "mixer.in_proj.weight", c.d_in_proj, D);
    L.dt_bias = b.vector(p + "mixer.dt_bias", {H});
    L.D = b.vector(p + "mixer.D", {H});
    L.B_bias = b.vector(p + "mixer.B_bias", {H, R, N});
    L.C_bias = b.vector(p + "mixer.C_bias", {H, R, N});
    if (c.is_mimo) {
      L.mimo_x = b.vector(p + "mixer.mimo_x", {H, R, P});
      L.mimo_z = b.vector(p + "mixer.mimo_z", {H, R, P});
      L.mimo_o = b.vector(p + "mixer.mimo_o", {H, R, P});
    }
    L.B_norm = b.vector(p + "mixer.B_norm.weight", {N});
    L.C_norm = b.vector(p + "mixer.C_norm.weight", {N});
    if (c.is_outproj_norm) L.out_norm = b.vector(p + "mixer.norm.weight", {E});
    L.out_proj = b.matrix(p + "mixer.out_proj.weight", D, E);
    if (mlp) {
      L.norm2 = b.vector(p + "norm2.weight", {D});
      L.fc1 = b.matrix(p + "mlp.fc1.weight", 2 * w.mlp_hidden, D);
      L.fc2 = b.matrix(p + "mlp.fc2.weight", D, w.mlp_hidden);
    }
    w.layers.push_back(std::move(L));
  }
  b.reject_unused();
  b.count_all(w, c.tie_embeddings ? "lm_head.weight" : "");
  w.content_hash = b.hash();

  auto least_precise = [](WeightType a, const WeightMatrix& m) {
    return m.data && precision_rank(m.type) < precision_rank(a) ? m.type : a;
  };
  WeightType actual = w.layers.empty() ? w.embedding.type : WeightType::F32;
  for (const auto& L : w.layers)
    for (const WeightMatrix* m : {&L.in_proj, &L.out_proj, &L.fc1, &L.fc2}) actual = least_precise(actual, *m);
  check_weight_type(recorded, actual, b, source);
  w.weight_type = actual;
  return w;
}

}  // namespace m3
