#!/usr/bin/env python3
"""Train a small Mamba-3 language model on a text corpus and export it for mamba3rt.

Usage: tools/train/train.py --data DIR --tokenizer TOKENIZER_JSON --config CONFIG_JSON --out DIR
                            [--minutes M] [--batch B] [--seq L] [--lr LR] [--seed S]

DIR holds train.txt and heldout.txt (documents separated by blank lines). Documents are
encoded, joined with <|endoftext|> and cut into random windows of L tokens. AdamW, warmup then
cosine decay over the time budget, bf16 autocast on CUDA. The held-out loss is measured every
few hundred steps and the best weights are kept. Writes OUT/config.json, OUT/model.safetensors
(F16 matrices, F32 small parameters), OUT/tokenizer.json and OUT/train_report.json.
"""
import argparse
import json
import math
import os
import shutil
import time

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from mamba3_model import Mamba3Config, Mamba3LM, save_safetensors

EOT = "<|endoftext|>"


def encode_corpus(tok, path):
    eot = tok.token_to_id(EOT)
    with open(path, encoding="utf-8") as f:
        docs = [d for d in f.read().split("\n\n") if d.strip()]
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.append(eot)
        ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.long)


def batches(data, batch, seq, gen, device):
    while True:
        starts = torch.randint(0, len(data) - seq - 1, (batch,), generator=gen)
        x = torch.stack([data[s:s + seq + 1] for s in starts]).to(device, non_blocking=True)
        yield x[:, :-1], x[:, 1:]


@torch.no_grad()
def heldout_loss(model, data, seq, device, max_windows=64):
    model.eval()
    n = min(max_windows, (len(data) - 1) // seq)
    total, count = 0.0, 0
    for i in range(0, n, 16):
        idx = range(i, min(n, i + 16))
        x = torch.stack([data[j * seq:(j + 1) * seq + 1] for j in idx]).to(device)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x[:, :-1])
        total += F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten(), reduction="sum").item()
        count += x[:, 1:].numel()
    model.train()
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tok = Tokenizer.from_file(args.tokenizer)
    with open(args.config) as f:
        cfg_json = json.load(f)
    cfg_json["vocab_size"] = tok.get_vocab_size()
    train = encode_corpus(tok, os.path.join(args.data, "train.txt"))
    held = encode_corpus(tok, os.path.join(args.data, "heldout.txt"))
    print(f"train {len(train)} tokens, held-out {len(held)} tokens, vocab {tok.get_vocab_size()}", flush=True)

    model = Mamba3LM(Mamba3Config.from_dict(cfg_json)).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)
    # Weight decay on the matrices only; the per-head parameters (biases, D, mimo_*) are exempt.
    small = ("dt_bias", "B_bias", "C_bias", "mixer.D", "mimo_")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not any(k in n for k in small)]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2 or any(k in n for k in small)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    if device.type == "cuda" and hasattr(model, "compile_blocks"):
        print(f"compiled blocks: {model.compile_blocks()}", flush=True)  # keeps state_dict names
    gen = torch.Generator().manual_seed(args.seed)
    stream = batches(train, args.batch, args.seq, gen, device)

    budget = args.minutes * 60
    warmup = 200
    start = time.time()
    best = (float("inf"), None, 0)
    step, tokens = 0, 0
    while True:
        elapsed = time.time() - start
        if elapsed > budget:
            break
        frac = min(1.0, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = next(stream)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(x)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        if step % 200 == 0:
            hl = heldout_loss(model, held, args.seq, device)
            print(f"step {step} {elapsed:.0f}s lr {lr:.2e} train {loss.item():.3f} held-out {hl:.3f} "
                  f"({tokens / max(elapsed, 1e-9):.0f} tok/s)", flush=True)
            if hl < best[0]:
                best = (hl, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
    hl = heldout_loss(model, held, args.seq, device)
    if hl < best[0]:
        best = (hl, {k: v.detach().clone() for k, v in model.state_dict().items()}, step)
    model.load_state_dict(best[1])

    # Unigram baseline on the held-out tokens, with add-one smoothing from the training counts.
    counts = torch.bincount(train, minlength=tok.get_vocab_size()).double() + 1
    logp = torch.log(counts / counts.sum())
    unigram = -logp[held[1:]].mean().item()

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg_json, f, indent=2)
    save_safetensors(model, os.path.join(args.out, "model.safetensors"), torch.float16)
    shutil.copy(args.tokenizer, os.path.join(args.out, "tokenizer.json"))
    report = {"parameters": n_params, "steps": step, "best_step": best[2], "tokens_seen": tokens,
              "train_seconds": round(time.time() - start, 1), "heldout_loss": best[0],
              "heldout_ppl": math.exp(best[0]), "unigram_loss": unigram, "unigram_ppl": math.exp(unigram),
              "train_tokens": len(train), "heldout_tokens": len(held), "batch": args.batch, "seq": args.seq,
              "lr": args.lr, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "torch": torch.__version__}
    with open(os.path.join(args.out, "train_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
