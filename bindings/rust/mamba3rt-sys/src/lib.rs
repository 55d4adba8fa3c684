//! Raw FFI declarations of the mamba3rt C API, `include/mamba3rt.h`, written by hand.
//!
//! Everything here is `unsafe` and mirrors the header one to one: the same names, the same
//! parameter order and the same integer widths. The header's documentation is the reference
//! for what each function does; the safe `mamba3rt` crate wraps these in owned types.
//!
//! C enums are declared as `c_int` type aliases with one constant per value (the header
//! freezes the values and only ever appends), so a value this crate does not know yet is
//! still a valid Rust integer rather than undefined behaviour.
//!
//! The test `tests/header_matches.rs` parses `include/mamba3rt.h` and this file and fails
//! when a function, a parameter type or an enum value differs, so keep the declarations in
//! the style used below: one `pub fn` per declaration inside the `extern "C"` block and one
//! `pub const NAME: enum_type = value;` per enum value.
#![allow(non_camel_case_types)]

use std::marker::{PhantomData, PhantomPinned};

pub use std::os::raw::{c_char, c_int, c_void};

/// `M3_ABI_VERSION`: compare with [`m3_abi_version`] before relying on these declarations.
pub const M3_ABI_VERSION: u32 = 1;

// --- Opaque handles ---------------------------------------------------------------------

macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub struct $name {
            _data: [u8; 0],
            // Not Send, not Sync, not Unpin: only pointers to it exist.
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// A loaded model (weights, shared and read-only).
    m3_model;
    /// Options for [`m3_model_load`].
    m3_model_params;
    /// One recurrent state.
    m3_session;
    /// A Hugging Face tokenizer.json tokenizer.
    m3_tokenizer;
    /// Sampling and stopping options for [`m3_generation_create`].
    m3_gen_params;
    /// One text stream on one session.
    m3_generation;
    /// Many concurrent streams on one model, batched by one scheduler thread.
    m3_engine;
    /// Options for [`m3_engine_create`].
    m3_engine_params;
    /// One generation request on an engine.
    m3_stream;
}

// --- Enums ------------------------------------------------------------------------------

/// `m3_status`: the result of every fallible call.
pub type m3_status = c_int;
pub const M3_OK: m3_status = 0;
pub const M3_ERR_INVALID_ARGUMENT: m3_status = 1;
pub const M3_ERR_IO: m3_status = 2;
pub const M3_ERR_FORMAT: m3_status = 3;
pub const M3_ERR_UNSUPPORTED: m3_status = 4;
pub const M3_ERR_OUT_OF_MEMORY: m3_status = 5;
pub const M3_ERR_BACKEND_UNAVAILABLE: m3_status = 6;
pub const M3_ERR_BUFFER_TOO_SMALL: m3_status = 7;
pub const M3_ERR_MODEL_MISMATCH: m3_status = 8;
pub const M3_ERR_SESSION_BUSY: m3_status = 9;
pub const M3_ERR_INTERNAL: m3_status = 10;
pub const M3_ERR_LIMIT_EXCEEDED: m3_status = 11;
pub const M3_ERR_TIMEOUT: m3_status = 12;
pub const M3_ERR_STATE_LOST: m3_status = 13;

/// `m3_backend`: where a model runs.
pub type m3_backend = c_int;
pub const M3_BACKEND_AUTO: m3_backend = 0;
pub const M3_BACKEND_CPU: m3_backend = 1;
pub const M3_BACKEND_VULKAN: m3_backend = 2;
pub const M3_BACKEND_CUDA: m3_backend = 3;
pub const M3_BACKEND_CPU_REFERENCE: m3_backend = 4;

/// `m3_a_activation`: how the decay rate A is computed.
pub type m3_a_activation = c_int;
pub const M3_A_ACTIVATION_FROM_CONFIG: m3_a_activation = 0;
pub const M3_A_ACTIVATION_HEAVY_TAIL: m3_a_activation = 1;
pub const M3_A_ACTIVATION_SOFTPLUS: m3_a_activation = 2;

/// `m3_weight_type`: how the block matrices are stored.
pub type m3_weight_type = c_int;
pub const M3_WEIGHT_F32: m3_weight_type = 0;
pub const M3_WEIGHT_F16: m3_weight_type = 1;
pub const M3_WEIGHT_BF16: m3_weight_type = 2;
pub const M3_WEIGHT_INT8: m3_weight_type = 3;
pub const M3_WEIGHT_Q4: m3_weight_type = 4;

/// `m3_model_info_key`: integer properties of a model.
pub type m3_model_info_key = c_int;
pub const M3_INFO_N_LAYER: m3_model_info_key = 0;
pub const M3_INFO_D_MODEL: m3_model_info_key = 1;
pub const M3_INFO_VOCAB_SIZE: m3_model_info_key = 2;
pub const M3_INFO_VOCAB_PADDED: m3_model_info_key = 3;
pub const M3_INFO_D_INNER: m3_model_info_key = 4;
pub const M3_INFO_N_HEADS: m3_model_info_key = 5;
pub const M3_INFO_HEADDIM: m3_model_info_key = 6;
pub const M3_INFO_D_STATE: m3_model_info_key = 7;
pub const M3_INFO_N_GROUPS: m3_model_info_key = 8;
pub const M3_INFO_MIMO_RANK: m3_model_info_key = 9;
pub const M3_INFO_IS_MIMO: m3_model_info_key = 10;
pub const M3_INFO_N_ROPE_ANGLES: m3_model_info_key = 11;
pub const M3_INFO_IS_OUTPROJ_NORM: m3_model_info_key = 12;
pub const M3_INFO_MLP_HIDDEN: m3_model_info_key = 13;
pub const M3_INFO_TIE_EMBEDDINGS: m3_model_info_key = 14;
pub const M3_INFO_A_ACTIVATION: m3_model_info_key = 15;
pub const M3_INFO_BACKEND: m3_model_info_key = 16;
pub const M3_INFO_STATE_BYTES: m3_model_info_key = 17;
pub const M3_INFO_STATE_BLOB_BYTES: m3_model_info_key = 18;
pub const M3_INFO_N_PARAMS: m3_model_info_key = 19;
pub const M3_INFO_WEIGHT_BYTES: m3_model_info_key = 20;
pub const M3_INFO_THREADS: m3_model_info_key = 21;
pub const M3_INFO_WEIGHT_TYPE: m3_model_info_key = 22;
pub const M3_INFO_LIVE_SESSIONS: m3_model_info_key = 23;
pub const M3_INFO_MAX_SESSIONS: m3_model_info_key = 24;

/// `m3_logits_mode`: which logits rows a feed writes.
pub type m3_logits_mode = c_int;
pub const M3_LOGITS_NONE: m3_logits_mode = 0;
pub const M3_LOGITS_LAST: m3_logits_mode = 1;
pub const M3_LOGITS_ALL: m3_logits_mode = 2;

/// `m3_state_part`: the parts of one layer's state.
pub type m3_state_part = c_int;
pub const M3_STATE_ANGLE: m3_state_part = 0;
pub const M3_STATE_SSM: m3_state_part = 1;
pub const M3_STATE_K: m3_state_part = 2;
pub const M3_STATE_V: m3_state_part = 3;

/// `m3_finish_reason`: why a generation turn ended.
pub type m3_finish_reason = c_int;
pub const M3_FINISH_NONE: m3_finish_reason = 0;
pub const M3_FINISH_EOS: m3_finish_reason = 1;
pub const M3_FINISH_STOP_TOKEN: m3_finish_reason = 2;
pub const M3_FINISH_STOP_STRING: m3_finish_reason = 3;
pub const M3_FINISH_MAX_TOKENS: m3_finish_reason = 4;
pub const M3_FINISH_CANCELLED: m3_finish_reason = 5;

/// `m3_gen_stat`: generation statistics.
pub type m3_gen_stat = c_int;
pub const M3_STAT_PROMPT_TOKENS: m3_gen_stat = 0;
pub const M3_STAT_GENERATED_TOKENS: m3_gen_stat = 1;
pub const M3_STAT_TTFT_MS: m3_gen_stat = 2;
pub const M3_STAT_PREFILL_TOK_S: m3_gen_stat = 3;
pub const M3_STAT_DECODE_TOK_S: m3_gen_stat = 4;

/// `m3_engine_stat_key`: engine statistics.
pub type m3_engine_stat_key = c_int;
pub const M3_ENGINE_LIVE_STREAMS: m3_engine_stat_key = 0;
pub const M3_ENGINE_RUNNING_STREAMS: m3_engine_stat_key = 1;
pub const M3_ENGINE_WAITING_STREAMS: m3_engine_stat_key = 2;
pub const M3_ENGINE_PAUSED_STREAMS: m3_engine_stat_key = 3;
pub const M3_ENGINE_STEPS: m3_engine_stat_key = 4;
pub const M3_ENGINE_GENERATED_TOKENS: m3_engine_stat_key = 5;
pub const M3_ENGINE_PROMPT_TOKENS: m3_engine_stat_key = 6;
pub const M3_ENGINE_LAST_BATCH: m3_engine_stat_key = 7;

// --- Callbacks --------------------------------------------------------------------------

/// `m3_piece_callback`: called by [`m3_generation_run`] on the calling thread for each piece
/// (not NUL-terminated); a non-zero return stops the turn.
pub type m3_piece_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, token: i32, piece: *const c_char, piece_len: usize) -> c_int>;

/// `m3_stream_callback`: called by an engine on its scheduler thread for each output event of a
/// stream submitted with it (token -1 when none was produced; piece not NUL-terminated); a
/// non-zero return cancels the stream.
pub type m3_stream_callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        token: i32,
        piece: *const c_char,
        piece_len: usize,
        finish: m3_finish_reason,
    ) -> c_int,
>;

// --- Functions --------------------------------------------------------------------------

#[rustfmt::skip]
extern "C" {
    // Status codes and errors
    pub fn m3_status_name(status: m3_status) -> *const c_char;
    pub fn m3_last_error() -> *const c_char;
    pub fn m3_version() -> *const c_char;
    pub fn m3_abi_version() -> u32;
    pub fn m3_live_handles() -> i64;

    // Backends
    pub fn m3_backend_name(backend: m3_backend) -> *const c_char;
    pub fn m3_backend_available(backend: m3_backend) -> m3_status;

    // Model
    pub fn m3_model_params_create(out_params: *mut *mut m3_model_params) -> m3_status;
    pub fn m3_model_params_destroy(params: *mut m3_model_params);
    pub fn m3_model_params_set_backend(params: *mut m3_model_params, backend: m3_backend) -> m3_status;
    pub fn m3_model_params_set_device(params: *mut m3_model_params, device: *const c_char) -> m3_status;
    pub fn m3_model_params_set_a_activation(params: *mut m3_model_params, activation: m3_a_activation) -> m3_status;
    pub fn m3_model_params_set_threads(params: *mut m3_model_params, n_threads: i32) -> m3_status;
    pub fn m3_model_params_set_max_tensor_bytes(params: *mut m3_model_params, max_bytes: i64) -> m3_status;
    pub fn m3_model_params_set_max_sessions(params: *mut m3_model_params, max_sessions: i32) -> m3_status;
    pub fn m3_model_load(model_dir: *const c_char, params: *const m3_model_params, out_model: *mut *mut m3_model) -> m3_status;
    pub fn m3_model_free(model: *mut m3_model);
    pub fn m3_model_info(model: *const m3_model, key: m3_model_info_key, out_value: *mut i64) -> m3_status;
    pub fn m3_model_device_name(model: *const m3_model, out_name: *mut c_char, capacity: usize, out_len: *mut usize) -> m3_status;

    // Sessions
    pub fn m3_session_create(model: *mut m3_model, out_session: *mut *mut m3_session) -> m3_status;
    pub fn m3_session_free(session: *mut m3_session);
    pub fn m3_session_reset(session: *mut m3_session) -> m3_status;
    pub fn m3_session_feed(session: *mut m3_session, tokens: *const i32, n_tokens: usize, mode: m3_logits_mode, logits: *mut f32, logits_capacity: usize) -> m3_status;
    pub fn m3_session_step(session: *mut m3_session, token: i32, logits: *mut f32, logits_capacity: usize) -> m3_status;
    pub fn m3_decode_batch(sessions: *const *mut m3_session, tokens: *const i32, n_sessions: usize, logits: *mut f32, logits_capacity: usize) -> m3_status;
    pub fn m3_session_n_tokens(session: *const m3_session, out_n_tokens: *mut i64) -> m3_status;
    pub fn m3_session_save(session: *const m3_session, buffer: *mut c_void, capacity: usize, out_size: *mut usize) -> m3_status;
    pub fn m3_session_restore(session: *mut m3_session, blob: *const c_void, size: usize) -> m3_status;
    pub fn m3_session_fork(session: *const m3_session, out_session: *mut *mut m3_session) -> m3_status;
    pub fn m3_session_read_state(session: *const m3_session, layer: i32, part: m3_state_part, out: *mut f32, capacity: usize, out_count: *mut usize) -> m3_status;

    // Tokenizers
    pub fn m3_tokenizer_load(path: *const c_char, out_tokenizer: *mut *mut m3_tokenizer) -> m3_status;
    pub fn m3_tokenizer_free(tokenizer: *mut m3_tokenizer);
    pub fn m3_model_tokenizer(model: *const m3_model, out_tokenizer: *mut *const m3_tokenizer) -> m3_status;
    pub fn m3_tokenize(tokenizer: *const m3_tokenizer, text: *const c_char, len: usize, add_special: c_int, out_tokens: *mut i32, capacity: usize, out_count: *mut usize) -> m3_status;
    pub fn m3_detokenize(tokenizer: *const m3_tokenizer, tokens: *const i32, n_tokens: usize, skip_special: c_int, out_text: *mut c_char, capacity: usize, out_len: *mut usize) -> m3_status;
    pub fn m3_token_bytes(tokenizer: *const m3_tokenizer, token: i32, out_bytes: *mut c_char, capacity: usize, out_len: *mut usize) -> m3_status;
    pub fn m3_tokenizer_vocab_size(tokenizer: *const m3_tokenizer, out_size: *mut i32) -> m3_status;

    // Generation parameters
    pub fn m3_gen_params_create(out_params: *mut *mut m3_gen_params) -> m3_status;
    pub fn m3_gen_params_destroy(params: *mut m3_gen_params);
    pub fn m3_gen_params_set_temperature(params: *mut m3_gen_params, temperature: f32) -> m3_status;
    pub fn m3_gen_params_set_greedy(params: *mut m3_gen_params) -> m3_status;
    pub fn m3_gen_params_set_top_k(params: *mut m3_gen_params, top_k: i32) -> m3_status;
    pub fn m3_gen_params_set_top_p(params: *mut m3_gen_params, top_p: f32) -> m3_status;
    pub fn m3_gen_params_set_min_p(params: *mut m3_gen_params, min_p: f32) -> m3_status;
    pub fn m3_gen_params_set_repeat_penalty(params: *mut m3_gen_params, penalty: f32, last_n: i32) -> m3_status;
    pub fn m3_gen_params_set_presence_penalty(params: *mut m3_gen_params, penalty: f32) -> m3_status;
    pub fn m3_gen_params_set_frequency_penalty(params: *mut m3_gen_params, penalty: f32) -> m3_status;
    pub fn m3_gen_params_set_seed(params: *mut m3_gen_params, seed: u64) -> m3_status;
    pub fn m3_gen_params_add_logit_bias(params: *mut m3_gen_params, token: i32, bias: f32) -> m3_status;
    pub fn m3_gen_params_set_max_tokens(params: *mut m3_gen_params, max_tokens: i32) -> m3_status;
    pub fn m3_gen_params_add_stop_token(params: *mut m3_gen_params, token: i32) -> m3_status;
    pub fn m3_gen_params_add_stop_string(params: *mut m3_gen_params, text: *const c_char) -> m3_status;
    pub fn m3_gen_params_set_ignore_eos(params: *mut m3_gen_params, ignore: c_int) -> m3_status;
    pub fn m3_gen_params_set_add_special(params: *mut m3_gen_params, add: c_int) -> m3_status;

    // Generation
    pub fn m3_generation_create(session: *mut m3_session, params: *const m3_gen_params, out_generation: *mut *mut m3_generation) -> m3_status;
    pub fn m3_generation_free(generation: *mut m3_generation);
    pub fn m3_generation_push_text(generation: *mut m3_generation, text: *const c_char, len: usize) -> m3_status;
    pub fn m3_generation_push_tokens(generation: *mut m3_generation, tokens: *const i32, n_tokens: usize) -> m3_status;
    pub fn m3_generation_next(generation: *mut m3_generation, out_token: *mut i32, piece: *mut c_char, capacity: usize, out_len: *mut usize, out_finish: *mut m3_finish_reason) -> m3_status;
    pub fn m3_generation_run(generation: *mut m3_generation, callback: m3_piece_callback, user_data: *mut c_void, out_finish: *mut m3_finish_reason) -> m3_status;
    pub fn m3_generation_cancel(generation: *mut m3_generation) -> m3_status;
    pub fn m3_generation_stat(generation: *const m3_generation, stat: m3_gen_stat, out_value: *mut f64) -> m3_status;

    // Streaming engine
    pub fn m3_engine_params_create(out_params: *mut *mut m3_engine_params) -> m3_status;
    pub fn m3_engine_params_destroy(params: *mut m3_engine_params);
    pub fn m3_engine_params_set_max_batch(params: *mut m3_engine_params, max_batch: i32) -> m3_status;
    pub fn m3_engine_params_set_max_streams(params: *mut m3_engine_params, max_streams: i32) -> m3_status;
    pub fn m3_engine_params_set_prefill_chunk(params: *mut m3_engine_params, tokens: i32) -> m3_status;
    pub fn m3_engine_params_set_prefill_budget(params: *mut m3_engine_params, tokens: i32) -> m3_status;
    pub fn m3_engine_params_set_queue_capacity(params: *mut m3_engine_params, events: i32) -> m3_status;
    pub fn m3_engine_create(model: *mut m3_model, params: *const m3_engine_params, out_engine: *mut *mut m3_engine) -> m3_status;
    pub fn m3_engine_free(engine: *mut m3_engine);
    pub fn m3_engine_submit(engine: *mut m3_engine, params: *const m3_gen_params, prefix: *const m3_session, callback: m3_stream_callback, user_data: *mut c_void, out_stream: *mut *mut m3_stream) -> m3_status;
    pub fn m3_stream_free(stream: *mut m3_stream);
    pub fn m3_stream_push_text(stream: *mut m3_stream, text: *const c_char, len: usize) -> m3_status;
    pub fn m3_stream_push_tokens(stream: *mut m3_stream, tokens: *const i32, n_tokens: usize) -> m3_status;
    pub fn m3_stream_next(stream: *mut m3_stream, timeout_ms: i32, out_token: *mut i32, piece: *mut c_char, capacity: usize, out_len: *mut usize, out_finish: *mut m3_finish_reason) -> m3_status;
    pub fn m3_stream_cancel(stream: *mut m3_stream) -> m3_status;
    pub fn m3_stream_stat(stream: *const m3_stream, stat: m3_gen_stat, out_value: *mut f64) -> m3_status;
    pub fn m3_engine_stat(engine: *const m3_engine, stat: m3_engine_stat_key, out_value: *mut i64) -> m3_status;
}
