#!/usr/bin/env python3
"""A Hugging Face GPT-2 checkpoint with random weights, and its logits, for loader tests.

    hf_interop.py make --out DIR --config toy|gpt2-12x768 [--seed S]

Builds transformers.GPT2LMHeadModel(GPT2Config(...)) from torch.manual_seed(S), perturbs
every LayerNorm weight (times uniform [0.5, 1.5)) and every bias (LayerNorm and linear:
normal(0, 0.02)) so that they matter, and writes it with
save_pretrained(DIR, safe_serialization=True): config.json + model.safetensors, keys with
the `transformer.` prefix, lm_head tied to wte and therefore not saved. Then
DIR/expected.safetensors: `ids` I32 [2, 64] (uniform over the vocabulary) and `logits`
F32 [2, 64, V] from the transformers model in eval mode (eager attention).
gpt2-12x768 is GPT-2 Small's shape (~500 MB on disk): never commit it.
"""
import argparse
import os

import torch
import transformers
from safetensors.torch import save_file

CONFIGS = {
    "toy": dict(n_layer=4, n_head=4, n_embd=64, n_positions=128, vocab_size=128),
    "gpt2-12x768": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024,
                        vocab_size=50257),
}


def cmd_make(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    cfg = transformers.GPT2Config(**CONFIGS[args.config], activation_function="gelu_new",
                                  layer_norm_epsilon=1e-5, attn_implementation="eager")
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, t in model.transformer.named_parameters():
            if ".ln_" in "." + name and name.endswith(".weight"):
                t.mul_(0.5 + torch.rand(t.shape))
            elif name.endswith(".bias"):
                t.copy_(torch.randn(t.shape) * 0.02)
        ids = torch.randint(0, cfg.vocab_size, (2, 64))
        logits = model(ids).logits
    model.save_pretrained(args.out, safe_serialization=True)
    meta = {"format": "pt", "generator": f"tests/reference/hf_interop.py make --config "
            f"{args.config} --seed {args.seed}", "torch": torch.__version__,
            "transformers": transformers.__version__}
    save_file({"ids": ids.to(torch.int32), "logits": logits.contiguous()},
              os.path.join(args.out, "expected.safetensors"), metadata=meta)
    print(f"{args.out}: {sum(t.numel() for t in model.parameters())} parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("make")
    a.add_argument("--out", required=True)
    a.add_argument("--config", choices=sorted(CONFIGS), required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cmd_make(args)


if __name__ == "__main__":
    main()
