#!/usr/bin/env bash
# The GPU benchmark suite of docs/BENCHMARKS.md, run on a machine with an NVIDIA GPU, on the
# CUDA backend (BACKEND=vulkan: the same points on the Vulkan backend, for the comparison):
# the GPU's ceilings (bench/gpu_probe.py: copy bandwidth, bf16 matrix rate), then with random
# weights in bf16: batch-1 decode of the published SISO configs against the HBM roofline,
# decode throughput at batch 1..512 (1.5B), and prefill of 512..32k tokens (1.5B).
#
# usage: bench/cuda_suite.sh [OUT.jsonl]
# environment: BACKEND=cuda  MAMBA3RT=build/mamba3rt  CONFIGS="187m 443m 893m 1.5b"  BATCHES="1 8 64 256 512"
#              PREFILLS="512 2048 8192 16384 32768"  TMP=/tmp (random models are written there)
# Each line of OUT is a JSON object: {"kind": "gpu", ...} first, then {"kind": "bench",
# "suite": "decode"|"batch"|"prefill", "config": ..., "result": <mamba3rt bench --json>}.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MAMBA3RT:-build/mamba3rt}
backend=${BACKEND:-cuda}
out=${1:-bench/results/cuda_$(date -u +%Y%m%d-%H%M%S).jsonl}
configs=${CONFIGS:-187m 443m 893m 1.5b}
batches=${BATCHES:-1 8 64 256 512}
prefills=${PREFILLS:-512 2048 8192 16384 32768}
tmp=${TMP:-/tmp}
mkdir -p "$(dirname "$out")"

probe=$(python3 bench/gpu_probe.py)
echo "$probe" | sed 's/^{/{"kind": "gpu", /' > "$out"
bw=$(echo "$probe" | python3 -c 'import json,sys; print(json.load(sys.stdin)["copy_gbs"])')
peak=$(echo "$probe" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bf16_tflops"] * 1000)')
echo "cuda_suite: $probe" >&2

run() {  # suite config args...
  local suite=$1 config=$2
  shift 2
  local result
  if result=$("$bin" bench --backend "$backend" --mem-bw "$bw" --fma-peak "$peak" --quiet --json "$@"); then
    printf '{"kind": "bench", "suite": "%s", "config": "%s", "result": %s}\n' "$suite" "$config" "$result" >> "$out"
  else
    printf '{"kind": "error", "suite": "%s", "config": "%s", "args": "%s"}\n' "$suite" "$config" "$*" >> "$out"
  fi
}

for c in $configs; do
  model="$tmp/m3bench-$c"
  echo "== decode $c" >&2
  run decode "$c" --config "bench/configs/mamba3-siso-$c.json" --dtype bf16 --keep-model "$model" --prompt 512 --gen 128 --reps 3
done
big="$tmp/m3bench-1.5b"
[ -d "$big" ] || "$bin" bench --config bench/configs/mamba3-siso-1.5b.json --dtype bf16 --keep-model "$big" \
  --backend "$backend" --mem-bw "$bw" --fma-peak "$peak" --prompt 1 --gen 1 --quiet --json > /dev/null
for b in $batches; do
  echo "== batch $b (1.5b)" >&2
  run batch 1.5b --model "$big" --batch "$b" --prompt 16 --gen 64
done
for p in $prefills; do
  echo "== prefill $p (1.5b)" >&2
  run prefill 1.5b --model "$big" --prompt "$p" --gen 1 --reps 3
done
echo "cuda_suite: wrote $out" >&2
