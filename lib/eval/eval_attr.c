/*
 * eval_attr.c - step 1 of SCALAR: the edge scores A [FU, FD]
 * (docs/evaluator.md).
 *
 * For downstream latent j, token t and point p_s, the gradient of F_j with
 * respect to the upstream codes is `W_dec_U u` with u = J_path^T W_enc_D[:, j]
 * (a C-vector; zero where D's top-k does not keep j or its value is 0).  Only
 * those u are computed:
 *   per-token paths: u = W_fc (g_s (.) c_j) with c_j = W_proj W_enc_D[:, j]
 *     precomputed (CT) and g_s = gelu' at the token's MLP pre-activation,
 *     as one GEMM over every kept (token, j) row: the `A diag(g) B`
 *     contraction; the FF block adds LayerNorm's transposed Jacobian and the
 *     skip path W_enc_D[:, j];
 *   the transformer block: the block is h = x + attn(ln_1(x)), then the FF
 *     block.  The seed of j sits only at the few positions where D keeps j;
 *     its FF-block part is the per-token u above (at h), and the attention
 *     part is a vector-Jacobian product with those few seed rows: per seed
 *     row and head, O(T C) work against the forward's stored probabilities
 *     and q/k/v, then LayerNorm's transposed Jacobian on the rows <= the last
 *     seed (causality).  One pass per (j, sequence) where j is kept, summed
 *     over the points; latents in parallel (each thread owns its j's).
 * The u of one (token, j) are summed over the points, then
 *   clean gradient path:  A2[i, j] += (z_i / S  W_dec_U[i] . u)^2 for the
 *                         token's active i (z_i = 0 elsewhere);
 *   parity (||z|| / S) and the plain Jacobian: the weight w_t is one scalar
 *     per token, so A2[:, j] += diag(W_dec_U (sum_t w_t^2 u u^T) W_dec_U^T):
 *     the C x C forms M_j accumulate and fold into A2 at the end of the call.
 */
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "eval_internal.h"

#define TRY SCALAR_TRY

typedef struct abuf {
    int64_t n, S, slots;          /* tokens of a chunk, points, slots per token (S * kcD) */
    float *act, *xc, *pre, *tv, *x, *y, *h, *a, *ln, *mean, *rstd, *g, *vs, *znorm;
    int32_t *ti;
    ev_codes z, dc;               /* [n, kcU], [S][n, kcD] (dc.val/idx hold S blocks) */
    int32_t *slot_j, *slot_n;     /* [n, slots], [n] */
    float *usum;                  /* [n, slots, C] */
    int32_t *row_t, *row_s;       /* [n * kcD] */
    float *uv, *xg, *mg, *rg, *dx; /* [n*kcD, C], [.., C], [..], [..], [.., C] */
    int32_t *ent_off, *ent;       /* [FD + 1], [entries]: entries grouped by j */
    int32_t *row_j;               /* [n * kcD] the latent of each row */
    /* block path, per point s: */
    float *xs, *qkv, *att, *l1m, *l1r; /* [S][n, C], [S][n, 3C], [S][B, H, T, T], [S][n] x 2 */
    float *vrow;                  /* [S][n, kcD, C]: J_ffblock^T W_enc_D[:, j] at kept slots */
    float *tscr;                  /* [threads][2 T C + 4 C + T] per-thread scratch */
} abuf;

static void abuf_free(scalar_ctx *ctx, abuf *b)
{
    void *p[] = {b->act, b->xc, b->pre, b->tv, b->x, b->y, b->h, b->a, b->ln, b->mean, b->rstd,
                 b->g, b->vs, b->znorm, b->ti, b->z.val, b->z.idx, b->dc.val, b->dc.idx,
                 b->slot_j, b->slot_n, b->usum, b->row_t, b->row_s, b->uv, b->xg,
                 b->mg, b->rg, b->dx, b->ent_off, b->ent, b->row_j, b->xs, b->qkv, b->att,
                 b->l1m, b->l1r, b->vrow, b->tscr};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        scalar__free(ctx, p[i]);
}

static scalar_status abuf_alloc(const scalar_evaluator *ev, abuf *b, int64_t n, int64_t T,
                                int64_t S)
{
    scalar_ctx *ctx = ev->ctx;
    int64_t C = ev->C, Fm = ev->Fm, F = ev->FU > ev->FD ? ev->FU : ev->FD;
    int64_t kc = ev->kcU > ev->kcD ? ev->kcU : ev->kcD, R = n * ev->kcD;
    memset(b, 0, sizeof *b);
    b->n = n;
    b->S = S;
    b->slots = S * ev->kcD;
    b->z.kc = ev->kcU;
    b->dc.kc = ev->kcD;
#define A(p, cnt, T) (p = scalar__alloc(ctx, (size_t)(cnt) * sizeof(T), "attribution buffers"))
    int ok = A(b->act, n * C, float) && A(b->xc, n * C, float) && A(b->pre, n * F, float) &&
             A(b->tv, n * (kc + 1), float) && A(b->ti, n * (kc + 1), int32_t) &&
             A(b->x, n * C, float) && A(b->y, n * C, float) && A(b->h, n * Fm, float) &&
             A(b->a, n * Fm, float) && A(b->ln, n * C, float) && A(b->mean, n, float) &&
             A(b->rstd, n, float) && A(b->g, n * Fm, float) && A(b->vs, n * ev->kcU, float) &&
             A(b->znorm, n, float) && A(b->z.val, n * ev->kcU, float) &&
             A(b->z.idx, n * ev->kcU, int32_t) && A(b->dc.val, S * n * ev->kcD, float) &&
             A(b->dc.idx, S * n * ev->kcD, int32_t);
    if (ok)
        ok = A(b->row_t, R, int32_t) && A(b->row_s, R, int32_t) && A(b->row_j, R, int32_t) &&
             A(b->uv, R * C, float) && A(b->xg, R * C, float) &&
             A(b->mg, R, float) && A(b->rg, R, float) && A(b->dx, R * C, float) &&
             A(b->ent_off, ev->FD + 1, int32_t);
    if (ok && !ev_is_block(ev))
        ok = A(b->slot_j, n * b->slots, int32_t) && A(b->slot_n, n, int32_t) &&
             A(b->usum, n * b->slots * C, float) && A(b->ent, n * b->slots, int32_t);
    if (ok && ev_is_block(ev)) {
        int64_t H = ev->model->cfg.n_head, B = n / T;
        ok = A(b->xs, S * n * C, float) && A(b->qkv, S * n * 3 * C, float) &&
             A(b->att, S * B * H * T * T, float) && A(b->l1m, S * n, float) &&
             A(b->l1r, S * n, float) && A(b->vrow, S * n * ev->kcD * C, float) &&
             A(b->ent, S * n * ev->kcD, int32_t) &&
             A(b->tscr, ev->n_threads * (2 * T * C + 4 * C + T), float);
    }
#undef A
    if (!ok) {
        abuf_free(ctx, b);
        return SCALAR_E_NOMEM;
    }
    return SCALAR_OK;
}

/* The attribution points: alpha_s and the number of points. */
static int64_t points(const scalar_evaluator *ev, float *alpha)
{
    if (ev->opt.attribution == SCALAR_ATTR_JACOBIAN) {
        alpha[0] = 1.0f;
        return 1;
    }
    int64_t S = ev->opt.steps;
    if (S == 1) {
        alpha[0] = ev_quirk(ev, SCALAR_QUIRK_S1_ZERO) ? 0.0f : 1.0f;
        return 1;
    }
    for (int64_t s = 0; s < S; s++)
        alpha[s] = (float)((double)s / (double)(S - 1));
    return S;
}

/* Add one (token, j) gradient sum u [C] (token t of the chunk). */
static void accumulate(scalar_evaluator *ev, const abuf *b, int64_t t, int64_t j, const float *u)
{
    int64_t C = ev->C;
    if (ev->M) {
        float w = ev->opt.attribution == SCALAR_ATTR_JACOBIAN ? 1.0f
                                                              : b->znorm[t] / (float)b->S;
        double w2 = (double)w * w, *M = ev->M + j * C * C;
        for (int64_t c = 0; c < C; c++) {
            double uc = w2 * u[c], *Mc = M + c * C;
#pragma omp simd
            for (int64_t d = 0; d < C; d++)
                Mc[d] += uc * u[d];
        }
        ev->M_used[j] = 1;
        return;
    }
    const float *zv = b->z.val + t * ev->kcU;
    const int32_t *zi = b->z.idx + t * ev->kcU;
    for (int64_t q = 0; q < ev->kcU; q++) {
        if (zi[q] < 0)
            continue;
        const float *wd = ev->U->W_dec + (int64_t)zi[q] * C;
        double dot = 0.0;
#pragma omp simd reduction(+ : dot)
        for (int64_t c = 0; c < C; c++)
            dot += (double)wd[c] * u[c];
        double v = (double)zv[q] / (double)b->S * dot;
        ev->A2[(int64_t)zi[q] * ev->FD + j] += v * v;
    }
}

/* Fold the forms M_j into A2: A2[i, j] += W_dec_U[i] M_j W_dec_U[i]^T, in
 * double: a small score is a difference of large terms in float, and the
 * order of small scores (and whether one is zero) matters to the ranking. */
static scalar_status fold_forms(scalar_evaluator *ev)
{
    if (!ev->M)
        return SCALAR_OK;
    int64_t C = ev->C, FU = ev->FU, FD = ev->FD;
    int32_t nt = ev->n_threads;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
    for (int64_t j = 0; j < FD; j++) {
        if (!ev->M_used[j])
            continue;
        double *M = ev->M + j * C * C;
        for (int64_t i = 0; i < FU; i++) {
            const float *w = ev->U->W_dec + i * C;
            double s = 0.0;
            for (int64_t c = 0; c < C; c++) {
                const double *Mc = M + c * C;
                double a = 0.0;
#pragma omp simd reduction(+ : a)
                for (int64_t d = 0; d < C; d++)
                    a += Mc[d] * w[d];
                s += a * w[c];
            }
            ev->A2[i * FD + j] += s > 0.0 ? s : 0.0;
        }
        memset(M, 0, (size_t)(C * C) * sizeof(double));
        ev->M_used[j] = 0;
    }
    return SCALAR_OK;
}

/* D's kept codes of the path output y at one point (positive values only). */
static scalar_status downstream_codes(scalar_evaluator *ev, abuf *b, const float *y, int64_t n,
                                      int64_t s)
{
    ev_codes dc = {b->dc.val + s * n * ev->kcD, b->dc.idx + s * n * ev->kcD, ev->kcD};
    TRY(scalar__ev_preact_d(ev, y, n, b->xc, b->pre));
    return scalar__ev_select(ev, b->pre, n, ev->FD, ev->kD, 1, ev_quirk(ev, SCALAR_QUIRK_TIES),
                             &dc, b->tv, b->ti);
}

static int32_t find_slot(abuf *b, int64_t t, int32_t j)
{
    int32_t *sj = b->slot_j + t * b->slots;
    for (int32_t q = 0; q < b->slot_n[t]; q++)
        if (sj[q] == j)
            return q;
    sj[b->slot_n[t]] = j;
    return b->slot_n[t]++;
}

/* The (token, latent) pairs D keeps at point s, as rows: row_t, row_j, and
 * row_s, the token's sum slot of the latent (slots) or its code slot. */
static int64_t kept_rows(const scalar_evaluator *ev, abuf *b, int64_t s, int slots)
{
    int64_t n = b->n, kcD = ev->kcD, R = 0;
    const int32_t *di = b->dc.idx + s * n * kcD;
    for (int64_t t = 0; t < n; t++)
        for (int64_t q = 0; q < kcD; q++)
            if (di[t * kcD + q] >= 0) {
                b->row_t[R] = (int32_t)t;
                b->row_j[R] = di[t * kcD + q];
                b->row_s[R++] = slots ? find_slot(b, t, di[t * kcD + q]) : (int32_t)q;
            }
    return R;
}

/* u rows = J^T W_enc_D[:, j] of the per-token path for R rows (token row_t,
 * latent row_j) into *out [R, C]: the MLP part by the backend's
 * `A diag(g) B` rows (scalar_backend_jacobian_rows); with ffb, LayerNorm ln_2's transposed Jacobian at x
 * (mean, rstd per token) and the skip path. */
static scalar_status jac_rows(scalar_evaluator *ev, abuf *b, int64_t R, const float *g,
                              const float *x, const float *mean, const float *rstd, int ffb,
                              const float **out)
{
    const scalar__layer_weights *p = &ev->model->w.layer[ev->layer];
    int64_t C = ev->C, Fm = ev->Fm;
    TRY(scalar_backend_jacobian_rows(ev->be, b->uv, ev->CT, b->row_j, g, b->row_t, p->fc_w, R,
                                     ev->FD, b->n, Fm, C));
    *out = b->uv;
    if (!ffb)
        return SCALAR_OK;
    for (int64_t r = 0; r < R; r++) {
        int64_t t = b->row_t[r];
        memcpy(b->xg + r * C, x + t * C, (size_t)C * sizeof(float));
        b->mg[r] = mean[t];
        b->rg[r] = rstd[t];
        memcpy(b->dx + r * C, ev->WdT + (int64_t)b->row_j[r] * C, (size_t)C * sizeof(float));
    }
    TRY(scalar_backend_layernorm_backward(ev->be, b->dx, NULL, NULL, b->uv, b->xg, p->ln2_w,
                                          b->mg, b->rg, R, C));
    *out = b->dx;
    return SCALAR_OK;
}

/* Per-token paths: every point, then the sums per (token, j). */
static scalar_status attr_tokens(scalar_evaluator *ev, abuf *b, const float *alpha)
{
    int64_t n = b->n, C = ev->C, Fm = ev->Fm, nt = ev->n_threads;
    int ffb = ev->path == SCALAR_PATH_FF_BLOCK;
    memset(b->slot_n, 0, (size_t)n * sizeof(int32_t));
    memset(b->usum, 0, (size_t)(n * b->slots * C) * sizeof(float));
    for (int64_t s = 0; s < b->S; s++) {
        TRY(scalar__ev_decode_u(ev, &b->z, n, alpha[s], b->vs, b->x));
        TRY(scalar__ev_token_path(ev, b->x, n, b->y, b->h, b->a, b->ln, b->mean, b->rstd));
        TRY(downstream_codes(ev, b, b->y, n, s));
        memset(b->g, 0, (size_t)(n * Fm) * sizeof(float));
        TRY(scalar_backend_gelu_backward(ev->be, b->g, b->h, ev->ones, n * Fm));
        int64_t R = kept_rows(ev, b, s, 1);
        if (R == 0)
            continue;
        const float *u;
        TRY(jac_rows(ev, b, R, b->g, b->x, b->mean, b->rstd, ffb, &u));
        for (int64_t r = 0; r < R; r++) {
            float *dst = b->usum + ((int64_t)b->row_t[r] * b->slots + b->row_s[r]) * C;
            for (int64_t c = 0; c < C; c++)
                dst[c] += u[r * C + c];
        }
    }
    /* group the (token, slot) sums by j, then one thread per j */
    memset(b->ent_off, 0, (size_t)(ev->FD + 1) * sizeof(int32_t));
    for (int64_t t = 0; t < n; t++)
        for (int32_t q = 0; q < b->slot_n[t]; q++)
            b->ent_off[b->slot_j[t * b->slots + q] + 1]++;
    for (int64_t j = 0; j < ev->FD; j++)
        b->ent_off[j + 1] += b->ent_off[j];
    for (int64_t t = 0; t < n; t++)
        for (int32_t q = 0; q < b->slot_n[t]; q++) {
            int32_t j = b->slot_j[t * b->slots + q];
            b->ent[b->ent_off[j]++] = (int32_t)(t * b->slots + q);
        }
    for (int64_t j = ev->FD; j > 0; j--)
        b->ent_off[j] = b->ent_off[j - 1];
    b->ent_off[0] = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nt > 1)
    for (int64_t j = 0; j < ev->FD; j++)
        for (int32_t e = b->ent_off[j]; e < b->ent_off[j + 1]; e++) {
            int64_t ts = b->ent[e];
            accumulate(ev, b, ts / b->slots, j, b->usum + ts * C);
        }
    return SCALAR_OK;
}

/* The attention half's VJP for the seed rows of one (j, sequence, point):
 * seeds at positions t_k with rows v_k [C] (gradients at h = resid_mid);
 * adds d/dx of every position <= the last seed into usum [T, C].
 * scr: 2 T C + 4 C + T floats. */
static void attn_vjp(const scalar_evaluator *ev, const abuf *b, int64_t s, int64_t sq, int64_t T,
                     const int32_t *tk, const float *const *vk, int64_t m, float *usum, float *scr)
{
    const scalar__layer_weights *p = &ev->model->w.layer[ev->layer];
    int64_t C = ev->C, H = ev->model->cfg.n_head, d = C / H, n = b->n, C3 = 3 * C;
    float scale = (float)(1.0 / sqrt((double)d));
    float *restrict dln = scr, *restrict go = scr + 2 * T * C, *restrict gv = go + C;
    float *restrict qk = gv + C, *restrict dq = qk + C, *restrict dS = dq + C;
    const float *qkv = b->qkv + (s * n + sq * T) * C3, *Wq = p->qkv_w, *Wo = p->attn_proj_w;
    int64_t tmax = 0;
    for (int64_t k = 0; k < m; k++)
        tmax = tk[k] > tmax ? tk[k] : tmax;
    memset(dln, 0, (size_t)((tmax + 1) * C) * sizeof(float));
    for (int64_t k = 0; k < m; k++) {
        int64_t t = tk[k];
        const float *v = vk[k];
        for (int64_t c = 0; c < C; c++)
            usum[t * C + c] += v[c]; /* the residual */
        for (int64_t e = 0; e < C; e++) { /* go = Wo v: the gradient at the attention output */
            float a = 0.0f;
            const float *We = Wo + e * C;
#pragma omp simd reduction(+ : a)
            for (int64_t c = 0; c < C; c++)
                a += We[c] * v[c];
            go[e] = a;
        }
        for (int64_t h = 0; h < H; h++) {
            int64_t o = h * d;
            const float *P = b->att + ((s * (n / T) + sq) * H + h) * T * T + t * T;
            const float *q = qkv + t * C3 + o;
            float sum = 0.0f;
            for (int64_t t2 = 0; t2 <= t; t2++) {
                const float *vv = qkv + t2 * C3 + 2 * C + o;
                float dp = 0.0f;
#pragma omp simd reduction(+ : dp)
                for (int64_t e = 0; e < d; e++)
                    dp += go[o + e] * vv[e];
                dS[t2] = dp;
                sum += P[t2] * dp;
            }
            for (int64_t t2 = 0; t2 <= t; t2++)
                dS[t2] = P[t2] * (dS[t2] - sum) * scale;
            for (int64_t c = 0; c < C; c++) {
                const float *w = Wq + c * C3 + o;
                float av = 0.0f, ak = 0.0f;
#pragma omp simd reduction(+ : av, ak)
                for (int64_t e = 0; e < d; e++) {
                    av += w[2 * C + e] * go[o + e];
                    ak += w[C + e] * q[e];
                }
                gv[c] = av;
                qk[c] = ak;
            }
            for (int64_t e = 0; e < d; e++)
                dq[e] = 0.0f;
            for (int64_t t2 = 0; t2 <= t; t2++) {
                float pv = P[t2], ds = dS[t2];
                float *restrict row = dln + t2 * C;
                const float *kk = qkv + t2 * C3 + C + o;
#pragma omp simd
                for (int64_t c = 0; c < C; c++)
                    row[c] += pv * gv[c] + ds * qk[c];
#pragma omp simd
                for (int64_t e = 0; e < d; e++)
                    dq[e] += ds * kk[e];
            }
            float *row = dln + t * C;
            for (int64_t c = 0; c < C; c++) {
                float a = 0.0f;
                const float *wq = Wq + c * C3 + o;
#pragma omp simd reduction(+ : a)
                for (int64_t e = 0; e < d; e++)
                    a += wq[e] * dq[e];
                row[c] += a;
            }
        }
    }
    /* ln_1's transposed Jacobian, row by row */
    const float *w = p->ln1_w;
    for (int64_t t2 = 0; t2 <= tmax; t2++) {
        const float *x = b->xs + (s * n + sq * T + t2) * C, *g = dln + t2 * C;
        float mu = b->l1m[s * n + sq * T + t2], rs = b->l1r[s * n + sq * T + t2];
        double m1 = 0.0, m2 = 0.0;
        for (int64_t c = 0; c < C; c++) {
            double gw = (double)w[c] * g[c], xh = ((double)x[c] - mu) * rs;
            m1 += gw;
            m2 += gw * xh;
        }
        m1 /= (double)C;
        m2 /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            double gw = (double)w[c] * g[c], xh = ((double)x[c] - mu) * rs;
            usum[t2 * C + c] += (float)(rs * (gw - m1 - xh * m2));
        }
    }
}

/* The transformer block: per point, the block forward (its probabilities,
 * q/k/v and ln_1 statistics kept) and the FF-block rows v of every kept
 * (token, j); then per latent j and sequence, the attention VJPs. */
static scalar_status attr_block(scalar_evaluator *ev, abuf *b, const float *alpha, int64_t B,
                                int64_t T)
{
    int64_t n = b->n, C = ev->C, Fm = ev->Fm, kcD = ev->kcD, H = ev->model->cfg.n_head;
    const scalar__layer_acts *act = &ev->ws->acts[ev->layer];
    for (int64_t s = 0; s < b->S; s++) {
        float *xs = b->xs + s * n * C;
        const float *y;
        TRY(scalar__ev_decode_u(ev, &b->z, n, alpha[s], b->vs, xs));
        TRY(scalar__model_block_forward(ev->model, ev->ws, ev->layer, xs, B, T, &y));
        memcpy(b->y, y, (size_t)(n * C) * sizeof(float));
        memcpy(b->qkv + s * n * 3 * C, act->qkv, (size_t)(n * 3 * C) * sizeof(float));
        memcpy(b->att + s * B * H * T * T, act->att, (size_t)(B * H * T * T) * sizeof(float));
        memcpy(b->l1m + s * n, act->ln1_mean, (size_t)n * sizeof(float));
        memcpy(b->l1r + s * n, act->ln1_rstd, (size_t)n * sizeof(float));
        memcpy(b->x, act->resid_mid, (size_t)(n * C) * sizeof(float));
        memcpy(b->mean, act->ln2_mean, (size_t)n * sizeof(float));
        memcpy(b->rstd, act->ln2_rstd, (size_t)n * sizeof(float));
        memset(b->g, 0, (size_t)(n * Fm) * sizeof(float));
        TRY(scalar_backend_gelu_backward(ev->be, b->g, act->fch, ev->ones, n * Fm));
        TRY(downstream_codes(ev, b, b->y, n, s));
        int64_t R = kept_rows(ev, b, s, 0);
        if (R == 0)
            continue;
        const float *u;
        TRY(jac_rows(ev, b, R, b->g, b->x, b->mean, b->rstd, 1, &u));
        for (int64_t r = 0; r < R; r++)
            memcpy(b->vrow + ((s * n + b->row_t[r]) * kcD + b->row_s[r]) * C, u + r * C,
                   (size_t)C * sizeof(float));
    }
    /* kept (point, token, slot) entries grouped by j, in (sequence, point, token) order */
    int64_t FD = ev->FD;
    memset(b->ent_off, 0, (size_t)(FD + 1) * sizeof(int32_t));
    for (int64_t e = 0; e < b->S * n * kcD; e++)
        if (b->dc.idx[e] >= 0)
            b->ent_off[b->dc.idx[e] + 1]++;
    for (int64_t j = 0; j < FD; j++)
        b->ent_off[j + 1] += b->ent_off[j];
    for (int64_t sq = 0; sq < B; sq++)
        for (int64_t s = 0; s < b->S; s++)
            for (int64_t t = sq * T; t < (sq + 1) * T; t++)
                for (int64_t q = 0; q < kcD; q++) {
                    int64_t e = (s * n + t) * kcD + q;
                    if (b->dc.idx[e] >= 0)
                        b->ent[b->ent_off[b->dc.idx[e]]++] = (int32_t)e;
                }
    for (int64_t j = FD; j > 0; j--)
        b->ent_off[j] = b->ent_off[j - 1];
    b->ent_off[0] = 0;
    int32_t nt = ev->n_threads;
    int64_t scr_len = 2 * T * C + 4 * C + T;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t j = 0; j < FD; j++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *scr = b->tscr + tid * scr_len, *usum = scr + T * C;
        int32_t tk[256];
        const float *vk[256];
        int32_t e0 = b->ent_off[j], e1 = b->ent_off[j + 1];
        while (e0 < e1) {
            int64_t sq = (b->ent[e0] / kcD % n) / T, tmax = 0;
            memset(usum, 0, (size_t)(T * C) * sizeof(float));
            while (e0 < e1 && (b->ent[e0] / kcD % n) / T == sq) {
                int64_t s = b->ent[e0] / kcD / n, m = 0;
                while (e0 < e1 && b->ent[e0] / kcD / n == s &&
                       (b->ent[e0] / kcD % n) / T == sq && m < 256) {
                    int64_t e = b->ent[e0++];
                    tk[m] = (int32_t)(e / kcD % n - sq * T);
                    vk[m++] = b->vrow + e * C;
                }
                attn_vjp(ev, b, s, sq, T, tk, vk, m, usum, scr);
                for (int64_t k = 0; k < m; k++)
                    tmax = tk[k] > tmax ? tk[k] : tmax;
            }
            for (int64_t t = 0; t <= tmax; t++)
                accumulate(ev, b, sq * T + t, j, usum + t * C);
        }
    }
    return SCALAR_OK;
}

scalar_status scalar_evaluator_attribute(scalar_evaluator *ev, const int32_t *ids, int64_t n_seq,
                                         int64_t seq)
{
    static const char fn[] = "scalar_evaluator_attribute";
    if (!ev || !ids)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ev or ids is NULL", fn);
    if (n_seq < 1 || seq < 1 || seq > ev->T_max)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_seq %lld, seq %lld (1 .. %lld)", fn,
                                 (long long)n_seq, (long long)seq, (long long)ev->T_max);
    float alpha[1000];
    int64_t S = points(ev, alpha), T = seq, C = ev->C;
    int64_t Bc = ev->opt.batch;
    abuf b;
    TRY(abuf_alloc(ev, &b, Bc * T, T, S));
    scalar_status st = SCALAR_OK;
    for (int64_t b0 = 0; b0 < n_seq && st == SCALAR_OK; b0 += Bc) {
        int64_t B = n_seq - b0 < Bc ? n_seq - b0 : Bc, n = B * T;
        b.n = n;
        st = scalar__model_forward_acts(ev->model, ev->ws, ids + b0 * T, B, T, ev->layer + 1);
        if (st != SCALAR_OK)
            break;
        memcpy(b.act, scalar__ws_hook_buffer(ev->ws, ev->layer, ev->hook_u),
               (size_t)(n * C) * sizeof(float));
        st = scalar__ev_preact(ev, ev->U, b.act, n, b.xc, b.pre);
        if (st == SCALAR_OK)
            st = scalar__ev_select(ev, b.pre, n, ev->FU, ev->kU, 1,
                                   ev_quirk(ev, SCALAR_QUIRK_TIES), &b.z, b.tv, b.ti);
        if (st != SCALAR_OK)
            break;
        for (int64_t t = 0; t < n; t++) {
            double s2 = 0.0;
            for (int64_t q = 0; q < ev->kcU; q++)
                s2 += (double)b.z.val[t * ev->kcU + q] * b.z.val[t * ev->kcU + q];
            b.znorm[t] = (float)sqrt(s2);
        }
        st = ev_is_block(ev) ? attr_block(ev, &b, alpha, B, T) : attr_tokens(ev, &b, alpha);
        ev->attr_tokens += n;
    }
    if (st == SCALAR_OK)
        st = fold_forms(ev);
    abuf_free(ev->ctx, &b);
    return st;
}
