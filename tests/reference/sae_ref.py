#!/usr/bin/env python3
"""PyTorch oracle for libscalar's SAE training maths (SPEC.md section 2).

Plain torch, independent of libscalar: the forward pass, loss and gradients of
- a TopK SAE, with the formulas of include/scalar/sae.h (clean mode):
    pre   = ReLU(W_enc^T (x - b_dec) + b_enc)          (apply_b_dec_to_input)
    f     = exactly the k largest of pre per token, larger first, equal values lower
            index first (kept zeros when fewer than k are positive: the lowest indices)
    x_hat = f @ W_dec + b_dec
    loss  = sum over d_in of (x_hat - x)^2, mean over tokens
  gradients by autograd with the top-k selection held constant (they flow only through
  the kept entries; the ReLU derivative at exactly 0 is 0, as torch's);
- Staircase groups: one shared W_enc [d_in, n_max] / W_dec [n_max, d_in]; SAE j uses the
  first n_j latents with its own b_enc [n_j], b_dec [d_in] and its own input x_j; group
  loss = sum of the SAEs' losses. Variants `share` (SAE j's gradient reaches the whole
  prefix [0, n_j)), `detach` (only [n_{j-1}, n_j): the prefix [0, n_{j-1}) is .detach()ed
  inside SAE j's forward), `noshare` (independent TopK SAEs of sizes n_j).
JSAE (SPEC.md section 2, Jacobian SAEs) is not covered here.

    sae_ref.py fixture --out DIR [--seed 0]
    sae_ref.py selfcheck [--fixture DIR]

See tests/reference/README.md for the fixture's contents and the tolerances to use.
"""
import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

TOL = 1e-4  # consumers: norm-wise relative, per tensor (tests/reference/README.md)
WEIGHT_STD = 0.3
FIXTURE = dict(d_in=8, d_sae=32, sizes=(16, 32, 48), k=3, n_tokens=19)
TIES = dict(d_in=8, d_sae=16, k=3, n_tokens=19)
FILE = "sae_fixture"


# ----------------------------------------------------------------------------
# The maths

def topk_indices(pre, k):
    """[T, n] -> [T, k] int64: per row the k largest, larger first, equal values lower
    index first. A stable ascending sort of -pre keeps equal values in index order."""
    return torch.sort(-pre.detach(), dim=-1, stable=True).indices[:, :k]


def topk_sae(x, W_enc, b_enc, W_dec, b_dec, k):
    """One TopK SAE on x [T, d_in] -> dict(codes, values, indices, x_hat, loss)."""
    pre = torch.relu((x - b_dec) @ W_enc + b_enc)
    indices = topk_indices(pre, k)  # constant: no gradient through the selection
    values = pre.gather(1, indices)
    codes = torch.zeros_like(pre).scatter(1, indices, values)
    x_hat = codes @ W_dec + b_dec
    loss = ((x_hat - x) ** 2).sum(-1).mean()
    return dict(codes=codes, values=values, indices=indices, x_hat=x_hat, loss=loss)


def staircase(p, sizes, k, variant):
    """A staircase group; p holds W_enc, W_dec and sae{j}.x, sae{j}.b_enc, sae{j}.b_dec.
    Returns one topk_sae dict per SAE."""
    assert variant in ("share", "detach")
    assert all(a < b for a, b in zip(sizes, sizes[1:])), sizes
    outs, lo = [], 0
    for j, n in enumerate(sizes):
        W_enc, W_dec = p["W_enc"][:, :n], p["W_dec"][:n]
        if variant == "detach" and lo > 0:  # SAE j trains only latents [lo, n)
            W_enc = torch.cat([p["W_enc"][:, :lo].detach(), p["W_enc"][:, lo:n]], 1)
            W_dec = torch.cat([p["W_dec"][:lo].detach(), p["W_dec"][lo:n]], 0)
        s = f"sae{j}."
        outs.append(topk_sae(p[s + "x"], W_enc, p[s + "b_enc"], W_dec, p[s + "b_dec"], k))
        lo = n
    return outs


def noshare(p, sizes, k):
    """Independent TopK SAEs; p holds sae{j}.x, sae{j}.W_enc, ... of sizes n_j."""
    return [topk_sae(p[f"sae{j}.x"], p[f"sae{j}.W_enc"], p[f"sae{j}.b_enc"],
                     p[f"sae{j}.W_dec"], p[f"sae{j}.b_dec"], k) for j in range(len(sizes))]


def run_case(kind, p, cfg):
    """-> list of topk_sae dicts (one for a single SAE)."""
    if kind in ("topk", "ties"):
        return [topk_sae(p["x"], p["W_enc"], p["b_enc"], p["W_dec"], p["b_dec"], cfg["k"])]
    if kind == "noshare":
        return noshare(p, cfg["sizes"], cfg["k"])
    return staircase(p, cfg["sizes"], cfg["k"], kind)


def is_input(name):
    return name == "x" or name.endswith(".x")


def trainable(p):
    """Parameter names (the inputs x are data, not parameters)."""
    return [n for n in p if not is_input(n)]


# ----------------------------------------------------------------------------
# Random cases (draws from one torch.Generator, in the order written)

def draw_topk(g, d_in, d_sae, T):
    """x ~ N(0,1) [T, d_in]; W_enc, b_enc, W_dec, b_dec ~ N(0, 0.3^2)."""
    def rn(*shape):
        return torch.randn(*shape, generator=g)
    return {"x": rn(T, d_in), "W_enc": rn(d_in, d_sae) * WEIGHT_STD,
            "b_enc": rn(d_sae) * WEIGHT_STD, "W_dec": rn(d_sae, d_in) * WEIGHT_STD,
            "b_dec": rn(d_in) * WEIGHT_STD}


def draw_inputs(g, d_in, sizes, T):
    """sae{j}.x ~ N(0,1) [T, d_in], one per SAE (its own hook point)."""
    return {f"sae{j}.x": torch.randn(T, d_in, generator=g) for j in range(len(sizes))}


def draw_staircase(g, d_in, sizes):
    """Shared W_enc [d_in, n_max], W_dec [n_max, d_in], then per SAE b_enc [n_j],
    b_dec [d_in]; all N(0, 0.3^2)."""
    p = {"W_enc": torch.randn(d_in, sizes[-1], generator=g) * WEIGHT_STD,
         "W_dec": torch.randn(sizes[-1], d_in, generator=g) * WEIGHT_STD}
    for j, n in enumerate(sizes):
        p[f"sae{j}.b_enc"] = torch.randn(n, generator=g) * WEIGHT_STD
        p[f"sae{j}.b_dec"] = torch.randn(d_in, generator=g) * WEIGHT_STD
    return p


def draw_noshare(g, d_in, sizes):
    """Per SAE j: W_enc [d_in, n_j], b_enc, W_dec [n_j, d_in], b_dec; N(0, 0.3^2)."""
    p = {}
    for j, n in enumerate(sizes):
        for name, shape in (("W_enc", (d_in, n)), ("b_enc", (n,)), ("W_dec", (n, d_in)),
                            ("b_dec", (d_in,))):
            p[f"sae{j}.{name}"] = torch.randn(*shape, generator=g) * WEIGHT_STD
    return p


def draw_ties(g, d_in, d_sae, T):
    """A TopK SAE whose pre-activations are exact in float32 whatever the summation
    order: x, b_dec, W_enc are small integers (x in [-2, 2], b_dec and W_enc in
    [-1, 1]) and b_enc is in {-2, -1, 0, 0.25, 0.5}, so pre is an exact multiple of 1/4
    below 32 and the many ties are real ties in every implementation. b_enc is a
    non-positive integer except b_enc[5] = 0.5 and b_enc[11] = 0.25, and the last token
    is x = b_dec, so its pre = b_enc exactly: two positive latents, then kept zeros from
    the lowest indices (codes 5, 11, 0). W_dec ~ N(0, 0.3^2) (it does not affect the
    selection)."""
    def ints(lo, hi, *shape):
        return torch.randint(lo, hi + 1, shape, generator=g).float()
    p = {"x": ints(-2, 2, T, d_in), "W_enc": ints(-1, 1, d_in, d_sae),
         "b_enc": ints(-2, 0, d_sae), "W_dec": torch.randn(d_sae, d_in, generator=g) * WEIGHT_STD,
         "b_dec": ints(-1, 1, d_in)}
    p["b_enc"][5], p["b_enc"][11] = 0.5, 0.25
    p["x"][-1] = p["b_dec"]
    return p


def tie_stats(pre, k):
    """Tokens with an exact tie across the k-th / (k+1)-th positions among positive
    values, with equal kept positive values, and with fewer than k positive."""
    srt = torch.sort(pre, dim=-1, descending=True).values
    boundary = int(((srt[:, k - 1] == srt[:, k]) & (srt[:, k - 1] > 0)).sum())
    kept = srt[:, :k]
    equal_kept = int(((kept[:, 1:] == kept[:, :-1]) & (kept[:, 1:] > 0)).any(-1).sum())
    few = int(((pre > 0).sum(-1) < k).sum())
    return dict(boundary_ties=boundary, equal_kept_values=equal_kept, fewer_than_k_positive=few)


def min_gap(pre, k):
    """Smallest (k-th - (k+1)-th) of ReLU(pre) over tokens whose k-th is positive: how
    far the selection is from flipping (float32 implementations need it >> 1e-6)."""
    srt = torch.sort(pre, dim=-1, descending=True).values
    live = srt[:, k - 1] > 0
    return float((srt[live, k - 1] - srt[live, k]).min()) if live.any() else float("inf")


def case_pres(kind, p, cfg):
    """Pre-activations before the ReLU, (x - b_dec) @ W_enc + b_enc, of every SAE of a
    case (all of its latents)."""
    if kind in ("topk", "ties"):
        return [(p["x"] - p["b_dec"]) @ p["W_enc"] + p["b_enc"]]
    res = []
    for j, n in enumerate(cfg["sizes"]):
        W = p[f"sae{j}.W_enc"] if kind == "noshare" else p["W_enc"][:, :n]
        res.append((p[f"sae{j}.x"] - p[f"sae{j}.b_dec"]) @ W + p[f"sae{j}.b_enc"])
    return res


# ----------------------------------------------------------------------------
# Gradients

def leaf64(p):
    return {n: t.detach().double().clone().requires_grad_(not is_input(n))
            for n, t in p.items()}


def forward_backward(kind, p, cfg):
    """Float64 forward + autograd from float32 (or float64) tensors p.
    -> (outs, total loss, {param: grad of total}, [{shared param: grad of loss_j}])"""
    q = leaf64(p)
    outs = run_case(kind, q, cfg)
    total = sum(o["loss"] for o in outs)
    names = trainable(q)
    grads = dict(zip(names, torch.autograd.grad(total, [q[n] for n in names],
                                                retain_graph=True)))
    parts = []
    if kind in ("share", "detach"):
        for o in outs:
            gs = torch.autograd.grad(o["loss"], [q["W_enc"], q["W_dec"]], retain_graph=True)
            parts.append({"W_enc": gs[0], "W_dec": gs[1]})
    return outs, total, grads, parts


# ----------------------------------------------------------------------------
# fixture

CASE_DOC = {
    "topk": "one TopK SAE",
    "ties": "one TopK SAE with exact ties (small integer inputs and weights, see draw_ties); the last token "
            "is x = b_dec, so pre = b_enc, whose only positive entries are 0.5 at 5 and 0.25 "
            "at 11: codes (5, 11, 0), values (0.5, 0.25, 0); at a tie across the k-th place "
            "the gradient reaches only the kept (lower-index) latent",
    "share": "staircase group, variant share: SAE j's gradient reaches latents [0, n_j) of "
             "the shared W_enc columns / W_dec rows",
    "detach": "staircase group, variant detach: same inputs and weights as share (so the same "
              "forward); SAE j's gradient reaches only latents [n_{j-1}, n_j)",
    "noshare": "independent TopK SAEs of sizes n_j on the same inputs as share, own weights",
}


def tensor_doc(name):
    """One line per tensor name pattern, for the JSON."""
    case, rest = name.split(".", 1)
    sub = rest.split(".")
    if sub[0] == "grad":
        return f"d {case}.loss / d {case}.{'.'.join(sub[1:])} (autograd, top-k mask constant)"
    if len(sub) == 3 and sub[1] == "grad_part":
        return (f"d {case}.{sub[0]}.loss / d {case}.{sub[2]}: SAE {sub[0][3:]}'s own share "
                f"of {case}.grad.{sub[2]} (the parts sum to it)")
    last = sub[-1]
    return {
        "x": "input activations [n_tokens, d_in]",
        "W_enc": "encoder [d_in, latents]", "W_dec": "decoder [latents, d_in]",
        "b_enc": "encoder bias [latents]", "b_dec": "decoder bias [d_in]",
        "codes": "dense codes [n_tokens, latents]: the k kept values, zeros elsewhere",
        "values": "kept values [n_tokens, k], larger first, equal values lower index first",
        "indices": "kept latent indices [n_tokens, k] (I32)",
        "x_hat": "reconstruction [n_tokens, d_in]",
        "loss": "[1] sum over d_in of (x_hat - x)^2, mean over tokens" if len(sub) > 1 else
                "[1] the loss back-propagated: sum of the SAEs' losses (one SAE: its loss)",
        "grad_norm": "[1] global L2 norm of every gradient of the case (what one clip sees)",
    }[last]


def build_fixture(seed):
    """-> (tensors {name: float32/int32 tensor}, per-case settings for the JSON)."""
    g = torch.Generator().manual_seed(seed)
    d_in, T, k, sizes = FIXTURE["d_in"], FIXTURE["n_tokens"], FIXTURE["k"], FIXTURE["sizes"]
    cases = {}
    cases["topk"] = draw_topk(g, d_in, FIXTURE["d_sae"], T)
    cases["ties"] = draw_ties(g, TIES["d_in"], TIES["d_sae"], TIES["n_tokens"])
    xs = draw_inputs(g, d_in, sizes, T)
    group = draw_staircase(g, d_in, sizes)
    cases["share"] = {**xs, **group}
    cases["detach"] = {**xs, **group}
    cases["noshare"] = {**xs, **draw_noshare(g, d_in, sizes)}

    tensors, settings = {}, {}
    for kind, p in cases.items():
        if kind in ("topk", "ties"):
            cfg = {"d_in": p["W_enc"].shape[0], "d_sae": p["W_enc"].shape[1], "k": k,
                   "n_tokens": p["x"].shape[0]}
        else:
            cfg = {"d_in": d_in, "sizes": list(sizes), "k": k, "n_tokens": T}
        outs, total, grads, parts = forward_backward(kind, p, cfg)
        # The selection in float32 must agree with the float64 one used here.
        outs32 = run_case(kind, p, cfg)
        for o, o32 in zip(outs, outs32):
            assert torch.equal(o["indices"], o32["indices"]), kind
        pres = [torch.relu(pr.double()) for pr in case_pres(kind, p, cfg)]
        cfg["doc"] = CASE_DOC[kind]
        cfg["min_topk_gap"] = min(min_gap(pr, k) for pr in pres)
        if kind == "ties":
            cfg.update(tie_stats(pres[0], k))
            assert all(cfg[s] > 0 for s in ("boundary_ties", "equal_kept_values",
                                             "fewer_than_k_positive")), \
                f"seed {seed}: the ties case lacks a kind of tie, try another seed: {cfg}"
        settings[kind] = cfg

        out = {n: t for n, t in p.items()}
        single = kind in ("topk", "ties")
        for j, o in enumerate(outs):
            s = "" if single else f"sae{j}."
            for key in ("codes", "values", "indices", "x_hat"):
                out[s + key] = o[key]
            if not single:
                out[s + "loss"] = o["loss"].reshape(1)
        out["loss"] = total.reshape(1)
        for n, gr in grads.items():
            out["grad." + n] = gr
        for j, part in enumerate(parts):
            for n, gr in part.items():
                out[f"sae{j}.grad_part.{n}"] = gr
        out["grad_norm"] = torch.sqrt(sum((gr ** 2).sum() for gr in grads.values())).reshape(1)
        for n, t in out.items():
            t = t.detach()
            # + 0.0 turns -0.0 (ReLU of a negative zero) into +0.0
            t = t.to(torch.int32) if n.endswith("indices") else t.to(torch.float32) + 0.0
            tensors[f"{kind}.{n}"] = t.contiguous().clone()
    return tensors, settings


def cmd_fixture(args):
    torch.set_num_threads(1)
    tensors, settings = build_fixture(args.seed)
    os.makedirs(args.out, exist_ok=True)
    command = " ".join(["sae_ref.py"] + sys.argv[1:])
    # One metadata key: the writer does not sort the keys, so more would make the bytes
    # vary from run to run. The description lives in the JSON.
    meta = {"format": "pt"}
    st_path = os.path.join(args.out, FILE + ".safetensors")
    save_file(tensors, st_path, metadata=meta)
    desc = {
        "generator": "tests/reference/sae_ref.py fixture",
        "command": command,
        "seed": args.seed,
        "torch": torch.__version__,
        "tolerance": {
            "convention": "norm-wise relative per tensor: ||ours - ref||_2 / ||ref||_2 <= 1e-4 "
                          "(tests/reference/README.md); indices exactly equal",
            "norm_rel": TOL,
        },
        "precision": "inputs and weights drawn in float32 (torch.Generator seeded with seed, "
                     "draws in the order topk, ties, staircase inputs sae0..2.x, shared "
                     "W_enc, W_dec, per-SAE b_enc, b_dec, noshare weights per SAE); every "
                     "output computed in float64 from them and rounded to float32; the "
                     "top-k selection computed in float32 is identical",
        "formulas": {
            "pre": "ReLU((x - b_dec) @ W_enc + b_enc)  (apply_b_dec_to_input)",
            "topk": "exactly k per token; larger first, equal values lower index first; "
                    "when fewer than k are positive the kept zeros are the lowest indices",
            "x_hat": "codes @ W_dec + b_dec",
            "loss": "per SAE: sum over d_in of (x_hat - x)^2, mean over tokens; "
                    "<case>.loss = sum over the case's SAEs",
            "grads": "autograd of <case>.loss with the top-k selection constant (gradients "
                     "only through the kept entries; ReLU derivative 0 at exactly 0)",
            "staircase": "SAE j uses W_enc[:, :n_j], W_dec[:n_j, :], its own b_enc [n_j], "
                         "b_dec [d_in] and input x_j; detach: W_enc[:, :n_{j-1}] and "
                         "W_dec[:n_{j-1}] enter SAE j's forward through .detach()",
        },
        "naming": "<case>.<param or output>; in a group <case>.sae{j}.<name> (j from 0) for "
                  "per-SAE tensors; gradients <case>.grad.<param name>; staircase "
                  "<case>.sae{j}.grad_part.W_enc|W_dec = SAE j's own contribution",
        "relations": [
            "detach.* forward tensors equal share.* (same inputs and weights)",
            "share.grad.W_enc = sum_j share.sae{j}.grad_part.W_enc (also W_dec, and detach)",
            "detach.sae{j}.grad_part.W_enc[:, :n_{j-1}] = 0 and W_dec[:n_{j-1}] = 0",
            "detach.grad.W_enc[:, n_{j-1}:n_j] = share.sae{j}.grad_part.W_enc[:, n_{j-1}:n_j]",
            "the last block (latents [n_{J-2}, n_{J-1})) of share.grad and detach.grad agree",
        ],
        "cases": settings,
        "tensors": {n: {"shape": list(t.shape), "dtype": "I32" if t.dtype == torch.int32
                        else "F32", "doc": tensor_doc(n)} for n, t in tensors.items()},
    }
    with open(os.path.join(args.out, FILE + ".json"), "w") as f:
        json.dump(desc, f, indent=1)
        f.write("\n")
    for kind in settings:
        print(f"{kind}: loss {float(tensors[kind + '.loss']):.6f} "
              f"grad_norm {float(tensors[kind + '.grad_norm']):.6f} "
              f"min_topk_gap {settings[kind]['min_topk_gap']:.3e}")
    print(f"{len(tensors)} tensors, {os.path.getsize(st_path)} bytes in {st_path}")


# ----------------------------------------------------------------------------
# selfcheck

def rel(a, b):
    """(max |a-b| / max |b|, ||a-b|| / ||b||)"""
    d = (a - b).abs()
    return float(d.max() / b.abs().max()), float((a - b).norm() / b.norm())


def finite_diff(loss_fn, p, name, eps, cols=None):
    """Central differences of loss_fn(p) w.r.t. p[name] (float64, in place, restored);
    cols: restrict to these latents (W_enc columns / W_dec rows), NaN elsewhere."""
    t = p[name]
    out = torch.full_like(t, float("nan"))
    mask = torch.ones_like(t, dtype=torch.bool)
    if cols is not None:
        mask.zero_()
        (mask[:, cols[0]:cols[1]] if name == "W_enc" else mask[cols[0]:cols[1]]).fill_(True)
    flat, oflat = t.view(-1), out.view(-1)
    with torch.no_grad():
        for i in mask.view(-1).nonzero().flatten().tolist():
            v = float(flat[i])
            flat[i] = v + eps
            up = float(loss_fn(p))
            flat[i] = v - eps
            down = float(loss_fn(p))
            flat[i] = v
            oflat[i] = (up - down) / (2 * eps)
    return out


def check_ties_rule():
    """topk_indices against a plain sort on (-value, index), on data full of ties."""
    g = torch.Generator().manual_seed(5)
    pre = torch.relu(torch.randint(-2, 4, (300, 12), generator=g).float())
    for k in range(1, 13):
        ours = topk_indices(pre, k).tolist()
        ref = [sorted(range(12), key=lambda i: (-float(row[i]), i))[:k] for row in pre]
        if ours != ref:
            return False
    return True


def tiny_case(kind, seed):
    """A float64 case small enough for finite differences on every element."""
    g = torch.Generator().manual_seed(seed)
    d_in, sizes, k, T = 4, (4, 8, 12), 2, 5
    if kind == "topk":
        return draw_topk(g, d_in, 8, T), {"d_in": d_in, "d_sae": 8, "k": k}
    p = draw_inputs(g, d_in, sizes, T)
    p.update(draw_noshare(g, d_in, sizes) if kind == "noshare" else draw_staircase(g, d_in, sizes))
    return p, {"d_in": d_in, "sizes": sizes, "k": k}


def safe_tiny_case(kind, margin=1e-3):
    """The first seed whose |pre| and top-k gaps all exceed margin, so that finite
    differences of +-1e-6 never change the selection or cross a ReLU kink."""
    for seed in range(100):
        p, cfg = tiny_case(kind, seed)
        p = {n: t.double() for n, t in p.items()}
        pres = case_pres(kind, p, cfg)
        if all(pr.abs().min() > margin and min_gap(torch.relu(pr), cfg["k"]) > margin
               for pr in pres):
            return p, cfg, seed
    sys.exit(f"no tiny {kind} case with margin {margin}")


def check_fd(kind, eps=1e-6):
    """Autograd vs central differences, float64. Returns (worst max rel, worst norm rel)."""
    p, cfg, seed = safe_tiny_case(kind)
    outs, total, grads, parts = forward_backward(kind, p, cfg)
    q = {n: t.clone() for n, t in p.items()}
    worst = [0.0, 0.0]

    def note(ours, ref):
        a, b = rel(ours, ref)
        worst[0], worst[1] = max(worst[0], a), max(worst[1], b)

    def total_loss(pp):
        return sum(o["loss"] for o in run_case(kind, pp, cfg))
    if kind != "detach":
        for n in trainable(q):
            note(grads[n], finite_diff(total_loss, q, n, eps))
    else:
        # Own biases: d total / d b = d loss_j / d b. Shared: block j of the detach
        # gradient = d loss_j / d (block j), since no other SAE's gradient reaches it.
        for n in trainable(q):
            if n.startswith("sae"):
                note(grads[n], finite_diff(total_loss, q, n, eps))
        lo = 0
        for j, n_j in enumerate(cfg["sizes"]):
            def loss_j(pp, j=j):
                return staircase(pp, cfg["sizes"], cfg["k"], "share")[j]["loss"]
            for n in ("W_enc", "W_dec"):
                fd = finite_diff(loss_j, q, n, eps, cols=(lo, n_j))
                sl = (slice(None), slice(lo, n_j)) if n == "W_enc" else (slice(lo, n_j),)
                note(grads[n][sl], fd[sl])
            lo = n_j
    print(f"  {kind:8s} (seed {seed}): autograd vs finite differences: max rel "
          f"{worst[0]:.3e}, norm rel {worst[1]:.3e}")
    return worst, (p, cfg, grads, parts)


def check_detach(share_run, detach_run):
    """detach parts zero on their prefix; detach total = share's own-block parts; differs
    from share on the prefix; equal on the last block. -> list of failure strings."""
    fails = []
    (_, cfg, g_share, parts_share), (_, _, g_det, parts_det) = share_run, detach_run
    sizes = cfg["sizes"]
    los = [0] + list(sizes[:-1])

    def cols(t, name, a, b):
        return t[:, a:b] if name == "W_enc" else t[a:b]
    prefix_max = own_diff = 0.0
    for j, (lo, hi) in enumerate(zip(los, sizes)):
        for n in ("W_enc", "W_dec"):
            prefix_max = max(prefix_max, float(cols(parts_det[j][n], n, 0, lo).abs().max())
                             if lo else 0.0)
            own_diff = max(own_diff, rel(cols(g_det[n], n, lo, hi),
                                         cols(parts_share[j][n], n, lo, hi))[0])
    print(f"  detach: SAE j's gradient on the prefix [0, n_(j-1)): max |g| {prefix_max:.1e} "
          f"(must be 0)")
    print(f"  detach: total on block j vs share's SAE-j part there: max rel {own_diff:.3e}")
    if prefix_max != 0.0:
        fails.append("detach gradient reaches the prefix")
    if own_diff > 1e-12:
        fails.append("detach block gradient differs from SAE j's own share")
    sum_diff = 0.0
    for g, parts in ((g_share, parts_share), (g_det, parts_det)):
        for n in ("W_enc", "W_dec"):
            sum_diff = max(sum_diff, rel(sum(pt[n] for pt in parts), g[n])[0])
    print(f"  share and detach: sum of per-SAE parts vs total: max rel {sum_diff:.3e}")
    if sum_diff > 1e-12:
        fails.append("parts do not sum to the total")
    pre_diff = min(rel(cols(g_det[n], n, 0, sizes[-2]), cols(g_share[n], n, 0, sizes[-2]))[1]
                   for n in ("W_enc", "W_dec"))
    last_diff = max(rel(cols(g_det[n], n, sizes[-2], sizes[-1]),
                        cols(g_share[n], n, sizes[-2], sizes[-1]))[0] for n in ("W_enc", "W_dec"))
    print(f"  detach vs share on the prefix [0, n_(J-2)): norm rel difference {pre_diff:.3e} "
          f"(must be large); on the last block: max rel {last_diff:.3e} (must be 0)")
    if pre_diff < 1e-2:
        fails.append("detach and share agree on the prefix")
    if last_diff > 1e-12:
        fails.append("detach and share differ on the last block")
    return fails


def cmd_selfcheck(args):
    torch.set_num_threads(1)
    fails = []
    ok = check_ties_rule()
    print(f"  top-k order vs sorted((-value, index)) on tied data, k = 1..12: "
          f"{'identical' if ok else 'DIFFERENT'}")
    if not ok:
        fails.append("tie rule")
    runs = {}
    for kind in ("topk", "share", "detach", "noshare"):
        worst, runs[kind] = check_fd(kind)
        if worst[0] > 1e-6:
            fails.append(f"{kind}: finite differences max rel {worst[0]:.3e}")
    # share and detach draw the same tiny case (same draws, same seed search)
    assert all(torch.equal(t, runs["detach"][0][n]) for n, t in runs["share"][0].items())
    fails += check_detach(runs["share"], runs["detach"])
    if args.fixture:
        with open(os.path.join(args.fixture, FILE + ".json")) as f:
            seed = json.load(f)["seed"]
        stored = load_file(os.path.join(args.fixture, FILE + ".safetensors"))
        fresh, _ = build_fixture(seed)
        same = set(stored) == set(fresh) and all(torch.equal(stored[n], fresh[n]) for n in fresh)
        print(f"  {args.fixture}: {len(stored)} tensors, regenerated with seed {seed}: "
              f"{'bitwise identical' if same else 'DIFFERENT'}")
        if not same:
            fails.append("fixture differs from a regeneration")
    if fails:
        sys.exit("FAIL: " + "; ".join(fails))
    print("OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("fixture", help="write DIR/sae_fixture.safetensors and .json")
    a.add_argument("--out", required=True)
    a.add_argument("--seed", type=int, default=0)
    a = sub.add_parser("selfcheck", help="autograd vs finite differences, detach checks")
    a.add_argument("--fixture", help="also require DIR's fixture to regenerate bitwise")
    args = ap.parse_args()
    {"fixture": cmd_fixture, "selfcheck": cmd_selfcheck}[args.cmd](args)


if __name__ == "__main__":
    main()
