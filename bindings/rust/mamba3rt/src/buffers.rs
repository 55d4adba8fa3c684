//! The C API's two-call pattern: pass a capacity, get the needed size back.

use mamba3rt_sys as sys;

use crate::error::{check, Result};

/// Calls `call(buffer, capacity, &mut needed)` with a buffer of `guess` elements, and once more
/// with `needed` elements if that was too small. Returns the first `needed` elements.
pub(crate) fn two_call<T: Copy + Default>(
    guess: usize,
    mut call: impl FnMut(*mut T, usize, &mut usize) -> sys::m3_status,
) -> Result<Vec<T>> {
    let mut buffer = vec![T::default(); guess];
    let mut needed = 0usize;
    let status = call(buffer.as_mut_ptr(), buffer.len(), &mut needed);
    if status == sys::M3_ERR_BUFFER_TOO_SMALL && needed > buffer.len() {
        buffer.resize(needed, T::default());
        check(call(buffer.as_mut_ptr(), buffer.len(), &mut needed))?;
    } else {
        check(status)?;
    }
    buffer.truncate(needed);
    Ok(buffer)
}

/// UTF-8 text from the library (which only produces valid UTF-8; anything else is replaced
/// with U+FFFD rather than trusted).
pub(crate) fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
