#!/usr/bin/python3
"""Write a Mamba-3 model directory with random weights under the official tensor names.

Usage: tools/make_random_model.py CONFIG.json OUT_DIR [--dtype f32|bf16|f16] [--seed N]

CONFIG.json is a mamba_ssm MambaConfig (ssm_cfg.layer = "Mamba3"). The weights are scaled so
that activations stay O(1); they are for timing and parity tests, not for text.
Needs only numpy (Debian: python3-numpy).
"""
import argparse
import json
import math
import os
import struct

import numpy as np


def derived(cfg):
    ssm = cfg.get("ssm_cfg", {})
    D = cfg["d_model"]
    N = ssm.get("d_state", 128)
    P = ssm.get("headdim", 64)
    G = ssm.get("ngroups", 1)
    E = int(ssm.get("expand", 2) * D)
    H = E // P
    R = ssm.get("mimo_rank", 4) if ssm.get("is_mimo", False) else 1
    split = int(N * ssm.get("rope_fraction", 0.5))
    split -= split % 2
    S = split // 2
    mult = cfg.get("pad_vocab_size_multiple", 8)
    V = (cfg["vocab_size"] + mult - 1) // mult * mult
    hid = (cfg.get("d_intermediate", 0) + 127) // 128 * 128
    return dict(D=D, N=N, P=P, G=G, E=E, H=H, R=R, S=S, V=V, hid=hid,
                d_in=2 * E + 2 * N * G * R + 3 * H + S, mimo=ssm.get("is_mimo", False),
                outnorm=ssm.get("is_outproj_norm", False))


def tensors(cfg, rng):
    d = derived(cfg)
    D, N, P, E, H, R, V, hid = d["D"], d["N"], d["P"], d["E"], d["H"], d["R"], d["V"], d["hid"]

    def linear(out_f, in_f):
        return rng.standard_normal((out_f, in_f), dtype=np.float32) / math.sqrt(in_f)

    yield "backbone.embedding.weight", rng.standard_normal((V, D), dtype=np.float32)
    for i in range(cfg["n_layer"]):
        p = f"backbone.layers.{i}."
        yield p + "norm.weight", np.ones(D, np.float32)
        yield p + "mixer.dt_bias", np.log(np.expm1(rng.uniform(1e-3, 0.1, H))).astype(np.float32)
        yield p + "mixer.B_bias", np.ones((H, R, N), np.float32)
        yield p + "mixer.C_bias", np.ones((H, R, N), np.float32)
        if d["mimo"]:
            for name in ("mimo_x", "mimo_z", "mimo_o"):
                yield p + "mixer." + name, (1 + 0.1 * rng.standard_normal((H, R, P))).astype(np.float32) / (
                    R if name == "mimo_o" else 1)
        yield p + "mixer.D", np.ones(H, np.float32)
        yield p + "mixer.in_proj.weight", linear(d["d_in"], D)
        yield p + "mixer.B_norm.weight", np.ones(N, np.float32)
        yield p + "mixer.C_norm.weight", np.ones(N, np.float32)
        if d["outnorm"]:
            yield p + "mixer.norm.weight", np.ones(E, np.float32)
        yield p + "mixer.out_proj.weight", linear(D, E) / math.sqrt(2 * cfg["n_layer"])
        if hid:
            yield p + "norm2.weight", np.ones(D, np.float32)
            yield p + "mlp.fc1.weight", linear(2 * hid, D)
            yield p + "mlp.fc2.weight", linear(D, hid) / math.sqrt(2 * cfg["n_layer"])
    yield "backbone.norm_f.weight", np.ones(D, np.float32)
    if not cfg.get("tie_embeddings", True):
        yield "lm_head.weight", linear(V, D)


def encode(a, dtype):
    if dtype == "f32":
        return "F32", a.astype("<f4").tobytes()
    if dtype == "f16":
        return "F16", a.astype("<f2").tobytes()
    u = a.astype("<f4").view("<u4").astype(np.uint64)  # bf16: round to nearest even
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")
    return "BF16", u.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", choices=("f32", "bf16", "f16"), default="f32")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with open(args.config) as f:
        cfg = json.load(f)
    os.makedirs(args.out_dir, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    # Small per-head parameters stay float32, as the official runtime keeps them (spec §2.3).
    fp32_names = ("dt_bias", "B_bias", "C_bias", "mixer.D", "mimo_")
    header, blobs, offset = {}, [], 0
    for name, value in tensors(cfg, rng):
        dtype = "f32" if any(k in name for k in fp32_names) else args.dtype
        tag, raw = encode(value, dtype)
        header[name] = {"dtype": tag, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(args.out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    with open(os.path.join(args.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
