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
    float *data;
    int64_t n_params;
    float *W_enc, *b_enc, *W_dec, *b_dec, *threshold;
};

/* Check a caller's config (struct_size, ranges, reserved fields); `fn` names
 * the caller in messages.  On success *out holds a copy with struct_size =
 * sizeof and unknown tail fields dropped. */
scalar_status scalar__sae_config_check(scalar_sae_config *out, const scalar_sae_config *in,
                                       const char *fn);

/* Allocate an SAE for `cfg` (checked) with zeroed parameters. */
scalar_status scalar__sae_alloc(scalar_sae **out, scalar_ctx *ctx, const scalar_sae_config *cfg,
                                const char *fn);

/* The parameter called `name`, its element count in *n; NULL if unknown (or
 * `threshold` of a non-JumpReLU SAE). */
float *scalar__sae_param(const scalar_sae *sae, const char *name, int64_t *n);

#endif
