#!/usr/bin/env bash
# The CPU benchmark suite of docs/BENCHMARKS.md: the published Mamba-3 SISO configs
# (random weights) x weight types, prefill of 512 tokens and batch-1 decode, on 2 threads,
# plus the constant-memory check (RSS while decoding 100k tokens).
#
# usage: bench/cpu_suite.sh [OUT.jsonl]
#   default OUT: bench/results/cpu_<date>-<time>.jsonl (stderr of the runs: same name, .log)
# environment (all optional):
#   MAMBA3RT=build/mamba3rt  THREADS=2  CONFIGS="187m 443m 893m 1.5b"  DTYPES="bf16 f16 int8 q4"
#   F32_CONFIGS="187m" (f32 runs, slow and 4 bytes/param: only the small configs)
#   PROMPT=512  QUICK=1 (fewer steps and reps)
#   RSS_TOKENS=100000 (0 skips the RSS check)  RSS_MODEL=<dir> (default: bench/configs/tiny.json,
#     random weights: a few seconds; the bundled models/default takes minutes)
#   CONFIGS= (empty) runs only the RSS check
# It prints the tables at the end; bench/report_cpu.py OUT.jsonl --doc docs/BENCHMARKS.md puts
# them into the docs and redraws docs/img/cpu_decode.svg (the plot needs python3-matplotlib).
#
# Each line of OUT is one JSON object: first {"kind": "machine", ...} (CPU, commit, load),
# then {"kind": "bench", "config": ..., "loadavg_before": ..., "result": <mamba3rt bench --json>}
# or {"kind": "error", ...} for a run that failed. The machine is shared: the load average
# around each run is recorded so that disturbed runs can be spotted and rerun.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
MAMBA3RT=${MAMBA3RT:-$root/build/mamba3rt}
THREADS=${THREADS:-2}
CONFIGS=${CONFIGS-"187m 443m 893m 1.5b"}
DTYPES=${DTYPES-"bf16 f16 int8 q4"}
F32_CONFIGS=${F32_CONFIGS-"187m"}
PROMPT=${PROMPT:-512}
RSS_TOKENS=${RSS_TOKENS:-100000}
RSS_MODEL=${RSS_MODEL:-}
QUICK=${QUICK:-0}

stamp=$(date +%Y%m%d-%H%M%S)
out=${1:-$here/results/cpu_$stamp.jsonl}
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
log=${out%.jsonl}.log
case $MAMBA3RT in /*) ;; *) MAMBA3RT=$PWD/$MAMBA3RT ;; esac
case $RSS_MODEL in /* | "") ;; *) RSS_MODEL=$PWD/$RSS_MODEL ;; esac
# Paths in the results are relative to the repository (they are committed).
cd "$root"
: > "$out"
: > "$log"

[ -x "$MAMBA3RT" ] || { echo "cpu_suite: $MAMBA3RT not built (cmake --build build)" >&2; exit 1; }
# The results name the commit; a binary older than the tree would make that a lie.
build_current=unknown
if [ -f "$(dirname "$MAMBA3RT")/build.ninja" ] && command -v ninja > /dev/null; then
  pending=$(ninja -C "$(dirname "$MAMBA3RT")" -n mamba3rt_cli 2> /dev/null || true)
  if printf '%s\n' "$pending" | grep -q '^\['; then
    build_current=false
    echo "cpu_suite: warning: $(dirname "$MAMBA3RT") is older than the sources (cmake --build build first)" >&2
  else
    build_current=true
  fi
fi
# Run a snapshot of the binary and its library, so that a rebuild during the suite (the
# tree is shared) cannot mix two versions into one result file.
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
cp "$MAMBA3RT" "$snapshot/mamba3rt"
cp -P "$(dirname "$MAMBA3RT")"/libmamba3rt.so* "$snapshot/" 2> /dev/null || true
export LD_LIBRARY_PATH="$snapshot${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
MAMBA3RT=$snapshot/mamba3rt

# Decode steps and prefill repetitions per config: about the same time for each.
gen_for() { case $1 in 187m) echo 128 ;; 443m) echo 64 ;; 893m) echo 32 ;; *) echo 16 ;; esac; }
reps_for() { case $1 in 187m) echo 2 ;; *) echo 1 ;; esac; }

json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
loadavg() { json_str "$(cut -d' ' -f1-3 /proc/loadavg)"; }
lscpu_field() { lscpu | sed -n "s/^$1:[[:space:]]*//p" | head -n1; }

commit=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain -- backends src CMakeLists.txt 2>/dev/null | awk '{print $2}' | tr '\n' ' ')
avx512=false
grep -qw avx512f /proc/cpuinfo && avx512=true
{
  printf '{"kind": "machine", "date": %s, "commit": %s, "uncommitted": %s, ' \
    "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$(json_str "$commit")" "$(json_str "${dirty% }")"
  printf '"cpu": %s, "cpu_family": %s, "cpu_model": %s, "cores": %s, "l3": %s, "avx512f": %s, ' \
    "$(json_str "$(lscpu_field 'Model name')")" "$(json_str "$(lscpu_field 'CPU family')")" \
    "$(json_str "$(lscpu_field 'Model')")" "$(nproc)" "$(json_str "$(lscpu_field 'L3 cache')")" "$avx512"
  printf '"mem_total_kb": %s, "kernel": %s, "mamba3rt": %s, "build_current": %s, "threads": %s, "loadavg": %s}\n' \
    "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" "$(json_str "$(uname -r)")" \
    "$(json_str "$("$MAMBA3RT" --version)")" "$(json_str "$build_current")" "$THREADS" "$(loadavg)"
} >> "$out"

run() {  # run KIND CONFIG_LABEL ARGS...
  local kind=$1 label=$2
  shift 2
  local before result rc=0 start=$SECONDS
  before=$(loadavg)
  echo "== $label: mamba3rt bench $*" | tee -a "$log" >&2
  result=$("$MAMBA3RT" bench "$@" --threads "$THREADS" --json 2>> "$log") || rc=$?
  if [ $rc -eq 0 ] && [ -n "$result" ]; then
    printf '{"kind": %s, "config": %s, "loadavg_before": %s, "loadavg_after": %s, "wall_s": %s, "result": %s}\n' \
      "$(json_str "$kind")" "$(json_str "$label")" "$before" "$(loadavg)" "$(( SECONDS - start ))" "$result" >> "$out"
  else
    printf '{"kind": "error", "config": %s, "args": %s, "exit_code": %s}\n' \
      "$(json_str "$label")" "$(json_str "$*")" "$rc" >> "$out"
    echo "   failed (exit $rc), see $log" >&2
  fi
}

t0=$SECONDS
for cfg in $CONFIGS; do
  dtypes=$DTYPES
  case " $F32_CONFIGS " in *" $cfg "*) dtypes="f32 $dtypes" ;; esac
  for dtype in $dtypes; do
    gen=$(gen_for "$cfg")
    reps=$(reps_for "$cfg")
    if [ "$QUICK" = 1 ]; then gen=$(( (gen + 3) / 4 )); reps=1; fi
    run bench "$cfg" --config "bench/configs/mamba3-siso-$cfg.json" --dtype "$dtype" \
      --prompt "$PROMPT" --gen "$gen" --reps "$reps" --quiet
  done
done

if [ "$RSS_TOKENS" -gt 0 ]; then
  # Constant memory: RSS at the start and end of decoding RSS_TOKENS tokens (and every 1024).
  # A small model makes a per-token leak of even a few bytes stand out against its RSS.
  if [ -n "$RSS_MODEL" ]; then
    run rss "$(basename "$RSS_MODEL")" --model "$(realpath --relative-to="$root" "$RSS_MODEL")" --prompt 16 \
      --gen "$RSS_TOKENS" --quiet
  else
    run rss tiny --config bench/configs/tiny.json --prompt 16 --gen "$RSS_TOKENS" --quiet
  fi
fi

echo "cpu_suite: $(( SECONDS - t0 )) s, results in $out" >&2
# Debian's python3 (where python3-matplotlib goes), not a python3 of a virtual environment.
if [ -x /usr/bin/python3 ]; then /usr/bin/python3 "$here/report_cpu.py" "$out" --no-plot || true; fi
echo "cpu_suite: to put these into the docs and redraw the plot: bench/report_cpu.py $(realpath --relative-to="$root" "$out") --doc docs/BENCHMARKS.md" >&2
