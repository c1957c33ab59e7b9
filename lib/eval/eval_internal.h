/*
 * eval_internal.h - the SCALAR evaluator's handle, shared by evaluator.c
 * (handle, ranking, grid, bootstrap, scores), eval_path.c (encodes and the
 * paths), eval_attr.c (step 1) and eval_curve.c (step 3).  Never installed.
 *
 * Dimension legend:
 *   B sequences per chunk;  T tokens per sequence;  n = B*T
 *   C n_embd (both SAEs' d_in);  Fm d_mlp
 *   FU, FD latents of the upstream / downstream SAE;  kU, kD their k
 *   kcU, kcD code slots per token (2k: room for parity's ties)
 * docs/evaluator.md defines every quantity.
 */
#ifndef SCALAR_EVAL_INTERNAL_H
#define SCALAR_EVAL_INTERNAL_H

#include <math.h>

#include "scalar/eval.h"

#include "../model/model_internal.h"
#include "../sae/sae_internal.h"

struct scalar_evaluator {
    scalar_ctx *ctx;           /* the model's */
    scalar_model *model;       /* retained */
    scalar_backend *be;
    const scalar_sae *U, *D;   /* borrowed */
    int32_t path, layer, n_threads;
    int32_t hook_u, hook_d;    /* SCALAR_HOOK_* kinds at `layer` */
    scalar_evaluator_options opt;
    int64_t C, Fm, FU, FD, kU, kD, kcU, kcD;
    int64_t max_B, T_max;      /* chunk of sequences, block_size */
    scalar_model_workspace *ws; /* max_B x T_max, with gradient buffers for the block path */
    float *CT;                 /* [FD, Fm]: row j = W_proj W_enc_D[:, j] (per-token paths) */
    float *WdT;                /* [FD, C]: row j = W_enc_D[:, j] */
    float *ones;               /* [max_B * T_max * Fm] ones (gelu' through gelu_backward) */
    /* the factored per-token path of the curve (eval_curve.c) */
    float *G;                  /* [C, Fm]: W_fc, or diag(ln_2 w) W_fc on the FF block */
    float *hb;                 /* [Fm]: b_dec_U W_fc + b_fc (FF layer); b_dec_U G (FF block) */
    float *sG, *c2;            /* [Fm]: column sums of G; ln_2 b W_fc + b_fc (FF block) */
    float *cj;                 /* [FD]: (b_proj - b_dec_D) . W_enc_D[:, j] + b_enc_D[j] */
    /* step 1 */
    double *A2;                /* [FU * FD] sums of squares */
    double *M;                 /* [FD, C, C] quadratic forms (dense weighting), or NULL */
    unsigned char *M_used;     /* [FD] */
    int64_t attr_tokens;
    /* steps 3 and 4 */
    int64_t n_grid, *grid;     /* [n_grid] */
    int64_t eval_tokens;
    float *kl_tok[2];          /* [n_grid, eval_tokens] per curve */
    double *mean[2], *lo[2], *hi[2]; /* [n_grid] per curve */
    double scores[SCALAR_SCORE_COUNT];
    int have_curve;
};

/* Sparse codes of n tokens: kc slots per token, index -1 = empty; only
 * non-zero values are stored. */
typedef struct ev_codes {
    float *val;
    int32_t *idx;
    int64_t kc;
} ev_codes;

static inline int ev_quirk(const scalar_evaluator *ev, uint32_t q)
{
    return (ev->opt.quirks & q) != 0;
}

/* 1 on the transformer-block path (positions mix), 0 on the per-token ones. */
static inline int ev_is_block(const scalar_evaluator *ev)
{
    return ev->path == SCALAR_PATH_BLOCK;
}

/* log(sum_v exp(row[v])) of one row of V logits, in double (max-shifted). */
static inline double scalar__ev_logsumexp(const float *row, int64_t V)
{
    double mx = row[0], s = 0.0;
    for (int64_t v = 1; v < V; v++)
        mx = row[v] > mx ? row[v] : mx;
    for (int64_t v = 0; v < V; v++)
        s += exp((double)row[v] - mx);
    return mx + log(s);
}

/* ---- eval_path.c ---- */

/* Keep per row of `rows` [n, F] (ReLU first when relu): exactly k (clean) or
 * every entry >= the k-th largest (ties), dropping zeros, into out [n, kc].
 * tv/ti: scratch [n, kc + 1].  SCALAR_E_NUMERIC when ties overflow kc. */
scalar_status scalar__ev_select(const scalar_evaluator *ev, float *rows, int64_t n, int64_t F,
                                int64_t k, int relu, int ties, ev_codes *out, float *tv,
                                int32_t *ti);
/* pre [n, F] = (x - b_dec) W_enc + b_enc of SAE s (xc scratch [n, C]). */
scalar_status scalar__ev_preact(const scalar_evaluator *ev, const scalar_sae *s, const float *x,
                                int64_t n, float *xc, float *pre);
/* x [n, C] = b_dec_U + alpha * sum z W_dec_U. */
scalar_status scalar__ev_decode_u(const scalar_evaluator *ev, const ev_codes *z, int64_t n,
                                  float alpha, float *vals_scratch, float *x);
/* Per-token paths: y [n, C] = path(x); h [n, Fm] the MLP's pre-activation,
 * act [n, Fm] scratch; FF block: ln [n, C], mean, rstd [n] (else NULL). */
scalar_status scalar__ev_token_path(const scalar_evaluator *ev, const float *x, int64_t n,
                                    float *y, float *h, float *act, float *ln, float *mean,
                                    float *rstd);
/* path(x) for B sequences of T (any path): y [B*T, C]; scratch as above. */
scalar_status scalar__ev_path(scalar_evaluator *ev, const float *x, int64_t B, int64_t T,
                              float *y, float *h, float *act, float *ln, float *mean,
                              float *rstd);
/* r [n, FD] = (y - b_dec_D) W_enc_D + b_enc_D (yc scratch [n, C]). */
static inline scalar_status scalar__ev_preact_d(const scalar_evaluator *ev, const float *y,
                                                int64_t n, float *yc, float *r)
{
    return scalar__ev_preact(ev, ev->D, y, n, yc, r);
}
/* x_hat [n, C] of codes c with D. */
scalar_status scalar__ev_decode_d(const scalar_evaluator *ev, const ev_codes *c, int64_t n,
                                  float *xhat);

/* ---- evaluator.c ---- */
/* The edge order (flat indices) of the current scores into out [FU*FD]. */
scalar_status scalar__ev_rank(const scalar_evaluator *ev, int64_t *out);
/* Free the curve's results; have_curve 0. */
void scalar__ev_drop_curve(scalar_evaluator *ev);
/* Step 4 from ev->kl_tok: means, bootstrap intervals, scores; sets have_curve. */
scalar_status scalar__ev_finish_curve(scalar_evaluator *ev);

#endif
