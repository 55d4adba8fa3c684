//! Sampling and stopping options of a generation.

use std::ptr::{self, NonNull};

use mamba3rt_sys as sys;

use crate::error::{check, invalid, Result};
use crate::strings::c_string;

/// How a [`Generation`](crate::Generation) picks tokens and when it stops (`m3_gen_params`).
///
/// Defaults: temperature 1, no top-k/top-p/min-p, no penalties (repeat window 64), seed 0,
/// at most 256 tokens per turn, stop at the model's end-of-sequence tokens. The setters
/// return `&mut Self` for chaining and reject invalid values with the C library's message.
/// The options are copied when a generation starts, so one sampler can start many.
///
/// `Send` but not `Sync` (the C object is used by one thread at a time).
///
/// ```no_run
/// let mut sampler = mamba3rt::Sampler::new()?;
/// sampler.temperature(0.8)?.top_p(0.95)?.seed(1)?.max_tokens(60)?;
/// let greedy = mamba3rt::Sampler::greedy()?;
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct Sampler {
    ptr: NonNull<sys::m3_gen_params>,
}

// SAFETY: plain data owned by this value, used by one thread at a time (no `Sync`).
unsafe impl Send for Sampler {}

fn to_i32(value: u32, what: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| invalid(format!("{what} {value} is out of range")))
}

impl Sampler {
    /// Default options.
    pub fn new() -> Result<Sampler> {
        crate::check_abi()?;
        let mut raw = ptr::null_mut();
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_gen_params_create(&mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_gen_params_create returned NULL"))?;
        Ok(Sampler { ptr })
    }

    /// Default options with greedy decoding (always the most likely token).
    pub fn greedy() -> Result<Sampler> {
        let mut sampler = Sampler::new()?;
        sampler.set_greedy()?;
        Ok(sampler)
    }

    fn set(&mut self, status: impl FnOnce(*mut sys::m3_gen_params) -> sys::m3_status) -> Result<&mut Self> {
        check(status(self.ptr.as_ptr()))?;
        Ok(self)
    }

    /// Greedy decoding (argmax).
    pub fn set_greedy(&mut self) -> Result<&mut Self> {
        // SAFETY (all setters): self owns a live params object; arguments are plain values or
        // NUL-terminated strings that outlive the call.
        self.set(|p| unsafe { sys::m3_gen_params_set_greedy(p) })
    }

    /// Softmax temperature; `<= 0` means greedy. Must be finite.
    pub fn temperature(&mut self, temperature: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_temperature(p, temperature) })
    }

    /// Keep only the `k` most likely tokens (0 = off).
    pub fn top_k(&mut self, k: u32) -> Result<&mut Self> {
        let k = to_i32(k, "top_k")?;
        self.set(|p| unsafe { sys::m3_gen_params_set_top_k(p, k) })
    }

    /// Nucleus sampling, `p` in (0, 1] (1 = off).
    pub fn top_p(&mut self, top_p: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_top_p(p, top_p) })
    }

    /// Drop tokens below `min_p` times the top probability, in [0, 1] (0 = off).
    pub fn min_p(&mut self, min_p: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_min_p(p, min_p) })
    }

    /// Repetition penalty (1 = off) over the last `last_n` tokens (-1: all, 0: none); the
    /// window also applies to the presence and frequency penalties.
    pub fn repeat_penalty(&mut self, penalty: f32, last_n: i32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_repeat_penalty(p, penalty, last_n) })
    }

    /// Presence penalty (0 = off).
    pub fn presence_penalty(&mut self, penalty: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_presence_penalty(p, penalty) })
    }

    /// Frequency penalty (0 = off).
    pub fn frequency_penalty(&mut self, penalty: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_frequency_penalty(p, penalty) })
    }

    /// Seed of the sampling RNG (results are platform-independent).
    pub fn seed(&mut self, seed: u64) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_seed(p, seed) })
    }

    /// Adds `bias` to a token's logit before sampling (`f32::NEG_INFINITY` bans it).
    pub fn logit_bias(&mut self, token: i32, bias: f32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_add_logit_bias(p, token, bias) })
    }

    /// Tokens to generate per turn (a turn ends when it stops; pushing input starts a new one).
    pub fn max_tokens(&mut self, max_tokens: u32) -> Result<&mut Self> {
        let n = to_i32(max_tokens, "max_tokens")?;
        self.set(|p| unsafe { sys::m3_gen_params_set_max_tokens(p, n) })
    }

    /// An extra token that ends a turn (it is not emitted).
    pub fn stop_token(&mut self, token: i32) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_add_stop_token(p, token) })
    }

    /// A string that ends a turn; it is cut from the output.
    pub fn stop_string(&mut self, text: &str) -> Result<&mut Self> {
        let text = c_string(text, "stop string")?;
        self.set(|p| unsafe { sys::m3_gen_params_add_stop_string(p, text.as_ptr()) })
    }

    /// `true`: do not stop at the model's end-of-sequence tokens.
    pub fn ignore_eos(&mut self, ignore: bool) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_ignore_eos(p, ignore as i32) })
    }

    /// `true` (the default): the first text pushed into an empty session gets the
    /// tokenizer's special tokens (e.g. BOS).
    pub fn add_special(&mut self, add: bool) -> Result<&mut Self> {
        self.set(|p| unsafe { sys::m3_gen_params_set_add_special(p, add as i32) })
    }

    pub(crate) fn as_ptr(&self) -> *const sys::m3_gen_params {
        self.ptr.as_ptr()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_gen_params_create and is freed exactly once.
        unsafe { sys::m3_gen_params_destroy(self.ptr.as_ptr()) }
    }
}
