// mamba3rt quantize: rewrite a model directory with its weight matrices in another storage
// type (docs/QUANTIZATION.md, layout in docs/FORMATS.md "Quantized weights").
//
// The input may be any checkpoint the runtime loads (safetensors or pytorch_model.bin, f32,
// bf16, f16, or an already quantized file, which is dequantized first). Only the large
// matrices (embedding, lm_head, in_proj, out_proj, fc1, fc2) change type; every other tensor is
// copied as it is. The output is a complete model directory: model.safetensors with the type in
// its metadata, config.json and the tokenizer/generation files of the input.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "backends/cpu/reference_matvec.h"
#include "cli_args.h"
#include "commands.h"
#include "model/mapped_file.h"
#include "model/model_config.h"
#include "model/model_weights.h"
#include "model/pytorch_checkpoint_reader.h"
#include "model/quantization.h"
#include "model/safetensors_reader.h"
#include "model/safetensors_writer.h"

namespace cli {
namespace {

namespace fs = std::filesystem;

// Files of a model directory besides the weights that travel with it.
const char* const kCompanionFiles[] = {"config.json",           "tokenizer.json",    "tokenizer_config.json",
                                       "special_tokens_map.json", "generation_config.json"};

// Rows converted at a time: bounds the memory a large matrix needs while converting.
constexpr int64_t kRowChunk = 256;

bool is_large_matrix(const std::string& name) {
  if (name == "backbone.embedding.weight" || name == "lm_head.weight") return true;
  for (const char* suffix : {".mixer.in_proj.weight", ".mixer.out_proj.weight", ".mlp.fc1.weight", ".mlp.fc2.weight"})
    if (name.ends_with(suffix)) return true;
  return false;
}

bool is_quantized(m3::WeightType t) { return t == m3::WeightType::Q8 || t == m3::WeightType::Q4; }

m3::DType stored_dtype(m3::WeightType t) {
  switch (t) {
    case m3::WeightType::F32: return m3::DType::F32;
    case m3::WeightType::F16: return m3::DType::F16;
    case m3::WeightType::BF16: return m3::DType::BF16;
    case m3::WeightType::Q8: return m3::DType::I8;
    case m3::WeightType::Q4: return m3::DType::U8;
  }
  return m3::DType::F32;
}

m3::WeightType parse_type_option(const Args& args, const std::string& option, m3::WeightType fallback) {
  const auto value = args.get(option);
  if (!value) return fallback;
  const auto type = m3::parse_weight_type(*value);
  if (!type) throw UsageError("unknown --" + option + " '" + *value + "' (expected f32, f16, bf16, int8 or q4)");
  return *type;
}

// One tensor of the output: a large matrix converted to `type`, or a tensor copied as is.
struct Item {
  const m3::TensorView* source = nullptr;
  bool convert = false;
  m3::WeightMatrix matrix;  // the input matrix (convert only)
  m3::WeightType type = m3::WeightType::F32;
};

std::vector<m3::TensorHeader> headers_of(const Item& item) {
  if (!item.convert) return {{item.source->name, item.source->dtype, item.source->shape}};
  const int64_t rows = item.matrix.rows, cols = item.matrix.cols;
  const m3::DType dtype = stored_dtype(item.type);
  if (!is_quantized(item.type)) return {{item.source->name, dtype, {rows, cols}}};
  return {{item.source->name, dtype, {rows, item.type == m3::WeightType::Q8 ? cols : cols / 2}},
          {item.source->name + "_scales", m3::DType::F16, {rows, cols / m3::kQuantGroup}}};
}

// The values must be representable in the target type (quantization.h's limits; f16's range).
void check_values(const Item& item, const float* v, std::size_t count, int64_t row0) {
  const float limit = item.type == m3::WeightType::Q8   ? m3::kMaxQ8Weight
                      : item.type == m3::WeightType::Q4 ? m3::kMaxQ4Weight
                      : item.type == m3::WeightType::F16 ? 65504.0f
                                                         : std::numeric_limits<float>::max();
  for (std::size_t i = 0; i < count; ++i) {
    if (std::fabs(v[i]) <= limit) continue;  // false for NaN too
    const std::string where = "tensor '" + item.source->name + "' row " +
                              std::to_string(row0 + static_cast<int64_t>(i) / item.matrix.cols);
    if (!std::isfinite(v[i])) throw std::runtime_error(where + " has a non-finite weight (" + std::to_string(v[i]) + ")");
    throw std::runtime_error(where + " has a weight of " + std::to_string(v[i]) + ", beyond what " +
                             m3::weight_type_name(item.type) + " can store (|w| <= " + std::to_string(limit) +
                             "); use a wider type");
  }
}

// Writes `item`'s tensors (data, then scales) through `out`, kRowChunk rows at a time.
void write_item(const Item& item, m3::SafetensorsStreamWriter& out) {
  if (!item.convert) {
    out.write(item.source->data, item.source->nbytes);
    return;
  }
  const m3::WeightMatrix& w = item.matrix;
  const int64_t cols = w.cols;
  std::vector<float> rows_f32(static_cast<std::size_t>(kRowChunk * cols));
  std::vector<uint8_t> bytes(static_cast<std::size_t>(kRowChunk * cols * 4));
  std::vector<uint16_t> scales;
  if (is_quantized(item.type)) scales.resize(static_cast<std::size_t>(w.rows * cols / m3::kQuantGroup));
  for (int64_t r0 = 0; r0 < w.rows; r0 += kRowChunk) {
    const int64_t n = std::min(kRowChunk, w.rows - r0);
    for (int64_t r = 0; r < n; ++r) m3::cpu::load_row(w, r0 + r, &rows_f32[r * cols]);
    const std::size_t count = static_cast<std::size_t>(n * cols);
    check_values(item, rows_f32.data(), count, r0);
    std::size_t nbytes = 0;
    switch (item.type) {
      case m3::WeightType::F32:
        nbytes = count * 4;
        std::memcpy(bytes.data(), rows_f32.data(), nbytes);
        break;
      case m3::WeightType::F16:
      case m3::WeightType::BF16: {
        nbytes = count * 2;
        auto* h = reinterpret_cast<uint16_t*>(bytes.data());
        for (std::size_t i = 0; i < count; ++i)
          h[i] = item.type == m3::WeightType::F16 ? m3::f32_to_f16(rows_f32[i]) : m3::f32_to_bf16(rows_f32[i]);
        break;
      }
      case m3::WeightType::Q8:
      case m3::WeightType::Q4:
        nbytes = item.type == m3::WeightType::Q8 ? count : count / 2;
        m3::quantize_matrix(item.type, rows_f32.data(), n, cols, bytes.data(),
                            scales.data() + r0 * (cols / m3::kQuantGroup));
        break;
    }
    out.write(bytes.data(), nbytes);
  }
  if (!scales.empty()) out.write(scales.data(), scales.size() * 2);
}

bool non_empty_directory(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::directory_iterator(dir, ec) != fs::directory_iterator();
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string megabytes(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

int run_quantize(const std::vector<std::string>& argv) {
  Args args(argv, {"model", "type", "out", "embedding-type"}, {"force"});
  const fs::path in_dir = args.require("model");
  const fs::path out_dir = args.require("out");
  args.require("type");
  const m3::WeightType type = parse_type_option(args, "type", m3::WeightType::F32);
  // The tied embedding is also the output head, whose errors reach every logit directly:
  // q4 keeps it in int8 (docs/QUANTIZATION.md has the measurement).
  const m3::WeightType embedding_type =
      parse_type_option(args, "embedding-type", type == m3::WeightType::Q4 ? m3::WeightType::Q8 : type);

  // The input, read and checked exactly as the runtime loads it.
  std::error_code ec;
  if (!fs::is_directory(in_dir, ec)) throw std::runtime_error(in_dir.string() + ": model directory not found");
  const std::string config_path = (in_dir / "config.json").string();
  if (!fs::is_regular_file(config_path, ec)) throw std::runtime_error(config_path + ": missing");
  const m3::ModelConfig config = m3::parse_model_config(read_text(config_path), config_path);
  std::unique_ptr<m3::MappedFile> file;
  std::vector<std::vector<uint64_t>> aligned_copies;
  std::vector<m3::TensorView> tensors;
  m3::SafetensorsMetadata metadata;
  if (fs::is_regular_file(in_dir / "model.safetensors", ec)) {
    file = std::make_unique<m3::MappedFile>((in_dir / "model.safetensors").string());
    tensors = m3::read_safetensors(*file, aligned_copies, metadata);
  } else if (fs::is_regular_file(in_dir / "pytorch_model.bin", ec)) {
    file = std::make_unique<m3::MappedFile>((in_dir / "pytorch_model.bin").string());
    tensors = m3::read_pytorch_checkpoint(*file);
  } else {
    throw std::runtime_error(in_dir.string() + ": no weights: expected model.safetensors or pytorch_model.bin");
  }
  const m3::ModelWeights bound = m3::bind_model_weights(config, tensors, file->path(), metadata);

  // The output directory: never the input, never someone's files unless asked.
  if (fs::exists(out_dir, ec) && fs::exists(in_dir, ec) && fs::equivalent(in_dir, out_dir, ec))
    throw std::runtime_error(out_dir.string() + ": is the input directory; write the quantized model elsewhere");
  if (fs::exists(out_dir, ec) && !fs::is_directory(out_dir, ec))
    throw std::runtime_error(out_dir.string() + ": exists and is not a directory");
  if (non_empty_directory(out_dir) && !args.flag("force"))
    throw std::runtime_error(out_dir.string() + ": exists and is not empty (pass --force to overwrite its model files)");
  const bool created = !fs::exists(out_dir, ec);
  fs::create_directories(out_dir, ec);
  if (ec) throw std::runtime_error(out_dir.string() + ": cannot create: " + ec.message());

  // The plan: matrices by their binding (so already quantized inputs are read with their
  // scales), the rest copied; scales of the input are replaced, a tied head is not repeated.
  std::map<std::string, m3::WeightMatrix> matrices = {{"backbone.embedding.weight", bound.embedding}};
  if (!config.tie_embeddings) matrices["lm_head.weight"] = bound.lm_head;
  for (int64_t i = 0; i < config.n_layer; ++i) {
    const std::string p = "backbone.layers." + std::to_string(i) + ".";
    const auto& L = bound.layers[static_cast<std::size_t>(i)];
    matrices[p + "mixer.in_proj.weight"] = L.in_proj;
    matrices[p + "mixer.out_proj.weight"] = L.out_proj;
    if (L.fc1.data) matrices[p + "mlp.fc1.weight"] = L.fc1;
    if (L.fc2.data) matrices[p + "mlp.fc2.weight"] = L.fc2;
  }
  std::vector<Item> items;
  m3::WeightType label = m3::WeightType::F32, head_written = embedding_type;
  bool any_block_matrix = false, any_quantized = false;
  auto rank = [](m3::WeightType t) {  // lower = less precise, as the loader orders them
    return t == m3::WeightType::Q4 ? 0 : t == m3::WeightType::Q8 ? 1 : t == m3::WeightType::BF16 ? 2
                                                                         : t == m3::WeightType::F16 ? 3 : 4;
  };
  for (const auto& t : tensors) {
    if (t.name.ends_with("_scales") && matrices.count(t.name.substr(0, t.name.size() - 7))) continue;
    if (t.name == "lm_head.weight" && config.tie_embeddings) continue;
    Item item{&t, false, {}, m3::WeightType::F32};
    if (auto it = matrices.find(t.name); it != matrices.end() && is_large_matrix(t.name)) {
      item.convert = true;
      item.matrix = it->second;
      const bool head = t.name == "backbone.embedding.weight" || t.name == "lm_head.weight";
      item.type = head ? embedding_type : type;
      if (is_quantized(item.type) && item.matrix.cols % m3::kQuantGroup != 0) {
        const m3::WeightType keep = is_quantized(item.matrix.type) ? m3::WeightType::F32 : item.matrix.type;
        std::fprintf(stderr, "note: %s has %lld columns, not a multiple of %lld: kept as %s\n", t.name.c_str(),
                     static_cast<long long>(item.matrix.cols), static_cast<long long>(m3::kQuantGroup),
                     m3::weight_type_name(keep));
        item.type = keep;
      }
      any_quantized |= is_quantized(item.type);
      if (head) head_written = item.type;
      if (!head) {
        if (!any_block_matrix || rank(item.type) < rank(label)) label = item.type;
        any_block_matrix = true;
      }
    }
    items.push_back(item);
  }
  if (!any_block_matrix) label = head_written;
  if (is_quantized(bound.weight_type))
    std::fprintf(stderr, "note: the input is already quantized (%s); its matrices are dequantized and converted, "
                 "so the errors of both quantizations add up (convert from the float checkpoint when you have it)\n",
                 m3::weight_type_name(bound.weight_type));
  // Widest elements first: every tensor then starts aligned for its dtype, so the loader maps
  // all of them in place (safetensors allows no padding between tensors).
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    auto size = [](const Item& i) { return m3::dtype_size(i.convert ? stored_dtype(i.type) : i.source->dtype); };
    return size(a) > size(b);
  });

  std::vector<m3::TensorHeader> headers;
  for (const auto& item : items)
    for (auto& h : headers_of(item)) headers.push_back(std::move(h));
  std::map<std::string, std::string> out_metadata = {{"format", "pt"},
                                                     {"mamba3rt.weight_type", m3::weight_type_name(label)}};
  if (any_quantized) out_metadata["mamba3rt.quant_group"] = std::to_string(m3::kQuantGroup);
  if (head_written != label) out_metadata["mamba3rt.embedding_type"] = m3::weight_type_name(head_written);

  const std::string out_path = (out_dir / "model.safetensors").string();
  const std::string tmp_path = out_path + ".partial";
  try {
    m3::SafetensorsStreamWriter writer(tmp_path, headers, out_metadata);
    for (const auto& item : items) write_item(item, writer);
    writer.finish();
  } catch (...) {
    fs::remove(tmp_path, ec);
    if (created) fs::remove(out_dir, ec);  // only if still empty
    throw;
  }
  fs::rename(tmp_path, out_path, ec);
  if (ec) throw std::runtime_error(out_path + ": cannot rename into place: " + ec.message());
  for (const char* name : kCompanionFiles) {
    if (!fs::is_regular_file(in_dir / name, ec)) continue;
    fs::copy_file(in_dir / name, out_dir / name, fs::copy_options::overwrite_existing, ec);
    if (ec) throw std::runtime_error((out_dir / name).string() + ": cannot copy: " + ec.message());
  }

  // The result must load: the same checks a user's load will make.
  m3_model* loaded = nullptr;
  m3_model_params* params = nullptr;
  check(m3_model_params_create(&params), "model params");
  m3_status s = m3_model_params_set_backend(params, M3_BACKEND_CPU_REFERENCE);
  if (s == M3_OK) s = m3_model_load(out_dir.c_str(), params, &loaded);
  m3_model_params_destroy(params);
  check(s, "loading the written model " + out_dir.string());
  int64_t n_params = 0, bytes = 0;
  m3_model_info(loaded, M3_INFO_N_PARAMS, &n_params);
  m3_model_info(loaded, M3_INFO_WEIGHT_BYTES, &bytes);
  m3_model_free(loaded);
  std::printf("wrote %s: %s weights (embedding %s), %lld parameters, %s of weights (input %s)\n",
              out_dir.c_str(), m3::weight_type_name(label), m3::weight_type_name(head_written),
              static_cast<long long>(n_params), megabytes(static_cast<uint64_t>(bytes)).c_str(),
              megabytes(static_cast<uint64_t>(bound.weight_bytes)).c_str());
  return 0;
}

}  // namespace cli
