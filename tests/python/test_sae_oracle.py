"""The SAE trainer against the PyTorch oracle tests/reference/sae_ref.py, live:
fresh draws (seeds the committed fixture does not use) of Staircase groups
(share, detach) and JSAE pairs (FF layer and FF block, sum and mean), run
through scalar.SaeTrainer and through sae_ref's float64 autograd; losses and
every gradient within the oracle's tolerance (1e-4 norm-wise relative).  Also
runs `sae_ref.py selfcheck --fixture`: the oracle's own finite-difference
checks and the committed fixture regenerating bit for bit.

Needs torch (Debian's python3-torch) and PyPI safetensors; without them the
tests skip, unless SCALAR_REQUIRE_INTEROP=1 (CI) turns the skip into a failure.
"""

import os
import subprocess
import sys
import unittest

import numpy as np

import scalar

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "reference")
REQUIRE_INTEROP = os.environ.get("SCALAR_REQUIRE_INTEROP") == "1"
sys.path.insert(0, REF)
try:
    import torch
    import sae_ref
    MISSING = None
except ImportError as e:
    MISSING = f"{e.name or e}"
SKIP_REASON = (f"the live SAE oracle is not run: cannot import {MISSING} (needs torch and "
               "safetensors; CI sets SCALAR_REQUIRE_INTEROP=1)")
TOL = 1e-4


def norm_rel(ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-30))


def f32(t):
    return t.detach().float().numpy()


@unittest.skipIf(MISSING is not None and not REQUIRE_INTEROP, SKIP_REASON)
class LiveOracle(unittest.TestCase):
    def setUp(self):
        if MISSING is not None:
            self.fail(SKIP_REASON)

    def assertClose(self, ours, ref, what):
        err = norm_rel(ours, f32(ref))
        self.assertLessEqual(err, TOL, f"{what}: norm-wise relative error {err:.2e}")

    def test_selfcheck_and_fixture(self):
        r = subprocess.run([sys.executable, os.path.join(REF, "sae_ref.py"), "selfcheck",
                            "--fixture", os.path.join(REF, "fixtures", "sae_tiny")],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertIn("bitwise identical", r.stdout)

    def test_staircase_fresh_draws(self):
        d_in, sizes, k, T = 12, (20, 36, 52), 4, 23
        for variant, seed in (("share", 101), ("detach", 202)):
            with self.subTest(variant=variant):
                g = torch.Generator().manual_seed(seed)
                p = sae_ref.draw_inputs(g, d_in, sizes, T)
                p.update(sae_ref.draw_staircase(g, d_in, sizes))
                cfg = dict(d_in=d_in, sizes=sizes, k=k)
                outs, _, grads, _ = sae_ref.forward_backward(variant, p, cfg)
                group = scalar.SaeGroup.create(d_in, list(sizes), k=k, mode=variant)
                group.set_param("W_enc", f32(p["W_enc"]))
                group.set_param("W_dec", f32(p["W_dec"]))
                for j in range(len(sizes)):
                    group.set_param(f"b_enc.{j}", f32(p[f"sae{j}.b_enc"]))
                    group.set_param(f"b_dec.{j}", f32(p[f"sae{j}.b_dec"]))
                with scalar.SaeTrainer(group, max_tokens=T) as tr:
                    losses = tr.compute([f32(p[f"sae{j}.x"]) for j in range(len(sizes))])
                    for j, o in enumerate(outs):
                        self.assertClose(losses[j], o["loss"], f"{variant} loss {j}")
                    for name in ("W_enc", "W_dec"):
                        self.assertClose(tr.grad(0, name), grads[name], f"{variant} {name}")
                    for j in range(len(sizes)):
                        for b in ("b_enc", "b_dec"):
                            self.assertClose(tr.grad(0, f"{b}.{j}"), grads[f"sae{j}.{b}"],
                                             f"{variant} {b}.{j}")
                group.close()

    def jsae_case(self, placement, mode, seed):
        C, F, S, T, k_in, k_out, lam = 8, 32, 24, 21, 3, 4, 0.2
        g = torch.Generator().manual_seed(seed)
        p = sae_ref.draw_jsae(g, placement, C, F, S, T)
        cfg = dict(k_in=k_in, k_out=k_out)
        out, grads, _ = sae_ref.jsae_forward_backward(placement, p, cfg, lam, mode)
        model = scalar.Model.create(config={"n_layer": 1, "n_embd": C, "n_head": 2,
                                            "d_mlp": F, "block_size": 8, "vocab_size": 16})
        names = ["mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"]
        if placement == "ff_block":
            names += ["ln_2.weight", "ln_2.bias"]
        for n in names:
            model.set_param("h.0." + n, f32(p[n]))
        hooks = (["blocks.0.hook_mlp_in", "blocks.0.hook_mlp_out"] if placement == "ff_layer"
                 else ["blocks.0.hook_resid_mid", "blocks.0.hook_resid_post"])
        groups = []
        for s, k, h in (("in", k_in, hooks[0]), ("out", k_out, hooks[1])):
            grp = scalar.SaeGroup.create(C, [S], k=k, hook_names=[h])
            for n in ("W_enc", "W_dec"):
                grp.set_param(n, f32(p[f"{s}.{n}"]))
            grp.set_param("b_enc.0", f32(p[f"{s}.b_enc"]))
            grp.set_param("b_dec.0", f32(p[f"{s}.b_dec"]))
            groups.append(grp)
        with scalar.SaeTrainer(groups, model, max_tokens=T) as tr:
            tr.add_jacobian(0, 1, placement, 0, lam, mode)
            losses = tr.compute([f32(p["x"]), f32(out["y"])])
            total = float(losses.sum()) + float(tr.jacobian_penalties()[0])
            self.assertClose(total, out["loss"], f"{placement} {mode} loss")
            for i, s in enumerate(("in", "out")):
                for n, ours in (("W_enc", "W_enc"), ("W_dec", "W_dec"), ("b_enc", "b_enc.0"),
                                ("b_dec", "b_dec.0")):
                    self.assertClose(tr.grad(i, ours), grads[f"{s}.{n}"],
                                     f"{placement} {mode} {s}.{n}")
        for grp in groups:
            grp.close()
        model.close()

    def test_jsae_fresh_draws(self):
        for i, (placement, mode) in enumerate((("ff_layer", "sum"), ("ff_layer", "mean"),
                                               ("ff_block", "sum"), ("ff_block", "mean"))):
            with self.subTest(placement=placement, mode=mode):
                self.jsae_case(placement, mode, 300 + i)


if __name__ == "__main__":
    unittest.main()
