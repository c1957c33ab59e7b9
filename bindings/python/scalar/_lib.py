"""Loading libscalar and declaring every exported function (ctypes).

Rules (STYLE.md 3.12): CDLL, not PyDLL, so calls release the GIL; every
function returning ``scalar_status`` shares one ``errcheck`` that raises
:class:`ScalarError`; functions returning pointers have an explicit
``restype``; outputs are caller-allocated.  The only exported symbol not
declared here is the variadic ``scalar_sys_error_set`` (C backends only).
"""

import ctypes
import ctypes.util
import glob
import os
from ctypes import (POINTER, c_char_p, c_float, c_int32, c_int64, c_size_t, c_uint32,
                    c_uint64, c_void_p)

#: The ABI counter this binding was written for (the N of libscalar.so.N).
EXPECTED_ABI = 0

# ---- status codes (values frozen; checked against the library at import) ----
OK = 0
E_INVALID_ARG = -1
E_NOMEM = -2
E_UNSUPPORTED = -3
E_VERSION = -4
E_BUFSIZE = -5
E_NOT_FOUND = -6
E_IO = -20
E_FORMAT = -21
E_SHAPE = -40
E_NUMERIC = -41
E_BACKEND = -60

STATUS_NAMES = {
    OK: "SCALAR_OK", E_INVALID_ARG: "SCALAR_E_INVALID_ARG", E_NOMEM: "SCALAR_E_NOMEM",
    E_UNSUPPORTED: "SCALAR_E_UNSUPPORTED", E_VERSION: "SCALAR_E_VERSION",
    E_BUFSIZE: "SCALAR_E_BUFSIZE", E_NOT_FOUND: "SCALAR_E_NOT_FOUND", E_IO: "SCALAR_E_IO",
    E_FORMAT: "SCALAR_E_FORMAT", E_SHAPE: "SCALAR_E_SHAPE", E_NUMERIC: "SCALAR_E_NUMERIC",
    E_BACKEND: "SCALAR_E_BACKEND",
}

# ---- element types, in SCALAR_DTYPE_* order (checked at import) ----
DTYPE_NAMES = ("F32", "F16", "BF16", "I32", "I64", "U16", "F64", "I8", "U8", "I16", "U32",
               "U64", "BOOL", "F8_E4M3", "F8_E5M2")
DTYPE_F32, DTYPE_F16, DTYPE_BF16, DTYPE_I32, DTYPE_I64, DTYPE_U16 = range(6)

# ---- backend op ids and sgemm flags (scalar/sys/backend.h) ----
OP_NAMES = ("sgemm", "bias_add", "gelu_forward", "gelu_backward", "layernorm_forward",
            "layernorm_backward", "softmax_rows", "topk_rows", "gather_rows", "scatter_add_rows",
            "attention_forward", "attention_backward", "embedding_forward", "embedding_backward",
            "cross_entropy_forward", "cross_entropy_backward", "sum_rows", "add", "sumsq",
            "adamw")
NO_TRANS = 0
TRANS = 1

# ---- model hook kinds (SCALAR_HOOK_*, values frozen; names checked at import) ----
HOOK_KINDS = ("resid_pre", "resid_mid", "resid_post", "mlp_in", "mlp_out")
HOOK_RESID_PRE, HOOK_RESID_MID, HOOK_RESID_POST, HOOK_MLP_IN, HOOK_MLP_OUT = range(5)
WORKSPACE_GRAD = 1  # SCALAR_WORKSPACE_GRAD

# ---- SAE architectures (SCALAR_SAE_*, values frozen; index = value) ----
SAE_ARCHITECTURES = ("topk", "standard", "jumprelu")
SAE_TOPK, SAE_STANDARD, SAE_JUMPRELU = range(3)

# ---- Staircase group modes (SCALAR_SAE_GROUP_*, values frozen; index = value) ----
SAE_GROUP_MODES = ("share", "detach")
# sae.h: SCALAR_JSAE_* (frozen)
JSAE_PATHS = ("ff_layer", "ff_block")
JSAE_MODES = ("sum", "mean")
SAE_GROUP_SHARE, SAE_GROUP_DETACH = range(2)
# eval.h: SCALAR_SAE_METRIC_* (frozen), the order of a metrics row
SAE_METRICS = ("l0", "fvu", "mse", "dead", "ce_clean", "ce_spliced", "ce_increase", "kl")
# eval.h: the SCALAR evaluator (values frozen)
PATH_FF_LAYER, PATH_FF_BLOCK, PATH_BLOCK = range(3)  # SCALAR_PATH_*; index = value
EVAL_PATHS = ("ff", "mlpblock", "block")
ATTR_GRADIENT_PATH, ATTR_JACOBIAN = range(2)  # SCALAR_ATTR_*; index = value
EVAL_ATTRIBUTIONS = ("gradient", "jacobian")
QUIRK_TIES = 1
QUIRK_S1_ZERO = 2
QUIRK_NORM_WEIGHT = 4
QUIRK_CURVE_TOPK = 8
QUIRK_FULL_CIRCUIT = 16
QUIRK_GRID = 32
QUIRKS_PARITY = 63
CURVE_KL, CURVE_KL_FULL = range(2)  # SCALAR_CURVE_*; index = value
EVAL_CURVES = ("kl", "kl_full")
# SCALAR_SCORE_*: positions in scalar_evaluator_scores()' output
SCORE_NAMES = ("s_abs", "s_abs_err", "s_rel", "s_rel_err", "full_s_abs", "full_s_abs_err",
               "full_kl", "n_edges", "attr_tokens", "eval_tokens")
(SCORE_S_ABS, SCORE_S_ABS_ERR, SCORE_S_REL, SCORE_S_REL_ERR, SCORE_FULL_S_ABS,
 SCORE_FULL_S_ABS_ERR, SCORE_FULL_KL, SCORE_N_EDGES, SCORE_ATTR_TOKENS,
 SCORE_EVAL_TOKENS) = range(10)
SCORE_COUNT = 10


class ScalarError(Exception):
    """A libscalar call returned a negative ``scalar_status``.

    Attributes: ``status`` (the negative code), ``name`` (e.g.
    ``"SCALAR_E_FORMAT"``), ``description`` (the full status string) and
    ``message`` (the library's thread-local message about the failure).
    """

    def __init__(self, status, description, message):
        self.status = status
        self.description = description
        self.name = description.split(":", 1)[0].strip() or STATUS_NAMES.get(status, "")
        self.message = message
        super().__init__(f"{message} ({description})" if message else description)


def _find_library():
    """SCALAR_LIBRARY, else the build tree, else the system; returns a CDLL."""
    env = os.environ.get("SCALAR_LIBRARY")
    if env:
        try:
            return ctypes.CDLL(env)
        except OSError as e:
            raise ImportError(f"scalar: cannot load SCALAR_LIBRARY={env}: {e}") from e
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    tried = []
    candidates = [os.path.join(root, "build", "release", "libscalar.so.0")]
    candidates += sorted(glob.glob(os.path.join(root, "build", "*", "libscalar.so.0")))
    found = ctypes.util.find_library("scalar")
    candidates += [c for c in (found, "libscalar.so.0") if c]
    for path in candidates:
        if os.sep in path and not os.path.exists(path):
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("scalar: libscalar.so.0 not found (set SCALAR_LIBRARY); tried: "
                      + "; ".join(tried or candidates))


lib = _find_library()


def _decode(raw):
    return raw.decode("utf-8", "replace") if raw is not None else None


def _check(rc, func, args):
    """The one errcheck of every scalar_status function."""
    if rc < 0:
        raise ScalarError(rc, _decode(lib.scalar_status_string(rc)),
                          _decode(lib.scalar_last_error()))
    return rc


class CtxOptions(ctypes.Structure):
    """scalar_ctx_options, filled by scalar_ctx_options_init()."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("seed", c_uint64),
        ("backend", c_char_p),
        ("allocator", c_void_p),
        ("log_cb", c_void_p),
        ("log_user", c_void_p),
        ("n_threads", c_int32),
        ("log_level", c_int32),
    ]


class DataOptions(ctypes.Structure):
    """scalar_dataset_options, filled by scalar_dataset_options_init()."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("val_fraction", ctypes.c_double),
        ("split_multiple", c_int64),
        ("format", c_int32),
        ("vocab", c_int32),
    ]


class ModelConfig(ctypes.Structure):
    """scalar_model_config, filled by scalar_model_config_init() (the toy model)."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("n_layer", c_int32),
        ("n_head", c_int32),
        ("n_embd", c_int32),
        ("d_mlp", c_int32),
        ("block_size", c_int32),
        ("vocab_size", c_int32),
        ("layer_norm_eps", c_float),
        ("reserved0", c_int32),
    ]


class SaeConfig(ctypes.Structure):
    """scalar_sae_config, filled by scalar_sae_config_init() (the toy TopK SAE)."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("architecture", c_int32),
        ("d_in", c_int32),
        ("d_sae", c_int32),
        ("k", c_int32),
        ("apply_b_dec_to_input", c_int32),
        ("reserved0", c_int32),
        ("hook_name", c_char_p),
        ("seed", c_uint64),
    ]


class TrainerOptions(ctypes.Structure):
    """scalar_model_trainer_options, filled by scalar_model_trainer_options_init()."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("batch", c_int64),
        ("seq", c_int64),
        ("grad_accum", c_int64),
        ("warmup_steps", c_int64),
        ("max_steps", c_int64),
        ("lr", c_float),
        ("min_lr", c_float),
        ("beta1", c_float),
        ("beta2", c_float),
        ("eps", c_float),
        ("weight_decay", c_float),
        ("grad_clip", c_float),
        ("reserved0", c_int32),
    ]


class SaeTrainerOptions(ctypes.Structure):
    """scalar_sae_trainer_options, filled by scalar_sae_trainer_options_init()."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("warmup_steps", c_int64),
        ("max_steps", c_int64),
        ("lr", c_float),
        ("min_lr", c_float),
        ("beta1", c_float),
        ("beta2", c_float),
        ("eps", c_float),
        ("weight_decay", c_float),
        ("grad_clip", c_float),
        ("renorm_decoder", c_int32),
    ]


class EvaluatorOptions(ctypes.Structure):
    """scalar_evaluator_options, filled by scalar_evaluator_options_init()."""
    _fields_ = [
        ("struct_size", c_size_t),
        ("quirks", c_uint32),
        ("attribution", c_int32),
        ("steps", c_int32),
        ("bootstrap", c_int32),
        ("confidence", ctypes.c_double),
        ("seed", c_uint64),
        ("rank_seed", c_uint64),
        ("batch", c_int32),
        ("reserved0", c_int32),
    ]


ST = c_int32  # scalar_status
P = c_void_p  # handles and data pointers
I64 = c_int64
OUT_P = POINTER(c_void_p)
SHAPE = POINTER(c_int64)

# name: (restype, argtypes).  ST restype gets the errcheck.
_SIGNATURES = {
    # core.h
    "scalar_status_string": (c_char_p, [ST]),
    "scalar_last_error": (c_char_p, []),
    "scalar_last_error_clear": (None, []),
    # returns its status argument: with the errcheck, a negative one raises
    "scalar_last_error_set": (ST, [ST, c_char_p]),
    "scalar_version": (c_uint32, []),
    "scalar_version_string": (c_char_p, []),
    "scalar_abi_version": (c_uint32, []),
    "scalar_allocator_init": (ST, [P, c_size_t]),
    "scalar_allocator_size": (c_size_t, []),
    "scalar_ctx_options_init": (ST, [POINTER(CtxOptions), c_size_t]),
    "scalar_ctx_options_size": (c_size_t, []),
    "scalar_ctx_create": (ST, [OUT_P, POINTER(CtxOptions)]),
    "scalar_ctx_free": (None, [P]),
    "scalar_ctx_n_threads": (c_int32, [P]),
    "scalar_ctx_seed": (c_uint64, [P]),
    "scalar_ctx_backend_name": (c_char_p, [P]),
    # backend.h
    "scalar_backend_count": (c_size_t, []),
    "scalar_backend_name": (c_char_p, [c_size_t]),
    "scalar_ctx_backend": (c_void_p, [P]),
    "scalar_backend_describe": (c_char_p, [P]),
    # sys/backend.h: registration, memory, kernels
    "scalar_backend_register": (ST, [P]),
    "scalar_backend_is_host": (c_int32, [P]),
    "scalar_backend_buffer_alloc": (ST, [OUT_P, P, c_size_t]),
    "scalar_backend_buffer_free": (None, [P, P, c_size_t]),
    "scalar_backend_upload": (ST, [P, P, P, c_size_t]),
    "scalar_backend_download": (ST, [P, P, P, c_size_t]),
    "scalar_backend_synchronize": (ST, [P]),
    "scalar_backend_supports": (c_int32, [P, c_int32]),
    "scalar_backend_sgemm": (ST, [P, c_int32, c_int32, I64, I64, I64, c_float, P, I64, P, I64,
                                  c_float, P, I64]),
    "scalar_backend_bias_add": (ST, [P, P, P, I64, I64]),
    "scalar_backend_gelu_forward": (ST, [P, P, P, I64]),
    "scalar_backend_gelu_backward": (ST, [P, P, P, P, I64]),
    "scalar_backend_layernorm_forward": (ST, [P, P, P, P, P, P, P, I64, I64, c_float]),
    "scalar_backend_layernorm_backward": (ST, [P, P, P, P, P, P, P, P, P, I64, I64]),
    "scalar_backend_softmax_rows": (ST, [P, P, P, I64, I64]),
    "scalar_backend_topk_rows": (ST, [P, P, P, P, I64, I64, I64]),
    "scalar_backend_gather_rows": (ST, [P, P, P, P, I64, I64, I64]),
    "scalar_backend_scatter_add_rows": (ST, [P, P, P, P, I64, I64, I64]),
    "scalar_backend_attention_forward": (ST, [P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_attention_backward": (ST, [P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_embedding_forward": (ST, [P, P, P, P, P, I64, I64, I64, I64, I64]),
    "scalar_backend_embedding_backward": (ST, [P, P, P, P, P, I64, I64, I64, I64, I64]),
    "scalar_backend_cross_entropy_forward": (ST, [P, P, P, I64, P, I64, I64]),
    "scalar_backend_cross_entropy_backward": (ST, [P, P, P, I64, P, P, I64, I64]),
    "scalar_backend_sum_rows": (ST, [P, P, P, I64, I64]),
    "scalar_backend_add": (ST, [P, P, P, P, I64]),
    "scalar_backend_sumsq": (ST, [P, P, P, I64]),
    "scalar_backend_adamw": (ST, [P, P, P, P, P, I64, c_float, c_float, c_float, c_float,
                                  c_float, c_float, I64]),
    "scalar_backend_sparse_decode": (ST, [P, P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_sparse_dot": (ST, [P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_sparse_outer_add": (ST, [P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_jacobian_contract": (ST, [P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_jacobian_contract_backward": (ST, [P, P, P, P, P, P, P, I64, I64, I64, I64]),
    "scalar_backend_jacobian_rows": (ST, [P, P, P, P, P, P, P, I64, I64, I64, I64, I64]),
    # io.h: element types
    "scalar_dtype_name": (c_char_p, [c_int32]),
    "scalar_dtype_size": (c_size_t, [c_int32]),
    "scalar_max_dims": (c_int32, []),
    # io.h: safetensors reader
    "scalar_safetensors_open": (ST, [OUT_P, P, c_char_p]),
    "scalar_safetensors_open_memory": (ST, [OUT_P, P, P, c_size_t]),
    "scalar_safetensors_free": (None, [P]),
    "scalar_safetensors_count": (c_size_t, [P]),
    "scalar_safetensors_find": (ST, [POINTER(c_size_t), P, c_char_p]),
    "scalar_safetensors_name": (c_char_p, [P, c_size_t]),
    "scalar_safetensors_dtype": (c_int32, [P, c_size_t]),
    "scalar_safetensors_ndim": (c_int32, [P, c_size_t]),
    "scalar_safetensors_shape": (ST, [SHAPE, c_size_t, P, c_size_t]),
    "scalar_safetensors_numel": (c_uint64, [P, c_size_t]),
    "scalar_safetensors_data": (ST, [OUT_P, POINTER(c_size_t), P, c_size_t]),
    "scalar_safetensors_read_f32": (ST, [P, c_size_t, P, c_size_t]),
    "scalar_safetensors_metadata_count": (c_size_t, [P]),
    "scalar_safetensors_metadata_key": (c_char_p, [P, c_size_t]),
    "scalar_safetensors_metadata_get": (c_char_p, [P, c_char_p]),
    # io.h: safetensors writer
    "scalar_safetensors_writer_create": (ST, [OUT_P, P]),
    "scalar_safetensors_writer_free": (None, [P]),
    "scalar_safetensors_writer_add": (ST, [P, c_char_p, c_int32, SHAPE, c_int32, P, c_size_t]),
    "scalar_safetensors_writer_set_metadata": (ST, [P, c_char_p, c_char_p]),
    "scalar_safetensors_writer_write": (ST, [P, c_char_p]),
    # io.h: .npy reader
    "scalar_npy_open": (ST, [OUT_P, P, c_char_p]),
    "scalar_npy_open_memory": (ST, [OUT_P, P, P, c_size_t]),
    "scalar_npy_free": (None, [P]),
    "scalar_npy_dtype": (c_int32, [P]),
    "scalar_npy_ndim": (c_int32, [P]),
    "scalar_npy_shape": (ST, [SHAPE, c_size_t, P]),
    "scalar_npy_numel": (c_uint64, [P]),
    "scalar_npy_read_i32": (ST, [P, c_size_t, P]),
    "scalar_npy_read_f32": (ST, [P, c_size_t, P]),
    # data.h: ASCII tokenizer
    "scalar_ascii_vocab_size": (c_int32, []),
    "scalar_ascii_encode": (ST, [c_char_p, c_size_t, P]),
    "scalar_ascii_decode": (ST, [P, c_size_t, P, c_size_t]),
    # data.h: datasets
    "scalar_dataset_options_init": (ST, [POINTER(DataOptions), c_size_t]),
    "scalar_dataset_options_size": (c_size_t, []),
    "scalar_dataset_load": (ST, [OUT_P, P, c_char_p, POINTER(DataOptions)]),
    "scalar_dataset_load_files": (ST, [OUT_P, P, POINTER(c_char_p), c_size_t,
                                       POINTER(DataOptions)]),
    "scalar_dataset_create_from_ids": (ST, [OUT_P, P, P, c_size_t, POINTER(DataOptions)]),
    "scalar_dataset_create_from_text": (ST, [OUT_P, P, c_char_p, c_size_t,
                                             POINTER(DataOptions)]),
    "scalar_dataset_free": (None, [P]),
    "scalar_dataset_n_tokens": (ST, [P, c_int32, POINTER(c_int64)]),
    "scalar_dataset_vocab_size": (ST, [P, POINTER(c_int32)]),
    "scalar_dataset_tokens": (ST, [P, c_int32, I64, I64, P]),
    "scalar_dataset_batch": (ST, [P, c_int32, POINTER(c_int64), I64, I64, P, P]),
    "scalar_dataset_batch_random": (ST, [P, c_int32, c_uint64, I64, I64, I64, P, P]),
    # model.h: configuration and the model handle
    "scalar_model_config_init": (ST, [POINTER(ModelConfig), c_size_t]),
    "scalar_model_config_size": (c_size_t, []),
    "scalar_model_config_preset": (ST, [POINTER(ModelConfig), c_char_p]),
    "scalar_model_create": (ST, [OUT_P, P, POINTER(ModelConfig)]),
    "scalar_model_load": (ST, [OUT_P, P, c_char_p]),
    "scalar_model_save": (ST, [P, c_char_p]),
    "scalar_model_free": (None, [P]),
    "scalar_model_get_config": (ST, [P, POINTER(ModelConfig)]),
    "scalar_model_param_count": (c_int32, [P]),
    "scalar_model_n_params": (c_int64, [P]),
    "scalar_model_param_info": (ST, [P, c_int32, POINTER(c_char_p), SHAPE, POINTER(c_int32)]),
    "scalar_model_param_read": (ST, [P, c_char_p, P, c_size_t]),
    "scalar_model_param_write": (ST, [P, c_char_p, P, c_size_t]),
    # model.h: hook points
    "scalar_model_hook_name": (ST, [P, c_size_t, c_int32, c_int32]),
    "scalar_model_hook_parse": (ST, [c_char_p, POINTER(c_int32), POINTER(c_int32)]),
    # model.h: workspaces
    "scalar_model_workspace_create": (ST, [OUT_P, P, I64, I64, c_int32]),
    "scalar_model_workspace_free": (None, [P]),
    "scalar_model_workspace_set_hook": (ST, [P, c_int32, c_int32, P, P]),
    "scalar_model_workspace_set_replacement": (ST, [P, c_int32, c_int32, P]),
    "scalar_model_workspace_set_grad_capture": (ST, [P, c_int32, c_int32, P]),
    "scalar_model_workspace_clear_hooks": (None, [P]),
    "scalar_model_workspace_read": (ST, [P, c_int32, c_int32, P, c_size_t]),
    "scalar_model_workspace_read_grad": (ST, [P, c_char_p, P, c_size_t]),
    "scalar_model_workspace_zero_grad": (ST, [P]),
    # model.h: forward, backward, sampling
    "scalar_model_forward": (ST, [P, P, P, P, I64, I64, P, POINTER(c_float)]),
    "scalar_model_forward_from": (ST, [P, P, c_int32, c_int32, P, P, I64, I64, P,
                                       POINTER(c_float)]),
    "scalar_model_backward": (ST, [P, P]),
    "scalar_model_backward_logits": (ST, [P, P, P]),
    "scalar_model_backward_from": (ST, [P, P, c_int32, c_int32, P]),
    "scalar_model_generate": (ST, [P, P, P, I64, I64, c_float, c_uint64, P]),
    # model.h: training
    "scalar_model_trainer_options_init": (ST, [POINTER(TrainerOptions), c_size_t]),
    "scalar_model_trainer_options_size": (c_size_t, []),
    "scalar_model_trainer_create": (ST, [OUT_P, P, POINTER(TrainerOptions)]),
    "scalar_model_trainer_free": (None, [P]),
    "scalar_model_trainer_lr": (c_float, [P, I64]),
    "scalar_model_trainer_step": (ST, [P, P, P, POINTER(c_float), POINTER(c_float)]),
    "scalar_model_trainer_steps": (I64, [P]),
    "scalar_model_trainer_save": (ST, [P, c_char_p]),
    "scalar_model_trainer_load": (ST, [P, c_char_p]),
    # sae.h: SAE dictionaries
    "scalar_sae_config_init": (ST, [POINTER(SaeConfig), c_size_t]),
    "scalar_sae_config_size": (c_size_t, []),
    "scalar_sae_create": (ST, [OUT_P, P, POINTER(SaeConfig)]),
    "scalar_sae_load": (ST, [OUT_P, P, c_char_p]),
    "scalar_sae_save": (ST, [P, c_char_p]),
    "scalar_sae_free": (None, [P]),
    "scalar_sae_get_config": (ST, [P, POINTER(SaeConfig)]),
    "scalar_sae_param_read": (ST, [P, c_char_p, P, c_size_t]),
    "scalar_sae_param_write": (ST, [P, c_char_p, P, c_size_t]),
    "scalar_sae_encode": (ST, [P, P, I64, P, P]),
    "scalar_sae_encode_dense": (ST, [P, P, I64, P]),
    "scalar_sae_decode": (ST, [P, P, P, I64, I64, P]),
    "scalar_sae_decode_dense": (ST, [P, P, I64, P]),
    # sae.h: Staircase groups
    "scalar_sae_group_create": (ST, [OUT_P, P, POINTER(SaeConfig), c_int32, P,
                                     POINTER(c_char_p), c_int32]),
    "scalar_sae_group_load": (ST, [OUT_P, P, c_char_p]),
    "scalar_sae_group_save": (ST, [P, c_char_p]),
    "scalar_sae_group_free": (None, [P]),
    "scalar_sae_group_n_members": (c_int32, [P]),
    "scalar_sae_group_mode": (c_int32, [P]),
    "scalar_sae_group_get_sae": (ST, [OUT_P, P, c_int32]),
    "scalar_sae_group_param_read": (ST, [P, c_char_p, P, c_size_t]),
    "scalar_sae_group_param_write": (ST, [P, c_char_p, P, c_size_t]),
    # sae.h: training (groups and acts are arrays of pointers)
    "scalar_sae_trainer_options_init": (ST, [POINTER(SaeTrainerOptions), c_size_t]),
    "scalar_sae_trainer_options_size": (c_size_t, []),
    "scalar_sae_metrics": (ST, [P, P, c_int32, POINTER(c_void_p), c_int32, I64, I64, I64, P,
                                P]),
    "scalar_sae_trainer_dead_latents": (ST, [P, P, c_int32]),
    "scalar_sae_trainer_add_jacobian": (ST, [P, c_int32, c_int32, c_int32, c_int32, c_float,
                                             c_int32]),
    "scalar_sae_trainer_n_jacobians": (c_int32, [P]),
    "scalar_sae_trainer_jacobian_penalties": (ST, [P, P]),
    "scalar_sae_trainer_create": (ST, [OUT_P, P, POINTER(c_void_p), c_int32, I64,
                                       POINTER(SaeTrainerOptions)]),
    "scalar_sae_trainer_free": (None, [P]),
    "scalar_sae_trainer_n_saes": (c_int32, [P]),
    "scalar_sae_trainer_lr": (c_float, [P, I64]),
    "scalar_sae_trainer_compute_acts": (ST, [P, POINTER(c_void_p), I64, P]),
    "scalar_sae_trainer_step_acts": (ST, [P, POINTER(c_void_p), I64, P, POINTER(c_float)]),
    "scalar_sae_trainer_step": (ST, [P, P, I64, I64, P, POINTER(c_float)]),
    "scalar_sae_trainer_evaluate": (ST, [P, P, I64, I64, P]),
    "scalar_sae_trainer_read_grad": (ST, [P, c_int32, c_char_p, P, c_size_t]),
    "scalar_sae_trainer_steps": (I64, [P]),
    "scalar_sae_trainer_save": (ST, [P, c_char_p]),
    "scalar_sae_trainer_load": (ST, [P, c_char_p]),
    # eval.h: the SCALAR evaluator
    "scalar_evaluator_options_init": (ST, [POINTER(EvaluatorOptions), c_size_t]),
    "scalar_evaluator_options_size": (c_size_t, []),
    "scalar_evaluator_create": (ST, [OUT_P, P, P, P, c_int32, c_int32,
                                     POINTER(EvaluatorOptions)]),
    "scalar_evaluator_free": (None, [P]),
    "scalar_evaluator_attribute": (ST, [P, P, I64, I64]),
    "scalar_evaluator_read_attribution": (ST, [P, P, c_size_t]),
    "scalar_evaluator_read_order": (ST, [P, P, c_size_t]),
    "scalar_evaluator_top_edges": (ST, [P, I64, P, P, P, POINTER(c_int64)]),
    "scalar_evaluator_curve": (ST, [P, P, I64, I64, P, I64]),
    "scalar_evaluator_n_points": (I64, [P]),
    "scalar_evaluator_read_curve": (ST, [P, c_int32, P, P, P, P, c_size_t]),
    "scalar_evaluator_read_token_kl": (ST, [P, c_int32, P, c_size_t]),
    "scalar_evaluator_scores": (ST, [P, P, c_size_t]),
}

#: Every symbol this binding declares (a test compares it with lib/scalar.sym).
DECLARED = frozenset(_SIGNATURES)
#: Symbols the loaded library lacks (an io or backend part not built in).
MISSING = []


def _declare():
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            MISSING.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
        if restype is ST:
            fn.errcheck = _check


_declare()


def _check_abi():
    abi = lib.scalar_abi_version()
    if abi != EXPECTED_ABI:
        raise ImportError(f"scalar: libscalar ABI {abi} loaded, this binding needs ABI "
                          f"{EXPECTED_ABI}")
    for i, name in enumerate(DTYPE_NAMES):
        got = _decode(lib.scalar_dtype_name(i)) if "scalar_dtype_name" not in MISSING else name
        if got != name:
            raise ImportError(f"scalar: dtype {i} is {got!r} in the library, {name!r} here")
    for code, name in STATUS_NAMES.items():
        if not _decode(lib.scalar_status_string(code)).startswith(name):
            raise ImportError(f"scalar: status {code} is not {name} in the library")
    _check_structs()
    _check_hook_kinds()


# Each mirrored struct against the library's own size function.
_STRUCT_SIZES = (
    (CtxOptions, "scalar_ctx_options_size"),
    (ModelConfig, "scalar_model_config_size"),
    (TrainerOptions, "scalar_model_trainer_options_size"),
    (SaeConfig, "scalar_sae_config_size"),
    (SaeTrainerOptions, "scalar_sae_trainer_options_size"),
    (EvaluatorOptions, "scalar_evaluator_options_size"),
)


def _check_structs():
    for struct, size_fn in _STRUCT_SIZES:
        if size_fn in MISSING:
            continue
        want = getattr(lib, size_fn)()
        if ctypes.sizeof(struct) != want:
            raise ImportError(f"scalar: {struct.__name__} is {ctypes.sizeof(struct)} bytes here, "
                              f"{want} in the library ({size_fn})")


def _check_hook_kinds():
    if "scalar_model_hook_name" in MISSING:
        return
    buf = ctypes.create_string_buffer(32)
    for kind, short in enumerate(HOOK_KINDS):
        lib.scalar_model_hook_name(buf, len(buf), 0, kind)
        if buf.value.decode() != f"blocks.0.hook_{short}":
            raise ImportError(f"scalar: hook kind {kind} is {buf.value!r} in the library, "
                              f"{short!r} here")


_check_abi()


def status_string(status):
    """The library's text for a status code, e.g. 'SCALAR_E_IO: ...'."""
    return _decode(lib.scalar_status_string(status))


def last_error():
    """The calling thread's last libscalar error message."""
    return _decode(lib.scalar_last_error())
