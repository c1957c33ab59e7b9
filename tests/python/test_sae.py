"""SAE dictionaries through the binding, against numpy implementations of the
formulas in include/scalar/sae.h (float64 references, norm-wise 1e-5)."""

import ctypes
import gc
import math
import os
import tempfile
import unittest

import numpy as np

import scalar
from scalar import _lib

TOL = 1e-5  # norm-wise relative, per array


def rel(ours, ref):
    """||ours - ref|| / ||ref||"""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


# ---------------------------------------------------------------- numpy references

def ref_pre(p, cfg, x):
    """pre = W_enc^T (x - b_dec) + b_enc (the - b_dec when apply_b_dec_to_input)."""
    x = np.asarray(x, np.float64).reshape(-1, cfg["d_in"])
    if cfg["apply_b_dec_to_input"]:
        x = x - p["b_dec"].astype(np.float64)
    return x @ p["W_enc"].astype(np.float64) + p["b_enc"].astype(np.float64)


def ref_dense(p, cfg, pre):
    """Dense codes [n, d_sae] of each architecture."""
    if cfg["architecture"] == "jumprelu":  # SAELens: ReLU(pre) * (pre > threshold)
        return np.where(pre > p["threshold"].astype(np.float64), np.maximum(pre, 0.0), 0.0)
    f = np.maximum(pre, 0.0)
    if cfg["architecture"] == "topk":
        values, indices = ref_topk(f, cfg["k"])
        f = np.zeros_like(f)
        np.put_along_axis(f, indices.astype(np.int64), values, axis=1)
    return f


def ref_topk(f, k):
    """The k largest of each row, larger first, equal values lower index first."""
    order = np.argsort(-f, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(f, order, axis=1), order.astype(np.int32)


def ref_decode(p, values, indices):
    """b_dec + sum_j values[t, j] W_dec[indices[t, j]] (negative indices skipped)."""
    W_dec, b_dec = p["W_dec"].astype(np.float64), p["b_dec"].astype(np.float64)
    out = np.tile(b_dec, (values.shape[0], 1))
    for t in range(values.shape[0]):
        for v, i in zip(values[t], indices[t]):
            if i >= 0:
                out[t] += float(v) * W_dec[i]
    return out


def randomise(sae, rng):
    """Random biases (and thresholds of both signs) so every term of the formulas counts."""
    d_in, d_sae = sae.config["d_in"], sae.config["d_sae"]
    sae.set_param("b_enc", rng.normal(0.0, 0.3, d_sae))
    sae.set_param("b_dec", rng.normal(0.0, 0.5, d_in))
    if sae.config["architecture"] == "jumprelu":
        sae.set_param("threshold", rng.uniform(-0.5, 1.0, d_sae))


class SaeCase(unittest.TestCase):
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

    def assertTopK(self, values, indices, pre, k, what):
        """Sparse codes against the reference: values norm-wise, each index
        pointing at its value, and exactly the reference's indices wherever
        rounding cannot reorder them (neighbouring values apart by > 1e-4)."""
        f = np.maximum(pre, 0.0)
        ref_v, ref_i = ref_topk(f, k)
        self.assertEqual(values.dtype, np.float32, what)
        self.assertEqual(indices.dtype, np.int32, what)
        self.assertEqual(values.shape, ref_v.shape, what)
        self.assertClose(values, ref_v, what + " values")
        self.assertClose(np.take_along_axis(f, indices.astype(np.int64), axis=1), values,
                         what + ": values at the indices")
        self.assertTrue((np.diff(values, axis=1) <= 0).all(), what + ": larger first")
        top = -np.sort(-f, axis=1)[:, :k + 1]
        clear = (np.abs(np.diff(top, axis=1)) > 1e-4) | (top[:, 1:] == 0) & (top[:, :-1] == 0)
        for t in range(values.shape[0]):
            if clear[t].all():
                np.testing.assert_array_equal(indices[t], ref_i[t], f"{what}: token {t}")


# ---------------------------------------------------------------- tests

class CreateTest(SaeCase):
    def test_defaults_are_the_toy_topk_sae(self):
        with scalar.SAE.create() as sae:
            self.assertEqual(sae.config, {"architecture": "topk", "d_in": 64, "d_sae": 512,
                                          "k": 10, "apply_b_dec_to_input": True,
                                          "hook_name": None})
            self.assertEqual(sae.param_names(), ["W_enc", "b_enc", "W_dec", "b_dec"])
            p = sae.params()
            self.assertEqual(p["W_enc"].shape, (64, 512))
            self.assertEqual(p["b_enc"].shape, (512,))
            self.assertEqual(p["W_dec"].shape, (512, 64))
            self.assertEqual(p["b_dec"].shape, (64,))
            for name, arr in p.items():
                self.assertEqual(arr.dtype, np.float32, name)
                self.assertEqual(arr.shape, sae.param_shape(name), name)
            np.testing.assert_array_equal(p["W_enc"], p["W_dec"].T)
            np.testing.assert_array_equal(p["b_enc"], np.zeros(512, np.float32))
            np.testing.assert_array_equal(p["b_dec"], np.zeros(64, np.float32))
            bound = math.sqrt(6.0 / 64)  # Kaiming-uniform on [d_sae, d_in]
            self.assertLessEqual(float(np.abs(p["W_dec"]).max()), bound)
            self.assertGreater(float(np.abs(p["W_dec"]).max()), 0.95 * bound)
            self.assertIn("topk 64x512 k=10", repr(sae))

    def test_architectures_and_fields(self):
        a = scalar.SAE.create(d_in=8, d_sae=32, architecture="standard",
                              hook_name="blocks.0.hook_mlp_out", apply_b_dec_to_input=False)
        self.assertEqual(a.config, {"architecture": "standard", "d_in": 8, "d_sae": 32, "k": 0,
                                    "apply_b_dec_to_input": False,
                                    "hook_name": "blocks.0.hook_mlp_out"})
        b = scalar.SAE.create(d_in=8, d_sae=32, architecture=scalar.SAE_JUMPRELU)
        self.assertEqual(b.config["architecture"], "jumprelu")
        self.assertEqual(b.param_names(), ["W_enc", "b_enc", "W_dec", "b_dec", "threshold"])
        np.testing.assert_array_equal(b.param("threshold"), np.zeros(32, np.float32))
        c = scalar.SAE.create(d_in=8, d_sae=32, k=3, architecture=scalar.SAE_TOPK)
        self.assertEqual((c.config["architecture"], c.config["k"]), ("topk", 3))
        self.assertEqual(scalar.SAE_ARCHITECTURES[scalar.SAE_STANDARD], "standard")

    def test_seeds(self):
        with scalar.Context(seed=5) as ctx:
            a = scalar.SAE.create(d_in=8, d_sae=16, k=2, seed=1, ctx=ctx)
            b = scalar.SAE.create(d_in=8, d_sae=16, k=2, seed=1, ctx=ctx)
            c = scalar.SAE.create(d_in=8, d_sae=16, k=2, seed=2, ctx=ctx)
            np.testing.assert_array_equal(a.param("W_dec"), b.param("W_dec"))
            self.assertFalse(np.array_equal(a.param("W_dec"), c.param("W_dec")))
            for s in (a, b, c):
                s.close()

    def test_bad_configs(self):
        self.assertError(scalar.E_INVALID_ARG, scalar.SAE.create, architecture="gated",
                         contains="gated")
        self.assertError(scalar.E_INVALID_ARG, scalar.SAE.create, architecture=7,
                         contains="unknown architecture 7")
        self.assertError(scalar.E_INVALID_ARG, scalar.SAE.create, d_sae=16, k=17,
                         contains="k 17 not in 1..d_sae (16)")
        self.assertError(scalar.E_INVALID_ARG, scalar.SAE.create, d_in=0)

    def test_struct_matches_the_library(self):
        self.assertEqual(ctypes.sizeof(scalar.SaeConfig), _lib.lib.scalar_sae_config_size())
        if ctypes.sizeof(ctypes.c_void_p) == 8:
            self.assertEqual(ctypes.sizeof(scalar.SaeConfig), 48)
        self.assertEqual((scalar.SAE_TOPK, scalar.SAE_STANDARD, scalar.SAE_JUMPRELU), (0, 1, 2))


class CodesTest(SaeCase):
    """encode / encode_dense / decode / decode_dense against numpy."""

    N = 37  # tokens

    def make(self, architecture, apply_b_dec_to_input=True, seed=0):
        sae = scalar.SAE.create(d_in=64, d_sae=512, k=10, architecture=architecture,
                                apply_b_dec_to_input=apply_b_dec_to_input, seed=seed)
        rng = np.random.default_rng(seed + 100)
        randomise(sae, rng)
        x = rng.standard_normal((self.N, 64)).astype(np.float32)
        return sae, x

    def test_encode_all_architectures(self):
        for arch in ("topk", "standard", "jumprelu"):
            for apply in (True, False):
                with self.subTest(arch=arch, apply_b_dec_to_input=apply):
                    sae, x = self.make(arch, apply)
                    p, cfg = sae.params(), sae.config
                    pre = ref_pre(p, cfg, x)
                    dense = sae.encode_dense(x)
                    self.assertEqual(dense.dtype, np.float32)
                    self.assertEqual(dense.shape, (self.N, 512))
                    if arch == "topk":
                        values, indices = sae.encode(x)
                        self.assertTopK(values, indices, pre, 10, "encode")
                        # encode_dense is encode scattered into zeros
                        scattered = np.zeros((self.N, 512), np.float32)
                        np.put_along_axis(scattered, indices.astype(np.int64), values, axis=1)
                        np.testing.assert_array_equal(dense, scattered)
                        self.assertTrue(((dense != 0).sum(axis=1) <= 10).all())
                    elif arch == "jumprelu":
                        # entries within rounding of their threshold may go either way
                        thr = p["threshold"].astype(np.float64)
                        sure = np.abs(pre - thr) > 1e-4
                        self.assertClose(np.where(sure, dense, 0), np.where(sure, pre > thr, 0)
                                         * np.maximum(pre, 0.0), "encode_dense (jumprelu)")
                        unsure = ~sure
                        self.assertTrue(np.all((dense[unsure] == 0)
                                               | (np.abs(dense[unsure] - pre[unsure]) < 1e-3)))
                        self.assertTrue(0 < (dense != 0).mean() < 0.5)
                    else:
                        self.assertClose(dense, ref_dense(p, cfg, pre), "encode_dense (standard)")
                    sae.close()

    def test_topk_fewer_positive_than_k(self):
        """Kept zeros come lowest index first (equal values: lower index first)."""
        sae = scalar.SAE.create(d_in=8, d_sae=32, k=6, seed=3)
        b_enc = np.full(32, -100.0, np.float32)
        b_enc[[5, 20, 29]] = 100.0
        sae.set_param("b_enc", b_enc)
        x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
        values, indices = sae.encode(x)
        pre = ref_pre(sae.params(), sae.config, x)
        self.assertTopK(values, indices, pre, 6, "encode")
        for t in range(4):
            self.assertEqual(sorted(indices[t, :3].tolist()), [5, 20, 29])
            np.testing.assert_array_equal(indices[t, 3:], [0, 1, 2])
            np.testing.assert_array_equal(values[t, 3:], [0, 0, 0])

    def test_decode(self):
        sae, x = self.make("topk", seed=1)
        p = sae.params()
        values, indices = sae.encode(x)
        x_hat = sae.decode(values, indices)
        self.assertEqual(x_hat.dtype, np.float32)
        self.assertClose(x_hat, ref_decode(p, values, indices), "decode")
        # any k, negative indices skipped, int64 indices and lists accepted
        rng = np.random.default_rng(2)
        v = rng.standard_normal((5, 3)).astype(np.float32)
        i = rng.integers(0, 512, (5, 3))
        i[1, 2] = -1
        i[4, :] = -7
        out = sae.decode(v, i)
        self.assertClose(out, ref_decode(p, v, i), "decode (k = 3)")
        np.testing.assert_allclose(out[4], p["b_dec"], rtol=0, atol=0)
        self.assertClose(sae.decode(v.tolist(), i.tolist()), out, "decode (lists)")
        np.testing.assert_array_equal(sae.decode(np.zeros((2, 0)), np.zeros((2, 0), np.int32)),
                                      np.tile(p["b_dec"], (2, 1)))

    def test_decode_dense(self):
        for arch in ("topk", "standard", "jumprelu"):
            with self.subTest(arch=arch):
                sae, x = self.make(arch, seed=2)
                p = sae.params()
                codes = sae.encode_dense(x)
                x_hat = sae.decode_dense(codes)
                ref = codes.astype(np.float64) @ p["W_dec"].astype(np.float64) + p["b_dec"]
                self.assertEqual(x_hat.dtype, np.float32)
                self.assertClose(x_hat, ref, "decode_dense")
                if arch == "topk":
                    self.assertClose(x_hat, sae.decode(*sae.encode(x)), "dense vs sparse decode",
                                     tol=1e-5)

    def test_leading_dims(self):
        sae, x = self.make("topk", seed=4)
        x3 = x[:6].reshape(2, 3, 64)
        values, indices = sae.encode(x3)
        self.assertEqual(values.shape, (2, 3, 10))
        self.assertEqual(indices.shape, (2, 3, 10))
        v2, i2 = sae.encode(x[:6])
        np.testing.assert_array_equal(values.reshape(6, 10), v2)
        np.testing.assert_array_equal(indices.reshape(6, 10), i2)
        dense = sae.encode_dense(x3)
        self.assertEqual(dense.shape, (2, 3, 512))
        np.testing.assert_array_equal(dense.reshape(6, 512), sae.encode_dense(x[:6]))
        x_hat = sae.decode(values, indices)
        self.assertEqual(x_hat.shape, (2, 3, 64))
        np.testing.assert_array_equal(x_hat.reshape(6, 64), sae.decode(v2, i2))
        self.assertEqual(sae.decode_dense(dense).shape, (2, 3, 64))
        # one token as a vector; no tokens at all
        v1, i1 = sae.encode(x[0])
        self.assertEqual(v1.shape, (10,))
        np.testing.assert_array_equal(v1, v2[0])
        self.assertEqual(sae.decode(v1, i1).shape, (64,))
        self.assertEqual(sae.encode_dense(np.zeros((0, 64))).shape, (0, 512))
        self.assertEqual(sae.encode(np.zeros((0, 4, 64)))[1].shape, (0, 4, 10))
        # non-contiguous and float64 inputs
        xt = np.asfortranarray(x[:6].astype(np.float64))
        np.testing.assert_array_equal(sae.encode(xt)[1], i2)


class SaveLoadTest(SaeCase):
    def test_round_trip(self):
        rng = np.random.default_rng(7)
        for arch in ("topk", "standard", "jumprelu"):
            with self.subTest(arch=arch), tempfile.TemporaryDirectory() as tmp:
                sae = scalar.SAE.create(d_in=16, d_sae=48, k=4, architecture=arch,
                                        hook_name="blocks.1.hook_resid_post",
                                        apply_b_dec_to_input=(arch != "standard"), seed=9)
                randomise(sae, rng)
                out = os.path.join(tmp, "saved")  # created if missing
                sae.save(out)
                self.assertTrue(os.path.exists(os.path.join(out, "cfg.json")))
                self.assertTrue(os.path.exists(os.path.join(out, "sae_weights.safetensors")))
                with scalar.SAE.load(out) as back:
                    self.assertEqual(back.config, sae.config)
                    self.assertEqual(back.param_names(), sae.param_names())
                    for name in sae.param_names():
                        self.assertEqual(back.param(name).tobytes(), sae.param(name).tobytes(),
                                         name)
                    x = rng.standard_normal((5, 16)).astype(np.float32)
                    self.assertEqual(back.encode_dense(x).tobytes(),
                                     sae.encode_dense(x).tobytes())
                # the weights file is plain SAELens safetensors
                with scalar.SafeTensors(os.path.join(out, "sae_weights.safetensors")) as st:
                    self.assertEqual(sorted(st.keys()), sorted(sae.param_names()))
                    np.testing.assert_array_equal(st["W_enc"], sae.param("W_enc"))


class ErrorTest(SaeCase):
    @classmethod
    def setUpClass(cls):
        cls.sae = scalar.SAE.create(d_in=16, d_sae=48, k=4)
        cls.std = scalar.SAE.create(d_in=16, d_sae=48, architecture="standard")

    @classmethod
    def tearDownClass(cls):
        cls.sae.close()
        cls.std.close()

    def test_wrong_last_dim(self):
        x = np.zeros((3, 15), np.float32)
        self.assertError(scalar.E_SHAPE, self.sae.encode, x, contains="[..., d_in]")
        self.assertError(scalar.E_SHAPE, self.sae.encode_dense, x, contains="[3, 15]")
        self.assertError(scalar.E_SHAPE, self.sae.encode, np.float32(1.0))
        self.assertError(scalar.E_SHAPE, self.sae.decode_dense, np.zeros((3, 16), np.float32),
                         contains="d_sae")
        self.assertError(scalar.E_SHAPE, self.sae.decode, np.zeros((3, 4), np.float32),
                         np.zeros((3, 5), np.int32))

    def test_encode_on_a_standard_sae(self):
        self.assertError(scalar.E_INVALID_ARG, self.std.encode, np.zeros((2, 16), np.float32),
                         contains="sparse codes need a TopK SAE")
        self.std.encode_dense(np.zeros((2, 16), np.float32))  # still usable

    def test_decode_index_out_of_range(self):
        v = np.ones((2, 3), np.float32)
        i = np.zeros((2, 3), np.int32)
        i[1, 2] = 48
        self.assertError(scalar.E_INVALID_ARG, self.sae.decode, v, i,
                         contains="token 1 code 2: latent 48 >= d_sae 48")
        self.assertError(scalar.E_INVALID_ARG, self.sae.decode, v,
                         i.astype(np.int64) + 2 ** 40)  # not int32
        with self.assertRaises(TypeError):
            self.sae.decode(v, i.astype(np.float32))

    def test_params(self):
        self.assertError(scalar.E_INVALID_ARG, self.sae.param, "threshold",
                         contains="no parameter \"threshold\"")
        self.assertError(scalar.E_INVALID_ARG, self.sae.set_param, "W_gate", np.zeros(3),
                         contains="W_gate")
        self.assertError(scalar.E_SHAPE, self.sae.set_param, "W_enc",
                         np.zeros((48, 16), np.float32))
        self.assertError(scalar.E_NUMERIC, self.sae.set_param, "b_dec",
                         np.full(16, np.inf, np.float32))
        self.assertEqual(float(np.abs(self.sae.param("b_dec")).max()), 0.0)  # nothing written

    def test_load_refusals(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "cfg.json")
            with open(path, "w") as f:
                f.write("{}")
            self.assertError(scalar.E_IO, scalar.SAE.load, path, contains="is not a folder")
            self.assertError(scalar.E_IO, scalar.SAE.load, os.path.join(tmp, "missing"))
            empty = os.path.join(tmp, "empty")
            os.mkdir(empty)
            self.assertError(scalar.E_IO, scalar.SAE.load, empty, contains="cfg.json")


class LifetimeTest(SaeCase):
    def test_close_and_context_manager(self):
        with scalar.SAE.create(d_in=8, d_sae=16, k=2) as sae:
            sae.encode(np.zeros((1, 8)))
        self.assertTrue(sae.closed)
        self.assertIn("closed", repr(sae))
        with self.assertRaises(ValueError):
            sae.encode(np.zeros((1, 8)))
        sae.close()

    def test_context_closed_first(self):
        ctx = scalar.Context(seed=1)
        sae = scalar.SAE.create(d_in=8, d_sae=16, k=2, ctx=ctx)
        self.assertIs(sae.ctx, ctx)
        ctx.close()
        # the C SAE holds its own reference to the context (as the model does)
        values, indices = sae.encode(np.ones((1, 8)))
        self.assertEqual(values.shape, (1, 2))
        sae.close()  # frees the SAE and, with it, the context
        self.assertTrue(sae.closed)
        with self.assertRaises(ValueError):
            sae.encode(np.zeros((1, 8)))

    def test_sae_keeps_its_context_alive(self):
        sae = scalar.SAE.create(d_in=8, d_sae=16, k=2, ctx=scalar.Context(seed=2))
        gc.collect()
        self.assertFalse(sae.ctx.closed)
        sae.encode_dense(np.ones((2, 8)))
        del sae
        gc.collect()


if __name__ == "__main__":
    unittest.main()
