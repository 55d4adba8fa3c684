//! Checks the hand-written declarations in `src/lib.rs` against `include/mamba3rt.h`.
//!
//! Both files are parsed here (independently of each other) into the same shape: functions
//! with their return and parameter types, enum types with their values, the callback type
//! and `M3_ABI_VERSION`. Types are compared in a canonical C spelling ("east const": `const
//! char*` and `*const c_char` both become `char const *`), so a function or enum value added,
//! removed or changed in the header without the same change here fails this test.
//!
//! The header is `$MAMBA3RT_HEADER` when set, else `../../../include/mamba3rt.h` from this
//! crate (the repository layout).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// One function (or function pointer) signature in canonical types; parameter names are
/// not part of the ABI and are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    ret: String,
    params: Vec<String>,
}

/// The declarations of one file.
#[derive(Debug, Default)]
struct Api {
    functions: BTreeMap<String, Signature>,
    /// enum type -> (value name, value) in declaration order.
    enums: BTreeMap<String, Vec<(String, String)>>,
    callbacks: BTreeMap<String, Signature>,
    abi_version: Option<String>,
}

// --- canonical types ----------------------------------------------------------------------

/// Splits a C type into words and `*`, moves a leading `const` after its base type, and
/// joins with single spaces: `const m3_model *` -> `m3_model const *`.
fn canonical_c_type(ty: &str) -> String {
    let spaced = ty.replace('*', " * ");
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() >= 2 && words[0] == "const" {
        words.remove(0);
        words.insert(1, "const");
    }
    words.join(" ")
}

/// The C spelling of a Rust FFI type, canonical as above.
fn canonical_rust_type(ty: &str) -> String {
    let ty = ty.trim();
    if let Some(rest) = ty.strip_prefix("*const") {
        return format!("{} const *", canonical_rust_type(rest));
    }
    if let Some(rest) = ty.strip_prefix("*mut") {
        return format!("{} *", canonical_rust_type(rest));
    }
    let base = match ty {
        "c_char" => "char",
        "c_int" => "int",
        "c_void" => "void",
        "i32" => "int32_t",
        "u32" => "uint32_t",
        "i64" => "int64_t",
        "u64" => "uint64_t",
        "usize" => "size_t",
        "f32" => "float",
        "f64" => "double",
        "()" | "" => "void",
        other => other,
    };
    base.to_string()
}

// --- C header ---------------------------------------------------------------------------

fn strip_c_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let block = rest.find("/*");
        let line = rest.find("//");
        let start = match (block, line) {
            (None, None) => break,
            (Some(b), None) => b,
            (None, Some(l)) => l,
            (Some(b), Some(l)) => b.min(l),
        };
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let end = if after.starts_with("/*") {
            after.find("*/").map(|e| e + 2).unwrap_or(after.len())
        } else {
            after.find('\n').unwrap_or(after.len())
        };
        out.push(' ');
        rest = &after[end..];
    }
    out.push_str(rest);
    // Preprocessor lines (the M3_API definitions themselves) are not declarations.
    out.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n")
}

fn is_identifier(word: &str) -> bool {
    !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !word.starts_with(|c: char| c.is_ascii_digit())
}

/// `const char* text` -> `char const *`; `void` (an empty list) -> None.
fn c_parameter_type(param: &str) -> Option<String> {
    let param = param.trim();
    if param.is_empty() || param == "void" {
        return None;
    }
    let spaced = param.replace('*', " * ");
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() >= 2 && is_identifier(words[words.len() - 1]) && words[words.len() - 1] != "const" {
        words.pop();
    }
    Some(canonical_c_type(&words.join(" ")))
}

fn c_parameters(list: &str) -> Vec<String> {
    list.split(',').filter_map(c_parameter_type).collect()
}

fn parse_header(text: &str) -> Api {
    let text = strip_c_comments(text);
    let mut api = Api::default();

    // Functions: "M3_API <ret> <name>(<params>);"
    let mut rest = text.as_str();
    while let Some(start) = rest.find("M3_API") {
        let decl_start = &rest[start + "M3_API".len()..];
        let end = decl_start.find(';').expect("declaration without ';'");
        let decl = &decl_start[..end];
        rest = &decl_start[end + 1..];
        let open = decl.find('(').expect("declaration without '('");
        let close = decl.rfind(')').expect("declaration without ')'");
        let head = decl[..open].trim();
        let name_start = head.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map(|i| i + 1).unwrap_or(0);
        let name = head[name_start..].to_string();
        let ret = canonical_c_type(&head[..name_start]);
        api.functions.insert(name, Signature { ret, params: c_parameters(&decl[open + 1..close]) });
    }

    // Enums: "typedef enum <name> M3_ENUM_BASE { A = 0, ... } <name>;"
    let mut rest = text.as_str();
    while let Some(start) = rest.find("typedef enum") {
        let after = &rest[start + "typedef enum".len()..];
        let open = after.find('{').expect("enum without '{'");
        let close = after.find('}').expect("enum without '}'");
        let name = after[..open].split_whitespace().next().unwrap_or_default().to_string();
        let values = after[open + 1..close]
            .split(',')
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut kv = e.splitn(2, '=');
                let k = kv.next().unwrap_or_default().trim().to_string();
                let v = kv.next().map(|v| v.trim().to_string()).unwrap_or_else(|| "<implicit>".to_string());
                (k, v)
            })
            .collect();
        api.enums.insert(name, values);
        rest = &after[close + 1..];
    }

    // Callback types: "typedef <ret> (*<name>)(<params>);"
    let mut rest = text.as_str();
    while let Some(start) = rest.find("typedef") {
        let after = &rest[start + "typedef".len()..];
        let end = after.find(';').unwrap_or(after.len());
        let decl = &after[..end];
        rest = &after[end..];
        if let Some(star) = decl.find("(*") {
            let ret = canonical_c_type(&decl[..star]);
            let name_end = decl[star..].find(')').map(|i| star + i).expect("callback typedef without ')'");
            let name = decl[star + 2..name_end].trim().to_string();
            let params_open = decl[name_end..].find('(').map(|i| name_end + i).expect("callback without parameters");
            let params_close = decl.rfind(')').expect("callback without ')'");
            api.callbacks.insert(name, Signature { ret, params: c_parameters(&decl[params_open + 1..params_close]) });
        }
    }
    api
}

fn header_abi_version(raw: &str) -> Option<String> {
    raw.lines().map(str::trim).find_map(|l| l.strip_prefix("#define M3_ABI_VERSION")).map(|v| v.trim().to_string())
}

// --- Rust declarations ------------------------------------------------------------------

fn strip_rust_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits "a: T, b: U" at top-level commas (callback types contain parentheses).
fn split_top_level(list: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in list.chars() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' if !current.ends_with('-') => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

fn rust_parameters(list: &str) -> Vec<String> {
    split_top_level(list)
        .iter()
        .map(|p| {
            let (_, ty) = p.split_once(':').unwrap_or_else(|| panic!("parameter without a type: {p}"));
            canonical_rust_type(ty)
        })
        .collect()
}

/// "(params) -> ret" after a function name.
fn rust_signature(after_name: &str) -> Signature {
    let open = after_name.find('(').expect("fn without '('");
    let mut depth = 0;
    let mut close = open;
    for (i, c) in after_name.char_indices().skip(open) {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = i;
                    break;
                }
            }
            _ => {}
        }
    }
    let tail = after_name[close + 1..].trim();
    let ret = tail.strip_prefix("->").map(canonical_rust_type).unwrap_or_else(|| "void".to_string());
    Signature { ret, params: rust_parameters(&after_name[open + 1..close]) }
}

fn parse_rust(text: &str) -> Api {
    let text = strip_rust_comments(text);
    let mut api = Api::default();

    let block_start = text.find("extern \"C\" {").expect("no extern \"C\" block");
    let block = &text[block_start + "extern \"C\" {".len()..];
    let block = &block[..block.find('}').expect("unterminated extern block")];
    for item in block.split(';') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let after = item.strip_prefix("pub fn").unwrap_or_else(|| panic!("unexpected item in extern block: {item}"));
        let open = after.find('(').expect("fn without '('");
        api.functions.insert(after[..open].trim().to_string(), rust_signature(&after[open..]));
    }

    let mut enum_types = Vec::new();
    for statement in text.split(';') {
        let s = statement.split_whitespace().collect::<Vec<_>>().join(" ");
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("pub type ") {
            let (name, value) = rest.split_once('=').expect("type alias without '='");
            let (name, value) = (name.trim(), value.trim());
            if value == "c_int" {
                enum_types.push(name.to_string());
                api.enums.entry(name.to_string()).or_default();
            } else if let Some(fn_pos) = value.find("fn(") {
                let sig = rust_signature(
                    value[fn_pos + 2..].trim_end_matches(|c: char| c == '>' || c == ',' || c.is_whitespace()),
                );
                api.callbacks.insert(name.to_string(), sig);
            }
        } else if let Some(rest) = s.strip_prefix("pub const ") {
            let (lhs, value) = rest.split_once('=').expect("const without '='");
            let (name, ty) = lhs.split_once(':').expect("const without a type");
            let (name, ty, value) = (name.trim().to_string(), ty.trim().to_string(), value.trim().to_string());
            if name == "M3_ABI_VERSION" {
                api.abi_version = Some(value);
            } else {
                api.enums.entry(ty).or_default().push((name, value));
            }
        }
    }
    api
}

// --- comparison -------------------------------------------------------------------------

fn differences(header: &Api, rust: &Api) -> Vec<String> {
    let mut out = Vec::new();
    for (name, sig) in &header.functions {
        match rust.functions.get(name) {
            None => out.push(format!("function {name} is in the header but not declared in Rust")),
            Some(r) if r != sig => out.push(format!("function {name}: header {sig:?}, Rust {r:?}")),
            _ => {}
        }
    }
    for name in rust.functions.keys().filter(|n| !header.functions.contains_key(*n)) {
        out.push(format!("function {name} is declared in Rust but not in the header"));
    }
    for (name, values) in &header.enums {
        match rust.enums.get(name) {
            None => out.push(format!("enum {name} is in the header but not in Rust")),
            Some(r) if r != values => out.push(format!("enum {name}: header {values:?}, Rust {r:?}")),
            _ => {}
        }
    }
    for name in rust.enums.keys().filter(|n| !header.enums.contains_key(*n)) {
        out.push(format!("enum {name} is declared in Rust but not in the header"));
    }
    if header.callbacks != rust.callbacks {
        out.push(format!("callback types: header {:?}, Rust {:?}", header.callbacks, rust.callbacks));
    }
    if header.abi_version != rust.abi_version {
        out.push(format!("M3_ABI_VERSION: header {:?}, Rust {:?}", header.abi_version, rust.abi_version));
    }
    out
}

fn header_path() -> PathBuf {
    match std::env::var_os("MAMBA3RT_HEADER") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../include/mamba3rt.h"),
    }
}

fn read_header() -> String {
    let path = header_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn header_api(raw: &str) -> Api {
    let mut api = parse_header(raw);
    api.abi_version = header_abi_version(raw);
    api
}

const RUST_SOURCE: &str = include_str!("../src/lib.rs");

#[test]
fn rust_declarations_match_the_header() {
    let header = header_api(&read_header());
    let rust = parse_rust(RUST_SOURCE);
    assert!(header.functions.len() >= 58, "parsed only {} functions from the header", header.functions.len());
    assert!(header.enums.len() >= 8, "parsed only {} enums from the header", header.enums.len());
    let diffs = differences(&header, &rust);
    assert!(diffs.is_empty(), "src/lib.rs differs from {}:\n  {}", header_path().display(), diffs.join("\n  "));
}

#[test]
fn the_check_fails_when_the_header_changes() {
    let raw = read_header();
    let rust = parse_rust(RUST_SOURCE);
    let changed = |from: &str, to: &str| -> Vec<String> {
        assert!(raw.contains(from), "test fixture: the header no longer contains {from:?}");
        differences(&header_api(&raw.replacen(from, to, 1)), &rust)
    };
    let mentions = |diffs: &[String], what: &str| diffs.iter().any(|d| d.contains(what));

    // A new function.
    let d = changed(
        "#ifdef __cplusplus\n} /* extern \"C\" */",
        "M3_API m3_status m3_new_function(int32_t x);\n#ifdef __cplusplus\n} /* extern \"C\" */",
    );
    assert!(mentions(&d, "m3_new_function"), "{d:?}");
    // A parameter type change.
    let d = changed("int32_t n_threads", "int64_t n_threads");
    assert!(mentions(&d, "m3_model_params_set_threads"), "{d:?}");
    // Constness of a pointer.
    let d = changed(
        "m3_status m3_session_restore(m3_session* session, const void* blob",
        "m3_status m3_session_restore(m3_session* session, void* blob",
    );
    assert!(mentions(&d, "m3_session_restore"), "{d:?}");
    // A return type change.
    let d = changed("M3_API int64_t m3_live_handles(void)", "M3_API int32_t m3_live_handles(void)");
    assert!(mentions(&d, "m3_live_handles"), "{d:?}");
    // A new enum value, and a changed one.
    let d = changed("M3_FINISH_CANCELLED = 5", "M3_FINISH_CANCELLED = 5,\n  M3_FINISH_NEW = 6");
    assert!(mentions(&d, "m3_finish_reason"), "{d:?}");
    let d = changed("M3_ERR_INTERNAL = 10", "M3_ERR_INTERNAL = 11");
    assert!(mentions(&d, "m3_status"), "{d:?}");
    // The callback type.
    let d = changed(
        "int32_t token, const char* piece, size_t piece_len",
        "int32_t token, const char* piece, int piece_len",
    );
    assert!(mentions(&d, "callback"), "{d:?}");
    let d = changed("size_t piece_len,\n                                  m3_finish_reason finish", "size_t piece_len");
    assert!(mentions(&d, "m3_stream_callback"), "{d:?}");
    // A new value of the engine's statistics.
    let d = changed("M3_ENGINE_LAST_BATCH = 7", "M3_ENGINE_LAST_BATCH = 7,\n  M3_ENGINE_NEW = 8");
    assert!(mentions(&d, "m3_engine_stat_key"), "{d:?}");
    // The ABI version.
    let d = changed("#define M3_ABI_VERSION 1", "#define M3_ABI_VERSION 2");
    assert!(mentions(&d, "M3_ABI_VERSION"), "{d:?}");
    // A removed function.
    let d = changed("M3_API m3_status m3_generation_cancel(m3_generation* generation);", "");
    assert!(mentions(&d, "m3_generation_cancel"), "{d:?}");
}

#[test]
fn canonical_types_agree_between_the_languages() {
    let pairs = [
        ("const char*", "*const c_char"),
        ("m3_session* const*", "*const *mut m3_session"),
        ("const m3_tokenizer**", "*mut *const m3_tokenizer"),
        ("m3_model**", "*mut *mut m3_model"),
        ("const void*", "*const c_void"),
        ("size_t*", "*mut usize"),
        ("uint64_t", "u64"),
    ];
    for (c, r) in pairs {
        assert_eq!(canonical_c_type(c), canonical_rust_type(r), "{c} vs {r}");
    }
    assert_ne!(canonical_c_type("const char*"), canonical_rust_type("*mut c_char"));
}
