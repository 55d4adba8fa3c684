//! Embeds the directory of `libmamba3rt.so` found by `mamba3rt-sys` (DEP_MAMBA3RT_LIB_DIR) as an
//! rpath of this crate's tests and examples, so they run without LD_LIBRARY_PATH.
//! Applications that depend on this crate set their own rpath or use the system paths.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_MAMBA3RT_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_MAMBA3RT_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
