#include "model/model_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/json_document.h"
#include "common/json_parse.h"

namespace m3 {
namespace {

using nlohmann::json;

class ConfigReader {
 public:
  ConfigReader(const json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  int64_t integer(const char* key, int64_t fallback, int64_t min_value) const {
    if (!obj_.contains(key) || obj_[key].is_null()) return fallback;
    const json& v = obj_[key];
    if (!v.is_number_integer() && !(v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()))
      fail(M3_ERR_FORMAT, where_ + key + " must be an integer, got " + v.dump());
    double d = v.get<double>();
    if (d < static_cast<double>(min_value) || d > 1e12)
      fail(M3_ERR_FORMAT, where_ + key + " = " + v.dump() + " is out of range (minimum " +
                              std::to_string(min_value) + ")");
    return static_cast<int64_t>(d);
  }
  double number(const char* key, double fallback) const {
    if (!obj_.contains(key) || obj_[key].is_null()) return fallback;
    if (!obj_[key].is_number()) fail(M3_ERR_FORMAT, where_ + key + " must be a number, got " + obj_[key].dump());
    double d = obj_[key].get<double>();
    if (!std::isfinite(d)) fail(M3_ERR_FORMAT, where_ + key + " must be finite");
    return d;
  }
  bool boolean(const char* key, bool fallback) const {
    if (!obj_.contains(key)) return fallback;
    if (!obj_[key].is_boolean()) fail(M3_ERR_FORMAT, where_ + key + " must be true or false, got " + obj_[key].dump());
    return obj_[key].get<bool>();
  }

 private:
  const json& obj_;
  std::string where_;
};

// Top-level MambaConfig fields. The official loader calls MambaConfig(**json), so any
// other key is an error there too.
const std::set<std::string> kTopLevelKeys = {
    "d_model", "d_intermediate", "n_layer", "vocab_size", "ssm_cfg", "attn_layer_idx", "attn_cfg",
    "rms_norm", "residual_in_fp32", "fused_add_norm", "pad_vocab_size_multiple", "tie_embeddings"};

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& source) {
  JsonDocument document;  // freed without allocating (json_document.h)
  json& root = document.root;
  root = parse_json(json_text, source);  // nesting bounded: messages below dump values
  if (!root.is_object()) fail(M3_ERR_FORMAT, source + ": expected a JSON object");
  for (const auto& [key, value] : root.items())
    if (!kTopLevelKeys.count(key))
      fail(M3_ERR_FORMAT, source + ": unknown field '" + key + "' (not a MambaConfig field)");

  const std::string where = source + ": ";
  ConfigReader top(root, where);
  ModelConfig c;
  c.d_model = top.integer("d_model", 2560, 1);
  c.d_intermediate = top.integer("d_intermediate", 0, 0);
  c.n_layer = top.integer("n_layer", 64, 1);
  c.vocab_size = top.integer("vocab_size", 50277, 1);
  c.pad_vocab_size_multiple = top.integer("pad_vocab_size_multiple", 8, 1);
  c.tie_embeddings = top.boolean("tie_embeddings", true);
  // residual_in_fp32 and fused_add_norm only change bf16 rounding; this runtime keeps the
  // residual and the norms in fp32 either way (spec §3.2), so both values are accepted.
  top.boolean("residual_in_fp32", true);
  top.boolean("fused_add_norm", true);
  if (!top.boolean("rms_norm", true))
    fail(M3_ERR_UNSUPPORTED, where + "rms_norm = false (LayerNorm blocks) is not supported; only RMSNorm models run");
  if (root.contains("attn_layer_idx")) {
    const json& a = root["attn_layer_idx"];
    if (!a.is_array()) fail(M3_ERR_FORMAT, where + "attn_layer_idx must be a list");
    if (!a.empty())
      fail(M3_ERR_UNSUPPORTED, where + "attn_layer_idx = " + a.dump() +
                                   ": hybrid attention layers are not supported; only pure Mamba-3 models run");
  }
  if (root.contains("attn_cfg") && !root["attn_cfg"].is_object())
    fail(M3_ERR_FORMAT, where + "attn_cfg must be an object");

  if (!root.contains("ssm_cfg") || !root["ssm_cfg"].is_object())
    fail(M3_ERR_UNSUPPORTED, where + "ssm_cfg is missing: the official default layer is Mamba1, "
                                     "and this runtime runs only ssm_cfg.layer = \"Mamba3\"");
  const json& ssm = root["ssm_cfg"];
  if (!ssm.contains("layer"))
    fail(M3_ERR_UNSUPPORTED, where + "ssm_cfg.layer is missing: the official default is Mamba1, "
                                     "and this runtime runs only \"Mamba3\"");
  if (!ssm["layer"].is_string()) fail(M3_ERR_FORMAT, where + "ssm_cfg.layer must be a string");
  if (ssm["layer"].get<std::string>() != "Mamba3")
    fail(M3_ERR_UNSUPPORTED, where + "ssm_cfg.layer = \"" + ssm["layer"].get<std::string>() +
                                 "\" is not supported; this runtime runs only \"Mamba3\"");

  // Other ssm_cfg keys (dt_min, chunk_size, ...) are absorbed by the official constructor
  // without effect on inference; we ignore them the same way.
  ConfigReader s(ssm, where + "ssm_cfg.");
  c.d_state = s.integer("d_state", 128, 2);
  c.expand = s.number("expand", 2.0);
  c.headdim = s.integer("headdim", 64, 1);
  c.ngroups = s.integer("ngroups", 1, 1);
  c.rope_fraction = s.number("rope_fraction", 0.5);
  c.a_floor = s.number("A_floor", 1e-4);
  c.is_outproj_norm = s.boolean("is_outproj_norm", false);
  c.is_mimo = s.boolean("is_mimo", false);
  c.mimo_rank_config = s.integer("mimo_rank", 4, 1);
  if (ssm.contains("A_activation")) {
    const json& a = ssm["A_activation"];
    if (a == "heavy_tail") c.a_activation = AActivation::HeavyTail;
    else if (a == "softplus") c.a_activation = AActivation::Softplus;
    else fail(M3_ERR_FORMAT, where + "ssm_cfg.A_activation must be \"heavy_tail\" or \"softplus\", got " + a.dump());
  }

  // Derived sizes (spec §1.3). The products are checked in double first: each must stay within
  // the fields' own bound (1e12), or the conversion to int64 and the sums below could overflow.
  const auto derived_size = [&](const char* name, double value) {
    if (!(value <= 1e12)) fail(M3_ERR_FORMAT, where + name + " = " + json(value).dump() + " is above 1e12");
    return static_cast<int64_t>(value);
  };
  if (c.expand <= 0) fail(M3_ERR_FORMAT, where + "ssm_cfg.expand must be positive");
  c.d_inner = derived_size("d_inner = int(expand * d_model)", c.expand * static_cast<double>(c.d_model));
  if (c.d_inner <= 0 || c.d_inner % c.headdim != 0)
    fail(M3_ERR_FORMAT, where + "d_inner = int(expand * d_model) = " + std::to_string(c.d_inner) +
                            " is not a positive multiple of headdim " + std::to_string(c.headdim));
  c.nheads = c.d_inner / c.headdim;
  if (c.nheads % c.ngroups != 0)
    fail(M3_ERR_FORMAT, where + "nheads " + std::to_string(c.nheads) + " is not a multiple of ngroups " +
                            std::to_string(c.ngroups));
  if (c.rope_fraction != 0.5 && c.rope_fraction != 1.0)
    fail(M3_ERR_FORMAT, where + "ssm_cfg.rope_fraction must be 0.5 or 1.0 (as the official module asserts)");
  int64_t split = static_cast<int64_t>(static_cast<double>(c.d_state) * c.rope_fraction);
  if (split % 2) split -= 1;
  c.n_angles = split / 2;
  if (c.n_angles <= 0) fail(M3_ERR_FORMAT, where + "d_state is too small: no rotary angles");
  if (c.is_mimo && c.d_state % 2 != 0)
    fail(M3_ERR_FORMAT, where + "MIMO rotates dims (i, i + d_state/2): d_state must be even");
  c.mimo_rank = c.is_mimo ? c.mimo_rank_config : 1;
  if (c.a_floor < 0) fail(M3_ERR_FORMAT, where + "ssm_cfg.A_floor must be >= 0");
  const int64_t bc = derived_size("d_state * ngroups * mimo_rank", static_cast<double>(c.d_state) *
                                                                      static_cast<double>(c.ngroups) *
                                                                      static_cast<double>(c.mimo_rank));
  c.d_in_proj = 2 * c.d_inner + 2 * bc + 3 * c.nheads + c.n_angles;
  c.vocab_padded = (c.vocab_size + c.pad_vocab_size_multiple - 1) / c.pad_vocab_size_multiple *
                   c.pad_vocab_size_multiple;
  return c;
}

std::string ModelConfig::canonical() const {
  // Member by member, not nlohmann's initializer-list constructor: that one leaks what it
  // built when an allocation fails in the middle.
  using ordered_json = nlohmann::ordered_json;
  ordered_json j = ordered_json::object();
  j["d_model"] = d_model;
  j["n_layer"] = n_layer;
  j["vocab_size"] = vocab_size;
  j["vocab_padded"] = vocab_padded;
  j["tie_embeddings"] = tie_embeddings;
  j["d_state"] = d_state;
  j["d_inner"] = d_inner;
  j["headdim"] = headdim;
  j["ngroups"] = ngroups;
  j["n_angles"] = n_angles;
  j["a_floor"] = a_floor;
  j["is_outproj_norm"] = is_outproj_norm;
  j["is_mimo"] = is_mimo;
  j["mimo_rank"] = mimo_rank;
  j["a_activation"] = a_activation == AActivation::HeavyTail ? "heavy_tail" : "softplus";
  std::string text = j.dump();
  // Scalars only: emptied, the object is freed without allocating (common/json_document.h).
  j.get_ref<ordered_json::object_t&>().clear();
  return text;
}

}  // namespace m3
