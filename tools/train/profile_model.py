#!/usr/bin/env python3
"""Profile one training step of Mamba3LM on CUDA (top kernels by CUDA time).

  python3 tools/train/profile_model.py [--batch 32] [--seq 256] [--vocab 8192] [--compile none|mixers|blocks|model] [--no-profile]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mamba3_model import Mamba3Config, Mamba3LM  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--compile", choices=["none", "model", "mixers", "blocks"], default="none")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    cfg = Mamba3Config(d_model=256, n_layer=args.layers, vocab_size=args.vocab,
                       ssm_cfg={"layer": "Mamba3", "d_state": 64, "expand": 2, "headdim": 64})
    model = Mamba3LM(cfg).cuda()
    fwd = torch.compile(model) if args.compile == "model" else model
    if args.compile in ("mixers", "blocks"):
        for layer in model.backbone.layers:
            (layer.mixer if args.compile == "mixers" else layer).compile()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids = torch.randint(0, args.vocab, (args.batch, args.seq + 1), device="cuda")

    def step():
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            logits = fwd(ids[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.time()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    print(f"warm-up (5 steps, includes compilation): {time.time() - t0:.1f} s")
    torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(20):
        step()
    torch.cuda.synchronize()
    dt = (time.time() - t0) / 20
    print(f"{dt * 1e3:.1f} ms/step, {args.batch * args.seq / dt:.0f} tok/s")
    if args.no_profile:
        return
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            step()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=25))


if __name__ == "__main__":
    main()
