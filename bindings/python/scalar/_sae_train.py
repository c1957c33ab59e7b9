"""Staircase SAE groups and the SAE trainer (scalar/sae.h), on numpy arrays.

    group = scalar.SaeGroup.create(64, [128, 256, 512], k=10,
                                   hook_names=["blocks.0.hook_mlp_out"] * 3)
    sae = group.sae(1)                            # member 1 as a plain TopK SAE (a view)
    with scalar.SaeTrainer([group], model, max_tokens=4096, lr=1e-3) as tr:
        losses, grad_norm = tr.step(ids)          # activations streamed from the model
        losses, grad_norm = tr.step_acts([x0, x1, x2])   # or given: one array per SAE
    group.save("group-dir")

A group holds one shared ``W_enc [d_in, n_max]`` and ``W_dec [n_max, d_in]``;
member j uses the first ``n_j`` latents with its own ``b_enc.{j} [n_j]`` and
``b_dec.{j} [d_in]`` (the parameter names), and its own hook point.  Every
member is a TopK SAE with the group's ``k``.  The trainer numbers the members
across its groups in order (group 0's first); that order indexes activation
lists and losses.

Lifetimes: the C group holds a reference to its context, a member view
(:meth:`SaeGroup.sae`) one to its group, and the C trainer to its groups and
model, so objects may be closed or collected in any order.  The trainer also
keeps the Python groups and model alive.  A trainer changes its groups'
parameters on every step (member views see the change); while it exists, use
the groups from the trainer's thread only.
"""

import contextlib
import ctypes

import numpy as np

from . import _lib
from ._core import Handle, new_handle, resolve_context
from ._lib import (SAE_GROUP_DETACH, SAE_GROUP_MODES, SAE_GROUP_SHARE, SaeConfig,
                   SaeTrainerOptions, lib)
from ._model import Model, ParamTable, _error, _f32, _ids, _int32, _path, _ptr
from ._sae import SAE, _config_dict

__all__ = ["SaeGroup", "SaeTrainer", "SaeTrainerOptions", "sae_trainer_options",
           "SAE_GROUP_MODES", "SAE_GROUP_SHARE", "SAE_GROUP_DETACH"]

_OPTION_FIELDS = tuple(f for f, _ in SaeTrainerOptions._fields_ if f != "struct_size")


# ---------------------------------------------------------------- helpers

def _mode(mode, fn):
    """SAE_GROUP_* value of a name ("share", "detach") or of the value itself."""
    if isinstance(mode, str):
        try:
            return SAE_GROUP_MODES.index(mode.lower())
        except ValueError:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: unknown mode {mode!r} (known: "
                                             f"{', '.join(SAE_GROUP_MODES)})") from None
    return int(mode)  # the library checks the range, with its own message


def sae_trainer_options(**options):
    """A filled :class:`SaeTrainerOptions`: the defaults (SPEC.md's toy
    recipe), then ``options`` (any field but struct_size)."""
    o = SaeTrainerOptions()
    lib.scalar_sae_trainer_options_init(ctypes.byref(o), ctypes.sizeof(o))
    for key, value in options.items():
        if key not in _OPTION_FIELDS:
            raise TypeError(f"SaeTrainer: unknown option {key!r} (known: "
                            f"{', '.join(_OPTION_FIELDS)})")
        setattr(o, key, int(value) if key == "renorm_decoder" else value)
    return o


class _GroupHandle(Handle):
    """Owns the caller's reference to the C group (member views hold their own)."""

    def __init__(self, ptr):
        super().__init__(ptr, lib.scalar_sae_group_free)


# ---------------------------------------------------------------- group

class SaeGroup(ParamTable):
    """A Staircase group of TopK SAEs sharing one dictionary (``scalar_sae_group``).

    Make one with :meth:`create` or :meth:`load`.  Use it as a context manager
    or call :meth:`close` to free it now; otherwise it is freed when collected.
    Member views from :meth:`sae` keep working after the group is closed.
    """

    def __init__(self, ptr, ctx):
        self._owner = _GroupHandle(ptr)
        self._ctx = ctx
        h = self._owner._handle
        n = lib.scalar_sae_group_n_members(h)
        self._mode = lib.scalar_sae_group_mode(h)
        # no getter for sizes and hooks: read them from each member's config
        members = []
        for j in range(n):
            sae = new_handle(lib.scalar_sae_group_get_sae, h, j)
            try:
                c = SaeConfig()
                lib.scalar_sae_config_init(ctypes.byref(c), ctypes.sizeof(c))
                lib.scalar_sae_get_config(sae, ctypes.byref(c))
                members.append(_config_dict(c))
            finally:
                lib.scalar_sae_free(sae)
        first = members[0]
        self._d_in, self._k = first["d_in"], first["k"]
        self._apply = first["apply_b_dec_to_input"]
        self._sizes = tuple(m["d_sae"] for m in members)
        self._hooks = tuple(m["hook_name"] for m in members)
        d_in, n_max = self._d_in, self._sizes[-1]
        self._params = {"W_enc": (d_in, n_max), "W_dec": (n_max, d_in)}  # file order
        for j, n_j in enumerate(self._sizes):
            self._params[f"b_enc.{j}"] = (n_j,)
            self._params[f"b_dec.{j}"] = (d_in,)

    # ---- lifecycle
    @classmethod
    def create(cls, d_in, sizes, k=10, hook_names=None, mode="share", apply_b_dec_to_input=True,
               seed=0, ctx=None):
        """A freshly initialised group: the matrices of one SAE of ``n_max =
        sizes[-1]`` latents as :meth:`SAE.create` makes them with the same
        seed (``W_dec`` Kaiming-uniform, ``W_enc = W_dec.T``), zero biases.

        ``sizes``: latents per member, strictly increasing, each >= ``k``
        (1 to 64 members).  ``hook_names``: None or one name (or None) per
        member.  ``mode``: "share" (SAE j's gradient reaches its whole prefix),
        "detach" (SAE j trains only its own latents ``[n_{j-1}, n_j)``) or an
        SAE_GROUP_* value.
        """
        fn = "SaeGroup.create"
        ctx = resolve_context(ctx)
        if np.ndim(sizes) != 1 or np.size(sizes) == 0:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: sizes must be a non-empty list of "
                                             f"latent counts, not shape {list(np.shape(sizes))}")
        sizes = _int32(sizes, "sizes", fn)
        n = sizes.size
        hooks = None
        if hook_names is not None:
            names = list(hook_names)
            if len(names) != n:
                raise _error(_lib.E_INVALID_ARG, f"{fn}: {len(names)} hook names for {n} "
                                                 "members")
            hooks = (ctypes.c_char_p * n)(*[None if h is None else str(h).encode("utf-8")
                                            for h in names])  # the library copies them
        c = SaeConfig()
        lib.scalar_sae_config_init(ctypes.byref(c), ctypes.sizeof(c))
        c.architecture = _lib.SAE_TOPK
        c.d_in, c.d_sae, c.k = int(d_in), int(sizes[-1]), int(k)
        c.apply_b_dec_to_input = 1 if apply_b_dec_to_input else 0
        c.seed = int(seed) & (2 ** 64 - 1)
        return cls(new_handle(lib.scalar_sae_group_create, ctx._handle, ctypes.byref(c), n,
                              _ptr(sizes), hooks, _mode(mode, fn)), ctx)

    @classmethod
    def load(cls, path, ctx=None):
        """Load a group folder written by :meth:`save` (``cfg.json`` with
        ``"format": "libscalar.sae_group"`` and ``sae_weights.safetensors``)."""
        ctx = resolve_context(ctx)
        return cls(new_handle(lib.scalar_sae_group_load, ctx._handle, _path(path)), ctx)

    def save(self, dir):
        """Write ``sae_weights.safetensors`` (the shared matrices once, the
        biases per member) and ``cfg.json`` into folder ``dir`` (created if
        missing).  Loading it back gives the same bits."""
        lib.scalar_sae_group_save(self._handle, _path(dir))

    @property
    def _handle(self):
        return self._owner._handle

    @property
    def closed(self):
        return self._owner.closed

    def close(self):
        """Release the group now (member views and trainers keep their own
        reference); later calls do nothing."""
        self._owner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        if self.closed:
            return "<scalar.SaeGroup closed>"
        sizes = ", ".join(str(s) for s in self._sizes)
        return f"<scalar.SaeGroup {self.mode} {self._d_in}x[{sizes}] k={self._k}>"

    # ---- shape
    @property
    def n_members(self):
        """Number of member SAEs."""
        return len(self._sizes)

    @property
    def mode(self):
        """The training mode's name: "share" or "detach"."""
        return SAE_GROUP_MODES[self._mode]

    @property
    def sizes(self):
        """Latents of each member (a tuple, strictly increasing)."""
        return self._sizes

    @property
    def hook_names(self):
        """Each member's hook point (a tuple; None where it has none)."""
        return self._hooks

    @property
    def d_in(self):
        """Activation width of every member."""
        return self._d_in

    @property
    def k(self):
        """Latents kept per token by every member."""
        return self._k

    @property
    def config(self):
        """The shape as a dict: ``d_in``, ``k``, ``sizes`` (list), ``hook_names``
        (list), ``mode`` (its name) and ``apply_b_dec_to_input`` (bool)."""
        return {"d_in": self._d_in, "k": self._k, "sizes": list(self._sizes),
                "hook_names": list(self._hooks), "mode": self.mode,
                "apply_b_dec_to_input": self._apply}

    @property
    def ctx(self):
        return self._ctx

    def sae(self, j):
        """Member ``j`` as an :class:`SAE` (TopK, ``d_sae = sizes[j]``) that
        views the group's memory: encode and decode use the group's current
        parameters, and its ``set_param`` writes into the shared matrices.  It
        holds a reference on the C group, so it outlives :meth:`close`."""
        return SAE(new_handle(lib.scalar_sae_group_get_sae, self._handle, int(j)), self._ctx)

    # ---- parameters (ParamTable): W_enc [d_in, n_max], W_dec [n_max, d_in],
    # b_enc.{j} [n_j], b_dec.{j} [d_in]; set_param takes no lock: no other
    # thread may use the group meanwhile
    _PARAM_READ = "scalar_sae_group_param_read"
    _PARAM_WRITE = "scalar_sae_group_param_write"


# ---------------------------------------------------------------- trainer

class SaeTrainer(Handle):
    """Adam on a set of Staircase groups (``scalar_sae_trainer``):
    ``SaeTrainer(groups, model=None, max_tokens=4096, lr=1e-3, ...)`` with any
    :class:`SaeTrainerOptions` field as a keyword (warmup_steps, max_steps,
    lr, min_lr, beta1, beta2, eps, weight_decay, grad_clip, renorm_decoder;
    the defaults are SPEC.md's toy recipe).

    ``groups``: a :class:`SaeGroup` or a sequence of them, each at most once,
    on one context.  The loss per SAE is the squared error summed over d_in,
    mean over tokens; a step back-propagates their sum, clips the global
    gradient norm once and updates every group.  With a :class:`Model` (on the
    groups' context, every member's hook one of its points and d_in its
    n_embd), :meth:`step` and :meth:`evaluate` stream activations from a
    frozen forward; without one only the ``_acts`` calls work.
    ``max_tokens`` is the most tokens of one call (it sizes the workspaces).
    """

    def __init__(self, groups, model=None, max_tokens=4096, **options):
        if isinstance(groups, SaeGroup):
            groups = [groups]
        self._groups = tuple(groups)
        for g in self._groups:
            if not isinstance(g, SaeGroup):
                raise TypeError(f"SaeTrainer: groups must be SaeGroup objects, not "
                                f"{type(g).__name__}")
        if model is not None and not isinstance(model, Model):
            raise TypeError(f"SaeTrainer: model must be a scalar.Model, not "
                            f"{type(model).__name__}")
        self._model = model
        self._options = sae_trainer_options(**options)
        ptrs = (ctypes.c_void_p * len(self._groups))(*[g._handle for g in self._groups])
        super().__init__(new_handle(lib.scalar_sae_trainer_create,
                                    model._handle if model is not None else None, ptrs,
                                    len(self._groups), int(max_tokens),
                                    ctypes.byref(self._options)), lib.scalar_sae_trainer_free)
        self._max_tokens = int(max_tokens)
        self._widths = tuple(g.d_in for g in self._groups for _ in range(g.n_members))

    @property
    def groups(self):
        """The groups, in member order (a tuple)."""
        return self._groups

    @property
    def model(self):
        """The model activations stream from, or None."""
        return self._model

    @property
    def max_tokens(self):
        """The most tokens of one call."""
        return self._max_tokens

    @property
    def options(self):
        """The options as a dict."""
        return {f: getattr(self._options, f) for f in _OPTION_FIELDS}

    @property
    def n_saes(self):
        """Member SAEs over all groups (the length of activation lists and losses)."""
        return lib.scalar_sae_trainer_n_saes(self._handle)

    @property
    def steps(self):
        """Optimizer steps taken so far (restored by :meth:`load`)."""
        return lib.scalar_sae_trainer_steps(self._handle)

    def lr(self, step):
        """The learning rate of step ``step`` (0-based): linear warmup, then a
        cosine to min_lr."""
        return lib.scalar_sae_trainer_lr(self._handle, int(step))

    # ---- activations
    def _acts(self, acts, fn):
        """``acts`` as float32 ``[n, d_in]`` arrays, one per SAE, the pointer
        array the library takes (the arrays must outlive the call) and n."""
        acts = list(acts)
        n_saes = len(self._widths)
        if len(acts) != n_saes:
            raise _error(_lib.E_INVALID_ARG, f"{fn}: {len(acts)} activation arrays for "
                                             f"{n_saes} SAEs")
        arrays, n = [], None
        for s, (x, width) in enumerate(zip(acts, self._widths)):
            arr = _f32(x)
            if arr.ndim == 0 or arr.shape[-1] != width:
                raise _error(_lib.E_SHAPE, f"{fn}: acts[{s}] has shape {list(arr.shape)}, "
                                           f"expected [..., d_in] (d_in = {width})")
            arr = arr.reshape(-1, width)
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise _error(_lib.E_SHAPE, f"{fn}: acts[{s}] has {arr.shape[0]} tokens, "
                                           f"acts[0] {n}")
            arrays.append(arr)
        ptrs = (ctypes.c_void_p * n_saes)(*[a.ctypes.data for a in arrays])
        return arrays, ptrs, n

    def _model_lock(self):
        return contextlib.nullcontext() if self._model is None else self._model._lock

    def compute(self, acts):
        """Per-SAE losses (float32 ``[n_saes]``) of activations ``acts`` and
        their gradients (read with :meth:`grad`); no update.

        ``acts``: one ``[..., d_in]`` array per SAE, in member order, all of
        one token count (leading dimensions are flattened into tokens, 1 to
        max_tokens); a list, or an array whose first axis is the SAE."""
        arrays, ptrs, n = self._acts(acts, "SaeTrainer.compute")
        losses = np.empty(len(arrays), dtype=np.float32)
        lib.scalar_sae_trainer_compute_acts(self._handle, ptrs, n, _ptr(losses))
        return losses

    def step_acts(self, acts):
        """One training step on activations ``acts`` (as :meth:`compute`).
        Returns ``(losses float32 [n_saes], grad_norm)``, the norm before
        clipping.  A non-finite loss or gradient raises and changes nothing."""
        arrays, ptrs, n = self._acts(acts, "SaeTrainer.step_acts")
        losses = np.empty(len(arrays), dtype=np.float32)
        norm = ctypes.c_float()
        lib.scalar_sae_trainer_step_acts(self._handle, ptrs, n, _ptr(losses), ctypes.byref(norm))
        return losses, norm.value

    def step(self, ids):
        """One training step on the model's activations for token ids ``[B,
        T]`` (a 1-D array is one sequence; B * T <= max_tokens).  Returns
        ``(losses float32 [n_saes], grad_norm)``."""
        ids = _ids(ids, "ids", "SaeTrainer.step")
        B, T = ids.shape
        losses = np.empty(len(self._widths), dtype=np.float32)
        norm = ctypes.c_float()
        with self._model_lock():
            lib.scalar_sae_trainer_step(self._handle, _ptr(ids), B, T, _ptr(losses),
                                        ctypes.byref(norm))
        return losses, norm.value

    def evaluate(self, ids):
        """Per-SAE losses (float32 ``[n_saes]``) of the model's activations for
        token ids ``[B, T]``; no gradient, no update."""
        ids = _ids(ids, "ids", "SaeTrainer.evaluate")
        B, T = ids.shape
        losses = np.empty(len(self._widths), dtype=np.float32)
        with self._model_lock():
            lib.scalar_sae_trainer_evaluate(self._handle, _ptr(ids), B, T, _ptr(losses))
        return losses

    def grad(self, group, name):
        """The gradient of the summed loss (before clipping) from the last
        :meth:`compute` or step, for parameter ``name`` of ``group`` (its index
        in :attr:`groups`, or the :class:`SaeGroup` itself), in the
        parameter's shape."""
        h = self._handle
        if isinstance(group, SaeGroup):
            matches = [i for i, g in enumerate(self._groups) if g is group]
            if not matches:
                raise _error(_lib.E_INVALID_ARG, "SaeTrainer.grad: the group is not one of "
                                                 "this trainer's")
            group = matches[0]
        group = int(group)
        shape = None
        if 0 <= group < len(self._groups):
            g = self._groups[group]
            shape = g._params.get(g._canonical(name))
        if shape is None:  # the library raises its own error
            dummy = np.zeros(1, dtype=np.float32)
            lib.scalar_sae_trainer_read_grad(h, group, name.encode("utf-8"), _ptr(dummy), 1)
            raise KeyError(name)
        out = np.empty(shape, dtype=np.float32)
        lib.scalar_sae_trainer_read_grad(h, group, name.encode("utf-8"), _ptr(out), out.size)
        return out

    # ---- Jacobian SAE pairs
    def add_jacobian(self, sae_in, sae_out, path, layer, lam, mode="sum"):
        """Make SAEs ``sae_in`` -> ``sae_out`` (member indices) a JSAE pair:
        every later compute or step adds ``lam * P``, ``P = sum |J| / k_in^2``
        over the pair's kept latents through ``path`` ("ff_layer": the MLP of
        ``layer``, hooks mlp_in -> mlp_out; "ff_block": x + mlp(ln_2(x)),
        hooks resid_mid -> resid_post), summed over tokens (``mode`` "sum", the
        reference's) or averaged ("mean").  Needs the trainer's model."""
        fn = "SaeTrainer.add_jacobian"
        names = {"path": (path, _lib.JSAE_PATHS), "mode": (mode, _lib.JSAE_MODES)}
        vals = {}
        for key, (v, known) in names.items():
            if isinstance(v, str):
                if v not in known:
                    raise _error(_lib.E_INVALID_ARG, f"{fn}: unknown {key} {v!r} (known: "
                                                     f"{', '.join(known)})")
                v = known.index(v)
            vals[key] = int(v)
        lib.scalar_sae_trainer_add_jacobian(self._handle, int(sae_in), int(sae_out), vals["path"],
                                            int(layer), float(lam), vals["mode"])

    @property
    def n_jacobians(self):
        """Number of JSAE pairs."""
        return lib.scalar_sae_trainer_n_jacobians(self._handle)

    def jacobian_penalties(self):
        """Each pair's ``lam * P`` from the last compute, step or evaluate
        (float32 ``[n_jacobians]``)."""
        out = np.empty(max(1, self.n_jacobians), dtype=np.float32)
        lib.scalar_sae_trainer_jacobian_penalties(self._handle, _ptr(out))
        return out[:self.n_jacobians]

    def dead_latents(self, reset=False):
        """Per SAE, latents that no training token activated (a kept code > 0)
        since the trainer was made or last reset: int64 ``[n_saes]``.  With
        ``reset``, a new window starts after reading."""
        out = np.empty(len(self._widths), dtype=np.int64)
        lib.scalar_sae_trainer_dead_latents(self._handle, _ptr(out), 1 if reset else 0)
        return out

    # ---- optimizer state
    def save(self, path):
        """Save the optimizer state (Adam moments of every group and the step
        count) to a safetensors file; the groups' weights are saved apart
        (:meth:`SaeGroup.save`)."""
        lib.scalar_sae_trainer_save(self._handle, _path(path))

    def load(self, path):
        """Restore the optimizer state written by :meth:`save` for groups of
        the same shapes; nothing changes on failure."""
        lib.scalar_sae_trainer_load(self._handle, _path(path))

    def __repr__(self):
        if self.closed:
            return "<scalar.SaeTrainer closed>"
        model = " model" if self._model is not None else ""
        return (f"<scalar.SaeTrainer groups={len(self._groups)} saes={self.n_saes}{model} "
                f"steps={self.steps}>")
