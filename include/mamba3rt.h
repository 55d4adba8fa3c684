/*
 * mamba3rt.h — the public C API of mamba3rt, a runtime for Mamba-3 language models.
 *
 * A Mamba-3 stream is described by its weights (a model: shared, read-only) and a
 * fixed-size recurrent state (a session). Feeding tokens into a session updates its
 * state in place; the state never grows with the number of tokens seen.
 *
 * Conventions
 *  - Every fallible call returns an m3_status. On failure, m3_last_error() returns a
 *    message for the calling thread that names the file, tensor or argument at fault.
 *    A failed call leaves its session exactly as it was before the call.
 *  - No struct is passed or returned by value. Options go through opaque params objects
 *    with setters. Enum values are frozen: new ones are only ever appended.
 *  - Caller-owned buffers follow the two-call pattern: pass a capacity, get the needed
 *    size back (also when the buffer is too small, with M3_ERR_BUFFER_TOO_SMALL).
 *  - Nothing in this library aborts the process on bad input.
 *
 * Thread safety
 *  - m3_model: after m3_model_load returns, a model may be shared by any number of threads
 *    (creating sessions on it concurrently is safe). Free it only after all its sessions.
 *  - m3_session: used by one thread at a time. A call that enters a session while another
 *    call on the same session is in progress returns M3_ERR_SESSION_BUSY (it is detected,
 *    not undefined behaviour). Different sessions may be used from different threads.
 *  - m3_model_params: not thread-safe; it is only read during m3_model_load.
 *  - m3_last_error(): per thread.
 *
 * Stability: functions marked [stable] keep their signature and meaning for all
 * M3_ABI_VERSION 1 libraries; [experimental] ones may change in a minor release.
 */
#ifndef MAMBA3RT_H
#define MAMBA3RT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  ifdef MAMBA3RT_BUILDING
#    define M3_API __declspec(dllexport)
#  else
#    define M3_API __declspec(dllimport)
#  endif
#else
#  define M3_API __attribute__((visibility("default")))
#endif

/* Enums have int's size and range in both languages. In C++ the base is spelled out so that any
 * int a C caller passes is a valid value there too (and is then rejected by range checks). */
#ifdef __cplusplus
#  define M3_ENUM_BASE : int
#else
#  define M3_ENUM_BASE
#endif

/* Bumped only when the ABI changes incompatibly. Compare with m3_abi_version() at load time. */
#define M3_ABI_VERSION 1

/* ------------------------------------------------------------------------------------ */
/* Status codes and errors                                                               */
/* ------------------------------------------------------------------------------------ */

typedef enum m3_status M3_ENUM_BASE {
  M3_OK = 0,
  M3_ERR_INVALID_ARGUMENT = 1,    /* NULL handle, bad size, out-of-range token id ...    */
  M3_ERR_IO = 2,                  /* a file is missing or cannot be read                 */
  M3_ERR_FORMAT = 3,              /* malformed JSON, truncated/corrupt checkpoint, wrong
                                     tensor shape or dtype, bad state blob               */
  M3_ERR_UNSUPPORTED = 4,         /* a valid config this runtime does not run            */
  M3_ERR_OUT_OF_MEMORY = 5,
  M3_ERR_BACKEND_UNAVAILABLE = 6, /* the requested backend is not built or has no device */
  M3_ERR_BUFFER_TOO_SMALL = 7,    /* the needed size was written to the size out-param  */
  M3_ERR_MODEL_MISMATCH = 8,      /* state blob or session belongs to another model      */
  M3_ERR_SESSION_BUSY = 9,        /* the session is in use by another thread             */
  M3_ERR_INTERNAL = 10
} m3_status;

/* [stable] Human-readable name of a status ("M3_ERR_FORMAT", ...). Never NULL.
 * Thread safety: any thread. */
M3_API const char* m3_status_name(m3_status status);

/* [stable] The message of the calling thread's last failed call ("" if none). The pointer
 * stays valid until the next call into the library from the same thread. */
M3_API const char* m3_last_error(void);

/* [stable] Library version string, e.g. "0.1.0". Thread safety: any thread. */
M3_API const char* m3_version(void);

/* [stable] The M3_ABI_VERSION the library was built with. Thread safety: any thread. */
M3_API uint32_t m3_abi_version(void);

/* ------------------------------------------------------------------------------------ */
/* Backends                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum m3_backend M3_ENUM_BASE {
  M3_BACKEND_AUTO = 0,   /* the best available: CUDA, then Vulkan, then CPU */
  M3_BACKEND_CPU = 1,
  M3_BACKEND_VULKAN = 2,
  M3_BACKEND_CUDA = 3
} m3_backend;

/* [stable] "auto", "cpu", "vulkan", "cuda"; "unknown" otherwise. Thread safety: any thread. */
M3_API const char* m3_backend_name(m3_backend backend);

/* [stable] M3_OK if the backend can run here; otherwise M3_ERR_BACKEND_UNAVAILABLE and
 * m3_last_error() says why (not built in, no device, no driver ...). Thread safety: any thread. */
M3_API m3_status m3_backend_available(m3_backend backend);

/* ------------------------------------------------------------------------------------ */
/* Model                                                                                 */
/* ------------------------------------------------------------------------------------ */

typedef struct m3_model m3_model;
typedef struct m3_model_params m3_model_params;

/* How the decay rate A is computed from the projection dd_A (see docs/FORMATS.md).
 * M3_A_ACTIVATION_FROM_CONFIG uses config.json's ssm_cfg.A_activation, whose default is
 * "heavy_tail" (official code since 2026-06); "softplus" is the original release's. */
typedef enum m3_a_activation M3_ENUM_BASE {
  M3_A_ACTIVATION_FROM_CONFIG = 0,
  M3_A_ACTIVATION_HEAVY_TAIL = 1,
  M3_A_ACTIVATION_SOFTPLUS = 2
} m3_a_activation;

/* [stable] Create/destroy load options. Defaults: backend AUTO, A activation from config.
 * Thread safety: a params object is used by one thread at a time. */
M3_API m3_status m3_model_params_create(m3_model_params** out_params);
M3_API void m3_model_params_destroy(m3_model_params* params); /* NULL is a no-op */
M3_API m3_status m3_model_params_set_backend(m3_model_params* params, m3_backend backend);
M3_API m3_status m3_model_params_set_a_activation(m3_model_params* params,
                                                  m3_a_activation activation);

/* [stable] Load a model directory: config.json plus model.safetensors or pytorch_model.bin
 * (official mamba_ssm tensor names; f32, bf16 or f16). params may be NULL for defaults.
 * safetensors weights are memory-mapped and used in place.
 * Thread safety: any thread; params is only read. */
M3_API m3_status m3_model_load(const char* model_dir, const m3_model_params* params,
                               m3_model** out_model);

/* [stable] Release the model handle. Sessions keep the weights alive, so they may outlive the
 * handle; the memory is released with the last of them. NULL is a no-op.
 * Thread safety: no other call may use this handle concurrently or afterwards. */
M3_API void m3_model_free(m3_model* model);

typedef enum m3_model_info_key M3_ENUM_BASE {
  M3_INFO_N_LAYER = 0,
  M3_INFO_D_MODEL = 1,
  M3_INFO_VOCAB_SIZE = 2,        /* token ids are 0 .. vocab_size-1                    */
  M3_INFO_VOCAB_PADDED = 3,      /* columns of every logits row                       */
  M3_INFO_D_INNER = 4,           /* expand * d_model                                  */
  M3_INFO_N_HEADS = 5,
  M3_INFO_HEADDIM = 6,
  M3_INFO_D_STATE = 7,
  M3_INFO_N_GROUPS = 8,
  M3_INFO_MIMO_RANK = 9,         /* 1 for SISO                                         */
  M3_INFO_IS_MIMO = 10,
  M3_INFO_N_ROPE_ANGLES = 11,
  M3_INFO_IS_OUTPROJ_NORM = 12,
  M3_INFO_MLP_HIDDEN = 13,       /* 0 when the blocks have no MLP                      */
  M3_INFO_TIE_EMBEDDINGS = 14,
  M3_INFO_A_ACTIVATION = 15,     /* an m3_a_activation value (never FROM_CONFIG)       */
  M3_INFO_BACKEND = 16,          /* the m3_backend the model runs on                   */
  M3_INFO_STATE_BYTES = 17,      /* recurrent state per session, bytes (constant)      */
  M3_INFO_STATE_BLOB_BYTES = 18, /* size of a saved state blob (state + header)        */
  M3_INFO_N_PARAMS = 19,         /* parameters (tied embedding counted once)           */
  M3_INFO_WEIGHT_BYTES = 20      /* bytes of weights as stored                         */
} m3_model_info_key;

/* [stable] Query one integer property of a model. Thread safety: any thread, concurrently. */
M3_API m3_status m3_model_info(const m3_model* model, m3_model_info_key key, int64_t* out_value);

/* ------------------------------------------------------------------------------------ */
/* Sessions: one recurrent state each                                                    */
/* ------------------------------------------------------------------------------------ */

typedef struct m3_session m3_session;

/* Which logits a feed writes. Every logits row has M3_INFO_VOCAB_PADDED floats; columns
 * at and above M3_INFO_VOCAB_SIZE are padding and never valid tokens. */
typedef enum m3_logits_mode M3_ENUM_BASE {
  M3_LOGITS_NONE = 0, /* only update the state                      */
  M3_LOGITS_LAST = 1, /* one row: the last position                 */
  M3_LOGITS_ALL = 2   /* n rows: every position, in order           */
} m3_logits_mode;

/* [stable] Create a session with a zero state.
 * Thread safety: any thread, concurrently on a shared model. */
M3_API m3_status m3_session_create(m3_model* model, m3_session** out_session);

/* [stable] Free a session. NULL is a no-op.
 * Thread safety: no other call may use this session concurrently or afterwards. */
M3_API void m3_session_free(m3_session* session);

/* [stable] Zero the state, as if just created. Thread safety: one thread per session (else
 * M3_ERR_SESSION_BUSY). The same holds for every call below that takes a session. */
M3_API m3_status m3_session_reset(m3_session* session);

/* [stable] Feed n_tokens tokens (prefill). Continues from the current state, so feeding
 * A then B equals feeding A+B. logits receives the rows selected by mode; logits_capacity
 * is its size in floats (ignored for M3_LOGITS_NONE, where logits may be NULL). */
M3_API m3_status m3_session_feed(m3_session* session, const int32_t* tokens, size_t n_tokens,
                                 m3_logits_mode mode, float* logits, size_t logits_capacity);

/* [stable] Decode one token; writes one logits row (logits may be NULL to skip it). */
M3_API m3_status m3_session_step(m3_session* session, int32_t token, float* logits,
                                 size_t logits_capacity);

/* [stable] One decode step for n sessions of the same model in one batched call.
 * tokens[i] goes to sessions[i]; logits (may be NULL) receives n rows in that order.
 * A session must not appear twice. On error no session is changed.
 * Thread safety: the sessions must not be in use by other threads (else M3_ERR_SESSION_BUSY). */
M3_API m3_status m3_decode_batch(m3_session* const* sessions, const int32_t* tokens,
                                 size_t n_sessions, float* logits, size_t logits_capacity);

/* [stable] Number of tokens this session's state has absorbed since creation/reset. */
M3_API m3_status m3_session_n_tokens(const m3_session* session, int64_t* out_n_tokens);

/* [stable] Save the state as a self-describing blob (magic, ABI version, model
 * fingerprint, sizes, checksum). Two-call pattern: *out_size receives the needed size;
 * buffer may be NULL with capacity 0 to query it. */
M3_API m3_status m3_session_save(const m3_session* session, void* buffer, size_t capacity,
                                 size_t* out_size);

/* [stable] Restore a blob written by m3_session_save of a session of the same model.
 * A blob of another model gives M3_ERR_MODEL_MISMATCH; a damaged one M3_ERR_FORMAT. */
M3_API m3_status m3_session_restore(m3_session* session, const void* blob, size_t size);

/* [stable] Create a new session holding a copy of this session's state. */
M3_API m3_status m3_session_fork(const m3_session* session, m3_session** out_session);

/* Parts of one Mamba-3 layer's state, in the official shapes (without batch):
 *   ANGLE [n_heads, n_rope_angles]          accumulated rotary angles, wrapped to [0, 2pi)
 *   SSM   [n_heads, headdim, d_state]       the matrix state h
 *   K     [mimo_rank, n_heads, d_state]     rotated, biased key of the last token
 *   V     [n_heads, headdim]                raw x of the last token                       */
typedef enum m3_state_part M3_ENUM_BASE {
  M3_STATE_ANGLE = 0,
  M3_STATE_SSM = 1,
  M3_STATE_K = 2,
  M3_STATE_V = 3
} m3_state_part;

/* [experimental] Read one part of one layer's state as float32. Two-call pattern on
 * *out_count (number of floats). */
M3_API m3_status m3_session_read_state(const m3_session* session, int32_t layer,
                                       m3_state_part part, float* out, size_t capacity,
                                       size_t* out_count);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MAMBA3RT_H */
