#!/usr/bin/env python3
"""Check tools/train/mamba3_model.py against every golden case in tests/data/golden.

For each case: load config.json + model.safetensors (or pytorch_model.bin), run the model in float64
on CPU (default) and compare against expected.safetensors, with error = max|d| / max|ref| per tensor
(angles: d taken modulo 2*pi; states: the worst layer). The last column, vs_parallel, is the worst
error of that mode against the parallel form (internal consistency, informational). Modes:

  parallel   forward_with_states (chunked parallel form, the case's chunk_size)
  chunk8     the same with chunk size 8 (several chunks, padding of the last one)
  recurrent  token-by-token step() from a zero state
  split      parallel prefill of the first half, then parallel continuation from its states
  split_step parallel prefill of the first half, then step() for the rest

Exits non-zero if any error exceeds the tolerance (1e-5 in float64).

  /usr/bin/python3 tools/train/check_golden.py [--golden DIR] [--dtype float64|float32] [--device cpu|cuda]
"""

import argparse
import math
import os
import sys

try:
    import torch
except ImportError:  # CTest reports exit code 77 as skipped
    print("skipped: PyTorch is not installed (Debian: python3-torch)")
    raise SystemExit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mamba3_model import Mamba3Config, Mamba3LM  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE_KINDS = ("angle", "ssm", "k", "v")


def rel_err(got, ref, angle=False):
    got, ref = got.double().cpu(), ref.double().cpu()
    if got.shape != ref.shape:
        raise ValueError(f"shape {tuple(got.shape)} != expected {tuple(ref.shape)}")
    d = got - ref
    if angle:
        d = torch.remainder(d + math.pi, 2 * math.pi) - math.pi
    return (d.abs().max() / ref.abs().max().clamp(min=1e-30)).item()


def load_model(case_dir, dtype, device, chunk_size=None):
    cfg = Mamba3Config.from_json(os.path.join(case_dir, "config.json"))
    model = Mamba3LM(cfg, chunk_size=chunk_size)
    st = os.path.join(case_dir, "model.safetensors")
    if os.path.exists(st):
        model.load_safetensors(st)
    else:
        sd = torch.load(os.path.join(case_dir, "pytorch_model.bin"), map_location="cpu", weights_only=True)
        model.load_official_state_dict(sd)
    return model.to(device=device, dtype=dtype).eval()


def run_modes(case_dir, ids, dtype, device):
    """Return {mode: (logits, states)}."""
    model = load_model(case_dir, dtype, device)
    L = ids.shape[1]
    half = L // 2
    out = {}
    with torch.no_grad():
        out["parallel"] = model.forward_with_states(ids)
        out["chunk8"] = load_model(case_dir, dtype, device, chunk_size=8).forward_with_states(ids)
        out["recurrent"] = model.forward_recurrent(ids)
        l1, s1 = model.forward_with_states(ids[:, :half])
        l2, s2 = model.forward_with_states(ids[:, half:], states=s1)
        out["split"] = (torch.cat([l1, l2], dim=1), s2)
        l3, s3 = model.forward_recurrent(ids[:, half:], states=s1)
        out["split_step"] = (torch.cat([l1, l3], dim=1), s3)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", default=os.path.join(REPO, "tests", "data", "golden"))
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tol", type=float, default=None, help="default 1e-5 (float64) / 2e-4 (float32)")
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    tol = args.tol if args.tol is not None else (1e-5 if dtype == torch.float64 else 2e-4)

    cases = sorted(
        d for d in os.listdir(args.golden) if os.path.exists(os.path.join(args.golden, d, "expected.safetensors"))
    )
    if not cases:
        print(f"no golden cases under {args.golden}")
        return 2
    print(f"torch {torch.__version__}, {args.dtype} on {args.device}, tolerance {tol:g} (max|d|/max|ref|)")
    header = f"{'case':<18} {'mode':<11} {'logits':>9} " + " ".join(f"{k:>9}" for k in STATE_KINDS) + "    vs_parallel"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for case in cases:
        case_dir = os.path.join(args.golden, case)
        exp, _ = read_safetensors(os.path.join(case_dir, "expected.safetensors"))
        ids = exp["tokens"].long().to(args.device)
        n_layer = Mamba3Config.from_json(os.path.join(case_dir, "config.json")).n_layer
        results = run_modes(case_dir, ids, dtype, args.device)
        par_logits, par_states = results["parallel"]
        for mode, (logits, states) in results.items():
            # internal consistency: this mode against the parallel form (not part of pass/fail)
            consistency = max(
                [rel_err(logits, par_logits)]
                + [
                    rel_err(states[i][k], par_states[i][k], angle=(k == "angle"))
                    for i in range(n_layer)
                    for k in STATE_KINDS
                ]
            )
            errs = [rel_err(logits, exp["logits"])]
            for kind in STATE_KINDS:
                errs.append(
                    max(
                        rel_err(states[i][kind], exp[f"state.{i}.{kind}"], angle=(kind == "angle"))
                        for i in range(n_layer)
                    )
                )
            worst = max(worst, max(errs))
            flag = "" if max(errs) <= tol else "  FAIL"
            print(f"{case:<18} {mode:<11} " + " ".join(f"{e:9.2e}" for e in errs) + f"    {consistency:9.2e}" + flag)
    ok = worst <= tol
    print(f"\nworst {worst:.2e}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
