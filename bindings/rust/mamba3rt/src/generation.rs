//! Generation: push text or tokens in, stream text pieces out.

use std::ops::ControlFlow;
use std::os::raw::c_char;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};

use mamba3rt_sys as sys;

use crate::error::{check, invalid, Result};
use crate::run_callback;
use crate::sampler::Sampler;
use crate::session::Session;

/// Why a turn ended (`m3_finish_reason` without `M3_FINISH_NONE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// An end-of-sequence token was sampled (not emitted).
    Eos,
    /// A stop token was sampled (not emitted).
    StopToken,
    /// A stop string appeared (cut from the output).
    StopString,
    /// `max_tokens` tokens were produced this turn.
    MaxTokens,
    /// [`Canceller::cancel`], [`Generation::cancel`] or a callback asked to stop.
    Cancelled,
    /// A reason this version of the bindings does not know.
    Unknown(i32),
}

impl FinishReason {
    pub(crate) fn from_raw(raw: sys::m3_finish_reason) -> Option<FinishReason> {
        Some(match raw {
            sys::M3_FINISH_NONE => return None,
            sys::M3_FINISH_EOS => FinishReason::Eos,
            sys::M3_FINISH_STOP_TOKEN => FinishReason::StopToken,
            sys::M3_FINISH_STOP_STRING => FinishReason::StopString,
            sys::M3_FINISH_MAX_TOKENS => FinishReason::MaxTokens,
            sys::M3_FINISH_CANCELLED => FinishReason::Cancelled,
            other => FinishReason::Unknown(other),
        })
    }
}

/// Timing and counts of a generation (`m3_gen_stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GenStat {
    /// Tokens fed (prompt and pushed input).
    PromptTokens,
    /// Tokens produced.
    GeneratedTokens,
    /// Milliseconds from the first call to the first token.
    TtftMs,
    /// Fed tokens per second of feeding.
    PrefillTokensPerSecond,
    /// Produced tokens per second of decoding and sampling.
    DecodeTokensPerSecond,
}

impl GenStat {
    pub(crate) fn raw(self) -> sys::m3_gen_stat {
        match self {
            GenStat::PromptTokens => sys::M3_STAT_PROMPT_TOKENS,
            GenStat::GeneratedTokens => sys::M3_STAT_GENERATED_TOKENS,
            GenStat::TtftMs => sys::M3_STAT_TTFT_MS,
            GenStat::PrefillTokensPerSecond => sys::M3_STAT_PREFILL_TOK_S,
            GenStat::DecodeTokensPerSecond => sys::M3_STAT_DECODE_TOK_S,
        }
    }
}

/// One streamed piece of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The token produced, or `None` for a final flushed piece.
    pub token: Option<i32>,
    /// Its text: whole UTF-8 characters only, never (a prefix of) a pending stop string, so it
    /// may be empty while text is held back.
    pub text: String,
}

/// Something a [`Canceller`] can stop: a generation or an engine stream.
pub(crate) trait CancelTarget: Send + Sync {
    /// Asks it to stop; `false` if it no longer exists.
    fn cancel(&self) -> bool;
}

/// The part of a generation that other threads may reach: the pointer, under a lock that
/// `Drop` takes before freeing, so a [`Canceller`] never touches a freed generation.
struct Shared {
    ptr: Mutex<Option<NonNull<sys::m3_generation>>>,
}

// SAFETY: the only call made through `Shared` from other threads is m3_generation_cancel,
// which the C API allows from any thread; the mutex orders it before the free in Drop.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl CancelTarget for Shared {
    fn cancel(&self) -> bool {
        let guard = self.ptr.lock().unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(ptr) => {
                // SAFETY: the pointer is live while the lock is held (Drop frees under it).
                unsafe { sys::m3_generation_cancel(ptr.as_ptr()) };
                true
            }
            None => false,
        }
    }
}

/// Stops a running [`Generation`] or engine [`Stream`](crate::Stream) from any thread
/// (`m3_generation_cancel`, `m3_stream_cancel`). It takes effect between tokens and between
/// prefill chunks; the interrupted turn finishes with [`FinishReason::Cancelled`]. Cloneable,
/// `Send + Sync`; it may outlive what it cancels (cancelling is then a no-op).
#[derive(Clone)]
pub struct Canceller {
    target: Arc<dyn CancelTarget>,
}

impl Canceller {
    pub(crate) fn new(target: Arc<dyn CancelTarget>) -> Canceller {
        Canceller { target }
    }

    /// Asks the generation or stream to stop. Returns `false` if it no longer exists.
    pub fn cancel(&self) -> bool {
        self.target.cancel()
    }
}

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canceller")
    }
}

/// A text stream on one session (`m3_generation`). Input pushed before the first token is
/// the prompt; input pushed later (a dialogue turn, a live feed) is fed before the next
/// token. Output streams in two styles:
///
/// - as an [`Iterator`] of `Result<Piece>` that ends when the turn finishes (iterate
///   `gen.by_ref()` or `&mut gen` to push more input afterwards);
/// - as a callback, [`Generation::run`], called on the calling thread for each piece.
///
/// `Send` but not `Sync`; [`Generation::canceller`] is the handle for other threads.
///
/// ```no_run
/// use std::io::Write;
/// let model = mamba3rt::Model::load("models/default")?;
/// let mut session = model.session()?;
/// let mut sampler = mamba3rt::Sampler::greedy()?;
/// sampler.max_tokens(20)?;
/// let mut gen = session.generate(&sampler)?;
/// gen.push_text("The president said that")?;
/// for piece in gen.by_ref() {
///     print!("{}", piece?.text);
///     std::io::stdout().flush().ok();
/// }
/// println!("\n[{:?}]", gen.finish_reason());
/// # Ok::<(), mamba3rt::Error>(())
/// ```
pub struct Generation<'s> {
    ptr: NonNull<sys::m3_generation>,
    shared: Arc<Shared>,
    session: &'s mut Session,
    buffer: Vec<u8>,
    finish: Option<FinishReason>,
    failed: bool,
}

// SAFETY: a generation is used by one thread at a time (`&mut self`, no `Sync`); the session
// it borrows is `Send`.
unsafe impl Send for Generation<'_> {}

impl<'s> Generation<'s> {
    pub(crate) fn new(session: &'s mut Session, sampler: &Sampler) -> Result<Generation<'s>> {
        let mut raw = ptr::null_mut();
        // SAFETY: the session is live and exclusively borrowed for the generation's lifetime;
        // the sampler is live; the out pointer is valid.
        check(unsafe { sys::m3_generation_create(session.as_ptr(), sampler.as_ptr(), &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_generation_create returned NULL"))?;
        Ok(Generation {
            ptr,
            shared: Arc::new(Shared { ptr: Mutex::new(Some(ptr)) }),
            session,
            buffer: vec![0; 256],
            finish: None,
            failed: false,
        })
    }

    fn pushed(&mut self) {
        self.finish = None;
        self.failed = false;
    }

    /// Appends UTF-8 text (needs the model's tokenizer). Empty text is an error. Pushing after
    /// the turn finished starts a new turn.
    pub fn push_text(&mut self, text: &str) -> Result<()> {
        // SAFETY: text is valid for its length.
        check(unsafe { sys::m3_generation_push_text(self.ptr.as_ptr(), text.as_ptr() as *const c_char, text.len()) })?;
        self.pushed();
        Ok(())
    }

    /// Appends token ids (each must be in `0..vocab_size`).
    pub fn push_tokens(&mut self, tokens: &[i32]) -> Result<()> {
        // SAFETY: tokens is valid for its length.
        check(unsafe { sys::m3_generation_push_tokens(self.ptr.as_ptr(), tokens.as_ptr(), tokens.len()) })?;
        self.pushed();
        Ok(())
    }

    /// Pull style: the next piece, or `None` once the turn has finished (then see
    /// [`finish_reason`](Self::finish_reason)). Steps that carry no token and no text are
    /// skipped, like [`run`](Self::run) skips them.
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        while self.finish.is_none() {
            let mut token = -1i32;
            let mut len = 0usize;
            let mut finish = sys::M3_FINISH_NONE;
            let status = loop {
                // SAFETY: the buffer is valid for its length; the out pointers are valid.
                let status = unsafe {
                    sys::m3_generation_next(
                        self.ptr.as_ptr(),
                        &mut token,
                        self.buffer.as_mut_ptr() as *mut c_char,
                        self.buffer.len(),
                        &mut len,
                        &mut finish,
                    )
                };
                // With a short buffer nothing is consumed: grow it and ask again.
                if status == sys::M3_ERR_BUFFER_TOO_SMALL && len > self.buffer.len() {
                    self.buffer.resize(len, 0);
                    continue;
                }
                break status;
            };
            check(status)?;
            self.finish = FinishReason::from_raw(finish);
            if token >= 0 || len > 0 {
                let text = crate::buffers::utf8(self.buffer[..len].to_vec());
                return Ok(Some(Piece { token: if token >= 0 { Some(token) } else { None }, text }));
            }
        }
        Ok(None)
    }

    /// Push style: produces pieces until the turn finishes, calling `on_piece` for each on
    /// this thread. Return [`ControlFlow::Break`] to stop (the turn then finishes as
    /// [`FinishReason::Cancelled`]). A panic in `on_piece` stops the turn and is resumed here
    /// after the C call has returned.
    pub fn run<F>(&mut self, on_piece: F) -> Result<FinishReason>
    where
        F: FnMut(&Piece) -> ControlFlow<()>,
    {
        let raw = run_callback::run(self.ptr.as_ptr(), on_piece)?;
        let reason = FinishReason::from_raw(raw).unwrap_or(FinishReason::Unknown(raw));
        self.finish = Some(reason);
        Ok(reason)
    }

    /// Why the current turn ended, or `None` while it is running (or before it started).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Asks the generation to stop (see [`Canceller`] for other threads).
    pub fn cancel(&self) {
        // SAFETY: self is live.
        unsafe { sys::m3_generation_cancel(self.ptr.as_ptr()) };
    }

    /// A handle that cancels this generation from any thread.
    pub fn canceller(&self) -> Canceller {
        Canceller::new(Arc::clone(&self.shared) as Arc<dyn CancelTarget>)
    }

    /// One statistic since the generation was created.
    pub fn stat(&self, stat: GenStat) -> Result<f64> {
        let mut value = 0f64;
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_generation_stat(self.ptr.as_ptr(), stat.raw(), &mut value) })?;
        Ok(value)
    }

    /// The session, for reading between calls (e.g. a [`Session::snapshot`] after a turn).
    pub fn session(&self) -> &Session {
        &*self.session
    }
}

impl Iterator for Generation<'_> {
    type Item = Result<Piece>;

    /// The next piece of the current turn; `None` when it finished. After an error the
    /// iterator yields `None` until new input is pushed.
    fn next(&mut self) -> Option<Result<Piece>> {
        if self.failed {
            return None;
        }
        match self.next_piece() {
            Ok(piece) => piece.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

impl Drop for Generation<'_> {
    fn drop(&mut self) {
        let mut guard = self.shared.ptr.lock().unwrap_or_else(|e| e.into_inner());
        *guard = None;
        // SAFETY: the pointer came from m3_generation_create and is freed exactly once, under
        // the lock, before the borrowed session can be freed.
        unsafe { sys::m3_generation_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Generation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generation").field("finish", &self.finish).finish()
    }
}
