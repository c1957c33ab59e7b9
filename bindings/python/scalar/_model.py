"""The GPT-2 model (scalar/model.h): parameters, hooked forward, gradients,
sampling and the AdamW trainer, on numpy arrays.

    m = scalar.Model.load("gpt2-dir")                 # Hugging Face GPT-2 files
    logits, loss, acts = m.forward(ids, targets, hooks=["blocks.3.hook_resid_post"])
    loss, grads, act_grads = m.loss_and_grads(ids, targets, hooks=["blocks.0.hook_mlp_out"])

Token ids are ``[B, T]`` integer arrays (a 1-D array is one sequence, B = 1);
activations at hook points are ``[B, T, n_embd]`` float32; logits
``[B, T, vocab_size]``.  Hook names are TransformerLens's
(``blocks.{i}.hook_{resid_pre,resid_mid,mlp_in,mlp_out,resid_post}``), parsed by
the library, which also accepts ``3.mlp_out`` and ``resid_pre.3``.

Lifetimes: the C model is owned by a small handle object that every workspace
and trainer keeps alive, and the C side reference-counts too, so objects may be
closed or collected in any order.  A model keeps a few workspaces (one per
batch shape, the most recent :data:`WORKSPACE_CACHE` of them) so repeated calls
allocate nothing; calls on one model are serialised by a lock.
"""

import collections
import contextlib
import ctypes
import os
import threading

import numpy as np

from . import _lib
from ._core import Handle, new_handle, resolve_context
from ._lib import ModelConfig, ScalarError, TrainerOptions, lib

__all__ = ["Model", "ModelConfig", "Trainer", "TrainerOptions", "hook_name", "parse_hook",
           "model_config", "trainer_options"]

#: How many workspaces (distinct batch shapes) a model keeps.
WORKSPACE_CACHE = 4

_CONFIG_FIELDS = tuple(f for f, _ in ModelConfig._fields_ if f not in ("struct_size", "reserved0"))
_TRAINER_FIELDS = tuple(f for f, _ in TrainerOptions._fields_
                        if f not in ("struct_size", "reserved0"))


# ---------------------------------------------------------------- helpers

def _ptr(arr):
    return None if arr is None else arr.ctypes.data


def _error(status, message):
    """A ScalarError raised on the Python side, worded like the library's."""
    return ScalarError(status, _lib.status_string(status), message)


def _f32(x):
    return np.asarray(x, dtype=np.float32, order="C")


def _int32(x, what, fn):
    """A C-contiguous int32 copy (or view) of integer array ``x``, range checked."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {what} must be integers, not {arr.dtype}")
    if arr.dtype != np.int32 and arr.size:
        info = np.iinfo(np.int32)
        if arr.min() < info.min or arr.max() > info.max:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: {what} holds values outside int32")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _ids(x, what, fn):
    """int32 [B, T]; a 1-D input is one sequence, [1, T]."""
    arr = _int32(x, what, fn)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise _error(_lib.E_SHAPE, f"{fn}: {what} has shape {list(np.shape(x))}, expected a "
                                   "non-empty [B, T] (or [T])")
    return arr


class ParamTable:
    """Named float parameters of a C handle: ``param_names``, ``param_shape``,
    ``param``, ``params``, ``set_param``.  A subclass sets ``self._params``
    ({name: shape}), the class attributes ``_PARAM_READ`` / ``_PARAM_WRITE``
    (names of the C functions) and may override ``_canonical`` (name aliases)
    and ``_write_lock`` (a context manager held while writing)."""

    _PARAM_READ = _PARAM_WRITE = None

    def _canonical(self, name):
        return name

    def _write_lock(self):
        return contextlib.nullcontext()

    def param_names(self):
        """Parameter names in file order."""
        return list(self._params)

    def param_shape(self, name):
        return self._params[self._canonical(name)]

    def _shape_or_raise(self, name, fn):
        shape = self._params.get(self._canonical(name))
        if shape is None:
            dummy = np.zeros(1, dtype=np.float32)
            fn(self._handle, name.encode("utf-8"), _ptr(dummy), 1)  # raises the library's error
            raise KeyError(name)
        return shape

    def param(self, name):
        """A float32 copy of parameter ``name``."""
        read = getattr(lib, self._PARAM_READ)
        shape = self._shape_or_raise(name, read)
        out = np.empty(shape, dtype=np.float32)
        read(self._handle, name.encode("utf-8"), _ptr(out), out.size)
        return out

    def params(self):
        """``{name: array}`` of every parameter."""
        return {name: self.param(name) for name in self._params}

    def set_param(self, name, value):
        """Overwrite parameter ``name`` with ``value`` (exactly its shape, finite)."""
        write = getattr(lib, self._PARAM_WRITE)
        shape = self._shape_or_raise(name, write)
        arr = _f32(value)
        if arr.shape != shape:
            raise _error(_lib.E_SHAPE, f"set_param: \"{name}\" has shape {list(shape)}, the "
                                       f"value {list(arr.shape)}")
        with self._write_lock():
            write(self._handle, name.encode("utf-8"), _ptr(arr), arr.size)


def _path(path):
    return os.fsencode(path)


def hook_name(layer, kind):
    """The TransformerLens name of a hook point: ``hook_name(3, "mlp_out")`` is
    ``"blocks.3.hook_mlp_out"`` (``kind`` a name from HOOK_KINDS or its number)."""
    if isinstance(kind, str):
        kind = _lib.HOOK_KINDS.index(kind)
    buf = ctypes.create_string_buffer(32)
    lib.scalar_model_hook_name(buf, len(buf), int(layer), int(kind))
    return buf.value.decode()


def parse_hook(name):
    """``(layer, kind)`` of a hook name, kind an int (an index into HOOK_KINDS)."""
    layer, kind = ctypes.c_int32(), ctypes.c_int32()
    lib.scalar_model_hook_parse(str(name).encode("utf-8"), ctypes.byref(layer),
                                ctypes.byref(kind))
    return layer.value, kind.value


def model_config(config=None):
    """A filled :class:`ModelConfig`: None (the toy model), a preset name
    (``"toy"``, ``"gpt2"``), a dict of fields (over the toy model, or over
    ``config["preset"]``), or a ModelConfig (returned as is)."""
    if isinstance(config, ModelConfig):
        return config
    c = ModelConfig()
    lib.scalar_model_config_init(ctypes.byref(c), ctypes.sizeof(c))
    if config is None:
        return c
    if isinstance(config, str):
        lib.scalar_model_config_preset(ctypes.byref(c), config.encode("utf-8"))
        return c
    fields = dict(config)
    preset = fields.pop("preset", None)
    if preset is not None:
        lib.scalar_model_config_preset(ctypes.byref(c), str(preset).encode("utf-8"))
    for key, value in fields.items():
        if key not in _CONFIG_FIELDS:
            raise KeyError(f"model config: unknown field {key!r} (known: "
                           f"{', '.join(_CONFIG_FIELDS)}, preset)")
        setattr(c, key, value)
    return c


def _config_dict(c):
    return {f: getattr(c, f) for f in _CONFIG_FIELDS}


def trainer_options(**options):
    """A filled :class:`TrainerOptions`: the defaults, then ``options``."""
    o = TrainerOptions()
    lib.scalar_model_trainer_options_init(ctypes.byref(o), ctypes.sizeof(o))
    for key, value in options.items():
        if key not in _TRAINER_FIELDS:
            raise TypeError(f"Trainer: unknown option {key!r} (known: "
                            f"{', '.join(_TRAINER_FIELDS)})")
        setattr(o, key, value)
    return o


# ---------------------------------------------------------------- handles

class _ModelHandle(Handle):
    """Owns the C model; workspaces and trainers hold a reference to it."""

    def __init__(self, ptr):
        super().__init__(ptr, lib.scalar_model_free)


class _Workspace(Handle):
    """One scalar_model_workspace for batches of exactly B x T tokens."""

    def __init__(self, owner, B, T, grad):
        self._owner = owner  # keeps the model's Python owner (and so its pointer) alive
        flags = _lib.WORKSPACE_GRAD if grad else 0
        super().__init__(new_handle(lib.scalar_model_workspace_create, owner._handle, B, T,
                                    flags), lib.scalar_model_workspace_free)
        self.B, self.T, self.grad = B, T, grad
        self.borrowed = []  # arrays whose memory the C workspace points at


# ---------------------------------------------------------------- model

class Model(ParamTable):
    """A GPT-2-style transformer (``scalar_model``).

    Make one with :meth:`create` or :meth:`load`.  Use it as a context manager
    or call :meth:`close` to free it now; otherwise it is freed when collected.
    """

    def __init__(self, ptr, ctx):
        self._owner = _ModelHandle(ptr)
        self._ctx = ctx
        self._lock = threading.RLock()
        self._workspaces = collections.OrderedDict()  # (B, T, grad) -> _Workspace
        self._hooks = {}  # name -> (layer, kind)
        h = self._owner._handle
        self._params = {}  # name -> shape
        name, shape, ndim = ctypes.c_char_p(), (ctypes.c_int64 * 2)(), ctypes.c_int32()
        for i in range(lib.scalar_model_param_count(h)):
            lib.scalar_model_param_info(h, i, ctypes.byref(name), shape, ctypes.byref(ndim))
            self._params[name.value.decode()] = tuple(shape[:ndim.value])
        c = ModelConfig()
        lib.scalar_model_config_init(ctypes.byref(c), ctypes.sizeof(c))
        lib.scalar_model_get_config(h, ctypes.byref(c))
        self._config = _config_dict(c)

    # ---- lifecycle
    @classmethod
    def create(cls, ctx=None, config=None):
        """A freshly initialised model (SPEC init from the context's seed).

        ``config``: None (the toy model), a preset name, a dict of
        :class:`ModelConfig` fields, or a ModelConfig; see :func:`model_config`.
        """
        ctx = resolve_context(ctx)
        c = model_config(config)
        return cls(new_handle(lib.scalar_model_create, ctx._handle, ctypes.byref(c)), ctx)

    @classmethod
    def load(cls, path, ctx=None):
        """Load Hugging Face GPT-2 files: a folder with ``config.json`` and
        ``model.safetensors``, or a ``.safetensors`` file beside a config.json."""
        ctx = resolve_context(ctx)
        return cls(new_handle(lib.scalar_model_load, ctx._handle, _path(path)), ctx)

    def save(self, dir):
        """Write ``config.json`` and ``model.safetensors`` into folder ``dir``."""
        lib.scalar_model_save(self._handle, _path(dir))

    @property
    def _handle(self):
        return self._owner._handle

    @property
    def closed(self):
        return self._owner.closed

    def close(self):
        """Free the workspaces and the model now (trainers keep their own reference)."""
        with self._lock:
            for ws in self._workspaces.values():
                ws.close()
            self._workspaces.clear()
        self._owner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<scalar.Model closed>"
        c = self._config
        return (f"<scalar.Model {c['n_layer']}x{c['n_embd']} heads={c['n_head']} "
                f"vocab={c['vocab_size']} block={c['block_size']} params={self.n_params}>")

    # ---- shape and parameters
    @property
    def config(self):
        """The shape as a dict of ModelConfig fields (d_mlp resolved)."""
        return dict(self._config)

    @property
    def ctx(self):
        return self._ctx

    @property
    def n_params(self):
        """Total number of parameters."""
        return lib.scalar_model_n_params(self._handle)

    # ---- parameters (ParamTable): Hugging Face names, `transformer.` accepted
    _PARAM_READ = "scalar_model_param_read"
    _PARAM_WRITE = "scalar_model_param_write"

    @staticmethod
    def _canonical(name):
        return name[len("transformer."):] if name.startswith("transformer.") else name


    def _write_lock(self):
        return self._lock

    # ---- hooks
    def hook_names(self):
        """Every hook point's name, layer by layer in forward order."""
        order = (_lib.HOOK_RESID_PRE, _lib.HOOK_RESID_MID, _lib.HOOK_MLP_IN, _lib.HOOK_MLP_OUT,
                 _lib.HOOK_RESID_POST)
        return [hook_name(i, k) for i in range(self._config["n_layer"]) for k in order]

    def _hook(self, name):
        point = self._hooks.get(name)
        if point is None:
            point = parse_hook(name)
            if not 0 <= point[0] < self._config["n_layer"]:
                raise _error(_lib.E_INVALID_ARG, f"hook \"{name}\": layer {point[0]} out of "
                                                 f"range (the model has "
                                                 f"{self._config['n_layer']} layers)")
            self._hooks[name] = point
        return point

    # ---- workspaces
    def _workspace(self, B, T, grad):
        """The cached workspace for B x T (caller holds the lock)."""
        key = (B, T, grad)
        ws = self._workspaces.get(key)
        if ws is not None:
            self._workspaces.move_to_end(key)
            return ws
        ws = _Workspace(self._owner, B, T, grad)
        self._workspaces[key] = ws
        while len(self._workspaces) > WORKSPACE_CACHE:
            self._workspaces.popitem(last=False)[1].close()
        return ws

    def _act_array(self, value, B, T, what, fn):
        arr = _f32(value)
        C = self._config["n_embd"]
        if arr.ndim == 2 and B == 1:
            arr = arr[None]
        if arr.shape != (B, T, C):
            raise _error(_lib.E_SHAPE, f"{fn}: {what} has shape {list(np.shape(value))}, "
                                       f"expected [{B}, {T}, {C}]")
        return np.ascontiguousarray(arr)

    def _targets(self, targets, ids, fn):
        if targets is None:
            return None
        t = _ids(targets, "targets", fn)
        if t.shape != ids.shape:
            raise _error(_lib.E_SHAPE, f"{fn}: targets have shape {list(np.shape(targets))}, "
                                       f"ids {list(ids.shape)}")
        return t

    def _prepare(self, ws, replace, fn):
        """Install replacements; the workspace borrows the arrays until _release."""
        for name, value in (replace or {}).items():
            layer, kind = self._hook(name)
            arr = self._act_array(value, ws.B, ws.T, f"replacement for \"{name}\"", fn)
            ws.borrowed.append(arr)
            lib.scalar_model_workspace_set_replacement(ws._handle, layer, kind, _ptr(arr))

    @staticmethod
    def _release(ws):
        """Remove hooks, replacements and captures; drop the borrowed arrays."""
        lib.scalar_model_workspace_clear_hooks(ws._handle)
        ws.borrowed.clear()

    def _read_hooks(self, ws, hooks):
        acts = {}
        C = self._config["n_embd"]
        for name in hooks:
            layer, kind = self._hook(name)
            out = np.empty((ws.B, ws.T, C), dtype=np.float32)
            lib.scalar_model_workspace_read(ws._handle, layer, kind, _ptr(out), out.size)
            acts[name] = out
        return acts

    def _logits(self, B, T):
        return np.empty((B, T, self._config["vocab_size"]), dtype=np.float32)

    # ---- forward
    def forward(self, ids, targets=None, hooks=(), replace=None):
        """Run on token ids ``[B, T]``.

        ``targets``: ``[B, T]`` next-token ids (negative ones ignored) for the
        mean cross-entropy loss.  ``hooks``: names of hook points to return.
        ``replace``: ``{hook name: [B, T, n_embd] array}`` used in place of
        those activations.  Returns ``(logits [B, T, V], loss or None,
        {hook name: activation [B, T, n_embd]})``; a replaced point reads back
        as the replacement.
        """
        fn = "forward"
        ids = _ids(ids, "ids", fn)
        targets = self._targets(targets, ids, fn)
        hooks = list(hooks)
        for name in hooks:
            self._hook(name)
        B, T = ids.shape
        logits = self._logits(B, T)
        loss = ctypes.c_float()
        with self._lock:
            ws = self._workspace(B, T, False)
            try:
                self._prepare(ws, replace, fn)
                lib.scalar_model_forward(self._handle, ws._handle, _ptr(ids), _ptr(targets), B, T,
                                         _ptr(logits),
                                         ctypes.byref(loss) if targets is not None else None)
                acts = self._read_hooks(ws, hooks)
            finally:
                self._release(ws)
        return logits, (loss.value if targets is not None else None), acts

    def forward_from(self, hook, act, targets=None, hooks=(), replace=None):
        """Run from hook point ``hook`` onward, starting from ``act``
        ``[B, T, n_embd]``; points upstream of it are not computed.

        Returns ``(logits, loss or None, {hook name: activation})`` as
        :meth:`forward`.  Starting at ``mlp_in`` needs a :meth:`forward` of the
        same batch shape before it; ``mlp_out`` is refused (start from
        ``resid_post`` instead).
        """
        fn = "forward_from"
        layer, kind = self._hook(hook)
        arr = _f32(act)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise _error(_lib.E_SHAPE, f"{fn}: act has shape {list(np.shape(act))}, expected "
                                       "[B, T, n_embd]")
        B, T = arr.shape[:2]
        arr = self._act_array(arr, B, T, "act", fn)
        if targets is not None:
            targets = _ids(targets, "targets", fn)
            if targets.shape != (B, T):
                raise _error(_lib.E_SHAPE, f"{fn}: targets have shape {list(targets.shape)}, "
                                           f"act [{B}, {T}, ...]")
        hooks = list(hooks)
        for name in hooks:
            self._hook(name)
        logits = self._logits(B, T)
        loss = ctypes.c_float()
        with self._lock:
            ws = self._workspace(B, T, False)
            try:
                self._prepare(ws, replace, fn)
                lib.scalar_model_forward_from(self._handle, ws._handle, layer, kind, _ptr(arr),
                                              _ptr(targets), B, T, _ptr(logits),
                                              ctypes.byref(loss) if targets is not None else None)
                acts = self._read_hooks(ws, hooks)
            finally:
                self._release(ws)
        return logits, (loss.value if targets is not None else None), acts

    # ---- gradients
    def loss_and_grads(self, ids, targets, hooks=(), params=None, replace=None):
        """Mean cross-entropy and its gradients.

        Returns ``(loss, {param name: gradient}, {hook name: d loss / d
        activation [B, T, n_embd]})``; ``params`` limits the parameter
        gradients returned (None: all of them; ``wte.weight`` includes the
        tied head's share).  A replaced point is a constant: the gradient
        stops there.
        """
        fn = "loss_and_grads"
        ids = _ids(ids, "ids", fn)
        if targets is None:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: needs targets")
        targets = self._targets(targets, ids, fn)
        names = self.param_names() if params is None else list(params)
        shapes = [self._shape_or_raise(n, lib.scalar_model_param_read) for n in names]
        hooks = list(hooks)
        points = [self._hook(name) for name in hooks]
        B, T = ids.shape
        C = self._config["n_embd"]
        hook_grads = {name: np.empty((B, T, C), dtype=np.float32) for name in hooks}
        loss = ctypes.c_float()
        with self._lock:
            ws = self._workspace(B, T, True)
            try:
                self._prepare(ws, replace, fn)
                for name, (layer, kind) in zip(hooks, points):
                    lib.scalar_model_workspace_set_grad_capture(ws._handle, layer, kind,
                                                                _ptr(hook_grads[name]))
                lib.scalar_model_workspace_zero_grad(ws._handle)
                lib.scalar_model_forward(self._handle, ws._handle, _ptr(ids), _ptr(targets), B, T,
                                         None, ctypes.byref(loss))
                lib.scalar_model_backward(self._handle, ws._handle)
                grads = {}
                for name, shape in zip(names, shapes):
                    g = np.empty(shape, dtype=np.float32)
                    lib.scalar_model_workspace_read_grad(ws._handle, name.encode("utf-8"),
                                                         _ptr(g), g.size)
                    grads[name] = g
            finally:
                self._release(ws)
        return loss.value, grads, hook_grads

    # ---- sampling
    def generate(self, prompt_ids, n_new, temperature=1.0, seed=0):
        """Sample ``n_new`` tokens after ``prompt_ids`` (1-D); returns them as
        int32.  The same seed gives the same tokens; temperature 0 is greedy.
        Each step sees the last block_size tokens."""
        prompt = _ids(prompt_ids, "prompt_ids", "generate")
        if prompt.shape[0] != 1:
            raise _error(_lib.E_SHAPE, f"generate: prompt_ids has shape "
                                       f"{list(np.shape(prompt_ids))}, expected one sequence")
        prompt = prompt[0]
        n_new = int(n_new)
        out = np.empty(max(n_new, 0), dtype=np.int32)
        # A window of prompt + n_new tokens (at most block_size) computes the
        # same as a full-context one and keeps the workspace small.
        T = max(1, min(self._config["block_size"], prompt.size + max(n_new, 0)))
        with self._lock:
            ws = self._workspace(1, T, False)
            lib.scalar_model_workspace_clear_hooks(ws._handle)
            lib.scalar_model_generate(self._handle, ws._handle, _ptr(prompt), prompt.size, n_new,
                                      float(temperature), int(seed) & (2 ** 64 - 1),
                                      _ptr(out) if out.size else None)
        return out


# ---------------------------------------------------------------- trainer

class Trainer(Handle):
    """AdamW on a model (``scalar_model_trainer``): ``Trainer(model, batch=2,
    seq=32, lr=1e-3, ...)`` with any :class:`TrainerOptions` field as a
    keyword (the defaults are SPEC.md's toy recipe).

    It changes the model's parameters on every :meth:`step`; while it exists,
    run the model from this thread only.
    """

    def __init__(self, model, **options):
        self._model = model
        self._options = trainer_options(**options)
        super().__init__(new_handle(lib.scalar_model_trainer_create, model._handle,
                                    ctypes.byref(self._options)), lib.scalar_model_trainer_free)

    @property
    def model(self):
        return self._model

    @property
    def options(self):
        """The options as a dict."""
        return {f: getattr(self._options, f) for f in _TRAINER_FIELDS}

    def _batch(self, x, what):
        o = self._options
        arr = _int32(x, what, "Trainer.step")
        full = (o.grad_accum, o.batch, o.seq)
        if arr.shape == full or (o.grad_accum == 1 and arr.shape == full[1:]):
            return arr
        raise _error(_lib.E_SHAPE, f"Trainer.step: {what} has shape {list(arr.shape)}, expected "
                                   f"{list(full)} (grad_accum, batch, seq)")

    def step(self, x, y):
        """One optimizer step on inputs ``x`` and targets ``y``, each
        ``[grad_accum, batch, seq]`` (or ``[batch, seq]`` when grad_accum is 1).
        Returns ``(loss, grad_norm)``: the mean loss and the pre-clip norm."""
        x, y = self._batch(x, "x"), self._batch(y, "y")
        loss, norm = ctypes.c_float(), ctypes.c_float()
        with self._model._lock:
            lib.scalar_model_trainer_step(self._handle, _ptr(x), _ptr(y), ctypes.byref(loss),
                                          ctypes.byref(norm))
        return loss.value, norm.value

    def lr(self, step):
        """The learning rate of step ``step`` (0-based)."""
        return lib.scalar_model_trainer_lr(self._handle, int(step))

    @property
    def steps(self):
        """Optimizer steps taken so far."""
        return lib.scalar_model_trainer_steps(self._handle)

    def save(self, path):
        """Save the optimizer state (moments and step count) to a safetensors file."""
        lib.scalar_model_trainer_save(self._handle, _path(path))

    def load(self, path):
        """Restore the optimizer state written by :meth:`save`."""
        lib.scalar_model_trainer_load(self._handle, _path(path))

    def __repr__(self):
        state = "closed" if self.closed else f"steps={self.steps}"
        return f"<scalar.Trainer {state}>"
