//! The safe crate against the bundled model, through the real library.
//!
//! A plain runner (Cargo.toml: `harness = false`): the cases run one after another, then the
//! C library's own handle count (`m3_live_handles`) must be back to 0, which checks that
//! every `Drop` freed its handle. Prints `N passed, M failed` and exits 1 on any failure.
//! The model is `$MAMBA3RT_MODEL`, else the repository's `models/default`.

use std::ops::ControlFlow;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;

use mamba3rt::{
    decode_batch, Backend, Engine, EngineParams, EngineStat, FinishReason, GenStat, InfoKey, LogitsMode, Model,
    ModelParams, Piece, Sampler, Session, StatePart, Status, Tokenizer, WeightType,
};

type CaseResult = Result<(), mamba3rt::Error>;
type Case = (&'static str, fn() -> CaseResult);

fn model_dir() -> PathBuf {
    match std::env::var_os("MAMBA3RT_MODEL") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../models/default"),
    }
}

fn load() -> Model {
    Model::load(model_dir()).unwrap_or_else(|e| panic!("loading {}: {e}", model_dir().display()))
}

/// The bundled model on the CPU backend: there batching does not change results (GPU backends
/// round batched products differently, so a stream there matches a generation only up to rounding).
fn load_cpu() -> Model {
    let mut params = ModelParams::new().unwrap();
    params.backend(Backend::Cpu).unwrap();
    Model::load_with(model_dir(), &params).unwrap_or_else(|e| panic!("loading {}: {e}", model_dir().display()))
}

fn greedy(max_tokens: u32) -> Sampler {
    let mut sampler = Sampler::greedy().unwrap();
    sampler.max_tokens(max_tokens).unwrap();
    sampler
}

fn argmax(row: &[f32], vocab: usize) -> i32 {
    let mut best = 0;
    for (i, v) in row[..vocab].iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best as i32
}

fn expect_err<T: std::fmt::Debug>(result: mamba3rt::Result<T>, status: Status, fragment: &str) {
    match result {
        Ok(v) => panic!("expected {status:?} mentioning {fragment:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.status(), status, "{e}");
            assert!(e.message().contains(fragment), "message {:?} does not mention {fragment:?}", e.message());
            assert!(e.to_string().starts_with("M3_ERR_"), "{e}");
        }
    }
}

// --- cases ----------------------------------------------------------------------------------

fn version_and_abi() -> CaseResult {
    assert_eq!(mamba3rt::abi_version(), 1);
    assert!(mamba3rt::version().split('.').count() >= 3, "{}", mamba3rt::version());
    assert_eq!(Backend::CpuReference.name(), "cpu-reference");
    Backend::Cpu.available()?;
    Ok(())
}

fn load_errors_carry_the_c_message() -> CaseResult {
    expect_err(Model::load("/nonexistent/model-dir"), Status::Io, "/nonexistent/model-dir");
    expect_err(Model::load("bad\0path"), Status::InvalidArgument, "NUL");
    let mut params = ModelParams::new()?;
    expect_err(params.threads(5000).map(drop), Status::InvalidArgument, "n_threads");
    expect_err(Tokenizer::load("/nonexistent/tokenizer.json"), Status::Io, "tokenizer.json");
    Ok(())
}

fn model_info_and_params() -> CaseResult {
    let mut params = ModelParams::new()?;
    params.backend(Backend::Cpu)?.threads(1)?.device("")?;
    let model = Model::load_with(model_dir(), &params)?;
    assert_eq!(model.info(InfoKey::Threads)?, 1);
    assert_eq!(model.device_name()?, "CPU");
    assert_eq!(model.weight_type()?, WeightType::F16, "the bundled model is stored as f16");
    assert!(model.vocab_size()? > 0);
    assert!(model.info(InfoKey::VocabPadded)? as usize >= model.vocab_size()?);
    assert!(matches!(model.backend()?, Backend::Cpu | Backend::CpuReference));
    assert!(model.info(InfoKey::StateBlobBytes)? > model.info(InfoKey::StateBytes)?);
    Ok(())
}

fn session_and_tensor_limits() -> CaseResult {
    let mut params = ModelParams::new()?;
    params.max_sessions(2)?;
    let model = Model::load_with(model_dir(), &params)?;
    assert_eq!(model.max_sessions()?, 2);
    assert_eq!(model.live_sessions()?, 0);
    let a = model.session()?;
    let b = model.session()?;
    assert_eq!(model.live_sessions()?, 2);
    expect_err(model.session(), Status::LimitExceeded, "max_sessions");
    expect_err(a.fork(), Status::LimitExceeded, "max_sessions");
    let engine = Engine::new(&model)?;
    expect_err(engine.submit(&greedy(1), None), Status::LimitExceeded, "max_sessions");
    drop(engine);
    assert_eq!(model.info(InfoKey::LiveSessions)?, 2, "failed creates change nothing");
    drop(b);
    assert_eq!(model.live_sessions()?, 1);
    let fork = a.fork()?; // the place was released
    assert_eq!(model.live_sessions()?, 2);
    drop(fork);
    drop(a);
    assert_eq!(model.live_sessions()?, 0);
    assert_eq!(Model::load(model_dir())?.max_sessions()?, 0, "no limit by default");
    expect_err(params.max_sessions(u32::MAX).map(drop), Status::InvalidArgument, "max_sessions");

    let mut tiny = ModelParams::new()?;
    tiny.max_tensor_bytes(1)?;
    expect_err(Model::load_with(model_dir(), &tiny), Status::LimitExceeded, "max_tensor_bytes");
    expect_err(tiny.max_tensor_bytes(u64::MAX).map(drop), Status::InvalidArgument, "max_tensor_bytes");
    tiny.max_tensor_bytes(0)?; // no limit
    Model::load_with(model_dir(), &tiny)?;
    Ok(())
}

fn device_selection() -> CaseResult {
    let mut params = ModelParams::new()?;
    expect_err(params.device(&"x".repeat(256)).map(drop), Status::InvalidArgument, "255");
    expect_err(params.device("a\0b").map(drop), Status::InvalidArgument, "NUL");
    // The CPU backends ignore the device.
    params.backend(Backend::Cpu)?.device("no-such-gpu-7f3a")?;
    assert_eq!(Model::load_with(model_dir(), &params)?.device_name()?, "CPU");
    if Backend::Vulkan.available().is_ok() {
        params.backend(Backend::Vulkan)?;
        expect_err(Model::load_with(model_dir(), &params), Status::BackendUnavailable, "no-such-gpu-7f3a");
        params.device("0")?;
        let model = Model::load_with(model_dir(), &params)?;
        assert_eq!(model.backend()?, Backend::Vulkan);
        assert!(!model.device_name()?.is_empty());
    }
    Ok(())
}

fn tokenizer_round_trip() -> CaseResult {
    let model = load();
    let tokenizer = model.tokenizer()?;
    let text = "The president said that naïve café-goers like “quotes”.";
    let ids = tokenizer.encode(text, false)?;
    assert!(!ids.is_empty());
    assert_eq!(tokenizer.decode(&ids, false)?, text);
    let joined: Vec<u8> = ids.iter().flat_map(|&t| tokenizer.token_bytes(t).unwrap()).collect();
    assert_eq!(joined, text.as_bytes());
    let vocab = tokenizer.vocab_size()?;
    expect_err(tokenizer.token_bytes(vocab as i32), Status::InvalidArgument, "out of range");
    expect_err(tokenizer.token_bytes(-1), Status::InvalidArgument, "out of range");

    // An owned tokenizer from the same file gives the same ids.
    let owned = Tokenizer::load(model_dir().join("tokenizer.json"))?;
    assert_eq!(owned.encode(text, false)?, ids);
    Ok(())
}

fn feed_equals_steps_and_batch() -> CaseResult {
    let model = load();
    let vocab_padded = model.info(InfoKey::VocabPadded)? as usize;
    let tokens = model.tokenizer()?.encode("It was a bright cold day", false)?;

    let mut all = model.session()?;
    let rows = all.feed_logits(&tokens, LogitsMode::All)?;
    assert_eq!(rows.len(), tokens.len() * vocab_padded);

    let mut stepped = model.session()?;
    for (i, &t) in tokens.iter().enumerate() {
        let row = stepped.step(t)?;
        let expected = &rows[i * vocab_padded..(i + 1) * vocab_padded];
        let diff = row.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-3, "position {i}: max difference {diff}");
    }
    assert_eq!(stepped.n_tokens()?, tokens.len() as u64);

    // Two sessions in one batched call equal each one stepped alone.
    let mut a = model.session()?;
    let mut b = model.session()?;
    a.feed(&tokens[..2])?;
    b.feed(&tokens[..3])?;
    let mut a_alone = a.fork()?;
    let mut b_alone = b.fork()?;
    let batched = decode_batch(&mut [&mut a, &mut b], &[tokens[2], tokens[3]])?;
    let expected: Vec<f32> = a_alone.step(tokens[2])?.into_iter().chain(b_alone.step(tokens[3])?).collect();
    assert_eq!(batched.len(), expected.len());
    let diff = batched.iter().zip(&expected).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-3, "batched vs alone: {diff}");
    expect_err(decode_batch(&mut [&mut a], &[1, 2]), Status::InvalidArgument, "tokens");
    Ok(())
}

fn snapshot_restore_fork() -> CaseResult {
    let model = load();
    let mut session = model.session()?;
    session.feed(&[10, 20, 30])?;
    let snapshot = session.snapshot()?;
    assert_eq!(snapshot.len() as i64, model.info(InfoKey::StateBlobBytes)?);
    let fork = session.fork()?;
    let after = session.step(40)?;

    session.restore(&snapshot)?;
    assert_eq!(session.n_tokens()?, 3);
    assert_eq!(session.step(40)?, after, "restored state gives the same logits");

    let mut fork = fork;
    assert_eq!(fork.n_tokens()?, 3);
    assert_eq!(fork.step(40)?, after, "the fork holds the state it was forked from");
    assert!(!fork.read_state(0, StatePart::Ssm)?.is_empty());

    let mut damaged = snapshot.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let n_before = session.n_tokens()?;
    expect_err(session.restore(&damaged), Status::Format, "");
    expect_err(session.restore(b"not a blob"), Status::Format, "");
    assert_eq!(session.n_tokens()?, n_before, "a failed restore leaves the session as it was");
    session.reset()?;
    assert_eq!(session.n_tokens()?, 0);
    Ok(())
}

fn bad_tokens_leave_the_session_unchanged() -> CaseResult {
    let model = load();
    let vocab = model.vocab_size()? as i32;
    let mut session = model.session()?;
    session.feed(&[1, 2])?;
    expect_err(session.feed(&[3, vocab]), Status::InvalidArgument, "out of range");
    expect_err(session.step(-5), Status::InvalidArgument, "");
    assert_eq!(session.n_tokens()?, 2);
    expect_err(session.read_state(1000, StatePart::V), Status::InvalidArgument, "");
    Ok(())
}

/// Greedy generation against an independent computation: argmax over the logits of the
/// plain session API, token by token.
fn greedy_generation_equals_argmax_of_logits() -> CaseResult {
    let model = load();
    let tokenizer = model.tokenizer()?;
    let vocab = model.vocab_size()?;
    let prompt = "The president said that";

    let mut session = model.session()?;
    let sampler = greedy(12);
    let mut gen = session.generate(&sampler)?;
    gen.push_text(prompt)?;
    let pieces: Vec<Piece> = gen.by_ref().collect::<Result<_, _>>()?;
    assert_eq!(gen.finish_reason(), Some(FinishReason::MaxTokens));
    assert_eq!(gen.stat(GenStat::GeneratedTokens)?, 12.0);
    let tokens: Vec<i32> = pieces.iter().filter_map(|p| p.token).collect();
    let text: String = pieces.iter().map(|p| p.text.as_str()).collect();
    drop(gen);

    let mut reference = model.session()?;
    let mut logits = reference.feed_logits(&tokenizer.encode(prompt, true)?, LogitsMode::Last)?;
    let mut expected = Vec::new();
    for _ in 0..12 {
        let t = argmax(&logits, vocab);
        expected.push(t);
        // The generation feeds its last token lazily as a one-token feed; do the same.
        logits = reference.feed_logits(&[t], LogitsMode::Last)?;
    }
    assert_eq!(tokens, expected);
    assert_eq!(text, tokenizer.decode(&expected, false)?);
    Ok(())
}

fn callback_and_iterator_agree() -> CaseResult {
    let model = load();
    let sampler = greedy(15);

    let mut s1 = model.session()?;
    let mut g1 = s1.generate(&sampler)?;
    g1.push_text("Once upon a time")?;
    let iterated: Vec<Piece> = g1.by_ref().collect::<Result<_, _>>()?;

    let mut s2 = model.session()?;
    let mut g2 = s2.generate(&sampler)?;
    g2.push_text("Once upon a time")?;
    let mut called = Vec::new();
    let thread = std::thread::current().id();
    let reason = g2.run(|piece| {
        assert_eq!(std::thread::current().id(), thread, "callback on the calling thread");
        called.push(piece.clone());
        ControlFlow::Continue(())
    })?;
    assert_eq!(reason, FinishReason::MaxTokens);
    assert_eq!(iterated, called);
    assert!(g2.next_piece()?.is_none(), "nothing after the turn finished");
    Ok(())
}

fn callback_break_and_panic() -> CaseResult {
    let model = load();
    let mut session = model.session()?;
    let sampler = greedy(50);
    let mut gen = session.generate(&sampler)?;
    gen.push_text("The")?;
    let mut n = 0;
    let reason = gen.run(|_| {
        n += 1;
        if n == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    assert_eq!(reason, FinishReason::Cancelled);
    assert_eq!(n, 3);

    gen.push_text(" next")?;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| gen.run(|_| panic!("boom in callback"))));
    let payload = caught.expect_err("the callback's panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in callback"));

    // The generation is still usable after the panic.
    gen.push_text(" again")?;
    assert!(gen.next_piece()?.is_some());
    Ok(())
}

fn multi_turn_and_stop_string() -> CaseResult {
    let model = load();
    let mut session = model.session()?;
    let sampler = greedy(8);
    let mut gen = session.generate(&sampler)?;
    gen.push_text("The president said that")?;
    let first: String = gen.by_ref().map(|p| p.map(|p| p.text)).collect::<Result<_, _>>()?;
    assert_eq!(gen.finish_reason(), Some(FinishReason::MaxTokens));
    assert!(gen.next().is_none(), "the iterator ends with the turn");
    gen.push_text(" and")?;
    let second: String = gen.by_ref().map(|p| p.map(|p| p.text)).collect::<Result<_, _>>()?;
    assert!(!second.is_empty());
    let n_tokens = gen.session().n_tokens()?;
    assert!(n_tokens > 8, "the session absorbed the first turn ({n_tokens})");
    drop(gen);

    // A stop string taken from the middle of the greedy output cuts it there.
    let words: Vec<&str> = first.split_whitespace().collect();
    assert!(words.len() >= 3, "{first:?}");
    let stop = format!(" {}", words[2]);
    let cut = &first[..first.find(&stop).unwrap()];
    let mut with_stop = greedy(8);
    with_stop.stop_string(&stop)?;
    let mut fresh = model.session()?;
    let mut gen = fresh.generate(&with_stop)?;
    gen.push_text("The president said that")?;
    let stopped: String = gen.by_ref().map(|p| p.map(|p| p.text)).collect::<Result<_, _>>()?;
    assert_eq!(stopped, cut);
    assert_eq!(gen.finish_reason(), Some(FinishReason::StopString));
    Ok(())
}

fn generation_input_errors() -> CaseResult {
    let model = load();
    let vocab = model.vocab_size()? as i32;
    let mut session = model.session()?;
    let sampler = greedy(4);
    let mut gen = session.generate(&sampler)?;
    expect_err(gen.next_piece(), Status::InvalidArgument, "push a prompt");
    let mut iter_errors = 0;
    for item in gen.by_ref() {
        assert!(item.is_err());
        iter_errors += 1;
    }
    assert_eq!(iter_errors, 1, "the iterator stops after an error");
    expect_err(gen.push_text(""), Status::InvalidArgument, "empty");
    expect_err(gen.push_tokens(&[1, vocab + 7]), Status::InvalidArgument, "out of range");
    gen.push_tokens(&[1, 2, 3])?;
    assert_eq!(gen.by_ref().count(), 4);

    let mut s = Sampler::new()?;
    expect_err(s.top_p(0.0).map(drop), Status::InvalidArgument, "top_p");
    expect_err(s.temperature(f32::NAN).map(drop), Status::InvalidArgument, "temperature");
    expect_err(s.max_tokens(u32::MAX).map(drop), Status::InvalidArgument, "max_tokens");
    expect_err(s.stop_string("a\0b").map(drop), Status::InvalidArgument, "NUL");
    expect_err(s.stop_string("").map(drop), Status::InvalidArgument, "empty");
    s.stop_token(vocab + 1)?;
    let mut other = model.session()?;
    expect_err(other.generate(&s).map(drop), Status::InvalidArgument, "stop token");
    Ok(())
}

fn cancel_from_another_thread() -> CaseResult {
    let model = load();
    let mut session = model.session()?;
    let mut sampler = greedy(100_000);
    sampler.ignore_eos(true)?;
    let mut gen = session.generate(&sampler)?;
    gen.push_text("The")?;
    let canceller = gen.canceller();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reason = std::thread::scope(|scope| {
        scope.spawn(move || {
            rx.recv().unwrap();
            assert!(canceller.cancel());
        });
        let mut sent = false;
        gen.run(|_| {
            if !sent {
                tx.send(()).unwrap();
                sent = true;
            }
            ControlFlow::Continue(())
        })
    })?;
    assert_eq!(reason, FinishReason::Cancelled);
    assert!(gen.stat(GenStat::GeneratedTokens)? < 100_000.0);
    let late = gen.canceller();
    drop(gen);
    assert!(!late.cancel(), "cancelling a dropped generation is a no-op");
    Ok(())
}

fn model_shared_by_threads() -> CaseResult {
    let model = Arc::new(load());
    let run = |model: Arc<Model>| -> mamba3rt::Result<String> {
        let mut session = Session::new(&model)?;
        let sampler = greedy(10);
        let mut gen = session.generate(&sampler)?;
        gen.push_text("In the morning")?;
        gen.map(|p| p.map(|p| p.text)).collect()
    };
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let model = Arc::clone(&model);
            std::thread::spawn(move || run(model))
        })
        .collect();
    let outputs: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect::<Result<_, _>>()?;
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], run(model)?);
    Ok(())
}

fn sessions_outlive_their_model() -> CaseResult {
    let model = load();
    let mut session = model.session()?;
    drop(model);
    session.feed(&[1, 2, 3])?;
    assert_eq!(session.step(4)?.len(), session.vocab_padded());
    Ok(())
}

/// The pieces of one turn of `prompt` through a plain generation (the reference for streams).
fn generation_pieces(model: &Model, sampler: &Sampler, prompt: &str) -> mamba3rt::Result<Vec<Piece>> {
    let mut session = model.session()?;
    let mut gen = session.generate(sampler)?;
    gen.push_text(prompt)?;
    let pieces = gen.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok(pieces)
}

fn texts(pieces: &[Piece]) -> String {
    pieces.iter().map(|p| p.text.as_str()).collect()
}

/// Polls `pred` for up to 20 s.
fn eventually(mut pred: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !pred() {
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

fn engine_stream_equals_generation() -> CaseResult {
    let model = load_cpu();
    let sampler = greedy(12);
    let prompt = "The president said that";

    // Two turns through a generation.
    let mut session = model.session()?;
    let mut gen = session.generate(&sampler)?;
    gen.push_text(prompt)?;
    let first: Vec<Piece> = gen.by_ref().collect::<Result<_, _>>()?;
    gen.push_text(" And then")?;
    let second: Vec<Piece> = gen.by_ref().collect::<Result<_, _>>()?;
    drop(gen);

    let engine = Engine::new(&model)?;
    let mut stream = engine.submit(&sampler, None)?;
    stream.push_text(prompt)?;
    let got: Vec<Piece> = stream.by_ref().collect::<Result<_, _>>()?;
    assert_eq!(got, first, "the stream's pieces equal the generation's");
    assert_eq!(stream.finish_reason(), Some(FinishReason::MaxTokens));
    assert_eq!(stream.stat(GenStat::GeneratedTokens)?, 12.0);
    assert!(stream.stat(GenStat::PromptTokens)? > 0.0);
    assert!(stream.stat(GenStat::TtftMs)? >= 0.0);
    // Until new input arrives, the finish is reported again at once.
    let again = stream.next_event(Some(std::time::Duration::ZERO))?.expect("the finish, not a timeout");
    assert_eq!(
        again,
        mamba3rt::StreamEvent { token: None, text: String::new(), finish: Some(FinishReason::MaxTokens) }
    );
    assert!(stream.next().is_none(), "the iterator ends with the turn");

    // A dialogue turn continues from the stream's state.
    stream.push_text(" And then")?;
    let mut events = Vec::new();
    loop {
        let event = stream.next_event(None)?.expect("no timeout without a limit");
        let done = event.finish.is_some();
        events.push(event);
        if done {
            break;
        }
    }
    let tokens: Vec<i32> = events.iter().filter_map(|e| e.token).collect();
    let expected: Vec<i32> = second.iter().filter_map(|p| p.token).collect();
    assert_eq!(tokens, expected, "second turn");
    assert_eq!(events.iter().map(|e| e.text.as_str()).collect::<String>(), texts(&second));
    assert!(engine.stat(EngineStat::Steps)? > 0);
    assert!(engine.stat(EngineStat::GeneratedTokens)? >= 24);
    assert_eq!(engine.stat(EngineStat::LiveStreams)?, 1);
    Ok(())
}

fn engine_runs_eight_streams_concurrently() -> CaseResult {
    let model = load_cpu();
    let mut sampler = greedy(16);
    sampler.ignore_eos(true)?;
    let prompts: Vec<String> = (0..8).map(|i| format!("Story number {i}: once upon a time")).collect();
    let expected: Vec<String> = prompts
        .iter()
        .map(|p| generation_pieces(&model, &sampler, p).map(|ps| texts(&ps)))
        .collect::<Result<_, _>>()?;

    let mut params = EngineParams::new()?;
    params.max_batch(8)?.queue_capacity(4)?;
    let engine = Engine::with_params(&model, &params)?;
    let mut streams = Vec::new();
    for prompt in &prompts {
        let mut stream = engine.submit(&sampler, None)?;
        stream.push_text(prompt)?;
        streams.push(stream);
    }
    assert_eq!(engine.stat(EngineStat::LiveStreams)?, 8);
    // Each stream read on a thread of its own (streams are Send and keep the engine running).
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            std::thread::spawn(move || -> mamba3rt::Result<(String, Option<FinishReason>)> {
                let text = stream.by_ref().map(|p| p.map(|p| p.text)).collect::<mamba3rt::Result<String>>()?;
                Ok((text, stream.finish_reason()))
            })
        })
        .collect();
    for (i, reader) in readers.into_iter().enumerate() {
        let (text, finish) = reader.join().expect("reader thread")?;
        assert_eq!(finish, Some(FinishReason::MaxTokens), "stream {i}");
        assert_eq!(text, expected[i], "stream {i}");
    }
    assert!(engine.stat(EngineStat::GeneratedTokens)? >= 8 * 16);
    assert!(engine.stat(EngineStat::LastBatch)? >= 1);
    assert_eq!(engine.stat(EngineStat::LiveStreams)?, 0, "dropped streams leave the engine");
    Ok(())
}

fn engine_limits_and_errors() -> CaseResult {
    let model = load_cpu();
    let mut params = EngineParams::new()?;
    expect_err(params.max_batch(0).map(drop), Status::InvalidArgument, "max_batch");
    expect_err(params.queue_capacity(0).map(drop), Status::InvalidArgument, "queue_capacity");
    expect_err(params.prefill_chunk(u32::MAX).map(drop), Status::InvalidArgument, "prefill_chunk");
    params.max_streams(2)?;
    let engine = Engine::with_params(&model, &params)?;
    let sampler = greedy(4);
    let mut a = engine.submit(&sampler, None)?;
    let b = engine.submit(&sampler, None)?;
    expect_err(engine.submit(&sampler, None), Status::LimitExceeded, "max_streams");
    drop(b);
    let c = engine.submit(&sampler, None)?; // the slot was released
    assert_eq!(engine.stat(EngineStat::LiveStreams)?, 2);

    let vocab = model.vocab_size()? as i32;
    expect_err(a.next_event(Some(std::time::Duration::ZERO)), Status::InvalidArgument, "push a prompt");
    expect_err(a.next_piece(), Status::InvalidArgument, "push a prompt");
    expect_err(a.push_text(""), Status::InvalidArgument, "empty");
    expect_err(a.push_tokens(&[1, vocab]), Status::InvalidArgument, "out of range");
    a.push_tokens(&[1, 2, 3])?;
    assert_eq!(a.by_ref().count(), 4);
    assert_eq!(a.finish_reason(), Some(FinishReason::MaxTokens));
    drop(c);

    // A prefix session of another model.
    let other = load();
    let foreign = other.session()?;
    drop(a);
    expect_err(engine.submit(&sampler, Some(&foreign)), Status::ModelMismatch, "another model");
    Ok(())
}

/// One batch place, taken by a long prompt fed one token per step: a later stream waits, so
/// its reader times out, deterministically, until the first stream is cancelled.
fn engine_next_times_out_while_the_batch_is_full() -> CaseResult {
    let model = load_cpu();
    let vocab = model.vocab_size()? as i32;
    let mut params = EngineParams::new()?;
    params.max_batch(1)?.prefill_chunk(1)?.prefill_budget(1)?;
    let engine = Engine::with_params(&model, &params)?;
    let sampler = greedy(3);
    let mut busy = engine.submit(&sampler, None)?;
    let mut waiting = engine.submit(&sampler, None)?;
    let long: Vec<i32> = (0..8000).map(|i| (i * 7919) % vocab).collect();
    busy.push_tokens(&long)?;
    waiting.push_text("The president said that")?;
    assert!(eventually(|| engine.stat(EngineStat::WaitingStreams).ok() == Some(1)), "nothing waited");
    let start = std::time::Instant::now();
    assert_eq!(waiting.next_event(Some(std::time::Duration::from_millis(50)))?, None, "a timeout");
    assert!(start.elapsed() >= std::time::Duration::from_millis(45), "returned after {:?}", start.elapsed());
    assert_eq!(waiting.next_event(Some(std::time::Duration::ZERO))?, None, "a poll");

    busy.cancel();
    let first = waiting.next_event(None)?.expect("an event once the batch place is free");
    let expected = generation_pieces(&model, &sampler, "The president said that")?;
    assert_eq!(first.token, expected[0].token, "the waiting stream's first token");
    let event = busy.next_event(None)?.expect("the busy stream's finish");
    assert_eq!(event.finish, Some(FinishReason::Cancelled));
    assert_eq!(event.token, None);
    Ok(())
}

fn engine_prefix_cancel_and_lifetimes() -> CaseResult {
    let model = load_cpu();
    let tokenizer = model.tokenizer()?;
    let sampler = greedy(10);

    // A prefix session: the stream continues from a copy of its state.
    let mut prefix = model.session()?;
    prefix.feed(&tokenizer.encode("The president said that", true)?)?;
    let n_prefix = prefix.n_tokens()?;
    let mut alone = prefix.fork()?;
    let mut gen = alone.generate(&sampler)?;
    gen.push_text(" the")?;
    let expected: Vec<Piece> = gen.by_ref().collect::<Result<_, _>>()?;
    drop(gen);

    let engine = Engine::new(&model)?;
    let mut stream = engine.submit(&sampler, Some(&prefix))?;
    stream.push_text(" the")?;
    assert_eq!(stream.by_ref().collect::<Result<Vec<_>, _>>()?, expected, "continued from the prefix");
    assert_eq!(prefix.n_tokens()?, n_prefix, "the prefix session is unchanged");

    // Cancel from another thread.
    let mut endless = Sampler::greedy()?;
    endless.max_tokens(100_000)?.ignore_eos(true)?;
    let mut long = engine.submit(&endless, None)?;
    long.push_text("The")?;
    let canceller = long.canceller();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        rx.recv().unwrap();
        assert!(canceller.cancel());
    });
    let mut n = 0;
    for piece in long.by_ref() {
        piece?;
        n += 1;
        if n == 1 {
            tx.send(()).unwrap();
        }
    }
    thread.join().unwrap();
    assert_eq!(long.finish_reason(), Some(FinishReason::Cancelled));
    assert!(n < 100_000);
    // A new turn on the same stream.
    long.push_text(" and")?;
    assert!(long.next_piece()?.is_some());
    let late = long.canceller();
    drop(long);
    assert!(!late.cancel(), "cancelling a dropped stream is a no-op");

    // A stream keeps its engine running, and the engine its model's weights.
    let mut kept = engine.submit(&sampler, None)?;
    drop(engine);
    drop(prefix);
    drop(tokenizer);
    drop(model);
    kept.push_text("The president said that")?;
    assert_eq!(kept.by_ref().count(), 10);
    Ok(())
}

fn main() {
    let cases: &[Case] = &[
        ("version_and_abi", version_and_abi),
        ("load_errors_carry_the_c_message", load_errors_carry_the_c_message),
        ("model_info_and_params", model_info_and_params),
        ("session_and_tensor_limits", session_and_tensor_limits),
        ("device_selection", device_selection),
        ("tokenizer_round_trip", tokenizer_round_trip),
        ("feed_equals_steps_and_batch", feed_equals_steps_and_batch),
        ("snapshot_restore_fork", snapshot_restore_fork),
        ("bad_tokens_leave_the_session_unchanged", bad_tokens_leave_the_session_unchanged),
        ("greedy_generation_equals_argmax_of_logits", greedy_generation_equals_argmax_of_logits),
        ("callback_and_iterator_agree", callback_and_iterator_agree),
        ("callback_break_and_panic", callback_break_and_panic),
        ("multi_turn_and_stop_string", multi_turn_and_stop_string),
        ("generation_input_errors", generation_input_errors),
        ("cancel_from_another_thread", cancel_from_another_thread),
        ("model_shared_by_threads", model_shared_by_threads),
        ("sessions_outlive_their_model", sessions_outlive_their_model),
        ("engine_stream_equals_generation", engine_stream_equals_generation),
        ("engine_runs_eight_streams_concurrently", engine_runs_eight_streams_concurrently),
        ("engine_limits_and_errors", engine_limits_and_errors),
        ("engine_next_times_out_while_the_batch_is_full", engine_next_times_out_while_the_batch_is_full),
        ("engine_prefix_cancel_and_lifetimes", engine_prefix_cancel_and_lifetimes),
    ];
    // Only the expected panics of `callback_break_and_panic` would print; keep the output short.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let expected = info.payload().downcast_ref::<&str>() == Some(&"boom in callback");
        if !expected {
            default_hook(info);
        }
    }));

    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        match panic::catch_unwind(case) {
            Ok(Ok(())) => {
                passed += 1;
                println!("ok    {name}");
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("FAIL  {name}: {e}");
            }
            Err(_) => {
                failed += 1;
                println!("FAIL  {name}: panicked");
            }
        }
    }
    let live = mamba3rt::live_handles();
    if live == 0 {
        passed += 1;
        println!("ok    leak check: m3_live_handles() == 0");
    } else {
        failed += 1;
        println!("FAIL  leak check: m3_live_handles() == {live} after all cases");
    }
    println!("{passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
