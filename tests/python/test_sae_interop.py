"""SAEs against the live peer, PyPI sae-lens: SAEs built and saved by sae-lens
itself (TopK, standard, JumpReLU; random weights, its own save_model) load
unchanged in libscalar and give the codes sae-lens computes; SAEs libscalar
saves load in sae-lens (SAE.load_from_disk) and give libscalar's codes.

Needs sae-lens (tests/python/requirements-saelens.txt: 6.5.3, the newest that
runs on Debian's torch 1.13, installed with --no-deps); without it the tests
skip, unless SCALAR_REQUIRE_INTEROP=1 (CI) turns the skip into a failure.

Codes are compared dense: sae-lens' TopK takes the top k of the raw
pre-activation and then applies ReLU, libscalar takes the top k after the
ReLU (SPEC.md), so when fewer than k pre-activations are positive the two pick
different zero entries; the dense codes agree.  Tolerance: norm-wise relative
1e-5 (float32 GEMMs of width <= 64 on both sides).
"""

import os
import sys
import tempfile
import types
import unittest

import numpy as np

import scalar

TOL = 1e-5
REQUIRE_INTEROP = os.environ.get("SCALAR_REQUIRE_INTEROP") == "1"

try:
    # sae-lens imports wandb for training only; stand in an empty module
    sys.modules.setdefault("wandb", types.ModuleType("wandb"))
    import torch
    import torch.optim.lr_scheduler as _sched
    if not hasattr(_sched, "LRScheduler"):  # torch 1.13 calls it _LRScheduler
        _sched.LRScheduler = _sched._LRScheduler
    import sae_lens
    from sae_lens import (SAE, JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig,
                          TopKSAE, TopKSAEConfig)
    from sae_lens.saes.sae import SAEMetadata
    MISSING = None
except ImportError as e:  # optional: skip without the peer...
    MISSING = f"{e.name or e}"

SKIP_REASON = (f"interop with sae-lens not tested: cannot import {MISSING} (pip install "
               "--no-deps -r tests/python/requirements-saelens.txt; CI sets "
               "SCALAR_REQUIRE_INTEROP=1)")

D_IN, D_SAE, K = 16, 48, 5
HOOK = "blocks.1.hook_mlp_out"


def norm_rel(ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-30))


@unittest.skipIf(MISSING is not None and not REQUIRE_INTEROP, SKIP_REASON)
class SaeLensInterop(unittest.TestCase):
    def setUp(self):
        if MISSING is not None:  # ...but CI requires the peer
            self.fail(SKIP_REASON)
        torch.manual_seed(0)
        self.tmp = tempfile.TemporaryDirectory()
        self.x = np.random.default_rng(0).normal(0.0, 1.0, (37, D_IN)).astype(np.float32)

    def tearDown(self):
        self.tmp.cleanup()

    def their_sae(self, arch):
        md = SAEMetadata(model_name="gpt2", hook_name=HOOK, hook_head_index=None)
        if arch == "topk":
            sae = TopKSAE(TopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, metadata=md))
        elif arch == "standard":
            sae = StandardSAE(StandardSAEConfig(d_in=D_IN, d_sae=D_SAE, metadata=md))
        else:
            sae = JumpReLUSAE(JumpReLUSAEConfig(d_in=D_IN, d_sae=D_SAE, metadata=md))
        with torch.no_grad():
            for _, p in sae.named_parameters():
                p.copy_(torch.randn_like(p) * 0.5)
            if arch == "jumprelu":
                sae.threshold.copy_(torch.rand_like(sae.threshold) * 0.5)
        return sae

    def their_codes(self, sae):
        with torch.no_grad():
            return sae.encode(torch.from_numpy(self.x)).numpy()

    def test_saelens_files_load_and_encode_the_same(self):
        for arch in ("topk", "standard", "jumprelu"):
            with self.subTest(arch=arch):
                theirs = self.their_sae(arch)
                path = os.path.join(self.tmp.name, "theirs-" + arch)
                theirs.save_model(path)
                ours = scalar.SAE.load(path)
                cfg = ours.config
                self.assertEqual(cfg["architecture"], arch)
                self.assertEqual((cfg["d_in"], cfg["d_sae"]), (D_IN, D_SAE))
                self.assertEqual(cfg["hook_name"], HOOK)
                if arch == "topk":
                    self.assertEqual(cfg["k"], K)
                state = {n: p.detach().numpy() for n, p in theirs.state_dict().items()}
                for name, value in state.items():
                    np.testing.assert_array_equal(ours.param(name), value, err_msg=name)
                err = norm_rel(ours.encode_dense(self.x), self.their_codes(theirs))
                self.assertLessEqual(err, TOL, f"{arch} codes: norm rel {err:.2e}")
                with torch.no_grad():
                    recon = theirs.decode(torch.from_numpy(ours.encode_dense(self.x))).numpy()
                err = norm_rel(ours.decode_dense(ours.encode_dense(self.x)), recon)
                self.assertLessEqual(err, TOL, f"{arch} decode: norm rel {err:.2e}")

    def test_our_files_load_in_saelens(self):
        rng = np.random.default_rng(1)
        for arch in ("topk", "standard", "jumprelu"):
            with self.subTest(arch=arch):
                ours = scalar.SAE.create(d_in=D_IN, d_sae=D_SAE, k=K, architecture=arch,
                                         hook_name=HOOK, seed=3)
                ours.set_param("b_enc", rng.normal(0.0, 0.3, D_SAE))
                ours.set_param("b_dec", rng.normal(0.0, 0.3, D_IN))
                if arch == "jumprelu":
                    ours.set_param("threshold", rng.uniform(0.0, 0.5, D_SAE))
                path = os.path.join(self.tmp.name, "ours-" + arch)
                ours.save(path)
                theirs = SAE.load_from_disk(path)
                self.assertEqual(type(theirs).__name__,
                                 {"topk": "TopKSAE", "standard": "StandardSAE",
                                  "jumprelu": "JumpReLUSAE"}[arch])
                self.assertEqual(theirs.cfg.metadata.hook_name, HOOK)
                for name, value in theirs.state_dict().items():
                    np.testing.assert_array_equal(value.detach().numpy(), ours.param(name),
                                                  err_msg=name)
                err = norm_rel(ours.encode_dense(self.x), self.their_codes(theirs))
                self.assertLessEqual(err, TOL, f"{arch} codes: norm rel {err:.2e}")

    def test_staircase_members_load_in_saelens(self):
        """A Staircase group's member saved alone is a plain SAELens TopK SAE
        holding its prefix of the shared matrices."""
        rng = np.random.default_rng(2)
        group = scalar.SaeGroup.create(D_IN, [16, 32, D_SAE], k=K, seed=4,
                                       hook_names=[HOOK] * 3)
        for j in range(3):
            group.set_param(f"b_enc.{j}", rng.normal(0.0, 0.3, group.sizes[j]))
            group.set_param(f"b_dec.{j}", rng.normal(0.0, 0.3, D_IN))
        W_enc, W_dec = group.param("W_enc"), group.param("W_dec")
        for j, n in enumerate(group.sizes):
            with self.subTest(member=j):
                path = os.path.join(self.tmp.name, f"member-{j}")
                member = group.sae(j)
                member.save(path)
                theirs = SAE.load_from_disk(path)
                self.assertEqual(type(theirs).__name__, "TopKSAE")
                state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
                np.testing.assert_array_equal(state["W_enc"], W_enc[:, :n])
                np.testing.assert_array_equal(state["W_dec"], W_dec[:n])
                np.testing.assert_array_equal(state["b_enc"], group.param(f"b_enc.{j}"))
                err = norm_rel(member.encode_dense(self.x), self.their_codes(theirs))
                self.assertLessEqual(err, TOL, f"member {j} codes: norm rel {err:.2e}")
                member.close()
        group.close()


if __name__ == "__main__":
    unittest.main()
