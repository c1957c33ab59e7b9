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
 *   the transformer block: vector-Jacobian products of the block, one
 *     sequence per (j, sequence, point) with j kept somewhere in it, batched.
 * The u of one (token, j) are summed over the points, then
 *   clean gradient path:  A2[i, j] += (z_i / S  W_dec_U[i] . u)^2 for the
 *                         token's active i (z_i = 0 elsewhere);
 *   parity (||z|| / S) and the plain Jacobian: the weight w_t is one scalar
 *     per token, so A2[:, j] += diag(W_dec_U (sum_t w_t^2 u u^T) W_dec_U^T):
 *     the C x C forms M_j accumulate and fold into A2 at the end of the call.
 */
#include <math.h>
#include <string.h>

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
    float *mrows, *uv, *xg, *mg, *rg, *dx; /* [n*kcD, Fm], [.., C], [.., C], [..], [..], [.., C] */
    float *xs;                    /* block path: [S][n, C] the points' decodes */
    int32_t *ent_off, *ent;       /* [FD + 1], [n * slots]: (t, slot) entries grouped by j */
} abuf;

static void abuf_free(scalar_ctx *ctx, abuf *b)
{
    void *p[] = {b->act, b->xc, b->pre, b->tv, b->x, b->y, b->h, b->a, b->ln, b->mean, b->rstd,
                 b->g, b->vs, b->znorm, b->ti, b->z.val, b->z.idx, b->dc.val, b->dc.idx,
                 b->slot_j, b->slot_n, b->usum, b->row_t, b->row_s, b->mrows, b->uv, b->xg,
                 b->mg, b->rg, b->dx, b->xs, b->ent_off, b->ent};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        scalar__free(ctx, p[i]);
}

static scalar_status abuf_alloc(const scalar_evaluator *ev, abuf *b, int64_t n, int64_t S)
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
    if (ok && !ev_is_block(ev))
        ok = A(b->slot_j, n * b->slots, int32_t) && A(b->slot_n, n, int32_t) &&
             A(b->usum, n * b->slots * C, float) && A(b->row_t, R, int32_t) &&
             A(b->row_s, R, int32_t) && A(b->mrows, R * Fm, float) && A(b->uv, R * C, float) &&
             A(b->xg, R * C, float) && A(b->mg, R, float) && A(b->rg, R, float) &&
             A(b->dx, R * C, float) && A(b->ent_off, ev->FD + 1, int32_t) &&
             A(b->ent, n * b->slots, int32_t);
    if (ok && ev_is_block(ev))
        ok = A(b->xs, S * n * C, float) && A(b->usum, ev->max_B * ev->T_max * C, float) &&
             A(b->uv, ev->max_B * ev->T_max * C, float) && A(b->xg, ev->max_B * ev->T_max * C, float) &&
             A(b->row_t, ev->max_B, int32_t) && A(b->row_s, ev->max_B, int32_t) &&
             A(b->ent_off, ev->FD, int32_t);
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
        float w2 = w * w, *M = ev->M + j * C * C;
        for (int64_t c = 0; c < C; c++) {
            float uc = w2 * u[c];
            for (int64_t d = 0; d < C; d++)
                M[c * C + d] += uc * u[d];
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
        for (int64_t c = 0; c < C; c++)
            dot += (double)wd[c] * u[c];
        double v = (double)zv[q] / (double)b->S * dot;
        ev->A2[(int64_t)zi[q] * ev->FD + j] += v * v;
    }
}

/* Fold the forms M_j into A2: A2[i, j] += W_dec_U[i] M_j W_dec_U[i]^T. */
static scalar_status fold_forms(scalar_evaluator *ev)
{
    if (!ev->M)
        return SCALAR_OK;
    int64_t C = ev->C, FU = ev->FU;
    float *tmp = scalar__alloc(ev->ctx, (size_t)(FU * C) * sizeof(float), "attribution fold");
    if (!tmp)
        return SCALAR_E_NOMEM;
    scalar_status st = SCALAR_OK;
    for (int64_t j = 0; j < ev->FD && st == SCALAR_OK; j++) {
        if (!ev->M_used[j])
            continue;
        float *M = ev->M + j * C * C;
        st = scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, FU, C, C, 1.0f,
                                  ev->U->W_dec, C, M, C, 0.0f, tmp, C);
        for (int64_t i = 0; i < FU && st == SCALAR_OK; i++) {
            double s = 0.0;
            for (int64_t c = 0; c < C; c++)
                s += (double)tmp[i * C + c] * ev->U->W_dec[i * C + c];
            ev->A2[i * ev->FD + j] += s > 0.0 ? s : 0.0;
        }
        memset(M, 0, (size_t)(C * C) * sizeof(float));
        ev->M_used[j] = 0;
    }
    scalar__free(ev->ctx, tmp);
    return st;
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

/* Per-token paths: every point, then the sums per (token, j). */
static scalar_status attr_tokens(scalar_evaluator *ev, abuf *b, const float *alpha)
{
    const scalar__layer_weights *p = &ev->model->w.layer[ev->layer];
    int64_t n = b->n, C = ev->C, Fm = ev->Fm, kcD = ev->kcD, nt = ev->n_threads;
    int ffb = ev->path == SCALAR_PATH_FF_BLOCK;
    memset(b->slot_n, 0, (size_t)n * sizeof(int32_t));
    memset(b->usum, 0, (size_t)(n * b->slots * C) * sizeof(float));
    for (int64_t s = 0; s < b->S; s++) {
        TRY(scalar__ev_decode_u(ev, &b->z, n, alpha[s], b->vs, b->x));
        TRY(scalar__ev_token_path(ev, b->x, n, b->y, b->h, b->a, b->ln, b->mean, b->rstd));
        TRY(downstream_codes(ev, b, b->y, n, s));
        memset(b->g, 0, (size_t)(n * Fm) * sizeof(float));
        TRY(scalar_backend_gelu_backward(ev->be, b->g, b->h, ev->ones, n * Fm));
        const int32_t *di = b->dc.idx + s * n * kcD;
        int64_t R = 0;
        for (int64_t t = 0; t < n; t++)
            for (int64_t q = 0; q < kcD; q++)
                if (di[t * kcD + q] >= 0) {
                    b->row_t[R] = (int32_t)t;
                    b->row_s[R++] = find_slot(b, t, di[t * kcD + q]);
                }
        if (R == 0)
            continue;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && R * Fm >= 65536)
        for (int64_t r = 0; r < R; r++) {
            int64_t t = b->row_t[r], j = b->slot_j[t * b->slots + b->row_s[r]];
            const float *c = ev->CT + j * Fm, *g = b->g + t * Fm;
            float *m = b->mrows + r * Fm;
            for (int64_t h = 0; h < Fm; h++)
                m[h] = c[h] * g[h];
        }
        TRY(scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_TRANS, R, C, Fm, 1.0f, b->mrows,
                                 Fm, p->fc_w, Fm, 0.0f, b->uv, C));
        const float *u = b->uv;
        if (ffb) {
            for (int64_t r = 0; r < R; r++) {
                int64_t t = b->row_t[r];
                memcpy(b->xg + r * C, b->x + t * C, (size_t)C * sizeof(float));
                b->mg[r] = b->mean[t];
                b->rg[r] = b->rstd[t];
            }
            memset(b->dx, 0, (size_t)(R * C) * sizeof(float));
            TRY(scalar_backend_layernorm_backward(ev->be, b->dx, NULL, NULL, b->uv, b->xg,
                                                  p->ln2_w, b->mg, b->rg, R, C));
            u = b->dx;
        }
        for (int64_t r = 0; r < R; r++) {
            int64_t t = b->row_t[r], slot = b->row_s[r];
            int64_t j = b->slot_j[t * b->slots + slot];
            float *dst = b->usum + (t * b->slots + slot) * C;
            const float *skip = ev->WdT + j * C;
            for (int64_t c = 0; c < C; c++)
                dst[c] += u[r * C + c] + (ffb ? skip[c] : 0.0f);
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

/* 1 if D keeps j at token t of point s. */
static int kept(const scalar_evaluator *ev, const abuf *b, int64_t s, int64_t t, int32_t j)
{
    const int32_t *di = b->dc.idx + (s * b->n + t) * ev->kcD;
    for (int64_t q = 0; q < ev->kcD; q++)
        if (di[q] == j)
            return 1;
    return 0;
}

/* One batch of (j, sequence, point) triples: block VJPs, then the sums per pair. */
static scalar_status vjp_batch(scalar_evaluator *ev, abuf *b, const int32_t *pj,
                               const int32_t *pb, int64_t n_pairs, int64_t T)
{
    int64_t C = ev->C, nb = 0;
    float *xin = b->xg, *seed = b->uv;
    for (int64_t p = 0; p < n_pairs; p++)
        for (int64_t s = 0; s < b->S; s++) {
            int anywhere = 0;
            for (int64_t t = 0; t < T; t++) {
                int k = kept(ev, b, s, pb[p] * T + t, pj[p]);
                anywhere |= k;
                float *dst = seed + (nb * T + t) * C;
                if (k)
                    memcpy(dst, ev->WdT + (int64_t)pj[p] * C, (size_t)C * sizeof(float));
                else
                    memset(dst, 0, (size_t)C * sizeof(float));
            }
            if (!anywhere)
                continue;
            memcpy(xin + nb * T * C, b->xs + (s * b->n + pb[p] * T) * C,
                   (size_t)(T * C) * sizeof(float));
            b->row_t[nb] = (int32_t)p;
            nb++;
        }
    if (nb == 0)
        return SCALAR_OK;
    const float *y, *dpre;
    TRY(scalar__model_block_forward(ev->model, ev->ws, ev->layer, xin, nb, T, &y));
    TRY(scalar__model_block_vjp(ev->model, ev->ws, ev->layer, seed, &dpre));
    for (int64_t q = 0; q < nb;) {
        int64_t p = b->row_t[q];
        memset(b->usum, 0, (size_t)(T * C) * sizeof(float));
        for (; q < nb && b->row_t[q] == p; q++)
            for (int64_t e = 0; e < T * C; e++)
                b->usum[e] += dpre[q * T * C + e];
        for (int64_t t = 0; t < T; t++)
            accumulate(ev, b, pb[p] * T + t, pj[p], b->usum + t * C);
    }
    return SCALAR_OK;
}

/* The transformer block: every point's codes, then batched VJPs. */
static scalar_status attr_block(scalar_evaluator *ev, abuf *b, const float *alpha, int64_t B,
                                int64_t T)
{
    int64_t n = b->n, C = ev->C;
    for (int64_t s = 0; s < b->S; s++) {
        float *xs = b->xs + s * n * C;
        TRY(scalar__ev_decode_u(ev, &b->z, n, alpha[s], b->vs, xs));
        TRY(scalar__ev_path(ev, xs, B, T, b->y, NULL, NULL, NULL, NULL, NULL));
        TRY(downstream_codes(ev, b, b->y, n, s));
    }
    /* pairs (j, sequence) with j kept somewhere in the sequence at some point */
    int32_t *mark = b->ent_off, pj[4096], pb[4096];
    int64_t per_batch = ev->max_B / b->S, n_pairs = 0;
    if (per_batch > 4096)
        per_batch = 4096;
    for (int64_t j = 0; j < ev->FD; j++)
        mark[j] = -1;
    for (int64_t sq = 0; sq < B; sq++) {
        for (int64_t s = 0; s < b->S; s++)
            for (int64_t t = 0; t < T; t++) {
                const int32_t *di = b->dc.idx + (s * n + sq * T + t) * ev->kcD;
                for (int64_t q = 0; q < ev->kcD; q++) {
                    int32_t j = di[q];
                    if (j < 0 || mark[j] == (int32_t)sq)
                        continue;
                    mark[j] = (int32_t)sq;
                    pj[n_pairs] = j;
                    pb[n_pairs++] = (int32_t)sq;
                    if (n_pairs == per_batch) {
                        TRY(vjp_batch(ev, b, pj, pb, n_pairs, T));
                        n_pairs = 0;
                    }
                }
            }
    }
    if (n_pairs > 0)
        TRY(vjp_batch(ev, b, pj, pb, n_pairs, T));
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
    TRY(abuf_alloc(ev, &b, Bc * T, S));
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
