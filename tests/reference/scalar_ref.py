#!/usr/bin/env python3
"""PyTorch oracle for libscalar's SCALAR evaluator (SPEC.md section 3, pinned down by
docs/evaluator.md, which this file follows to the letter).

Everything in float64, the slow and literal way, independent of libscalar:
- encode(x, W_enc, b_enc, b_dec, k, ties): pre = (x - b_dec) @ W_enc + b_enc, a = ReLU(pre),
  kept set clean (exactly k, lower index first among equal values) or parity (every
  a >= the k-th largest); codes = a on the kept set, 0 elsewhere;
- path_fn: ff (the MLP), mlpblock (x + mlp(ln_2(x))), block (the whole block);
- attribution_slow: A [F_U, F_D], one autograd backward per downstream latent j and
  step point of sum_{b,t} F(p)[b, t, j], F(p) = D.encode(path(p @ W_dec_U + b_dec_U));
- rank: positives by descending score (ties by ascending flat index i*F_D + j), then
  the zeros in a seeded random order;
- curve: per grid point N the subcircuit of the first N edges, r per latent j with a path
  run on the codes restricted to S_j, top-k per mode, splice, KL(P_clean || Q_N) and
  KL(P_full || Q_N) per token;
- grid(mode, n_edges), scores(y, lo, hi, grid), interval(kl, resamples, confidence).

    scalar_ref.py selfcheck [--fixture DIR]
    scalar_ref.py fixture --out DIR [--seed 0]

See tests/reference/README.md for the fixture's contents and the tolerances to use.
"""
import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpt2_ref as G  # noqa: E402  (our torch GPT-2: forward, layer_norm, gelu_tanh, ...)

DT = torch.float64
RANK_SEED = 125
KL_EPS = 1e-8
# SPEC's 35 points: unique(int(logspace(0, 18, 37, base 2))).
PARITY_GRID = [1, 2, 4, 5, 7, 11, 16, 22, 32, 45, 63, 90, 127, 181, 256, 362, 512, 724, 1024,
               1448, 2048, 2896, 4095, 5792, 8191, 11585, 16383, 23170, 32768, 46340, 65536,
               92681, 131072, 185363, 262144]
# path -> (U's hook, D's hook) in layer L
HOOKS = {"ff": ("mlp_in", "mlp_out"), "mlpblock": ("resid_mid", "resid_post"),
         "block": ("resid_pre", "resid_post")}
PATHS = ("ff", "mlpblock", "block")
MODES = ("parity", "clean")


# ----------------------------------------------------------------------------
# Encoding

def kept_mask(a, k, ties):
    """[..., F] -> bool [..., F]. ties (parity): every a >= the k-th largest value;
    clean: exactly k, larger first, equal values lower index first (a stable sort of -a)."""
    a = a.detach()
    if ties:
        kth = torch.topk(a, k, dim=-1).values[..., -1:]
        return a >= kth
    idx = torch.sort(-a, dim=-1, stable=True).indices[..., :k]
    return torch.zeros_like(a, dtype=torch.bool).scatter(-1, idx, True)


def encode(x, W_enc, b_enc, b_dec, k, ties):
    """docs/evaluator.md "Encoding". Returns (codes, kept mask). The selection is a
    constant: gradients reach pre only through kept entries, and ReLU'(pre <= 0) = 0."""
    pre = (x - b_dec) @ W_enc + b_enc
    a = torch.relu(pre)
    mask = kept_mask(a, k, ties)
    return torch.where(mask, a, torch.zeros_like(a)), mask


def sae_encode(sae, x, ties):
    return encode(x, sae["W_enc"], sae["b_enc"], sae["b_dec"], sae["k"], ties)


def sae_decode(sae, c):
    return c @ sae["W_dec"] + sae["b_dec"]


def sae_pre(sae, x):
    return (x - sae["b_dec"]) @ sae["W_enc"] + sae["b_enc"]


# ----------------------------------------------------------------------------
# Paths and splices

def mlp(params, layer, x):
    h = f"h.{layer}."
    m = G.gelu_tanh(x @ params[h + "mlp.c_fc.weight"] + params[h + "mlp.c_fc.bias"])
    return m @ params[h + "mlp.c_proj.weight"] + params[h + "mlp.c_proj.bias"]


def ln(params, layer, which, x):
    h = f"h.{layer}.{which}."
    return G.layer_norm(x, params[h + "weight"], params[h + "bias"])


def path_fn(path, params, cfg, layer, x):
    """ff: mlp(x) per token; mlpblock: x + mlp(ln_2(x)) per token; block: the whole
    transformer block `layer` on the sequence x [B, T, C]."""
    if path == "ff":
        return mlp(params, layer, x)
    if path == "mlpblock":
        return x + mlp(params, layer, ln(params, layer, "ln_2", x))
    if path == "block":
        h = f"h.{layer}."
        x = x + G.attention(ln(params, layer, "ln_1", x), params[h + "attn.c_attn.weight"],
                            params[h + "attn.c_attn.bias"], params[h + "attn.c_proj.weight"],
                            params[h + "attn.c_proj.bias"], cfg["n_head"])
        return x + mlp(params, layer, ln(params, layer, "ln_2", x))
    raise ValueError(path)


def hook_name(path, layer, role):
    return f"blocks.{layer}.hook_{HOOKS[path][0 if role == 'U' else 1]}"


def clean_run(params, cfg, ids):
    record = {}
    logits = G.forward(params, cfg, ids, record=record)
    return logits, record


def spliced_logits(params, cfg, path, layer, ids, x_hat):
    """The model with D's reconstruction spliced: ff replaces mlp_out L (so resid_post L =
    clean resid_mid L + x_hat); mlpblock and block replace resid_post L."""
    name = f"blocks.{layer}.hook_mlp_out" if path == "ff" else f"blocks.{layer}.hook_resid_post"
    return G.forward(params, cfg, ids, hooks={name: lambda _x: x_hat})


def kl_per_token(logits_p, logits_q):
    """sum_v P (log(P + 1e-8) - log(Q + 1e-8)) per token, in double: [B, T] -> flat [B*T]."""
    p = torch.softmax(logits_p.to(DT), -1)
    q = torch.softmax(logits_q.to(DT), -1)
    kl = (p * (torch.log(p + KL_EPS) - torch.log(q + KL_EPS))).sum(-1)
    return kl.reshape(-1)


# ----------------------------------------------------------------------------
# Selection gaps (how far each top-k decision is from flipping)

def encode_gap(pre, k):
    """Per row of an encode (ReLU then top-k): with at least k positive values,
    v_k - v_{k+1} of ReLU(pre) (this also bounds the kept values away from the ReLU
    kink); with fewer than k positive, min |pre| (a sign flip anywhere would change the
    kept set or the ReLU gradient). Relative to the row's max |pre|. Returns
    (min relative gap, rows with fewer than k positive)."""
    pre = pre.detach().reshape(-1, pre.shape[-1])
    a = torch.relu(pre)
    v = torch.sort(a, -1, descending=True).values
    scale = pre.abs().max(-1).values.clamp_min(1e-300)
    full = v[:, k - 1] > 0
    gap = torch.where(full, v[:, k - 1] - v[:, k], pre.abs().min(-1).values) / scale
    return float(gap.min()), int((~full).sum())


def curve_gap(r, struct, k, mode):
    """Per row of a curve selection on r (struct: entries of latents with no kept edge,
    exactly 0 by construction, whose ties decide nothing): the smallest distance between
    a kept and a dropped value that are not both structural zeros, relative to the row's
    max |r|. parity: kept = r >= the k-th largest; clean: ReLU then exactly k (a flip
    between two values near 0 changes the reconstruction by a near-0 amount and is not
    counted: only kept positives against dropped positives)."""
    r = r.detach().reshape(-1, r.shape[-1])
    struct = struct.reshape(-1, r.shape[-1])
    inf = torch.tensor(float("inf"), dtype=DT)
    if mode == "parity":
        kept = kept_mask(r, k, True)
        vals = r
        live = ~struct
    else:
        vals = torch.relu(r)
        kept = kept_mask(vals, k, False)
        live = vals > 0
    lo_kept = torch.where(kept & live, vals, inf).min(-1).values
    hi_drop = torch.where(~kept & live, vals, -inf).max(-1).values
    scale = r.abs().max(-1).values.clamp_min(1e-300)
    return float(((lo_kept - hi_drop) / scale).min())


def note_gap(stats, key, value):
    if stats is not None:
        stats[key] = min(stats.get(key, float("inf")), value)


# ----------------------------------------------------------------------------
# Step 1: attribution

def step_alphas(mode, kind, steps):
    """Gradient path: alpha_s = s / (S - 1); S = 1: parity 0 (S1_ZERO), clean 1.
    Jacobian: the single point alpha = 1."""
    if kind == "jacobian":
        return [1.0]
    if steps == 1:
        return [0.0] if mode == "parity" else [1.0]
    return [s / (steps - 1) for s in range(steps)]


def upstream_codes(params, cfg, U, path, layer, ids, mode, stats=None, tag="U"):
    """z = U.encode(clean activation at U's hook), the mode's tie rule."""
    _, rec = clean_run(params, cfg, ids)
    x = rec[hook_name(path, layer, "U")]
    if stats is not None:
        g, few = encode_gap(sae_pre(U, x), U["k"])
        note_gap(stats, f"gap_{tag}", g)
        stats[f"few_{tag}"] = stats.get(f"few_{tag}", 0) + few
    z, _ = sae_encode(U, x, mode == "parity")
    return z.detach(), rec


def attribution_slow(params, cfg, U, D, path, layer, ids, mode, kind="gradient", steps=5,
                     stats=None, grads=None):
    """A [F_U, F_D] (float64). SPEC's slow way: for each point p_s and each downstream
    latent j one backward of sum_{b,t} F(p_s)[b, t, j] (retain_graph). grads: a list that
    receives g_s [F_D, B, T, F_U] per point (for selfcheck)."""
    ties = mode == "parity"
    z, _ = upstream_codes(params, cfg, U, path, layer, ids, mode, stats, "U_attr")
    F_U, F_D = U["W_enc"].shape[1], D["W_enc"].shape[1]
    B, T = z.shape[:2]
    alphas = step_alphas(mode, kind, steps)
    S = len(alphas)
    znorm = z.norm(dim=-1, keepdim=True)  # ||z[b,t,:]||_2
    I = torch.zeros(F_D, B, T, F_U, dtype=DT)
    for alpha in alphas:
        p = (alpha * z).clone().requires_grad_(True)
        y = path_fn(path, params, cfg, layer, p @ U["W_dec"] + U["b_dec"])
        if stats is not None:
            g, few = encode_gap(sae_pre(D, y), D["k"])
            note_gap(stats, "gap_attr", g)
            stats["few_attr"] = stats.get("few_attr", 0) + few
        Fp, _ = sae_encode(D, y, ties)
        gs = torch.zeros(F_D, B, T, F_U, dtype=DT)
        for j in range(F_D):
            (g,) = torch.autograd.grad(Fp[..., j].sum(), p, retain_graph=True)
            gs[j] = g
            if kind == "jacobian":
                I[j] += g
            elif ties:  # NORM_WEIGHT
                I[j] += g * znorm / S
            else:  # textbook integrated gradients
                I[j] += g * z / S
        if grads is not None:
            grads.append(gs)
    return I.pow(2).sum((1, 2)).sqrt().t().contiguous()  # A[i, j]


# ----------------------------------------------------------------------------
# Step 2: ranking

def rank(A, seed=RANK_SEED):
    """Flat indices i*F_D + j (int64): A > 0 by descending score, equal scores by
    ascending flat index; then A == 0 in a seeded random order (torch.randperm from
    torch.Generator().manual_seed(seed); libscalar's own RNG orders its zeros
    differently); negatives (none: A is a root of a sum of squares) last."""
    flat = A.reshape(-1)
    idx = torch.arange(flat.numel())
    pos, zero, neg = idx[flat > 0], idx[flat == 0], idx[flat < 0]
    pos = pos[torch.sort(-flat[pos], stable=True).indices]  # stable: ties by index
    perm = torch.randperm(zero.numel(), generator=torch.Generator().manual_seed(seed))
    neg = neg[torch.sort(-flat[neg], stable=True).indices]
    return torch.cat([pos, zero[perm], neg])


# ----------------------------------------------------------------------------
# Step 3: the curve

def grid(mode, n_edges):
    """Parity: SPEC's 35 points for every pair. Clean: the 35 points below n_edges, then
    round(2^e) for e = 18.5, 19, 19.5, ... below n_edges, then n_edges itself."""
    if mode == "parity":
        return list(PARITY_GRID)
    g = [n for n in PARITY_GRID if n < n_edges]
    e = 18.5
    while round(2.0 ** e) < n_edges:
        g.append(round(2.0 ** e))
        e += 0.5
    g.append(n_edges)
    return g


def subcircuit_codes(params, cfg, U, D, path, layer, z, edges, mode, stats=None):
    """D's codes c [B, T, F_D] of the subcircuit with the given kept flat edges, per
    docs/evaluator.md step 3.1-3.2, one path run per downstream latent with kept edges."""
    F_U, F_D = U["W_enc"].shape[1], D["W_enc"].shape[1]
    B, T = z.shape[:2]
    r = torch.zeros(B, T, F_D, dtype=DT)
    struct = torch.ones(B, T, F_D, dtype=torch.bool)
    ups = [[] for _ in range(F_D)]
    for f in edges.tolist():
        ups[f % F_D].append(f // F_D)
    for j in range(F_D):
        if not ups[j]:
            continue  # S_j empty: r[.., j] = 0
        keep = torch.zeros(F_U, dtype=DT)
        keep[ups[j]] = 1.0
        y = path_fn(path, params, cfg, layer, (z * keep) @ U["W_dec"] + U["b_dec"])
        r[..., j] = (y - D["b_dec"]) @ D["W_enc"][:, j] + D["b_enc"][j]  # no ReLU
        struct[..., j] = False
    k = D["k"]
    if stats is not None:
        note_gap(stats, "gap_curve", curve_gap(r, struct, k, mode))
    if mode == "parity":  # CURVE_TOPK: every r >= the k-th largest, values r
        return torch.where(kept_mask(r, k, True), r, torch.zeros_like(r)), r
    a = torch.relu(r)  # clean: D's own rule on the pre-activation r
    return torch.where(kept_mask(a, k, False), a, torch.zeros_like(a)), r


def full_circuit_parity(params, cfg, U, D, path, layer, z, rec, stats=None):
    """The reference's hooked full-circuit run (FULL_CIRCUIT): D's encode (parity rule) of
    ff: mlp(U.decode(z)); mlpblock: clean resid_mid + mlp(ln_2(U.decode(z)));
    block: the clean resid_post L."""
    x = sae_decode(U, z)
    if path == "ff":
        y = mlp(params, layer, x)
    elif path == "mlpblock":
        y = rec[f"blocks.{layer}.hook_resid_mid"] + mlp(params, layer, ln(params, layer, "ln_2", x))
    else:
        y = rec[f"blocks.{layer}.hook_resid_post"]
    if stats is not None:
        g, few = encode_gap(sae_pre(D, y), D["k"])
        note_gap(stats, "gap_full", g)
        stats["few_full"] = stats.get("few_full", 0) + few
    c, _ = sae_encode(D, y, True)
    return c


def curve(params, cfg, U, D, path, layer, ids, order, grid_n, mode, stats=None):
    """Per grid point N and evaluation token: KL(P_clean || Q_N) and KL(P_full || Q_N),
    as float64 [n_grid, B*T]; and the full circuit's KL(P_clean || Q_full) [B*T]."""
    with torch.no_grad():
        z, rec = upstream_codes(params, cfg, U, path, layer, ids, mode, stats, "U_eval")
        clean_logits = G.forward(params, cfg, ids)
        F_U, F_D = U["W_enc"].shape[1], D["W_enc"].shape[1]
        total = F_U * F_D
        order = torch.as_tensor(order, dtype=torch.int64)
        if mode == "parity":
            c_full = full_circuit_parity(params, cfg, U, D, path, layer, z, rec, stats)
        else:  # the definition with every edge kept
            c_full, _ = subcircuit_codes(params, cfg, U, D, path, layer, z,
                                         torch.arange(total), mode, stats)
        full_logits = spliced_logits(params, cfg, path, layer, ids, sae_decode(D, c_full))
        full_kl = kl_per_token(clean_logits, full_logits)
        kl, kl_full, memo = [], [], {}
        for n in grid_n:
            if mode == "parity" and n == total:
                q = full_logits  # the full-circuit substitution
            else:
                n_eff = min(n, total)  # a point beyond F_U*F_D keeps every edge
                if n_eff not in memo:  # (same kept edges, same result)
                    c, _ = subcircuit_codes(params, cfg, U, D, path, layer, z, order[:n_eff],
                                            mode, stats)
                    memo[n_eff] = spliced_logits(params, cfg, path, layer, ids,
                                                 sae_decode(D, c))
                q = memo[n_eff]
            kl.append(kl_per_token(clean_logits, q))
            kl_full.append(kl_per_token(full_logits, q))
    return torch.stack(kl), torch.stack(kl_full), full_kl


# ----------------------------------------------------------------------------
# Step 4: scores

def trapezoid(y, x):
    y = torch.as_tensor(y, dtype=DT)
    x = torch.as_tensor(x, dtype=DT)
    return float(((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2).sum())


def scores(y, lo, hi, grid_n):
    """S_abs = trapezoid(y, N) (linear N axis, no point at 0); dS = (trapezoid(y + err_hi)
    - trapezoid(y - err_lo)) / 2 = (trapezoid(hi) - trapezoid(lo)) / 2; also S_rel needs
    F_U*F_D: S_abs / (F_U*F_D)."""
    return trapezoid(y, grid_n), (trapezoid(hi, grid_n) - trapezoid(lo, grid_n)) / 2


def interval(kl, resamples, confidence=0.95):
    """kl [n_grid, n_tok]; resamples [R, n_tok] token indices (drawn with replacement by
    the caller: libscalar's RNG is its own). y = mean over tokens; lo/hi = the
    (1 -+ confidence)/2 quantiles of the resampled means, linear interpolation between
    order statistics. Returns (y, lo, hi), each [n_grid]."""
    kl = torch.as_tensor(kl, dtype=DT)
    means = kl[:, torch.as_tensor(resamples, dtype=torch.int64)].mean(-1)  # [n_grid, R]
    q = torch.tensor([(1 - confidence) / 2, (1 + confidence) / 2], dtype=DT)
    lo, hi = torch.quantile(means, q, dim=1)
    return kl.mean(-1), lo, hi


# ----------------------------------------------------------------------------
# fixture

FIX = dict(n_layer=2, n_head=2, n_embd=16, block=16, vocab=32, weight_scale=10.0,
           layer=0, F_U=32, F_D=48, F_EQ=32, k=4, attr=(4, 16), eval=(3, 16),
           min_gap=1e-4, min_gap_curve=1e-5, max_attempts=200)
MANIFEST = "manifest.json"


def fixture_model(seed):
    """gpt2_ref's SPEC init from torch.manual_seed(seed) and its perturbation (LN weights
    x U[0.5, 1.5), biases N(0, 0.02)), then every tensor but the LayerNorm weights x 10:
    at the plain init (std 0.02) the tiny model's logits have std 0.1 (near-uniform
    predictions) and mlp_out varies by 0.003, so every KL would be tiny; x 10 gives
    logits of std ~1 and a non-linear GELU / attention regime."""
    cfg = G.make_config(FIX["n_layer"], FIX["n_head"], FIX["n_embd"], FIX["block"], FIX["vocab"])
    params = G.init_params(cfg, seed)
    G.perturb_params(params)
    for name, t in params.items():
        if not G.is_ln_weight(name):
            t.mul_(FIX["weight_scale"])
    return cfg, params


def draw_sae(g, x, F, k):
    """A TopK SAE for activations x [..., C], drawn in float64 and rounded to float32:
    unit directions d_i ~ normalised N(0, I); W_dec[i] = d_i * n_i * s (n_i ~ U[0.5, 1.5),
    s = the per-dimension rms of x about its mean mu); W_enc[:, i] = (d_i + 0.3 e_i) / s
    (e_i ~ N(0, I/C): W_enc is not W_dec^T); b_enc ~ N(0, 0.2^2); b_dec = mu + 0.1 s
    N(0, I). So pre-activations are O(1) and a reconstruction is roughly x's projection
    on the kept directions."""
    C = x.shape[-1]
    xs = x.detach().reshape(-1, C)
    mu = xs.mean(0)
    s = float((xs - mu).pow(2).mean().sqrt())

    def rn(*shape):
        return torch.randn(*shape, generator=g, dtype=DT)
    d = rn(F, C)
    d = d / d.norm(dim=1, keepdim=True)
    n = 0.5 + torch.rand(F, generator=g, dtype=DT)
    sae = {"W_enc": ((d + 0.3 * rn(F, C) / math.sqrt(C)).t() / s).contiguous(),
           "b_enc": 0.2 * rn(F),
           "W_dec": d * n[:, None] * s,
           "b_dec": mu + 0.1 * s * rn(C)}
    sae = {name: t.float() for name, t in sae.items()}  # stored as float32
    return sae


def sae64(sae32, k):
    out = {name: t.double() for name, t in sae32.items()}
    out["k"] = k
    return out


def save_sae(folder, sae32, k, hook):
    """SAELens layout, as libscalar's scalar_sae_save writes it."""
    os.makedirs(folder, exist_ok=True)
    save_file({n: sae32[n].contiguous() for n in ("W_enc", "b_enc", "W_dec", "b_dec")},
              os.path.join(folder, "sae_weights.safetensors"), metadata={"format": "pt"})
    C, F = sae32["W_enc"].shape
    cfg = {"architecture": "topk", "d_in": C, "d_sae": F, "k": k, "dtype": "float32",
           "device": "cpu", "apply_b_dec_to_input": True, "normalize_activations": "none",
           "hook_name": hook,
           "metadata": {"hook_name": hook, "sae_lens_training_version": "scalar_ref.py"}}
    with open(os.path.join(folder, "cfg.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def fixture_cases():
    """(name, path, mode, kind, steps, D key) in file order."""
    cases = []
    for path in PATHS:
        for mode in ("clean", "parity"):
            cases.append((f"{path}.{mode}.grad5", path, mode, "gradient", 5, "D48"))
        cases.append((f"{path}.clean.jacobian", path, "clean", "jacobian", 1, "D48"))
        if path == "ff":
            cases.append(("ff.parity.grad1", path, "parity", "gradient", 1, "D48"))
        for mode in ("clean", "parity"):
            cases.append((f"{path}.{mode}.grad5.eq", path, mode, "gradient", 5, "D32"))
    return cases


def score_stats(A):
    s = torch.sort(A.reshape(-1), descending=True).values
    s = s[s > 0]
    rel = (s[:-1] - s[1:]) / s[:-1]
    return {"n_positive": int(s.numel()), "n_zero": int((A == 0).sum()),
            "min_rel_gap": float(rel.min()) if rel.numel() else float("inf"),
            "pairs_rel_gap_below_1e-5": int((rel < 1e-5).sum()),
            "pairs_rel_gap_below_1e-4": int((rel < 1e-4).sum())}


def run_case(params, cfg, saes, case, ids_attr, ids_eval, layer):
    name, path, mode, kind, steps, dkey = case
    U, D = saes[path]["U32"], saes[path][dkey]
    stats = {}
    A = attribution_slow(params, cfg, U, D, path, layer, ids_attr, mode, kind, steps, stats)
    order = rank(A)
    n_edges = A.numel()
    g = grid(mode, n_edges)
    kl, kl_full, full_kl = curve(params, cfg, U, D, path, layer, ids_eval, order, g, mode, stats)
    return dict(A=A, order=order, grid=g, kl=kl, kl_full=kl_full, full_kl=full_kl,
                stats=stats, scores=score_stats(A))


GAP_KEYS = ("gap_U_attr", "gap_attr", "gap_U_eval", "gap_curve", "gap_full")


def build_fixture(seed):
    """Returns (model cfg, params fp32, saes fp32 {path: {U32, D48, D32}}, ids, results,
    attempts). Per path the SAEs are redrawn (attempt a = 0, 1, ...) from
    torch.Generator().manual_seed(1000 * seed + 100 * path_index + a) until every
    encode selection of that path's cases (U's, D's at the attribution points, parity's
    full circuit) has a relative gap >= FIX['min_gap'] (1e-4) and every curve selection
    one >= FIX['min_gap_curve'] (1e-5; ~1e-4 is out of reach: the ~5,000 curve rows of a
    path each have a gap density near 0 of ~17 per unit relative gap)."""
    torch.set_num_threads(1)
    cfg, params32 = fixture_model(seed)
    params = {n: t.double() for n, t in params32.items()}
    gd = torch.Generator().manual_seed(seed)
    ids_attr = torch.randint(0, FIX["vocab"], FIX["attr"], generator=gd)
    ids_eval = torch.randint(0, FIX["vocab"], FIX["eval"], generator=gd)
    layer, k = FIX["layer"], FIX["k"]
    _, rec = clean_run(params, cfg, ids_attr)
    cases = fixture_cases()
    saes32, results, attempts = {}, {}, {}
    for pi, path in enumerate(PATHS):
        xu, xd = rec[hook_name(path, layer, "U")], rec[hook_name(path, layer, "D")]
        for a in range(FIX["max_attempts"]):
            g = torch.Generator().manual_seed(1000 * seed + 100 * pi + a)
            s32 = {"U32": draw_sae(g, xu, FIX["F_U"], k), "D48": draw_sae(g, xd, FIX["F_D"], k),
                   "D32": draw_sae(g, xd, FIX["F_EQ"], k)}
            s64 = {path: {key: sae64(t, k) for key, t in s32.items()}}
            res = {c[0]: run_case(params, cfg, s64, c, ids_attr, ids_eval, layer)
                   for c in cases if c[1] == path}
            worst = min(r["stats"][key] for r in res.values() for key in GAP_KEYS
                        if key in r["stats"] and key != "gap_curve")
            worst_curve = min(r["stats"]["gap_curve"] for r in res.values())
            few = sum(v for r in res.values() for key, v in r["stats"].items()
                      if key.startswith("few"))
            if worst >= FIX["min_gap"] and worst_curve >= FIX["min_gap_curve"] and few == 0:
                break
        else:
            sys.exit(f"{path}: no SAE draw with selection gaps >= {FIX['min_gap']} / "
                     f"{FIX['min_gap_curve']} (curve) in {FIX['max_attempts']} attempts")
        saes32[path], attempts[path] = s32, a
        results.update(res)
    results = {c[0]: results[c[0]] for c in cases}  # file order
    return cfg, params32, saes32, (ids_attr, ids_eval), results, attempts


def sae_folder(path, key):
    return f"sae/{path}_{key}"


def fixture_tensors(ids, results):
    t = {"ids_attr": ids[0].to(torch.int32), "ids_eval": ids[1].to(torch.int32)}
    for name, r in results.items():
        t[name + ".A"] = r["A"].float()
        t[name + ".order"] = r["order"].to(torch.int32)
        t[name + ".grid"] = torch.tensor(r["grid"], dtype=torch.int32)
        t[name + ".kl"] = r["kl"].float()
        t[name + ".kl_full"] = r["kl_full"].float()
        t[name + ".full_kl"] = r["full_kl"].float()
    return {n: v.contiguous().clone() for n, v in t.items()}


def cmd_fixture(args):
    cfg, params32, saes32, ids, results, attempts = build_fixture(args.seed)
    out = args.out
    G.save_model(out, cfg, params32)
    layer, k = FIX["layer"], FIX["k"]
    for path, s in saes32.items():
        for key, sae in s.items():
            role = "U" if key == "U32" else "D"
            save_sae(os.path.join(out, sae_folder(path, key)), sae, k,
                     hook_name(path, layer, role))
    tensors = fixture_tensors(ids, results)
    st_path = os.path.join(out, "expected.safetensors")
    save_file(tensors, st_path, metadata={"format": "pt"})  # one key: stable bytes
    cases = {}
    for (name, path, mode, kind, steps, dkey) in fixture_cases():
        r = results[name]
        cases[name] = {
            "path": path, "layer": layer, "mode": mode, "kind": kind,
            "steps": steps if kind == "gradient" else None,
            "U": sae_folder(path, "U32"), "D": sae_folder(path, dkey),
            "U_hook": hook_name(path, layer, "U"), "D_hook": hook_name(path, layer, "D"),
            "F_U": FIX["F_U"], "F_D": int(r["A"].shape[1]), "k_U": k, "k_D": k,
            "n_grid": len(r["grid"]),
            "full_circuit_substituted_at": (int(r["A"].numel()) if mode == "parity" and
                                            int(r["A"].numel()) in r["grid"] else None),
            "mean_kl_first_last": [float(r["kl"][0].mean()), float(r["kl"][-1].mean())],
            "mean_full_kl": float(r["full_kl"].mean()),
            "selection_gaps": {key: r["stats"][key] for key in GAP_KEYS if key in r["stats"]},
            "scores": r["scores"],
        }
    desc = {
        "generator": "tests/reference/scalar_ref.py fixture",
        "command": " ".join(["scalar_ref.py"] + sys.argv[1:]),
        "seed": args.seed,
        "torch": torch.__version__,
        "definitions": "docs/evaluator.md (both modes), computed in float64 from the "
                       "float32 weights in this folder, stored as float32",
        "model": {"folder": ".", "config": {k_: cfg[k_] for k_ in sorted(cfg)},
                  "weights": "gpt2_ref.py init_params(seed) + perturb_params, then every "
                             "tensor except LayerNorm weights x 10 (logits std ~1)"},
        "data": {"ids_attr": "I32 [4, 16], attribution data (one batch)",
                 "ids_eval": "I32 [3, 16], evaluation data (48 tokens, flat b*16 + t)",
                 "draw": "torch.randint(0, 32) from torch.Generator().manual_seed(seed), "
                         "ids_attr then ids_eval"},
        "saes": {"folders": {sae_folder(p, key): hook_name(p, layer, "U" if key == "U32" else "D")
                             for p in PATHS for key in ("U32", "D48", "D32")},
                 "k": k, "draw": draw_sae.__doc__.split("\n", 1)[1].strip().replace("\n    ", " "),
                 "redraws": "per path, generator seed 1000*seed + 100*path_index + attempt, "
                            "U32 then D48 then D32, until every encode selection gap >= "
                            f"{FIX['min_gap']} and every curve selection gap >= "
                            f"{FIX['min_gap_curve']} (relative) with no row having fewer "
                            "than k positive values",
                 "accepted_attempt": attempts},
        "tensors": {
            "<case>.A": "F32 [F_U, F_D] attribution scores (float64, rounded)",
            "<case>.order": "I32 [F_U*F_D] the full ranking: flat indices i*F_D + j, "
                            "positives by descending A (ties by index; float64 A), then the "
                            "zeros in torch.randperm order seeded 125 (not libscalar's RNG: "
                            "feed this order to the curve)",
            "<case>.grid": "I32 [n_grid] the N grid of the mode",
            "<case>.kl": "F32 [n_grid, 48] KL(P_clean || Q_N) per eval token, with this order",
            "<case>.kl_full": "F32 [n_grid, 48] KL(P_full || Q_N) per eval token",
            "<case>.full_kl": "F32 [48] KL(P_clean || Q_full) of the mode's full circuit",
            "ids_attr": "I32 [4, 16]", "ids_eval": "I32 [3, 16]",
        },
        "selection_gaps": "per case, the smallest relative distance of any top-k decision "
                          "from flipping: gap_U_attr / gap_U_eval (U's encode of the data), "
                          "gap_attr (D's encode at every attribution point), gap_curve (the "
                          "curve's r selections), gap_full (parity's full-circuit encode); "
                          "see encode_gap / curve_gap",
        "scores": "per case: positive and zero counts of A and the smallest relative gap "
                  "(s_i - s_{i+1}) / s_i between consecutive sorted positive scores: a "
                  "float32 ranking may swap pairs closer than ~1e-6",
        "tolerance": "norm-wise relative per tensor ||ours - ref|| / ||ref|| <= 1e-4 for A, "
                     "kl, kl_full, full_kl; grid exact",
        "cases": cases,
    }
    with open(os.path.join(out, MANIFEST), "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    for name, c in cases.items():
        gaps = " ".join(f"{k_[4:]} {v:.1e}" for k_, v in c["selection_gaps"].items())
        sc = c["scores"]
        print(f"{name:22s} grid {c['n_grid']:2d} kl[0] {c['mean_kl_first_last'][0]:.4f} "
              f"kl[-1] {c['mean_kl_first_last'][1]:.4f} full {c['mean_full_kl']:.4f} | gaps "
              f"{gaps} | A>0 {sc['n_positive']} zeros {sc['n_zero']} score gap "
              f"{sc['min_rel_gap']:.1e} (<1e-5: {sc['pairs_rel_gap_below_1e-5']})")
    print(f"accepted SAE draw attempt per path (0-based): {attempts}")
    total = 0
    for root, _, files in os.walk(out):
        for fn in sorted(files):
            total += os.path.getsize(os.path.join(root, fn))
    print(f"{len(tensors)} tensors, {os.path.getsize(st_path)} bytes in {st_path}; "
          f"{total} bytes in {out}")


# ----------------------------------------------------------------------------
# selfcheck

def max_rel(a, b):
    """max |a - b| / max |b|"""
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def check_rules():
    """Tie rules, ranking, grid, trapezoid and interval against plain-Python / numpy
    versions. Returns a list of failures."""
    import numpy as np
    fails = []
    g = torch.Generator().manual_seed(5)
    a = torch.relu(torch.randint(-2, 4, (300, 12), generator=g).to(DT))
    for k in range(1, 13):
        for row, clean, par in zip(a, kept_mask(a, k, False), kept_mask(a, k, True)):
            vals = row.tolist()
            ref = sorted(range(12), key=lambda i: (-vals[i], i))[:k]
            kth = sorted(vals, reverse=True)[k - 1]
            if sorted(ref) != clean.nonzero().flatten().tolist():
                fails.append(f"clean top-k rule, k {k}")
                break
            if [v >= kth for v in vals] != par.tolist():
                fails.append(f"parity top-k rule, k {k}")
                break
    # encode: codes = a on the kept set (a kept zero stays 0)
    x = torch.tensor([[0.5, -1.0, 2.0, 0.5]], dtype=DT)
    I4 = torch.eye(4, dtype=DT)
    c, m = encode(x, I4, torch.zeros(4, dtype=DT), torch.zeros(4, dtype=DT), 2, False)
    if c.tolist() != [[0.5, 0.0, 2.0, 0.0]] or m.tolist() != [[True, False, True, False]]:
        fails.append("clean encode example")
    c, m = encode(x, I4, torch.zeros(4, dtype=DT), torch.zeros(4, dtype=DT), 2, True)
    if c.tolist() != [[0.5, 0.0, 2.0, 0.5]] or m.sum() != 3:
        fails.append("parity encode example")
    c, m = encode(-x.abs(), I4, torch.zeros(4, dtype=DT), torch.zeros(4, dtype=DT), 2, True)
    if c.abs().sum() != 0 or m.sum() != 4:
        fails.append("parity encode with no positive value keeps every zero")
    # rank: positives by (-score, index), zeros after in a seeded permutation
    A = torch.tensor([[0.5, 0.0, 1.0], [0.5, 2.0, 0.0], [0.0, 1.0, 0.5]], dtype=DT)
    o = rank(A, 125).tolist()
    flat = A.reshape(-1).tolist()
    pos = sorted([f for f in range(9) if flat[f] > 0], key=lambda f: (-flat[f], f))
    if o[:len(pos)] != pos or sorted(o[len(pos):]) != [1, 5, 6] or rank(A, 125).tolist() != o:
        fails.append(f"rank {o}")
    # grids. SPEC's list is hard-coded; the formula it quotes gives 8, 64, 128, 4096, 8192,
    # 16384 instead of 7, 63, 127, 4095, 8191, 16383 on numpy 1.24 (exact powers of 2),
    # so the list is what counts; it must stay within 1 of the formula, point by point.
    ref = sorted(set(int(v) for v in np.logspace(0, 18, 37, base=2)))
    off = [(a, b) for a, b in zip(PARITY_GRID, ref) if a != b]
    if len(ref) != 35 or len(PARITY_GRID) != 35 or any(b - a != 1 for a, b in off) or \
            grid("parity", 64) != PARITY_GRID:
        fails.append("parity grid")
    print(f"  parity grid: SPEC's 35 points; numpy {np.__version__}'s unique(int(logspace(0, "
          f"18, 37, base 2))) differs at {len(off)} points by one: "
          f"{', '.join(f'{a} vs {b}' for a, b in off)}")
    if grid("clean", 1536) != PARITY_GRID[:20] + [1536] or \
            grid("clean", 1024) != PARITY_GRID[:18] + [1024] or \
            grid("clean", 2 ** 20) != PARITY_GRID + [370728, 524288, 741455, 2 ** 20]:
        fails.append(f"clean grid {grid('clean', 2 ** 20)[-6:]}")
    # scores and interval
    y = torch.rand(7, generator=g, dtype=DT)
    n = torch.tensor([1, 2, 4, 5, 7, 11, 16], dtype=DT)
    S, dS = scores(y, y - 0.1, y + 0.3, n)
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it
    if abs(S - float(trapezoid(y.numpy(), n.numpy()))) > 1e-12 or abs(dS - 0.2 * 15) > 1e-12:
        fails.append("scores")
    kl = torch.rand(3, 10, generator=g, dtype=DT)
    res = torch.randint(0, 10, (50, 10), generator=g)
    yy, lo, hi = interval(kl, res, 0.9)
    means = kl.numpy()[:, res.numpy()].mean(-1)
    if (abs(lo.numpy() - np.quantile(means, 0.05, axis=1)).max() > 1e-12 or
            abs(hi.numpy() - np.quantile(means, 0.95, axis=1)).max() > 1e-12):
        fails.append("interval")
    print(f"  rules (tie rules k = 1..12 on tied data, encode examples, rank, grids, "
          f"scores, interval): {'ok' if not fails else 'FAILED: ' + ', '.join(fails)}")
    return fails


def tiny_setup(path, F_U, F_D, k, seed, B=2, T=5):
    """The fixture's model, ids [B, T] and a small SAE pair for `path` (float32 weights
    used in float64), all drawn from torch.Generator().manual_seed(seed)."""
    cfg, p32 = fixture_model(0)
    params = {n: t.double() for n, t in p32.items()}
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, FIX["vocab"], (B, T), generator=g)
    _, rec = clean_run(params, cfg, ids)
    U = sae64(draw_sae(g, rec[hook_name(path, 0, "U")], F_U, k), k)
    D = sae64(draw_sae(g, rec[hook_name(path, 0, "D")], F_D, k), k)
    return cfg, params, ids, U, D


GRAD_VARIANTS = (("parity", "gradient", 3), ("clean", "gradient", 3),
                 ("clean", "jacobian", 1), ("parity", "gradient", 1), ("clean", "gradient", 1))


def safe_tiny(path, margin=1e-3):
    """The first seed whose encode selections (U on the data, D at every point of every
    variant) all have relative gaps > margin: a +-1e-6 step never changes them."""
    for seed in range(200):
        cfg, params, ids, U, D = tiny_setup(path, 8, 12, 3, seed)
        worst = float("inf")
        for mode, kind, steps in GRAD_VARIANTS:
            st = {}
            attribution_slow(params, cfg, U, D, path, 0, ids, mode, kind, steps, st)
            worst = min(worst, st["gap_U_attr"], st["gap_attr"])
            if st["few_U_attr"] or st["few_attr"]:
                worst = 0.0
        if worst > margin:
            return cfg, params, ids, U, D, seed, worst
    sys.exit(f"{path}: no tiny case with selection gaps > {margin}")


def check_gradients(eps=1e-6):
    """Per path and variant: each g_s of attribution_slow against (a) autograd's
    functional jacobian of sum_{b,t} F(p) and (b) central differences of the real F
    (selection recomputed, and checked unchanged, at p +- eps); A against A assembled
    from the finite-difference g_s; cross-position structure of dF/dp."""
    fails, worst = [], 0.0
    for path in PATHS:
        cfg, params, ids, U, D, seed, gap = safe_tiny(path)
        print(f"  {path:8s} tiny case: the fixture's model, F_U 8, F_D 12, k 3, ids 2 x 5 "
              f"(seed {seed}, smallest selection gap {gap:.2e})")
        for mode, kind, steps in GRAD_VARIANTS:
            ties = mode == "parity"
            grads = []
            A = attribution_slow(params, cfg, U, D, path, 0, ids, mode, kind, steps,
                                 grads=grads)
            z, _ = upstream_codes(params, cfg, U, path, 0, ids, mode)

            def F_of(p):
                y = path_fn(path, params, cfg, 0, p @ U["W_dec"] + U["b_dec"])
                return sae_encode(D, y, ties)

            I = torch.zeros_like(grads[0])
            alphas = step_alphas(mode, kind, steps)
            err_ad = err_fd = err_A = 0.0
            for alpha, gs in zip(alphas, grads):
                p0 = (alpha * z).clone()
                jac = torch.autograd.functional.jacobian(lambda p: F_of(p)[0].sum((0, 1)), p0)
                mask0 = F_of(p0)[1]
                fd = torch.zeros_like(jac)
                flat = p0.reshape(-1)
                for e in range(flat.numel()):
                    hi, lo = flat.clone(), flat.clone()
                    hi[e] += eps
                    lo[e] -= eps
                    Fh, mh = F_of(hi.reshape(p0.shape))
                    Fl, ml = F_of(lo.reshape(p0.shape))
                    if not (torch.equal(mh, mask0) and torch.equal(ml, mask0)):
                        fails.append(f"{path} {mode} {kind}: selection changed at +-eps")
                    fd.reshape(fd.shape[0], -1)[:, e] = ((Fh - Fl).sum((0, 1)) / (2 * eps))
                err_ad = max(err_ad, max_rel(gs, jac))
                err_fd = max(err_fd, max_rel(gs, fd))
                if kind == "jacobian":
                    I += fd
                elif ties:
                    I += fd * z.norm(dim=-1, keepdim=True) / len(alphas)
                else:
                    I += fd * z / len(alphas)
            A_fd = I.pow(2).sum((1, 2)).sqrt().t()
            err_A = max_rel(A, A_fd)
            worst = max(worst, err_fd, err_A)
            print(f"  {path:8s} {mode:6s} {kind:8s} S={len(alphas)}: g vs autograd jacobian "
                  f"{err_ad:.1e}, vs finite differences {err_fd:.1e}; A vs A(fd) {err_A:.1e}")
            if err_ad > 1e-12:
                fails.append(f"{path} {mode} {kind}: autograd jacobian {err_ad:.2e}")
            if err_fd > 1e-6 or err_A > 1e-6:
                fails.append(f"{path} {mode} {kind}: finite differences {err_fd:.2e} / "
                             f"{err_A:.2e}")
        # cross-position terms: exactly 0 for ff/mlpblock; block: causal, within a sequence
        z, _ = upstream_codes(params, cfg, U, path, 0, ids, "clean")
        full = torch.autograd.functional.jacobian(
            lambda p: sae_encode(D, path_fn(path, params, cfg, 0, p @ U["W_dec"] + U["b_dec"]),
                                 False)[0], z)  # [B, T, F_D, B, T, F_U]
        B, T = z.shape[:2]
        mag = full.abs().sum((2, 5))  # [B, T, B', T']
        same = torch.zeros(B, T, B, T, dtype=torch.bool)
        later = torch.zeros(B, T, B, T, dtype=torch.bool)
        for b in range(B):
            for t in range(T):
                same[b, t, b, t] = True
                later[b, t, b, t + 1:] = True
        cross = float(mag[~same].abs().max())
        if path == "block":
            ok = float(mag[later].max()) == 0.0 and float(mag[~same & ~later].max()) > 0
            print(f"  {path:8s} dF/dp: other sequences and later positions exactly 0, earlier "
                  f"positions max {float(mag[~same & ~later].max()):.2e}: {'ok' if ok else 'NO'}")
        else:
            ok = cross == 0.0
            print(f"  {path:8s} dF/dp across positions: max {cross:.1e} (must be 0)")
        if not ok:
            fails.append(f"{path}: cross-position structure")
    print(f"  worst gradient max rel: {worst:.2e}")
    return fails


def check_curve():
    """The per-latent loop of subcircuit_codes against a batched computation of r
    (every latent's masked codes through the path at once), several N, both modes;
    the full-circuit points; the splice hook."""
    fails = []
    worst = 0.0
    for path in PATHS:
        cfg, params, ids, U, D = tiny_setup(path, 16, 16, 3, 1, B=2, T=6)
        # splice: D's input clean -> logits unchanged
        logits, rec = clean_run(params, cfg, ids)
        same = spliced_logits(params, cfg, path, 0, ids, rec[hook_name(path, 0, "D")])
        if not torch.equal(same, logits) or kl_per_token(logits, same).abs().max() != 0:
            fails.append(f"{path}: splice of the clean activation changes the logits")
        for mode in MODES:
            z, _ = upstream_codes(params, cfg, U, path, 0, ids, mode)
            A = attribution_slow(params, cfg, U, D, path, 0, ids, mode)
            order = rank(A)
            F_U, F_D = 16, 16
            for n in (1, 5, 40, 100, 200, 256):
                _, r = subcircuit_codes(params, cfg, U, D, path, 0, z, order[:n], mode)
                M = torch.zeros(F_D, F_U, dtype=DT)
                for f in order[:n].tolist():
                    M[f % F_D, f // F_D] = 1.0
                X = (z[None] * M[:, None, None, :]) @ U["W_dec"] + U["b_dec"]  # [F_D,B,T,C]
                Y = path_fn(path, params, cfg, 0, X.reshape(-1, *X.shape[2:])).reshape(X.shape)
                pre = torch.einsum("jbtc,cj->btj", Y - D["b_dec"], D["W_enc"]) + D["b_enc"]
                r_fast = torch.where(M.sum(1) > 0, pre, torch.zeros_like(pre))
                worst = max(worst, max_rel(r, r_fast))
            g = grid(mode, 256)
            kl, kl_full, full_kl = curve(params, cfg, U, D, path, 0, ids, order, g, mode)
            at = g.index(256)
            if not torch.equal(kl[at], full_kl) or kl_full[at].abs().max() != 0:
                fails.append(f"{path} {mode}: the N = F_U*F_D point is not the full circuit")
            if mode == "parity" and path != "ff" and torch.equal(kl[at + 1], kl[at]):
                fails.append(f"{path} parity: beyond F_U*F_D equals the full-circuit run")
    print(f"  curve r, per-latent loop vs batched, N in 1..256 (16 x 16 pair, k 3), all "
          f"paths and modes: max rel {worst:.1e}; N = F_U*F_D point = full circuit "
          f"({'ok' if not fails else 'NO'})")
    if worst > 1e-12:
        fails.append(f"curve r batched vs loop {worst:.2e}")
    return fails


def check_fixture(folder):
    """The folder's tensors, SAE weights and model against a regeneration (bitwise)."""
    with open(os.path.join(folder, MANIFEST)) as f:
        seed = json.load(f)["seed"]
    cfg, params32, saes32, ids, results, _ = build_fixture(seed)
    fresh = fixture_tensors(ids, results)
    for path, s in saes32.items():
        for key, sae in s.items():
            for n, t in sae.items():
                fresh[f"{sae_folder(path, key)}/{n}"] = t
    for n, t in params32.items():
        fresh["model/" + n] = t
    stored = load_file(os.path.join(folder, "expected.safetensors"))
    for path in PATHS:
        for key in ("U32", "D48", "D32"):
            sub = sae_folder(path, key)
            for n, t in load_file(os.path.join(folder, sub, "sae_weights.safetensors")).items():
                stored[f"{sub}/{n}"] = t
    for n, t in load_file(os.path.join(folder, "model.safetensors")).items():
        stored["model/" + n] = t
    same = set(stored) == set(fresh) and all(torch.equal(stored[n], fresh[n]) for n in fresh)
    print(f"  {folder}: {len(stored)} tensors regenerated with seed {seed}: "
          f"{'bitwise identical' if same else 'DIFFERENT'}")
    return [] if same else ["fixture differs from a regeneration"]


def cmd_selfcheck(args):
    torch.set_num_threads(1)
    fails = check_rules()
    fails += check_gradients()
    fails += check_curve()
    if args.fixture:
        fails += check_fixture(args.fixture)
    if fails:
        sys.exit("FAIL: " + "; ".join(fails))
    print("OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fixture", help="write the model, SAE folders, expected.safetensors "
                       "and manifest.json to DIR")
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a = sub.add_parser("selfcheck", help="gradients vs autograd jacobian and finite "
                       "differences, curve vs a batched computation, rules")
    a.add_argument("--fixture", help="also require DIR to regenerate bitwise")
    args = ap.parse_args()
    {"fixture": cmd_fixture, "selfcheck": cmd_selfcheck}[args.cmd](args)


if __name__ == "__main__":
    main()
