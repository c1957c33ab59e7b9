"""The SCALAR evaluator (scalar/eval.h): interaction sparsity of one SAE pair,
on numpy arrays.  docs/evaluator.md says exactly what it computes.

    with scalar.Evaluator(model, sae_u, sae_d, "ff", 3, mode="parity") as ev:
        ev.attribute(attr_ids)                    # step 1, [n_seq, seq] token ids
        A = ev.attribution()                      # float32 [F_U, F_D]
        ev.curve(eval_ids)                        # steps 2 to 4
        kl = ev.read_curve("kl")                  # Curve(edges, mean, lo, hi)
        ev.scores()["s_rel"]
    scores = ev.run(attr_ids, eval_ids)           # the same in one call

Paths: ``"ff"`` (``mlp_in`` L -> ``mlp_out`` L, the FF layer), ``"mlpblock"``
(``resid_mid`` L -> ``resid_post`` L, the FF block) and ``"block"``
(``resid_pre`` L -> ``resid_post`` L, the transformer block), or a PATH_*
value.  Modes: ``"clean"`` (no quirk) and ``"parity"`` (every quirk of the
reference implementation, QUIRKS_PARITY); ``quirks`` (QUIRK_* bits) overrides
the mode.

Lifetimes: the C evaluator holds a reference to the model but *borrows* the
two SAEs; the Python evaluator keeps the model and both SAE objects alive, and
refuses to run once either SAE has been closed.  The evaluator copies derived
weights when it is made: do not change the model's or the SAEs' parameters
while it exists.  Calls on one evaluator are serialised by a lock, and hold the
model's lock while they run the model.
"""

import collections
import ctypes
import threading

import numpy as np

from . import _lib
from ._core import Handle, new_handle
from ._lib import (ATTR_GRADIENT_PATH, ATTR_JACOBIAN, CURVE_KL, CURVE_KL_FULL, EVAL_ATTRIBUTIONS,
                   EVAL_CURVES, EVAL_PATHS, PATH_BLOCK, PATH_FF_BLOCK, PATH_FF_LAYER,
                   QUIRK_CURVE_TOPK, QUIRK_FULL_CIRCUIT, QUIRK_GRID, QUIRK_NORM_WEIGHT,
                   QUIRK_S1_ZERO, QUIRK_TIES, QUIRKS_PARITY, SCORE_ATTR_TOKENS, SCORE_COUNT,
                   SCORE_EVAL_TOKENS, SCORE_FULL_KL, SCORE_FULL_S_ABS, SCORE_FULL_S_ABS_ERR,
                   SCORE_N_EDGES, SCORE_NAMES, SCORE_S_ABS, SCORE_S_ABS_ERR, SCORE_S_REL,
                   SCORE_S_REL_ERR, EvaluatorOptions, ScalarError, lib)
from ._model import Model, _error, _ids, _ptr
from ._sae import SAE

__all__ = [
    "Evaluator", "Curve", "EvaluatorOptions", "evaluator_options", "EVAL_PATHS", "EVAL_MODES",
    "EVAL_ATTRIBUTIONS", "EVAL_CURVES", "SCORE_NAMES", "PATH_FF_LAYER", "PATH_FF_BLOCK",
    "PATH_BLOCK", "ATTR_GRADIENT_PATH", "ATTR_JACOBIAN", "QUIRK_TIES", "QUIRK_S1_ZERO",
    "QUIRK_NORM_WEIGHT", "QUIRK_CURVE_TOPK", "QUIRK_FULL_CIRCUIT", "QUIRK_GRID",
    "QUIRKS_PARITY", "CURVE_KL", "CURVE_KL_FULL", "SCORE_S_ABS", "SCORE_S_ABS_ERR",
    "SCORE_S_REL", "SCORE_S_REL_ERR", "SCORE_FULL_S_ABS", "SCORE_FULL_S_ABS_ERR",
    "SCORE_FULL_KL", "SCORE_N_EDGES", "SCORE_ATTR_TOKENS", "SCORE_EVAL_TOKENS", "SCORE_COUNT",
]

#: Mode names and their quirk bits.
EVAL_MODES = {"clean": 0, "parity": QUIRKS_PARITY}

# Accepted spellings of the paths (EVAL_PATHS are the canonical names).
_PATH_ALIASES = {"ff": PATH_FF_LAYER, "ff_layer": PATH_FF_LAYER, "mlpblock": PATH_FF_BLOCK,
                 "ff_block": PATH_FF_BLOCK, "block": PATH_BLOCK}
_ATTR_ALIASES = {"gradient": ATTR_GRADIENT_PATH, "gradient_path": ATTR_GRADIENT_PATH,
                 "jacobian": ATTR_JACOBIAN}
_OPTION_FIELDS = ("quirks", "attribution", "steps", "bootstrap", "confidence", "seed",
                  "rank_seed", "batch")

#: One curve of the last :meth:`Evaluator.curve`: the grid (int64 [n_points]),
#: the mean KL and the interval ends (float64 [n_points]; NaN without bootstrap).
Curve = collections.namedtuple("Curve", ["edges", "mean", "lo", "hi"])


def _named(value, known, what, fn):
    """The int of a name in ``known`` (a dict) or of an int value (the library
    checks its range, with its own message)."""
    if isinstance(value, str):
        try:
            return known[value.lower()]
        except KeyError:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: unknown {what} {value!r} (known: "
                                             f"{', '.join(known)})") from None
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {what} must be a name or an int, not {type(value).__name__}")
    return int(value)


def evaluator_options(mode="clean", quirks=None, attribution="gradient", steps=5,
                      bootstrap=1000, confidence=0.95, seed=0, rank_seed=125, batch=8):
    """A filled :class:`EvaluatorOptions`: ``scalar_evaluator_options_init``'s
    defaults (clean mode, gradient path with 5 steps, 1000 bootstrap resamples
    at 95%, rank seed 125, 8 sequences per chunk), then the arguments.
    ``quirks`` (QUIRK_* bits), when given, overrides ``mode``."""
    fn = "Evaluator"
    o = EvaluatorOptions()
    lib.scalar_evaluator_options_init(ctypes.byref(o), ctypes.sizeof(o))
    if quirks is None:
        quirks = _named(mode, EVAL_MODES, "mode", fn)
    elif isinstance(quirks, (bool, float)) or not isinstance(quirks, (int, np.integer)):
        raise TypeError(f"{fn}: quirks must be an int of QUIRK_* bits, not "
                        f"{type(quirks).__name__}")
    if not 0 <= int(quirks) < 2 ** 32:
        raise _error(_lib.E_INVALID_ARG, f"{fn}: quirks {quirks} is not a 32-bit set of "
                                         "QUIRK_* bits")
    o.quirks = int(quirks)  # the library rejects unknown bits
    o.attribution = _named(attribution, _ATTR_ALIASES, "attribution", fn)
    for name, value in (("steps", steps), ("bootstrap", bootstrap), ("batch", batch)):
        v = int(value)
        if not -2 ** 31 <= v < 2 ** 31:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: {name} {value} is out of range")
        setattr(o, name, v)
    o.confidence = float(confidence)
    o.seed = int(seed) & (2 ** 64 - 1)
    o.rank_seed = int(rank_seed) & (2 ** 64 - 1)
    return o


class Evaluator(Handle):
    """The SCALAR evaluator of one SAE pair on a model (``scalar_evaluator``).

    ``Evaluator(model, upstream, downstream, path, layer, *, mode="clean",
    quirks=None, attribution="gradient", steps=5, bootstrap=1000,
    confidence=0.95, seed=0, rank_seed=125, batch=8)``

    ``upstream`` / ``downstream``: TopK :class:`SAE` objects of width
    n_embd; one with a hook name must read the hook ``path`` needs at
    ``layer``.  ``attribution``: "gradient" (integrated gradients with
    ``steps`` points) or "jacobian" (the plain Jacobian at the codes).
    ``bootstrap`` resamples (0: no interval) at ``confidence``, seeded by
    ``seed``; ``rank_seed`` orders the zero-score edges; ``batch`` sequences
    per chunk of work.  Use it as a context manager or call :meth:`close`.
    """

    def __init__(self, model, upstream, downstream, path, layer, *, mode="clean", quirks=None,
                 attribution="gradient", steps=5, bootstrap=1000, confidence=0.95, seed=0,
                 rank_seed=125, batch=8):
        fn = "Evaluator"
        if not isinstance(model, Model):
            raise TypeError(f"{fn}: model must be a scalar.Model, not {type(model).__name__}")
        for what, sae in (("upstream", upstream), ("downstream", downstream)):
            if not isinstance(sae, SAE):
                raise TypeError(f"{fn}: {what} must be a scalar.SAE, not {type(sae).__name__}")
        path = _named(path, _PATH_ALIASES, "path", fn)
        self._options = evaluator_options(mode, quirks, attribution, steps, bootstrap,
                                          confidence, seed, rank_seed, batch)
        # the C evaluator borrows the SAEs: keep them (and the model) alive with us
        self._model, self._upstream, self._downstream = model, upstream, downstream
        self._lock = threading.RLock()
        self._path, self._layer = path, int(layer)
        super().__init__(new_handle(lib.scalar_evaluator_create, model._handle,
                                    upstream._handle, downstream._handle, path, int(layer),
                                    ctypes.byref(self._options)), lib.scalar_evaluator_free)
        self._F_U = upstream.config["d_sae"]
        self._F_D = downstream.config["d_sae"]

    # ---- lifecycle and shape
    @property
    def _handle(self):
        h = super()._handle  # raises ValueError once closed
        for what, sae in (("upstream", self._upstream), ("downstream", self._downstream)):
            if sae.closed:
                raise ValueError(f"Evaluator: the {what} SAE was closed; the evaluator "
                                 "borrows it and cannot run")
        return h

    def __repr__(self):
        if self.closed:
            return "<scalar.Evaluator closed>"
        return (f"<scalar.Evaluator {EVAL_PATHS[self._path]} layer={self._layer} "
                f"{self._F_U}x{self._F_D} mode={self.mode}>")

    @property
    def model(self):
        return self._model

    @property
    def upstream(self):
        return self._upstream

    @property
    def downstream(self):
        return self._downstream

    @property
    def path(self):
        """The path's name: "ff", "mlpblock" or "block"."""
        return EVAL_PATHS[self._path]

    @property
    def layer(self):
        return self._layer

    @property
    def shape(self):
        """``(F_U, F_D)``, the shape of the attribution."""
        return (self._F_U, self._F_D)

    @property
    def n_edges(self):
        """``F_U * F_D``."""
        return self._F_U * self._F_D

    @property
    def quirks(self):
        """The QUIRK_* bits in use."""
        return self._options.quirks

    @property
    def mode(self):
        """"clean", "parity", or "custom" (other quirk bits)."""
        for name, bits in EVAL_MODES.items():
            if self._options.quirks == bits:
                return name
        return "custom"

    @property
    def options(self):
        """The options as a dict (attribution by name)."""
        d = {f: getattr(self._options, f) for f in _OPTION_FIELDS}
        d["attribution"] = EVAL_ATTRIBUTIONS[d["attribution"]]
        return d

    @property
    def n_points(self):
        """Points of this pair's grid (35 in parity mode)."""
        return int(lib.scalar_evaluator_n_points(self._handle))

    # ---- step 1
    def attribute(self, ids):
        """Add the attribution of token ids ``[n_seq, seq]`` (a 1-D array is one
        sequence) to the edge scores; scores accumulate across calls."""
        ids = _ids(ids, "ids", "Evaluator.attribute")
        with self._lock, self._model._lock:
            lib.scalar_evaluator_attribute(self._handle, _ptr(ids), ids.shape[0], ids.shape[1])

    def attribution(self):
        """The edge scores ``A`` so far: float32 ``[F_U, F_D]``."""
        out = np.empty((self._F_U, self._F_D), dtype=np.float32)
        with self._lock:
            lib.scalar_evaluator_read_attribution(self._handle, _ptr(out), out.size)
        return out

    # ---- step 2
    def order(self):
        """The edge order of the current scores: int64 ``[F_U * F_D]`` flat
        indices ``i * F_D + j``, positive scores descending (equal scores by
        index), then the zero scores in the order of ``rank_seed``."""
        out = np.empty(self.n_edges, dtype=np.int64)
        with self._lock:
            lib.scalar_evaluator_read_order(self._handle, _ptr(out), out.size)
        return out

    def top_edges(self, n):
        """The strongest ``n`` edges with a positive score: ``(upstream int32,
        downstream int32, weight float32)``, each of length <= ``n``."""
        n = int(n)
        if n < 0:
            raise _error(_lib.E_INVALID_ARG, f"Evaluator.top_edges: n {n} < 0")
        m = min(n, self.n_edges)
        up = np.empty(max(m, 1), dtype=np.int32)
        down = np.empty(max(m, 1), dtype=np.int32)
        weight = np.empty(max(m, 1), dtype=np.float32)
        written = ctypes.c_int64()
        with self._lock:
            lib.scalar_evaluator_top_edges(self._handle, m, _ptr(up), _ptr(down), _ptr(weight),
                                           ctypes.byref(written))
        k = written.value
        return up[:k].copy(), down[:k].copy(), weight[:k].copy()

    # ---- steps 3 and 4
    def curve(self, ids, order=None):
        """The subcircuit curve on token ids ``[n_seq, seq]`` (a 1-D array is
        one sequence), its intervals and the scores; replaces an earlier
        curve (a call refused for its arguments keeps the earlier one; one that
        fails while computing leaves none).  ``order``: None (the attribution's
        order) or flat edge indices (distinct, each < F_U * F_D; at least as
        many as the last grid point below the edge count)."""
        fn = "Evaluator.curve"
        ids = _ids(ids, "ids", fn)
        order_arr, n_order = None, 0
        if order is not None:
            arr = np.asarray(order)
            if arr.size == 0:
                arr = arr.astype(np.int64)  # [] is float64 to numpy
            if arr.dtype.kind not in "iu":
                raise TypeError(f"{fn}: order must be integers, not {arr.dtype}")
            if arr.ndim != 1:
                raise _error(_lib.E_SHAPE, f"{fn}: order has shape {list(arr.shape)}, "
                                           "expected a 1-D list of flat edge indices")
            if arr.dtype.kind == "u" and arr.size and arr.max() >= 2 ** 63:
                raise _error(_lib.E_INVALID_ARG, f"{fn}: order holds values outside int64")
            order_arr = np.ascontiguousarray(arr, dtype=np.int64)
            n_order = order_arr.size
            if n_order == 0:
                order_arr = np.zeros(1, dtype=np.int64)  # a valid pointer; n_order says 0
        with self._lock, self._model._lock:
            lib.scalar_evaluator_curve(self._handle, _ptr(ids), ids.shape[0], ids.shape[1],
                                       _ptr(order_arr), n_order)

    def _which(self, which, fn):
        return _named(which, {n: i for i, n in enumerate(EVAL_CURVES)}, "curve", fn)

    def read_curve(self, which="kl"):
        """A curve of the last :meth:`curve`: "kl" (KL to the clean model, the
        SCALAR curve) or "kl_full" (KL to the full SAE circuit, the appendix
        metric), or a CURVE_* value.  Returns a :data:`Curve` of numpy arrays
        ``(edges int64, mean, lo, hi float64)``, each ``[n_points]``."""
        which = self._which(which, "Evaluator.read_curve")
        with self._lock:
            n = self.n_points
            edges = np.empty(n, dtype=np.int64)
            mean, lo, hi = (np.empty(n, dtype=np.float64) for _ in range(3))
            lib.scalar_evaluator_read_curve(self._handle, which, _ptr(edges), _ptr(mean),
                                            _ptr(lo), _ptr(hi), n)
        return Curve(edges, mean, lo, hi)

    def token_kl(self, which="kl"):
        """Per-token KL of a curve (as :meth:`read_curve`): float32
        ``[n_points, n_tokens]``, tokens sequence-major."""
        which = self._which(which, "Evaluator.token_kl")
        with self._lock:
            h = self._handle
            scores = np.empty(SCORE_COUNT, dtype=np.float64)
            try:  # the token count of the curve the library holds
                lib.scalar_evaluator_scores(h, _ptr(scores), scores.size)
            except ScalarError:  # no curve: the library says so in this function's words
                lib.scalar_evaluator_read_token_kl(h, which, _ptr(scores), 0)
                raise
            out = np.empty((self.n_points, int(scores[SCORE_EVAL_TOKENS])), dtype=np.float32)
            lib.scalar_evaluator_read_token_kl(h, which, _ptr(out), out.size)
        return out

    def scores(self):
        """The scores of the last curve, a dict keyed by :data:`SCORE_NAMES`:
        s_abs, s_abs_err, s_rel, s_rel_err (the SCALAR curve's), full_s_abs,
        full_s_abs_err (the appendix curve's), full_kl (mean KL of the full
        SAE circuit to the clean model), n_edges, attr_tokens and eval_tokens
        (the last three as ints)."""
        out = np.empty(SCORE_COUNT, dtype=np.float64)
        with self._lock:
            lib.scalar_evaluator_scores(self._handle, _ptr(out), out.size)
        d = dict(zip(SCORE_NAMES, map(float, out)))
        for k in ("n_edges", "attr_tokens", "eval_tokens"):
            d[k] = int(d[k])
        return d

    def run(self, attr_ids, eval_ids, order=None):
        """:meth:`attribute` on ``attr_ids``, :meth:`curve` on ``eval_ids``
        (with ``order``, None for the attribution's), and the :meth:`scores`."""
        self.attribute(attr_ids)
        self.curve(eval_ids, order)
        return self.scores()
