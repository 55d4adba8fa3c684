#!/usr/bin/env bash
# The Rust bindings' tests: `cargo test` of mamba3rt-sys (the header check, values at run time)
# and mamba3rt (the API suite with its leak check, doc tests, and a build of examples/stream.rs).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
require cargo "a Rust toolchain: rustup, or apt-get install cargo"
cd "$bindings/rust"
cargo --version
cargo test --offline --locked --workspace
