/*
 * sae_jsae.h - the Jacobian penalty of JSAE pairs (sae_jsae.c), used by the
 * trainer (sae_train.c).  Never installed.
 */
#ifndef SCALAR_SAE_JSAE_H
#define SCALAR_SAE_JSAE_H

#include "sae_internal.h"

/* Most tokens per block. */
#define JSAE_BLOCK 1024
/* The largest k of a JSAE SAE (per-token index arrays live on the stack). */
#define SCALAR__JSAE_MAX_K 256

/* Scratch shared by the pairs of one trainer (sized at the first pair). */
typedef struct scalar__jsae {
    int64_t C, F, max_tokens, max_k, blk;
    int32_t n_threads;
    float *z, *g;          /* [max_tokens, F] */
    float *ones;           /* [max_tokens, max(C, F)] */
    float *ln;             /* [max_tokens, C]: LN(x), then y = (x - mean) rstd */
    float *mean, *rstd;    /* [max_tokens] */
    float *block;          /* one block's operands (sae_jsae.c) */
    float *unit;           /* [blk * max_k] ones */
} scalar__jsae;

/* One pair's penalty pass. */
typedef struct scalar__jsae_call {
    scalar__jsae *js;
    scalar_ctx *ctx;
    int block;                    /* 1: FF block (LayerNorm Jacobian and skip path) */
    const float *x_in;            /* [n, C] the in-SAE's input (mlp_in or resid_mid) */
    const int32_t *idx_in, *idx_out; /* [n, k_in], [n, k_out] */
    int64_t k_in, k_out, n_in, n_out; /* n_*: the SAEs' latents */
    const float *W_dec_in;        /* [n_in, C] */
    const float *WeT;             /* [n_out, C] the out-SAE's W_enc^T */
    const float *W_fc, *b_fc;     /* [C, F], [F] */
    const float *W_proj;          /* [F, C] */
    const float *gamma, *beta;    /* ln_2, block only */
    float eps;
    float scale;                  /* d penalty / d|J| */
    float *grad_W_dec_in;         /* [n_in, C], accumulated */
    float *grad_WT_enc_out;       /* [n_out, C] transposed W_enc gradient, accumulated */
} scalar__jsae_call;

scalar_status scalar__jsae_alloc(scalar__jsae *js, scalar_ctx *ctx, int64_t max_tokens,
                                 int64_t C, int64_t F, int64_t max_k, int64_t max_latents,
                                 int32_t n_threads, const char *fn);
void scalar__jsae_free(scalar__jsae *js, scalar_ctx *ctx);
/* sum over tokens of sum |J| (unscaled) into *penalty; with grad, the scaled
 * gradient rows are added to the call's gradient buffers. */
scalar_status scalar__jsae_run(const scalar__jsae_call *c, int64_t n, int grad, double *penalty);

#endif
