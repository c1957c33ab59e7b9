"""Staircase SAE groups and the SAE trainer through the binding, against a
float64 numpy implementation of the TopK SAE loss of include/scalar/sae.h
(loss per SAE = sum over d_in of (x_hat - x)^2, mean over tokens) and its
finite differences."""

import ctypes
import gc
import os
import tempfile
import unittest

import numpy as np

import scalar
from scalar import _lib

TOL = 1e-5     # losses, norm-wise relative
FD_TOL = 1e-3  # gradients against central differences, norm-wise relative


def rel(ours, ref):
    """||ours - ref|| / ||ref||"""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


# ---------------------------------------------------------------- numpy reference

def ref_loss(W_enc, W_dec, b_enc, b_dec, x, k, apply_b_dec_to_input=True):
    """One TopK SAE's loss on x [n, d_in], float64: pre = ReLU((x - b_dec) W_enc
    + b_enc), exactly the k largest kept per token (equal values: lower index
    first), x_hat = codes W_dec + b_dec, sum over d_in of (x_hat - x)^2, mean
    over tokens."""
    W_enc, W_dec, b_enc, b_dec, x = (np.asarray(a, np.float64)
                                     for a in (W_enc, W_dec, b_enc, b_dec, x))
    x = x.reshape(-1, W_enc.shape[0])
    pre = np.maximum((x - b_dec if apply_b_dec_to_input else x) @ W_enc + b_enc, 0.0)
    keep = np.argsort(-pre, axis=1, kind="stable")[:, :k]
    codes = np.zeros_like(pre)
    np.put_along_axis(codes, keep, np.take_along_axis(pre, keep, axis=1), axis=1)
    x_hat = codes @ W_dec + b_dec
    return float(((x_hat - x) ** 2).sum(axis=1).mean())


def member_loss(p, sizes, j, x, k, apply_b_dec_to_input=True):
    """Member j of a group with parameters p (a params() dict) on its input x."""
    n = sizes[j]
    return ref_loss(p["W_enc"][:, :n], p["W_dec"][:n], p[f"b_enc.{j}"], p[f"b_dec.{j}"], x, k,
                    apply_b_dec_to_input)


def central_difference(f, p, name, h=1e-5, entries=None):
    """d f(p) / d p[name] by central differences in float64 (p: float64 arrays)."""
    base = p[name]
    grad = np.zeros(base.shape, np.float64)
    flat = range(base.size) if entries is None else entries
    for i in flat:
        idx = np.unravel_index(i, base.shape)
        keep = base[idx]
        base[idx] = keep + h
        up = f(p)
        base[idx] = keep - h
        down = f(p)
        base[idx] = keep
        grad[idx] = (up - down) / (2 * h)
    return grad


def randomise(group, rng):
    """Random biases, so every term of the formulas counts."""
    for j, n in enumerate(group.sizes):
        group.set_param(f"b_enc.{j}", rng.normal(0.0, 0.3, n))
        group.set_param(f"b_dec.{j}", rng.normal(0.0, 0.5, group.d_in))


def structured_acts(rng, atoms, n, active=3):
    """[n, d_in] tokens, each a positive mix of `active` rows of `atoms`."""
    codes = np.zeros((n, atoms.shape[0]))
    for t in range(n):
        codes[t, rng.choice(atoms.shape[0], active, replace=False)] = rng.uniform(1.0, 2.0,
                                                                                  active)
    return (codes @ atoms).astype(np.float32)


class Case(unittest.TestCase):
    def assertClose(self, ours, ref, what, tol=TOL):
        self.assertEqual(np.shape(ours), np.shape(ref), what)
        err = rel(ours, ref)
        self.assertLessEqual(err, tol, f"{what}: norm rel error {err:.3e}")

    def assertError(self, status, fn, *args, contains=None, **kwargs):
        with self.assertRaises(scalar.ScalarError) as cm:
            fn(*args, **kwargs)
        e = cm.exception
        self.assertEqual(e.status, status, str(e))
        self.assertEqual(e.name, _lib.STATUS_NAMES[status])
        self.assertTrue(e.message, "no message")
        if contains:
            self.assertIn(contains, e.message)
        return e


# ---------------------------------------------------------------- groups

class GroupTest(Case):
    def test_create_shapes_and_init(self):
        hooks = ["blocks.0.hook_mlp_out", None, "blocks.1.hook_resid_post"]
        with scalar.SaeGroup.create(16, [24, 40, 64], k=4, hook_names=hooks, seed=3) as g:
            self.assertEqual(g.n_members, 3)
            self.assertEqual(g.sizes, (24, 40, 64))
            self.assertEqual(g.hook_names, tuple(hooks))
            self.assertEqual((g.d_in, g.k, g.mode), (16, 4, "share"))
            self.assertEqual(g.config, {"d_in": 16, "k": 4, "sizes": [24, 40, 64],
                                        "hook_names": hooks, "mode": "share",
                                        "apply_b_dec_to_input": True})
            self.assertEqual(g.param_names(), ["W_enc", "W_dec", "b_enc.0", "b_dec.0", "b_enc.1",
                                               "b_dec.1", "b_enc.2", "b_dec.2"])
            shapes = {"W_enc": (16, 64), "W_dec": (64, 16), "b_enc.0": (24,), "b_dec.0": (16,),
                      "b_enc.1": (40,), "b_dec.1": (16,), "b_enc.2": (64,), "b_dec.2": (16,)}
            p = g.params()
            for name, shape in shapes.items():
                self.assertEqual(g.param_shape(name), shape, name)
                self.assertEqual(p[name].shape, shape, name)
                self.assertEqual(p[name].dtype, np.float32, name)
            np.testing.assert_array_equal(p["W_enc"], p["W_dec"].T)
            for name in shapes:
                if name.startswith("b_"):
                    self.assertEqual(float(np.abs(p[name]).max()), 0.0, name)
            # the matrices of one SAE of n_max latents with the same seed
            with scalar.SAE.create(d_in=16, d_sae=64, k=4, seed=3) as one:
                np.testing.assert_array_equal(p["W_dec"], one.param("W_dec"))
            self.assertEqual(repr(g), "<scalar.SaeGroup share 16x[24, 40, 64] k=4>")
        self.assertTrue(g.closed)
        self.assertEqual(repr(g), "<scalar.SaeGroup closed>")
        with self.assertRaises(ValueError):
            g.param("W_enc")

    def test_modes(self):
        for mode, name in (("share", "share"), ("DETACH", "detach"),
                           (scalar.SAE_GROUP_DETACH, "detach"), (0, "share")):
            with self.subTest(mode=mode), scalar.SaeGroup.create(8, [4, 8], k=2, mode=mode) as g:
                self.assertEqual(g.mode, name)
                self.assertEqual(g.hook_names, (None, None))
        self.assertEqual((scalar.SAE_GROUP_SHARE, scalar.SAE_GROUP_DETACH), (0, 1))
        self.assertEqual(scalar.SAE_GROUP_MODES, ("share", "detach"))

    def test_bad_arguments(self):
        create = scalar.SaeGroup.create
        self.assertError(scalar.E_INVALID_ARG, create, 8, [4, 8], k=2, mode="noshare",
                         contains="noshare")
        self.assertError(scalar.E_INVALID_ARG, create, 8, [4, 8], k=2, mode=5,
                         contains="unknown mode 5")
        self.assertError(scalar.E_INVALID_ARG, create, 8, [8, 8], k=2,
                         contains="sizes must increase strictly")
        self.assertError(scalar.E_INVALID_ARG, create, 8, [2, 8], k=3, contains="sizes[0] = 2")
        self.assertError(scalar.E_INVALID_ARG, create, 8, [], k=2, contains="non-empty")
        self.assertError(scalar.E_INVALID_ARG, create, 8, [[4, 8]], k=2, contains="non-empty")
        with self.assertRaises(TypeError):
            create(8, [4.0, 8.0], k=2)
        self.assertError(scalar.E_INVALID_ARG, create, 8, [4, 8], k=2, hook_names=["a"],
                         contains="1 hook names for 2 members")
        self.assertError(scalar.E_INVALID_ARG, create, 0, [4, 8], k=2)
        self.assertError(scalar.E_INVALID_ARG, create, 8, list(range(2, 67)), k=2,
                         contains="n_members 65")

    def test_param_names_and_values(self):
        g = scalar.SaeGroup.create(8, [4, 8], k=2)
        for bad in ("b_enc.2", "b_dec.01", "b_enc", "threshold", "W_gate", "b_dec.-1"):
            with self.subTest(name=bad):
                self.assertError(scalar.E_INVALID_ARG, g.param, bad, contains="no tensor")
        self.assertError(scalar.E_INVALID_ARG, g.set_param, "b_enc.2", np.zeros(8),
                         contains="b_enc.2")
        self.assertError(scalar.E_SHAPE, g.set_param, "W_enc", np.zeros((8, 4), np.float32),
                         contains="[8, 4]")
        self.assertError(scalar.E_SHAPE, g.set_param, "b_enc.0", np.zeros(8, np.float32))
        self.assertError(scalar.E_NUMERIC, g.set_param, "b_dec.1", np.full(8, np.nan))
        self.assertEqual(float(np.abs(g.param("b_dec.1")).max()), 0.0)  # nothing written
        v = np.arange(8, dtype=np.float32)
        g.set_param("b_dec.1", v)
        np.testing.assert_array_equal(g.param("b_dec.1"), v)
        np.testing.assert_array_equal(g.param("b_dec.0"), np.zeros(8, np.float32))
        g.close()

    def test_save_load_round_trip(self):
        rng = np.random.default_rng(1)
        with tempfile.TemporaryDirectory() as tmp:
            g = scalar.SaeGroup.create(12, [16, 24, 40], k=3, mode="detach", seed=5,
                                       hook_names=["blocks.0.hook_resid_pre", None,
                                                   "blocks.2.hook_mlp_out"],
                                       apply_b_dec_to_input=False)
            randomise(g, rng)
            g.set_param("W_dec", rng.standard_normal((40, 12)))
            out = os.path.join(tmp, "group")  # created if missing
            g.save(out)
            for f in ("cfg.json", "sae_weights.safetensors"):
                self.assertTrue(os.path.exists(os.path.join(out, f)), f)
            with scalar.SaeGroup.load(out) as back:
                self.assertEqual(back.config, g.config)
                self.assertEqual(back.param_names(), g.param_names())
                for name in g.param_names():
                    self.assertEqual(back.param(name).tobytes(), g.param(name).tobytes(), name)
                x = rng.standard_normal((7, 12)).astype(np.float32)
                self.assertEqual(back.sae(2).encode_dense(x).tobytes(),
                                 g.sae(2).encode_dense(x).tobytes())
            # the weights file holds the shared matrices once and biases per member
            with scalar.SafeTensors(os.path.join(out, "sae_weights.safetensors")) as st:
                self.assertEqual(sorted(st.keys()), sorted(g.param_names()))
                np.testing.assert_array_equal(st["W_dec"], g.param("W_dec"))
            g.close()

    def test_load_refusals(self):
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, "plain")
            scalar.SAE.create(d_in=8, d_sae=16, k=2).save(plain)
            self.assertError(scalar.E_FORMAT, scalar.SaeGroup.load, plain, contains="format")
            self.assertError(scalar.E_IO, scalar.SaeGroup.load, os.path.join(tmp, "missing"),
                             contains="is not a folder")


class MemberViewTest(Case):
    def test_member_encodes_as_a_plain_sae(self):
        rng = np.random.default_rng(2)
        g = scalar.SaeGroup.create(16, [32, 64, 96], k=5, seed=4,
                                   hook_names=[None, "blocks.0.hook_mlp_out", None])
        randomise(g, rng)
        p = g.params()
        x = rng.standard_normal((23, 16)).astype(np.float32)
        for j, n in enumerate(g.sizes):
            with self.subTest(member=j):
                member = g.sae(j)
                self.assertEqual(member.config, {"architecture": "topk", "d_in": 16, "d_sae": n,
                                                 "k": 5, "apply_b_dec_to_input": True,
                                                 "hook_name": g.hook_names[j]})
                mp = member.params()
                np.testing.assert_array_equal(mp["W_enc"], p["W_enc"][:, :n])
                np.testing.assert_array_equal(mp["W_dec"], p["W_dec"][:n])
                np.testing.assert_array_equal(mp["b_enc"], p[f"b_enc.{j}"])
                np.testing.assert_array_equal(mp["b_dec"], p[f"b_dec.{j}"])
                plain = scalar.SAE.create(d_in=16, d_sae=n, k=5)
                for name, value in mp.items():
                    plain.set_param(name, value)
                values, indices = member.encode(x)
                pv, pi = plain.encode(x)
                np.testing.assert_array_equal(indices, pi)
                self.assertClose(values, pv, "encode values", tol=1e-6)
                self.assertClose(member.encode_dense(x), plain.encode_dense(x), "encode_dense",
                                 tol=1e-6)
                self.assertClose(member.decode(values, indices), plain.decode(pv, pi), "decode",
                                 tol=1e-6)
                # and both agree with the reference loss
                x_hat = member.decode(values, indices)
                loss = float(((x_hat.astype(np.float64) - x) ** 2).sum(axis=1).mean())
                self.assertClose(loss, member_loss(p, g.sizes, j, x, 5), "member loss")
                member.close()
                plain.close()

    def test_member_writes_into_the_group_and_outlives_it(self):
        g = scalar.SaeGroup.create(8, [4, 8], k=2, seed=1)
        m0, m1 = g.sae(0), g.sae(1)
        W_dec = np.arange(32, dtype=np.float32).reshape(4, 8) / 10
        m0.set_param("W_dec", W_dec)  # rows [0, 4) of the shared decoder
        np.testing.assert_array_equal(g.param("W_dec")[:4], W_dec)
        np.testing.assert_array_equal(m1.param("W_dec")[:4], W_dec)
        m1.set_param("b_dec", np.ones(8))
        np.testing.assert_array_equal(g.param("b_dec.1"), np.ones(8, np.float32))
        np.testing.assert_array_equal(g.param("b_dec.0"), np.zeros(8, np.float32))
        self.assertError(scalar.E_INVALID_ARG, g.sae, 2, contains="index 2 not in 0..1")
        g.close()
        del g
        gc.collect()
        np.testing.assert_array_equal(m1.param("W_dec")[:4], W_dec)  # still valid memory
        self.assertEqual(m1.encode(np.ones((3, 8)))[0].shape, (3, 2))
        m0.close()
        m1.close()


# ---------------------------------------------------------------- trainer

class TrainerComputeTest(Case):
    D_IN, K, N = 8, 3, 29

    def setUp(self):
        rng = np.random.default_rng(11)
        self.share = scalar.SaeGroup.create(self.D_IN, [16, 32, 48], k=self.K, seed=1)
        self.detach = scalar.SaeGroup.create(self.D_IN, [12, 20], k=self.K, seed=2,
                                             mode="detach")
        self.single = scalar.SaeGroup.create(self.D_IN, [24], k=self.K, seed=3,
                                             apply_b_dec_to_input=False)
        self.groups = [self.share, self.detach, self.single]
        for g in self.groups:
            randomise(g, rng)
        self.acts = [rng.standard_normal((self.N, self.D_IN)).astype(np.float32)
                     for _ in range(6)]

    def tearDown(self):
        for g in self.groups:
            g.close()

    def ref_losses(self):
        out, s = [], 0
        for g in self.groups:
            p = g.params()
            for j in range(g.n_members):
                out.append(member_loss(p, g.sizes, j, self.acts[s], self.K,
                                       g.config["apply_b_dec_to_input"]))
                s += 1
        return np.array(out)

    def test_compute_matches_numpy(self):
        with scalar.SaeTrainer(self.groups, max_tokens=64) as tr:
            self.assertEqual(tr.n_saes, 6)
            self.assertEqual(tr.groups, tuple(self.groups))
            self.assertIsNone(tr.model)
            losses = tr.compute(self.acts)
            self.assertEqual(losses.dtype, np.float32)
            self.assertEqual(losses.shape, (6,))
            ref = self.ref_losses()
            for s in range(6):
                self.assertClose(losses[s], ref[s], f"loss of SAE {s}")
            # leading dimensions flatten into tokens; a stacked array works too
            split = [a.reshape(1, self.N, self.D_IN) for a in self.acts]
            np.testing.assert_array_equal(tr.compute(split), losses)
            np.testing.assert_array_equal(tr.compute(np.stack(self.acts)), losses)
            self.assertEqual(tr.steps, 0)  # compute does not update
            np.testing.assert_array_equal(tr.compute(self.acts), losses)

    def test_grad_b_dec_against_finite_differences(self):
        tr = scalar.SaeTrainer(self.groups, max_tokens=64)
        tr.compute(self.acts)
        g = self.share
        sizes = g.sizes
        p64 = {k: v.astype(np.float64) for k, v in g.params().items()}
        for j, s in ((0, 0), (2, 2)):  # b_dec.j reaches only SAE j's loss
            with self.subTest(member=j):
                ours = tr.grad(0, f"b_dec.{j}")
                self.assertEqual(ours.shape, (self.D_IN,))
                self.assertEqual(ours.dtype, np.float32)
                fd = central_difference(
                    lambda q: member_loss(q, sizes, j, self.acts[s], self.K), p64, f"b_dec.{j}")
                self.assertClose(ours, fd, f"d loss / d b_dec.{j}", tol=FD_TOL)
        # b_enc.1 of the group given as the object; the single group's b_dec
        # (no b_dec on the input path)
        fd = central_difference(lambda q: member_loss(q, sizes, 1, self.acts[1], self.K), p64,
                                "b_enc.1")
        self.assertClose(tr.grad(g, "b_enc.1"), fd, "d loss / d b_enc.1", tol=FD_TOL)
        q64 = {k: v.astype(np.float64) for k, v in self.single.params().items()}
        fd = central_difference(
            lambda q: member_loss(q, (24,), 0, self.acts[5], self.K, False), q64, "b_dec.0")
        self.assertClose(tr.grad(2, "b_dec.0"), fd, "single group d loss / d b_dec.0",
                         tol=FD_TOL)
        tr.close()

    def test_grad_of_the_shared_decoder(self):
        """share: W_dec's gradient is that of the summed loss; detach: rows
        [n_{j-1}, n_j) carry SAE j's gradient alone."""
        tr = scalar.SaeTrainer(self.groups, max_tokens=64)
        tr.compute(self.acts)
        g = self.share
        p64 = {k: v.astype(np.float64) for k, v in g.params().items()}
        total = lambda q: sum(member_loss(q, g.sizes, j, self.acts[j], self.K)  # noqa: E731
                              for j in range(3))
        ours = tr.grad(0, "W_dec")
        self.assertEqual(ours.shape, (48, self.D_IN))
        self.assertClose(ours, central_difference(total, p64, "W_dec"), "share: d loss / d W_dec",
                         tol=FD_TOL)
        d = self.detach
        p64 = {k: v.astype(np.float64) for k, v in d.params().items()}
        ours = tr.grad(1, "W_dec")
        lo = 0
        for j, n in enumerate(d.sizes):
            fd = central_difference(lambda q: member_loss(q, d.sizes, j, self.acts[3 + j], self.K),
                                    p64, "W_dec")
            self.assertClose(ours[lo:n], fd[lo:n], f"detach: rows of SAE {j}", tol=FD_TOL)
            lo = n
        tr.close()

    def test_step_acts(self):
        tr = scalar.SaeTrainer(self.groups, max_tokens=64, warmup_steps=0, lr=1e-2,
                               grad_clip=0.0)
        losses = tr.compute(self.acts)
        grads = [tr.grad(i, name) for i, g in enumerate(self.groups) for name in g.param_names()]
        norm = np.sqrt(sum(float((a.astype(np.float64) ** 2).sum()) for a in grads))
        before = [g.params() for g in self.groups]
        step_losses, grad_norm = tr.step_acts(self.acts)
        np.testing.assert_array_equal(step_losses, losses)
        self.assertIsInstance(grad_norm, float)
        self.assertClose(grad_norm, norm, "grad_norm", tol=1e-5)
        self.assertEqual(tr.steps, 1)
        for g, old in zip(self.groups, before):
            for name, value in g.params().items():
                self.assertFalse(np.array_equal(value, old[name]), f"{name} did not move")
        self.assertLess(float(tr.compute(self.acts).sum()), float(losses.sum()))
        tr.close()

    def test_dead_latents(self):
        """After one compute, the latents no token kept with a value > 0 are dead."""
        with scalar.SaeTrainer(self.groups, max_tokens=self.N) as trainer:
            trainer.compute(self.acts)
            dead = trainer.dead_latents(reset=True)
            members = [g.sae(j) for g in self.groups for j in range(g.n_members)]
            for s, (sae, x) in enumerate(zip(members, self.acts)):
                v, idx = sae.encode(x)
                alive = len(set(idx[v > 0].tolist()))
                self.assertEqual(dead[s], sae.config["d_sae"] - alive)
                sae.close()
            self.assertGreater(dead.sum(), 0)  # the count is not trivially zero
            sizes = [n for g in self.groups for n in g.sizes]
            self.assertEqual(list(trainer.dead_latents()), sizes)

    def test_lr_schedule(self):
        tr = scalar.SaeTrainer(self.share, max_tokens=8, warmup_steps=10, max_steps=110, lr=1e-3,
                               min_lr=1e-4)
        self.assertAlmostEqual(tr.lr(0), 1e-4, delta=1e-9)
        self.assertAlmostEqual(tr.lr(9), 1e-3, delta=1e-9)
        self.assertAlmostEqual(tr.lr(10), 1e-3, delta=1e-9)
        self.assertAlmostEqual(tr.lr(60), 1e-4 + 0.5 * 9e-4, delta=1e-8)
        self.assertAlmostEqual(tr.lr(110), 1e-4, delta=1e-9)
        self.assertAlmostEqual(tr.lr(10 ** 6), 1e-4, delta=1e-9)
        opts = tr.options
        self.assertEqual((opts["warmup_steps"], opts["max_steps"]), (10, 110))
        self.assertAlmostEqual(opts["lr"], 1e-3, delta=1e-9)
        self.assertEqual(tr.max_tokens, 8)
        tr.close()

    def test_training_lowers_the_loss(self):
        rng = np.random.default_rng(5)
        atoms = rng.standard_normal((24, 16))
        atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
        g = scalar.SaeGroup.create(16, [32, 64], k=4, seed=7)
        held_out = structured_acts(rng, atoms, 256)
        with scalar.SaeTrainer(g, max_tokens=256, warmup_steps=10, max_steps=300, lr=1e-2,
                               min_lr=1e-3) as tr:
            start = tr.compute([held_out, held_out])
            for _ in range(150):
                x = structured_acts(rng, atoms, 128)
                losses, grad_norm = tr.step_acts([x, x])
                self.assertTrue(np.isfinite(losses).all() and np.isfinite(grad_norm))
            end = tr.compute([held_out, held_out])
            self.assertEqual(tr.steps, 150)
        for s in range(2):
            self.assertLess(end[s], 0.25 * start[s], f"SAE {s}: {start[s]} -> {end[s]}")
        self.assertLess(end[1], end[0] * 1.05)  # the larger SAE does at least as well
        g.close()


class TrainerErrorTest(Case):
    @classmethod
    def setUpClass(cls):
        cls.g = scalar.SaeGroup.create(8, [8, 16], k=2)
        cls.tr = scalar.SaeTrainer(cls.g, max_tokens=10)

    @classmethod
    def tearDownClass(cls):
        cls.tr.close()
        cls.g.close()

    def test_activation_lists(self):
        x = np.zeros((4, 8), np.float32)
        self.assertError(scalar.E_INVALID_ARG, self.tr.compute, [x],
                         contains="1 activation arrays for 2 SAEs")
        self.assertError(scalar.E_INVALID_ARG, self.tr.step_acts, [x, x, x],
                         contains="3 activation arrays for 2 SAEs")
        self.assertError(scalar.E_SHAPE, self.tr.compute, [x, np.zeros((4, 7))],
                         contains="acts[1] has shape [4, 7]")
        self.assertError(scalar.E_SHAPE, self.tr.compute, [x, np.float32(1)])
        self.assertError(scalar.E_SHAPE, self.tr.compute, [x, np.zeros((5, 8))],
                         contains="acts[1] has 5 tokens, acts[0] 4")
        self.assertError(scalar.E_INVALID_ARG, self.tr.compute, [np.zeros((11, 8))] * 2,
                         contains="n_tokens 11 not in 1..10")
        self.assertError(scalar.E_INVALID_ARG, self.tr.compute, [np.zeros((0, 8))] * 2)
        self.assertEqual(self.tr.steps, 0)

    def test_grad_errors(self):
        with scalar.SaeTrainer(self.g, max_tokens=4) as tr:
            self.assertError(scalar.E_INVALID_ARG, tr.grad, 0, "W_dec", contains="no gradient")
            tr.compute([np.ones((2, 8))] * 2)
            self.assertEqual(tr.grad(0, "W_enc").shape, (8, 16))
            self.assertError(scalar.E_INVALID_ARG, tr.grad, 1, "W_dec",
                             contains="group 1 not in 0..0")
            self.assertError(scalar.E_INVALID_ARG, tr.grad, -1, "W_dec")
            self.assertError(scalar.E_INVALID_ARG, tr.grad, 0, "b_enc.2", contains="b_enc.2")
            other = scalar.SaeGroup.create(8, [8], k=2)
            self.assertError(scalar.E_INVALID_ARG, tr.grad, other, "W_dec",
                             contains="not one of this trainer's")
            other.close()

    def test_create_errors(self):
        with self.assertRaises(TypeError):
            scalar.SaeTrainer(self.g, learning_rate=1e-3)
        with self.assertRaises(TypeError):
            scalar.SaeTrainer([self.g, "group"])
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, [self.g, self.g],
                         contains="repeats")
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, [], contains="n_groups 0")
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, self.g, max_tokens=0)
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, self.g, beta1=1.0,
                         contains="betas")
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, self.g, renorm_decoder=2)
        with scalar.Context(seed=3) as ctx:
            elsewhere = scalar.SaeGroup.create(8, [8], k=2, ctx=ctx)
            self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, [self.g, elsewhere],
                             contains="another context")
            elsewhere.close()

    def test_no_model(self):
        self.assertError(scalar.E_INVALID_ARG, self.tr.step, np.zeros((1, 4), np.int32),
                         contains="without a model")
        self.assertError(scalar.E_INVALID_ARG, self.tr.evaluate, np.zeros((1, 4), np.int32),
                         contains="without a model")

    def test_non_finite_step_changes_nothing(self):
        with scalar.SaeTrainer(self.g, max_tokens=4) as tr:
            before = self.g.params()
            x = np.ones((2, 8), np.float32)
            x[1, 3] = np.inf
            self.assertError(scalar.E_NUMERIC, tr.step_acts, [x, x], contains="not finite")
            self.assertEqual(tr.steps, 0)
            for name, value in self.g.params().items():
                self.assertEqual(value.tobytes(), before[name].tobytes(), name)

    def test_struct_and_options(self):
        self.assertEqual(ctypes.sizeof(scalar.SaeTrainerOptions),
                         _lib.lib.scalar_sae_trainer_options_size())
        if ctypes.sizeof(ctypes.c_void_p) == 8:
            self.assertEqual(ctypes.sizeof(scalar.SaeTrainerOptions), 56)
        o = scalar.sae_trainer_options()
        self.assertEqual((o.warmup_steps, o.max_steps, o.renorm_decoder), (750, 7500, 0))
        self.assertAlmostEqual(o.lr, 1e-3, delta=1e-9)
        self.assertAlmostEqual(o.beta2, 0.95, delta=1e-7)
        self.assertAlmostEqual(o.grad_clip, 1.0)
        o = scalar.sae_trainer_options(renorm_decoder=True, weight_decay=0.1)
        self.assertEqual(o.renorm_decoder, 1)
        self.assertAlmostEqual(o.weight_decay, 0.1, delta=1e-7)


class TrainerStateTest(Case):
    def test_save_load_resumes_identically(self):
        rng = np.random.default_rng(8)
        atoms = rng.standard_normal((20, 8))
        batches = [structured_acts(rng, atoms, 32) for _ in range(6)]
        opts = dict(max_tokens=32, warmup_steps=2, max_steps=20, lr=5e-3, weight_decay=0.01)
        with tempfile.TemporaryDirectory() as tmp:
            g = scalar.SaeGroup.create(8, [16, 24], k=3, seed=2, mode="detach")
            single = scalar.SaeGroup.create(8, [12], k=3, seed=9)
            tr = scalar.SaeTrainer([g, single], **opts)
            for x in batches[:3]:
                tr.step_acts([x, x, x])
            state = os.path.join(tmp, "adam.safetensors")
            tr.save(state)
            g.save(os.path.join(tmp, "g"))
            single.save(os.path.join(tmp, "single"))
            first = [tr.step_acts([x, x, x]) for x in batches[3:]]
            params = [g.params(), single.params()]
            self.assertEqual(tr.steps, 6)

            g2 = scalar.SaeGroup.load(os.path.join(tmp, "g"))
            single2 = scalar.SaeGroup.load(os.path.join(tmp, "single"))
            tr2 = scalar.SaeTrainer([g2, single2], **opts)
            tr2.load(state)
            self.assertEqual(tr2.steps, 3)
            second = [tr2.step_acts([x, x, x]) for x in batches[3:]]
            for (l1, n1), (l2, n2) in zip(first, second):
                self.assertEqual(l1.tobytes(), l2.tobytes())
                self.assertEqual(n1, n2)
            for old, new in zip(params, [g2.params(), single2.params()]):
                for name in old:
                    self.assertEqual(old[name].tobytes(), new[name].tobytes(), name)

            # a fresh trainer without the state diverges (its moments start at zero)
            g3 = scalar.SaeGroup.load(os.path.join(tmp, "g"))
            single3 = scalar.SaeGroup.load(os.path.join(tmp, "single"))
            tr3 = scalar.SaeTrainer([g3, single3], **opts)
            tr3.step_acts([batches[3]] * 3)
            self.assertNotEqual(g3.param("W_dec").tobytes(),
                                scalar.SaeGroup.load(os.path.join(tmp, "g")).param("W_dec")
                                .tobytes())
            self.assertEqual(tr3.steps, 1)

            # state for other shapes is refused and changes nothing
            other = scalar.SaeTrainer([scalar.SaeGroup.create(8, [16, 32], k=3),
                                       scalar.SaeGroup.create(8, [12], k=3)], **opts)
            self.assertError(scalar.E_SHAPE, other.load, state, contains="need")
            self.assertEqual(other.steps, 0)
            lone = scalar.SaeTrainer(scalar.SaeGroup.create(8, [16, 24], k=3), **opts)
            self.assertError(scalar.E_FORMAT, lone.load, state, contains="tensors")
            self.assertError(scalar.E_IO, lone.load, os.path.join(tmp, "missing.safetensors"))
            for t in (tr, tr2, tr3, other, lone):
                t.close()


class ModelTrainerTest(Case):
    HOOKS = ["blocks.0.hook_resid_mid", "blocks.0.hook_mlp_out", "blocks.1.hook_resid_post"]

    @classmethod
    def setUpClass(cls):
        cls.ctx = scalar.Context(seed=21)
        cls.model = scalar.Model.create(cls.ctx, config={"n_layer": 2, "n_embd": 32,
                                                         "n_head": 2, "block_size": 16,
                                                         "vocab_size": 50})
        rng = np.random.default_rng(4)
        cls.ids = rng.integers(0, 50, (2, 16))

    @classmethod
    def tearDownClass(cls):
        cls.model.close()
        cls.ctx.close()

    def make_groups(self):
        a = scalar.SaeGroup.create(32, [48, 64], k=4, hook_names=self.HOOKS[:2], seed=1,
                                   ctx=self.ctx)
        b = scalar.SaeGroup.create(32, [40], k=4, hook_names=self.HOOKS[2:], seed=2,
                                   ctx=self.ctx, mode="detach")
        return [a, b]

    def test_evaluate_and_step_stream_the_models_activations(self):
        groups = self.make_groups()
        tr = scalar.SaeTrainer(groups, self.model, max_tokens=32, warmup_steps=0, lr=1e-2)
        self.assertIs(tr.model, self.model)
        _, _, acts = self.model.forward(self.ids, hooks=self.HOOKS)
        x = [acts[h] for h in self.HOOKS]
        self.assertEqual(x[0].shape, (2, 16, 32))
        computed = tr.compute(x)
        evaluated = tr.evaluate(self.ids)
        self.assertEqual(evaluated.shape, (3,))
        self.assertClose(evaluated, computed, "evaluate vs compute", tol=1e-6)
        # and both match the numpy loss
        p = groups[0].params()
        for j in range(2):
            self.assertClose(evaluated[j], member_loss(p, groups[0].sizes, j, x[j], 4),
                             f"evaluate: SAE {j}")
        wte = self.model.param("wte.weight")
        losses, grad_norm = tr.step(self.ids)
        self.assertClose(losses, computed, "step losses", tol=1e-6)
        self.assertGreater(grad_norm, 0.0)
        self.assertEqual(tr.steps, 1)
        np.testing.assert_array_equal(self.model.param("wte.weight"), wte)  # frozen
        after = tr.evaluate(self.ids)
        self.assertLess(float(after.sum()), float(evaluated.sum()))
        self.assertClose(after, tr.compute(x), "evaluate after a step", tol=1e-6)
        # a 1-D ids array is one sequence; a smaller batch is fine
        one = tr.evaluate(self.ids[0])
        _, _, acts1 = self.model.forward(self.ids[:1], hooks=self.HOOKS)
        self.assertClose(one, tr.compute([acts1[h] for h in self.HOOKS]), "one sequence",
                         tol=1e-6)
        self.assertError(scalar.E_INVALID_ARG, tr.evaluate, np.zeros((3, 16), np.int32),
                         contains="max_tokens = 32")
        self.assertError(scalar.E_SHAPE, tr.step, np.zeros((1, 2, 3), np.int32))
        tr.close()
        for g in groups:
            g.close()

    def test_model_mismatches(self):
        bad_hook = scalar.SaeGroup.create(32, [40], k=4, hook_names=["blocks.5.hook_mlp_out"],
                                          ctx=self.ctx)
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, bad_hook, self.model,
                         contains="blocks.5.hook_mlp_out")
        no_hook = scalar.SaeGroup.create(32, [40], k=4, ctx=self.ctx)
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, no_hook, self.model,
                         contains="no hook name")
        wide = scalar.SaeGroup.create(16, [40], k=4, hook_names=self.HOOKS[:1], ctx=self.ctx)
        self.assertError(scalar.E_INVALID_ARG, scalar.SaeTrainer, wide, self.model,
                         contains="n_embd is 32")
        with self.assertRaises(TypeError):
            scalar.SaeTrainer(wide, model="gpt2")
        for g in (bad_hook, no_hook, wide):
            g.close()

    def test_trainer_keeps_groups_and_model_alive(self):
        model = scalar.Model.create(self.ctx, config={"n_layer": 1, "n_embd": 32, "n_head": 2,
                                                      "block_size": 8, "vocab_size": 50})
        tr = scalar.SaeTrainer(scalar.SaeGroup.create(32, [40], k=4, hook_names=self.HOOKS[:1],
                                                      ctx=self.ctx), model, max_tokens=8)
        del model
        gc.collect()
        self.assertFalse(tr.groups[0].closed)
        self.assertFalse(tr.model.closed)
        losses, _ = tr.step(np.arange(8) % 50)
        self.assertTrue(np.isfinite(losses).all())
        self.assertIn("saes=1 model steps=1", repr(tr))
        # the C trainer holds its own references: closing the Python objects is safe
        tr.groups[0].close()
        tr.model.close()
        self.assertEqual(tr.evaluate(np.arange(8) % 50).shape, (1,))
        tr.close()
        self.assertTrue(tr.closed)
        self.assertEqual(repr(tr), "<scalar.SaeTrainer closed>")
        with self.assertRaises(ValueError):
            tr.evaluate(np.arange(8) % 50)
        tr.close()


if __name__ == "__main__":
    unittest.main()


class SaeMetricsTest(Case):
    """scalar.sae_metrics against numpy on the model's own activations:
    L0, FVU, MSE and dead latents from Model.forward(hooks=...) and
    SAE.encode / decode; CE and KL from forwards with ``replace``."""

    def test_metrics_match_numpy(self):
        ctx = scalar.Context(seed=5)
        model = scalar.Model.create(ctx, config={"n_layer": 2, "n_embd": 32, "n_head": 2,
                                                 "block_size": 16, "vocab_size": 50})
        rng = np.random.default_rng(8)
        data = scalar.Dataset.from_ids(rng.integers(0, 50, 400), ctx, val_fraction=0.25,
                                       split_multiple=1)
        hooks = ["blocks.0.hook_resid_pre", "blocks.1.hook_mlp_in"]
        saes = [scalar.SAE.create(32, 64, 4, hook_name=h, seed=i, ctx=ctx)
                for i, h in enumerate(hooks)]
        rows, compound = scalar.sae_metrics(model, data, saes, seq=16, batch=3, max_windows=4)
        val = data.tokens(scalar.VAL, 0, 4 * 16 + 1)
        x = np.stack([val[w * 16:(w + 1) * 16] for w in range(4)])
        y = np.stack([val[w * 16 + 1:(w + 1) * 16 + 1] for w in range(4)])
        logits, ce_clean, acts = model.forward(x, targets=y, hooks=hooks)
        logp = logits - np.log(np.exp(logits.astype(np.float64)).sum(-1, keepdims=True))
        for i, (sae, h) in enumerate(zip(saes, hooks)):
            a = acts[h].reshape(-1, 32)
            v, idx = sae.encode(a)
            rec = sae.decode(v, idx)
            err = ((a - rec) ** 2).sum()
            var = ((a - a.mean(0)) ** 2).sum()
            fired = np.zeros(64, bool)
            fired[idx[v > 0]] = True
            q_logits, ce, _ = model.forward(x, targets=y, replace={h: rec.reshape(4, 16, 32)})
            logq = q_logits - np.log(np.exp(q_logits.astype(np.float64)).sum(-1, keepdims=True))
            kl = (np.exp(logp) * (logp - logq)).sum(-1).mean()
            r = rows[i]
            self.assertAlmostEqual(r["l0"], (v > 0).sum() / 64, places=6)
            self.assertAlmostEqual(r["fvu"], err / var, delta=1e-4 * err / var)
            self.assertAlmostEqual(r["mse"], err / 64, delta=1e-4 * err / 64)
            self.assertEqual(r["dead"], 64 - fired.sum())
            self.assertAlmostEqual(r["ce_clean"], ce_clean, delta=1e-5)
            self.assertAlmostEqual(r["ce_spliced"], ce, delta=1e-4)
            self.assertAlmostEqual(r["ce_increase"], ce - ce_clean, delta=1e-4)
            self.assertAlmostEqual(r["kl"], kl, delta=1e-4 * (1 + kl))
        self.assertEqual(set(compound), {"ce_clean", "ce_spliced", "ce_increase", "kl"})
        self.assertGreater(compound["kl"], 0)
        with self.assertRaises(scalar.ScalarError) as cm:
            scalar.sae_metrics(model, data, [saes[0], saes[0]], seq=16)
        self.assertIn("same hook", cm.exception.message)
        for s in saes:
            s.close()
        model.close()
        ctx.close()


class JacobianPairTest(Case):
    """A JSAE pair on the FF layer of a tiny model: the penalty against numpy
    (J = A diag(gelu'(z)) B^T between the kept latents), sum vs mean modes,
    and where its gradient goes."""

    def setUp(self):
        self.ctx = scalar.Context(seed=9)
        self.model = scalar.Model.create(self.ctx, config={"n_layer": 1, "n_embd": 16,
                                                           "n_head": 2, "block_size": 8,
                                                           "vocab_size": 20})
        rng = np.random.default_rng(3)
        for name in ("h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight", "h.0.mlp.c_fc.bias"):
            shape = self.model.param(name).shape
            self.model.set_param(name, rng.normal(0.0, 0.3, shape))
        self.ids = rng.integers(0, 20, (3, 8))
        hooks = ["blocks.0.hook_mlp_in", "blocks.0.hook_mlp_out"]
        self.groups = [scalar.SaeGroup.create(16, [40], k=4, hook_names=[h], seed=i,
                                              ctx=self.ctx) for i, h in enumerate(hooks)]
        _, _, acts = self.model.forward(self.ids, hooks=hooks)
        self.x, self.y = (acts[h].reshape(-1, 16) for h in hooks)

    def tearDown(self):
        for g in self.groups:
            g.close()
        self.model.close()
        self.ctx.close()

    def numpy_penalty(self):
        W_fc = self.model.param("h.0.mlp.c_fc.weight").astype(np.float64)
        b_fc = self.model.param("h.0.mlp.c_fc.bias").astype(np.float64)
        W_proj = self.model.param("h.0.mlp.c_proj.weight").astype(np.float64)
        z = self.x @ W_fc + b_fc
        c = np.sqrt(2.0 / np.pi)
        t = np.tanh(c * (z + 0.044715 * z ** 3))
        g = 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * c * (1 + 3 * 0.044715 * z * z)
        _, idx_in = self.groups[0].sae(0).encode(self.x)
        _, idx_out = self.groups[1].sae(0).encode(self.y)
        W_dec_in = self.groups[0].param("W_dec").astype(np.float64)
        W_enc_out = self.groups[1].param("W_enc").astype(np.float64)
        total = 0.0
        for tok in range(self.x.shape[0]):
            B = W_dec_in[idx_in[tok]] @ W_fc              # [k_in, F]
            A = W_enc_out[:, idx_out[tok]].T @ W_proj.T   # [k_out, F]
            total += np.abs((A * g[tok]) @ B.T).sum()
        return total / 16.0  # k_in^2

    def test_penalty_modes_and_gradient_support(self):
        n = self.x.shape[0]
        with scalar.SaeTrainer(self.groups, self.model, max_tokens=n) as plain:
            plain.compute([self.x, self.y])
            base = plain.grad(0, "W_dec")
        with scalar.SaeTrainer(self.groups, self.model, max_tokens=n) as tr:
            tr.add_jacobian(0, 1, "ff_layer", 0, 0.5)
            self.assertEqual(tr.n_jacobians, 1)
            tr.compute([self.x, self.y])
            pen = tr.jacobian_penalties()[0]
            self.assertAlmostEqual(pen, 0.5 * self.numpy_penalty(), delta=1e-4 * pen)
            diff = np.abs(tr.grad(0, "W_dec") - base).sum(1)
            _, idx_in = self.groups[0].sae(0).encode(self.x)
            kept = np.zeros(40, bool)
            kept[idx_in.ravel()] = True
            self.assertTrue(np.all(diff[~kept] == 0))   # only kept decoder rows move
            self.assertTrue(np.any(diff[kept] > 0))
        with scalar.SaeTrainer(self.groups, self.model, max_tokens=n) as tr:
            tr.add_jacobian(0, 1, "ff_layer", 0, 0.5 * n, mode="mean")
            tr.compute([self.x, self.y])
            self.assertAlmostEqual(tr.jacobian_penalties()[0], pen, delta=1e-5 * pen)
            with self.assertRaises(scalar.ScalarError) as cm:
                tr.add_jacobian(0, 1, "ff_layer", 0, 0.1)
            self.assertIn("already in a pair", cm.exception.message)
        with scalar.SaeTrainer(self.groups, max_tokens=n) as no_model:
            with self.assertRaises(scalar.ScalarError) as cm:
                no_model.add_jacobian(0, 1, "ff_layer", 0, 0.1)
            self.assertIn("model", cm.exception.message)
        with scalar.SaeTrainer(self.groups, self.model, max_tokens=n) as tr:
            with self.assertRaises(scalar.ScalarError) as cm:
                tr.add_jacobian(0, 1, "ff_block", 0, 0.1)
            self.assertIn("hook_resid_mid", cm.exception.message)
