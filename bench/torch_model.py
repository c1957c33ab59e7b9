#!/usr/bin/env python3
"""PyTorch baseline of bench/bench_model.c: SPEC.md's toy GPT-2, timed per step.

The model is tests/reference/gpt2_ref.py's (imported, not copied): its forward, loss,
SPEC initialisation and AdamW (decay 0.1 on rank >= 2 tensors, betas (0.9, 0.95),
eps 1e-8), plus clip_grad_norm_(1.0), float32, no dropout.  A training step is
zero_grad, forward, cross-entropy, backward, clip, AdamW step; a forward step is the
logits under torch.no_grad().  Token ids are uniform random in [0, vocab).

    torch_model.py --threads N --steps S [--warmup W] [--batch 128] [--seq 128]
                   [--mode train|forward|both] [--impl ref|native|both]

--impl ref runs gpt2_ref.py as written (LayerNorm and GELU spelled out in tensor
ops); --impl native swaps those two functions for F.layer_norm and
F.gelu(approximate="tanh"): the same arithmetic in fused ATen kernels, what a
PyTorch user would write.  both: ref, then native, in this process.

Prints one JSON line: {"torch", "threads", "blas" (the BLAS library actually
mapped), "impls": {impl: {mode: {median_s, best_s, tokens_per_s, ...}}}}, median
and best over the timed steps.  Without torch it prints {"skip": "<why>"} and
exits 0.
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per mode")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--mode", choices=("train", "forward", "both"), default="both")
    ap.add_argument("--impl", choices=("ref", "native", "both"), default="both")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def skip(why):
    print(json.dumps({"skip": why}))
    sys.exit(0)


def import_reference():
    """gpt2_ref.py imports safetensors at the top for its file I/O, which the
    benchmark does not use; stand in an empty module where it is missing."""
    if importlib.util.find_spec("safetensors") is None:
        def unavailable(*_args, **_kwargs):
            raise RuntimeError("safetensors is not installed")
        pkg = types.ModuleType("safetensors")
        pkg.torch = types.ModuleType("safetensors.torch")
        pkg.torch.load_file = pkg.torch.save_file = unavailable
        sys.modules["safetensors"] = pkg
        sys.modules["safetensors.torch"] = pkg.torch
    sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
    import gpt2_ref
    return gpt2_ref


def loaded_blas():
    """The libblas the process mapped (Debian picks it with update-alternatives)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "libblas" in line or "libblis" in line
                     or "openblas" in line or "libmkl" in line}
        return ", ".join(sorted(os.path.realpath(p) for p in paths)) or "none mapped"
    except OSError as e:
        return f"unknown ({e})"


def time_steps(step, warmup, steps):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def summary(times, tokens, extra):
    med, best = statistics.median(times), min(times)
    out = {"steps": len(times), "median_s": med, "best_s": best,
           "tokens_per_s": tokens / med, "best_tokens_per_s": tokens / best}
    out.update(extra)
    return out


def run_modes(ref, cfg, params, x, y, args):
    """{mode: timings} for the modes asked, on fresh copies of the parameters."""
    import torch
    tokens = x.numel()
    out = {}
    if args.mode in ("train", "both"):
        p = ref.leaf_copy(params)
        plist = list(p.values())
        opt = ref.make_adamw(p, ref.MAX_LR)
        last = {}

        def train_step():
            opt.zero_grad(set_to_none=True)
            loss = ref.lm_loss(ref.forward(p, cfg, x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(plist, ref.CLIP_NORM)
            opt.step()
            last["loss"] = loss.item()

        times = time_steps(train_step, args.warmup, args.steps)
        flags = {k: opt.defaults[k] for k in ("foreach", "fused") if k in opt.defaults}
        out["train"] = summary(times, tokens, {"loss": last["loss"], "adamw": flags})
    if args.mode in ("forward", "both"):
        def forward_step():
            with torch.no_grad():
                ref.forward(params, cfg, x)

        out["forward"] = summary(time_steps(forward_step, args.warmup, args.steps), tokens, {})
    return out


def main():
    args = parse_args()
    # BLIS reads its thread count from the environment when first called;
    # torch.set_num_threads only reaches ATen's own OpenMP loops.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["BLIS_NUM_THREADS"] = str(args.threads)
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install
        skip(f"{sys.executable}: import torch failed: {e}")
    try:
        ref = import_reference()
    except Exception as e:
        skip(f"tests/reference/gpt2_ref.py could not be imported: {e}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    cfg = ref.make_config(n_layer=4, n_head=4, n_embd=64, block=128, vocab=128)
    params = ref.init_params(cfg, args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    B, T, V = args.batch, args.seq, cfg["vocab_size"]
    x = torch.randint(0, V, (B, T), generator=gen)
    y = torch.randint(0, V, (B, T), generator=gen)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": B,
              "seq": T, "warmup": args.warmup, "impls": {}}
    written = {"layer_norm": ref.layer_norm, "gelu_tanh": ref.gelu_tanh}
    native = {"layer_norm": lambda t, w, b: F.layer_norm(t, (t.shape[-1],), w, b, ref.LN_EPS),
              "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}
    for impl in ("ref", "native") if args.impl == "both" else (args.impl,):
        for name, fn in (native if impl == "native" else written).items():
            setattr(ref, name, fn)  # gpt2_ref.forward looks them up at call time
        result["impls"][impl] = run_modes(ref, cfg, params, x, y, args)
    result["blas"] = loaded_blas()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
