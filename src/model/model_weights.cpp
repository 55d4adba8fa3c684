#include "model/model_weights.h"

#include <algorithm>
#include <map>
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

class TensorBinder {
 public:
  TensorBinder(const std::vector<TensorView>& tensors, std::string source) : source_(std::move(source)) {
    for (const auto& t : tensors) by_name_.emplace(t.name, &t);
  }

  bool has(const std::string& name) const { return by_name_.count(name) != 0; }

  const TensorView& get(const std::string& name, const std::vector<int64_t>& shape) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) fail(M3_ERR_FORMAT, source_ + ": missing tensor '" + name + "'");
    const TensorView& t = *it->second;
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + name + "' has dtype " + dtype_name(t.dtype) +
                              "; expected F32, BF16 or F16");
    if (t.shape != shape) {
      TensorView want;
      want.shape = shape;
      fail(M3_ERR_FORMAT, source_ + ": tensor '" + name + "' has shape " + t.shape_string() + ", expected " +
                              want.shape_string());
    }
    if (used_.insert(name).second) {
      hash_tensor(t);
    }
    return t;
  }

  WeightMatrix matrix(const std::string& name, int64_t rows, int64_t cols) {
    const TensorView& t = get(name, {rows, cols});
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
    for (const auto& [name, t] : by_name_)
      if (!used_.count(name))
        fail(M3_ERR_FORMAT, source_ + ": unexpected tensor '" + name + "' (not part of this Mamba-3 config)");
  }

  void count(const std::string& name, ModelWeights& w) const {
    const TensorView& t = *by_name_.at(name);
    w.n_params += t.numel();
    w.weight_bytes += static_cast<int64_t>(t.nbytes);
  }
  void count_all(ModelWeights& w, const std::string& skip) const {
    for (const auto& name : used_)
      if (name != skip) count(name, w);
  }
  uint64_t hash() const { return hash_.digest(); }

 private:
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
  std::set<std::string> used_;
  Fnv1a64 hash_;
};

}  // namespace

ModelWeights bind_model_weights(const ModelConfig& c, const std::vector<TensorView>& tensors,
                                const std::string& source) {
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
    w.mlp_hidden = it->shape[1];
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
  return w;
}

}  // namespace m3
