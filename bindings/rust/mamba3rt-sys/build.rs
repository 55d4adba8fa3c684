//! Finds the mamba3rt shared library (`libmamba3rt.so`) and tells cargo how to link it.
//!
//! Search order (the first directory that holds `libmamba3rt.so` wins):
//! 1. `$MAMBA3RT_LIB_DIR`;
//! 2. `pkg-config --variable=libdir mamba3rt` (an installed library, e.g. under /usr/local);
//! 3. the in-tree CMake build, `<repo>/build` (this crate lives in `<repo>/bindings/rust`).
//!
//! If none holds it, only `-lmamba3rt` is emitted and the system linker paths decide.
//! The directory is also passed on as `DEP_MAMBA3RT_LIB_DIR` so that dependent crates can
//! embed it as an rpath (see the `mamba3rt` crate's build script).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn has_library(dir: &Path) -> bool {
    dir.join("libmamba3rt.so").exists()
}

fn from_pkg_config() -> Option<PathBuf> {
    let out = Command::new("pkg-config").args(["--variable=libdir", "mamba3rt"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = PathBuf::from(dir.trim());
    if has_library(&dir) {
        Some(dir)
    } else {
        None
    }
}

fn in_tree_build() -> Option<PathBuf> {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR")?);
    let dir = manifest.join("../../../build");
    if has_library(&dir) {
        dir.canonicalize().ok()
    } else {
        None
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=MAMBA3RT_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");

    let explicit = env::var_os("MAMBA3RT_LIB_DIR").map(PathBuf::from);
    if let Some(dir) = &explicit {
        if !has_library(dir) {
            panic!(
                "MAMBA3RT_LIB_DIR={} does not contain libmamba3rt.so (build the C library first: scripts/bootstrap.sh)",
                dir.display()
            );
        }
    }
    let dir = explicit.or_else(from_pkg_config).or_else(in_tree_build);

    match &dir {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            // For this crate's own tests; dependents read DEP_MAMBA3RT_LIB_DIR.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
            println!("cargo:lib_dir={}", dir.display());
        }
        None => println!(
            "cargo:warning=libmamba3rt.so not found (set MAMBA3RT_LIB_DIR); relying on the system linker paths"
        ),
    }
    println!("cargo:rustc-link-lib=dylib=mamba3rt");
}
