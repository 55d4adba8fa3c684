//! The C-to-Rust trampoline of `m3_generation_run`: a closure travels as `user_data`, panics
//! are caught before they reach C and resumed afterwards.

use std::any::Any;
use std::ops::ControlFlow;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{self, AssertUnwindSafe};

use mamba3rt_sys as sys;

use crate::buffers::utf8;
use crate::error::{check, Result};
use crate::generation::Piece;

struct State<F> {
    on_piece: F,
    panic: Option<Box<dyn Any + Send + 'static>>,
}

/// Called by the library on the thread that called `m3_generation_run` (the header guarantees
/// it), so the closure needs no `Send` bound.
unsafe extern "C" fn trampoline<F>(user_data: *mut c_void, token: i32, piece: *const c_char, len: usize) -> c_int
where
    F: FnMut(&Piece) -> ControlFlow<()>,
{
    // SAFETY: user_data is the `State<F>` that `run` passed and keeps alive during the call.
    let state = &mut *(user_data as *mut State<F>);
    if state.panic.is_some() {
        return 1;
    }
    let bytes = if len == 0 { Vec::new() } else { std::slice::from_raw_parts(piece as *const u8, len).to_vec() };
    let piece = Piece { token: if token >= 0 { Some(token) } else { None }, text: utf8(bytes) };
    let on_piece = &mut state.on_piece;
    match panic::catch_unwind(AssertUnwindSafe(|| on_piece(&piece))) {
        Ok(ControlFlow::Continue(())) => 0,
        Ok(ControlFlow::Break(())) => 1,
        Err(payload) => {
            state.panic = Some(payload);
            1
        }
    }
}

/// Runs `m3_generation_run` on `generation` with `on_piece`; returns the raw finish reason.
pub(crate) fn run<F>(generation: *mut sys::m3_generation, on_piece: F) -> Result<sys::m3_finish_reason>
where
    F: FnMut(&Piece) -> ControlFlow<()>,
{
    let mut state = State { on_piece, panic: None };
    let mut finish = sys::M3_FINISH_NONE;
    // SAFETY: generation is live (the caller holds `&mut Generation`); state outlives the call
    // and is only touched by the trampoline during it.
    let status = unsafe {
        sys::m3_generation_run(
            generation,
            Some(trampoline::<F>),
            &mut state as *mut State<F> as *mut c_void,
            &mut finish,
        )
    };
    if let Some(payload) = state.panic.take() {
        panic::resume_unwind(payload);
    }
    check(status)?;
    Ok(finish)
}
