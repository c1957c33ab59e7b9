/*
 * sae_internal.h - the SAE handle's layout, shared by sae.c (configuration,
 * creation, parameters), sae_io.c (SAELens files) and sae_codes.c (encode,
 * decode).
 */
#ifndef SCALAR_SAE_INTERNAL_H
#define SCALAR_SAE_INTERNAL_H

#include "scalar/sae.h"

#include "../internal.h"

/* The size of the first version of scalar_sae_config: frozen, later fields append. */
#define SCALAR__SAE_CONFIG_V1_SIZE ((size_t)48)
/* Longest hook name kept (TransformerLens names are ~30 characters). */
#define SCALAR__SAE_HOOK_MAX 255

/* Parameters, one allocation, in this order:
 *   W_enc     [d_in, d_sae]
 *   b_enc     [d_sae]
 *   W_dec     [d_sae, d_in]
 *   b_dec     [d_in]
 *   threshold [d_sae]        JumpReLU only (n_params counts it only then) */
struct scalar_sae {
    scalar_ctx *ctx;
    scalar_sae_config cfg; /* struct_size = sizeof; hook_name points at `hook` or is NULL */
    char hook[SCALAR__SAE_HOOK_MAX + 1];
    float *data;           /* owned; NULL for a group member's view */
    int64_t n_params;
    float *W_enc, *b_enc, *W_dec, *b_dec, *threshold;
    int64_t ld_enc;        /* row stride of W_enc: d_sae, or the group's n_max */
    scalar_sae_group *group; /* a member's group (a reference), else NULL */
};

/* An SAE folder's cfg.json and sae_weights.safetensors paths (buffers of
 * SCALAR__SAE_PATH_LEN); SCALAR_E_INVALID_ARG if `dir` is too long. */
#define SCALAR__SAE_PATH_LEN 4096
scalar_status scalar__sae_folder_paths(const char *dir, char *cfg_path, char *weights_path,
                                      const char *fn);

/* Groups hold at most this many members. */
#define SCALAR__GROUP_MAX_MEMBERS 64

/* Parameters, one allocation, in this order:
 *   W_enc [d_in, n_max], W_dec [n_max, d_in],
 *   then per member j: b_enc_j [n_j], b_dec_j [d_in] */
struct scalar_sae_group {
    int32_t refcount;      /* atomic: the caller plus one per member view and trainer */
    scalar_ctx *ctx;       /* retained */
    int32_t d_in, k, n_members, mode, apply_b_dec_to_input;
    int32_t sizes[SCALAR__GROUP_MAX_MEMBERS];
    char (*hooks)[SCALAR__SAE_HOOK_MAX + 1]; /* [n_members], "" for none */
    uint64_t seed;
    float *data;
    int64_t n_params;
    float *W_enc, *W_dec;
    float *b_enc[SCALAR__GROUP_MAX_MEMBERS], *b_dec[SCALAR__GROUP_MAX_MEMBERS];
};

/* The largest member's size. */
static inline int64_t scalar__group_n_max(const scalar_sae_group *g)
{
    return g->sizes[g->n_members - 1];
}

/* Offset (floats) and size of the group tensor `name` (W_enc, W_dec, b_enc.{j},
 * b_dec.{j}) in the parameter layout; -1 if unknown. */
int64_t scalar__group_tensor(const scalar_sae_group *g, const char *name, int64_t *n,
                             int64_t shape[2], int32_t *ndim);
void scalar__group_retain(scalar_sae_group *g);

/* Encode n tokens of x with a TopK SAE (member views included) into values /
 * indices [n, k].  xc, if not NULL, receives the encoder input [n, d_in]
 * (x - b_dec, or x); scratch holds scalar__sae_encode_scratch(s, n) floats.
 * No allocation. */
scalar_status scalar__sae_encode_topk(const scalar_sae *s, const float *x, int64_t n,
                                      float *values, int32_t *indices, float *xc, float *scratch);
int64_t scalar__sae_encode_scratch(const scalar_sae *s, int64_t n);

/* Check a caller's config (struct_size, ranges, reserved fields); `fn` names
 * the caller in messages.  On success *out holds a copy with struct_size =
 * sizeof and unknown tail fields dropped. */
scalar_status scalar__sae_config_check(scalar_sae_config *out, const scalar_sae_config *in,
                                       const char *fn);

/* Allocate an SAE for `cfg` (checked) with zeroed parameters. */
scalar_status scalar__sae_alloc(scalar_sae **out, scalar_ctx *ctx, const scalar_sae_config *cfg,
                                const char *fn);

/* SPEC.md's initialisation of W_dec [d_sae, d_in] and W_enc = W_dec^T
 * (row stride ld_enc) from the context seed and `seed`. */
void scalar__sae_init_weights(const scalar_ctx *ctx, uint64_t seed, int64_t d_in, int64_t d_sae,
                              float *W_enc, int64_t ld_enc, float *W_dec);

/* The parameter called `name`, its element count in *n; NULL if unknown (or
 * `threshold` of a non-JumpReLU SAE). */
float *scalar__sae_param(const scalar_sae *sae, const char *name, int64_t *n);

#endif
