/*
 * eval_path.c - the pieces the evaluator's steps share: SAE pre-activations
 * and top-k selection under either rule, decodes, and the three paths
 * (docs/evaluator.md, "Paths" and "Encoding").  Shapes in eval_internal.h.
 */
#include <string.h>

#include "eval_internal.h"

#define TRY SCALAR_TRY

scalar_status scalar__ev_select(const scalar_evaluator *ev, float *rows, int64_t n, int64_t F,
                                int64_t k, int relu, int ties, ev_codes *out, float *tv,
                                int32_t *ti)
{
    int64_t kc = out->kc, kk = ties ? (kc + 1 < F ? kc + 1 : F) : k;
    if (relu) {
        for (int64_t e = 0; e < n * F; e++)
            rows[e] = rows[e] > 0.0f ? rows[e] : 0.0f;
    }
    TRY(scalar_backend_topk_rows(ev->be, tv, ti, rows, n, F, kk));
    for (int64_t t = 0; t < n; t++) {
        const float *v = tv + t * kk;
        const int32_t *ix = ti + t * kk;
        float *ov = out->val + t * kc;
        int32_t *oi = out->idx + t * kc;
        int64_t m = 0, keep = k;
        if (ties) {
            float kth = v[k - 1];
            while (keep < kk && v[keep] >= kth)
                keep++;
            if (keep > kc && kth != 0.0f)
                return scalar__error_set(SCALAR_E_NUMERIC,
                                         "scalar_evaluator: more than %lld codes tie at the "
                                         "k-th value %g of a token",
                                         (long long)kc, (double)kth);
        }
        for (int64_t q = 0; q < keep; q++) {
            if (v[q] != 0.0f && m < kc) {
                ov[m] = v[q];
                oi[m++] = ix[q];
            }
        }
        for (; m < kc; m++) {
            ov[m] = 0.0f;
            oi[m] = -1;
        }
    }
    return SCALAR_OK;
}

scalar_status scalar__ev_preact(const scalar_evaluator *ev, const scalar_sae *s, const float *x,
                                int64_t n, float *xc, float *pre)
{
    int64_t C = ev->C, F = s->cfg.d_sae;
    const float *in = x;
    if (s->cfg.apply_b_dec_to_input) {
        for (int64_t t = 0; t < n; t++)
            for (int64_t c = 0; c < C; c++)
                xc[t * C + c] = x[t * C + c] - s->b_dec[c];
        in = xc;
    }
    TRY(scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n, F, C, 1.0f, in, C,
                             s->W_enc, s->ld_enc, 0.0f, pre, F));
    return scalar_backend_bias_add(ev->be, pre, s->b_enc, n, F);
}

scalar_status scalar__ev_decode_u(const scalar_evaluator *ev, const ev_codes *z, int64_t n,
                                  float alpha, float *vals_scratch, float *x)
{
    const float *vals = z->val;
    if (alpha != 1.0f) {
        for (int64_t e = 0; e < n * z->kc; e++)
            vals_scratch[e] = alpha * z->val[e];
        vals = vals_scratch;
    }
    return scalar_backend_sparse_decode(ev->be, x, vals, z->idx, ev->U->W_dec, ev->U->b_dec, n,
                                        z->kc, ev->FU, ev->C);
}

scalar_status scalar__ev_decode_d(const scalar_evaluator *ev, const ev_codes *c, int64_t n,
                                  float *xhat)
{
    return scalar_backend_sparse_decode(ev->be, xhat, c->val, c->idx, ev->D->W_dec, ev->D->b_dec,
                                        n, c->kc, ev->FD, ev->C);
}

scalar_status scalar__ev_token_path(const scalar_evaluator *ev, const float *x, int64_t n,
                                    float *y, float *h, float *act, float *ln, float *mean,
                                    float *rstd)
{
    const scalar_model *m = ev->model;
    const scalar__layer_weights *p = &m->w.layer[ev->layer];
    int64_t C = ev->C, Fm = ev->Fm;
    const float *in = x;
    if (ev->path == SCALAR_PATH_FF_BLOCK) {
        TRY(scalar_backend_layernorm_forward(ev->be, ln, mean, rstd, x, p->ln2_w, p->ln2_b, n, C,
                                             m->cfg.layer_norm_eps));
        in = ln;
    }
    TRY(scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n, Fm, C, 1.0f, in, C,
                             p->fc_w, Fm, 0.0f, h, Fm));
    TRY(scalar_backend_bias_add(ev->be, h, p->fc_b, n, Fm));
    TRY(scalar_backend_gelu_forward(ev->be, act, h, n * Fm));
    TRY(scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n, C, Fm, 1.0f, act, Fm,
                             p->mlp_proj_w, C, 0.0f, y, C));
    TRY(scalar_backend_bias_add(ev->be, y, p->mlp_proj_b, n, C));
    if (ev->path == SCALAR_PATH_FF_BLOCK)
        TRY(scalar_backend_add(ev->be, y, y, x, n * C));
    return SCALAR_OK;
}

scalar_status scalar__ev_path(scalar_evaluator *ev, const float *x, int64_t B, int64_t T,
                              float *y, float *h, float *act, float *ln, float *mean,
                              float *rstd)
{
    if (!ev_is_block(ev))
        return scalar__ev_token_path(ev, x, B * T, y, h, act, ln, mean, rstd);
    int64_t C = ev->C;
    for (int64_t b0 = 0; b0 < B; b0 += ev->max_B) {
        int64_t nb = B - b0 < ev->max_B ? B - b0 : ev->max_B;
        const float *out;
        TRY(scalar__model_block_forward(ev->model, ev->ws, ev->layer, x + b0 * T * C, nb, T,
                                        &out));
        memcpy(y + b0 * T * C, out, (size_t)(nb * T * C) * sizeof(float));
    }
    return SCALAR_OK;
}
