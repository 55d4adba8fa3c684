"""Our PyTorch implementation of the official Mamba-3 language model (`MambaLMHeadModel` with Mamba3
blocks, state-spaces/mamba @ e9594ce), for training small models that the runtime ships.

Math: the spec (shared/spec/MAMBA3.md beside the project) (§1-§4, gotchas §6). Parameter names and shapes are exactly those
of the official state dict, so a `model.safetensors` written here loads in the runtime and vice versa.

Two ways to run a sequence, which agree to ~1e-15 in float64 (tools/train/check_golden.py):
  * `forward(ids)` / `forward_with_states(ids)`: parallel (chunked) form, for training and prefill.
  * `step(ids_t, states)` / `forward_recurrent(ids)`: token-by-token recurrence (spec §4.2).

Precision: the scan (A, dt, angles, decays, q.k products, state) always runs in float32, or float64
when the model is float64, even under torch.autocast; the projections follow autocast. The residual
stream has the embedding's dtype (keep the parameters in float32 and use autocast for bf16 training).

Compatible with torch 1.13 (CPU) and torch 2.x.
"""

import contextlib
import dataclasses
import json
import math
import os
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba3_scan import chunked_scan
from safetensors_io import read_safetensors, write_safetensors

NORM_EPS = 1e-5  # every RMSNorm of the model (spec §1.1)
TWO_PI = 2.0 * math.pi

# Parameters kept in float32 by the official model even in a bf16 model (spec §2.3); always saved F32.
SMALL_PARAM_NAMES = ("dt_bias", "B_bias", "C_bias", "D", "mimo_x", "mimo_z", "mimo_o")


# ------------------------------------------------------------------------------------------------
# Configuration


_SSM_DEFAULTS = {
    "layer": "Mamba1",
    "d_state": 128,
    "expand": 2,
    "headdim": 64,
    "ngroups": 1,
    "rope_fraction": 0.5,
    "dt_min": 1e-3,
    "dt_max": 0.1,
    "dt_init_floor": 1e-4,
    "A_floor": 1e-4,
    "is_outproj_norm": False,
    "is_mimo": False,
    "mimo_rank": 4,
    "chunk_size": 64,
}


@dataclasses.dataclass
class Mamba3Config:
    """The official `MambaConfig` (the fields of config.json), plus derived Mamba-3 sizes."""

    d_model: int = 2560
    d_intermediate: int = 0
    n_layer: int = 64
    vocab_size: int = 50277
    ssm_cfg: dict = dataclasses.field(default_factory=lambda: {"layer": "Mamba3"})
    attn_layer_idx: list = dataclasses.field(default_factory=list)
    attn_cfg: dict = dataclasses.field(default_factory=dict)
    rms_norm: bool = True
    residual_in_fp32: bool = True
    fused_add_norm: bool = True
    pad_vocab_size_multiple: int = 8
    tie_embeddings: bool = True

    def __post_init__(self):
        if self.ssm_cfg.get("layer", "Mamba1") != "Mamba3":
            raise ValueError('ssm_cfg must contain "layer": "Mamba3" (the official default layer is Mamba1)')
        if self.attn_layer_idx:
            raise NotImplementedError("hybrid attention layers (attn_layer_idx) are not supported")
        if not self.rms_norm:
            raise NotImplementedError("rms_norm=false (LayerNorm) is not supported")
        if self.rope_fraction not in (0.5, 1.0):
            raise ValueError("rope_fraction must be 0.5 or 1.0")
        if self.d_inner % self.headdim != 0:
            raise ValueError("expand * d_model must be a multiple of headdim")
        if self.nheads % self.ngroups != 0:
            raise ValueError("nheads must be a multiple of ngroups")
        if self.n_angles <= 0:
            raise ValueError("d_state too small: no rope angles")

    @classmethod
    def from_dict(cls, d):
        """Like the official `MambaConfig(**json)`: unknown top-level keys are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise TypeError(f"unknown config.json keys: {sorted(unknown)}")
        d = dict(d)
        if "ssm_cfg" in d:
            d["ssm_cfg"] = dict(d["ssm_cfg"])
        return cls(**d)

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def to_dict(self):
        return dataclasses.asdict(self)

    def _ssm(self, key):
        return self.ssm_cfg.get(key, _SSM_DEFAULTS[key])

    # Mamba3 constructor arguments (ssm_cfg; unknown keys are ignored, as by the official module)
    d_state = property(lambda self: int(self._ssm("d_state")))
    expand = property(lambda self: self._ssm("expand"))
    headdim = property(lambda self: int(self._ssm("headdim")))
    ngroups = property(lambda self: int(self._ssm("ngroups")))
    rope_fraction = property(lambda self: float(self._ssm("rope_fraction")))
    dt_min = property(lambda self: float(self._ssm("dt_min")))
    dt_max = property(lambda self: float(self._ssm("dt_max")))
    dt_init_floor = property(lambda self: float(self._ssm("dt_init_floor")))
    A_floor = property(lambda self: float(self._ssm("A_floor")))
    is_outproj_norm = property(lambda self: bool(self._ssm("is_outproj_norm")))
    is_mimo = property(lambda self: bool(self._ssm("is_mimo")))
    chunk_size = property(lambda self: int(self._ssm("chunk_size")))

    # Derived sizes (spec §1.3)
    @property
    def mimo_rank(self):
        return int(self._ssm("mimo_rank")) if self.is_mimo else 1

    @property
    def d_inner(self):
        return int(self.expand * self.d_model)

    @property
    def nheads(self):
        return self.d_inner // self.headdim

    @property
    def n_angles(self):
        split = int(self.d_state * self.rope_fraction)
        if split % 2:
            split -= 1
        return split // 2

    @property
    def d_in_proj(self):
        return 2 * self.d_inner + 2 * self.d_state * self.ngroups * self.mimo_rank + 3 * self.nheads + self.n_angles

    @property
    def vocab_padded(self):
        m = self.pad_vocab_size_multiple
        return (self.vocab_size + m - 1) // m * m

    @property
    def mlp_hidden(self):
        return (self.d_intermediate + 127) // 128 * 128


# ------------------------------------------------------------------------------------------------
# Small helpers


def _compute_dtype(t):
    """float64 stays float64; everything else (bf16/f16/f32) is computed in float32."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def rms_norm(x, weight, eps=NORM_EPS):
    """x * rsqrt(mean(x^2) + eps) * w over the last dim, computed in at least float32."""
    x = x.to(_compute_dtype(x))
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight.to(x.dtype)


def heavy_tail_activation(x):
    """f(x) = 1 + x for x >= 0, 1 / (1 - x) for x < 0 (official HEAD, spec §3.3)."""
    return x.clamp(min=0) + torch.reciprocal(1 - x.clamp(max=0))


def _autocast_off(device_type):
    """Context that disables autocast (the scan runs in float32/float64)."""
    if hasattr(torch, "autocast"):
        try:
            return torch.autocast(device_type=device_type, enabled=False)
        except (RuntimeError, ValueError):
            pass
    return contextlib.nullcontext()


def rotate(v, cos, sin, half_split):
    """Rotate the first S pairs of the last dim of v by angles given as cos/sin [..., S].

    SISO (half_split False): pairs (2i, 2i+1). MIMO (half_split True): pairs (i, i + N/2).
    Pairs beyond S pass through. (a, b) -> (a cos - b sin, a sin + b cos), computed as
    pair * cos + flip(pair) * (-sin, +sin).
    """
    N = v.shape[-1]
    S = cos.shape[-1]
    if half_split:  # [..., 2, N/2]: pair i = (v[i], v[N/2 + i])
        pairs = v.reshape(v.shape[:-1] + (2, N // 2))
        rot, rest, pair_dim = pairs[..., :S], pairs[..., S:], -2
        c, s = cos.unsqueeze(-2), torch.stack([-sin, sin], dim=-2)
    else:  # [..., N/2, 2]: pair i = (v[2i], v[2i + 1])
        pairs = v.reshape(v.shape[:-1] + (N // 2, 2))
        rot, rest, pair_dim = pairs[..., :S, :], pairs[..., S:, :], -1
        c, s = cos.unsqueeze(-1), torch.stack([-sin, sin], dim=-1)
    rot = rot * c + rot.flip(pair_dim) * s
    if S < N // 2:
        rot = torch.cat([rot, rest], dim=-1 if half_split else -2)
    return rot.reshape(v.shape)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=NORM_EPS):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class GatedMLP(nn.Module):
    """fc1 -> (value, gate) halves -> value * silu(gate) -> fc2 (spec §3.7). No biases."""

    def __init__(self, d_model, hidden):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * hidden, bias=False)
        self.fc2 = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x):
        value, gate = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(value * F.silu(gate))


# ------------------------------------------------------------------------------------------------
# The Mamba-3 mixer


class Mamba3Mixer(nn.Module):
    def __init__(self, cfg: Mamba3Config):
        super().__init__()
        self.cfg = cfg
        H, P, N, R, E = cfg.nheads, cfg.headdim, cfg.d_state, cfg.mimo_rank, cfg.d_inner
        self.H, self.P, self.N, self.R, self.G, self.S, self.E = H, P, N, R, cfg.ngroups, cfg.n_angles, E
        self.is_mimo = cfg.is_mimo
        self.is_outproj_norm = cfg.is_outproj_norm
        self.A_floor = cfg.A_floor
        self.chunk_size = cfg.chunk_size

        # Registration order = official state-dict order (spec §2.2).
        self.dt_bias = nn.Parameter(torch.empty(H))
        self.B_bias = nn.Parameter(torch.ones(H, R, N))
        self.C_bias = nn.Parameter(torch.ones(H, R, N))
        if self.is_mimo:
            self.mimo_x = nn.Parameter(torch.full((H, R, P), 1.0 / R))
            self.mimo_z = nn.Parameter(torch.ones(H, R, P))
            self.mimo_o = nn.Parameter(torch.full((H, R, P), 1.0 / R))
        self.D = nn.Parameter(torch.ones(H))
        self.in_proj = nn.Linear(cfg.d_model, cfg.d_in_proj, bias=False)
        self.B_norm = RMSNorm(N)
        self.C_norm = RMSNorm(N)
        if self.is_outproj_norm:
            self.norm = RMSNorm(E)
        self.out_proj = nn.Linear(E, cfg.d_model, bias=False)
        self.dt_bias._no_weight_decay = True
        self.D._no_weight_decay = True
        self.reset_dt_bias()

    def reset_dt_bias(self, generator=None):
        """dt = exp(U[log dt_min, log dt_max]) floored at dt_init_floor; dt_bias = softplus^-1(dt)."""
        c = self.cfg
        u = torch.rand(self.H, generator=generator, dtype=torch.float32)
        dt = torch.exp(u * (math.log(c.dt_max) - math.log(c.dt_min)) + math.log(c.dt_min))
        dt = dt.clamp(min=c.dt_init_floor)
        with torch.no_grad():
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))

    # -- per-token preprocessing, shared by the parallel and the recurrent form ------------------
    def _preprocess(self, u):
        """u [B, L, D] -> dict of per-token quantities in the compute dtype (spec §3.3)."""
        H, P, N, R, G, S, E = self.H, self.P, self.N, self.R, self.G, self.S, self.E
        proj = self.in_proj(u)  # follows autocast
        cdt = _compute_dtype(self.dt_bias)
        with _autocast_off(u.device.type):
            proj = proj.to(cdt)
            Bsz, L = proj.shape[:2]
            z, x, BC, dd_dt, dd_A, trap, theta = torch.split(proj, [E, E, 2 * R * G * N, H, H, H, S], dim=-1)
            z = z.reshape(Bsz, L, H, P)
            x = x.reshape(Bsz, L, H, P)
            A = (-heavy_tail_activation(dd_A)).clamp(max=-self.A_floor)
            dt = F.softplus(dd_dt + self.dt_bias.to(cdt))  # no clamp; linear above 20 like PyTorch
            lam = torch.sigmoid(trap)

            # B (key) and C (query), processed together as kq[:, :, 0] = key, kq[:, :, 1] = query:
            # RMSNorm over N per (rank, group), groups broadcast to heads (head h uses group
            # h // (H/G)), + per-head bias. The rotation comes later.
            norm_w = torch.stack([self.B_norm.weight, self.C_norm.weight]).to(cdt)[:, None, None]  # [2,1,1,N]
            kq = rms_norm(BC.reshape(Bsz, L, 2, R, G, N), norm_w)
            if G != H:
                kq = kq.repeat_interleave(H // G, dim=4)
            kq = kq + torch.stack([self.B_bias, self.C_bias]).to(cdt).transpose(1, 2)  # [2, R, H, N]
            dphi = math.pi * torch.tanh(theta).unsqueeze(2) * dt.unsqueeze(-1)  # [B, L, H, S]
        return dict(z=z, x=x, dt=dt, a=A * dt, lam=lam, kq0=kq, dphi=dphi)

    def _values(self, x):
        """x [..., H, P] -> per-rank values [..., R, H, P] (x * mimo_x; SISO: x)."""
        if self.is_mimo:
            return x.unsqueeze(-3) * self.mimo_x.to(x.dtype).transpose(0, 1)
        return x.unsqueeze(-3)

    def _gate(self, y, z):
        """y [B, L, R, H, P] (D term included), z [B, L, H, P] -> gated y [B, L, E] (spec §3.6)."""
        if self.is_outproj_norm:  # headwise RMSNorm over P, before the gate
            y = rms_norm(y, self.norm.weight.view(self.H, self.P))
        if self.is_mimo:
            zr = z.unsqueeze(2) * self.mimo_z.to(z.dtype).transpose(0, 1)
            y = (y * F.silu(zr) * self.mimo_o.to(y.dtype).transpose(0, 1)).sum(dim=2)
        else:
            y = y[:, :, 0] * F.silu(z)
        Bsz, L = y.shape[:2]
        return y.reshape(Bsz, L, self.E)

    # -- parallel form ----------------------------------------------------------------------------
    def forward(self, u, state=None, return_state=False):
        """u [B, L, D] -> out [B, L, D] (and the final state dict if return_state).

        state: optional initial {angle [B,H,S], ssm [B,H,P,N], k [B,R,H,N], v [B,H,P]} to continue a
        sequence (spec §4.4, initial-state term); None starts from zero like the official prefill.
        """
        p = self._preprocess(u)
        cdt = p["dt"].dtype
        with _autocast_off(u.device.type):
            # Cumulative angles, accumulated in float64 and wrapped (cheap; keeps long sequences exact).
            phi = torch.cumsum(p["dphi"].double(), dim=1)
            if state is not None:
                phi = phi + state["angle"].double().unsqueeze(1)
            phi = torch.remainder(phi, TWO_PI).to(cdt)  # [B, L, H, S]
            cos, sin = torch.cos(phi)[:, :, None, None], torch.sin(phi)[:, :, None, None]  # over (k/q, R)
            kq = rotate(p["kq0"], cos, sin, self.is_mimo)  # [B, L, 2, R, H, N]
            k, q = kq[:, :, 0], kq[:, :, 1]
            v = self._values(p["x"])  # [B, L, R, H, P]

            gamma = p["lam"] * p["dt"]
            mu = (1 - p["lam"]) * p["dt"]
            c = gamma + torch.cat([mu[:, 1:], torch.zeros_like(mu[:, :1])], dim=1)

            h0 = None
            if state is not None:  # H0 = h_init + mu_0 sum_r (v_init * mimo_x_r) k_init_r^T
                v_init = self._values(state["v"].to(cdt))  # [B, R, H, P]
                kv = torch.einsum("brhp,brhn->bhpn", v_init, state["k"].to(cdt))
                h0 = state["ssm"].to(cdt) + mu[:, 0, :, None, None] * kv

            y, h_last = chunked_scan(q, k, v, p["a"], gamma, c, self.chunk_size, h0)
            y = self._gate(y + self.D.to(cdt)[:, None] * v, p["z"])
        out = self.out_proj(y)  # follows autocast
        if not return_state:
            return out
        new_state = dict(angle=phi[:, -1], ssm=h_last, k=k[:, -1], v=p["x"][:, -1])
        return out, new_state

    # -- recurrent form (one token) ---------------------------------------------------------------
    def step(self, u, state):
        """u [B, D], state dict -> out [B, D], new state dict (spec §4.2). Functional, no in-place."""
        p = self._preprocess(u.unsqueeze(1))
        p = {key: t[:, 0] for key, t in p.items()}
        cdt = p["dt"].dtype
        with _autocast_off(u.device.type):
            phi = torch.remainder(state["angle"].to(cdt) + p["dphi"], TWO_PI)  # wrap every step
            cos, sin = torch.cos(phi)[:, None, None], torch.sin(phi)[:, None, None]
            kq = rotate(p["kq0"], cos, sin, self.is_mimo)  # [B, 2, R, H, N]
            k, q = kq[:, 0], kq[:, 1]
            dt, lam = p["dt"], p["lam"]
            alpha = torch.exp(p["a"])
            beta = (1 - lam) * dt * alpha
            gamma = lam * dt
            v = self._values(p["x"])  # [B, R, H, P]
            v_prev = self._values(state["v"].to(cdt))
            h = (
                alpha[:, :, None, None] * state["ssm"].to(cdt)
                + beta[:, :, None, None] * torch.einsum("brhp,brhn->bhpn", v_prev, state["k"].to(cdt))
                + gamma[:, :, None, None] * torch.einsum("brhp,brhn->bhpn", v, k)
            )
            y = torch.einsum("bhpn,brhn->brhp", h, q) + self.D.to(cdt)[:, None] * v
            y = self._gate(y.unsqueeze(1), p["z"].unsqueeze(1))[:, 0]
        return self.out_proj(y), dict(angle=phi, ssm=h, k=k, v=p["x"])

    def init_state(self, batch, device=None, dtype=torch.float32):
        H, P, N, R, S = self.H, self.P, self.N, self.R, self.S
        z = lambda *shape: torch.zeros(*shape, device=device, dtype=dtype)  # noqa: E731
        return dict(angle=z(batch, H, S), ssm=z(batch, H, P, N), k=z(batch, R, H, N), v=z(batch, H, P))


# ------------------------------------------------------------------------------------------------
# Blocks and the language model


class Block(nn.Module):
    """residual += mixer(norm(residual)); with an MLP: residual += mlp(norm2(residual)) (spec §3.1)."""

    def __init__(self, cfg: Mamba3Config):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model)
        self.mixer = Mamba3Mixer(cfg)
        if cfg.d_intermediate > 0:
            self.norm2 = RMSNorm(cfg.d_model)
            self.mlp = GatedMLP(cfg.d_model, cfg.mlp_hidden)
        else:
            self.norm2 = self.mlp = None

    def _mlp(self, residual):
        if self.mlp is None:
            return residual
        return residual + self.mlp(self.norm2(residual)).to(residual.dtype)

    def forward(self, residual, state=None, return_state=False):
        r = self.mixer(self.norm(residual), state=state, return_state=return_state)
        out, new_state = r if return_state else (r, None)
        residual = self._mlp(residual + out.to(residual.dtype))
        return residual, new_state

    def step(self, residual, state):
        out, new_state = self.mixer.step(self.norm(residual), state)
        return self._mlp(residual + out.to(residual.dtype)), new_state


class Backbone(nn.Module):
    def __init__(self, cfg: Mamba3Config):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_padded, cfg.d_model)
        self.layers = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.norm_f = RMSNorm(cfg.d_model)


class Mamba3LM(nn.Module):
    """MambaLMHeadModel with Mamba3 blocks. `forward(ids [B, L]) -> logits [B, L, V_pad]`."""

    def __init__(self, cfg: Mamba3Config, chunk_size: Optional[int] = None):
        super().__init__()
        self.config = cfg
        self.backbone = Backbone(cfg)
        if not cfg.tie_embeddings:
            self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_padded, bias=False)
        if chunk_size is not None:
            for layer in self.backbone.layers:
                layer.mixer.chunk_size = int(chunk_size)
        self.reset_parameters()

    # -- initialisation (mixer_seq_simple._init_weights as applied by MambaLMHeadModel) -----------
    def reset_parameters(self):
        """Official-style init. Linear layers keep nn.Linear's default (kaiming-uniform a=sqrt(5));
        the embedding is N(0, 0.02); out_proj and fc2 are kaiming-uniform / sqrt(n_layer) (the
        LM-level `apply(_init_weights)` runs last with n_residuals_per_layer=1); norms, B/C biases
        and D are 1; dt_bias is the inverse softplus of a log-uniform dt; mimo_x = mimo_o = 1/R,
        mimo_z = 1."""
        cfg = self.config
        for m in self.modules():
            if isinstance(m, nn.Linear):
                m.reset_parameters()
            elif isinstance(m, RMSNorm):
                nn.init.ones_(m.weight)
        nn.init.normal_(self.backbone.embedding.weight, std=0.02)
        for layer in self.backbone.layers:
            mx = layer.mixer
            mx.reset_dt_bias()
            with torch.no_grad():
                mx.B_bias.fill_(1.0)
                mx.C_bias.fill_(1.0)
                mx.D.fill_(1.0)
                if mx.is_mimo:
                    mx.mimo_x.fill_(1.0 / mx.R)
                    mx.mimo_z.fill_(1.0)
                    mx.mimo_o.fill_(1.0 / mx.R)
            rescaled = [mx.out_proj.weight] + ([layer.mlp.fc2.weight] if layer.mlp is not None else [])
            for w in rescaled:
                nn.init.kaiming_uniform_(w, a=math.sqrt(5))
                with torch.no_grad():
                    w /= math.sqrt(cfg.n_layer)

    def compile_blocks(self, **kwargs):
        """Optional speed-up (torch >= 2.2 with nn.Module.compile): torch.compile every block in place.

        The identical blocks share one compilation (about 25 s on an H100, paid by the first
        training step); at small widths eager mode is bound by kernel-launch overhead and this makes
        training steps about 3x faster. Parameter names / state_dict keys are unchanged (unlike
        torch.compile(model), which adds an `_orig_mod.` prefix). Returns False, doing nothing, on
        a torch without it (e.g. 1.13)."""
        if not (hasattr(torch, "compile") and hasattr(nn.Module, "compile")):
            return False
        for layer in self.backbone.layers:
            layer.compile(**kwargs)
        return True

    # -- forward ----------------------------------------------------------------------------------
    def _head_weight(self):
        return self.backbone.embedding.weight if self.config.tie_embeddings else self.lm_head.weight

    def _logits(self, residual):
        return F.linear(self.backbone.norm_f(residual), self._head_weight())

    def forward(self, ids, states=None, return_states=False):
        """ids [B, L] -> logits [B, L, V_pad] (parallel form). With return_states, also the list of
        per-layer final states; `states` continues a sequence from such a list."""
        residual = self.backbone.embedding(ids)
        new_states = []
        for i, layer in enumerate(self.backbone.layers):
            residual, st = layer(residual, None if states is None else states[i], return_states)
            new_states.append(st)
        logits = self._logits(residual)
        return (logits, new_states) if return_states else logits

    def forward_with_states(self, ids, states=None):
        return self.forward(ids, states=states, return_states=True)

    def init_states(self, batch, device=None, dtype=None):
        if dtype is None:
            dtype = _compute_dtype(self.backbone.embedding.weight)
        if device is None:
            device = self.backbone.embedding.weight.device
        return [layer.mixer.init_state(batch, device, dtype) for layer in self.backbone.layers]

    def step(self, ids_t, states):
        """One token per sequence: ids_t [B] -> logits [B, V_pad], new states (spec §4.2)."""
        residual = self.backbone.embedding(ids_t)
        new_states = []
        for layer, st in zip(self.backbone.layers, states):
            residual, st = layer.step(residual, st)
            new_states.append(st)
        return self._logits(residual), new_states

    def forward_recurrent(self, ids, states=None):
        """Token-by-token recurrence over ids [B, L] -> logits [B, L, V_pad], final states."""
        if states is None:
            states = self.init_states(ids.shape[0])
        logits = []
        for t in range(ids.shape[1]):
            lt, states = self.step(ids[:, t], states)
            logits.append(lt)
        return torch.stack(logits, dim=1), states

    # -- checkpoints ------------------------------------------------------------------------------
    def load_official_state_dict(self, sd, strict=True):
        """Load an official-layout state dict (tied checkpoints carry lm_head.weight too; it is
        dropped). Values are cast to the parameters' own dtypes."""
        sd = dict(sd)
        if self.config.tie_embeddings and "lm_head.weight" in sd:
            head = sd.pop("lm_head.weight")
            emb = sd.get("backbone.embedding.weight")
            if emb is not None and head.shape == emb.shape and not torch.equal(head.to(emb.dtype), emb):
                raise ValueError("tie_embeddings is true but lm_head.weight differs from the embedding")
        own = self.state_dict()
        sd = {k: (v.to(own[k].dtype) if k in own else v) for k, v in sd.items()}
        return self.load_state_dict(sd, strict=strict)

    def load_safetensors(self, path, strict=True):
        tensors, _ = read_safetensors(path)
        return self.load_official_state_dict(tensors, strict=strict)

    def save_safetensors(self, path, dtype=torch.float32, metadata=None):
        save_safetensors(self, path, dtype, metadata)

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """config.json + model.safetensors (or pytorch_model.bin, the official save_pretrained file)."""
        model = cls(Mamba3Config.from_json(os.path.join(directory, "config.json")), **kwargs)
        st = os.path.join(directory, "model.safetensors")
        if os.path.exists(st):
            model.load_safetensors(st)
        else:
            sd = torch.load(os.path.join(directory, "pytorch_model.bin"), map_location="cpu", weights_only=True)
            model.load_official_state_dict(sd)
        return model

    def save_pretrained(self, directory, dtype=torch.float32):
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump(self.config.to_dict(), f, indent=4)
        self.save_safetensors(os.path.join(directory, "model.safetensors"), dtype)


_DTYPE_NAMES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


def save_safetensors(model, path, dtype=torch.float32, metadata=None):
    """Write the official state-dict layout. dt_bias, B/C_bias, D and mimo_* are always F32; the other
    tensors are cast to `dtype` (torch dtype or "F32"/"F16"/"BF16"). Tied: no lm_head.weight key."""
    if isinstance(dtype, str):
        dtype = _DTYPE_NAMES[dtype.upper()]
    out = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and model.config.tie_embeddings:
            continue
        small = name.rsplit(".", 1)[-1] in SMALL_PARAM_NAMES and ".mixer." in name
        out[name] = t.detach().to("cpu", torch.float32 if small else dtype).contiguous()
    write_safetensors(path, out, metadata)


def load_safetensors(model, path, strict=True):
    return model.load_safetensors(path, strict=strict)
