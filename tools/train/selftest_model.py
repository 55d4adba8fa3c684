#!/usr/bin/env python3
"""Self-tests of tools/train/mamba3_model.py beyond the golden cases (which check_golden.py covers).

  1. parallel form == recurrence (logits, states and parameter gradients) in float64 for random
     configs (SISO/MIMO, groups, rope 0.5/1.0, outproj norm, MLP, several chunk sizes, padding);
  2. gradients stay finite in float32 with strong decay and long sequences (masking before exp);
  3. safetensors round trip (F32/BF16/F16; tied models have no lm_head.weight; small params F32);
  4. on CUDA (if available): bf16 autocast forward+backward and a timing/memory report for the
     training shape (B=32, L=256, D=256, 6 layers, H=8, P=64, N=64), eager and with compile_blocks().

  python3 tools/train/selftest_model.py [--device cuda] [--skip-bench]
"""

import argparse
import math
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mamba3_model import Mamba3Config, Mamba3LM, save_safetensors  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402


def make_cfg(d_model=32, n_layer=2, vocab=97, d_intermediate=0, tie=True, **ssm):
    ssm_cfg = {"layer": "Mamba3", "d_state": 16, "expand": 2, "headdim": 8, "ngroups": 1, "rope_fraction": 0.5}
    ssm_cfg.update(ssm)
    return Mamba3Config(
        d_model=d_model,
        n_layer=n_layer,
        vocab_size=vocab,
        d_intermediate=d_intermediate,
        tie_embeddings=tie,
        ssm_cfg=ssm_cfg,
    )


def perturb(model, scale=0.3, seed=0):
    """Move the 'constant-initialised' parameters away from their init so that every path matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() < 2 or "mimo" in name or "bias" in name:
                p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-30)).item()


CONFIGS = {
    "siso": dict(),
    "siso_g2_rope1_outnorm_mlp": dict(ngroups=2, rope_fraction=1.0, is_outproj_norm=True, _mlp=64, _tie=False),
    "mimo_r4": dict(is_mimo=True, mimo_rank=4),
    "mimo_r2_g2_outnorm_rope1": dict(is_mimo=True, mimo_rank=2, ngroups=2, is_outproj_norm=True, rope_fraction=1.0),
    "siso_N12_oddsplit": dict(d_state=12, rope_fraction=0.5),  # split 6 -> S = 3 angles
}


def test_parallel_vs_recurrent():
    worst = 0.0
    for name, opts in CONFIGS.items():
        opts = dict(opts)
        mlp, tie = opts.pop("_mlp", 0), opts.pop("_tie", True)
        for chunk in (1, 7, 16, 64):
            torch.manual_seed(1)
            cfg = make_cfg(d_intermediate=mlp, tie=tie, **opts)
            model = Mamba3LM(cfg, chunk_size=chunk).double()
            perturb(model)
            ids = torch.randint(0, cfg.vocab_size, (2, 37))
            lp, sp = model.forward_with_states(ids)
            loss_p = (lp.sin() * torch.arange(lp.shape[-1], dtype=lp.dtype)).mean()
            gp = torch.autograd.grad(loss_p, list(model.parameters()))
            lr, sr = model.forward_recurrent(ids)
            loss_r = (lr.sin() * torch.arange(lr.shape[-1], dtype=lr.dtype)).mean()
            gr = torch.autograd.grad(loss_r, list(model.parameters()))
            e_logits = rel(lp, lr)
            e_states = max(rel(a[k], b[k]) for a, b in zip(sp, sr) for k in ("ssm", "k", "v"))
            e_angle = max(
                (torch.remainder(a["angle"] - b["angle"] + math.pi, 2 * math.pi) - math.pi).abs().max().item()
                for a, b in zip(sp, sr)
            )
            e_grad = max(rel(a, b) for a, b in zip(gp, gr) if b.abs().max() > 0)
            w = max(e_logits, e_states, e_angle, e_grad)
            worst = max(worst, w)
            print(f"  {name:<28} chunk {chunk:>2}: logits {e_logits:.1e} states {e_states:.1e} "
                  f"angle {e_angle:.1e} grads {e_grad:.1e}")
    assert worst < 1e-10, worst
    print(f"parallel vs recurrent (float64): worst {worst:.1e} OK")


def test_finite_gradients(device):
    torch.manual_seed(0)
    cfg = make_cfg(d_model=64, headdim=16, d_state=32, chunk_size=64)
    model = Mamba3LM(cfg).to(device)
    with torch.no_grad():  # strong, long decay: exp(l_t - l_s) for s > t would overflow if not masked
        for layer in model.backbone.layers:
            layer.mixer.dt_bias.fill_(6.0)
            layer.mixer.in_proj.weight.mul_(30.0)
    ids = torch.randint(0, cfg.vocab_size, (2, 512), device=device)
    logits = model(ids)
    logits.float().logsumexp(-1).mean().backward()
    bad = [n for n, p in model.named_parameters() if not torch.isfinite(p.grad).all()]
    assert torch.isfinite(logits).all() and not bad, bad
    print("finite gradients with strong decay, L=512 (float32): OK")


def test_safetensors_roundtrip():
    for tie in (True, False):
        torch.manual_seed(2)
        cfg = make_cfg(is_mimo=True, mimo_rank=2, tie=tie, d_intermediate=40)
        model = Mamba3LM(cfg)
        perturb(model)
        with tempfile.TemporaryDirectory() as tmp:
            for dt, tol in ((torch.float32, 0), ("BF16", 1e-2), (torch.float16, 1e-3)):
                path = os.path.join(tmp, "m.safetensors")
                save_safetensors(model, path, dt)
                tensors, _ = read_safetensors(path)
                assert ("lm_head.weight" in tensors) == (not tie)
                for n, t in tensors.items():
                    small = n.rsplit(".", 1)[-1] in ("dt_bias", "B_bias", "C_bias", "D", "mimo_x", "mimo_z", "mimo_o")
                    assert (t.dtype == torch.float32) or not small, n
                m2 = Mamba3LM(cfg)
                m2.load_safetensors(path)
                for (n, a), (_, b) in zip(model.state_dict().items(), m2.state_dict().items()):
                    assert rel(b, a) <= tol, (n, rel(b, a))
            model.save_pretrained(tmp)
            m3 = Mamba3LM.from_pretrained(tmp)
            ids = torch.randint(0, cfg.vocab_size, (1, 9))
            assert torch.equal(m3(ids), model(ids))
    print("safetensors round trip (F32/BF16/F16, tied/untied, save_pretrained/from_pretrained): OK")


def bench(device, compile_blocks=False):
    torch.manual_seed(0)
    cfg = Mamba3Config(
        d_model=256,
        n_layer=6,
        vocab_size=8192,
        d_intermediate=0,
        ssm_cfg={"layer": "Mamba3", "d_state": 64, "expand": 2, "headdim": 64, "rope_fraction": 0.5},
    )
    model = Mamba3LM(cfg).to(device)
    ids = torch.randint(0, cfg.vocab_size, (32, 257), device=device)
    if compile_blocks:
        with torch.no_grad():
            eager = model(ids[:4, :-1])
        if not model.compile_blocks():
            print("bench: this torch has no nn.Module.compile; skipped")
            return
        t0 = time.time()
        with torch.no_grad():
            compiled = model(ids[:4, :-1])
        torch.cuda.synchronize()
        print(f"compile_blocks: first call {time.time() - t0:.1f} s, compiled vs eager logits {rel(compiled, eager):.1e}")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    print(f"bench{' (compile_blocks)' if compile_blocks else ''}: {sum(p.numel() for p in model.parameters())} params, B=32 L=256 D=256 6 layers H=8 P=64 N=64")
    for amp in (True,) if compile_blocks else (True, False):
        losses = []
        torch.cuda.reset_peak_memory_stats()
        for it in range(25):
            if it == 5:
                torch.cuda.synchronize()
                t0 = time.time()
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=amp):
                logits = model(ids[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), ids[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        torch.cuda.synchronize()
        dt = (time.time() - t0) / 20
        assert all(torch.isfinite(torch.tensor(losses)))
        print(f"  {'bf16 autocast' if amp else 'float32      '}: {dt * 1e3:.1f} ms/step, "
              f"{32 * 256 / dt:.0f} tok/s, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, "
              f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    # bf16 autocast vs float32 logits on the same weights
    with torch.no_grad():
        ref = model(ids[:4, :-1]).float()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            got = model(ids[:4, :-1]).float()
    print(f"  bf16-autocast vs float32 logits: max|d|/max|ref| = {rel(got, ref):.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-bench", action="store_true")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, device {args.device}")
    test_parallel_vs_recurrent()
    test_finite_gradients(args.device)
    test_safetensors_roundtrip()
    if args.device.startswith("cuda") and not args.skip_bench:
        bench(args.device)
        bench(args.device, compile_blocks=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
