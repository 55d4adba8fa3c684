//! Hugging Face `tokenizer.json` tokenizers: text to token ids and back.

use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::Path;
use std::ptr::{self, NonNull};

use mamba3rt_sys as sys;

use crate::buffers::{two_call, utf8};
use crate::error::{check, invalid, Result};
use crate::strings::c_path;

/// A byte-level BPE tokenizer (`m3_tokenizer`): either loaded from a file
/// ([`Tokenizer::load`], `Tokenizer<'static>`, freed on drop) or borrowed from a model
/// ([`Model::tokenizer`](crate::Model::tokenizer), valid while the model lives).
///
/// `Send + Sync`: a tokenizer is immutable and the C API lets any number of threads use it
/// at once.
///
/// ```no_run
/// let model = mamba3rt::Model::load("models/default")?;
/// let tokenizer = model.tokenizer()?;
/// let ids = tokenizer.encode("The president said that", false)?;
/// assert_eq!(tokenizer.decode(&ids, false)?, "The president said that");
/// # Ok::<(), mamba3rt::Error>(())
/// ```
#[derive(Debug)]
pub struct Tokenizer<'m> {
    ptr: NonNull<sys::m3_tokenizer>,
    owned: bool,
    _model: PhantomData<&'m crate::Model>,
}

// SAFETY: "a tokenizer is immutable; any number of threads may use it at once". A borrowed one
// lives no longer than its model ('m), which is itself Send + Sync.
unsafe impl Send for Tokenizer<'_> {}
unsafe impl Sync for Tokenizer<'_> {}

impl Tokenizer<'static> {
    /// Loads a `tokenizer.json` file. Unsupported settings give `Status::Unsupported` with a
    /// message naming them.
    pub fn load(path: impl AsRef<Path>) -> Result<Tokenizer<'static>> {
        crate::check_abi()?;
        let path = c_path(path.as_ref())?;
        let mut raw = ptr::null_mut();
        // SAFETY: path is NUL-terminated; the out pointer is valid.
        check(unsafe { sys::m3_tokenizer_load(path.as_ptr(), &mut raw) })?;
        let ptr = NonNull::new(raw).ok_or_else(|| invalid("m3_tokenizer_load returned NULL"))?;
        Ok(Tokenizer { ptr, owned: true, _model: PhantomData })
    }
}

impl<'m> Tokenizer<'m> {
    pub(crate) fn borrowed(raw: *const sys::m3_tokenizer) -> Result<Tokenizer<'m>> {
        let ptr = NonNull::new(raw as *mut _).ok_or_else(|| invalid("m3_model_tokenizer returned NULL"))?;
        Ok(Tokenizer { ptr, owned: false, _model: PhantomData })
    }

    /// Token ids of UTF-8 text. `add_special` applies the tokenizer's post-processor (e.g. a
    /// BOS token).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<i32>> {
        two_call(text.len() + 8, |out, capacity, count| {
            // SAFETY: text is valid for len bytes; out has capacity elements.
            unsafe {
                sys::m3_tokenize(
                    self.ptr.as_ptr(),
                    text.as_ptr() as *const c_char,
                    text.len(),
                    add_special as i32,
                    out,
                    capacity,
                    count,
                )
            }
        })
    }

    /// The text of token ids (bytes that are not valid UTF-8 become U+FFFD). `skip_special`
    /// leaves out special tokens.
    pub fn decode(&self, tokens: &[i32], skip_special: bool) -> Result<String> {
        let bytes = two_call(tokens.len() * 8 + 16, |out: *mut u8, capacity, len| {
            // SAFETY: tokens is valid for its length; out has capacity bytes.
            unsafe {
                sys::m3_detokenize(
                    self.ptr.as_ptr(),
                    tokens.as_ptr(),
                    tokens.len(),
                    skip_special as i32,
                    out as *mut c_char,
                    capacity,
                    len,
                )
            }
        })?;
        Ok(utf8(bytes))
    }

    /// The raw bytes of one token (possibly part of a UTF-8 character).
    pub fn token_bytes(&self, token: i32) -> Result<Vec<u8>> {
        two_call(32, |out: *mut u8, capacity, len| {
            // SAFETY: out has capacity bytes.
            unsafe { sys::m3_token_bytes(self.ptr.as_ptr(), token, out as *mut c_char, capacity, len) }
        })
    }

    /// One more than the largest token id.
    pub fn vocab_size(&self) -> Result<usize> {
        let mut size = 0i32;
        // SAFETY: the out pointer is valid.
        check(unsafe { sys::m3_tokenizer_vocab_size(self.ptr.as_ptr(), &mut size) })?;
        Ok(size as usize)
    }
}

impl Drop for Tokenizer<'_> {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an owned pointer came from m3_tokenizer_load and is freed exactly once.
            unsafe { sys::m3_tokenizer_free(self.ptr.as_ptr()) }
        }
    }
}
