#include "backends/vulkan/vulkan_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "backends/vulkan/vulkan_context.h"
#include "backends/vulkan/vulkan_pipeline.h"
#include "common/error.h"

namespace m3 {
namespace {

using vulkan::Buffer;
using vulkan::Context;
using vulkan::Pipeline;

// Rows per pass (a prefill chunk or a decode batch), lowered where the device's largest
// storage-buffer binding cannot hold a workspace of that many rows.
constexpr int64_t kMaxRows = 512;
// Rows of logits per submission (a row of a 128k vocabulary is 512 KB).
constexpr int64_t kLogitRows = 64;
// Decode batches up to this size use matvec (each weight read once for all rows); larger
// passes the tiled product. The shader's kMaxBatch.
constexpr int64_t kMatvecRows = 8;

enum ShaderWeightType { kF32, kF16, kBF16, kF16Storage, kTypeCount };
const char* const kTypeSuffix[kTypeCount] = {"f32", "f16", "bf16", "f16s"};

uint32_t u32(int64_t v) { return static_cast<uint32_t>(v); }
uint32_t groups(int64_t n, int64_t per_group) { return u32((n + per_group - 1) / per_group); }

// Push constants, laid out as the shaders declare them (checked against the reflected size).
struct EmbedPush {
  uint32_t cols, first_row, piece_rows;
};
struct NormPush {
  uint32_t cols, x_offset, w_offset;
};
struct ProductPush {
  uint32_t out_rows, cols, rows, y_stride, y_offset;
  float beta;
};
struct MatvecPush {
  uint32_t out_rows, cols, rows, y_stride, y_offset;
  float beta;
  uint32_t x_offset, w_offset;
};
// What matvec reads as its input (the shader's INPUT): x, x's rows RMS-normalized, or the
// gated MLP activation of x. The matmul path gets that input from its own dispatch.
enum MatvecInput : uint32_t { kPlainInput = 0, kNormedInput = 1, kGatedInput = 2 };
struct SiluPush {
  uint32_t hidden;
};
struct StepPush {
  uint32_t rows, row0, d_in_proj, E;
  uint32_t off_angle, off_ssm, off_k, off_v;
  uint32_t dt_bias, D, B_bias, C_bias, mimo_x, mimo_z, mimo_o, B_norm, C_norm, out_norm;
  float a_floor;
};

// A weight matrix in device memory, in row pieces that each fit one storage-buffer binding.
struct DeviceMatrix {
  ShaderWeightType type = kF32;
  int64_t rows = 0, cols = 0;
  struct Piece {
    int64_t first_row = 0, rows = 0;
    std::shared_ptr<Buffer> buffer;
  };
  std::vector<Piece> pieces;
};

// A matrix product y = W x bound to its input and output buffers: a descriptor set per
// piece for each of the two product shaders.
struct BoundProduct {
  const DeviceMatrix* w = nullptr;
  MatvecInput input = kPlainInput;
  std::vector<VkDescriptorSet> matvec_sets, matmul_sets;
};

struct DeviceLayer {
  uint32_t norm = 0, norm2 = 0;  // offsets into the params buffer
  StepPush step{};
  BoundProduct in_proj, out_proj, fc1, fc2;
};

struct VulkanSlot final : StateSlot {
  uint64_t id = 0;  // unique in the backend's life: keys the recorded decode steps
  Buffer state;
  VkDescriptorPool pool = VK_NULL_HANDLE;
  VkDescriptorSet set = VK_NULL_HANDLE;
  const vulkan::DeviceApi* api = nullptr;
  VkDevice device = VK_NULL_HANDLE;
  ~VulkanSlot() override {
    if (pool) {
      api->vkDestroyDescriptorPool(device, pool, nullptr);
      vulkan::freed_device_object();
    }
  }
};

}  // namespace

struct VulkanBackend::Impl {
  const ModelConfig& c;
  const StateLayout& layout;
  std::unique_ptr<Context> ctx;
  int64_t mlp_hidden = 0;
  int64_t max_rows = kMaxRows, logit_rows = kLogitRows;
  ReleaseWeightPages release_weight_pages;  // told of each matrix once it is uploaded

  // Pipelines: per weight type where the type occurs.
  std::unique_ptr<Pipeline> embed[kTypeCount], matmul[kTypeCount];
  // The decode products' pipelines, by shader and specialization (made on first use).
  mutable std::map<std::string, std::unique_ptr<Pipeline>> matvec_cache;
  int64_t matvec_rows_per_group = 0;  // MAMBA3RT_VULKAN_MATVEC_ROWS overrides (experiments)
  bool matvec_slices = true;          // MAMBA3RT_VULKAN_MATVEC_SLICES=0: matvec.comp only

  // Batch-1 decode steps recorded once per (slot, with logits) and resubmitted: recording
  // ~100 dispatches costs the CPU about as long as a small model's step on the GPU, which
  // waits meanwhile. The most recent kRecordedSteps are kept; a slot's entries go stale
  // with it (its id is never reused). MAMBA3RT_VULKAN_REUSE=0 turns this off.
  static constexpr std::size_t kRecordedSteps = 64;
  struct RecordedStep {
    uint64_t slot_id;
    bool logits;
    VkCommandBuffer commands;
  };
  std::vector<RecordedStep> recorded_steps;  // oldest first
  bool reuse_steps = true;
  uint64_t next_slot_id = 1;
  std::vector<VulkanSlot*> batch_slots;  // decode's slots of a pass (max_rows, sized at load)

  ~Impl() {
    if (ctx)
      for (const RecordedStep& r : recorded_steps) ctx->free_commands(r.commands);
  }

  VkCommandBuffer recorded_step(VulkanSlot* slot, bool logits) {
    for (const RecordedStep& r : recorded_steps)
      if (r.slot_id == slot->id && r.logits == logits) return r.commands;
    VkCommandBuffer cb = ctx->record([&](VkCommandBuffer commands) {
      record_body(commands, 1, nullptr, &slot);
      if (logits) record_logits(commands, 0, 1);
    });
    if (recorded_steps.size() == kRecordedSteps) {
      ctx->free_commands(recorded_steps.front().commands);
      recorded_steps.erase(recorded_steps.begin());
    }
    recorded_steps.push_back({slot->id, logits, cb});
    return cb;
  }
  std::unique_ptr<Pipeline> rms_norm, gated_silu, step;
  std::unique_ptr<vulkan::DescriptorSets> sets;

  std::map<const void*, std::unique_ptr<DeviceMatrix>> matrices;  // by host data: a tied head once
  std::unique_ptr<Buffer> params;  // every small fp32 parameter of the model
  uint32_t norm_f = 0;
  const DeviceMatrix* embedding = nullptr;
  std::vector<VkDescriptorSet> embed_sets;
  BoundProduct lm_head;
  std::vector<DeviceLayer> layers;

  // Workspace for max_rows rows.
  std::unique_ptr<Buffer> residual, gemm_in, proj, y, hidden, logits, tokens, logits_host;
  VkDescriptorSet norm_set = VK_NULL_HANDLE, mlp_norm_set = VK_NULL_HANDLE, silu_set = VK_NULL_HANDLE,
                  step_set = VK_NULL_HANDLE;

  Impl(const ModelConfig& config, const StateLayout& state_layout) : c(config), layout(state_layout) {}

  ShaderWeightType shader_type(const WeightMatrix& w, const char* name) const {
    switch (w.type) {
      case WeightType::F32: return kF32;
      case WeightType::F16: return ctx->caps().storage_16bit ? kF16Storage : kF16;
      case WeightType::BF16: return kBF16;
      case WeightType::Q8:
      case WeightType::Q4: break;
    }
    fail(M3_ERR_UNSUPPORTED, std::string("Vulkan backend: ") + name + " is " + weight_type_name(w.type) +
                                 "; quantized weights run on the CPU backend only for now (convert the model "
                                 "with `mamba3rt quantize --type bf16`)");
  }

  const DeviceMatrix* upload_matrix(const WeightMatrix& w, const char* name) {
    if (!w.data) return nullptr;
    if (auto it = matrices.find(w.data); it != matrices.end()) return it->second.get();
    auto m = std::make_unique<DeviceMatrix>();
    m->type = shader_type(w, name);
    m->rows = w.rows;
    m->cols = w.cols;
    const int64_t element = w.type == WeightType::F32 ? 4 : 2;
    const int64_t row_bytes = w.cols * element;
    const int64_t range = static_cast<int64_t>(std::min<uint64_t>(ctx->caps().max_storage_buffer_range, 1ull << 40));
    const int64_t rows_per_piece = std::max<int64_t>(1, (range - 16) / row_bytes);
    if (row_bytes + 16 > range)
      fail(M3_ERR_UNSUPPORTED, std::string("Vulkan backend: a row of ") + name + " is larger than the device's " +
                                   "largest storage buffer binding");
    for (int64_t r0 = 0; r0 < w.rows; r0 += rows_per_piece) {
      DeviceMatrix::Piece piece;
      piece.first_row = r0;
      piece.rows = std::min(rows_per_piece, w.rows - r0);
      const std::size_t bytes = static_cast<std::size_t>(piece.rows * row_bytes);
      piece.buffer = std::make_shared<Buffer>(*ctx, (bytes + 15) / 16 * 16, false);
      ctx->upload(*piece.buffer, 0, static_cast<const char*>(w.data) + r0 * row_bytes, bytes);
      m->pieces.push_back(std::move(piece));
    }
    if (release_weight_pages) release_weight_pages(w.data, static_cast<std::size_t>(w.rows * row_bytes));
    const DeviceMatrix* out = m.get();
    matrices[w.data] = std::move(m);
    return out;
  }

  Pipeline& matmul_pipeline(ShaderWeightType t) {
    if (!matmul[t]) matmul[t] = std::make_unique<Pipeline>(*ctx, (std::string("matmul_") + kTypeSuffix[t]).c_str());
    return *matmul[t];
  }

  // x slices a thread of matvec_slices holds for a product of cols columns and batch rows; 0
  // where it does not apply (columns not in 8s, or too many registers: more than 8 vec8s).
  int64_t slices_for(int64_t cols, int64_t batch) const {
    const int64_t slices = (cols / 8 + 127) / 128;
    return matvec_slices && cols % 8 == 0 && slices * batch <= 8 ? slices : 0;
  }

  // Output rows per workgroup. Measured on an H100 at batch 1 (bf16, 443M / 1.5B ms per
  // step): matvec_slices 2 rows 1.49 / 2.66, 4 rows 1.60 / 2.66, 8 rows 1.85 / 2.78 (more rows,
  // fewer workgroups in flight); matvec.comp, which reads x per row anyway, 1 row.
  int64_t rows_per_group(int64_t slices, int64_t /*batch*/) const {
    if (matvec_rows_per_group > 0) return matvec_rows_per_group;
    return slices == 0 ? 1 : 2;
  }

  // The decode product for a matrix of cols columns at a batch size. Both shaders' sets are
  // defined identically, so a descriptor set made for one binds to all (Vulkan's pipeline
  // layout compatibility).
  Pipeline& matvec_pipeline(ShaderWeightType t, MatvecInput input, int64_t batch, int64_t cols) const {
    const int64_t slices = slices_for(cols, batch);
    const std::string name = std::string(slices ? "matvec_slices_" : "matvec_") + kTypeSuffix[t] +
                             (ctx->caps().subgroup_arithmetic ? "_subgroup" : "");
    const int64_t rows = rows_per_group(slices, batch);
    std::vector<std::pair<uint32_t, uint32_t>> spec{{0, u32(rows)}, {1, input}, {2, u32(batch)}};
    if (slices) spec.push_back({3, u32(slices)});
    const std::string key = name + "/" + std::to_string(rows) + "/" + std::to_string(input) + "/" +
                            std::to_string(batch) + "/" + std::to_string(slices);
    std::unique_ptr<Pipeline>& p = matvec_cache[key];
    if (!p) p = std::make_unique<Pipeline>(*ctx, name.c_str(), spec);
    return *p;
  }

  // y = W in(x): matvec reads matvec_x (made into its input on the fly), matmul reads matmul_x
  // (the input already made by a dispatch of its own).
  BoundProduct bind_product(const DeviceMatrix* w, MatvecInput input, const Buffer& matvec_x, const Buffer& matmul_x,
                            const Buffer& out) {
    BoundProduct b;
    b.w = w;
    b.input = input;
    if (!w) return b;
    Pipeline& mv = matvec_pipeline(w->type, input, 1, w->cols);
    Pipeline& mm = matmul_pipeline(w->type);
    for (const auto& piece : w->pieces) {
      b.matvec_sets.push_back(sets->make(mv, 0, {piece.buffer.get(), &matvec_x, &out, params.get()}));
      b.matmul_sets.push_back(sets->make(mm, 0, {piece.buffer.get(), &matmul_x, &out}));
    }
    return b;
  }

  // out[t, y_offset ..] (+)= W in[t, :] for t < rows (row stride of out: y_stride). Up to
  // kMatvecRows rows: matvec, its input from x at x_offset (norm weights at w_offset);
  // more: matmul, its input made beforehand (see fused()).
  void product(VkCommandBuffer cb, const BoundProduct& b, int64_t rows, int64_t y_stride, float beta,
               int64_t x_offset = 0, uint32_t w_offset = 0) const {
    const DeviceMatrix& w = *b.w;
    for (std::size_t i = 0; i < w.pieces.size(); ++i) {
      const auto& piece = w.pieces[i];
      if (fused(rows)) {
        const MatvecPush push{u32(piece.rows), u32(w.cols), u32(rows), u32(y_stride), u32(piece.first_row), beta,
                              u32(x_offset), w_offset};
        const int64_t per_group = rows_per_group(slices_for(w.cols, rows), rows);
        const int64_t row_groups = (piece.rows + per_group - 1) / per_group;
        const int64_t gx = std::min<int64_t>(row_groups, ctx->caps().max_workgroup_count_x);
        matvec_pipeline(w.type, b.input, rows, w.cols)
            .dispatch(cb, {b.matvec_sets[i]}, push, u32(gx), groups(row_groups, gx));
      } else {
        const ProductPush push{u32(piece.rows), u32(w.cols), u32(rows), u32(y_stride), u32(piece.first_row), beta};
        matmul[w.type]->dispatch(cb, {b.matmul_sets[i]}, push, groups(piece.rows, 64), groups(rows, 64));
      }
    }
  }

  // Passes of up to kMatvecRows rows make the products' inputs inside matvec (no norm or
  // activation dispatches: at batch 1 each dispatch's fixed cost is most of its time).
  static bool fused(int64_t rows) { return rows <= kMatvecRows; }

  // Records the model body for rows [0, n): prefill (one slot, rows in order) or decode
  // (row i belongs to slots[i]).
  void record_body(VkCommandBuffer cb, int64_t n, VulkanSlot* prefill_slot, VulkanSlot* const* decode_slots) const {
    const int64_t D = c.d_model;
    for (std::size_t i = 0; i < embedding->pieces.size(); ++i) {
      const auto& piece = embedding->pieces[i];
      embed[embedding->type]->dispatch(cb, {embed_sets[i]}, EmbedPush{u32(D), u32(piece.first_row), u32(piece.rows)},
                                       groups(D, 128), u32(n));
    }
    for (const DeviceLayer& L : layers) {
      if (!fused(n)) rms_norm->dispatch(cb, {norm_set}, NormPush{u32(D), 0, L.norm}, u32(n));
      product(cb, L.in_proj, n, c.d_in_proj, 0.0f, 0, L.norm);
      StepPush push = L.step;
      if (prefill_slot) {
        push.rows = u32(n);
        push.row0 = 0;
        step->dispatch(cb, {step_set, prefill_slot->set}, push, u32(c.nheads));
      } else {
        for (int64_t i = 0; i < n; ++i) {
          push.rows = 1;
          push.row0 = u32(i);
          step->dispatch(cb, {step_set, decode_slots[i]->set}, push, u32(c.nheads));
        }
      }
      product(cb, L.out_proj, n, D, 1.0f);  // beta 1: the residual add
      if (mlp_hidden > 0) {
        if (!fused(n)) rms_norm->dispatch(cb, {norm_set}, NormPush{u32(D), 0, L.norm2}, u32(n));
        product(cb, L.fc1, n, 2 * mlp_hidden, 0.0f, 0, L.norm2);
        if (!fused(n))
          gated_silu->dispatch(cb, {silu_set}, SiluPush{u32(mlp_hidden)}, groups(mlp_hidden, 128), u32(n));
        product(cb, L.fc2, n, D, 1.0f);
      }
    }
  }

  // Records the logits of rows [t0, t0 + rows) into logits_host.
  void record_logits(VkCommandBuffer cb, int64_t t0, int64_t rows) const {
    if (!fused(rows)) rms_norm->dispatch(cb, {norm_set}, NormPush{u32(c.d_model), u32(t0 * c.d_model), norm_f}, u32(rows));
    product(cb, lm_head, rows, c.vocab_padded, 0.0f, t0 * c.d_model, norm_f);
    VkBufferCopy region{0, 0, static_cast<VkDeviceSize>(rows * c.vocab_padded) * sizeof(float)};
    ctx->api().vkCmdCopyBuffer(cb, logits->handle(), logits_host->handle(), 1, &region);
  }

  // One pass of n <= max_rows rows; rows >= first_logits get logits at out (vocab_padded a row).
  void run_rows(const int32_t* token_ids, int64_t n, VulkanSlot* prefill_slot, VulkanSlot* const* decode_slots,
                int64_t first_logits, float* out) {
    std::memcpy(tokens->mapped(), token_ids, static_cast<std::size_t>(n) * sizeof(int32_t));
    const int64_t V = c.vocab_padded;
    int64_t t0 = first_logits;
    if (decode_slots && n == 1 && reuse_steps) {
      ctx->submit(recorded_step(decode_slots[0], first_logits == 0));
    } else {
      ctx->run([&](VkCommandBuffer cb) {
        record_body(cb, n, prefill_slot, decode_slots);
        if (t0 < n) record_logits(cb, t0, std::min(logit_rows, n - t0));
      });
    }
    while (t0 < n) {
      const int64_t rows = std::min(logit_rows, n - t0);
      if (t0 != first_logits) ctx->run([&](VkCommandBuffer cb) { record_logits(cb, t0, rows); });
      std::memcpy(out + (t0 - first_logits) * V, logits_host->mapped(), static_cast<std::size_t>(rows * V) * sizeof(float));
      t0 += rows;
    }
  }
};

m3_status VulkanBackend::availability(std::string* why) {
  const std::vector<vulkan::DeviceDescription> devices = vulkan::list_devices(why);
  for (const auto& d : devices)
    if (d.usable) return M3_OK;
  if (!devices.empty()) *why = "no Vulkan device supports Vulkan 1.1 with a compute queue";
  return M3_ERR_BACKEND_UNAVAILABLE;
}

VulkanBackend::VulkanBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
                             const BackendOptions& options)
    : impl_(std::make_unique<Impl>(config, layout)) {
  Impl& m = *impl_;
  const char* env_device = std::getenv("MAMBA3RT_VULKAN_DEVICE");
  m.ctx = std::make_unique<Context>(!options.device.empty() ? options.device : (env_device ? env_device : ""));
  const vulkan::DeviceCapabilities& caps = m.ctx->caps();
  m.sets = std::make_unique<vulkan::DescriptorSets>(*m.ctx);
  const ModelConfig& c = config;
  m.mlp_hidden = weights.mlp_hidden;
  m.release_weight_pages = options.release_weight_pages;

  // The state must fit one binding; the workspace decides the rows per pass.
  const int64_t range = static_cast<int64_t>(std::min<uint64_t>(caps.max_storage_buffer_range, 1ull << 40));
  if (static_cast<int64_t>(layout.total_bytes()) > range)
    fail(M3_ERR_UNSUPPORTED, "Vulkan backend: a session's state (" + std::to_string(layout.total_bytes()) +
                                 " bytes) is larger than the device's largest storage buffer binding (" +
                                 std::to_string(range) + " bytes)");
  const int64_t widest_row = std::max({c.d_in_proj, 2 * m.mlp_hidden, c.d_inner, c.d_model}) * 4;
  m.max_rows = std::clamp<int64_t>(range / widest_row, 1, kMaxRows);
  m.logit_rows = std::clamp<int64_t>(range / (c.vocab_padded * 4), 1, kLogitRows);
  m.batch_slots.resize(static_cast<std::size_t>(m.max_rows));

  // The head step: thread rows of TPR threads; TPR the smallest divisor of N that keeps at
  // most 32 state elements a thread within the workgroup limit.
  const int64_t P = c.headdim, N = c.d_state, R = c.mimo_rank;
  int64_t limit = std::min<int64_t>(256, caps.max_workgroup_invocations);
  if (P > limit) limit = std::min<int64_t>(1024, caps.max_workgroup_invocations);
  int64_t tpr = 0;
  for (int64_t d = 1; d <= N; ++d) {
    if (N % d != 0 || P * d > limit) continue;
    tpr = d;
    if (N / d <= 32) break;
  }
  const int64_t shared_floats = 3 * P + 3 * R * N + c.n_angles + 1 + 2 * R * 16 + 2 * R + R * P * tpr + R * P;
  if (tpr == 0 || shared_floats * 4 > caps.max_shared_memory)
    fail(M3_ERR_UNSUPPORTED, "Vulkan backend: heads of headdim " + std::to_string(P) + " and d_state " +
                                 std::to_string(N) + " do not fit this device's workgroups");
  m.step = std::make_unique<Pipeline>(
      *m.ctx, "mamba3_step",
      std::vector<std::pair<uint32_t, uint32_t>>{{0, u32(P * tpr)}, {1, u32(c.nheads)}, {2, u32(P)}, {3, u32(N)},
                                                 {4, u32(c.ngroups)}, {5, u32(R)}, {6, u32(c.n_angles)}, {7, u32(tpr)},
                                                 {8, u32(N / tpr)}, {9, c.is_mimo ? 1u : 0u},
                                                 {10, c.is_outproj_norm ? 1u : 0u},
                                                 {11, c.a_activation == AActivation::HeavyTail ? 1u : 0u}});
  m.rms_norm = std::make_unique<Pipeline>(*m.ctx, "rms_norm");
  if (const char* r = std::getenv("MAMBA3RT_VULKAN_MATVEC_ROWS"); r && *r)
    m.matvec_rows_per_group = std::clamp<int64_t>(std::atoi(r), 1, 8);
  if (const char* s = std::getenv("MAMBA3RT_VULKAN_MATVEC_SLICES"); s && std::strcmp(s, "0") == 0)
    m.matvec_slices = false;
  if (const char* r = std::getenv("MAMBA3RT_VULKAN_REUSE"); (r && std::strcmp(r, "0") == 0) || m.ctx->profiling())
    m.reuse_steps = false;  // profiling marks each submission's own dispatches
  m.gated_silu = std::make_unique<Pipeline>(*m.ctx, "gated_silu");

  // Every small fp32 parameter in one buffer, at offsets the pushes carry.
  std::vector<float> params;
  auto add = [&](const std::vector<float>& v) {
    const uint32_t at = u32(params.size());
    params.insert(params.end(), v.begin(), v.end());
    return at;
  };
  m.norm_f = add(weights.norm_f);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const MambaLayerWeights& W = weights.layers[static_cast<std::size_t>(l)];
    DeviceLayer L;
    L.norm = add(W.norm);
    L.norm2 = add(W.norm2);
    StepPush& s = L.step;
    s.d_in_proj = u32(c.d_in_proj);
    s.E = u32(c.d_inner);
    s.off_angle = u32(layout.offset(l, M3_STATE_ANGLE));
    s.off_ssm = u32(layout.offset(l, M3_STATE_SSM));
    s.off_k = u32(layout.offset(l, M3_STATE_K));
    s.off_v = u32(layout.offset(l, M3_STATE_V));
    s.dt_bias = add(W.dt_bias);
    s.D = add(W.D);
    s.B_bias = add(W.B_bias);
    s.C_bias = add(W.C_bias);
    s.mimo_x = add(W.mimo_x);
    s.mimo_z = add(W.mimo_z);
    s.mimo_o = add(W.mimo_o);
    s.B_norm = add(W.B_norm);
    s.C_norm = add(W.C_norm);
    s.out_norm = add(W.out_norm);
    s.a_floor = static_cast<float>(c.a_floor);
    m.layers.push_back(L);
  }
  m.params = std::make_unique<Buffer>(*m.ctx, params.size() * sizeof(float), false);
  m.ctx->upload(*m.params, 0, params.data(), params.size() * sizeof(float));

  auto workspace = [&](int64_t floats) { return std::make_unique<Buffer>(*m.ctx, static_cast<std::size_t>(floats) * 4, false); };
  const int64_t rows = m.max_rows;
  m.residual = workspace(rows * c.d_model);
  m.gemm_in = workspace(rows * std::max(c.d_model, m.mlp_hidden));
  m.proj = workspace(rows * c.d_in_proj);
  m.y = workspace(rows * c.d_inner);
  m.hidden = workspace(rows * 2 * std::max<int64_t>(m.mlp_hidden, 1));
  m.logits = workspace(m.logit_rows * c.vocab_padded);
  m.tokens = std::make_unique<Buffer>(*m.ctx, static_cast<std::size_t>(rows) * 4, true);
  m.logits_host = std::make_unique<Buffer>(*m.ctx, static_cast<std::size_t>(m.logit_rows * c.vocab_padded) * 4, true);

  m.norm_set = m.sets->make(*m.rms_norm, 0, {m.residual.get(), m.params.get(), m.gemm_in.get()});
  m.silu_set = m.sets->make(*m.gated_silu, 0, {m.hidden.get(), m.gemm_in.get()});
  m.step_set = m.sets->make(*m.step, 0, {m.proj.get(), m.y.get(), m.params.get()});

  m.embedding = m.upload_matrix(weights.embedding, "the embedding");
  Pipeline& embed = *(m.embed[m.embedding->type] = std::make_unique<Pipeline>(
                          *m.ctx, (std::string("embed_") + kTypeSuffix[m.embedding->type]).c_str()));
  for (const auto& piece : m.embedding->pieces)
    m.embed_sets.push_back(m.sets->make(embed, 0, {piece.buffer.get(), m.tokens.get(), m.residual.get()}));
  m.lm_head = m.bind_product(m.upload_matrix(weights.lm_head, "lm_head"), kNormedInput, *m.residual, *m.gemm_in, *m.logits);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const MambaLayerWeights& W = weights.layers[static_cast<std::size_t>(l)];
    DeviceLayer& L = m.layers[static_cast<std::size_t>(l)];
    L.in_proj = m.bind_product(m.upload_matrix(W.in_proj, "in_proj"), kNormedInput, *m.residual, *m.gemm_in, *m.proj);
    L.out_proj = m.bind_product(m.upload_matrix(W.out_proj, "out_proj"), kPlainInput, *m.y, *m.y, *m.residual);
    if (m.mlp_hidden > 0) {
      L.fc1 = m.bind_product(m.upload_matrix(W.fc1, "fc1"), kNormedInput, *m.residual, *m.gemm_in, *m.hidden);
      L.fc2 = m.bind_product(m.upload_matrix(W.fc2, "fc2"), kGatedInput, *m.hidden, *m.gemm_in, *m.residual);
    }
  }
  m.ctx->check_validation();
}

VulkanBackend::~VulkanBackend() = default;

std::string VulkanBackend::device_name() const { return impl_->ctx->device_name(); }

std::vector<std::string> VulkanBackend::pipelines() const {
  std::vector<std::string> names;
  auto add = [&](const std::unique_ptr<Pipeline>& p) {
    if (p) names.push_back(p->shader().name);
  };
  for (const auto* table : {impl_->embed, impl_->matmul})
    for (int t = 0; t < kTypeCount; ++t) add(table[t]);
  for (const auto& [key, p] : impl_->matvec_cache) add(p);
  add(impl_->rms_norm);
  add(impl_->gated_silu);
  add(impl_->step);
  return names;
}

std::unique_ptr<StateSlot> VulkanBackend::create_slot() {
  std::lock_guard<std::mutex> lock(run_mutex_);
  Impl& m = *impl_;
  auto s = std::make_unique<VulkanSlot>();
  s->id = m.next_slot_id++;
  s->api = &m.ctx->api();
  s->device = m.ctx->device();
  s->state = Buffer(*m.ctx, m.layout.total_bytes(), false);
  // A pool of its own, so that the slot's set goes with it.
  VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1};
  VkDescriptorPoolCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO;
  info.maxSets = 1;
  info.poolSizeCount = 1;
  info.pPoolSizes = &size;
  vulkan::check(vulkan::allocate_device_object(
                    true, [&] { return s->api->vkCreateDescriptorPool(s->device, &info, nullptr, &s->pool); }),
                "vkCreateDescriptorPool");
  VkDescriptorSetLayout set_layout = m.step->set_layout(1);
  VkDescriptorSetAllocateInfo alloc{};
  alloc.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO;
  alloc.descriptorPool = s->pool;
  alloc.descriptorSetCount = 1;
  alloc.pSetLayouts = &set_layout;
  vulkan::check(vulkan::allocate_device_object(
                    false, [&] { return s->api->vkAllocateDescriptorSets(s->device, &alloc, &s->set); }),
                "vkAllocateDescriptorSets");
  VkDescriptorBufferInfo buffer{s->state.handle(), 0, VK_WHOLE_SIZE};
  VkWriteDescriptorSet write{};
  write.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
  write.dstSet = s->set;
  write.descriptorCount = 1;
  write.descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
  write.pBufferInfo = &buffer;
  s->api->vkUpdateDescriptorSets(s->device, 1, &write, 0, nullptr);
  m.ctx->run([&](VkCommandBuffer cb) { m.ctx->api().vkCmdFillBuffer(cb, s->state.handle(), 0, VK_WHOLE_SIZE, 0); });
  return s;
}

void VulkanBackend::zero_slot(StateSlot& slot) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  auto& s = static_cast<VulkanSlot&>(slot);
  impl_->ctx->run([&](VkCommandBuffer cb) { impl_->ctx->api().vkCmdFillBuffer(cb, s.state.handle(), 0, VK_WHOLE_SIZE, 0); });
}

void VulkanBackend::copy_slot(const StateSlot& src, StateSlot& dst) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  const auto& from = static_cast<const VulkanSlot&>(src);
  auto& to = static_cast<VulkanSlot&>(dst);
  impl_->ctx->run([&](VkCommandBuffer cb) {
    VkBufferCopy region{0, 0, impl_->layout.total_bytes()};
    impl_->ctx->api().vkCmdCopyBuffer(cb, from.state.handle(), to.state.handle(), 1, &region);
  });
}

void VulkanBackend::read_slot(const StateSlot& slot, float* dst) const {
  std::lock_guard<std::mutex> lock(run_mutex_);
  impl_->ctx->download(static_cast<const VulkanSlot&>(slot).state, 0, dst, impl_->layout.total_bytes());
}

void VulkanBackend::write_slot(StateSlot& slot, const float* src) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  impl_->ctx->upload(static_cast<VulkanSlot&>(slot).state, 0, src, impl_->layout.total_bytes());
}

void VulkanBackend::prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode, float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  auto* s = static_cast<VulkanSlot*>(&slot);
  for_each_prefill_pass(n, impl_->max_rows, mode, logits, impl_->c.vocab_padded,
                        [&](int64_t t0, int64_t rows, int64_t first, float* out) {
                          impl_->run_rows(tokens + t0, rows, s, nullptr, first, out);
                        });
}

void VulkanBackend::decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  const int64_t total = static_cast<int64_t>(n), max_rows = impl_->max_rows;
  std::vector<VulkanSlot*>& batch = impl_->batch_slots;
  for (int64_t t0 = 0; t0 < total; t0 += max_rows) {
    const int64_t rows = std::min(max_rows, total - t0);
    for (int64_t i = 0; i < rows; ++i) batch[static_cast<std::size_t>(i)] = static_cast<VulkanSlot*>(slots[t0 + i]);
    impl_->run_rows(tokens + t0, rows, nullptr, batch.data(), logits ? 0 : rows,
                    logits ? logits + t0 * impl_->c.vocab_padded : nullptr);
  }
}

}  // namespace m3
