// The CUDA backend's own kernels (everything but the matrix products, which are cuBLAS):
// launchers callable from host C++ (cuda_backend.cpp), implemented in the .cu files beside
// this header. All pointers are device pointers; activations and state are fp32. Each
// launcher enqueues on `stream` and returns the launch's cudaError_t (no synchronization).
#pragma once

#include <cstdint>

#include <cuda_runtime_api.h>

namespace m3::cuda {

// The storage types of weight tables and of matrix-product inputs on the device.
enum class DeviceType : int { F32 = 0, F16 = 1, BF16 = 2 };

// One layer's parameters of the Mamba-3 head step (spec §3-4; the CPU version is
// CpuFastBackend::mixer_head with backends/cpu/mamba3_scalar_math.h).
struct Mamba3StepParams {
  // Shapes (ModelConfig): H heads of P channels, state size N, G groups, MIMO rank R (1 for
  // SISO), S rotary angles per head, E = H * P, d_in_proj = width of a projection row.
  int H = 0, P = 0, N = 0, G = 0, R = 1, S = 0, E = 0, d_in_proj = 0;
  bool mimo = false;          // rotary pairs (i, i + N/2) and the mimo_* weights; SISO: pairs (2i, 2i+1)
  bool outproj_norm = false;  // RMSNorm of each rank's y over P with out_norm (is_outproj_norm)
  bool heavy_tail = true;     // A activation: heavy-tail (else softplus)
  float a_floor = 1e-4f;
  // Layer weights, fp32: dt_bias [H], D [H], B_bias/C_bias [H, R, N], B_norm/C_norm [N],
  // mimo_x/mimo_z/mimo_o [H, R, P] (MIMO only, else null), out_norm [E] (outproj_norm only).
  const float *dt_bias = nullptr, *D = nullptr, *B_bias = nullptr, *C_bias = nullptr, *B_norm = nullptr,
              *C_norm = nullptr, *mimo_x = nullptr, *mimo_z = nullptr, *mimo_o = nullptr, *out_norm = nullptr;
  // Where this layer's state parts start inside a slot, in floats (StateLayout::offset):
  // angles [H, S], ssm [H, P, N], k [R, H, N] (the previous token's rotated biased key),
  // v [H, P] (the previous token's x).
  int64_t off_angle = 0, off_ssm = 0, off_k = 0, off_v = 0;
};

// Whether the step kernels take these shapes and weights (P <= 128, N <= 256, R <= 4).
bool step_params_valid(const Mamba3StepParams& p);

// Decode: `rows` independent sessions, one token each. Row i reads proj + i * d_in_proj
// (the in_proj output: z | x | B | C | dd_dt | dd_A | trap | theta), updates the state of the
// slot at states[i] (a device array of device pointers to slot bases) and writes
// y + i * E (gated, summed over ranks: the out_proj input).
cudaError_t mamba3_step_decode(const Mamba3StepParams& p, int rows, const float* proj, float* const* states, float* y,
                               cudaStream_t stream);

// Prefill: `tokens` consecutive tokens of one session, in order: row t reads proj + t *
// d_in_proj and writes y + t * E; the slot at `state` carries from token to token.
// Bit-for-bit it need not equal decode, but it computes the same recurrence.
cudaError_t mamba3_step_prefill(const Mamba3StepParams& p, int tokens, const float* proj, float* state, float* y,
                                cudaStream_t stream);

// Prefill in the chunked form (spec §4.4, chunked_prefill.cu): the same contract as
// mamba3_step_prefill, with the products within a chunk on the tensor cores in tf32 (about
// 3 decimal digits: for bf16/f16 models, whose activations are rounded coarser anyway).
// chunked_prefill_fits: the shapes it takes (P and N multiples of 16, R of 1, 2 or 4) and
// whether this device has the shared memory for them. The workspace holds
// chunked_prefill_workspace_bytes(p, tokens) bytes, 256-byte aligned. y is written in y_type
// (the input type of out_proj's product: no conversion pass after). The B and C slices of
// proj are normalized in place (proj is scratch: nothing reads them after).
bool chunked_prefill_fits(const Mamba3StepParams& p, int device);
size_t chunked_prefill_workspace_bytes(const Mamba3StepParams& p, int max_tokens);
cudaError_t mamba3_chunked_prefill(const Mamba3StepParams& p, int tokens, float* proj, float* state, void* y,
                                   DeviceType y_type, void* workspace, cudaStream_t stream);

// out[i, :] = table[tokens[i], :] as fp32 (rows of `cols`).
cudaError_t embed_rows(const void* table, DeviceType type, int cols, const int32_t* tokens, int rows, float* out,
                       cudaStream_t stream);

// out[i, :] = x[i, :] * rsqrt(mean(x[i, :]^2) + 1e-5) * w, for rows of `cols`, written in
// `out_type` (the input type of the matrix product that follows).
cudaError_t rms_norm_rows(const float* x, const float* w, int rows, int cols, void* out, DeviceType out_type,
                          cudaStream_t stream);

// out[i, j] = h[i, j] * silu(h[i, hid + j]) for j < hid (the gated MLP; h rows are 2 * hid
// wide), written in `out_type`.
cudaError_t gated_silu(const float* h, int rows, int hid, void* out, DeviceType out_type, cudaStream_t stream);

// Decode steps of up to this many sessions use small_batch_matmul instead of cuBLAS.
constexpr int kSmallBatchMaxRows = 8;  // the kernel's limit

// Whether small_batch_matmul takes these shapes: 1 <= n <= kSmallBatchMaxRows, rows of whole
// 16-byte pieces (cols a multiple of 8 for f16/bf16, 4 for fp32) and 16-byte aligned inputs.
bool small_batch_matmul_fits(DeviceType type, int cols, int x_stride, int n);

// y[t, :] = W x[t, :] + beta y[t, :] for t < n (beta 0 or 1): W [rows, cols] row-major in
// `type`, x and y fp32 with row strides x_stride and y_stride. Bandwidth-bound; fp32 inputs.
cudaError_t small_batch_matmul(const void* w, DeviceType type, int rows, int cols, const float* x, int x_stride,
                               int n, float* y, int y_stride, float beta, cudaStream_t stream);

// out[i] = x[i] converted to `out_type`, for n elements.
cudaError_t convert_floats(const float* x, int64_t n, void* out, DeviceType out_type, cudaStream_t stream);

}  // namespace m3::cuda
