#!/usr/bin/env python3
"""PyTorch baseline of bench/bench_sae.c: one TopK SAE training step, timed.

The straightforward step a PyTorch user writes (as SAELens and the SCALAR reference
do), with tests/reference/sae_ref.py's formulas and torch.topk for the selection:

    pre   = ReLU((x - b_dec) @ W_enc + b_enc)            [n, d_sae], dense
    v, i  = torch.topk(pre, k)                           exactly k per token
    codes = zeros_like(pre).scatter(1, i, v)             dense codes
    x_hat = codes @ W_dec + b_dec                        dense GEMM
    loss  = ((x_hat - x) ** 2).sum(-1).mean()
    zero_grad, loss.backward() (autograd), clip_grad_norm_(params, 1.0),
    torch.optim.Adam(lr=1e-3, betas=(0.9, 0.95), eps=1e-8).step()

float32; x ~ N(0, 1) [n, d_in], one fixed batch; SPEC.md's initialisation (W_dec
Kaiming-uniform [d_sae, d_in], W_enc = W_dec^T, zero biases), as libscalar's.

    torch_sae.py --threads N --d-in D --d-sae S --k K --batch N_TOKENS
                 [--steps 3] [--warmup 1] [--seed 0]

Prints one JSON line: {"torch", "threads", "blas" (the BLAS library actually
mapped), "train": {median_s, best_s, steps_per_s, tokens_per_s, loss, adam}},
median and best over the timed steps.  Without torch it prints {"skip": "<why>"}
and exits 0.
"""
import argparse
import json
import os
import sys

# bench/torch_model.py (beside this file): skip(), loaded_blas(), time_steps() and
# summary() are shared; it imports torch only inside its main().
from torch_model import loaded_blas, skip, summary, time_steps


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--d-in", type=int, required=True)
    ap.add_argument("--d-sae", type=int, required=True)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True, help="tokens per step")
    ap.add_argument("--steps", type=int, default=3, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def main():
    args = parse_args()
    # BLIS reads its thread count from the environment when first called;
    # torch.set_num_threads only reaches ATen's own OpenMP loops.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    os.environ["BLIS_NUM_THREADS"] = str(args.threads)
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        skip(f"{sys.executable}: import torch failed: {e}")
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)

    d_in, d_sae, k, n = args.d_in, args.d_sae, args.k, args.batch
    torch.manual_seed(args.seed)
    W_dec = torch.nn.init.kaiming_uniform_(torch.empty(d_sae, d_in))  # U(+-sqrt(6 / d_in))
    W_enc = W_dec.t().contiguous().requires_grad_()
    W_dec.requires_grad_()
    b_enc = torch.zeros(d_sae, requires_grad=True)
    b_dec = torch.zeros(d_in, requires_grad=True)
    params = [W_enc, b_enc, W_dec, b_dec]
    x = torch.randn(n, d_in)
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    last = {}

    def train_step():
        opt.zero_grad(set_to_none=True)
        pre = torch.relu((x - b_dec) @ W_enc + b_enc)
        values, indices = torch.topk(pre, k, dim=-1)
        codes = torch.zeros_like(pre).scatter(1, indices, values)
        x_hat = codes @ W_dec + b_dec
        loss = ((x_hat - x) ** 2).sum(-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        last["loss"] = loss.item()

    times = time_steps(train_step, args.warmup, args.steps)
    flags = {key: opt.defaults[key] for key in ("foreach", "fused") if key in opt.defaults}
    train = summary(times, n, {"loss": last["loss"], "adam": flags})
    train["steps_per_s"] = 1.0 / train["median_s"]
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "d_in": d_in,
              "d_sae": d_sae, "k": k, "batch": n, "warmup": args.warmup, "train": train,
              "blas": loaded_blas()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
