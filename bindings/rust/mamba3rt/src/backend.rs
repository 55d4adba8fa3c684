//! Compute backends and whether they can run here.

use std::ffi::CStr;

use mamba3rt_sys as sys;

use crate::error::{check, Result};

/// Where a model runs (`m3_backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// The best available: CUDA, then Vulkan, then CPU.
    Auto,
    /// The CPU backend.
    Cpu,
    /// Vulkan compute.
    Vulkan,
    /// CUDA.
    Cuda,
    /// The scalar float32 oracle the fast paths are tested against.
    CpuReference,
}

impl Backend {
    pub(crate) fn raw(self) -> sys::m3_backend {
        match self {
            Backend::Auto => sys::M3_BACKEND_AUTO,
            Backend::Cpu => sys::M3_BACKEND_CPU,
            Backend::Vulkan => sys::M3_BACKEND_VULKAN,
            Backend::Cuda => sys::M3_BACKEND_CUDA,
            Backend::CpuReference => sys::M3_BACKEND_CPU_REFERENCE,
        }
    }

    pub(crate) fn from_raw(raw: i64) -> Option<Backend> {
        Some(match raw as sys::m3_backend {
            sys::M3_BACKEND_AUTO => Backend::Auto,
            sys::M3_BACKEND_CPU => Backend::Cpu,
            sys::M3_BACKEND_VULKAN => Backend::Vulkan,
            sys::M3_BACKEND_CUDA => Backend::Cuda,
            sys::M3_BACKEND_CPU_REFERENCE => Backend::CpuReference,
            _ => return None,
        })
    }

    /// The library's name for it: "auto", "cpu", "vulkan", "cuda", "cpu-reference".
    pub fn name(self) -> String {
        // SAFETY: m3_backend_name returns a static NUL-terminated string for any value.
        unsafe { CStr::from_ptr(sys::m3_backend_name(self.raw())) }.to_string_lossy().into_owned()
    }

    /// `Ok(())` if the backend can run on this machine; otherwise an error saying why
    /// (`Status::BackendUnavailable`).
    pub fn available(self) -> Result<()> {
        // SAFETY: takes any value, touches no caller memory.
        check(unsafe { sys::m3_backend_available(self.raw()) })
    }
}
