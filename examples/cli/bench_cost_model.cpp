#include "bench_cost_model.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <fstream>
#include <nlohmann/json.hpp>

namespace cli {
namespace {

int64_t info(const m3_model* model, m3_model_info_key key) {
  int64_t v = 0;
  m3_model_info(model, key, &v);
  return v;
}

std::optional<nlohmann::json> read_header(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8)) return std::nullopt;
  uint64_t len = 0;
  for (int i = 0; i < 8; ++i) len |= static_cast<uint64_t>(len_bytes[i]) << (8 * i);
  if (len > (uint64_t{1} << 30)) return std::nullopt;
  std::string text(len, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(len))) return std::nullopt;
  nlohmann::json header = nlohmann::json::parse(text, nullptr, false);
  if (!header.is_object()) return std::nullopt;
  return header;
}

// Stored bytes of the named tensors; -1 when none of them is there.
int64_t stored_bytes(const nlohmann::json& header, std::initializer_list<const char*> names) {
  int64_t total = -1;
  for (const char* name : names) {
    const auto it = header.find(name);
    if (it == header.end() || !it->is_object() || !it->contains("data_offsets")) continue;
    const auto& off = (*it)["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned()) continue;
    total = std::max<int64_t>(total, 0) + static_cast<int64_t>(off[1].get<uint64_t>() - off[0].get<uint64_t>());
  }
  return total;
}

// The weight type a stored matrix has ("" when unknown).
std::string stored_type(const nlohmann::json& header, const char* name) {
  const auto it = header.find(name);
  if (it == header.end() || !it->is_object() || !it->contains("dtype") || !(*it)["dtype"].is_string()) return "";
  const std::string d = (*it)["dtype"].get<std::string>();
  if (d == "F32") return "f32";
  if (d == "F16") return "f16";
  if (d == "BF16") return "bf16";
  if (d == "I8") return "int8";
  if (d == "U8") return "q4";
  return "";
}

}  // namespace

ModelCost model_cost(const m3_model* model, const std::string& dir) {
  ModelCost c;
  c.n_params = info(model, M3_INFO_N_PARAMS);
  c.weight_bytes = info(model, M3_INFO_WEIGHT_BYTES);
  c.state_bytes = info(model, M3_INFO_STATE_BYTES);
  c.tied = info(model, M3_INFO_TIE_EMBEDDINGS) != 0;
  c.vocab_padded = info(model, M3_INFO_VOCAB_PADDED);
  const int64_t D = info(model, M3_INFO_D_MODEL), E = info(model, M3_INFO_D_INNER), H = info(model, M3_INFO_N_HEADS),
                N = info(model, M3_INFO_D_STATE), G = info(model, M3_INFO_N_GROUPS), R = info(model, M3_INFO_MIMO_RANK),
                S = info(model, M3_INFO_N_ROPE_ANGLES), hid = info(model, M3_INFO_MLP_HIDDEN),
                L = info(model, M3_INFO_N_LAYER);
  const int64_t d_in_proj = 2 * E + 2 * N * G * R + 3 * H + S;  // spec §1.3
  c.block_matrix_params = L * (d_in_proj * D + D * E + 3 * hid * D);
  c.head_params = c.vocab_padded * D;

  c.embedding_bytes = -1;
  if (const auto header = read_header(dir + "/model.safetensors")) {
    c.embedding_bytes = stored_bytes(*header, {"backbone.embedding.weight", "backbone.embedding.weight_scales"});
    c.weight_type = stored_type(*header, "backbone.layers.0.mixer.in_proj.weight");
    c.embedding_type = stored_type(*header, "backbone.embedding.weight");
  }
  if (c.embedding_bytes < 0 && c.n_params > 0)
    c.embedding_bytes = static_cast<int64_t>(static_cast<double>(c.weight_bytes) / static_cast<double>(c.n_params) *
                                             static_cast<double>(c.head_params));
  // Tied: the table is the head, read whole each step. Untied: the head is counted in
  // weight_bytes on its own and the table gives one row.
  c.decode_weight_bytes = c.weight_bytes;
  if (!c.tied && c.vocab_padded > 0) c.decode_weight_bytes -= c.embedding_bytes - c.embedding_bytes / c.vocab_padded;
  return c;
}

}  // namespace cli
