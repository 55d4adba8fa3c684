//! The streaming engine: many concurrent streams on one model, batched by one scheduler thread.

use std::ptr::{self, NonNull};
use std::sync::Arc;

use mamba3rt_sys as sys;

use crate::error::{check, invalid, Result};
use crate::model::Model;
use crate::sampler::Sampler;
use crate::session::Session;
use crate::stream::Stream;

/// Engine statistics (`m3_engine_stat_key`); see [`Engine::stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineStat {
    /// Streams submitted and not yet dropped.
    LiveStreams,
    /// Streams in the last step (prefilling or decoding).
    RunningStreams,
    /// Streams with work, left out of the last step by the maximum batch.
    WaitingStreams,
    /// Streams with work, left out because their reader is behind (a full output queue).
    PausedStreams,
    /// Scheduler steps run.
    Steps,
    /// Tokens sampled, all streams.
    GeneratedTokens,
    /// Input tokens fed, all streams.
    PromptTokens,
    /// Streams in the last batched decode.
    LastBatch,
}

impl EngineStat {
    fn raw(self) -> sys::m3_engine_stat_key {
        match self {
            EngineStat::LiveStreams => sys::M3_ENGINE_LIVE_STREAMS,
            EngineStat::RunningStreams => sys::M3_ENGINE_RUNNING_STREAMS,
            EngineStat::WaitingStreams => sys::M3_ENGINE_WAITING_STREAMS,
            EngineStat::PausedStreams => sys::M3_ENGINE_PAUSED_STREAMS,
            EngineStat::Steps => sys::M3_ENGINE_STEPS,
            EngineStat::GeneratedTokens => sys::M3_ENGINE_GENERATED_TOKENS,
            EngineStat::PromptTokens => sys::M3_ENGINE_PROMPT_TOKENS,
            EngineStat::LastBatch => sys::M3_ENGINE_LAST_BATCH,
        }
    }
}

/// Options for [`Engine::with_params`] (`m3_engine_params`). Defaults: 256 streams decoded
/// together, 4096 live streams, prompt chunks of 256 tokens per stream and 512 per step, 64
/// buffered output events per stream. The setters return `&mut Self` for chaining and reject
/// out-of-range values with the C library's message.
///
/// `Send` but not `Sync` (the C object is used by one thread at a time).
///
/// ```no_run
/// let model = mamba3rt::Model::load("models/default")?;
/// let mut params = mamba3rt::EngineParams::new()?;
/// params.max_batch(32)?.max_streams(1000)?.queue_capacity(16)?;
/// let engine = mamba3rt::Engine::with_params(&model, &params)?;
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct EngineParams {
    ptr: NonNull<sys::m3_engine_params>,
}

// SAFETY: plain data owned by this value, used by one thread at a time (no `Sync`).
unsafe impl Send for EngineParams {}

fn to_i32(value: u32, what: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| invalid(format!("{what} {value} is out of range")))
}

impl EngineParams {
    /// Default options.
    pub fn new() -> Result<EngineParams> {
        crate::check_abi()?;
        let mut raw = ptr::null_mut();
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_engine_params_create(&mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_engine_params_create returned NULL"))?;
        Ok(EngineParams { ptr })
    }

    fn set(
        &mut self,
        value: u32,
        what: &str,
        setter: unsafe extern "C" fn(*mut sys::m3_engine_params, i32) -> sys::m3_status,
    ) -> Result<&mut Self> {
        let value = to_i32(value, what)?;
        // SAFETY: self owns a live params object; the setter takes a plain value.
        check(unsafe { setter(self.ptr.as_ptr(), value) })?;
        Ok(self)
    }

    /// Streams decoded together in one step (1..=65536); more runnable streams wait their turn
    /// in submission order.
    pub fn max_batch(&mut self, max_batch: u32) -> Result<&mut Self> {
        self.set(max_batch, "max_batch", sys::m3_engine_params_set_max_batch)
    }

    /// Live streams (1..=2^24); [`Engine::submit`] beyond it fails with
    /// [`Status::LimitExceeded`](crate::Status::LimitExceeded).
    pub fn max_streams(&mut self, max_streams: u32) -> Result<&mut Self> {
        self.set(max_streams, "max_streams", sys::m3_engine_params_set_max_streams)
    }

    /// Prompt tokens per prefill call of one stream.
    pub fn prefill_chunk(&mut self, tokens: u32) -> Result<&mut Self> {
        self.set(tokens, "prefill_chunk", sys::m3_engine_params_set_prefill_chunk)
    }

    /// Prompt tokens per scheduler step over all streams, so that running streams keep a
    /// steady rate while new ones are admitted.
    pub fn prefill_budget(&mut self, tokens: u32) -> Result<&mut Self> {
        self.set(tokens, "prefill_budget", sys::m3_engine_params_set_prefill_budget)
    }

    /// Output events buffered per stream: a stream whose reader is that far behind pauses
    /// until the reader catches up.
    pub fn queue_capacity(&mut self, events: u32) -> Result<&mut Self> {
        self.set(events, "queue_capacity", sys::m3_engine_params_set_queue_capacity)
    }
}

impl Drop for EngineParams {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_engine_params_create and is freed exactly once.
        unsafe { sys::m3_engine_params_destroy(self.ptr.as_ptr()) }
    }
}

/// The owner of the C engine, shared by the [`Engine`] handles and its streams: the engine is
/// freed (its scheduler stopped) with the last of them.
pub(crate) struct EngineInner {
    ptr: NonNull<sys::m3_engine>,
}

// SAFETY: the header: "every engine and stream function may be called from any thread"; the
// engine is freed in Drop, when no other reference exists.
unsafe impl Send for EngineInner {}
unsafe impl Sync for EngineInner {}

impl Drop for EngineInner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_engine_create and is freed exactly once.
        unsafe { sys::m3_engine_free(self.ptr.as_ptr()) }
    }
}

/// Many concurrent generation streams on one model (`m3_engine`). One scheduler thread
/// decodes every generating stream in one batched call per step and feeds new prompts in
/// chunks; batching does not change results: a [`Stream`] produces what the same request
/// gives alone through a [`Generation`](crate::Generation) with the same [`Sampler`].
///
/// `Send + Sync` and cheap to clone (a clone is another handle to the same engine); submit
/// from any number of threads. A [`Stream`] keeps its engine running, so the scheduler stops
/// when the last `Engine` handle and the last of its streams are dropped. The engine keeps
/// the model's weights alive, so the [`Model`] may be dropped first.
///
/// ```no_run
/// let model = mamba3rt::Model::load("models/default")?;
/// let engine = mamba3rt::Engine::new(&model)?;
/// let mut sampler = mamba3rt::Sampler::greedy()?;
/// sampler.max_tokens(20)?;
/// let mut stream = engine.submit(&sampler, None)?;
/// stream.push_text("The president said that")?;
/// for piece in &mut stream {
///     print!("{}", piece?.text);
/// }
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl Engine {
    /// Starts an engine with default options on a model.
    pub fn new(model: &Model) -> Result<Engine> {
        Self::create(model, ptr::null())
    }

    /// Starts an engine with the given options on a model.
    pub fn with_params(model: &Model, params: &EngineParams) -> Result<Engine> {
        Self::create(model, params.ptr.as_ptr())
    }

    fn create(model: &Model, params: *const sys::m3_engine_params) -> Result<Engine> {
        crate::check_abi()?;
        let mut raw = ptr::null_mut();
        // SAFETY: the model is live; params is NULL or live; the out pointer is valid.
        check(unsafe { sys::m3_engine_create(model.as_ptr(), params, &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_engine_create returned NULL"))?;
        Ok(Engine { inner: Arc::new(EngineInner { ptr }) })
    }

    /// A new stream with the sampler's options (copied), idle until input is pushed. With a
    /// `prefix` session, the stream starts from a copy of its state (e.g. a system prompt fed
    /// once and shared by many streams); the session is not changed. Beyond the engine's
    /// maximum of live streams it fails with [`Status::LimitExceeded`](crate::Status::LimitExceeded).
    pub fn submit(&self, sampler: &Sampler, prefix: Option<&Session>) -> Result<Stream> {
        let prefix_ptr = prefix.map_or(ptr::null(), |s| s.as_ptr() as *const sys::m3_session);
        let mut raw = ptr::null_mut();
        // SAFETY: the engine and sampler are live; prefix is NULL or a live session that no
        // other thread can use during the call (`&Session`, and `Session` is not `Sync`); no
        // callback (a pull stream); the out pointer is valid.
        check(unsafe {
            sys::m3_engine_submit(
                self.inner.ptr.as_ptr(),
                sampler.as_ptr(),
                prefix_ptr,
                None,
                ptr::null_mut(),
                &mut raw,
            )
        })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_engine_submit returned NULL"))?;
        Ok(Stream::new(ptr, Arc::clone(&self.inner)))
    }

    /// One statistic of the engine.
    pub fn stat(&self, stat: EngineStat) -> Result<i64> {
        let mut value = 0i64;
        // SAFETY: the engine is live; the out pointer is valid.
        check(unsafe { sys::m3_engine_stat(self.inner.ptr.as_ptr(), stat.raw(), &mut value) })?;
        Ok(value)
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Engine")
    }
}
