//! One generation request on an [`Engine`](crate::Engine): push input, pull output events.

use std::os::raw::c_char;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mamba3rt_sys as sys;

use crate::buffers::utf8;
use crate::engine::EngineInner;
use crate::error::{check, Result};
use crate::generation::{CancelTarget, Canceller, FinishReason, GenStat, Piece};

/// One output event of a [`Stream`] (see [`Stream::next_event`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// The token produced, or `None` when there is none (a final flushed piece, or the end).
    pub token: Option<i32>,
    /// Its text: whole UTF-8 characters only, never (a prefix of) a pending stop string, so it
    /// may be empty while text is held back.
    pub text: String,
    /// `None` while the turn runs, else why it ended (the event that reports the finish may
    /// still carry a last piece).
    pub finish: Option<FinishReason>,
}

/// The stream pointer for [`Canceller`]s, under a lock that `Drop` takes before freeing.
struct StreamShared {
    ptr: Mutex<Option<NonNull<sys::m3_stream>>>,
}

// SAFETY: the only call made through it from other threads is m3_stream_cancel, which the C
// API allows from any thread; the mutex orders it before the free in Drop.
unsafe impl Send for StreamShared {}
unsafe impl Sync for StreamShared {}

impl CancelTarget for StreamShared {
    fn cancel(&self) -> bool {
        let guard = self.ptr.lock().unwrap_or_else(|e| e.into_inner());
        match *guard {
            Some(ptr) => {
                // SAFETY: the pointer is live while the lock is held (Drop frees under it).
                unsafe { sys::m3_stream_cancel(ptr.as_ptr()) };
                true
            }
            None => false,
        }
    }
}

/// One generation request on an [`Engine`](crate::Engine) (`m3_stream`), from
/// [`Engine::submit`](crate::Engine::submit). Input pushed before the first token is the
/// prompt; input pushed later is fed before the next token, and pushing after a turn finished
/// starts a new turn on the same state. Output is pulled:
///
/// - [`next_event`](Self::next_event) waits up to a timeout for one event (`Ok(None)` when
///   nothing came in time);
/// - [`next_piece`](Self::next_piece) and the [`Iterator`] give the current turn's pieces and
///   end with it, like [`Generation`](crate::Generation)'s.
///
/// `Send + Sync`: the engine's scheduler runs the stream, any thread may read it (methods that
/// take `&self` may run concurrently); [`Stream::canceller`] stops it from other threads. A
/// stream keeps its engine running; dropping it cancels the stream and frees its state slot.
pub struct Stream {
    ptr: NonNull<sys::m3_stream>,
    shared: Arc<StreamShared>,
    buffer: Vec<u8>,
    finish: Option<FinishReason>,
    failed: bool,
    // Dropped after the stream is freed (fields drop after `Drop::drop`).
    _engine: Arc<EngineInner>,
}

// SAFETY: the header: "every engine and stream function may be called from any thread"; the
// methods that use the piece buffer or the turn state take `&mut self`.
unsafe impl Send for Stream {}
unsafe impl Sync for Stream {}

/// `timeout` in whole milliseconds, rounded up, for m3_stream_next (-1: no limit).
fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = (d.as_nanos() + 999_999) / 1_000_000;
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}

impl Stream {
    pub(crate) fn new(ptr: NonNull<sys::m3_stream>, engine: Arc<EngineInner>) -> Stream {
        Stream {
            ptr,
            shared: Arc::new(StreamShared { ptr: Mutex::new(Some(ptr)) }),
            buffer: vec![0; 256],
            finish: None,
            failed: false,
            _engine: engine,
        }
    }

    fn pushed(&mut self) {
        self.finish = None;
        self.failed = false;
    }

    /// Appends UTF-8 text (needs the model's tokenizer). Empty text is an error. The first
    /// text pushed into a stream without prefix gets the tokenizer's special tokens when the
    /// sampler says so ([`Sampler::add_special`](crate::Sampler::add_special)).
    pub fn push_text(&mut self, text: &str) -> Result<()> {
        // SAFETY: text is valid for its length.
        check(unsafe { sys::m3_stream_push_text(self.ptr.as_ptr(), text.as_ptr() as *const c_char, text.len()) })?;
        self.pushed();
        Ok(())
    }

    /// Appends token ids (each must be in `0..vocab_size`).
    pub fn push_tokens(&mut self, tokens: &[i32]) -> Result<()> {
        // SAFETY: tokens is valid for its length.
        check(unsafe { sys::m3_stream_push_tokens(self.ptr.as_ptr(), tokens.as_ptr(), tokens.len()) })?;
        self.pushed();
        Ok(())
    }

    /// Waits up to `timeout` (`None`: no limit; `Some(Duration::ZERO)`: poll) for the next
    /// output event, and returns `Ok(None)` if none came in time. After a finish, and until new
    /// input is pushed, it returns that finish again at once (no token, empty text). A stream
    /// the engine failed returns the error once (the turn then counts as cancelled).
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<StreamEvent>> {
        let mut token = -1i32;
        let mut len = 0usize;
        let mut finish = sys::M3_FINISH_NONE;
        let status = loop {
            // SAFETY: the buffer is valid for its length; the out pointers are valid.
            let status = unsafe {
                sys::m3_stream_next(
                    self.ptr.as_ptr(),
                    timeout_ms(timeout),
                    &mut token,
                    self.buffer.as_mut_ptr() as *mut c_char,
                    self.buffer.len(),
                    &mut len,
                    &mut finish,
                )
            };
            // With a short buffer the event is kept: grow it and ask again.
            if status == sys::M3_ERR_BUFFER_TOO_SMALL && len > self.buffer.len() {
                self.buffer.resize(len, 0);
                continue;
            }
            break status;
        };
        if status == sys::M3_ERR_TIMEOUT {
            return Ok(None);
        }
        if let Err(e) = check(status) {
            self.finish = FinishReason::from_raw(finish).or(self.finish);
            return Err(e);
        }
        let finish = FinishReason::from_raw(finish);
        if finish.is_some() {
            self.finish = finish;
        }
        let text = utf8(self.buffer[..len].to_vec());
        Ok(Some(StreamEvent { token: if token >= 0 { Some(token) } else { None }, text, finish }))
    }

    /// The next piece of the current turn, waiting as long as it takes, or `None` once the
    /// turn has finished (then see [`finish_reason`](Self::finish_reason)). Events that carry
    /// no token and no text are skipped.
    pub fn next_piece(&mut self) -> Result<Option<Piece>> {
        while self.finish.is_none() {
            let event = match self.next_event(None)? {
                Some(event) => event,
                None => continue, // cannot happen without a timeout
            };
            if event.token.is_some() || !event.text.is_empty() {
                return Ok(Some(Piece { token: event.token, text: event.text }));
            }
        }
        Ok(None)
    }

    /// Why the current turn ended, as far as this reader has seen, or `None` while it runs
    /// (or before it started).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Asks the stream to stop its turn: it ends with [`FinishReason::Cancelled`] at the
    /// engine's next step. Input not yet fed stays pending for the next turn.
    pub fn cancel(&self) {
        // SAFETY: self is live.
        unsafe { sys::m3_stream_cancel(self.ptr.as_ptr()) };
    }

    /// A handle that cancels this stream from any thread.
    pub fn canceller(&self) -> Canceller {
        Canceller::new(Arc::clone(&self.shared) as Arc<dyn CancelTarget>)
    }

    /// One statistic of the stream ([`GenStat::TtftMs`]: first push to first token).
    pub fn stat(&self, stat: GenStat) -> Result<f64> {
        let mut value = 0f64;
        // SAFETY: self is live; the out pointer is valid.
        check(unsafe { sys::m3_stream_stat(self.ptr.as_ptr(), stat.raw(), &mut value) })?;
        Ok(value)
    }
}

impl Iterator for Stream {
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

impl Drop for Stream {
    fn drop(&mut self) {
        let mut guard = self.shared.ptr.lock().unwrap_or_else(|e| e.into_inner());
        *guard = None;
        // SAFETY: the pointer came from m3_engine_submit and is freed exactly once, under the
        // lock, before the engine reference is released.
        unsafe { sys::m3_stream_free(self.ptr.as_ptr()) }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("finish", &self.finish).finish()
    }
}
