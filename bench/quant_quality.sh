#!/bin/sh
# Quality of each weight type (docs/QUANTIZATION.md): converts a model with
# `mamba3rt quantize` to f32, bf16, f16, int8 and q4, then measures against the f32 copy
#   - the logits of the first N positions of a text (max abs error, rel-L2, top-1 agreement,
#     mean KL(f32 || type) of the next-token distributions),
#   - the perplexity of the whole text (`mamba3rt perplexity`).
# Needs only the built CLI and python3 (standard library).
#
# usage: bench/quant_quality.sh [CLI] [MODEL_DIR] [TEXT_FILE] [POSITIONS]
#   defaults: build/mamba3rt, models/brown-mimo-6m, MODEL_DIR/heldout_sample.txt, 512
# environment: TYPES="f32 bf16 f16 int8 q4" (f32 is always measured, as the baseline),
#   EXTRA="name:opt,opt,... ..." more variants, quantize options comma-separated, e.g.
#   EXTRA="q4-emb-q4:--type,q4,--embedding-type,q4",
#   BACKEND=cpu (or cpu-reference), KEEP=DIR to keep the converted models there,
#   PPL_EXTRA=FILE also the perplexity of a second, longer text (e.g. data/brown/heldout.txt,
#   the whole held-out split that tools/train/prepare_brown.py writes).
set -eu
CLI=${1:-build/mamba3rt}
MODEL=${2:-models/brown-mimo-6m}
TEXT=${3:-$MODEL/heldout_sample.txt}
POSITIONS=${4:-512}
TYPES=${TYPES:-"f32 bf16 f16 int8 q4"}
EXTRA=${EXTRA:-}
BACKEND=${BACKEND:-cpu}
PPL_EXTRA=${PPL_EXTRA:-}
if [ -n "${KEEP:-}" ]; then WORK=$KEEP; mkdir -p "$WORK"; else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi

exec python3 - "$CLI" "$MODEL" "$TEXT" "$POSITIONS" "$WORK" "$BACKEND" "$TYPES" "$EXTRA" "$PPL_EXTRA" <<'PY'
import json, math, os, struct, subprocess, sys
from array import array

cli, model, text, positions, work, backend, types, extra, ppl_extra = sys.argv[1:]
positions = int(positions)

def run(args):
    r = subprocess.run([cli] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("failed: %s %s\n%s" % (cli, " ".join(args), r.stderr))
    return r.stdout

def read_f32(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        info = header[name]
        begin, end = info["data_offsets"]
        f.seek(8 + n + begin)
        a = array("f")
        a.frombytes(f.read(end - begin))
        return info["shape"], a

def write_tokens(path, ids):
    data = array("i", ids).tobytes()
    header = json.dumps({"tokens": {"dtype": "I32", "shape": [1, len(ids)], "data_offsets": [0, len(data)]}})
    header += " " * ((8 - (len(header) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header.encode() + data)

# The token stream `mamba3rt perplexity` scores: <|endoftext|> (when the tokenizer has it), then the text.
ids = [int(x) for x in run(["tokenize", "--model", model, "--file", text]).split()]
eot = run(["tokenize", "--model", model, "--text", "<|endoftext|>", "--special"]).split()
if len(eot) == 1:
    ids = [int(eot[0])] + ids
ids = ids[:positions]
tokens = os.path.join(work, "tokens.safetensors")
write_tokens(tokens, ids)
vocab = json.load(open(os.path.join(model, "config.json")))["vocab_size"]

variants = [(t, ["--type", t]) for t in ["f32"] + [t for t in types.split() if t != "f32"]]
for item in extra.split():
    name, opts = item.split(":", 1)
    variants.append((name, opts.split(",")))

def variant_dir(name):
    return os.path.join(work, name)

rows = []
base = None
for name, opts in variants:
    d = variant_dir(name)
    run(["quantize", "--model", model, "--out", d, "--force"] + opts)
    out = os.path.join(work, "logits_%s.safetensors" % name)
    run(["logits", "--model", d, "--tokens", tokens, "--out", out, "--backend", backend])
    shape, logits = read_f32(out, "logits")
    ppl = json.loads(run(["perplexity", "--model", d, "--file", text, "--json", "--backend", backend]))
    if ppl_extra:
        more = json.loads(run(["perplexity", "--model", d, "--file", ppl_extra, "--json", "--backend", backend]))
    size = os.path.getsize(os.path.join(d, "model.safetensors"))
    vpad = shape[2]
    row = {"type": name, "options": " ".join(opts), "file_bytes": size, "perplexity": ppl["perplexity"],
           "loss": ppl["loss"], "tokens": ppl["tokens"], "positions": len(ids)}
    if ppl_extra:
        row.update(extra_perplexity=more["perplexity"], extra_tokens=more["tokens"])
    if base is None:
        base = logits
    else:
        max_abs = 0.0; diff2 = 0.0; ref2 = 0.0; agree = 0; kl = 0.0
        for p in range(len(ids)):
            a = logits[p * vpad:p * vpad + vocab]
            b = base[p * vpad:p * vpad + vocab]
            ma = max(a); mb = max(b)
            la = ma + math.log(sum(math.exp(x - ma) for x in a))
            lb = mb + math.log(sum(math.exp(x - mb) for x in b))
            k = 0.0
            for x, y in zip(a, b):
                d = x - y
                diff2 += d * d; ref2 += y * y
                if abs(d) > max_abs: max_abs = abs(d)
                k += math.exp(y - lb) * ((y - lb) - (x - la))
            kl += k
            agree += a.index(ma) == b.index(mb)
        row.update(max_abs=max_abs, rel_l2=math.sqrt(diff2 / ref2), top1=agree / len(ids), kl=kl / len(ids))
    rows.append(row)

json.dump(rows, open(os.path.join(work, "quant_quality.json"), "w"), indent=1)
base_ppl = rows[0]["perplexity"]
extra_head = extra_rule = ""
if ppl_extra:
    extra_head = " perplexity (%s) | vs f32 |" % os.path.basename(ppl_extra)
    extra_rule = "---:|---:|"
print("| type | quantize options | model.safetensors | logits max abs err | logits rel-L2 | top-1 agree | mean KL (nats) "
      "| perplexity (%s) | vs f32 |%s" % (os.path.basename(text), extra_head))
print("|---|---|---:|---:|---:|---:|---:|---:|---:|" + extra_rule)
for r in rows:
    if r["type"] == "f32":
        errs = "— | — | — | —"
    else:
        errs = "%.3g | %.3g | %.1f%% | %.3g" % (r["max_abs"], r["rel_l2"], 100 * r["top1"], r["kl"])
    line = "| %s | `%s` | %.2f MB | %s | %.3f | %+.2f%% |" % (r["type"], r["options"], r["file_bytes"] / 1e6, errs,
                                                          r["perplexity"], 100 * (r["perplexity"] / base_ppl - 1))
    if ppl_extra:
        line += " %.3f | %+.2f%% |" % (r["extra_perplexity"], 100 * (r["extra_perplexity"] / rows[0]["extra_perplexity"] - 1))
    print(line)
print("\n(logits over the first %d positions of %s; perplexity over all %d predicted tokens%s; backend %s)" %
      (len(ids), os.path.basename(text), rows[0]["tokens"],
       " and %d of %s" % (rows[0]["extra_tokens"], os.path.basename(ppl_extra)) if ppl_extra else "", backend))
PY
