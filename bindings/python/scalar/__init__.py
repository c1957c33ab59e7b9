"""libscalar for Python: a pure-ctypes binding.

The library is found through the environment variable SCALAR_LIBRARY (a
file path), else the build tree beside this package (build/release, then
build/*), else the system (libscalar.so.0).  Importing fails with
ImportError if the library's ABI is not the one this binding was written for.

    import scalar
    with scalar.Context(threads=2) as ctx:
        scalar.save_safetensors("t.safetensors", {"w": np.eye(3, dtype=np.float32)}, ctx=ctx)
        with scalar.SafeTensors("t.safetensors", ctx) as st:
            w = st["w"]
    y = scalar.ops.gelu(w)

    model = scalar.Model.load("gpt2-dir")      # Hugging Face GPT-2 files
    logits, loss, acts = model.forward(ids, hooks=["blocks.3.hook_resid_post"])

    sae = scalar.SAE.load("sae-dir")          # SAELens cfg.json + sae_weights.safetensors
    values, indices = sae.encode(acts["blocks.3.hook_resid_post"])

    with scalar.Evaluator(model, sae_in, sae_out, "ff", 3, mode="parity") as ev:
        scores = ev.run(attr_ids, eval_ids)    # SCALAR: attribution, curve, S_abs / S_rel
        curve = ev.read_curve("kl")            # Curve(edges, mean, lo, hi)

    group = scalar.SaeGroup.create(768, [4096, 8192], k=32,
                                   hook_names=["blocks.3.hook_resid_post"] * 2)
    with scalar.SaeTrainer(group, model, max_tokens=4096) as trainer:
        losses, grad_norm = trainer.step(ids)  # Staircase SAEs on streamed activations

Every failed call raises :class:`ScalarError` with ``.status``, ``.name``
and ``.message`` (the library's own words).
"""

from . import _lib
from ._core import (Context, abi_version, backends, default_context, version,
                    version_number)
from ._data import (ALL, TRAIN, VAL, Dataset, ascii_decode, ascii_encode,
                    ascii_vocab_size)
from ._io import Npy, SafeTensors, inspect, load_npy, save_safetensors
from ._model import (Model, ModelConfig, Trainer, TrainerOptions, hook_name, model_config,
                     parse_hook, trainer_options)
from ._sae import SAE, SAE_ARCHITECTURES, SAE_JUMPRELU, SAE_STANDARD, SAE_TOPK, SaeConfig
from ._eval import SAE_METRICS, sae_metrics
from ._evaluator import (ATTR_GRADIENT_PATH, ATTR_JACOBIAN, CURVE_KL, CURVE_KL_FULL,
                         EVAL_ATTRIBUTIONS, EVAL_CURVES, EVAL_MODES, EVAL_PATHS, PATH_BLOCK,
                         PATH_FF_BLOCK, PATH_FF_LAYER, QUIRK_CURVE_TOPK, QUIRK_FULL_CIRCUIT,
                         QUIRK_GRID, QUIRK_NORM_WEIGHT, QUIRK_S1_ZERO, QUIRK_TIES,
                         QUIRKS_PARITY, SCORE_ATTR_TOKENS, SCORE_COUNT, SCORE_EVAL_TOKENS,
                         SCORE_FULL_KL, SCORE_FULL_S_ABS, SCORE_FULL_S_ABS_ERR, SCORE_N_EDGES,
                         SCORE_NAMES, SCORE_S_ABS, SCORE_S_ABS_ERR, SCORE_S_REL,
                         SCORE_S_REL_ERR, Curve, Evaluator, EvaluatorOptions,
                         evaluator_options)
from ._sae_train import (SAE_GROUP_DETACH, SAE_GROUP_MODES, SAE_GROUP_SHARE, SaeGroup,
                         SaeTrainer, SaeTrainerOptions, sae_trainer_options)
from ._lib import (DTYPE_NAMES, HOOK_KINDS, E_BACKEND, E_BUFSIZE, E_FORMAT, E_INVALID_ARG, E_IO,
                   E_NOMEM, E_NOT_FOUND, E_NUMERIC, E_SHAPE, E_UNSUPPORTED, E_VERSION,
                   EXPECTED_ABI, OK, ScalarError, last_error, status_string)
from . import ops

__version__ = version()

__all__ = [
    "Context", "Dataset", "Npy", "SafeTensors", "ScalarError", "abi_version", "backends",
    "default_context", "inspect", "last_error", "load_npy", "ops", "save_safetensors",
    "status_string", "version", "version_number", "ascii_encode", "ascii_decode",
    "ascii_vocab_size", "TRAIN", "VAL", "ALL", "DTYPE_NAMES", "EXPECTED_ABI", "OK",
    "E_INVALID_ARG", "E_NOMEM", "E_UNSUPPORTED", "E_VERSION", "E_BUFSIZE", "E_NOT_FOUND",
    "E_IO", "E_FORMAT", "E_SHAPE", "E_NUMERIC", "E_BACKEND",
    "Model", "ModelConfig", "Trainer", "TrainerOptions", "HOOK_KINDS", "hook_name",
    "model_config", "parse_hook", "trainer_options",
    "SAE", "SaeConfig", "SAE_ARCHITECTURES", "SAE_TOPK", "SAE_STANDARD", "SAE_JUMPRELU",
    "SaeGroup", "SaeTrainer", "SaeTrainerOptions", "sae_trainer_options", "SAE_GROUP_MODES",
    "SAE_GROUP_SHARE", "SAE_GROUP_DETACH", "SAE_METRICS", "sae_metrics",
    "Evaluator", "Curve", "EvaluatorOptions", "evaluator_options", "EVAL_PATHS", "EVAL_MODES",
    "EVAL_ATTRIBUTIONS", "EVAL_CURVES", "SCORE_NAMES", "PATH_FF_LAYER", "PATH_FF_BLOCK",
    "PATH_BLOCK", "ATTR_GRADIENT_PATH", "ATTR_JACOBIAN", "QUIRK_TIES", "QUIRK_S1_ZERO",
    "QUIRK_NORM_WEIGHT", "QUIRK_CURVE_TOPK", "QUIRK_FULL_CIRCUIT", "QUIRK_GRID",
    "QUIRKS_PARITY", "CURVE_KL", "CURVE_KL_FULL", "SCORE_S_ABS", "SCORE_S_ABS_ERR",
    "SCORE_S_REL", "SCORE_S_REL_ERR", "SCORE_FULL_S_ABS", "SCORE_FULL_S_ABS_ERR",
    "SCORE_FULL_KL", "SCORE_N_EDGES", "SCORE_ATTR_TOKENS", "SCORE_EVAL_TOKENS", "SCORE_COUNT",
]

