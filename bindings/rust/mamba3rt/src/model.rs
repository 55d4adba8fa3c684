//! A loaded model: weights shared, read-only, by any number of sessions and threads.

use std::os::raw::c_char;
use std::path::Path;
use std::ptr::{self, NonNull};

use mamba3rt_sys as sys;

use crate::backend::Backend;
use crate::buffers::{two_call, utf8};
use crate::error::{check, invalid, Result};
use crate::model_params::ModelParams;
use crate::session::Session;
use crate::strings::c_path;
use crate::tokenizer::Tokenizer;

/// Integer properties of a model (`m3_model_info_key`); see [`Model::info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum InfoKey {
    NLayer,
    DModel,
    /// Token ids are `0..vocab_size`.
    VocabSize,
    /// Columns of every logits row.
    VocabPadded,
    DInner,
    NHeads,
    HeadDim,
    DState,
    NGroups,
    /// 1 for SISO.
    MimoRank,
    IsMimo,
    NRopeAngles,
    IsOutprojNorm,
    /// 0 when the blocks have no MLP.
    MlpHidden,
    TieEmbeddings,
    /// An `m3_a_activation` value (never "from config").
    AActivation,
    /// The `m3_backend` the model runs on; see also [`Model::backend`].
    Backend,
    /// Recurrent state per session, bytes (constant).
    StateBytes,
    /// Size of a [`Session::snapshot`] blob.
    StateBlobBytes,
    NParams,
    WeightBytes,
    /// CPU threads the backend computes with.
    Threads,
    /// A [`WeightType`] value: how the block matrices are stored; see also [`Model::weight_type`].
    WeightType,
    /// Sessions alive now on this model (forks, engine streams and sessions that outlive the
    /// [`Model`] included); see also [`Model::live_sessions`].
    LiveSessions,
    /// The limit set with [`ModelParams::max_sessions`]; 0 = none. See also [`Model::max_sessions`].
    MaxSessions,
}

/// How the block matrices (in_proj, out_proj, fc1, fc2) are stored (`m3_weight_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WeightType {
    /// float32.
    F32,
    /// float16.
    F16,
    /// bfloat16.
    Bf16,
    /// int8 with an f16 scale per 32 weights.
    Int8,
    /// 4-bit with an f16 scale per 32 weights.
    Q4,
    /// A value this version of the bindings does not know.
    Unknown(i64),
}

impl WeightType {
    fn from_raw(raw: i64) -> WeightType {
        match raw as sys::m3_weight_type {
            sys::M3_WEIGHT_F32 => WeightType::F32,
            sys::M3_WEIGHT_F16 => WeightType::F16,
            sys::M3_WEIGHT_BF16 => WeightType::Bf16,
            sys::M3_WEIGHT_INT8 => WeightType::Int8,
            sys::M3_WEIGHT_Q4 => WeightType::Q4,
            _ => WeightType::Unknown(raw),
        }
    }
}

impl InfoKey {
    fn raw(self) -> sys::m3_model_info_key {
        match self {
            InfoKey::NLayer => sys::M3_INFO_N_LAYER,
            InfoKey::DModel => sys::M3_INFO_D_MODEL,
            InfoKey::VocabSize => sys::M3_INFO_VOCAB_SIZE,
            InfoKey::VocabPadded => sys::M3_INFO_VOCAB_PADDED,
            InfoKey::DInner => sys::M3_INFO_D_INNER,
            InfoKey::NHeads => sys::M3_INFO_N_HEADS,
            InfoKey::HeadDim => sys::M3_INFO_HEADDIM,
            InfoKey::DState => sys::M3_INFO_D_STATE,
            InfoKey::NGroups => sys::M3_INFO_N_GROUPS,
            InfoKey::MimoRank => sys::M3_INFO_MIMO_RANK,
            InfoKey::IsMimo => sys::M3_INFO_IS_MIMO,
            InfoKey::NRopeAngles => sys::M3_INFO_N_ROPE_ANGLES,
            InfoKey::IsOutprojNorm => sys::M3_INFO_IS_OUTPROJ_NORM,
            InfoKey::MlpHidden => sys::M3_INFO_MLP_HIDDEN,
            InfoKey::TieEmbeddings => sys::M3_INFO_TIE_EMBEDDINGS,
            InfoKey::AActivation => sys::M3_INFO_A_ACTIVATION,
            InfoKey::Backend => sys::M3_INFO_BACKEND,
            InfoKey::StateBytes => sys::M3_INFO_STATE_BYTES,
            InfoKey::StateBlobBytes => sys::M3_INFO_STATE_BLOB_BYTES,
            InfoKey::NParams => sys::M3_INFO_N_PARAMS,
            InfoKey::WeightBytes => sys::M3_INFO_WEIGHT_BYTES,
            InfoKey::Threads => sys::M3_INFO_THREADS,
            InfoKey::WeightType => sys::M3_INFO_WEIGHT_TYPE,
            InfoKey::LiveSessions => sys::M3_INFO_LIVE_SESSIONS,
            InfoKey::MaxSessions => sys::M3_INFO_MAX_SESSIONS,
        }
    }
}

/// A model loaded from a directory (`config.json` plus `model.safetensors` or
/// `pytorch_model.bin`, and usually `tokenizer.json`).
///
/// `Send + Sync`: after loading, the C API allows any number of threads to share a model and
/// to create sessions on it concurrently. Sessions keep the weights alive, so a `Model` may be
/// dropped before its sessions; the borrowed [`Tokenizer`] of [`Model::tokenizer`] may not
/// (the borrow checker enforces it).
///
/// ```no_run
/// let model = mamba3rt::Model::load("models/default")?;
/// println!("{} layers", model.info(mamba3rt::InfoKey::NLayer)?);
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct Model {
    ptr: NonNull<sys::m3_model>,
}

// SAFETY: the header: "after m3_model_load returns, a model may be shared by any number of
// threads (creating sessions on it concurrently is safe)"; m3_model_info is "any thread,
// concurrently"; freeing happens in Drop, when no other reference exists.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Model {
    /// Loads a model directory with default options.
    pub fn load(dir: impl AsRef<Path>) -> Result<Model> {
        Self::load_raw(dir.as_ref(), ptr::null())
    }

    /// Loads a model directory with the given options.
    pub fn load_with(dir: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        Self::load_raw(dir.as_ref(), params.as_ptr())
    }

    fn load_raw(dir: &Path, params: *const sys::m3_model_params) -> Result<Model> {
        crate::check_abi()?;
        let dir = c_path(dir)?;
        let mut raw = ptr::null_mut();
        // SAFETY: dir is NUL-terminated, params is NULL or live, the out pointer is valid.
        check(unsafe { sys::m3_model_load(dir.as_ptr(), params, &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_model_load returned NULL"))?;
        Ok(Model { ptr })
    }

    /// One integer property.
    pub fn info(&self, key: InfoKey) -> Result<i64> {
        let mut value = 0i64;
        // SAFETY: self is live; the out pointer is valid.
        check(unsafe { sys::m3_model_info(self.ptr.as_ptr(), key.raw(), &mut value) })?;
        Ok(value)
    }

    /// Number of token ids (`0..vocab_size`).
    pub fn vocab_size(&self) -> Result<usize> {
        Ok(self.info(InfoKey::VocabSize)? as usize)
    }

    /// The backend the model runs on.
    pub fn backend(&self) -> Result<Backend> {
        let raw = self.info(InfoKey::Backend)?;
        Backend::from_raw(raw).ok_or_else(|| invalid(format!("unknown backend value {raw}")))
    }

    /// The name of the device the model runs on, e.g. `"NVIDIA H100 80GB HBM3"` or
    /// `"llvmpipe (LLVM 15.0.6, 256 bits)"`; `"CPU"` for the CPU backends.
    pub fn device_name(&self) -> Result<String> {
        let bytes = two_call(64, |out: *mut u8, capacity, len| {
            // SAFETY: self is live; out has capacity bytes; len is valid.
            unsafe { sys::m3_model_device_name(self.ptr.as_ptr(), out as *mut c_char, capacity, len) }
        })?;
        Ok(utf8(bytes))
    }

    /// How the block matrices are stored.
    pub fn weight_type(&self) -> Result<WeightType> {
        Ok(WeightType::from_raw(self.info(InfoKey::WeightType)?))
    }

    /// Sessions alive now on this model, counting forks, an engine's streams and sessions that
    /// outlive the `Model`.
    pub fn live_sessions(&self) -> Result<usize> {
        Ok(self.info(InfoKey::LiveSessions)? as usize)
    }

    /// The most sessions that may be alive at once ([`ModelParams::max_sessions`]); 0 = no limit.
    pub fn max_sessions(&self) -> Result<u32> {
        Ok(self.info(InfoKey::MaxSessions)? as u32)
    }

    /// A new session with a zero state (same as [`Session::new`]).
    pub fn session(&self) -> Result<Session> {
        Session::new(self)
    }

    /// The model directory's tokenizer (its `tokenizer.json`), borrowed from the model.
    /// `Status::Unsupported` if the directory has none.
    pub fn tokenizer(&self) -> Result<Tokenizer<'_>> {
        let mut raw = ptr::null();
        // SAFETY: self is live; the out pointer is valid.
        check(unsafe { sys::m3_model_tokenizer(self.ptr.as_ptr(), &mut raw) })?;
        Tokenizer::borrowed(raw)
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::m3_model {
        self.ptr.as_ptr()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the pointer came from m3_model_load and is freed exactly once; borrowed
        // tokenizers cannot outlive `self`.
        unsafe { sys::m3_model_free(self.ptr.as_ptr()) }
    }
}
