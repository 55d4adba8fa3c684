#include "backends/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "backends/cuda/cuda_kernels.h"
#include "common/error.h"

namespace m3 {
namespace {

using cuda::DeviceType;

// Rows per pass: a prefill chunk or a decode batch (bounds the workspace).
constexpr int64_t kMaxRows = 1024;
// Rows of logits computed at a time (a row of a 128k vocabulary is 512 KB).
constexpr int64_t kLogitRows = 64;

void check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  fail(e == cudaErrorMemoryAllocation ? M3_ERR_OUT_OF_MEMORY : M3_ERR_INTERNAL,
       std::string("CUDA backend: ") + what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void check(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail(s == CUBLAS_STATUS_ALLOC_FAILED ? M3_ERR_OUT_OF_MEMORY : M3_ERR_INTERNAL,
       std::string("CUDA backend: ") + what + ": " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) + ")");
}

// A failed allocation also stays behind as the runtime's "last error", where the next
// launch check (cudaGetLastError) would report it as that launch's failure: take it back.
cudaError_t cleared(cudaError_t e) {
  if (e != cudaSuccess) cudaGetLastError();
  return e;
}

// Device memory, freed with its owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) {
    if (bytes > 0) check(cleared(cudaMalloc(&p_, bytes)), "cudaMalloc");
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);  // nothing to do about a failure here
  }
  template <class T = void>
  T* get() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
};

// Page-locked host memory for the small per-pass uploads (token ids, slot pointers).
class PinnedBuffer {
 public:
  explicit PinnedBuffer(std::size_t bytes) { check(cleared(cudaMallocHost(&p_, bytes)), "cudaMallocHost"); }
  ~PinnedBuffer() {
    if (p_) cudaFreeHost(p_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  template <class T>
  T* get() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_ = nullptr;
};

DeviceType device_type(const WeightMatrix& w, const char* name) {
  switch (w.type) {
    case WeightType::F32: return DeviceType::F32;
    case WeightType::F16: return DeviceType::F16;
    case WeightType::BF16: return DeviceType::BF16;
    case WeightType::Q8:
    case WeightType::Q4: break;
  }
  fail(M3_ERR_UNSUPPORTED, std::string("CUDA backend: ") + name + " is " + weight_type_name(w.type) +
                               "; quantized weights run on the CPU backend only for now (convert the model "
                               "with `mamba3rt quantize --type bf16`)");
}

std::size_t element_bytes(DeviceType t) { return t == DeviceType::F32 ? 4 : 2; }

cudaDataType_t cuda_data_type(DeviceType t) {
  switch (t) {
    case DeviceType::F32: return CUDA_R_32F;
    case DeviceType::F16: return CUDA_R_16F;
    case DeviceType::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

struct DeviceMatrix {
  DeviceType type = DeviceType::F32;
  int64_t rows = 0, cols = 0;
  const void* data = nullptr;
};

struct DeviceLayer {
  const float* norm = nullptr;
  const float* norm2 = nullptr;
  DeviceMatrix in_proj, out_proj, fc1, fc2;
  cuda::Mamba3StepParams step;
};

struct CudaSlot final : StateSlot {
  DeviceBuffer state;
};

}  // namespace

struct CudaBackend::Impl {
  const ModelConfig& c;
  const StateLayout& layout;
  int device = 0;
  std::string device_name;  // cudaDeviceProp::name
  int64_t mlp_hidden = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;

  std::vector<DeviceBuffer> arena;  // every weight and parameter upload
  std::map<const void*, DeviceMatrix> uploaded;  // by host data: a tied head is uploaded once
  DeviceMatrix embedding, lm_head;
  const float* norm_f = nullptr;
  std::vector<DeviceLayer> layers;
  bool small_batch_ok = true;  // every matrix fits small_batch_matmul (checked at load)
  // Measured on the H100 (1.5B, bf16): batch 1 is as fast as cuBLAS and keeps fp32 inputs;
  // from batch 2 on the tensor cores win (batch 8: 2.7 vs 5.1 ms/step). Up to
  // kSmallBatchMaxRows through MAMBA3RT_CUDA_SMALL_BATCH (0: never).
  int64_t small_batch_rows = 1;
  // MAMBA3RT_CUDA_BATCH_INVARIANT=1: every decode step, whatever its batch size, runs its
  // products through small_batch_matmul in groups of kSmallBatchMaxRows sessions. That kernel
  // computes each session's outputs in the same order for any group size, so a session's
  // logits do not depend on which other sessions share the step (the streaming engine then
  // gives exactly what a request gives alone), at the price of the tensor cores' batch speed.
  bool batch_invariant = false;

  // Workspace for kMaxRows rows.
  DeviceBuffer residual, gemm_in, proj, y, hidden, logits, tokens, slot_ptrs, blas_workspace;
  std::unique_ptr<PinnedBuffer> host_tokens, host_slot_ptrs, host_logits;

  // Prefill of bf16/f16 models in the chunked form (tensor cores, tf32 within a chunk);
  // fp32 models keep the token-by-token kernel, whose fp32 sums hold the golden cases to
  // 1e-4. MAMBA3RT_CUDA_PREFILL=sequential|chunked overrides (comparisons, tests).
  bool chunked_prefill = false;
  DeviceBuffer prefill_workspace;

  // Decode steps of up to kLogitRows sessions replay a captured CUDA graph: one launch per
  // step instead of ~10 per layer, which at batch 1 would cost about as much as the step.
  bool use_graphs = true;
  std::map<std::pair<int64_t, bool>, cudaGraphExec_t> decode_graphs;  // by (rows, with logits)

  Impl(const ModelConfig& config, const StateLayout& state_layout) : c(config), layout(state_layout) {}

  ~Impl() {
    cudaSetDevice(device);  // everything below, and the members' memory, belongs to it
    for (auto& [key, exec] : decode_graphs) cudaGraphExecDestroy(exec);
    if (blas) cublasDestroy(blas);
    if (stream) cudaStreamDestroy(stream);
  }

  const float* upload_floats(const std::vector<float>& v) {
    if (v.empty()) return nullptr;
    arena.emplace_back(v.size() * sizeof(float));
    check(cudaMemcpy(arena.back().get(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), "upload");
    return arena.back().get<float>();
  }

  DeviceMatrix upload_matrix(const WeightMatrix& w, const char* name) {
    if (!w.data) return {};
    if (auto it = uploaded.find(w.data); it != uploaded.end()) return it->second;
    DeviceMatrix m{device_type(w, name), w.rows, w.cols, nullptr};
    const std::size_t bytes = static_cast<std::size_t>(w.rows * w.cols) * element_bytes(m.type);
    arena.emplace_back(bytes);
    check(cudaMemcpy(arena.back().get(), w.data, bytes, cudaMemcpyHostToDevice), "upload");
    m.data = arena.back().get();
    uploaded[w.data] = m;
    return m;
  }

  // Whether a pass of n rows runs its products as small_batch_matmul (fp32 inputs) rather
  // than cuBLAS (inputs in the weights' type): decode steps of a few sessions.
  bool small_batch(int64_t n, bool prefill) const {
    return !prefill && small_batch_ok && (n <= small_batch_rows || batch_invariant);
  }

  // The type a product's input is written in.
  DeviceType input_type(const DeviceMatrix& w, bool small) const { return small ? DeviceType::F32 : w.type; }

  // y[t, :] (+)= W x[t, :] for t < n: x in input_type(w, small), row stride x_stride; y fp32.
  void matmul(const DeviceMatrix& w, const void* x, int64_t x_stride, int64_t n, float* y, int64_t y_stride,
              float beta, bool small) {
    if (small) {
      for (int64_t t0 = 0; t0 < n; t0 += cuda::kSmallBatchMaxRows) {  // more rows: batch-invariant mode
        const int64_t rows = std::min<int64_t>(cuda::kSmallBatchMaxRows, n - t0);
        check(cuda::small_batch_matmul(w.data, w.type, static_cast<int>(w.rows), static_cast<int>(w.cols),
                                       static_cast<const float*>(x) + t0 * x_stride, static_cast<int>(x_stride),
                                       static_cast<int>(rows), y + t0 * y_stride, static_cast<int>(y_stride), beta,
                                       stream),
              "small_batch_matmul");
      }
      return;
    }
    const float alpha = 1.0f;
    // Column-major view: Y (rows x n) = W^T' (W stored [rows, cols] is cols x rows) x X (cols x n).
    const cudaDataType_t t = cuda_data_type(w.type);
    check(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), static_cast<int>(n),
                       static_cast<int>(w.cols), &alpha, w.data, t, static_cast<int>(w.cols), x, t,
                       static_cast<int>(x_stride), &beta, y, CUDA_R_32F, static_cast<int>(y_stride),
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
          "cublasGemmEx");
  }

  // Runs rows [0, n) through the model: row t is tokens[t]; prefill: all rows belong to the
  // slot `state`, in order; decode: row t belongs to slot_states[t]. Rows t >= first_logits
  // get logits at host_logits + (t - first_logits) * vocab_padded.
  void run_rows(const int32_t* host_token_ids, int64_t n, float* prefill_state, float* const* slot_states,
                int64_t first_logits, float* out_logits) {
    std::memcpy(host_tokens->get<int32_t>(), host_token_ids, static_cast<std::size_t>(n) * sizeof(int32_t));
    if (!prefill_state && slot_states)
      std::memcpy(host_slot_ptrs->get<float*>(), slot_states, static_cast<std::size_t>(n) * sizeof(float*));
    const int64_t logit_rows = n - first_logits;
    if (!prefill_state && use_graphs && logit_rows <= kLogitRows && (logit_rows == 0 || logit_rows == n)) {
      cudaGraphExec_t& exec = decode_graphs[{n, logit_rows > 0}];
      if (!exec) {
        // Captured once per batch size: every pointer in the pass is fixed, and the inputs
        // arrive through the pinned buffers the graph's copies read when it runs.
        check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        cudaGraph_t graph = nullptr;
        try {
          enqueue_pass(n, nullptr, first_logits);
        } catch (...) {
          cudaStreamEndCapture(stream, &graph);
          if (graph) cudaGraphDestroy(graph);
          decode_graphs.erase({n, logit_rows > 0});
          throw;
        }
        check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
        const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        if (e != cudaSuccess) decode_graphs.erase({n, logit_rows > 0});
        check(e, "cudaGraphInstantiate");
      }
      check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    } else {
      enqueue_pass(n, prefill_state, first_logits, out_logits);
    }
    check(cudaStreamSynchronize(stream), "forward pass");
    if (logit_rows > 0 && logit_rows <= kLogitRows)
      std::memcpy(out_logits, host_logits->get<float>(), static_cast<std::size_t>(logit_rows * c.vocab_padded) * sizeof(float));
  }

  // Enqueues one pass on the stream (see run_rows); the inputs are in the pinned buffers.
  // Up to kLogitRows rows of logits land in the pinned host_logits; more go straight to
  // direct_logits in pieces (never inside a graph).
  void enqueue_pass(int64_t n, float* prefill_state, int64_t first_logits, float* direct_logits = nullptr) {
    const int64_t D = c.d_model, E = c.d_inner;
    check(cudaMemcpyAsync(tokens.get(), host_tokens->get<int32_t>(), static_cast<std::size_t>(n) * sizeof(int32_t),
                          cudaMemcpyHostToDevice, stream),
          "token upload");
    if (!prefill_state)
      check(cudaMemcpyAsync(slot_ptrs.get(), host_slot_ptrs->get<float*>(), static_cast<std::size_t>(n) * sizeof(float*),
                            cudaMemcpyHostToDevice, stream),
            "slot upload");
    float* res = residual.get<float>();
    const bool small = small_batch(n, prefill_state != nullptr);
    check(cuda::embed_rows(embedding.data, embedding.type, static_cast<int>(D), tokens.get<int32_t>(),
                           static_cast<int>(n), res, stream),
          "embed_rows");
    for (const DeviceLayer& L : layers) {
      check(cuda::rms_norm_rows(res, L.norm, static_cast<int>(n), static_cast<int>(D), gemm_in.get(),
                                input_type(L.in_proj, small), stream),
            "rms_norm_rows");
      matmul(L.in_proj, gemm_in.get(), D, n, proj.get<float>(), c.d_in_proj, 0.0f, small);
      const void* out_in = y.get();
      if (prefill_state && chunked_prefill) {
        // The chunked kernels write y straight in out_proj's input type.
        const DeviceType out_type = input_type(L.out_proj, small);
        void* dst = out_type == DeviceType::F32 ? y.get() : gemm_in.get();
        check(cuda::mamba3_chunked_prefill(L.step, static_cast<int>(n), proj.get<float>(), prefill_state, dst, out_type,
                                           prefill_workspace.get(), stream),
              "mamba3_chunked_prefill");
        out_in = dst;
      } else {
        if (prefill_state)
          check(cuda::mamba3_step_prefill(L.step, static_cast<int>(n), proj.get<float>(), prefill_state,
                                          y.get<float>(), stream),
                "mamba3_step_prefill");
        else
          check(cuda::mamba3_step_decode(L.step, static_cast<int>(n), proj.get<float>(), slot_ptrs.get<float* const>(),
                                         y.get<float>(), stream),
                "mamba3_step_decode");
        if (input_type(L.out_proj, small) != DeviceType::F32) {
          check(cuda::convert_floats(y.get<float>(), n * E, gemm_in.get(), L.out_proj.type, stream), "convert_floats");
          out_in = gemm_in.get();
        }
      }
      matmul(L.out_proj, out_in, E, n, res, D, 1.0f, small);  // beta 1: the residual add
      if (mlp_hidden > 0) {
        check(cuda::rms_norm_rows(res, L.norm2, static_cast<int>(n), static_cast<int>(D), gemm_in.get(),
                                  input_type(L.fc1, small), stream),
              "rms_norm_rows");
        matmul(L.fc1, gemm_in.get(), D, n, hidden.get<float>(), 2 * mlp_hidden, 0.0f, small);
        check(cuda::gated_silu(hidden.get<float>(), static_cast<int>(n), static_cast<int>(mlp_hidden), gemm_in.get(),
                               input_type(L.fc2, small), stream),
              "gated_silu");
        matmul(L.fc2, gemm_in.get(), mlp_hidden, n, res, D, 1.0f, small);
      }
    }
    const int64_t logit_rows = n - first_logits;
    for (int64_t t0 = first_logits; t0 < n; t0 += kLogitRows) {
      const int64_t rows = std::min(kLogitRows, n - t0);
      check(cuda::rms_norm_rows(res + t0 * D, norm_f, static_cast<int>(rows), static_cast<int>(D), gemm_in.get(),
                                input_type(lm_head, small), stream),
            "rms_norm_rows");
      matmul(lm_head, gemm_in.get(), D, rows, logits.get<float>(), c.vocab_padded, 0.0f, small);
      float* dst = logit_rows <= kLogitRows ? host_logits->get<float>() : direct_logits + (t0 - first_logits) * c.vocab_padded;
      check(cudaMemcpyAsync(dst, logits.get(), static_cast<std::size_t>(rows * c.vocab_padded) * sizeof(float),
                            cudaMemcpyDeviceToHost, stream),
            "logits download");
    }
  }
};

namespace {

// "" when CUDA device `index` can run the backend, else why not.
std::string unusable_reason(int index, cudaDeviceProp* prop) {
  *prop = cudaDeviceProp{};
  const cudaError_t e = cudaGetDeviceProperties(prop, index);
  if (e != cudaSuccess) return std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(e);
  if (prop->major < 8)
    return std::string("compute capability ") + std::to_string(prop->major) + "." + std::to_string(prop->minor) +
           "; the CUDA backend needs 8.0 or newer";
  return "";
}

// "0: NVIDIA H100 80GB HBM3 (sm_90), 1: ..." for error messages.
std::string list_devices(int count) {
  std::string listing;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    const bool known = cudaGetDeviceProperties(&prop, i) == cudaSuccess;
    listing += (i ? ", " : "") + std::to_string(i) + ": " +
               (known ? std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")"
                      : std::string("(unknown)"));
  }
  return listing;
}

}  // namespace

m3_status CudaBackend::availability(std::string* why) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    const bool no_driver = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice;
    *why = std::string(no_driver ? "no NVIDIA driver or GPU found" : "no usable CUDA device") + " (cudaGetDeviceCount: " +
           cudaGetErrorString(e) + ")";
    return M3_ERR_BACKEND_UNAVAILABLE;
  }
  if (count == 0) {
    *why = "no CUDA device";
    return M3_ERR_BACKEND_UNAVAILABLE;
  }
  // Usable when one device is (the constructor checks the one it is given).
  std::string reasons;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    const std::string reason = unusable_reason(i, &prop);
    if (reason.empty()) return M3_OK;
    reasons += (i ? "; " : "") + std::string("CUDA device ") + std::to_string(i) + " (" + prop.name + "): " + reason;
  }
  *why = reasons;
  return M3_ERR_BACKEND_UNAVAILABLE;
}

CudaBackend::CudaBackend(const ModelConfig& config, const ModelWeights& weights, const StateLayout& layout,
                         const BackendOptions& options)
    : impl_(std::make_unique<Impl>(config, layout)) {
  Impl& m = *impl_;
  // The device: options.device as an index into CUDA's order (CUDA_VISIBLE_DEVICES applies),
  // else the first usable one (device 0 on a machine of one kind of GPU).
  int count = 0;
  check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (options.device.empty()) {
    cudaDeviceProp prop{};
    while (m.device + 1 < count && !unusable_reason(m.device, &prop).empty()) ++m.device;
  } else {
    const std::string& sel = options.device;
    const bool is_index = sel.size() <= 9 && std::all_of(sel.begin(), sel.end(), [](char ch) {
      return ch >= '0' && ch <= '9';
    });
    if (!is_index)
      fail(M3_ERR_BACKEND_UNAVAILABLE, "CUDA backend: no device \"" + sel +
                                           "\": the CUDA backend selects devices by index; devices: " +
                                           list_devices(count));
    const int index = std::stoi(sel);
    if (index >= count)
      fail(M3_ERR_BACKEND_UNAVAILABLE, "CUDA backend: no device " + sel + " (" + std::to_string(count) +
                                           " CUDA device" + (count == 1 ? "" : "s") + "); devices: " +
                                           list_devices(count));
    m.device = index;
  }
  cudaDeviceProp prop{};
  const std::string reason = unusable_reason(m.device, &prop);
  if (!reason.empty())
    fail(M3_ERR_BACKEND_UNAVAILABLE,
         "CUDA backend: device " + std::to_string(m.device) + " (" + prop.name + "): " + reason);
  m.device_name = prop.name;
  check(cudaSetDevice(m.device), "cudaSetDevice");
  check(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  check(cublasCreate(&m.blas), "cublasCreate");
  check(cublasSetStream(m.blas, m.stream), "cublasSetStream");
  // Exact fp32 products for fp32 weights (no TF32): the golden cases hold them to 1e-4.
  check(cublasSetMathMode(m.blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  // A workspace of our own, so that cuBLAS allocates nothing while a graph is captured.
  constexpr std::size_t kBlasWorkspace = 32u << 20;
  m.blas_workspace = DeviceBuffer(kBlasWorkspace);
  check(cublasSetWorkspace(m.blas, m.blas_workspace.get(), kBlasWorkspace), "cublasSetWorkspace");
  if (const char* g = std::getenv("MAMBA3RT_CUDA_GRAPHS"); g && std::strcmp(g, "0") == 0) m.use_graphs = false;

  const ModelConfig& c = config;
  m.mlp_hidden = weights.mlp_hidden;
  m.embedding = m.upload_matrix(weights.embedding, "the embedding");
  m.lm_head = m.upload_matrix(weights.lm_head, "lm_head");
  m.norm_f = m.upload_floats(weights.norm_f);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const MambaLayerWeights& W = weights.layers[static_cast<std::size_t>(l)];
    DeviceLayer L;
    L.norm = m.upload_floats(W.norm);
    L.norm2 = m.upload_floats(W.norm2);
    L.in_proj = m.upload_matrix(W.in_proj, "in_proj");
    L.out_proj = m.upload_matrix(W.out_proj, "out_proj");
    L.fc1 = m.upload_matrix(W.fc1, "fc1");
    L.fc2 = m.upload_matrix(W.fc2, "fc2");
    cuda::Mamba3StepParams& p = L.step;
    p.H = static_cast<int>(c.nheads);
    p.P = static_cast<int>(c.headdim);
    p.N = static_cast<int>(c.d_state);
    p.G = static_cast<int>(c.ngroups);
    p.R = static_cast<int>(c.mimo_rank);
    p.S = static_cast<int>(c.n_angles);
    p.E = static_cast<int>(c.d_inner);
    p.d_in_proj = static_cast<int>(c.d_in_proj);
    p.mimo = c.is_mimo;
    p.outproj_norm = c.is_outproj_norm;
    p.heavy_tail = c.a_activation == AActivation::HeavyTail;
    p.a_floor = static_cast<float>(c.a_floor);
    p.dt_bias = m.upload_floats(W.dt_bias);
    p.D = m.upload_floats(W.D);
    p.B_bias = m.upload_floats(W.B_bias);
    p.C_bias = m.upload_floats(W.C_bias);
    p.B_norm = m.upload_floats(W.B_norm);
    p.C_norm = m.upload_floats(W.C_norm);
    p.mimo_x = m.upload_floats(W.mimo_x);
    p.mimo_z = m.upload_floats(W.mimo_z);
    p.mimo_o = m.upload_floats(W.mimo_o);
    p.out_norm = m.upload_floats(W.out_norm);
    p.off_angle = layout.offset(l, M3_STATE_ANGLE);
    p.off_ssm = layout.offset(l, M3_STATE_SSM);
    p.off_k = layout.offset(l, M3_STATE_K);
    p.off_v = layout.offset(l, M3_STATE_V);
    m.layers.push_back(L);
  }

  auto fits = [&](const DeviceMatrix& w) {
    return !w.data || cuda::small_batch_matmul_fits(w.type, static_cast<int>(w.cols), static_cast<int>(w.cols), 1);
  };
  m.small_batch_ok = fits(m.lm_head);
  for (const DeviceLayer& L : m.layers) m.small_batch_ok = m.small_batch_ok && fits(L.in_proj) && fits(L.out_proj) && fits(L.fc1) && fits(L.fc2);
  if (const char* s = std::getenv("MAMBA3RT_CUDA_SMALL_BATCH"); s && *s)
    m.small_batch_rows = std::clamp<int64_t>(std::atoi(s), 0, cuda::kSmallBatchMaxRows);
  if (const char* s = std::getenv("MAMBA3RT_CUDA_BATCH_INVARIANT"); s && std::strcmp(s, "1") == 0)
    m.batch_invariant = true;
  const int64_t widest_input = std::max({c.d_model, c.d_inner, m.mlp_hidden});
  m.residual = DeviceBuffer(static_cast<std::size_t>(kMaxRows * c.d_model) * sizeof(float));
  m.gemm_in = DeviceBuffer(static_cast<std::size_t>(kMaxRows * widest_input) * sizeof(float));
  m.proj = DeviceBuffer(static_cast<std::size_t>(kMaxRows * c.d_in_proj) * sizeof(float));
  m.y = DeviceBuffer(static_cast<std::size_t>(kMaxRows * c.d_inner) * sizeof(float));
  m.hidden = DeviceBuffer(static_cast<std::size_t>(kMaxRows * 2 * std::max<int64_t>(m.mlp_hidden, 1)) * sizeof(float));
  m.logits = DeviceBuffer(static_cast<std::size_t>(kLogitRows * c.vocab_padded) * sizeof(float));
  m.tokens = DeviceBuffer(static_cast<std::size_t>(kMaxRows) * sizeof(int32_t));
  m.slot_ptrs = DeviceBuffer(static_cast<std::size_t>(kMaxRows) * sizeof(float*));
  m.host_tokens = std::make_unique<PinnedBuffer>(static_cast<std::size_t>(kMaxRows) * sizeof(int32_t));
  m.host_slot_ptrs = std::make_unique<PinnedBuffer>(static_cast<std::size_t>(kMaxRows) * sizeof(float*));
  m.host_logits = std::make_unique<PinnedBuffer>(static_cast<std::size_t>(kLogitRows * c.vocab_padded) * sizeof(float));

  const char* prefill_kind = std::getenv("MAMBA3RT_CUDA_PREFILL");
  const bool force_sequential = prefill_kind && std::strcmp(prefill_kind, "sequential") == 0;
  const bool force_chunked = prefill_kind && std::strcmp(prefill_kind, "chunked") == 0;
  const bool every_layer_fits = std::all_of(m.layers.begin(), m.layers.end(), [&](const DeviceLayer& L) {
    return cuda::chunked_prefill_fits(L.step, m.device);
  });
  if (!m.layers.empty() && !force_sequential && every_layer_fits &&
      (force_chunked || m.layers[0].in_proj.type != DeviceType::F32)) {
    m.chunked_prefill = true;
    m.prefill_workspace =
        DeviceBuffer(cuda::chunked_prefill_workspace_bytes(m.layers[0].step, static_cast<int>(kMaxRows)));
  }
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::device_name() const { return impl_->device_name; }

std::unique_ptr<StateSlot> CudaBackend::create_slot() {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  auto s = std::make_unique<CudaSlot>();
  s->state = DeviceBuffer(impl_->layout.total_bytes());
  check(cudaMemsetAsync(s->state.get(), 0, impl_->layout.total_bytes(), impl_->stream), "cudaMemset");
  check(cudaStreamSynchronize(impl_->stream), "slot zeroing");
  return s;
}

void CudaBackend::zero_slot(StateSlot& slot) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaMemsetAsync(static_cast<CudaSlot&>(slot).state.get(), 0, impl_->layout.total_bytes(), impl_->stream),
        "cudaMemset");
  check(cudaStreamSynchronize(impl_->stream), "slot zeroing");
}

void CudaBackend::copy_slot(const StateSlot& src, StateSlot& dst) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaMemcpyAsync(static_cast<CudaSlot&>(dst).state.get(), static_cast<const CudaSlot&>(src).state.get(),
                        impl_->layout.total_bytes(), cudaMemcpyDeviceToDevice, impl_->stream),
        "slot copy");
  check(cudaStreamSynchronize(impl_->stream), "slot copy");
}

void CudaBackend::read_slot(const StateSlot& slot, float* dst) const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(run_mutex_));
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaMemcpyAsync(dst, static_cast<const CudaSlot&>(slot).state.get(), impl_->layout.total_bytes(),
                        cudaMemcpyDeviceToHost, impl_->stream),
        "slot read");
  check(cudaStreamSynchronize(impl_->stream), "slot read");
}

void CudaBackend::write_slot(StateSlot& slot, const float* src) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  check(cudaMemcpyAsync(static_cast<CudaSlot&>(slot).state.get(), src, impl_->layout.total_bytes(),
                        cudaMemcpyHostToDevice, impl_->stream),
        "slot write");
  check(cudaStreamSynchronize(impl_->stream), "slot write");
}

void CudaBackend::prefill(StateSlot& slot, const int32_t* tokens, std::size_t n, m3_logits_mode mode,
                          float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  float* state = static_cast<CudaSlot&>(slot).state.get<float>();
  for_each_prefill_pass(n, kMaxRows, mode, logits, impl_->c.vocab_padded,
                        [&](int64_t t0, int64_t rows, int64_t first, float* out) {
                          impl_->run_rows(tokens + t0, rows, state, nullptr, first, out);
                        });
}

void CudaBackend::decode(StateSlot* const* slots, const int32_t* tokens, std::size_t n, float* logits) {
  std::lock_guard<std::mutex> lock(run_mutex_);
  check(cudaSetDevice(impl_->device), "cudaSetDevice");
  const int64_t total = static_cast<int64_t>(n);
  float* states[kMaxRows];
  for (int64_t t0 = 0; t0 < total; t0 += kMaxRows) {
    const int64_t rows = std::min(kMaxRows, total - t0);
    for (int64_t i = 0; i < rows; ++i) states[i] = static_cast<CudaSlot*>(slots[t0 + i])->state.get<float>();
    impl_->run_rows(tokens + t0, rows, nullptr, states, logits ? 0 : rows,
                    logits ? logits + t0 * impl_->c.vocab_padded : nullptr);
  }
}

}  // namespace m3
