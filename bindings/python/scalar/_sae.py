"""SAE dictionaries (scalar/sae.h): TopK, standard (ReLU) and JumpReLU sparse
autoencoders in SAELens' layout, on numpy arrays.

    sae = scalar.SAE.load("sae-dir")              # cfg.json + sae_weights.safetensors
    values, indices = sae.encode(acts)            # TopK: [..., k] float32 and int32
    x_hat = sae.decode(values, indices)           # [..., d_in]
    codes = sae.encode_dense(acts)                # any architecture: [..., d_sae]
    x_hat = sae.decode_dense(codes)

Activations are ``[..., d_in]`` float arrays: the leading dimensions are
flattened into tokens for the library and restored in the outputs.
Parameters have SAELens' names and shapes: ``W_enc [d_in, d_sae]``,
``b_enc [d_sae]``, ``W_dec [d_sae, d_in]``, ``b_dec [d_in]`` and, JumpReLU
only, ``threshold [d_sae]``.

Lifetimes: the C SAE holds a reference to its context, so an :class:`SAE`
keeps working after its :class:`Context` is closed, and frees it with itself.
Encode and decode may run from several threads at once; :meth:`SAE.set_param`
may not run while another thread uses the same SAE.
"""

import ctypes

import numpy as np

from . import _lib
from ._core import Handle, new_handle, resolve_context
from ._lib import (SAE_ARCHITECTURES, SAE_JUMPRELU, SAE_STANDARD, SAE_TOPK, SaeConfig, lib)
from ._model import ParamTable, _error, _f32, _int32, _path, _ptr

__all__ = ["SAE", "SaeConfig", "SAE_ARCHITECTURES", "SAE_TOPK", "SAE_STANDARD", "SAE_JUMPRELU"]


# ---------------------------------------------------------------- helpers

def _architecture(arch, fn):
    """SAE_* value of a name ("topk", "standard", "jumprelu") or of the value itself."""
    if isinstance(arch, str):
        try:
            return SAE_ARCHITECTURES.index(arch.lower())
        except ValueError:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: unknown architecture {arch!r} (known: "
                                             f"{', '.join(SAE_ARCHITECTURES)})") from None
    return int(arch)  # the library checks the range, with its own message


def _config_dict(c):
    """The user-facing view of a filled SaeConfig (hook_name copied: it is borrowed)."""
    return {
        "architecture": SAE_ARCHITECTURES[c.architecture],
        "d_in": c.d_in,
        "d_sae": c.d_sae,
        "k": c.k,
        "apply_b_dec_to_input": bool(c.apply_b_dec_to_input),
        "hook_name": _lib._decode(c.hook_name),
    }


class _SaeHandle(Handle):
    """Owns the C SAE (which holds its own reference to the context)."""

    def __init__(self, ptr):
        super().__init__(ptr, lib.scalar_sae_free)


# ---------------------------------------------------------------- SAE

class SAE(ParamTable):
    """A sparse autoencoder dictionary (``scalar_sae``).

    Make one with :meth:`create` or :meth:`load`.  Use it as a context manager
    or call :meth:`close` to free it now; otherwise it is freed when collected.
    """

    def __init__(self, ptr, ctx):
        self._owner = _SaeHandle(ptr)
        self._ctx = ctx
        c = SaeConfig()
        lib.scalar_sae_config_init(ctypes.byref(c), ctypes.sizeof(c))
        lib.scalar_sae_get_config(self._handle, ctypes.byref(c))
        self._config = _config_dict(c)
        d_in, d_sae = c.d_in, c.d_sae
        self._params = {"W_enc": (d_in, d_sae), "b_enc": (d_sae,), "W_dec": (d_sae, d_in),
                        "b_dec": (d_in,)}
        if c.architecture == SAE_JUMPRELU:
            self._params["threshold"] = (d_sae,)

    # ---- lifecycle
    @classmethod
    def create(cls, d_in=64, d_sae=512, k=10, architecture="topk", hook_name=None,
               apply_b_dec_to_input=True, seed=0, ctx=None):
        """A freshly initialised SAE (SPEC.md: ``W_dec`` Kaiming-uniform,
        ``W_enc = W_dec.T``, zero biases and thresholds).

        ``architecture``: "topk", "standard", "jumprelu" or an SAE_* value;
        ``k`` matters for TopK only.  Parameters come from the context's seed
        and ``seed``.  The defaults are SPEC.md's toy TopK SAE.
        """
        ctx = resolve_context(ctx)
        c = SaeConfig()
        lib.scalar_sae_config_init(ctypes.byref(c), ctypes.sizeof(c))
        c.architecture = _architecture(architecture, "SAE.create")
        c.d_in, c.d_sae, c.k = int(d_in), int(d_sae), int(k)
        c.apply_b_dec_to_input = 1 if apply_b_dec_to_input else 0
        if hook_name is not None:
            c.hook_name = str(hook_name).encode("utf-8")  # the library copies it
        c.seed = int(seed) & (2 ** 64 - 1)
        return cls(new_handle(lib.scalar_sae_create, ctx._handle, ctypes.byref(c)), ctx)

    @classmethod
    def load(cls, path, ctx=None):
        """Load SAELens files: a folder with ``cfg.json`` and
        ``sae_weights.safetensors`` (F32, F16 or BF16 tensors)."""
        ctx = resolve_context(ctx)
        return cls(new_handle(lib.scalar_sae_load, ctx._handle, _path(path)), ctx)

    def save(self, dir):
        """Write ``sae_weights.safetensors`` (F32) and ``cfg.json`` into folder
        ``dir`` (created if missing), SAELens' layout."""
        lib.scalar_sae_save(self._handle, _path(dir))

    @property
    def _handle(self):
        return self._owner._handle

    @property
    def closed(self):
        return self._owner.closed

    def close(self):
        """Free the C SAE now; later calls do nothing."""
        self._owner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<scalar.SAE closed>"
        c = self._config
        k = f" k={c['k']}" if c["architecture"] == "topk" else ""
        hook = f" hook={c['hook_name']!r}" if c["hook_name"] else ""
        return f"<scalar.SAE {c['architecture']} {c['d_in']}x{c['d_sae']}{k}{hook}>"

    # ---- shape and parameters
    @property
    def config(self):
        """The shape as a dict: ``architecture`` (its name), ``d_in``,
        ``d_sae``, ``k`` (0 unless TopK), ``apply_b_dec_to_input`` (bool) and
        ``hook_name`` (str or None)."""
        return dict(self._config)

    @property
    def ctx(self):
        return self._ctx

    # ---- parameters (ParamTable): W_enc, b_enc, W_dec, b_dec, threshold
    # (JumpReLU only), in SAELens' shapes; set_param takes no lock: no other
    # thread may use the SAE meanwhile
    _PARAM_READ = "scalar_sae_param_read"
    _PARAM_WRITE = "scalar_sae_param_write"

    # ---- codes
    def _tokens(self, x, width, what, fn, dims):
        """``x`` as a C-contiguous float32 ``[n, width]`` and its leading dims."""
        arr = _f32(x)
        if arr.ndim == 0 or arr.shape[-1] != width:
            raise _error(_lib.E_SHAPE, f"{fn}: {what} has shape {list(arr.shape)}, expected "
                                       f"[..., {dims}] ({dims} = {width})")
        return arr.reshape(-1, width), arr.shape[:-1]

    def encode(self, x):
        """Sparse codes of a TopK SAE: ``(values float32 [..., k], indices
        int32 [..., k])`` for activations ``x [..., d_in]``, larger values
        first (equal values: lower index first).  A kept value is 0 when fewer
        than k pre-activations are positive."""
        x, lead = self._tokens(x, self._config["d_in"], "x", "encode", "d_in")
        k = self._config["k"]
        values = np.empty((x.shape[0], k), dtype=np.float32)
        indices = np.empty((x.shape[0], k), dtype=np.int32)
        lib.scalar_sae_encode(self._handle, _ptr(x), x.shape[0], _ptr(values), _ptr(indices))
        return values.reshape(lead + (k,)), indices.reshape(lead + (k,))

    def encode_dense(self, x):
        """Dense codes ``[..., d_sae]`` of activations ``x [..., d_in]``, any
        architecture (zeros where a latent is off)."""
        x, lead = self._tokens(x, self._config["d_in"], "x", "encode_dense", "d_in")
        d_sae = self._config["d_sae"]
        codes = np.empty((x.shape[0], d_sae), dtype=np.float32)
        lib.scalar_sae_encode_dense(self._handle, _ptr(x), x.shape[0], _ptr(codes))
        return codes.reshape(lead + (d_sae,))

    def decode(self, values, indices):
        """Reconstruction ``[..., d_in]`` from sparse codes: ``b_dec + sum_j
        values[..., j] * W_dec[indices[..., j]]``.  ``values`` and ``indices``
        are ``[..., k]`` of one shape (any k); a negative index is skipped, one
        >= d_sae is an error (the library's message counts tokens in the
        flattened leading dimensions)."""
        fn = "decode"
        v = _f32(values)
        idx = _int32(indices, "indices", fn)
        if v.ndim == 0 or v.shape != idx.shape:
            raise _error(_lib.E_SHAPE, f"{fn}: values have shape {list(v.shape)}, indices "
                                       f"{list(idx.shape)}; expected one [..., k] shape")
        lead, k = v.shape[:-1], v.shape[-1]
        n = int(np.prod(lead, dtype=np.int64))
        v, idx = v.reshape(n, k), idx.reshape(n, k)
        d_in = self._config["d_in"]
        out = np.empty((v.shape[0], d_in), dtype=np.float32)
        lib.scalar_sae_decode(self._handle, _ptr(v), _ptr(idx), v.shape[0], k, _ptr(out))
        return out.reshape(lead + (d_in,))

    def decode_dense(self, codes):
        """Reconstruction ``[..., d_in]`` from dense codes ``[..., d_sae]``:
        ``codes @ W_dec + b_dec``."""
        codes, lead = self._tokens(codes, self._config["d_sae"], "codes", "decode_dense",
                                   "d_sae")
        d_in = self._config["d_in"]
        out = np.empty((codes.shape[0], d_in), dtype=np.float32)
        lib.scalar_sae_decode_dense(self._handle, _ptr(codes), codes.shape[0], _ptr(out))
        return out.reshape(lead + (d_in,))
