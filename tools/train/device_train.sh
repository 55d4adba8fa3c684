#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root:
#   tools/train/device_train.sh DATA_DIR OUT_DIR MINUTES_PER_MODEL
# Checks the PyTorch model against the golden cases, trains the tokenizer, trains the SISO and
# the MIMO config for the same time, and copies the better one (lower held-out loss) to OUT_DIR.
set -euo pipefail
data=$1 out=$2 minutes=$3
work=$(mktemp -d)
mkdir -p "$out"
cd "$(dirname "$0")"
python3 check_golden.py 2>&1 | tail -8
python3 train_tokenizer.py "$data/train.txt" 4096 "$work/tokenizer.json"
for name in siso_6m mimo_r2_6m; do
  python3 train.py --data "$data" --tokenizer "$work/tokenizer.json" --config "configs/$name.json" \
    --out "$work/$name" --minutes "$minutes" 2>&1 | tee "$work/$name.log" | grep -E "parameters|step [0-9]*000 |heldout_loss"
done
best=$(python3 - "$work" <<'PY'
import json, sys
runs = {n: json.load(open(f"{sys.argv[1]}/{n}/train_report.json")) for n in ("siso_6m", "mimo_r2_6m")}
print(min(runs, key=lambda n: runs[n]["heldout_loss"]))
PY
)
echo "best: $best"
cp "$work/$best"/{config.json,model.safetensors,tokenizer.json,train_report.json} "$out/"
cat "$work/siso_6m.log" "$work/mimo_r2_6m.log" > "$out/train_log.txt"
# A small held-out sample ships with the model; its reference perplexity is what the runtime must reproduce.
python3 - "$data/heldout.txt" "$out/heldout_sample.txt" <<'PY'
import sys
doc = open(sys.argv[1], encoding="utf-8").read().split("\n\n")[0]
open(sys.argv[2], "w", encoding="utf-8").write(doc + "\n")
PY
python3 eval_perplexity.py "$out" "$out/heldout_sample.txt" "$out/heldout_eval.json"
python3 - "$work" > "$out/comparison.json" <<'PY'
import json, sys
print(json.dumps({n: json.load(open(f"{sys.argv[1]}/{n}/train_report.json")) for n in ("siso_6m", "mimo_r2_6m")}, indent=2))
PY
