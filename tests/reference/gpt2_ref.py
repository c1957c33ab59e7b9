#!/usr/bin/env python3
"""PyTorch oracle for libscalar's GPT-2 model (SPEC.md section 1).

An independent, few-line GPT-2 in plain torch (no transformers, no nn.Module):
pre-LayerNorm blocks, learned positions, LM head tied to wte (no bias), biases on every
other linear layer, LayerNorm with biased variance and eps 1e-5 inside the sqrt,
tanh-approximated GELU, causal softmax attention scaled by 1/sqrt(d_head), no dropout.
Parameters use Hugging Face GPT-2 names without the `transformer.` prefix, Conv1D
[in, out] layout (y = x @ W + b).

    gpt2_ref.py fixture --out DIR [--seed S] [--n-layer 2 --n-head 4 --n-embd 64
                        --block 32 --vocab 128 --batch 2 --seq 32]
    gpt2_ref.py init --out DIR [--seed S] [--n-layer 4 ... --block 128 --vocab 128]
    gpt2_ref.py train --init DIR --corpus FILE --steps N [--batch 128 --seq 128]
                      [--csv OUT] [--save DIR] [--threads 2]
    gpt2_ref.py logits --model DIR --ids FILE.npy --out FILE.npy
    gpt2_ref.py selfcheck --model DIR        (needs transformers)

See tests/reference/README.md for what each file holds and the tolerances to use.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

LN_EPS = 1e-5
QUESTION_MARK = ord("?")  # id of bytes >= 128 in the ASCII tokenizer

# Training recipe (SPEC.md section 1).
MAX_LR = 1e-3
MIN_LR = 1e-5
WARMUP_STEPS = 1000
MAX_STEPS = 10000
BETAS = (0.9, 0.95)
ADAM_EPS = 1e-8
WEIGHT_DECAY = 0.1
CLIP_NORM = 1.0
VAL_EVERY = 250


# ----------------------------------------------------------------------------
# Parameters

def hook_names(n_layer):
    names = []
    for i in range(n_layer):
        for h in ("resid_pre", "resid_mid", "mlp_in", "mlp_out", "resid_post"):
            names.append(f"blocks.{i}.hook_{h}")
    return names


def param_shapes(cfg):
    """Ordered {name: shape}; the order is also the init RNG draw order."""
    V, P, C, L = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"]
    shapes = {"wte.weight": (V, C), "wpe.weight": (P, C)}
    for i in range(L):
        p = f"h.{i}."
        shapes.update({
            p + "ln_1.weight": (C,), p + "ln_1.bias": (C,),
            p + "attn.c_attn.weight": (C, 3 * C), p + "attn.c_attn.bias": (3 * C,),
            p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
            p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
            p + "mlp.c_fc.weight": (C, 4 * C), p + "mlp.c_fc.bias": (4 * C,),
            p + "mlp.c_proj.weight": (4 * C, C), p + "mlp.c_proj.bias": (C,),
        })
    shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,)})
    return shapes


def is_ln_weight(name):
    return name.split(".")[-2].startswith("ln_") and name.endswith(".weight")


def init_params(cfg, seed):
    """SPEC init: normal(0, 0.02), c_proj weights 0.02/sqrt(2*n_layer), zero biases,
    LayerNorm weight 1. Drawn with torch.manual_seed(seed) in param_shapes order."""
    torch.manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if is_ln_weight(name):
            t = torch.ones(shape)
        elif name.endswith(".bias"):
            t = torch.zeros(shape)
        elif name.endswith("c_proj.weight"):
            t = torch.randn(shape) * (0.02 / math.sqrt(2 * cfg["n_layer"]))
        else:
            t = torch.randn(shape) * 0.02
        params[name] = t
    return params


def perturb_params(params):
    """Make LayerNorm parameters and biases matter (fixtures only): LN weights times
    uniform [0.5, 1.5), every bias (LN biases included) normal(0, 0.02).
    Uses the global torch RNG, continuing from init_params."""
    for name, t in params.items():
        if is_ln_weight(name):
            t.mul_(0.5 + torch.rand(t.shape))
        elif name.endswith(".bias"):
            t.copy_(torch.randn(t.shape) * 0.02)


def make_config(n_layer, n_head, n_embd, block, vocab):
    return {
        "model_type": "gpt2",
        "n_layer": n_layer, "n_head": n_head, "n_embd": n_embd,
        "n_positions": block, "n_ctx": block, "vocab_size": vocab,
        "layer_norm_epsilon": LN_EPS, "activation_function": "gelu_new",
        "tie_word_embeddings": True,
    }


def save_model(out_dir, cfg, params):
    os.makedirs(out_dir, exist_ok=True)
    tensors = {k: v.detach().float().contiguous().clone() for k, v in params.items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def load_model(model_dir):
    """Load config.json + model.safetensors. Keys with or without `transformer.`;
    attn.bias / attn.masked_bias mask buffers ignored; lm_head.weight accepted only if
    it equals wte (tied). Anything else missing, extra or misshaped is an error."""
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    cfg = {k: raw[k] for k in ("n_layer", "n_head", "n_embd", "n_positions", "vocab_size")}
    if raw.get("activation_function", "gelu_new") != "gelu_new":
        sys.exit(f"unsupported activation_function {raw['activation_function']!r}")
    if abs(raw.get("layer_norm_epsilon", LN_EPS) - LN_EPS) > 1e-12:
        sys.exit(f"unsupported layer_norm_epsilon {raw['layer_norm_epsilon']}")
    if raw.get("n_inner") not in (None, 4 * cfg["n_embd"]):
        sys.exit(f"unsupported n_inner {raw['n_inner']}")
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("tie_word_embeddings", True)):
        if raw.get(key, ok) != ok:
            sys.exit(f"unsupported {key}: {raw[key]}")
    state = load_file(os.path.join(model_dir, "model.safetensors"))
    params, head = {}, None
    for key, t in state.items():
        name = key[len("transformer."):] if key.startswith("transformer.") else key
        if name.split(".")[-2:] in (["attn", "bias"], ["attn", "masked_bias"]):
            continue  # causal-mask buffers of old files (not attn.c_attn.bias!)
        if name == "lm_head.weight":
            head = t
            continue
        params[name] = t.float()
    shapes = param_shapes(cfg)
    if set(params) != set(shapes):
        sys.exit(f"tensor names differ: missing {sorted(set(shapes) - set(params))}, "
                 f"unexpected {sorted(set(params) - set(shapes))}")
    for name, shape in shapes.items():
        if tuple(params[name].shape) != shape:
            sys.exit(f"{name}: shape {tuple(params[name].shape)}, expected {shape}")
    if head is not None and not torch.equal(head.float(), params["wte.weight"]):
        sys.exit("lm_head.weight differs from wte.weight: untied heads are unsupported")
    params = {k: params[k].contiguous() for k in shapes}  # canonical order
    return cfg, params


# ----------------------------------------------------------------------------
# Forward

def layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance
    return (x - mean) / torch.sqrt(var + LN_EPS) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention(x, w_qkv, b_qkv, w_out, b_out, n_head):
    # x [B,T,C]; w_qkv [C,3C] columns q|k|v, head h = columns h*D..(h+1)*D of each block
    B, T, C = x.shape
    D = C // n_head
    q, k, v = (x @ w_qkv + b_qkv).split(C, dim=-1)
    q, k, v = (t.view(B, T, n_head, D).transpose(1, 2) for t in (q, k, v))  # [B,H,T,D]
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(D)  # [B,H,T,T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    y = torch.softmax(scores, dim=-1) @ v  # [B,H,T,D]
    y = y.transpose(1, 2).reshape(B, T, C)
    return y @ w_out + b_out


def forward(params, cfg, ids, hooks=None, record=None):
    """ids [B,T] long -> logits [B,T,V]. hooks: {hook name: fn(x) -> x'} applied where
    the hook sits (the returned tensor replaces the activation downstream);
    record: dict filled with {hook name: activation after its hook}."""
    def hook(name, x):
        if hooks and name in hooks:
            x = hooks[name](x)
        if record is not None:
            record[name] = x
        return x

    p = params
    T = ids.shape[1]
    x = p["wte.weight"][ids] + p["wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        h, b = f"h.{i}.", f"blocks.{i}."
        x = hook(b + "hook_resid_pre", x)
        a = attention(layer_norm(x, p[h + "ln_1.weight"], p[h + "ln_1.bias"]),
                      p[h + "attn.c_attn.weight"], p[h + "attn.c_attn.bias"],
                      p[h + "attn.c_proj.weight"], p[h + "attn.c_proj.bias"], cfg["n_head"])
        x = hook(b + "hook_resid_mid", x + a)
        m = hook(b + "hook_mlp_in", layer_norm(x, p[h + "ln_2.weight"], p[h + "ln_2.bias"]))
        m = gelu_tanh(m @ p[h + "mlp.c_fc.weight"] + p[h + "mlp.c_fc.bias"])
        m = hook(b + "hook_mlp_out", m @ p[h + "mlp.c_proj.weight"] + p[h + "mlp.c_proj.bias"])
        x = hook(b + "hook_resid_post", x + m)
    x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"])
    return x @ p["wte.weight"].t()  # tied head, no bias


def lm_loss(logits, targets):
    """Mean cross entropy over targets != -1 (nats per token)."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1).long(), ignore_index=-1)


# ----------------------------------------------------------------------------
# Optimizer

def make_adamw(params, lr):
    """torch.optim.AdamW; weight decay 0.1 on tensors of rank >= 2 (wte, wpe and the
    four weight matrices per layer), 0 on the rest (biases, LayerNorm parameters)."""
    decay = [t for t in params.values() if t.dim() >= 2]
    no_decay = [t for t in params.values() if t.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=lr, betas=BETAS, eps=ADAM_EPS)


def leaf_copy(params):
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


# ----------------------------------------------------------------------------
# fixture

SPLICE_DOC = ("splice.logits: the same ids with a forward hook on blocks.0.hook_resid_mid "
              "that replaces the activation x (= resid_pre_0 + attn_0(ln_1(resid_pre_0))) by "
              "0.5 * x; the halved tensor feeds both ln_2 of layer 0 and the residual add "
              "after its MLP (resid_post_0 = 0.5*x + mlp_0(ln_2(0.5*x))); everything else "
              "unchanged.")


def cmd_fixture(args):
    torch.set_num_threads(args.threads)
    cfg = make_config(args.n_layer, args.n_head, args.n_embd, args.block, args.vocab)
    params = init_params(cfg, args.seed)
    perturb_params(params)
    B, T, V = args.batch, args.seq, cfg["vocab_size"]
    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))
    if B > 1:
        targets[1, -1] = -1
    save_model(args.out, cfg, params)

    exp = {"ids": ids.to(torch.int32), "targets": targets.to(torch.int32)}

    # Forward + backward with every hook recorded.
    p = leaf_copy(params)
    record = {}
    logits = forward(p, cfg, ids, record=record)
    for t in record.values():
        t.retain_grad()
    loss = lm_loss(logits, targets)
    loss.backward()
    exp["logits"] = logits.detach()
    exp["loss"] = loss.detach().reshape(1)
    for name in hook_names(cfg["n_layer"]):
        exp[name] = record[name].detach()
        exp["grad." + name] = record[name].grad
    for name, t in p.items():
        exp["grad." + name] = t.grad

    # Three AdamW steps on the same batch, constant lr 1e-3, clip before each step.
    p = leaf_copy(params)
    opt = make_adamw(p, MAX_LR)
    norms = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        lm_loss(forward(p, cfg, ids), targets).backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), CLIP_NORM)))
        opt.step()
    exp["grad_norm0"] = torch.tensor([norms[0]])
    exp["grad_norms"] = torch.tensor(norms)
    for name, t in p.items():
        exp["adamw3." + name] = t.detach()

    # Splice: halve layer 0's resid_mid.
    with torch.no_grad():
        exp["splice.logits"] = forward(params, cfg, ids,
                                       hooks={"blocks.0.hook_resid_mid": lambda x: 0.5 * x})

    exp = {k: v.detach().contiguous().clone() for k, v in exp.items()}
    for k, v in exp.items():
        assert v.dtype in (torch.float32, torch.int32), (k, v.dtype)
    meta = {
        "format": "pt",
        "generator": "tests/reference/gpt2_ref.py fixture",
        "command": " ".join(["gpt2_ref.py"] + sys.argv[1:]),
        "torch": torch.__version__,
        "config": json.dumps(cfg, sort_keys=True),
        "seed": str(args.seed),
        "init": "SPEC init from torch.manual_seed(seed), then LN weights *= U[0.5,1.5), "
                "biases ~ N(0,0.02); ids then targets drawn with torch.randint after that",
        "loss": "mean cross entropy over targets != -1 (targets[1,-1] = -1)",
        "grads": "grad.<param>: d loss/d param (wte includes the tied head); "
                 "grad.<hook>: d loss/d activation (total derivative)",
        "adamw3": "from the model weights, 3 x (zero grads, loss on the same batch, "
                  "backward, clip_grad_norm_(all params, 1.0), AdamW step); AdamW lr 1e-3 "
                  "constant, betas (0.9,0.95), eps 1e-8, weight_decay 0.1 on rank>=2 "
                  "tensors else 0 (decoupled: p -= lr*wd*p before the Adam update); clip "
                  "scale = min(1, 1.0/(norm + 1e-6)); grad_norms = pre-clip global L2 norms",
        "splice": SPLICE_DOC,
    }
    save_file(exp, os.path.join(args.out, "expected.safetensors"), metadata=meta)
    print(f"loss {loss.item():.6f} grad_norms {norms}")


def cmd_init(args):
    torch.set_num_threads(args.threads)
    cfg = make_config(args.n_layer, args.n_head, args.n_embd, args.block, args.vocab)
    params = init_params(cfg, args.seed)
    save_model(args.out, cfg, params)
    print(f"{sum(t.numel() for t in params.values())} parameters written to {args.out}")


# ----------------------------------------------------------------------------
# train

def lr_at(step, max_lr=MAX_LR, min_lr=MIN_LR, warmup=WARMUP_STEPS, max_steps=MAX_STEPS):
    """Learning rate of update `step` (0-based), as llm.c:
        step < warmup:  max_lr * (step + 1) / warmup
        step < max:     min_lr + 0.5 * (1 + cos(pi * (step - warmup) / (max - warmup)))
                                 * (max_lr - min_lr)
        otherwise:      min_lr
    So steps 0..999 ramp 1e-6 .. 1e-3, step 1000 is 1e-3, step 9999 is just above 1e-5.
    A run of fewer steps follows the same (10,000-step) schedule and stops early."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= max_steps:
        return min_lr
    ratio = (step - warmup) / (max_steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def tokenize_ascii(path):
    """One token per byte: id = byte if < 128 else ord('?')."""
    with open(path, "rb") as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    ids = raw.astype(np.int64)
    ids[raw >= 128] = QUESTION_MARK
    return torch.from_numpy(ids)


def split_corpus(tokens):
    """train = first int(0.9*n) tokens rounded down to a multiple of 256; val = rest."""
    n_train = int(0.9 * len(tokens)) // 256 * 256
    return tokens[:n_train], tokens[n_train:]


class SequentialLoader:
    """Batch = B*T+1 contiguous tokens from `pos` (x = [:-1], y = [1:], row-major into
    [B,T]); then pos += B*T, and pos = 0 if pos + B*T + 1 > n (llm.c's DataLoader)."""

    def __init__(self, tokens, B, T):
        if len(tokens) < B * T + 1:
            sys.exit(f"train split ({len(tokens)} tokens) shorter than one batch")
        self.tokens, self.B, self.T, self.pos = tokens, B, T, 0

    def next(self):
        B, T = self.B, self.T
        buf = self.tokens[self.pos:self.pos + B * T + 1]
        self.pos += B * T
        if self.pos + B * T + 1 > len(self.tokens):
            self.pos = 0
        return buf[:-1].view(B, T), buf[1:].view(B, T)


@torch.no_grad()
def val_loss(params, cfg, val, B, T):
    """Mean CE over every prediction of the non-overlapping T-token windows of the val
    split: window j (j = 0 .. n_win-1, n_win = (len(val)-1) // T) has x = val[jT:jT+T],
    y = val[jT+1:jT+T+1]; windows go B at a time (the last batch has n_win % B rows if
    nonzero), each batch's CE summed in float32, the sums added in double, divided by
    n_win*T. For Tiny Shakespeare, T=128: 872 windows = 111,616 of 111,617 predictions."""
    n_win = (len(val) - 1) // T
    total = 0.0
    for j0 in range(0, n_win, B):
        rows = min(B, n_win - j0)
        buf = val[j0 * T:(j0 + rows) * T + 1]
        x, y = buf[:-1].view(rows, T), buf[1:].view(rows, T)
        logits = forward(params, cfg, x)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                       reduction="sum"))
    return total / (n_win * T)


def cmd_train(args):
    torch.set_num_threads(args.threads)
    cfg, params = load_model(args.init)
    if args.seq > cfg["n_positions"]:
        sys.exit(f"--seq {args.seq} exceeds n_positions {cfg['n_positions']}")
    train, val = split_corpus(tokenize_ascii(args.corpus))
    print(f"train {len(train)} tokens, val {len(val)} tokens")
    loader = SequentialLoader(train, args.batch, args.seq)
    p = leaf_copy(params)
    opt = make_adamw(p, MAX_LR)
    plist = list(p.values())
    rows, best = [], (float("inf"), -1)
    for step in range(args.steps):
        lr = lr_at(step, max_steps=args.max_steps, warmup=args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = loader.next()
        opt.zero_grad(set_to_none=True)
        loss = lm_loss(forward(p, cfg, x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plist, CLIP_NORM)
        opt.step()
        vl = None
        if (step + 1) % args.val_every == 0 or step == args.steps - 1:
            vl = val_loss(p, cfg, val, args.batch, args.seq)
            print(f"step {step} train {loss.item():.6f} val {vl:.6f} lr {lr:.6g}", flush=True)
            if vl < best[0]:
                best = (vl, step)
                if args.save:
                    save_model(args.save, cfg, p)
        rows.append((step, loss.item(), vl, lr))
    if args.csv:
        with open(args.csv, "w") as f:
            f.write("step,train_loss,val_loss,lr\n")
            for step, tl, vl, lr in rows:
                f.write(f"{step},{tl:.7g},{'' if vl is None else f'{vl:.7g}'},{lr:.9g}\n")
    print(f"final val loss {rows[-1][2]:.6f}")
    print(f"best val loss {best[0]:.6f} at step {best[1]}")


# ----------------------------------------------------------------------------
# logits, selfcheck

def cmd_logits(args):
    torch.set_num_threads(args.threads)
    cfg, params = load_model(args.model)
    ids = torch.from_numpy(np.load(args.ids).astype(np.int64))
    squeeze = ids.dim() == 1
    if squeeze:
        ids = ids[None]
    with torch.no_grad():
        logits = forward(params, cfg, ids)
    out = logits[0] if squeeze else logits
    np.save(args.out, out.numpy().astype(np.float32))


def rel(a, b):
    """(max |a-b| / max |b|, ||a-b|| / ||b||)"""
    d = (a - b).abs()
    return float(d.max() / b.abs().max()), float((a - b).norm() / b.norm())


def check_adamw_by_hand(params, cfg, ids, targets, exp):
    """Redo the fixture's 3 clipped AdamW steps with the formulas written out, to pin
    down what torch.optim.AdamW + clip_grad_norm_ compute (for the C port)."""
    p = leaf_copy(params)
    m = {k: torch.zeros_like(v) for k, v in p.items()}
    v2 = {k: torch.zeros_like(v) for k, v in p.items()}
    lr, (b1, b2) = MAX_LR, BETAS
    for t in range(1, 4):
        for x in p.values():
            x.grad = None
        lm_loss(forward(p, cfg, ids), targets).backward()
        norm = torch.sqrt(sum((x.grad.double() ** 2).sum() for x in p.values()))
        scale = min(1.0, CLIP_NORM / (float(norm) + 1e-6))
        with torch.no_grad():
            for k, x in p.items():
                g = x.grad * scale
                m[k] = b1 * m[k] + (1 - b1) * g
                v2[k] = b2 * v2[k] + (1 - b2) * g * g
                wd = WEIGHT_DECAY if x.dim() >= 2 else 0.0
                x.mul_(1 - lr * wd)  # decoupled weight decay first
                m_hat = m[k] / (1 - b1 ** t)
                v_hat = v2[k] / (1 - b2 ** t)
                x.sub_(lr * m_hat / (torch.sqrt(v_hat) + ADAM_EPS))
    worst, k_abs = [0.0, 0.0], 0.0
    for k, x in p.items():
        ours, ref = x.detach(), exp["adamw3." + k]
        if k.endswith("attn.c_attn.bias"):
            C = cfg["n_embd"]
            k_abs = max(k_abs, float((ours[C:2 * C] - ref[C:2 * C]).abs().max()))
            ours, ref = key_bias_dropped(ours, C), key_bias_dropped(ref, C)
        a, b = rel(ours, ref)
        worst = [max(worst[0], a), max(worst[1], b)]
    return worst[0], worst[1], k_abs


def key_bias_dropped(c_attn_bias, C):
    """The q and v thirds of c_attn.bias. The k third's gradient is exactly 0 in exact
    arithmetic (adding a constant to every score of a softmax row changes nothing), so
    its computed gradient is rounding noise (~1e-11) that AdamW amplifies by 1/eps."""
    return torch.cat([c_attn_bias[..., :C], c_attn_bias[..., 2 * C:]], dim=-1)


def cmd_selfcheck(args):
    """Our forward (and gradients) against transformers' GPT2LMHeadModel with the same
    weights; and against DIR/expected.safetensors when it has ids + logits."""
    import transformers
    torch.set_num_threads(args.threads)
    cfg, params = load_model(args.model)
    hf_cfg = transformers.GPT2Config(
        n_layer=cfg["n_layer"], n_head=cfg["n_head"], n_embd=cfg["n_embd"],
        n_positions=cfg["n_positions"], vocab_size=cfg["vocab_size"],
        activation_function="gelu_new", layer_norm_epsilon=LN_EPS,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager")
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    missing, unexpected = hf.load_state_dict(
        {"transformer." + k: v for k, v in params.items()}, strict=False)
    assert not unexpected, unexpected
    assert all(k == "lm_head.weight" or k.split(".")[-2:] in (["attn", "bias"],
               ["attn", "masked_bias"]) for k in missing), missing
    hf.tie_weights()
    assert hf.lm_head.weight.data_ptr() == hf.transformer.wte.weight.data_ptr()

    exp_path = os.path.join(args.model, "expected.safetensors")
    exp = load_file(exp_path) if os.path.exists(exp_path) else {}
    if "ids" in exp:
        ids = exp["ids"].long()
    else:
        g = torch.Generator().manual_seed(args.seed)
        ids = torch.randint(0, cfg["vocab_size"], (2, min(64, cfg["n_positions"])), generator=g)
    targets = exp["targets"].long() if "targets" in exp else torch.roll(ids, -1, dims=1)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, "
          f"ids {tuple(ids.shape)}")

    worst = 0.0
    p = leaf_copy(params)
    record = {}
    ours = forward(p, cfg, ids, record=record)
    out = hf(ids, output_hidden_states=True)
    mx, nw = rel(ours.detach(), out.logits.detach())
    worst = max(worst, mx)
    print(f"logits vs transformers: max rel {mx:.3e}, norm rel {nw:.3e}")
    hs = [rel(record[f"blocks.{i}.hook_resid_pre"].detach(), out.hidden_states[i].detach())
          for i in range(cfg["n_layer"])]
    print(f"resid_pre vs hidden_states: max rel {max(h[0] for h in hs):.3e}, "
          f"norm rel {max(h[1] for h in hs):.3e}")

    lm_loss(ours, targets).backward()
    lm_loss(out.logits, targets).backward()
    hf_params = dict(hf.transformer.named_parameters())
    g_max = g_norm = 0.0
    for name, t in p.items():
        a, b = rel(t.grad, hf_params[name].grad)
        g_max, g_norm = max(g_max, a), max(g_norm, b)
    print(f"param grads vs transformers (worst tensor): max rel {g_max:.3e}, "
          f"norm rel {g_norm:.3e}")

    if "logits" in exp:
        a, b = rel(ours.detach(), exp["logits"])
        worst = max(worst, a)
        print(f"logits vs expected.safetensors: max rel {a:.3e}, norm rel {b:.3e}")
    if "adamw3.wte.weight" in exp:
        a, b, k_abs = check_adamw_by_hand(params, cfg, ids, targets, exp)
        worst = max(worst, b)
        print(f"adamw3 vs hand-written clip + AdamW (worst tensor, k bias excluded): "
              f"max rel {a:.3e}, norm rel {b:.3e}; k bias max abs diff {k_abs:.3e}")
    if worst > args.tol:
        sys.exit(f"FAIL: max rel {worst:.3e} > {args.tol}")
    print("OK")


# ----------------------------------------------------------------------------

def add_shape_args(ap, n_layer, block):
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-layer", type=int, default=n_layer)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-embd", type=int, default=64)
    ap.add_argument("--block", type=int, default=block)
    ap.add_argument("--vocab", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    a = sub.add_parser("fixture", help="model + expected values for the C tests")
    add_shape_args(a, n_layer=2, block=32)
    a.add_argument("--batch", type=int, default=2)
    a.add_argument("--seq", type=int, default=32)

    a = sub.add_parser("init", help="a SPEC-initialised model dir (no perturbation)")
    add_shape_args(a, n_layer=4, block=128)

    a = sub.add_parser("train", help="train with SPEC's recipe")
    a.add_argument("--init", required=True)
    a.add_argument("--corpus", required=True)
    a.add_argument("--steps", type=int, required=True)
    a.add_argument("--batch", type=int, default=128)
    a.add_argument("--seq", type=int, default=128)
    a.add_argument("--csv")
    a.add_argument("--save", help="dir for the checkpoint with the best val loss")
    a.add_argument("--val-every", type=int, default=VAL_EVERY)
    a.add_argument("--warmup", type=int, default=WARMUP_STEPS)
    a.add_argument("--max-steps", type=int, default=MAX_STEPS)
    a.add_argument("--threads", type=int, default=2)

    a = sub.add_parser("logits", help="logits of a model dir on ids from .npy")
    a.add_argument("--model", required=True)
    a.add_argument("--ids", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--threads", type=int, default=2)

    a = sub.add_parser("selfcheck", help="compare against transformers' GPT2LMHeadModel")
    a.add_argument("--model", required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--tol", type=float, default=1e-4)
    a.add_argument("--threads", type=int, default=2)

    args = ap.parse_args()
    {"fixture": cmd_fixture, "init": cmd_init, "train": cmd_train, "logits": cmd_logits,
     "selfcheck": cmd_selfcheck}[args.cmd](args)


if __name__ == "__main__":
    main()
