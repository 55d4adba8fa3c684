//! Sessions: one fixed-size recurrent state each, fed tokens and decoded step by step.

use std::os::raw::c_void;
use std::ptr::{self, NonNull};

use mamba3rt_sys as sys;

use crate::buffers::two_call;
use crate::error::{check, invalid, Result};
use crate::generation::Generation;
use crate::model::{InfoKey, Model};
use crate::sampler::Sampler;

/// Which logits a [`Session::feed_logits`] returns (`m3_logits_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogitsMode {
    /// Only update the state (an empty vector is returned).
    None,
    /// One row: the last position.
    Last,
    /// One row per fed token, in order.
    All,
}

/// Parts of one layer's state (`m3_state_part`), in the official shapes without batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatePart {
    /// `[n_heads, n_rope_angles]` accumulated rotary angles.
    Angle,
    /// `[n_heads, headdim, d_state]` the matrix state.
    Ssm,
    /// `[mimo_rank, n_heads, d_state]` key of the last token.
    K,
    /// `[n_heads, headdim]` x of the last token.
    V,
}

/// One stream's recurrent state (`m3_session`). Its memory never grows with the number of
/// tokens seen. A failed call leaves the session exactly as it was.
///
/// `Send` but not `Sync`: the C API lets one thread at a time use a session (different
/// sessions may run on different threads at once). The session keeps its model's weights
/// alive, so it may outlive the [`Model`] it was created from.
///
/// ```no_run
/// let model = mamba3rt::Model::load("models/default")?;
/// let mut session = model.session()?;
/// let logits = session.feed_logits(&[1, 2, 3], mamba3rt::LogitsMode::Last)?;
/// let snapshot = session.snapshot()?;
/// session.step(4)?;
/// session.restore(&snapshot)?; // back to the state after [1, 2, 3]
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct Session {
    ptr: NonNull<sys::m3_session>,
    vocab_padded: usize,
}

// SAFETY: a session may be used from any thread, one at a time; `&mut self` methods and the
// absence of `Sync` give exactly that.
unsafe impl Send for Session {}

impl Session {
    /// A new session with a zero state.
    pub fn new(model: &Model) -> Result<Session> {
        let vocab_padded = model.info(InfoKey::VocabPadded)? as usize;
        let mut raw = ptr::null_mut();
        // SAFETY: the model is live; the out pointer is valid.
        check(unsafe { sys::m3_session_create(model.as_ptr(), &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_session_create returned NULL"))?;
        Ok(Session { ptr, vocab_padded })
    }

    /// Floats per logits row (the padded vocabulary; columns at and above the vocabulary size
    /// are padding).
    pub fn vocab_padded(&self) -> usize {
        self.vocab_padded
    }

    /// Zeroes the state, as if just created.
    pub fn reset(&mut self) -> Result<()> {
        // SAFETY: self is live.
        check(unsafe { sys::m3_session_reset(self.ptr.as_ptr()) })
    }

    /// Feeds tokens (prefill), continuing from the current state, without computing logits.
    pub fn feed(&mut self, tokens: &[i32]) -> Result<()> {
        self.feed_logits(tokens, LogitsMode::None).map(drop)
    }

    /// Feeds tokens and returns the logits rows `mode` selects (each
    /// [`vocab_padded`](Self::vocab_padded) floats). Feeding A then B equals feeding A+B.
    pub fn feed_logits(&mut self, tokens: &[i32], mode: LogitsMode) -> Result<Vec<f32>> {
        let (raw_mode, rows) = match mode {
            LogitsMode::None => (sys::M3_LOGITS_NONE, 0),
            LogitsMode::Last => (sys::M3_LOGITS_LAST, 1),
            LogitsMode::All => (sys::M3_LOGITS_ALL, tokens.len()),
        };
        let mut logits = vec![0f32; rows * self.vocab_padded];
        let out = if logits.is_empty() { ptr::null_mut() } else { logits.as_mut_ptr() };
        // SAFETY: tokens and logits are valid for their lengths.
        check(unsafe {
            sys::m3_session_feed(self.ptr.as_ptr(), tokens.as_ptr(), tokens.len(), raw_mode, out, logits.len())
        })?;
        Ok(logits)
    }

    /// Decodes one token and returns its logits row.
    pub fn step(&mut self, token: i32) -> Result<Vec<f32>> {
        let mut logits = vec![0f32; self.vocab_padded];
        // SAFETY: logits is valid for its length.
        check(unsafe { sys::m3_session_step(self.ptr.as_ptr(), token, logits.as_mut_ptr(), logits.len()) })?;
        Ok(logits)
    }

    /// Tokens the state has absorbed since creation or the last reset.
    pub fn n_tokens(&self) -> Result<u64> {
        let mut n = 0i64;
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_session_n_tokens(self.ptr.as_ptr(), &mut n) })?;
        Ok(n as u64)
    }

    /// The state as a self-describing blob (magic, ABI version, model fingerprint, checksum),
    /// for [`restore`](Self::restore) on any session of the same model.
    pub fn snapshot(&self) -> Result<Vec<u8>> {
        two_call(0, |out: *mut u8, capacity, size| {
            // SAFETY: out has capacity bytes (or is dangling with capacity 0, which C accepts).
            unsafe { sys::m3_session_save(self.ptr.as_ptr(), out as *mut c_void, capacity, size) }
        })
    }

    /// Restores a [`snapshot`](Self::snapshot). A blob of another model is
    /// `Status::ModelMismatch`; a damaged one `Status::Format`.
    pub fn restore(&mut self, blob: &[u8]) -> Result<()> {
        // SAFETY: blob is valid for its length.
        check(unsafe { sys::m3_session_restore(self.ptr.as_ptr(), blob.as_ptr() as *const c_void, blob.len()) })
    }

    /// A new, independent session holding a copy of this state.
    pub fn fork(&self) -> Result<Session> {
        let mut raw = ptr::null_mut();
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_session_fork(self.ptr.as_ptr(), &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_session_fork returned NULL"))?;
        Ok(Session { ptr, vocab_padded: self.vocab_padded })
    }

    /// One part of one layer's state as float32 (experimental in the C API).
    pub fn read_state(&self, layer: i32, part: StatePart) -> Result<Vec<f32>> {
        let raw_part = match part {
            StatePart::Angle => sys::M3_STATE_ANGLE,
            StatePart::Ssm => sys::M3_STATE_SSM,
            StatePart::K => sys::M3_STATE_K,
            StatePart::V => sys::M3_STATE_V,
        };
        two_call(0, |out, capacity, count| {
            // SAFETY: out has capacity floats.
            unsafe { sys::m3_session_read_state(self.ptr.as_ptr(), layer, raw_part, out, capacity, count) }
        })
    }

    /// Starts a text stream on this session with the given options. The generation borrows
    /// the session for its lifetime (the C API forbids using the session through other calls
    /// meanwhile); [`Generation::session`] gives read access between calls.
    pub fn generate(&mut self, sampler: &Sampler) -> Result<Generation<'_>> {
        Generation::new(self, sampler)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::m3_session {
        self.ptr.as_ptr()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_session_create/fork and is freed exactly once; no
        // generation can outlive the borrow it holds on `self`.
        unsafe { sys::m3_session_free(self.ptr.as_ptr()) }
    }
}

/// One decode step for several sessions of the same model in one batched call:
/// `tokens[i]` goes to `sessions[i]`. Returns one logits row per session, in order. On error
/// no session is changed.
pub fn decode_batch(sessions: &mut [&mut Session], tokens: &[i32]) -> Result<Vec<f32>> {
    if sessions.len() != tokens.len() {
        return Err(invalid(format!("{} sessions but {} tokens", sessions.len(), tokens.len())));
    }
    let padded = sessions.first().map_or(0, |s| s.vocab_padded);
    let pointers: Vec<*mut sys::m3_session> = sessions.iter().map(|s| s.as_ptr()).collect();
    let mut logits = vec![0f32; padded * sessions.len()];
    // SAFETY: the pointers are live and distinct (each comes from a `&mut Session`); tokens and
    // logits are valid for their lengths.
    check(unsafe {
        sys::m3_decode_batch(pointers.as_ptr(), tokens.as_ptr(), pointers.len(), logits.as_mut_ptr(), logits.len())
    })?;
    Ok(logits)
}
