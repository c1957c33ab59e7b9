"""Evaluation (scalar/eval.h): SAE quality numbers on a model.

    each, all_ = scalar.sae_metrics(model, dataset, [sae0, sae1], seq=128)
    each[0]["fvu"], each[0]["ce_increase"], all_["kl"]
"""

import ctypes

import numpy as np

from . import _lib
from ._data import SPLITS, VAL, Dataset
from ._lib import SAE_METRICS, lib
from ._model import Model, _error, _ptr
from ._sae import SAE

__all__ = ["sae_metrics", "SAE_METRICS"]


def sae_metrics(model, dataset, saes, split=VAL, batch=32, seq=128, max_windows=0, each=True,
                all=True):
    """L0, FVU, MSE, dead latents, and the CE increase and KL to the clean
    model with each SAE's reconstruction spliced in at its hook point, and
    with all of them spliced at once (``scalar_sae_metrics``).

    ``saes``: SAE objects on distinct hook points of ``model`` (their
    ``hook_name``), width n_embd.  Data: non-overlapping windows of ``seq``
    tokens of ``split`` (default the validation split; a name or TRAIN / VAL / ALL), ``batch`` per
    forward, at most ``max_windows`` (0: all).  Returns ``(rows, compound)``:
    a list of dicts keyed by :data:`SAE_METRICS` (one per SAE; None without
    ``each``) and a dict of the compound splice's ce_clean, ce_spliced,
    ce_increase and kl (None without ``all``).
    """
    fn = "sae_metrics"
    if not isinstance(model, Model) or not isinstance(dataset, Dataset):
        raise TypeError(f"{fn}: model must be a scalar.Model and dataset a scalar.Dataset")
    if isinstance(split, str):
        split = SPLITS[split]
    saes = list(saes)
    if not saes or not _all_sae(saes):
        raise _error(_lib.E_INVALID_ARG, f"{fn}: saes must be a non-empty list of scalar.SAE")
    n = len(saes)
    ptrs = (ctypes.c_void_p * n)(*[s._handle for s in saes])
    count = len(SAE_METRICS)
    out_each = np.empty((n, count), dtype=np.float64) if each else None
    out_all = np.empty(count, dtype=np.float64) if all else None
    with model._lock:
        lib.scalar_sae_metrics(model._handle, dataset._handle, int(split), ptrs, n, int(batch),
                               int(seq), int(max_windows),
                               None if out_each is None else _ptr(out_each),
                               None if out_all is None else _ptr(out_all))
    rows = None if out_each is None else [dict(zip(SAE_METRICS, map(float, r))) for r in out_each]
    compound = None
    if out_all is not None:
        compound = {k: float(v) for k, v in zip(SAE_METRICS, out_all)
                    if k in ("ce_clean", "ce_spliced", "ce_increase", "kl")}
    return rows, compound


def _all_sae(items):
    return all(isinstance(s, SAE) for s in items)
