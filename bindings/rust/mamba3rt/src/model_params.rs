//! Load options for [`Model::load_with`](crate::Model::load_with).

use std::ptr::{self, NonNull};

use mamba3rt_sys as sys;

use crate::backend::Backend;
use crate::error::{check, invalid, Result};
use crate::strings::c_string;

/// How the decay rate A is computed from the projection dd_A (`m3_a_activation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AActivation {
    /// What `config.json`'s `ssm_cfg.A_activation` says (default "heavy_tail").
    FromConfig,
    /// The official code's activation since 2026-06.
    HeavyTail,
    /// The original release's activation.
    Softplus,
}

impl AActivation {
    fn raw(self) -> sys::m3_a_activation {
        match self {
            AActivation::FromConfig => sys::M3_A_ACTIVATION_FROM_CONFIG,
            AActivation::HeavyTail => sys::M3_A_ACTIVATION_HEAVY_TAIL,
            AActivation::Softplus => sys::M3_A_ACTIVATION_SOFTPLUS,
        }
    }
}

/// Options for loading a model (`m3_model_params`). Defaults: backend [`Backend::Auto`], A
/// activation from the config, one CPU thread per core, tensors of at most 16 GiB, no limit on
/// sessions.
///
/// `Send` but not `Sync`: the C object is used by one thread at a time.
///
/// ```no_run
/// use mamba3rt::{Backend, Model, ModelParams};
/// let mut params = ModelParams::new()?;
/// params.backend(Backend::Cpu)?.threads(2)?;
/// let model = Model::load_with("models/default", &params)?;
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct ModelParams {
    ptr: NonNull<sys::m3_model_params>,
}

// SAFETY: the params object is plain data owned by this value; the C API only requires that
// one thread uses it at a time, which `&mut`/`&` without `Sync` guarantees.
unsafe impl Send for ModelParams {}

impl ModelParams {
    /// Default options.
    pub fn new() -> Result<ModelParams> {
        let mut raw = ptr::null_mut();
        // SAFETY: the out pointer is valid for the call.
        check(unsafe { sys::m3_model_params_create(&mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_model_params_create returned NULL"))?;
        Ok(ModelParams { ptr })
    }

    /// The backend to run on.
    pub fn backend(&mut self, backend: Backend) -> Result<&mut Self> {
        // SAFETY: self owns a live params object.
        check(unsafe { sys::m3_model_params_set_backend(self.ptr.as_ptr(), backend.raw()) })?;
        Ok(self)
    }

    /// Which device a GPU backend runs on: a decimal index in the order the backend lists
    /// them, or a case-insensitive part of the device's name (e.g. `"llvmpipe"`, `"NVIDIA"`;
    /// the CUDA backend takes indices only). `""` is the backend's choice; the CPU backends
    /// ignore it. A selector that matches no device makes loading fail with
    /// `Status::BackendUnavailable`; [`Model::device_name`](crate::Model::device_name) tells
    /// which device was picked. At most 255 bytes.
    pub fn device(&mut self, device: &str) -> Result<&mut Self> {
        let device = c_string(device, "device")?;
        // SAFETY: self owns a live params object; device is NUL-terminated and outlives the
        // call (the library copies it).
        check(unsafe { sys::m3_model_params_set_device(self.ptr.as_ptr(), device.as_ptr()) })?;
        Ok(self)
    }

    /// Overrides how the decay rate A is computed.
    pub fn a_activation(&mut self, activation: AActivation) -> Result<&mut Self> {
        // SAFETY: self owns a live params object.
        check(unsafe { sys::m3_model_params_set_a_activation(self.ptr.as_ptr(), activation.raw()) })?;
        Ok(self)
    }

    /// CPU worker threads (the calling thread counts as one); 0 means one per core.
    pub fn threads(&mut self, n_threads: u32) -> Result<&mut Self> {
        let n = i32::try_from(n_threads).map_err(|_| invalid(format!("n_threads {n_threads} is out of range")))?;
        // SAFETY: self owns a live params object.
        check(unsafe { sys::m3_model_params_set_threads(self.ptr.as_ptr(), n) })?;
        Ok(self)
    }

    /// The largest tensor a checkpoint may hold, in bytes as stored: a larger one makes loading
    /// fail with `Status::LimitExceeded` before any weight is converted or uploaded. Default 16
    /// GiB; 0 means no limit. A limit for processes that load models they do not trust.
    pub fn max_tensor_bytes(&mut self, max_bytes: u64) -> Result<&mut Self> {
        let n =
            i64::try_from(max_bytes).map_err(|_| invalid(format!("max_tensor_bytes {max_bytes} is out of range")))?;
        // SAFETY: self owns a live params object.
        check(unsafe { sys::m3_model_params_set_max_tensor_bytes(self.ptr.as_ptr(), n) })?;
        Ok(self)
    }

    /// The most sessions that may be alive at once on the loaded model, counting forks, an
    /// [`Engine`](crate::Engine)'s streams and sessions that outlive the [`Model`](crate::Model):
    /// creating, forking or submitting beyond it fails with `Status::LimitExceeded`. Default 0,
    /// no limit. [`Model::live_sessions`](crate::Model::live_sessions) tells how many are alive.
    pub fn max_sessions(&mut self, max_sessions: u32) -> Result<&mut Self> {
        let n =
            i32::try_from(max_sessions).map_err(|_| invalid(format!("max_sessions {max_sessions} is out of range")))?;
        // SAFETY: self owns a live params object.
        check(unsafe { sys::m3_model_params_set_max_sessions(self.ptr.as_ptr(), n) })?;
        Ok(self)
    }

    pub(crate) fn as_ptr(&self) -> *const sys::m3_model_params {
        self.ptr.as_ptr()
    }
}

impl Drop for ModelParams {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_model_params_create and is freed exactly once.
        unsafe { sys::m3_model_params_destroy(self.ptr.as_ptr()) }
    }
}
