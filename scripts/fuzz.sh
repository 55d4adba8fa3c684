#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang into build-fuzz/, gathers seed corpora
# from tests/data into build-fuzz/corpus/<target>/, and runs the targets one after another
# (one process, one core).
#
#   scripts/fuzz.sh smoke [TARGET...]           about 20 s per target (CI)
#   scripts/fuzz.sh budget [TARGET...]          up to 10M runs or 30 min per target
#   scripts/fuzz.sh run SECONDS [TARGET...]     any time per target
#   scripts/fuzz.sh build                       configure, build and gather corpora only
#
# Prints executions, exec/s and time per target at the end, and exits 1 when any target
# reports a crash, leak, timeout, out-of-memory or sanitizer error. Its input is saved to
# build-fuzz/artifacts/<target>/; minimize it (fuzz_<target> -minimize_crash=1 -runs=100000 FILE),
# fix the parser and keep the minimized input in tests/data/fuzz/<target>/ as a regression case.
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_BUILD_JOBS (ninja -j, default 1),
# CC/CXX (default clang/clang++).
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(safetensors model_config pytorch_checkpoint pickle_state_dict tokenizer_json tokenizer_encode
  state_blob completion_request)
build=${FUZZ_BUILD_DIR:-build-fuzz}

mode=${1:-smoke}
[ $# -gt 0 ] && shift
case "$mode" in
  smoke) limits=(-max_total_time=20) ;;
  budget) limits=(-runs=10000000 -max_total_time=1800) ;;
  run)
    [ $# -gt 0 ] || { echo "usage: $0 run SECONDS [TARGET...]" >&2; exit 2; }
    limits=(-max_total_time="$1")
    shift ;;
  build) limits=() ;;
  *) echo "usage: $0 smoke|budget|run SECONDS|build [TARGET...]" >&2; exit 2 ;;
esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")

# --- build ---------------------------------------------------------------------------------
# Vulkan and CUDA backends are left out: nothing fuzzed here reaches them.
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAMBA3RT_FUZZ=ON -DMAMBA3RT_BUILD_TESTS=OFF -DMAMBA3RT_VULKAN=OFF -DMAMBA3RT_CUDA=OFF >/dev/null
cmake --build "$build" -j "${FUZZ_BUILD_JOBS:-1}" --target fuzz_targets

# --- seed corpora --------------------------------------------------------------------------
corpus=$build/corpus
seed() {  # seed TARGET NAME: stdin becomes the seed file
  cat >"$corpus/$1/$2"
}
# A safetensors file cut after its header and a little data (the golden files are 50 KB-1 MB).
safetensors_head() {
  local n
  n=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  head -c $((8 + n + 256)) "$1"
}
# The data.pkl entry of a torch.save() archive.
data_pkl() {
  python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
sys.stdout.buffer.write(z.read(next(n for n in z.namelist() if n.endswith("/data.pkl"))))' "$1"
}

for t in "${targets_all[@]}"; do
  mkdir -p "$corpus/$t"
  cp tests/data/fuzz/"$t"/* "$corpus/$t/"
done
for f in tests/data/golden/*/*.safetensors models/*/model.safetensors; do
  safetensors_head "$f" | seed safetensors "head_$(basename "$(dirname "$f")")_$(basename "$f")"
done
for f in tests/data/golden/*/config.json models/*/config.json; do
  cp "$f" "$corpus/model_config/$(basename "$(dirname "$f")").json"
done
for f in tests/data/pickle/*.bin tests/data/golden/*/pytorch_model.bin; do
  data_pkl "$f" | seed pickle_state_dict "$(basename "$(dirname "$f")")_$(basename "$f").pkl"
done
cp tests/data/pickle/*.bin "$corpus/pytorch_checkpoint/"
cp tests/data/tokenizers/*.json "$corpus/tokenizer_json/"
# Text from the bundled model's held-out sample, for each tokenizer and mode (first byte).
for encode_mode in 0 1 2 5 6; do
  { printf "\\x$encode_mode"; head -c 2000 models/brown-mimo-6m/heldout_sample.txt; } |
    seed tokenizer_encode "heldout_mode$encode_mode"
done

# Dictionaries: several -dict flags are not supported, so each target gets one file.
dicts=$build/dicts
mkdir -p "$dicts"
for t in "${targets_all[@]}"; do
  case "$t" in
    safetensors | model_config | tokenizer_json | completion_request)
      cat tests/fuzz/dicts/json.dict "tests/fuzz/dicts/$t.dict" >"$dicts/$t.dict" ;;
    pytorch_checkpoint)
      cat tests/fuzz/dicts/pytorch_checkpoint.dict tests/fuzz/dicts/pickle_state_dict.dict >"$dicts/$t.dict" ;;
    *) cp "tests/fuzz/dicts/$t.dict" "$dicts/$t.dict" ;;
  esac
done
[ "$mode" = build ] && exit 0

# --- run -----------------------------------------------------------------------------------
# Largest input per target: room for the seeds that matter, small enough to stay fast.
max_len() {
  case "$1" in
    tokenizer_json) echo 16384 ;;
    safetensors | pytorch_checkpoint) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

# Any sanitizer report is fatal (the build also uses -fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

logs=$build/logs
mkdir -p "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: unknown target '$t' (have: ${targets_all[*]})" >&2; exit 2; }
  mkdir -p "$build/artifacts/$t"
  echo "=== fuzz_$t (${limits[*]})"
  status=0
  "$bin" "$corpus/$t" "${limits[@]}" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -dict="$dicts/$t.dict" -print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
    >"$logs/$t.log" 2>&1 || status=$?
  tail -n 25 "$logs/$t.log"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -n 1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$logs/$t.log" | tail -n 1)
  result=ok
  if [ "$status" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|runtime error:|fuzz invariant failed' "$logs/$t.log"; then
    result="FAILED (exit $status; log $logs/$t.log, input in $build/artifacts/$t/)"
    failed=1
  fi
  summary+=("$(printf '%-20s %12s runs %8s exec/s %6s s  %s' "$t" "${runs:-?}" "${speed:-?}" "${secs:-?}" "$result")")
done

echo
echo "=== summary (${limits[*]})"
printf '%s\n' "${summary[@]}"
exit "$failed"
