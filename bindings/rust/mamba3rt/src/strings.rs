//! Rust strings and paths to the NUL-terminated strings some C calls take.

use std::ffi::CString;
use std::path::Path;

use crate::error::{invalid, Result};

/// `text` as a C string; an interior NUL is an `InvalidArgument` error naming `what`.
pub(crate) fn c_string(text: &str, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| invalid(format!("{what} contains a NUL byte")))
}

/// A path as a C string (its bytes on Unix, UTF-8 elsewhere).
pub(crate) fn c_path(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path
        .to_str()
        .ok_or_else(|| invalid(format!("path {} is not valid UTF-8", path.display())))?
        .as_bytes()
        .to_vec();
    CString::new(bytes).map_err(|_| invalid(format!("path {} contains a NUL byte", path.display())))
}
