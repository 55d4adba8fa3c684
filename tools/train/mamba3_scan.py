"""The Mamba-3 exponential-trapezoidal scan in parallel (chunked, "attention-like") form.

Spec: the spec (shared/spec/MAMBA3.md beside the project) §3.5 and §4.4. Per batch element and head, with tokens t:

    y_{t,r} = sum_{s<t} exp(Lam_t - Lam_s) c_s sum_r' (q_{t,r} . k_{s,r'}) v_{s,r'}
            + gamma_t sum_r' (q_{t,r} . k_{t,r'}) v_{t,r'}
            + exp(Lam_t) H0 q_{t,r}                              (only with an initial state)
    h_last = sum_s exp(Lam_last - Lam_s) c_s sum_r v_{s,r} k_{s,r}^T + exp(Lam_last) H0

where Lam = cumsum(a) (a = A*dt < 0 is the log-decay), gamma_t = lambda_t dt_t and
c_s = gamma_s + mu_{s+1} (mu = (1 - lambda) dt; c_last = gamma_last). The D skip term is not
part of this function.

The sequence is cut into chunks of T tokens. Inside a chunk the causal sum is a masked (T*R) x (T*R)
matrix product; across chunks the (P x N) state is carried with a small decay matrix over chunks
(like Mamba-2's SSD). All exponentials are of non-positive numbers: the upper triangle is set to
-inf BEFORE exp, so neither forward nor backward can produce inf * 0 = NaN.

Only torch features available in torch 1.13 are used.
"""

import torch


def _exp_segsum(x):
    """x [..., n] -> M [..., n, n], M[i, j] = exp(sum_{j<k<=i} x[k]) for j <= i, else 0.

    Computed with a masked cumsum (no subtraction of large prefix sums), as in Mamba-2's
    reference ssd_minimal. Used over chunks, where n is small.
    """
    n = x.size(-1)
    xe = x.unsqueeze(-1).expand(*x.shape, n)  # xe[..., k, j] = x[k]
    strict = torch.ones(n, n, dtype=torch.bool, device=x.device).tril(-1)  # k > j
    xe = xe.masked_fill(~strict, 0.0)
    seg = torch.cumsum(xe, dim=-2)  # seg[..., i, j] = sum_{j<k<=i} x[k]
    incl = torch.ones(n, n, dtype=torch.bool, device=x.device).tril(0)
    return torch.exp(seg.masked_fill(~incl, float("-inf")))


def _pad_time(t, pad):
    """Append `pad` zero steps along dim 1."""
    if pad == 0:
        return t
    z = torch.zeros((t.shape[0], pad) + tuple(t.shape[2:]), dtype=t.dtype, device=t.device)
    return torch.cat([t, z], dim=1)


def chunked_scan(q, k, v, a, gamma, c, chunk_size=64, h0=None):
    """Parallel Mamba-3 scan.

    q, k:      [B, L, R, H, N]  rotated, biased query (C) and key (B)
    v:         [B, L, R, H, P]  values per rank (x * mimo_x; SISO: x with R = 1)
    a:         [B, L, H]        log-decay A*dt (< 0)
    gamma:     [B, L, H]        diagonal weight lambda*dt
    c:         [B, L, H]        off-diagonal weight gamma_s + mu_{s+1}
    h0:        [B, H, P, N] or None: state entering token 0 (already including the mu_0 term)
    returns y [B, L, R, H, P] (without the D skip), h_last [B, H, P, N]
    """
    Bsz, L, R, H, N = q.shape
    P = v.shape[-1]
    T = max(1, min(int(chunk_size), L))
    nc = (L + T - 1) // T
    pad = nc * T - L
    # Padding steps have a = 0 (no decay) and c = gamma = 0 (no contribution): the final state is
    # unaffected and their outputs are dropped.
    q, k, v, a, gamma, c = (_pad_time(t, pad) for t in (q, k, v, a, gamma, c))

    def heads_first(t):  # [B, nc*T, R, H, X] -> [B, H, nc, T*R, X]
        X = t.shape[-1]
        return t.reshape(Bsz, nc, T, R, H, X).permute(0, 4, 1, 2, 3, 5).reshape(Bsz, H, nc, T * R, X)

    qh, kh, vh = heads_first(q), heads_first(k), heads_first(v)
    a_c = a.reshape(Bsz, nc, T, H).permute(0, 3, 1, 2)  # [B, H, nc, T]
    g_c = gamma.reshape(Bsz, nc, T, H).permute(0, 3, 1, 2)
    c_c = c.reshape(Bsz, nc, T, H).permute(0, 3, 1, 2)

    ell = torch.cumsum(a_c, dim=-1)  # local log-decay within each chunk, [B, H, nc, T]

    # --- intra-chunk: W[t, s] = exp(ell_t - ell_s) c_s (s < t), gamma_t (s = t), 0 (s > t)
    strict = torch.ones(T, T, dtype=torch.bool, device=q.device).tril(-1)
    diff = (ell.unsqueeze(-1) - ell.unsqueeze(-2)).masked_fill(~strict, float("-inf"))
    W = torch.exp(diff) * c_c.unsqueeze(-2) + torch.diag_embed(g_c)  # [B, H, nc, T, T]
    if R > 1:  # same weight for every rank pair (r, r') of a time pair (t, s)
        W = W[..., :, None, :, None].expand(Bsz, H, nc, T, R, T, R).reshape(Bsz, H, nc, T * R, T * R)
    scores = torch.matmul(qh, kh.transpose(-1, -2)) * W  # [B, H, nc, TR, TR]
    y = torch.matmul(scores, vh)  # [B, H, nc, TR, P]

    # --- chunk-local final states: sum_s exp(ell_last - ell_s) c_s v_s k_s^T
    w_last = torch.exp(ell[..., -1:] - ell) * c_c  # [B, H, nc, T]  (exponent <= 0)
    if R > 1:
        w_last = w_last.unsqueeze(-1).expand(Bsz, H, nc, T, R).reshape(Bsz, H, nc, T * R)
    local = torch.matmul((vh * w_last.unsqueeze(-1)).transpose(-1, -2), kh)  # [B, H, nc, P, N]

    # --- carry the state across chunks: entering[z] = sum_{c<=z} exp(sum of chunk decays) states[c]
    if h0 is None:
        h0 = torch.zeros(Bsz, H, P, N, dtype=local.dtype, device=local.device)
    states = torch.cat([h0.unsqueeze(2).to(local.dtype), local], dim=2)  # [B, H, nc+1, P, N]
    chunk_decay = torch.cat([torch.zeros_like(ell[..., :1, -1]), ell[..., -1]], dim=-1)  # [B, H, nc+1]
    M = _exp_segsum(chunk_decay)  # [B, H, nc+1, nc+1]
    carried = torch.matmul(M, states.reshape(Bsz, H, nc + 1, P * N)).reshape(Bsz, H, nc + 1, P, N)
    entering, h_last = carried[:, :, :-1], carried[:, :, -1]

    # --- inter-chunk contribution: exp(ell_t) S_entering q_t
    decay_in = torch.exp(ell)  # [B, H, nc, T]
    if R > 1:
        decay_in = decay_in.unsqueeze(-1).expand(Bsz, H, nc, T, R).reshape(Bsz, H, nc, T * R)
    y = y + torch.matmul(qh, entering.transpose(-1, -2)) * decay_in.unsqueeze(-1)

    y = y.reshape(Bsz, H, nc, T, R, P).permute(0, 2, 3, 4, 1, 5).reshape(Bsz, nc * T, R, H, P)
    return y[:, :L], h_last
