"""scalar.ops against numpy formulas computed in float64.

Tolerances: sgemm rtol 1e-4 / atol 1e-4 (K <= 64, float32 accumulation);
gelu rtol 1e-5 / atol 1e-6; layernorm rtol 1e-4 / atol 1e-5; softmax
rtol 1e-5 / atol 1e-7; top-k values and indices exact.
"""

import unittest

import numpy as np

import scalar
from scalar import ops

BACKENDS = ("cpu", "cpu-ref")


def gelu_ref(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def layernorm_ref(x, w, b, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    return (x - mean) * rstd * w + b, mean[..., 0], rstd[..., 0]


def softmax_ref(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class OpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ctxs = {name: scalar.Context(threads=2, backend=name) for name in BACKENDS}
        cls.rng = np.random.default_rng(11)

    @classmethod
    def tearDownClass(cls):
        for ctx in cls.ctxs.values():
            ctx.close()

    def each_ctx(self):
        for name, ctx in self.ctxs.items():
            with self.subTest(backend=name):
                yield ctx

    def test_sgemm_all_transposes(self):
        a = self.rng.standard_normal((17, 33)).astype(np.float32)
        b = self.rng.standard_normal((33, 9)).astype(np.float32)
        want = a.astype(np.float64) @ b.astype(np.float64)
        for ctx in self.each_ctx():
            for ta in (False, True):
                for tb in (False, True):
                    aa = a.T.copy() if ta else a
                    bb = b.T.copy() if tb else b
                    c = ops.sgemm(aa, bb, trans_a=ta, trans_b=tb, ctx=ctx)
                    self.assertEqual(c.shape, (17, 9))
                    self.assertEqual(c.dtype, np.float32)
                    np.testing.assert_allclose(c, want, rtol=1e-4, atol=1e-4)

    def test_sgemm_converts_inputs_and_checks_shapes(self):
        a = np.arange(6, dtype=np.float64).reshape(2, 3)
        b = np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4))
        np.testing.assert_allclose(ops.sgemm(a, b), a @ b, rtol=1e-6)
        with self.assertRaises(ValueError):
            ops.sgemm(a, a)
        self.assertEqual(ops.sgemm(np.zeros((0, 3)), np.zeros((3, 2))).shape, (0, 2))

    def test_gelu(self):
        x = (self.rng.standard_normal((5, 77)) * 3).astype(np.float32)
        for ctx in self.each_ctx():
            y = ops.gelu(x, ctx=ctx)
            self.assertEqual(y.shape, x.shape)
            np.testing.assert_allclose(y, gelu_ref(x), rtol=1e-5, atol=1e-6)
            self.assertEqual(ops.gelu(np.float32(1.5), ctx=ctx).shape, ())

    def test_layernorm(self):
        x = (self.rng.standard_normal((3, 4, 96)) * 2 + 0.5).astype(np.float32)
        w = self.rng.standard_normal(96).astype(np.float32)
        b = self.rng.standard_normal(96).astype(np.float32)
        want, mean, rstd = layernorm_ref(x, w, b, 1e-5)
        for ctx in self.each_ctx():
            y, m, r = ops.layernorm(x, w, b, eps=1e-5, return_stats=True, ctx=ctx)
            np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(m, mean, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(r, rstd, rtol=1e-4, atol=1e-6)
            plain = ops.layernorm(x, ctx=ctx)
            np.testing.assert_allclose(plain, layernorm_ref(x, 1.0, 0.0, 1e-5)[0],
                                       rtol=1e-4, atol=1e-5)
        with self.assertRaises(ValueError):
            ops.layernorm(x, np.ones(5))

    def test_softmax(self):
        x = (self.rng.standard_normal((6, 50)) * 5).astype(np.float32)
        for ctx in self.each_ctx():
            y = ops.softmax(x, ctx=ctx)
            np.testing.assert_allclose(y, softmax_ref(x), rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-5)

    def test_topk(self):
        x = self.rng.standard_normal((7, 40)).astype(np.float32)
        x[0, 3] = x[0, 9]  # a tie: the lower index comes first
        want_idx = np.argsort(-x, axis=-1, kind="stable")[:, :5]
        want_val = np.take_along_axis(x, want_idx, axis=-1)
        for ctx in self.each_ctx():
            values, indices = ops.topk(x, 5, ctx=ctx)
            self.assertEqual(values.shape, (7, 5))
            self.assertEqual(indices.dtype, np.int32)
            np.testing.assert_array_equal(indices, want_idx)
            np.testing.assert_array_equal(values, want_val)
        with self.assertRaises(ValueError):
            ops.topk(x, 41)

    def test_default_context(self):
        x = np.linspace(-3, 3, 13, dtype=np.float32)
        np.testing.assert_allclose(ops.gelu(x), gelu_ref(x), rtol=1e-5, atol=1e-6)
        self.assertEqual(scalar.default_context().backend, "cpu")


if __name__ == "__main__":
    unittest.main()
