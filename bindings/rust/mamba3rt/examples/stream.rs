//! Streams the greedy continuation of a prompt from the bundled model, piece by piece, to
//! stdout: exactly what `mamba3rt generate --greedy --prompt PROMPT -n N` prints there.
//!
//! ```sh
//! cargo run --example stream -- "The president said that" 20
//! ```
//!
//! The model is `$MAMBA3RT_MODEL`, else the repository's `models/default`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mamba3rt::{Model, Sampler};

fn model_dir() -> PathBuf {
    match std::env::var_os("MAMBA3RT_MODEL") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../models/default"),
    }
}

fn stream(prompt: &str, n: u32) -> Result<(), Box<dyn std::error::Error>> {
    let model = Model::load(model_dir())?;
    let mut session = model.session()?;
    let mut sampler = Sampler::greedy()?;
    sampler.max_tokens(n)?;
    let mut generation = session.generate(&sampler)?;
    generation.push_text(prompt)?;
    let mut out = std::io::stdout().lock();
    for piece in &mut generation {
        out.write_all(piece?.text.as_bytes())?;
        out.flush()?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = match (args.len(), args.get(1).map(|n| n.parse::<u32>())) {
        (2, Some(Ok(n))) => n,
        _ => {
            eprintln!("usage: stream PROMPT N   (N: tokens to generate, a non-negative integer)");
            return ExitCode::from(2);
        }
    };
    match stream(&args[0], n) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream: {e}");
            ExitCode::FAILURE
        }
    }
}
