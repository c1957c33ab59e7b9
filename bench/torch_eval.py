#!/usr/bin/env python3
"""PyTorch baseline of bench/bench_eval.c: the SCALAR attribution matrix by the
reference's slow algorithm, timed on a subset of downstream latents and
extrapolated.

The algorithm is tests/reference/scalar_ref.py's attribution_slow (its
upstream_codes, path_fn, sae_encode and step_alphas are imported, not copied),
run in float32 as the paper's code base runs it, on the model and SAEs
bench_eval saved (the same files libscalar loads) and the same token ids:

    z = U.encode(clean activation at U's hook)            one clean forward
    for each point p_s = alpha_s z (s = 0 .. S-1):
        y  = path(p_s @ W_dec_U + b_dec_U)                 forward, autograd on
        Fp = D.encode(y)
        for each downstream latent j:                      one backward each
            g = autograd.grad(Fp[..., j].sum(), p_s, retain_graph=True)
            I_j += g * z / S   (clean; parity: g * ||z|| / S)
    A[:, j] = sqrt(sum_{b,t} I_j^2)

The reference loops over all F_D latents at every point; here only J of them
(spread evenly over the latents D keeps somewhere at z, chosen by an untimed
pre-pass, which with one backward also warms PyTorch up) are run, and the time
is extrapolated linearly (a backward costs the same for every latent: the whole
graph is traversed, zeros or not):

    T_ext = t_codes + sum_s (t_fwd_s + t_bwd_s * n_s / J)

with t_codes the clean forward + U.encode, t_fwd_s the point's forward +
D.encode, t_bwd_s the J backwards (+ accumulation) at point s and n_s the
downstream latents that D keeps at >= 1 position at point s (a slow algorithm
that skips never-kept latents: generous to PyTorch).  The literal reference
(n_s = F_D at every point) is reported too.

--impl native (default) swaps gpt2_ref's spelled-out LayerNorm and GELU for
F.layer_norm and F.gelu(approximate="tanh") (same arithmetic, fused kernels, as
HookedTransformer uses); --impl ref keeps them.

    torch_eval.py --threads N --dir DIR [--paths ff,mlpblock,block] [--layer 1]
                  [--latents 16] [--steps 5] [--mode clean] [--impl native]

DIR holds model/ (config.json, model.safetensors), <path>_U/ and <path>_D/
(SAELens folders), ids.i32 (int32 [n_seq, seq], with --n-seq/--seq) and,
optionally, <path>_A.f32 (libscalar's A [F_U, F_D], float32, row-major): the
subset's columns are compared with it (norm-wise relative per column).

Prints one JSON line: {"torch", "threads", "blas", "paths": {path: {"measured_s",
"extrapolated_s", "literal_s", "t_codes", "t_fwd", "t_bwd", "n_kept", "latents",
"check": {...}}}}.  Without torch it prints {"skip": "<why>"} and
exits 0.  Without the safetensors package the files are read by libscalar's own
reader through the Python binding (only the weights; nothing of it is timed).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_model import loaded_blas, skip  # noqa: E402  (imports no torch at the top)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--paths", default="ff,mlpblock,block")
    ap.add_argument("--layer", type=int, default=1)
    ap.add_argument("--n-seq", type=int, default=64)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--latents", type=int, default=16, help="downstream latents run (J)")
    ap.add_argument("--steps", type=int, default=5, help="points on the gradient path (S)")
    ap.add_argument("--mode", choices=("clean", "parity"), default="clean")
    ap.add_argument("--impl", choices=("native", "ref"), default="native")
    return ap.parse_args()


def libscalar_load_file(path):
    """safetensors.torch.load_file through libscalar's own safetensors reader (the
    ctypes binding in bindings/python, on the library of the build tree), for a
    Python without the safetensors package (Debian 12 ships none).  The files only
    carry the weights; nothing of it is timed."""
    import torch
    sys.path.insert(0, os.path.join(HERE, "..", "bindings", "python"))
    import scalar
    return {name: torch.from_numpy(a.copy()) for name, a in scalar.inspect(path).items()}


def provide_safetensors():
    """Install a stand-in safetensors.torch (libscalar_load_file; no save_file) when the
    package is missing, so that scalar_ref.py and gpt2_ref.py import.  Returns the
    load_file in use and its description."""
    import importlib.util
    import types
    if importlib.util.find_spec("safetensors") is not None:
        from safetensors.torch import load_file
        return load_file, "safetensors"

    def unavailable(*_args, **_kwargs):
        raise RuntimeError("safetensors is not installed")
    pkg = types.ModuleType("safetensors")
    pkg.torch = types.ModuleType("safetensors.torch")
    pkg.torch.load_file = libscalar_load_file
    pkg.torch.save_file = unavailable
    sys.modules["safetensors"] = pkg
    sys.modules["safetensors.torch"] = pkg.torch
    return libscalar_load_file, "libscalar's reader via bindings/python (no safetensors package)"


def load_sae(torch, load_file, folder):
    """A SAELens folder as scalar_ref's dict (float32 tensors and k)."""
    with open(os.path.join(folder, "cfg.json")) as f:
        cfg = json.load(f)
    k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k"))
    if cfg.get("architecture") != "topk" or k is None:
        raise ValueError(f"{folder}: not a TopK SAE")
    w = load_file(os.path.join(folder, "sae_weights.safetensors"))
    sae = {n: w[n].float().contiguous() for n in ("W_enc", "b_enc", "W_dec", "b_dec")}
    sae["k"] = int(k)
    return sae


def pick_latents(kept_any, J):
    """J latents spread evenly over the kept ones (all of them if fewer)."""
    idx = kept_any.nonzero().flatten().tolist()
    if len(idx) <= J:
        return idx
    return [idx[(2 * i + 1) * len(idx) // (2 * J)] for i in range(J)]


def attribution_subset(torch, R, params, cfg, U, D, path, layer, ids, mode, steps, latents):
    """scalar_ref.attribution_slow in float32 for the downstream latents `latents`
    only, timed part by part.  Returns (A_sub [F_U, J], timings)."""
    ties = mode == "parity"
    t0 = time.perf_counter()
    z, _ = R.upstream_codes(params, cfg, U, path, layer, ids, mode)
    t_codes = time.perf_counter() - t0
    F_U = U["W_enc"].shape[1]
    B, T = z.shape[:2]
    alphas = R.step_alphas(mode, "gradient", steps)
    S = len(alphas)
    znorm = z.norm(dim=-1, keepdim=True)
    J = len(latents)
    I = torch.zeros(J, B, T, F_U, dtype=z.dtype)
    t_fwd, t_bwd, n_kept = [], [], []
    for alpha in alphas:
        t0 = time.perf_counter()
        p = (alpha * z).clone().requires_grad_(True)
        y = R.path_fn(path, params, cfg, layer, p @ U["W_dec"] + U["b_dec"])
        Fp, mask = R.sae_encode(D, y, ties)
        t1 = time.perf_counter()
        for jj, j in enumerate(latents):
            (g,) = torch.autograd.grad(Fp[..., j].sum(), p, retain_graph=True)
            if ties:  # NORM_WEIGHT
                I[jj] += g * znorm / S
            else:  # textbook integrated gradients
                I[jj] += g * z / S
        t2 = time.perf_counter()
        t_fwd.append(t1 - t0)
        t_bwd.append(t2 - t1)
        n_kept.append(int(mask.reshape(-1, mask.shape[-1]).any(0).sum()))
        del Fp, y, p
    A = I.pow(2).sum((1, 2)).sqrt().t().contiguous()
    return A, {"t_codes": t_codes, "t_fwd": t_fwd, "t_bwd": t_bwd, "n_kept": n_kept}


def check_columns(torch, A_sub, latents, ours_file, F_U, F_D):
    """Norm-wise relative difference per column, ours against PyTorch's."""
    if not os.path.exists(ours_file):
        return {"skip": "no libscalar matrix"}
    ours = torch.from_file(ours_file, size=F_U * F_D, dtype=torch.float32).reshape(F_U, F_D)
    ours = ours[:, latents].double()
    ref = A_sub.double()
    num = (ours - ref).norm(dim=0)
    den = ref.norm(dim=0).clamp_min(1e-30)
    rel = (num / den).tolist()
    worst = max(range(len(rel)), key=lambda c: rel[c])
    return {"max_rel": rel[worst], "worst_latent": latents[worst],
            "median_rel": sorted(rel)[len(rel) // 2], "columns": len(rel),
            "over_1e-3": sum(r > 1e-3 for r in rel),
            "all_rel": float((ours - ref).norm() / ref.norm().clamp_min(1e-30))}


def main():
    args = parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["BLIS_NUM_THREADS"] = str(args.threads)
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install
        skip(f"{sys.executable}: import torch failed: {e}")
    load_file, reader = provide_safetensors()
    try:
        sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
        import gpt2_ref as G
        import scalar_ref as R
    except Exception as e:
        skip(f"tests/reference/scalar_ref.py could not be imported: {e}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    if args.impl == "native":  # gpt2_ref's functions are looked up at call time
        G.layer_norm = lambda t, w, b: F.layer_norm(t, (t.shape[-1],), w, b, G.LN_EPS)
        G.gelu_tanh = lambda t: F.gelu(t, approximate="tanh")

    cfg, params = G.load_model(os.path.join(args.dir, "model"))  # float32
    ids = torch.from_file(os.path.join(args.dir, "ids.i32"), size=args.n_seq * args.seq,
                          dtype=torch.int32).reshape(args.n_seq, args.seq).long()
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "impl": args.impl, "reader": reader, "mode": args.mode, "steps": args.steps, "paths": {}}
    for path in args.paths.split(","):
        U = load_sae(torch, load_file, os.path.join(args.dir, f"{path}_U"))
        D = load_sae(torch, load_file, os.path.join(args.dir, f"{path}_D"))
        F_U, F_D = U["W_enc"].shape[1], D["W_enc"].shape[1]
        with torch.no_grad():  # untimed: which latents D keeps at z
            z, _ = R.upstream_codes(params, cfg, U, path, args.layer, ids, args.mode)
            y = R.path_fn(path, params, cfg, args.layer, z @ U["W_dec"] + U["b_dec"])
            _, mask = R.sae_encode(D, y, args.mode == "parity")
            latents = pick_latents(mask.reshape(-1, F_D).any(0), args.latents)
        # untimed warm-up of the backward (first-call allocations), as the forward above
        p = z.clone().requires_grad_(True)
        Fp, _ = R.sae_encode(D, R.path_fn(path, params, cfg, args.layer,
                                          p @ U["W_dec"] + U["b_dec"]), args.mode == "parity")
        torch.autograd.grad(Fp[..., latents[0]].sum(), p)
        del p, Fp
        t0 = time.perf_counter()
        A_sub, t = attribution_subset(torch, R, params, cfg, U, D, path, args.layer, ids,
                                      args.mode, args.steps, latents)
        measured = time.perf_counter() - t0
        J = len(latents)
        fixed = t["t_codes"] + sum(t["t_fwd"])
        ext = fixed + sum(b * n / J for b, n in zip(t["t_bwd"], t["n_kept"]))
        literal = fixed + sum(b * F_D / J for b in t["t_bwd"])
        result["paths"][path] = {
            "measured_s": measured, "extrapolated_s": ext, "literal_s": literal,
            "latents": J, "F_U": F_U, "F_D": F_D, "n_kept": t["n_kept"],
            "t_codes": t["t_codes"], "t_fwd": t["t_fwd"], "t_bwd": t["t_bwd"],
            "per_backward_s": sum(t["t_bwd"]) / (J * len(t["t_bwd"])),
            "check": check_columns(torch, A_sub, latents,
                                   os.path.join(args.dir, f"{path}_A.f32"), F_U, F_D)}
    result["blas"] = loaded_blas()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
