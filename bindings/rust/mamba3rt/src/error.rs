//! The error type: a status code and the C library's message for it.

use std::ffi::CStr;
use std::fmt;

use mamba3rt_sys as sys;

/// Why a call failed (`m3_status` without `M3_OK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// A bad argument: out-of-range token id, bad size, NULL or closed handle, interior NUL ...
    InvalidArgument,
    /// A file is missing or cannot be read.
    Io,
    /// Malformed JSON, a truncated or corrupt checkpoint, a wrong tensor shape, a bad state blob.
    Format,
    /// A valid configuration this runtime does not run.
    Unsupported,
    /// Memory could not be allocated.
    OutOfMemory,
    /// The requested backend is not built in or has no device.
    BackendUnavailable,
    /// A buffer was too small (the bindings size buffers themselves, so this is rare).
    BufferTooSmall,
    /// A state blob or session belongs to another model.
    ModelMismatch,
    /// The session is in use by another thread.
    SessionBusy,
    /// A bug in the library.
    Internal,
    /// A configured limit was reached, e.g. an [`Engine`](crate::Engine)'s maximum of live streams
    /// or the limits of [`ModelParams`](crate::ModelParams) (`max_sessions`, `max_tensor_bytes`).
    LimitExceeded,
    /// Nothing arrived within the timeout (the bindings report most timeouts as `Ok(None)`).
    Timeout,
    /// A GPU failed during an earlier call on this session: reset it or restore a saved state.
    StateLost,
    /// A status this version of the bindings does not know (from a newer library).
    Unknown(i32),
}

impl Status {
    /// The status for a raw `m3_status` value; `None` for `M3_OK`.
    pub fn from_raw(raw: sys::m3_status) -> Option<Status> {
        Some(match raw {
            sys::M3_OK => return None,
            sys::M3_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            sys::M3_ERR_IO => Status::Io,
            sys::M3_ERR_FORMAT => Status::Format,
            sys::M3_ERR_UNSUPPORTED => Status::Unsupported,
            sys::M3_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            sys::M3_ERR_BACKEND_UNAVAILABLE => Status::BackendUnavailable,
            sys::M3_ERR_BUFFER_TOO_SMALL => Status::BufferTooSmall,
            sys::M3_ERR_MODEL_MISMATCH => Status::ModelMismatch,
            sys::M3_ERR_SESSION_BUSY => Status::SessionBusy,
            sys::M3_ERR_INTERNAL => Status::Internal,
            sys::M3_ERR_LIMIT_EXCEEDED => Status::LimitExceeded,
            sys::M3_ERR_TIMEOUT => Status::Timeout,
            sys::M3_ERR_STATE_LOST => Status::StateLost,
            other => Status::Unknown(other),
        })
    }

    /// The raw `m3_status` value.
    pub fn raw(self) -> sys::m3_status {
        match self {
            Status::InvalidArgument => sys::M3_ERR_INVALID_ARGUMENT,
            Status::Io => sys::M3_ERR_IO,
            Status::Format => sys::M3_ERR_FORMAT,
            Status::Unsupported => sys::M3_ERR_UNSUPPORTED,
            Status::OutOfMemory => sys::M3_ERR_OUT_OF_MEMORY,
            Status::BackendUnavailable => sys::M3_ERR_BACKEND_UNAVAILABLE,
            Status::BufferTooSmall => sys::M3_ERR_BUFFER_TOO_SMALL,
            Status::ModelMismatch => sys::M3_ERR_MODEL_MISMATCH,
            Status::SessionBusy => sys::M3_ERR_SESSION_BUSY,
            Status::Internal => sys::M3_ERR_INTERNAL,
            Status::LimitExceeded => sys::M3_ERR_LIMIT_EXCEEDED,
            Status::Timeout => sys::M3_ERR_TIMEOUT,
            Status::StateLost => sys::M3_ERR_STATE_LOST,
            Status::Unknown(raw) => raw,
        }
    }

    /// The C name of the status, e.g. `"M3_ERR_FORMAT"` (from `m3_status_name`).
    pub fn name(self) -> String {
        // SAFETY: m3_status_name accepts any value and returns a static NUL-terminated string.
        unsafe { CStr::from_ptr(sys::m3_status_name(self.raw())) }.to_string_lossy().into_owned()
    }
}

/// A failed call: the status and the message `m3_last_error()` gave for it (which names the
/// file, tensor, argument or position at fault), or a message of the bindings themselves for
/// arguments rejected before reaching C.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
}

impl Error {
    /// The status code.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The message, without the status name.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// An error raised by the bindings before calling into C.
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Error {
        Error { status, message: message.into() }
    }

    /// The calling thread's last C error, for a call that returned `raw`.
    fn from_last_error(status: Status) -> Error {
        // SAFETY: m3_last_error never returns NULL; the string is valid until the next call
        // into the library from this thread, and it is copied at once.
        let message = unsafe { CStr::from_ptr(sys::m3_last_error()) }.to_string_lossy().into_owned();
        Error { status, message }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// The result of every fallible call of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Turns an `m3_status` into a `Result`, reading `m3_last_error()` on failure. Must be called
/// on the thread that made the call, before any other call into the library.
pub(crate) fn check(raw: sys::m3_status) -> Result<()> {
    match Status::from_raw(raw) {
        None => Ok(()),
        Some(status) => Err(Error::from_last_error(status)),
    }
}

/// An `InvalidArgument` error of the bindings.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(Status::InvalidArgument, message)
}
