//! Safe Rust bindings of **mamba3rt**, a runtime for Mamba-3 language models with a
//! constant-size state per stream.
//!
//! - [`Model`]: weights loaded from a directory, shared by any number of threads.
//! - [`Session`]: one recurrent state: feed, step, [`snapshot`](Session::snapshot) /
//!   [`restore`](Session::restore) / [`fork`](Session::fork).
//! - [`Tokenizer`]: text to token ids and back.
//! - [`Sampler`]: sampling and stopping options; [`Generation`]: push text or tokens in,
//!   stream [`Piece`]s out as an [`Iterator`] or through a callback ([`Generation::run`]).
//! - [`Engine`]: many concurrent [`Stream`]s on one model, decoded in batches by one
//!   scheduler thread; pull each stream's events with a timeout or iterate its pieces.
//!
//! Every handle is freed on drop. Fallible calls return [`Result`] whose [`Error`] carries the
//! C library's status and message.
//!
//! ```no_run
//! use std::io::Write;
//! let model = mamba3rt::Model::load("models/default")?;
//! let mut session = model.session()?;
//! let mut sampler = mamba3rt::Sampler::new()?;
//! sampler.temperature(0.8)?.top_p(0.95)?.seed(1)?.max_tokens(60)?;
//! let mut gen = session.generate(&sampler)?;
//! gen.push_text("The president said that")?;
//! for piece in &mut gen {
//!     print!("{}", piece?.text);
//!     std::io::stdout().flush().ok();
//! }
//! # Ok::<(), mamba3rt::Error>(())
//! ```
//!
//! # Threads
//!
//! The marker traits follow the C API's rules: [`Model`] and [`Tokenizer`] are `Send + Sync`
//! (shared by any number of threads); [`Session`], [`Generation`], [`Sampler`],
//! [`ModelParams`] and [`EngineParams`] are `Send` but not `Sync` (one thread at a time);
//! [`Canceller`] is `Send + Sync` (m3_generation_cancel and m3_stream_cancel are allowed from
//! any thread). [`Engine`] and [`Stream`] are `Send + Sync` (every engine and stream function
//! may be called from any thread; a stream's reading methods take `&mut self`). The callback
//! of [`Generation::run`] runs on the calling thread, so it needs no `Send` bound.
//!
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<mamba3rt::Session>(); // a session is used by one thread at a time
//! ```
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<mamba3rt::Generation<'static>>();
//! ```
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<mamba3rt::Sampler>();
//! ```
//! ```compile_fail
//! fn shared<T: Sync>() {}
//! shared::<mamba3rt::EngineParams>();
//! ```
//! ```
//! fn shared<T: Send + Sync>() {}
//! fn movable<T: Send>() {}
//! shared::<mamba3rt::Model>();
//! shared::<mamba3rt::Tokenizer<'static>>();
//! shared::<mamba3rt::Canceller>();
//! shared::<mamba3rt::Engine>();
//! shared::<mamba3rt::Stream>();
//! movable::<mamba3rt::Session>();
//! movable::<mamba3rt::Generation<'static>>();
//! movable::<mamba3rt::Sampler>();
//! movable::<mamba3rt::ModelParams>();
//! movable::<mamba3rt::EngineParams>();
//! ```
//!
//! The native library is found at build time by `mamba3rt-sys` (see the bindings' README).
#![warn(missing_docs)]

mod backend;
mod buffers;
mod engine;
mod error;
mod generation;
mod model;
mod model_params;
mod run_callback;
mod sampler;
mod session;
mod stream;
mod strings;
mod tokenizer;

use std::ffi::CStr;

use mamba3rt_sys as sys;

pub use backend::Backend;
pub use engine::{Engine, EngineParams, EngineStat};
pub use error::{Error, Result, Status};
pub use generation::{Canceller, FinishReason, GenStat, Generation, Piece};
pub use model::{InfoKey, Model, WeightType};
pub use model_params::{AActivation, ModelParams};
pub use sampler::Sampler;
pub use session::{decode_batch, LogitsMode, Session, StatePart};
pub use stream::{Stream, StreamEvent};
pub use tokenizer::Tokenizer;

/// The library version string, e.g. "0.1.0".
pub fn version() -> String {
    // SAFETY: m3_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::m3_version()) }.to_string_lossy().into_owned()
}

/// The ABI version the loaded library was built with.
pub fn abi_version() -> u32 {
    // SAFETY: no arguments.
    unsafe { sys::m3_abi_version() }
}

/// How many handles (models, params, sessions, tokenizers, samplers, generations, engines,
/// streams) are alive process-wide, as counted by the C library. Tests use it as a leak check.
pub fn live_handles() -> i64 {
    // SAFETY: no arguments.
    unsafe { sys::m3_live_handles() }
}

/// Fails if the loaded library's ABI differs from the one these declarations describe.
pub(crate) fn check_abi() -> Result<()> {
    let found = abi_version();
    if found == sys::M3_ABI_VERSION {
        Ok(())
    } else {
        Err(Error::new(
            Status::Unsupported,
            format!("libmamba3rt has ABI version {found}, these bindings need {}", sys::M3_ABI_VERSION),
        ))
    }
}
