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
 *    A failed call leaves its session exactly as it was before the call (state, token
 *    count), creates no handle and leaks nothing: this holds for every failure, out of
 *    memory and a backend's out-of-memory included (tests/test_fault_injection.cpp makes
 *    each allocation of each call fail in turn). Backends allocate a session's device memory
 *    when it is created or forked, so feeding and decoding do not run out half-way. The one
 *    exception is a GPU backend failing while a feed or step runs on the device (device lost,
 *    a rejected submission, memory the CUDA driver takes on a kernel's or a decode graph's
 *    first use): the call returns that error, and the state may have advanced part-way, so
 *    the session (each session of a batch) is marked lost. Every later call on it then returns
 *    M3_ERR_STATE_LOST until m3_session_reset or m3_session_restore replaces the state.
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
  M3_ERR_INTERNAL = 10,
  M3_ERR_LIMIT_EXCEEDED = 11,     /* a configured limit (e.g. an engine's max_streams)   */
  M3_ERR_TIMEOUT = 12,            /* nothing arrived within the timeout                  */
  M3_ERR_STATE_LOST = 13          /* a GPU failed during an earlier call on this session;
                                     reset it or restore a saved state                   */
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

/* [experimental] How many handles the caller must still free, process-wide: models, model
 * params, sessions, owned tokenizers, gen params, generations, engine params, engines and
 * streams created and not yet freed
 * (borrowed handles such as m3_model_tokenizer's are not counted). Bindings' tests use it
 * as a leak check. Thread safety: any thread. */
M3_API int64_t m3_live_handles(void);

/* ------------------------------------------------------------------------------------ */
/* Backends                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum m3_backend M3_ENUM_BASE {
  M3_BACKEND_AUTO = 0,   /* the best available: CUDA, then Vulkan, then CPU */
  M3_BACKEND_CPU = 1,    /* SIMD kernels chosen for this CPU at run time, multithreaded */
  M3_BACKEND_VULKAN = 2,
  M3_BACKEND_CUDA = 3,
  M3_BACKEND_CPU_REFERENCE = 4 /* the scalar float32 oracle the fast paths are tested against */
} m3_backend;

/* [stable] "auto", "cpu", "vulkan", "cuda", "cpu-reference"; "unknown" otherwise. Thread safety: any thread. */
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
/* [experimental] Which device a GPU backend runs on: a decimal index in the order the backend
 * lists them, or a case-insensitive part of the device's name (e.g. "llvmpipe", "NVIDIA").
 * NULL or "" = the backend's choice (Vulkan: discrete > integrated > virtual > CPU; Vulkan also
 * reads $MAMBA3RT_VULKAN_DEVICE when none is set here). The CUDA backend takes indices only.
 * The CPU backends ignore it. A selector that matches no device makes m3_model_load fail with
 * M3_ERR_BACKEND_UNAVAILABLE, the message listing the devices. At most 255 bytes; the string is
 * copied. m3_model_device_name tells which device was picked. */
M3_API m3_status m3_model_params_set_device(m3_model_params* params, const char* device);
/* [stable] Worker threads of the CPU backend (the calling thread counts as one of them).
 * 0 (the default) means one per online CPU core; the MAMBA3RT_THREADS environment variable,
 * when set, replaces the default but not an explicit value. Other backends ignore it.
 * The CPU backend runs one forward pass of a model at a time on its threads: calls on
 * different sessions of one model from different threads are safe but take turns; decode
 * several sessions together with m3_decode_batch instead. */
M3_API m3_status m3_model_params_set_threads(m3_model_params* params, int32_t n_threads);
/* [stable] Limits that protect a process which loads models it does not trust
 * (docs/SECURITY.md). The largest tensor a checkpoint may hold, in bytes as stored: a larger
 * one makes m3_model_load fail with M3_ERR_LIMIT_EXCEEDED before any weight is converted,
 * quantized or uploaded. Default 16 GiB (M3_DEFAULT_MAX_TENSOR_BYTES); 0 = no limit. */
#define M3_DEFAULT_MAX_TENSOR_BYTES ((int64_t)16 << 30)
M3_API m3_status m3_model_params_set_max_tensor_bytes(m3_model_params* params, int64_t max_bytes);
/* [stable] The most sessions that may be alive at once on the loaded model, counting forks,
 * an engine's streams and sessions that outlive the model handle. m3_session_create,
 * m3_session_fork and m3_engine_submit beyond it fail with M3_ERR_LIMIT_EXCEEDED and change
 * nothing. Each session holds M3_INFO_STATE_BYTES of state. Default 0 = no limit (an app
 * creates its sessions itself; `mamba3rt serve` caps streams with --max-streams). */
M3_API m3_status m3_model_params_set_max_sessions(m3_model_params* params, int32_t max_sessions);

/* [stable] Load a model directory: config.json plus model.safetensors or pytorch_model.bin
 * (official mamba_ssm tensor names; f32, bf16 or f16, or int8/q4 matrices as written by
 * `mamba3rt quantize`, docs/FORMATS.md). params may be NULL for defaults.
 * safetensors weights are memory-mapped and used in place.
 * Thread safety: any thread; params is only read. */
M3_API m3_status m3_model_load(const char* model_dir, const m3_model_params* params,
                               m3_model** out_model);

/* [stable] Release the model handle. Sessions keep the weights alive, so they may outlive the
 * handle; the memory is released with the last of them. NULL is a no-op.
 * Thread safety: no other call may use this handle concurrently or afterwards. */
M3_API void m3_model_free(m3_model* model);

/* How the block matrices (in_proj, out_proj, fc1, fc2) are stored; the embedding and head may
 * be kept at a higher precision. INT8 and Q4 are symmetric with an f16 scale per 32 weights
 * (docs/QUANTIZATION.md). The recurrent state is float32 whatever the weights are. */
typedef enum m3_weight_type M3_ENUM_BASE {
  M3_WEIGHT_F32 = 0,
  M3_WEIGHT_F16 = 1,
  M3_WEIGHT_BF16 = 2,
  M3_WEIGHT_INT8 = 3,
  M3_WEIGHT_Q4 = 4
} m3_weight_type;

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
  M3_INFO_WEIGHT_BYTES = 20,     /* bytes of weights as stored (quantization scales in) */
  M3_INFO_THREADS = 21,          /* CPU threads the backend computes with (1 off-CPU)  */
  M3_INFO_WEIGHT_TYPE = 22,      /* an m3_weight_type: the block matrices' storage     */
  M3_INFO_LIVE_SESSIONS = 23,    /* sessions alive now (see m3_model_params_set_max_sessions) */
  M3_INFO_MAX_SESSIONS = 24      /* that limit; 0 = none                               */
} m3_model_info_key;

/* [stable] Query one integer property of a model. Thread safety: any thread, concurrently. */
M3_API m3_status m3_model_info(const m3_model* model, m3_model_info_key key, int64_t* out_value);

/* [experimental] The name of the device the model runs on, e.g. "NVIDIA H100 80GB HBM3" or
 * "llvmpipe (LLVM 15.0.6, 256 bits)" ("CPU" for the CPU backends). Two-call pattern on *out_len
 * (bytes, no terminator written). Thread safety: any thread, concurrently. */
M3_API m3_status m3_model_device_name(const m3_model* model, char* out_name, size_t capacity,
                                      size_t* out_len);

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

/* [stable] Zero the state, as if just created (this also clears M3_ERR_STATE_LOST).
 * Thread safety: one thread per session (else M3_ERR_SESSION_BUSY). The same holds for every
 * call below that takes a session. */
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
 * A session must not appear twice. On error no session is changed (except after a GPU failure
 * mid-pass, which marks every session of the batch lost; see the top of this file).
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
 * A blob of another model gives M3_ERR_MODEL_MISMATCH; a damaged one M3_ERR_FORMAT.
 * Restoring a session whose state was lost (M3_ERR_STATE_LOST) makes it usable again. */
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

/* ------------------------------------------------------------------------------------ */
/* Tokenizers                                                                            */
/* ------------------------------------------------------------------------------------ */

/* A Hugging Face tokenizer.json (byte-level BPE: Llama-3, GPT-2/NeoX family, HF-trained).
 * Thread safety: a tokenizer is immutable; any number of threads may use it at once. */
typedef struct m3_tokenizer m3_tokenizer;

/* [stable] Load a tokenizer.json file. Unsupported settings are rejected (M3_ERR_UNSUPPORTED)
 * with a message naming them. */
M3_API m3_status m3_tokenizer_load(const char* path, m3_tokenizer** out_tokenizer);
M3_API void m3_tokenizer_free(m3_tokenizer* tokenizer); /* NULL is a no-op */

/* [stable] The tokenizer of a model directory (its tokenizer.json), borrowed: valid until
 * m3_model_free(model). M3_ERR_UNSUPPORTED if the directory has none. */
M3_API m3_status m3_model_tokenizer(const m3_model* model, const m3_tokenizer** out_tokenizer);

/* [stable] Encode UTF-8 text (len bytes; it need not be NUL-terminated). add_special != 0 applies
 * the tokenizer's post-processor (e.g. a BOS token). Two-call pattern on *out_count.
 * Invalid UTF-8 gives M3_ERR_INVALID_ARGUMENT naming the byte offset. */
M3_API m3_status m3_tokenize(const m3_tokenizer* tokenizer, const char* text, size_t len, int add_special,
                             int32_t* out_tokens, size_t capacity, size_t* out_count);

/* [stable] Decode tokens to UTF-8 text (invalid UTF-8 becomes U+FFFD). Two-call pattern on
 * *out_len (bytes, no terminator written). */
M3_API m3_status m3_detokenize(const m3_tokenizer* tokenizer, const int32_t* tokens, size_t n_tokens,
                               int skip_special, char* out_text, size_t capacity, size_t* out_len);

/* [stable] The raw bytes of one token (may be part of a UTF-8 character). Two-call pattern. */
M3_API m3_status m3_token_bytes(const m3_tokenizer* tokenizer, int32_t token, char* out_bytes, size_t capacity,
                                size_t* out_len);

/* [stable] One more than the largest token id. */
M3_API m3_status m3_tokenizer_vocab_size(const m3_tokenizer* tokenizer, int32_t* out_size);

/* ------------------------------------------------------------------------------------ */
/* Generation: push text or tokens in, stream text out                                   */
/* ------------------------------------------------------------------------------------ */

/* Sampling and stopping options. Defaults: temperature 1, no top-k/top-p/min-p, no penalties
 * (repeat window 64), seed 0, max_tokens 256, stop at the model's end-of-sequence tokens.
 * Thread safety: used by one thread at a time; only read by m3_generation_create. */
typedef struct m3_gen_params m3_gen_params;

M3_API m3_status m3_gen_params_create(m3_gen_params** out_params);
M3_API void m3_gen_params_destroy(m3_gen_params* params); /* NULL is a no-op */
/* temperature <= 0 means greedy (argmax). */
M3_API m3_status m3_gen_params_set_temperature(m3_gen_params* params, float temperature);
M3_API m3_status m3_gen_params_set_greedy(m3_gen_params* params);
M3_API m3_status m3_gen_params_set_top_k(m3_gen_params* params, int32_t top_k);       /* 0 = off */
M3_API m3_status m3_gen_params_set_top_p(m3_gen_params* params, float top_p);         /* 1 = off */
M3_API m3_status m3_gen_params_set_min_p(m3_gen_params* params, float min_p);         /* 0 = off */
/* penalty 1 = off; last_n = tokens looked back (-1: all, 0: none); also the window of the
 * presence and frequency penalties. */
M3_API m3_status m3_gen_params_set_repeat_penalty(m3_gen_params* params, float penalty, int32_t last_n);
M3_API m3_status m3_gen_params_set_presence_penalty(m3_gen_params* params, float penalty);
M3_API m3_status m3_gen_params_set_frequency_penalty(m3_gen_params* params, float penalty);
M3_API m3_status m3_gen_params_set_seed(m3_gen_params* params, uint64_t seed);
/* Add bias to a token's logit before sampling (-INFINITY bans it). */
M3_API m3_status m3_gen_params_add_logit_bias(m3_gen_params* params, int32_t token, float bias);
/* Tokens to generate per turn (a turn ends when it stops; pushing input starts a new one). */
M3_API m3_status m3_gen_params_set_max_tokens(m3_gen_params* params, int32_t max_tokens);
/* Extra stop tokens and stop strings. A stop string is not part of the output. */
M3_API m3_status m3_gen_params_add_stop_token(m3_gen_params* params, int32_t token);
M3_API m3_status m3_gen_params_add_stop_string(m3_gen_params* params, const char* text);
/* ignore != 0: do not stop at the model's end-of-sequence tokens. */
M3_API m3_status m3_gen_params_set_ignore_eos(m3_gen_params* params, int ignore);
/* add != 0 (default): the first text pushed into an empty session gets the tokenizer's
 * special tokens (e.g. BOS). */
M3_API m3_status m3_gen_params_set_add_special(m3_gen_params* params, int add);

/* A generation streams output from one session; the session's state carries everything (the
 * history costs nothing). Input can be pushed at any time: before the first token (the
 * prompt) or between tokens (a dialogue turn, a live ASR feed); it is fed before the next
 * token is produced.
 * Thread safety: one thread at a time, except m3_generation_cancel (any thread). While a
 * generation exists, its session must not be used through other calls concurrently. */
typedef struct m3_generation m3_generation;

typedef enum m3_finish_reason M3_ENUM_BASE {
  M3_FINISH_NONE = 0,        /* still running                                   */
  M3_FINISH_EOS = 1,         /* an end-of-sequence token was sampled (not emitted) */
  M3_FINISH_STOP_TOKEN = 2,  /* a stop token was sampled (not emitted)          */
  M3_FINISH_STOP_STRING = 3, /* a stop string appeared (cut from the output)    */
  M3_FINISH_MAX_TOKENS = 4,  /* max_tokens tokens were produced this turn       */
  M3_FINISH_CANCELLED = 5    /* m3_generation_cancel                            */
} m3_finish_reason;

/* [stable] Start a generation on a session (which must outlive it). */
M3_API m3_status m3_generation_create(m3_session* session, const m3_gen_params* params,
                                      m3_generation** out_generation);
M3_API void m3_generation_free(m3_generation* generation); /* NULL is a no-op */

/* [stable] Append input. Text needs the model's tokenizer; empty text or invalid UTF-8 is
 * M3_ERR_INVALID_ARGUMENT. Pushing after the generation finished starts a new turn. */
M3_API m3_status m3_generation_push_text(m3_generation* generation, const char* text, size_t len);
M3_API m3_status m3_generation_push_tokens(m3_generation* generation, const int32_t* tokens, size_t n_tokens);

/* [stable] Pull style. Feeds pending input, then produces the next token. On return:
 *  - *out_token is the token (or -1 when none was produced: a flush or the end);
 *  - the text piece goes to piece (two-call pattern on *out_len; with M3_ERR_BUFFER_TOO_SMALL
 *    nothing is consumed, call again with a larger buffer). Pieces never split a UTF-8
 *    character and never contain (a prefix of) a stop string that may still complete, so
 *    a piece can be empty while text is held back;
 *  - *out_finish (may be NULL) is M3_FINISH_NONE while running, else why it stopped. The
 *    call that reports the finish may still carry a last (flushed) piece.
 * Calling it again after a finish returns M3_OK with token -1, an empty piece and the same
 * reason, until new input is pushed. Calling it with no input ever pushed to an empty
 * session is M3_ERR_INVALID_ARGUMENT. */
M3_API m3_status m3_generation_next(m3_generation* generation, int32_t* out_token, char* piece, size_t capacity,
                                    size_t* out_len, m3_finish_reason* out_finish);

/* Per-token callback for m3_generation_run: called on the thread that called run, with
 * token -1 for a final flushed piece. piece is not NUL-terminated. Return non-zero to stop
 * (the finish reason is then M3_FINISH_CANCELLED). */
typedef int (*m3_piece_callback)(void* user_data, int32_t token, const char* piece, size_t piece_len);

/* [stable] Push style: produce tokens until the turn finishes, calling callback for each. */
M3_API m3_status m3_generation_run(m3_generation* generation, m3_piece_callback callback, void* user_data,
                                   m3_finish_reason* out_finish);

/* [stable] Ask a running generation to stop. Thread safety: any thread. It takes effect
 * between tokens and between prefill chunks; the interrupted call reports
 * M3_FINISH_CANCELLED, and input not yet fed stays pending. */
M3_API m3_status m3_generation_cancel(m3_generation* generation);

typedef enum m3_gen_stat M3_ENUM_BASE {
  M3_STAT_PROMPT_TOKENS = 0,   /* tokens fed (prompt and pushed input)              */
  M3_STAT_GENERATED_TOKENS = 1,/* tokens produced                                   */
  M3_STAT_TTFT_MS = 2,         /* first next/run call to the first token             */
  M3_STAT_PREFILL_TOK_S = 3,   /* fed tokens per second of feeding                   */
  M3_STAT_DECODE_TOK_S = 4     /* produced tokens per second of decoding + sampling  */
} m3_gen_stat;

/* [stable] Timing and counts since the generation was created. */
M3_API m3_status m3_generation_stat(const m3_generation* generation, m3_gen_stat stat, double* out_value);

/* ------------------------------------------------------------------------------------ */
/* Streaming engine: many concurrent streams on one model                                */
/* ------------------------------------------------------------------------------------ */

/* An engine runs many streams (generation requests) on one model with one scheduler
 * thread. Every step it decodes all generating streams in one batched backend call,
 * feeds the prompts of newly admitted streams in chunks (at most prefill_budget tokens a
 * step, so running streams keep a steady rate), and drops finished streams from the batch
 * at once. A stream's state never grows, so an engine can hold thousands of live streams.
 *
 * Batching does not change results on the CPU backends: a stream produces exactly the tokens
 * that the same request gives alone through m3_generation with the same m3_gen_params (seed
 * included). The CUDA backend rounds its batched products differently at different batch
 * sizes, so by default a stream matches the request alone only up to rounding, and sampled
 * tokens can diverge; with MAMBA3RT_CUDA_BATCH_INVARIANT=1 in the environment its decode steps
 * are batch-invariant too (exact, at a fraction of the batched throughput), and the results
 * are exact when the engine's prefill_chunk is 64 (the chunk m3_generation feeds prompts in).
 *
 * Thread safety: every engine and stream function may be called from any thread. Output
 * callbacks run on the scheduler thread (the final cancellations of m3_engine_free on the
 * thread that frees the engine): they must return quickly and must not free their stream or
 * the engine (they may push input to and cancel any stream). [experimental] */
typedef struct m3_engine m3_engine;
typedef struct m3_engine_params m3_engine_params;
typedef struct m3_stream m3_stream;

M3_API m3_status m3_engine_params_create(m3_engine_params** out_params);
M3_API void m3_engine_params_destroy(m3_engine_params* params); /* NULL is a no-op */
/* Streams decoded together in one step (default 256, 1..65536); more runnable streams wait
 * their turn in submission order. */
M3_API m3_status m3_engine_params_set_max_batch(m3_engine_params* params, int32_t max_batch);
/* Live streams, each holding one state slot (default 4096, 1..2^24); m3_engine_submit
 * beyond it fails with M3_ERR_LIMIT_EXCEEDED. */
M3_API m3_status m3_engine_params_set_max_streams(m3_engine_params* params, int32_t max_streams);
/* Prompt tokens per prefill call of one stream (default 256) and per step over all
 * streams (default 512). */
M3_API m3_status m3_engine_params_set_prefill_chunk(m3_engine_params* params, int32_t tokens);
M3_API m3_status m3_engine_params_set_prefill_budget(m3_engine_params* params, int32_t tokens);
/* Output events buffered per pull stream (default 64): a stream whose reader is that far
 * behind pauses (it leaves the batch) until the reader catches up, so a slow reader never
 * grows memory. */
M3_API m3_status m3_engine_params_set_queue_capacity(m3_engine_params* params, int32_t events);

/* Starts an engine (and its scheduler thread) on a model; params may be NULL (defaults). */
M3_API m3_status m3_engine_create(m3_model* model, const m3_engine_params* params, m3_engine** out_engine);
/* Stops the scheduler. Running streams end with M3_FINISH_CANCELLED; their handles stay
 * valid (and must still be freed), later pushes fail. NULL is a no-op. */
M3_API void m3_engine_free(m3_engine* engine);

/* Output callback: one call per event, on the scheduler thread. token is -1 when no token
 * was produced (a final flushed piece, or the end); finish is M3_FINISH_NONE while the turn
 * runs. piece is not NUL-terminated. Return non-zero to cancel the stream. */
typedef int (*m3_stream_callback)(void* user_data, int32_t token, const char* piece, size_t piece_len,
                                  m3_finish_reason finish);

/* A new stream, idle until input is pushed. params may be NULL (defaults). With prefix
 * (may be NULL) the stream starts from a copy of that session's state, e.g. a system
 * prompt computed once and shared by many streams; the session is not changed, and must
 * not be used by another thread during this call. With a callback, output goes to it;
 * without one, pull it with m3_stream_next. */
M3_API m3_status m3_engine_submit(m3_engine* engine, const m3_gen_params* params, const m3_session* prefix,
                                  m3_stream_callback callback, void* user_data, m3_stream** out_stream);
/* Cancels the stream if it is running and releases it (its state slot is freed by the
 * scheduler right after). A callback in progress finishes first; none is called after this
 * returns, so the callback's user_data may be freed then. NULL is a no-op. Not from the
 * stream's own callback. */
M3_API void m3_stream_free(m3_stream* stream);

/* Append input: the prompt, a dialogue turn after a finish (starts a new turn), or live
 * input while generating (fed before the next token). The first text pushed into a stream
 * without prefix gets the tokenizer's special tokens when the params say so. */
M3_API m3_status m3_stream_push_text(m3_stream* stream, const char* text, size_t len);
M3_API m3_status m3_stream_push_tokens(m3_stream* stream, const int32_t* tokens, size_t n_tokens);

/* Pull the next output event, waiting up to timeout_ms (negative: no limit; 0: poll).
 * The out-parameters are as in m3_generation_next (two-call pattern on *out_len; with
 * M3_ERR_BUFFER_TOO_SMALL the event is kept for the next call). M3_ERR_TIMEOUT when no
 * event came in time. After a finish, and until new input is pushed, it returns that
 * finish at once (token -1, empty piece). A stream the engine failed returns the error's
 * status and message once, with *out_finish M3_FINISH_CANCELLED. Only for streams without
 * a callback. */
M3_API m3_status m3_stream_next(m3_stream* stream, int32_t timeout_ms, int32_t* out_token, char* piece,
                                size_t capacity, size_t* out_len, m3_finish_reason* out_finish);

/* Ask the stream to stop its turn; it ends with M3_FINISH_CANCELLED at the next step (between
 * prefill chunks or tokens). Pending input stays pending for the next turn. */
M3_API m3_status m3_stream_cancel(m3_stream* stream);

/* Counts and timing of the stream (M3_STAT_TTFT_MS: first push to first token). */
M3_API m3_status m3_stream_stat(const m3_stream* stream, m3_gen_stat stat, double* out_value);

typedef enum m3_engine_stat_key M3_ENUM_BASE {
  M3_ENGINE_LIVE_STREAMS = 0,     /* submitted and not yet freed                       */
  M3_ENGINE_RUNNING_STREAMS = 1,  /* in the last step (prefilling or decoding)          */
  M3_ENGINE_WAITING_STREAMS = 2,  /* with work, left out of the last step by max_batch  */
  M3_ENGINE_PAUSED_STREAMS = 3,   /* with work, left out because their queue was full   */
  M3_ENGINE_STEPS = 4,            /* scheduler steps run                                */
  M3_ENGINE_GENERATED_TOKENS = 5, /* tokens sampled, all streams                        */
  M3_ENGINE_PROMPT_TOKENS = 6,    /* input tokens fed, all streams                      */
  M3_ENGINE_LAST_BATCH = 7        /* streams in the last batched decode                 */
} m3_engine_stat_key;

M3_API m3_status m3_engine_stat(const m3_engine* engine, m3_engine_stat_key stat, int64_t* out_value);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MAMBA3RT_H */
