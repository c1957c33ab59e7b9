/*
 * abi.c - freezes the layout of every public struct (libgit2 structinit plus
 * _Static_assert offsets).  If this file stops compiling, a public struct or
 * the backend vtable changed layout: that is an ABI break, which needs an ABI
 * counter bump and a CHANGELOG line, not an edit here.  LP64 only.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <scalar/scalar.h>
#include <scalar/sys/backend.h>

#define AT(type, field, off) _Static_assert(offsetof(type, field) == (off), #type "." #field)

/* scalar_ctx_options, version 1: 56 bytes, no padding holes. */
AT(scalar_ctx_options, struct_size, 0);
AT(scalar_ctx_options, seed, 8);
AT(scalar_ctx_options, backend, 16);
AT(scalar_ctx_options, allocator, 24);
AT(scalar_ctx_options, log_cb, 32);
AT(scalar_ctx_options, log_user, 40);
AT(scalar_ctx_options, n_threads, 48);
AT(scalar_ctx_options, log_level, 52);
_Static_assert(sizeof(scalar_ctx_options) == 56, "scalar_ctx_options v1 size");

/* scalar_allocator, version 1: 32 bytes. */
AT(scalar_allocator, struct_size, 0);
AT(scalar_allocator, user, 8);
AT(scalar_allocator, alloc, 16);
AT(scalar_allocator, free, 24);
_Static_assert(sizeof(scalar_allocator) == 32, "scalar_allocator v1 size");

/* scalar_dataset_options, version 1: 32 bytes, no padding holes. */
AT(scalar_dataset_options, struct_size, 0);
AT(scalar_dataset_options, val_fraction, 8);
AT(scalar_dataset_options, split_multiple, 16);
AT(scalar_dataset_options, format, 24);
AT(scalar_dataset_options, vocab, 28);
_Static_assert(sizeof(scalar_dataset_options) == 32, "scalar_dataset_options v1 size");

/* scalar_backend_ops, backend ABI 1. */
_Static_assert(SCALAR_BACKEND_ABI_VERSION == 1, "backend ABI version");
AT(scalar_backend_ops, abi_version, 0);
AT(scalar_backend_ops, struct_size, 8);
AT(scalar_backend_ops, name, 16);
AT(scalar_backend_ops, create, 24);
AT(scalar_backend_ops, destroy, 32);
AT(scalar_backend_ops, describe, 40);
AT(scalar_backend_ops, buffer_alloc, 48);
AT(scalar_backend_ops, buffer_free, 56);
AT(scalar_backend_ops, buffer_is_host, 64);
AT(scalar_backend_ops, upload, 72);
AT(scalar_backend_ops, download, 80);
AT(scalar_backend_ops, synchronize, 88);
AT(scalar_backend_ops, supports, 96);
AT(scalar_backend_ops, sgemm, 104);
AT(scalar_backend_ops, bias_add, 112);
AT(scalar_backend_ops, gelu_forward, 120);
AT(scalar_backend_ops, gelu_backward, 128);
AT(scalar_backend_ops, layernorm_forward, 136);
AT(scalar_backend_ops, layernorm_backward, 144);
AT(scalar_backend_ops, softmax_rows, 152);
AT(scalar_backend_ops, topk_rows, 160);
AT(scalar_backend_ops, gather_rows, 168);
AT(scalar_backend_ops, scatter_add_rows, 176);
AT(scalar_backend_ops, get_proc_address, 184);
_Static_assert(SCALAR_BACKEND_OPS_V1_SIZE == 192, "ops v1 size: the oldest accepted");
/* version 2: the model-layer kernels, appended */
AT(scalar_backend_ops, attention_forward, 192);
AT(scalar_backend_ops, attention_backward, 200);
AT(scalar_backend_ops, embedding_forward, 208);
AT(scalar_backend_ops, embedding_backward, 216);
AT(scalar_backend_ops, cross_entropy_forward, 224);
AT(scalar_backend_ops, cross_entropy_backward, 232);
AT(scalar_backend_ops, sum_rows, 240);
AT(scalar_backend_ops, add, 248);
AT(scalar_backend_ops, sumsq, 256);
AT(scalar_backend_ops, adamw, 264);
_Static_assert(SCALAR_BACKEND_OPS_V2_SIZE == 272, "ops v2 size");
AT(scalar_backend_ops, sparse_decode, 272);
AT(scalar_backend_ops, sparse_dot, 280);
AT(scalar_backend_ops, sparse_outer_add, 288);
AT(scalar_backend_ops, jacobian_contract, 296);
AT(scalar_backend_ops, jacobian_contract_backward, 304);
_Static_assert(SCALAR_BACKEND_OPS_V3_SIZE == 312, "ops v3 size");
AT(scalar_backend_ops, jacobian_rows, 312);
_Static_assert(SCALAR_BACKEND_OPS_V4_SIZE == 320, "ops v4 size");
_Static_assert(sizeof(scalar_backend_ops) == SCALAR_BACKEND_OPS_V4_SIZE, "ops size");

/* Frozen constants. */
_Static_assert(SCALAR_DTYPE_F32 == 0 && SCALAR_DTYPE_F16 == 1 && SCALAR_DTYPE_BF16 == 2 &&
                   SCALAR_DTYPE_I32 == 3 && SCALAR_DTYPE_I64 == 4 && SCALAR_DTYPE_U16 == 5 &&
                   SCALAR_DTYPE_F64 == 6 && SCALAR_DTYPE_I8 == 7 && SCALAR_DTYPE_U8 == 8 &&
                   SCALAR_DTYPE_I16 == 9 && SCALAR_DTYPE_U32 == 10 && SCALAR_DTYPE_U64 == 11 &&
                   SCALAR_DTYPE_BOOL == 12 && SCALAR_DTYPE_F8_E4M3 == 13 &&
                   SCALAR_DTYPE_F8_E5M2 == 14,
               "dtype values");
_Static_assert(SCALAR_SPLIT_TRAIN == 0 && SCALAR_SPLIT_VAL == 1 && SCALAR_SPLIT_ALL == 2,
               "split values");
_Static_assert(SCALAR_DATA_AUTO == 0 && SCALAR_DATA_TEXT == 1 && SCALAR_DATA_NPY == 2 &&
                   SCALAR_DATA_BIN_U16 == 3,
               "data format values");
_Static_assert(SCALAR_ASCII_VOCAB_SIZE == 128 && SCALAR_ASCII_UNKNOWN_ID == '?', "ASCII tokenizer");
_Static_assert(SCALAR_OP_SGEMM == 0 && SCALAR_OP_SCATTER_ADD_ROWS == 9, "op ids");
_Static_assert(SCALAR_OP_ATTENTION_FORWARD == 10 && SCALAR_OP_ATTENTION_BACKWARD == 11 &&
                   SCALAR_OP_EMBEDDING_FORWARD == 12 && SCALAR_OP_EMBEDDING_BACKWARD == 13 &&
                   SCALAR_OP_CROSS_ENTROPY_FORWARD == 14 &&
                   SCALAR_OP_CROSS_ENTROPY_BACKWARD == 15 && SCALAR_OP_SUM_ROWS == 16 &&
                   SCALAR_OP_ADD == 17 && SCALAR_OP_SUMSQ == 18 && SCALAR_OP_ADAMW == 19 &&
                   SCALAR_OP_SPARSE_DECODE == 20 && SCALAR_OP_SPARSE_DOT == 21 &&
                   SCALAR_OP_SPARSE_OUTER_ADD == 22 && SCALAR_OP_JACOBIAN_CONTRACT == 23 &&
                   SCALAR_OP_JACOBIAN_CONTRACT_BACKWARD == 24 && SCALAR_OP_JACOBIAN_ROWS == 25 &&
                   SCALAR_OP_COUNT == 26,
               "model-layer op ids");

/* scalar_model_config, version 1: 40 bytes, no padding holes. */
AT(scalar_model_config, struct_size, 0);
AT(scalar_model_config, n_layer, 8);
AT(scalar_model_config, n_head, 12);
AT(scalar_model_config, n_embd, 16);
AT(scalar_model_config, d_mlp, 20);
AT(scalar_model_config, block_size, 24);
AT(scalar_model_config, vocab_size, 28);
AT(scalar_model_config, layer_norm_eps, 32);
AT(scalar_model_config, reserved0, 36);
_Static_assert(sizeof(scalar_model_config) == 40, "scalar_model_config v1 size");

/* scalar_model_trainer_options, version 1: 88 bytes, no padding holes. */
AT(scalar_model_trainer_options, struct_size, 0);
AT(scalar_model_trainer_options, batch, 8);
AT(scalar_model_trainer_options, seq, 16);
AT(scalar_model_trainer_options, grad_accum, 24);
AT(scalar_model_trainer_options, warmup_steps, 32);
AT(scalar_model_trainer_options, max_steps, 40);
AT(scalar_model_trainer_options, lr, 48);
AT(scalar_model_trainer_options, min_lr, 52);
AT(scalar_model_trainer_options, beta1, 56);
AT(scalar_model_trainer_options, beta2, 60);
AT(scalar_model_trainer_options, eps, 64);
AT(scalar_model_trainer_options, weight_decay, 68);
AT(scalar_model_trainer_options, grad_clip, 72);
AT(scalar_model_trainer_options, reserved0, 76);
_Static_assert(sizeof(scalar_model_trainer_options) == 80, "trainer options v1 size");
_Static_assert(SCALAR_HOOK_RESID_PRE == 0 && SCALAR_HOOK_RESID_MID == 1 &&
                   SCALAR_HOOK_RESID_POST == 2 && SCALAR_HOOK_MLP_IN == 3 &&
                   SCALAR_HOOK_MLP_OUT == 4 && SCALAR_HOOK_KIND_COUNT == 5 &&
                   SCALAR_WORKSPACE_GRAD == 1,
               "hook kinds");

/* scalar_sae_config, version 1: 48 bytes, no padding holes. */
AT(scalar_sae_config, struct_size, 0);
AT(scalar_sae_config, architecture, 8);
AT(scalar_sae_config, d_in, 12);
AT(scalar_sae_config, d_sae, 16);
AT(scalar_sae_config, k, 20);
AT(scalar_sae_config, apply_b_dec_to_input, 24);
AT(scalar_sae_config, reserved0, 28);
AT(scalar_sae_config, hook_name, 32);
AT(scalar_sae_config, seed, 40);
_Static_assert(sizeof(scalar_sae_config) == 48, "scalar_sae_config v1 size");
_Static_assert(SCALAR_SAE_TOPK == 0 && SCALAR_SAE_STANDARD == 1 && SCALAR_SAE_JUMPRELU == 2,
               "SAE architectures");
_Static_assert(SCALAR_SAE_GROUP_SHARE == 0 && SCALAR_SAE_GROUP_DETACH == 1, "group modes");
_Static_assert(SCALAR_JSAE_FF_LAYER == 0 && SCALAR_JSAE_FF_BLOCK == 1 && SCALAR_JSAE_SUM == 0 &&
                   SCALAR_JSAE_MEAN == 1,
               "JSAE constants");
_Static_assert(SCALAR_SAE_METRIC_L0 == 0 && SCALAR_SAE_METRIC_FVU == 1 && SCALAR_SAE_METRIC_MSE == 2 &&
                   SCALAR_SAE_METRIC_DEAD == 3 && SCALAR_SAE_METRIC_CE_CLEAN == 4 &&
                   SCALAR_SAE_METRIC_CE_SPLICED == 5 && SCALAR_SAE_METRIC_CE_INCREASE == 6 &&
                   SCALAR_SAE_METRIC_KL == 7 && SCALAR_SAE_METRIC_COUNT == 8,
               "metric indices");

/* scalar_sae_trainer_options, version 1: 56 bytes, no padding holes. */
AT(scalar_sae_trainer_options, struct_size, 0);
AT(scalar_sae_trainer_options, warmup_steps, 8);
AT(scalar_sae_trainer_options, max_steps, 16);
AT(scalar_sae_trainer_options, lr, 24);
AT(scalar_sae_trainer_options, min_lr, 28);
AT(scalar_sae_trainer_options, beta1, 32);
AT(scalar_sae_trainer_options, beta2, 36);
AT(scalar_sae_trainer_options, eps, 40);
AT(scalar_sae_trainer_options, weight_decay, 44);
AT(scalar_sae_trainer_options, grad_clip, 48);
AT(scalar_sae_trainer_options, renorm_decoder, 52);
_Static_assert(sizeof(scalar_sae_trainer_options) == 56, "SAE trainer options v1 size");

/* The evaluator: frozen constants and scalar_evaluator_options version 1 (56 bytes). */
_Static_assert(SCALAR_PATH_FF_LAYER == 0 && SCALAR_PATH_FF_BLOCK == 1 && SCALAR_PATH_BLOCK == 2 &&
                   SCALAR_PATH_COUNT == 3,
               "path ids");
_Static_assert(SCALAR_ATTR_GRADIENT_PATH == 0 && SCALAR_ATTR_JACOBIAN == 1, "attribution ids");
_Static_assert(SCALAR_QUIRK_TIES == 1 && SCALAR_QUIRK_S1_ZERO == 2 &&
                   SCALAR_QUIRK_NORM_WEIGHT == 4 && SCALAR_QUIRK_CURVE_TOPK == 8 &&
                   SCALAR_QUIRK_FULL_CIRCUIT == 16 && SCALAR_QUIRK_GRID == 32 &&
                   SCALAR_QUIRKS_PARITY == 63,
               "quirk bits");
_Static_assert(SCALAR_CURVE_KL == 0 && SCALAR_CURVE_KL_FULL == 1, "curve ids");
_Static_assert(SCALAR_SCORE_S_ABS == 0 && SCALAR_SCORE_S_REL == 2 && SCALAR_SCORE_FULL_KL == 6 &&
                   SCALAR_SCORE_EVAL_TOKENS == 9 && SCALAR_SCORE_COUNT == 10,
               "score ids");
AT(scalar_evaluator_options, struct_size, 0);
AT(scalar_evaluator_options, quirks, 8);
AT(scalar_evaluator_options, attribution, 12);
AT(scalar_evaluator_options, steps, 16);
AT(scalar_evaluator_options, bootstrap, 20);
AT(scalar_evaluator_options, confidence, 24);
AT(scalar_evaluator_options, seed, 32);
AT(scalar_evaluator_options, rank_seed, 40);
AT(scalar_evaluator_options, batch, 48);
AT(scalar_evaluator_options, reserved0, 52);
_Static_assert(sizeof(scalar_evaluator_options) == 56, "evaluator options v1 size");

int main(void)
{
    int bad = 0;
    /* The run-time twins agree with the compile-time view. */
    if (scalar_ctx_options_size() != sizeof(scalar_ctx_options)) {
        puts("abi: scalar_ctx_options_size differs from sizeof");
        bad = 1;
    }
    if (scalar_allocator_size() != sizeof(scalar_allocator)) {
        puts("abi: scalar_allocator_size differs from sizeof");
        bad = 1;
    }
    if (scalar_dataset_options_size() != sizeof(scalar_dataset_options)) {
        puts("abi: scalar_dataset_options_size differs from sizeof");
        bad = 1;
    }
    if (scalar_model_config_size() != sizeof(scalar_model_config) ||
        scalar_model_trainer_options_size() != sizeof(scalar_model_trainer_options)) {
        puts("abi: model struct sizes differ from sizeof");
        bad = 1;
    }
    if (scalar_sae_config_size() != sizeof(scalar_sae_config) ||
        scalar_sae_trainer_options_size() != sizeof(scalar_sae_trainer_options)) {
        puts("abi: scalar_sae_config_size differs from sizeof");
        bad = 1;
    }
    if (scalar_evaluator_options_size() != sizeof(scalar_evaluator_options)) {
        puts("abi: scalar_evaluator_options_size differs from sizeof");
        bad = 1;
    }
    if (scalar_ascii_vocab_size() != SCALAR_ASCII_VOCAB_SIZE) {
        puts("abi: scalar_ascii_vocab_size differs from SCALAR_ASCII_VOCAB_SIZE");
        bad = 1;
    }
    if (scalar_abi_version() != SCALAR_ABI_VERSION || scalar_version() != SCALAR_VERSION_NUMBER) {
        puts("abi: version functions differ from version.h");
        bad = 1;
    }
    if (scalar_max_dims() != SCALAR_MAX_DIMS) {
        puts("abi: scalar_max_dims differs from SCALAR_MAX_DIMS");
        bad = 1;
    }
    /* structinit: the function fills exactly what a zeroed struct plus the
     * documented defaults would hold. */
    scalar_ctx_options a, b;
    memset(&a, 0x5A, sizeof a);
    memset(&b, 0, sizeof b);
    scalar_ctx_options_init(&a, sizeof a);
    b.struct_size = sizeof b;
    b.seed = 0x5CA1A8u;
    b.log_level = SCALAR_LOG_WARN;
    if (memcmp(&a, &b, sizeof a) != 0) {
        puts("abi: scalar_ctx_options_init differs from the documented defaults");
        bad = 1;
    }
    scalar_dataset_options da, db;
    memset(&da, 0x5A, sizeof da);
    memset(&db, 0, sizeof db);
    scalar_dataset_options_init(&da, sizeof da);
    db.struct_size = sizeof db;
    db.val_fraction = 0.1;
    db.split_multiple = 256;
    db.format = SCALAR_DATA_AUTO;
    db.vocab = 0;
    if (memcmp(&da, &db, sizeof da) != 0) {
        puts("abi: scalar_dataset_options_init differs from the documented defaults");
        bad = 1;
    }
    for (int32_t d = 0; d < SCALAR_DTYPE_COUNT; d++)
        if (!scalar_dtype_name(d) || scalar_dtype_size(d) == 0) {
            printf("abi: dtype %d has no name or size\n", d);
            bad = 1;
        }
    return bad;
}
