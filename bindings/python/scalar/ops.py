"""Thin wrappers of the backend kernels on numpy arrays.

Every input is made a C-contiguous float32 array first; outputs are new
arrays.  On a backend whose memory is not host memory, arrays go through
backend buffers (upload, run, download); on the CPU backends the numpy
memory is passed directly.
"""

import ctypes

import numpy as np

from . import _lib
from ._core import resolve_context
from ._lib import lib

__all__ = ["sgemm", "gelu", "layernorm", "softmax", "topk"]


def _f32(x):
    # C-contiguous float32; np.asarray keeps a 0-d array 0-d, unlike ascontiguousarray
    return np.asarray(x, dtype=np.float32, order="C")


def _run(ctx, call, inputs, outputs):
    """Calls ``call(backend, *pointers)`` with inputs then outputs (None -> NULL)."""
    be = ctx._backend_ptr
    arrays = list(inputs) + list(outputs)
    if lib.scalar_backend_is_host(be):
        call(be, *[None if a is None else a.ctypes.data for a in arrays])
        return
    dev = []
    try:
        for i, a in enumerate(arrays):
            if a is None or a.nbytes == 0:
                dev.append(None if a is None else 0)
                continue
            p = ctypes.c_void_p()
            lib.scalar_backend_buffer_alloc(ctypes.byref(p), be, a.nbytes)
            dev.append(p.value)
            if i < len(inputs):
                lib.scalar_backend_upload(be, p.value, a.ctypes.data, a.nbytes)
        call(be, *dev)
        lib.scalar_backend_synchronize(be)
        for a, p in zip(arrays[len(inputs):], dev[len(inputs):]):
            if a is not None and a.nbytes:
                lib.scalar_backend_download(be, a.ctypes.data, p, a.nbytes)
    finally:
        for a, p in zip(arrays, dev):
            if p:
                lib.scalar_backend_buffer_free(be, p, a.nbytes)


def sgemm(a, b, trans_a=False, trans_b=False, ctx=None):
    """``op(a) @ op(b)`` in float32, op the transpose when the flag is set.

    ``a`` is [m, k] (or [k, m] with trans_a), ``b`` [k, n] (or [n, k] with
    trans_b); returns [m, n].
    """
    ctx = resolve_context(ctx)
    a, b = _f32(a), _f32(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("sgemm: a and b must be 2-D")
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    kb, n = (b.shape[1], b.shape[0]) if trans_b else b.shape
    if k != kb:
        raise ValueError(f"sgemm: inner dimensions differ ({k} and {kb})")
    c = np.empty((m, n), dtype=np.float32)
    ta, tb = (_lib.TRANS if trans_a else _lib.NO_TRANS), (_lib.TRANS if trans_b else _lib.NO_TRANS)
    _run(ctx, lambda be, pa, pb, pc: lib.scalar_backend_sgemm(
        be, ta, tb, m, n, k, 1.0, pa, max(a.shape[1], 1), pb, max(b.shape[1], 1), 0.0, pc,
        max(n, 1)), [a, b], [c])
    return c


def gelu(x, ctx=None):
    """GELU, tanh approximation, elementwise; same shape as ``x``."""
    ctx = resolve_context(ctx)
    x = _f32(x)
    out = np.empty_like(x)
    _run(ctx, lambda be, pi, po: lib.scalar_backend_gelu_forward(be, po, pi, x.size), [x], [out])
    return out


def _rows(x, what):
    if x.ndim < 1:
        raise ValueError(f"{what}: needs at least 1 dimension")
    d = x.shape[-1]
    return (x.size // d if d else 0), d


def layernorm(x, weight=None, bias=None, eps=1e-5, return_stats=False, ctx=None):
    """LayerNorm over the last dimension (biased variance).

    ``weight`` and ``bias`` are [d] or None (ones, zeros).  With
    ``return_stats`` also returns the per-row mean and rstd, shaped x.shape[:-1].
    """
    ctx = resolve_context(ctx)
    x = _f32(x)
    n_rows, d = _rows(x, "layernorm")
    w = None if weight is None else _f32(weight)
    b = None if bias is None else _f32(bias)
    for name, v in (("weight", w), ("bias", b)):
        if v is not None and v.shape != (d,):
            raise ValueError(f"layernorm: {name} has shape {v.shape}, expected ({d},)")
    out = np.empty_like(x)
    mean = np.empty(x.shape[:-1], dtype=np.float32)
    rstd = np.empty(x.shape[:-1], dtype=np.float32)
    _run(ctx, lambda be, pi, pw, pb, po, pm, pr: lib.scalar_backend_layernorm_forward(
        be, po, pm, pr, pi, pw, pb, n_rows, d, eps), [x, w, b], [out, mean, rstd])
    return (out, mean, rstd) if return_stats else out


def softmax(x, ctx=None):
    """Softmax over the last dimension."""
    ctx = resolve_context(ctx)
    x = _f32(x)
    n_rows, n_cols = _rows(x, "softmax")
    out = np.empty_like(x)
    _run(ctx, lambda be, pi, po: lib.scalar_backend_softmax_rows(be, po, pi, n_rows, n_cols),
         [x], [out])
    return out


def topk(x, k, ctx=None):
    """The k largest entries along the last dimension: ``(values, indices)``.

    Values descend; ties keep the lower index first; indices are int32.
    """
    ctx = resolve_context(ctx)
    x = _f32(x)
    n_rows, n_cols = _rows(x, "topk")
    k = int(k)
    if not 0 <= k <= n_cols:
        raise ValueError(f"topk: k={k} outside [0, {n_cols}]")
    values = np.empty(x.shape[:-1] + (k,), dtype=np.float32)
    indices = np.empty(x.shape[:-1] + (k,), dtype=np.int32)
    _run(ctx, lambda be, pi, pv, px: lib.scalar_backend_topk_rows(
        be, pv, px, pi, n_rows, n_cols, k), [x], [values, indices])
    return values, indices
