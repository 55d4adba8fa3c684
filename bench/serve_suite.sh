#!/usr/bin/env bash
# The server load test of docs/BENCHMARKS.md on a GPU: `mamba3rt serve` on a random bf16
# model of a published config, loaded by bench/load_test.py at 1, 16 and 64 concurrent
# streaming clients (token-id prompts: random models have no tokenizer).
#
# usage: bench/serve_suite.sh [OUT.jsonl]
# environment: MAMBA3RT=build/mamba3rt  BACKEND=cuda  CONFIG=1.5b  CLIENTS=1,16,64  SECONDS_PER_LEVEL=15
#              MAX_TOKENS=128  PROMPT_TOKENS=32  TMP=/tmp (the random model is written there)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${MAMBA3RT:-build/mamba3rt}
backend=${BACKEND:-cuda}
config=${CONFIG:-1.5b}
out=${1:-bench/results/serve_${backend}_$(date -u +%Y%m%d-%H%M%S).jsonl}
model="${TMP:-/tmp}/m3bench-$config"
mkdir -p "$(dirname "$out")"
[ -d "$model" ] || "$bin" bench --config "bench/configs/mamba3-siso-$config.json" --dtype bf16 --keep-model "$model" \
  --backend "$backend" --prompt 1 --gen 1 --quiet --json > /dev/null
vocab=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$model/config.json")
device=$("$bin" info --model "$model" --backend "$backend" | sed -n 's/^device: *//p' | head -1)
python3 bench/load_test.py --mamba3rt "$bin" --model "$model" --backend "$backend" --vocab "$vocab" \
  --clients "${CLIENTS:-1,16,64}" --seconds "${SECONDS_PER_LEVEL:-15}" --max-tokens "${MAX_TOKENS:-128}" \
  --prompt-tokens "${PROMPT_TOKENS:-32}" --label "$config bf16 on $backend ${device}" --json "$out"
echo "serve_suite: wrote $out" >&2
