#!/usr/bin/env bash
# Cross-language check: each binding's stream example (Rust `examples/stream.rs`, Go
# `cmd/stream`, C# `Stream.exe`) must print exactly the bytes that
# `mamba3rt generate --greedy --prompt PROMPT -n N` prints on stdout, for several prompts and N.
# The CLI is the independent reference: it uses the C API directly.
#
# Ends with "N passed, M failed"; exits 1 if any comparison failed, 77 (skipped) if a toolchain
# is missing and everything that could run passed (a failure with BINDINGS_REQUIRE=1).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
set +e

work="$BINDINGS_WORK/cross"
rm -rf "$work"
mkdir -p "$work"
passed=0
failed=0
missing=()
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/      /'; }

# --- build the three examples (cheap when the suites already built them) -----------------------
declare -A runner=()
if command -v cargo > /dev/null 2>&1; then
  if (cd "$bindings/rust" && cargo build --offline --locked --quiet -p mamba3rt --example stream) > "$work/rust-build.log" 2>&1; then
    runner[rust]="$CARGO_TARGET_DIR/debug/examples/stream"
  else
    fail "rust: build examples/stream.rs" "$(tail -n 20 "$work/rust-build.log")"
  fi
else
  missing+=("cargo (rust)")
fi
if command -v go > /dev/null 2>&1; then
  if (cd "$bindings/go" && go build -o "$work/go-stream" ./cmd/stream) > "$work/go-build.log" 2>&1; then
    runner[go]="$work/go-stream"
  else
    fail "go: build cmd/stream" "$(tail -n 20 "$work/go-build.log")"
  fi
else
  missing+=("go")
fi
if command -v mcs > /dev/null 2>&1 && command -v mono > /dev/null 2>&1; then
  if build_csharp "$work/csharp" > "$work/csharp-build.log" 2>&1; then
    runner[csharp]="mono $work/csharp/Stream.exe"
  else
    fail "csharp: build Stream.exe" "$(tail -n 20 "$work/csharp-build.log")"
  fi
else
  missing+=("mcs/mono (csharp)")
fi

# --- cases -------------------------------------------------------------------------------------
long_prompt="It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of Darkness, it was the spring of hope, it was the winter of despair."
prompts=(
  "The president said that"
  "The president said that"
  "The president said that"
  "The president said that"
  "Über die café naïve — “quoted” 東京 ✓"
  "$long_prompt"
  "  Hello,
world "
  "Q"
)
counts=(20 0 1 150 25 30 12 40)

# run NAME OUTFILE ARGS...: stdout to OUTFILE, stderr to OUTFILE.err, exit status to OUTFILE.rc.
run() {
  local out="$1"; shift
  timeout 300 "$@" > "$out" 2> "$out.err"
  echo $? > "$out.rc"
}

describe() {  # PROMPT N -> a short label: "prompt" -n N
  local p="${1:0:40}"
  p="${p//$'\n'/\\n}"
  printf '"%s" -n %s' "$p" "$2"
}

for i in "${!prompts[@]}"; do
  prompt="${prompts[$i]}"
  n="${counts[$i]}"
  expected="$work/case$i.cli"
  run "$expected" "$MAMBA3RT_CLI" generate --greedy --prompt "$prompt" -n "$n"
  if [ "$(cat "$expected.rc")" != 0 ]; then
    fail "cli: case $i ($(describe "$prompt" "$n")) exited $(cat "$expected.rc")" "$(head -c 600 "$expected.err")"
    continue
  fi
  if [ "$n" -gt 0 ] && [ ! -s "$expected" ]; then
    fail "cli: case $i ($(describe "$prompt" "$n")) printed nothing; the comparison would be vacuous"
    continue
  fi
  for lang in rust go csharp; do
    [ -n "${runner[$lang]:-}" ] || continue
    got="$work/case$i.$lang"
    # shellcheck disable=SC2086 # the C# runner is "mono PATH"
    run "$got" ${runner[$lang]} "$prompt" "$n"
    label="$lang: case $i ($(describe "$prompt" "$n"), $(wc -c < "$expected") bytes)"
    if [ "$(cat "$got.rc")" != 0 ]; then
      fail "$label: exited $(cat "$got.rc")" "$(head -c 600 "$got.err")"
    elif cmp -s "$expected" "$got"; then
      pass "$label"
    else
      fail "$label: output differs" "$(cmp "$expected" "$got" 2>&1 | head -n 1)
cli:     $(head -c 200 "$expected" | od -c | head -n 3)
binding: $(head -c 200 "$got" | od -c | head -n 3)"
    fi
  done
done

# --- the bundled model found without MAMBA3RT_MODEL, from the repository root ----------------------
reference="$work/case0.cli"
for lang in rust go csharp; do
  [ -n "${runner[$lang]:-}" ] || continue
  got="$work/default-model.$lang"
  # shellcheck disable=SC2086
  (cd "$repo" && env -u MAMBA3RT_MODEL timeout 300 ${runner[$lang]} "${prompts[0]}" "${counts[0]}" > "$got" 2> "$got.err")
  if [ -s "$reference" ] && cmp -s "$reference" "$got"; then
    pass "$lang: the bundled model without MAMBA3RT_MODEL"
  else
    fail "$lang: the bundled model without MAMBA3RT_MODEL" "$(head -c 300 "$got.err")"
  fi
done

# --- a bad N: an error exit and nothing on stdout, like the CLI --------------------------------
run "$work/bad.cli" "$MAMBA3RT_CLI" generate --greedy --prompt "x" -n "-3"
for lang in rust go csharp; do
  [ -n "${runner[$lang]:-}" ] || continue
  got="$work/bad.$lang"
  # shellcheck disable=SC2086
  run "$got" ${runner[$lang]} "x" "-3"
  if [ "$(cat "$got.rc")" != 0 ] && [ ! -s "$got" ] && [ -s "$got.err" ] && [ "$(cat "$work/bad.cli.rc")" != 0 ]; then
    pass "$lang: N = -3 is rejected (exit $(cat "$got.rc"), cli exit $(cat "$work/bad.cli.rc"))"
  else
    fail "$lang: N = -3 should fail with a message and no output (exit $(cat "$got.rc"), cli exit $(cat "$work/bad.cli.rc"))" \
      "$(head -c 300 "$got")"
  fi
done

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
[ ${#missing[@]} -eq 0 ] || skip "toolchains missing: ${missing[*]} (the available bindings passed)"
exit 0
