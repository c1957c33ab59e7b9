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
    "SAE_GROUP_SHARE", "SAE_GROUP_DETACH",
]

