/*
 * eval_curve.c - step 3 of SCALAR: the KL of edge-restricted subcircuits on
 * the grid of N (docs/evaluator.md), per token, for both curves.
 *
 * r[t, j] depends on the upstream codes only through the kept set S_j.
 *   Per-token paths: token t sees only its own active latents a_t, so r[t, j]
 *     is a function of the mask S_j & a_t (k bits): the empty mask gives the
 *     bias-only value r0[j], the full mask the full circuit's rfull[t, j];
 *     every other distinct mask of the token is one path evaluation, shared
 *     by the latents with that mask.  The evaluation is factored: the MLP's
 *     pre-activation of a masked input is a sum of the token's precomputed
 *     rows R[t, q] = W_dec_U[a_q] G (G = W_fc, or diag(ln_2 w) W_fc with the
 *     LayerNorm's mean and scale from the masked input), so an entry costs
 *     |mask| row additions and one GELU, and r[t, j] = gelu(h) . CT[j]
 *     (+ x . W_enc_D[:, j] on the FF block) + const_j, no GEMM per entry.
 *   The transformer block: positions mix, so the key is S_j & U_b over the
 *     latents U_b active anywhere in sequence b; each distinct key other than
 *     empty and full is one block forward of the sequence, batched.
 * Then D's top-k of r (per mode), decode, splice, and the rest of the model.
 */
#include <math.h>
#include <string.h>

#include "eval_internal.h"

#define TRY SCALAR_TRY
#define ENTRY_ROWS 8192 /* path evaluations per batch (per-token paths) */

typedef struct cbuf {
    int64_t n, B, T, V, nw;       /* tokens, sequences, length, vocab, words per S_j bitset */
    int64_t rows;                 /* rows of the entry buffers (x, y, h, a, ...) */
    float *act, *mid, *post;      /* [n, C]: U's input, clean resid_mid, clean resid_post */
    double *logp, *logp_full;     /* [n, V] clean and full-circuit log-probabilities */
    float *logits;                /* [n, V] */
    ev_codes z, dc;               /* [n, kcU], [n, kcD] */
    float *xc, *pre, *tv, *x, *y, *h, *a, *ln, *mean, *rstd, *vs;
    int32_t *ti;
    float *r, *rfull, *rtmp, *r0; /* [n, FD] x 3, [FD] */
    uint64_t *bits;               /* [FD, nw]: S_j */
    int32_t *nkept;               /* [FD] */
    /* dedupe */
    float *ev_val;                /* [ENTRY_ROWS or max_B*T, kcU] */
    int32_t *ev_idx;
    float *Rt;                    /* per-token paths: [n, kcU, Fm] rows W_dec_U[a_q] G */
    int32_t *ent_t;               /* [ENTRY_ROWS] token of an entry */
    uint64_t *ent_m;              /* [ENTRY_ROWS] its mask */
    uint64_t *mprev;              /* per-token paths: [n, FD] mask behind r[t, j] */
    unsigned char *jinit;         /* [FD] r[:, j] holds a value for a non-empty S_j */
    unsigned char *jflag;         /* [FD] scratch: j is in `changed` */
    int32_t *changed;             /* [FD] latents whose S_j grew at this grid point */
    int64_t n_changed;
    int32_t *pend;                /* [n, FD] entry of (t, j), -1 when resolved */
    uint64_t *hkey;               /* hash table keys (per-token) */
    int32_t *hval, *hstamp;
    int64_t hsize;
    int32_t *ulist, *upos, *ustamp; /* block: latents of a sequence, their positions, stamps */
    uint64_t *keys;               /* block: [FD, words of U_b] */
    int32_t *jent;                /* block: [FD] entry of j */
    int32_t *cntprev;             /* block: [B, FD] |S_j & U_b| behind r, -1 before any */
} cbuf;

static void cbuf_free(scalar_ctx *ctx, cbuf *b)
{
    void *p[] = {b->act, b->mid, b->post, b->logp, b->logp_full, b->logits, b->z.val, b->z.idx,
                 b->dc.val, b->dc.idx, b->xc, b->pre, b->tv, b->x, b->y, b->h, b->a, b->ln,
                 b->mean, b->rstd, b->vs, b->ti, b->r, b->rfull, b->rtmp, b->r0, b->bits,
                 b->nkept, b->ev_val, b->ev_idx, b->Rt, b->ent_t, b->ent_m, b->mprev, b->jinit, b->jflag, b->changed, b->pend, b->hkey, b->hval, b->hstamp, b->ulist,
                 b->upos, b->ustamp, b->keys, b->jent, b->cntprev};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        scalar__free(ctx, p[i]);
}

static scalar_status cbuf_alloc(const scalar_evaluator *ev, cbuf *b, int64_t n, int64_t T)
{
    scalar_ctx *ctx = ev->ctx;
    int64_t C = ev->C, Fm = ev->Fm, FD = ev->FD, F = ev->FU > FD ? ev->FU : FD;
    int64_t V = ev->model->cfg.vocab_size, kc = ev->kcU > ev->kcD ? ev->kcU : ev->kcD;
    int64_t rows = n + 1 > ENTRY_ROWS ? n + 1 : ENTRY_ROWS;
    if (rows < FD)
        rows = FD;
    if (ev_is_block(ev) && ev->max_B * T > rows)
        rows = ev->max_B * T;
    memset(b, 0, sizeof *b);
    b->rows = rows;
    b->V = V;
    b->T = T;
    b->nw = (ev->FU + 63) / 64;
    b->z.kc = ev->kcU;
    b->dc.kc = ev->kcD;
    b->hsize = 1;
    while (b->hsize < 2 * FD)
        b->hsize *= 2;
#define A(p, cnt, T) (p = scalar__alloc(ctx, (size_t)(cnt) * sizeof(T), "curve buffers"))
    int ok = A(b->act, n * C, float) && A(b->mid, n * C, float) && A(b->post, n * C, float) &&
             A(b->logp, n * V, double) && A(b->logp_full, n * V, double) &&
             A(b->logits, n * V, float) && A(b->z.val, n * ev->kcU, float) &&
             A(b->z.idx, n * ev->kcU, int32_t) && A(b->dc.val, n * ev->kcD, float) &&
             A(b->dc.idx, n * ev->kcD, int32_t) && A(b->xc, rows * C, float) &&
             A(b->pre, n * F, float) && A(b->tv, n * (kc + 1), float) &&
             A(b->ti, n * (kc + 1), int32_t) && A(b->x, (rows > n * ev->kcU ? rows : n * ev->kcU) * C, float) &&
             A(b->y, rows * C, float) && A(b->h, rows * Fm, float) && A(b->a, rows * Fm, float) &&
             A(b->ln, rows * C, float) && A(b->mean, rows, float) && A(b->rstd, rows, float) &&
             A(b->vs, n * ev->kcU, float) && A(b->r, n * FD, float) &&
             A(b->rfull, n * FD, float) && A(b->rtmp, n * FD, float) && A(b->r0, FD, float) &&
             A(b->bits, FD * b->nw, uint64_t) && A(b->nkept, FD, int32_t) &&
             A(b->ev_val, rows * ev->kcU, float) && A(b->ev_idx, rows * ev->kcU, int32_t) &&
             A(b->pend, n * FD, int32_t) && A(b->hkey, b->hsize, uint64_t) &&
             A(b->hval, b->hsize, int32_t) && A(b->hstamp, b->hsize, int32_t) &&
             A(b->ulist, T * ev->kcU, int32_t) && A(b->upos, ev->FU, int32_t) &&
             A(b->ustamp, ev->FU, int32_t) && A(b->keys, FD * ((T * ev->kcU + 63) / 64), uint64_t) &&
             A(b->jent, FD, int32_t) && A(b->ent_t, rows, int32_t) && A(b->ent_m, rows, uint64_t) &&
             A(b->jinit, FD, unsigned char) && A(b->jflag, FD, unsigned char) &&
             A(b->changed, FD, int32_t);
    if (ok && !ev_is_block(ev))
        ok = A(b->Rt, n * ev->kcU * Fm, float) && A(b->mprev, n * FD, uint64_t);
    if (ok && ev_is_block(ev))
        ok = A(b->cntprev, (n / T) * FD, int32_t) != NULL;
#undef A
    if (!ok) {
        cbuf_free(ctx, b);
        return SCALAR_E_NOMEM;
    }
    return SCALAR_OK;
}

static inline int bit(const uint64_t *w, int64_t i)
{
    return (int)((w[i >> 6] >> (i & 63)) & 1u);
}

/* log-softmax of logits [n, V] into out (double). */
static void log_softmax(const float *logits, int64_t n, int64_t V, double *out, int32_t nt)
{
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && n * V >= 65536)
    for (int64_t t = 0; t < n; t++) {
        const float *l = logits + t * V;
        double lse = scalar__ev_logsumexp(l, V);
        for (int64_t v = 0; v < V; v++)
            out[t * V + v] = (double)l[v] - lse;
    }
}

/* KL(P || Q) per token with the reference's 1e-8 inside the logs. */
static void kl_rows(const double *logp, const double *logq, int64_t n, int64_t V, float *out,
                    int32_t nt)
{
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && n * V >= 65536)
    for (int64_t t = 0; t < n; t++) {
        double s = 0.0;
        for (int64_t v = 0; v < V; v++) {
            double p = exp(logp[t * V + v]), q = exp(logq[t * V + v]);
            s += p * (log(p + 1e-8) - log(q + 1e-8));
        }
        out[t] = (float)s;
    }
}

/* r [rows, FD] (or the pending entries' rows) from path outputs y [rows, C]. */
static scalar_status preact_rows(const scalar_evaluator *ev, cbuf *b, const float *y,
                                 int64_t rows, float *out)
{
    return scalar__ev_preact_d(ev, y, rows, b->xc, out);
}

/* Codes of r per mode, decode, splice, run to the logits: log-probs in logq. */
static scalar_status run_codes(scalar_evaluator *ev, cbuf *b, const float *r, int relu, int ties,
                               double *logq)
{
    int64_t n = b->n, C = ev->C;
    memcpy(b->rtmp, r, (size_t)(n * ev->FD) * sizeof(float));
    TRY(scalar__ev_select(ev, b->rtmp, n, ev->FD, ev->kD, relu, ties, &b->dc, b->tv, b->ti));
    TRY(scalar__ev_decode_d(ev, &b->dc, n, b->x));
    if (ev->path == SCALAR_PATH_FF_LAYER)
        TRY(scalar_backend_add(ev->be, b->x, b->x, b->mid, n * C));
    TRY(scalar_model_forward_from(ev->model, ev->ws, ev->layer, SCALAR_HOOK_RESID_POST, b->x, NULL,
                                  b->B, b->T, b->logits, NULL));
    log_softmax(b->logits, n, b->V, logq, ev->n_threads);
    return SCALAR_OK;
}

/* Per-token paths, once per chunk: R[t, q] = W_dec_U[z_idx[t, q]] G (zero for
 * an empty slot), the rows every masked evaluation of token t sums. */
static scalar_status token_rows(const scalar_evaluator *ev, cbuf *b)
{
    int64_t n = b->n, kc = ev->kcU, C = ev->C;
    for (int64_t r = 0; r < n * kc; r++) {
        int32_t i = b->z.idx[r];
        if (i >= 0)
            memcpy(b->x + r * C, ev->U->W_dec + (int64_t)i * C, (size_t)C * sizeof(float));
        else
            memset(b->x + r * C, 0, (size_t)C * sizeof(float));
    }
    return scalar_backend_sgemm(ev->be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, n * kc, ev->Fm, C, 1.0f,
                                b->x, C, ev->G, ev->Fm, 0.0f, b->Rt, ev->Fm);
}

/* Clean forward of the chunk: P, the hook activations, z, rfull and r0. */
static scalar_status chunk_setup(scalar_evaluator *ev, cbuf *b, const int32_t *ids)
{
    int64_t n = b->n, C = ev->C, L = ev->layer;
    TRY(scalar_model_forward(ev->model, ev->ws, ids, NULL, b->B, b->T, b->logits, NULL));
    log_softmax(b->logits, n, b->V, b->logp, ev->n_threads);
    size_t bytes = (size_t)(n * C) * sizeof(float);
    memcpy(b->act, scalar__ws_hook_buffer(ev->ws, (int32_t)L, ev->hook_u), bytes);
    memcpy(b->mid, scalar__ws_hook_buffer(ev->ws, (int32_t)L, SCALAR_HOOK_RESID_MID), bytes);
    memcpy(b->post, scalar__ws_hook_buffer(ev->ws, (int32_t)L, SCALAR_HOOK_RESID_POST), bytes);
    TRY(scalar__ev_preact(ev, ev->U, b->act, n, b->xc, b->pre));
    TRY(scalar__ev_select(ev, b->pre, n, ev->FU, ev->kU, 1, ev_quirk(ev, SCALAR_QUIRK_TIES), &b->z,
                          b->tv, b->ti));
    /* the full circuit's pre-activations, and the bias-only ones */
    TRY(scalar__ev_decode_u(ev, &b->z, n, 1.0f, b->vs, b->x));
    TRY(scalar__ev_path(ev, b->x, b->B, b->T, b->y, b->h, b->a, b->ln, b->mean, b->rstd));
    TRY(preact_rows(ev, b, b->y, n, b->rfull));
    float *y0 = b->y + n * C; /* the rows after the chunk's are free (rows >= n + 1) */
    memcpy(b->x, ev->U->b_dec, (size_t)C * sizeof(float));
    TRY(scalar__ev_path(ev, b->x, 1, 1, y0, b->h, b->a, b->ln, b->mean, b->rstd));
    TRY(scalar__ev_preact_d(ev, y0, 1, b->xc, b->r0));
    return ev_is_block(ev) ? SCALAR_OK : token_rows(ev, b);
}

/* The full circuit's logits (per mode) into b->logp_full. */
static scalar_status full_circuit(scalar_evaluator *ev, cbuf *b)
{
    int64_t n = b->n, C = ev->C;
    int ties = ev_quirk(ev, SCALAR_QUIRK_TIES);
    if (!ev_quirk(ev, SCALAR_QUIRK_FULL_CIRCUIT)) /* the definition with every edge */
        return run_codes(ev, b, b->rfull, !ev_quirk(ev, SCALAR_QUIRK_CURVE_TOPK),
                         ev_quirk(ev, SCALAR_QUIRK_CURVE_TOPK), b->logp_full);
    if (ev->path == SCALAR_PATH_FF_LAYER) /* the hooked run: D's own encode */
        return run_codes(ev, b, b->rfull, 1, ties, b->logp_full);
    float *y = b->x;
    if (ev->path == SCALAR_PATH_FF_BLOCK) {
        /* clean resid_mid + mlp(ln_2(U.decode(z))): the skip path stays clean */
        TRY(scalar__ev_decode_u(ev, &b->z, n, 1.0f, b->vs, b->x));
        TRY(scalar__ev_token_path(ev, b->x, n, b->y, b->h, b->a, b->ln, b->mean, b->rstd));
        for (int64_t e = 0; e < n * C; e++)
            b->y[e] = b->y[e] - b->x[e] + b->mid[e];
        y = b->y;
    } else {
        memcpy(b->y, b->post, (size_t)(n * C) * sizeof(float));
        y = b->y;
    }
    TRY(preact_rows(ev, b, y, n, b->r));
    return run_codes(ev, b, b->r, 1, ties, b->logp_full);
}

/* Evaluate the pending entries (factored, see the top) and fill their r. */
static scalar_status flush_tokens(scalar_evaluator *ev, cbuf *b, int64_t t0, int64_t t1,
                                  int64_t n_ent)
{
    int64_t C = ev->C, FD = ev->FD, Fm = ev->Fm, kc = ev->kcU;
    int32_t nt = ev->n_threads;
    int ffb = ev->path == SCALAR_PATH_FF_BLOCK;
    float eps = ev->model->cfg.layer_norm_eps;
    if (n_ent == 0)
        return SCALAR_OK;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && n_ent * Fm >= 65536)
    for (int64_t e = 0; e < n_ent; e++) {
        int64_t t = b->ent_t[e];
        uint64_t m = b->ent_m[e];
        float *h = b->h + e * Fm;
        const float *zv = b->z.val + t * kc;
        memcpy(h, ev->hb, (size_t)Fm * sizeof(float));
        for (int64_t q = 0; q < kc; q++) {
            if (!((m >> q) & 1u))
                continue;
            const float *R = b->Rt + (t * kc + q) * Fm;
            float zq = zv[q];
#pragma omp simd
            for (int64_t f = 0; f < Fm; f++)
                h[f] += zq * R[f];
        }
        if (ffb) { /* x = b_dec + sum z W_dec; h = (x G - mu sG) / sigma + c2 */
            float *x = b->x + e * C;
            const int32_t *zi = b->z.idx + t * kc;
            memcpy(x, ev->U->b_dec, (size_t)C * sizeof(float));
            for (int64_t q = 0; q < kc; q++)
                if ((m >> q) & 1u) {
                    const float *w = ev->U->W_dec + (int64_t)zi[q] * C;
                    for (int64_t c = 0; c < C; c++)
                        x[c] += zv[q] * w[c];
                }
            double mu = 0.0, var = 0.0;
            for (int64_t c = 0; c < C; c++)
                mu += x[c];
            mu /= (double)C;
            for (int64_t c = 0; c < C; c++)
                var += ((double)x[c] - mu) * ((double)x[c] - mu);
            float rs = (float)(1.0 / sqrt(var / (double)C + eps)), fmu = (float)mu;
#pragma omp simd
            for (int64_t f = 0; f < Fm; f++)
                h[f] = (h[f] - fmu * ev->sG[f]) * rs + ev->c2[f];
        }
    }
    TRY(scalar_backend_gelu_forward(ev->be, b->a, b->h, n_ent * Fm));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1 && (t1 - t0) * FD >= 4096)
    for (int64_t t = t0; t < t1; t++)
        for (int64_t q = 0; q < b->n_changed; q++) {
            int64_t j = b->changed[q];
            int32_t e = b->pend[t * FD + j];
            if (e < 0)
                continue;
            const float *ae = b->a + (int64_t)e * Fm, *cj = ev->CT + j * Fm;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int64_t f = 0; f < Fm; f++)
                s += ae[f] * cj[f];
            if (ffb) {
                const float *xe = b->x + (int64_t)e * C, *w = ev->WdT + j * C;
#pragma omp simd reduction(+ : s)
                for (int64_t c = 0; c < C; c++)
                    s += xe[c] * w[c];
            }
            b->r[t * FD + j] = s + ev->cj[j];
        }
    return SCALAR_OK;
}

/* r of the current S_j, per-token paths, updated from the previous grid
 * point: only latents whose S_j grew (b->changed) are looked at, and of
 * those only tokens whose mask changed are evaluated again (a mask grows
 * monotonically, so each (token, latent) is evaluated at most k + 1 times
 * over the whole grid). */
static scalar_status r_tokens(scalar_evaluator *ev, cbuf *b)
{
    int64_t n = b->n, FD = ev->FD, kc = ev->kcU, t0 = 0, n_ent = 0;
    memset(b->hstamp, 0, (size_t)b->hsize * sizeof(int32_t));
    for (int64_t c = 0; c < b->n_changed; c++) { /* a first kept edge: 0 -> the bias-only value */
        int64_t j = b->changed[c];
        if (b->jinit[j])
            continue;
        b->jinit[j] = 1;
        for (int64_t t = 0; t < n; t++) {
            b->r[t * FD + j] = b->r0[j];
            b->mprev[t * FD + j] = 0;
        }
    }
    for (int64_t t = 0; t < n; t++) {
        if (n_ent + b->n_changed > b->rows && n_ent > 0) {
            TRY(flush_tokens(ev, b, t0, t, n_ent));
            t0 = t;
            n_ent = 0;
        }
        const int32_t *zi = b->z.idx + t * kc;
        uint64_t full = 0;
        for (int64_t q = 0; q < kc; q++)
            if (zi[q] >= 0)
                full |= (uint64_t)1 << q;
        for (int64_t c = 0; c < b->n_changed; c++) {
            int64_t j = b->changed[c];
            int32_t *pe = b->pend + t * FD + j;
            float *rr = b->r + t * FD + j;
            *pe = -1;
            const uint64_t *Sj = b->bits + j * b->nw;
            uint64_t m = 0;
            for (int64_t q = 0; q < kc; q++)
                if (zi[q] >= 0 && bit(Sj, zi[q]))
                    m |= (uint64_t)1 << q;
            if (m == b->mprev[t * FD + j])
                continue;
            b->mprev[t * FD + j] = m;
            if (m == full) {
                *rr = b->rfull[t * FD + j];
                continue;
            }
            uint64_t hsh = (m * 0x9E3779B97F4A7C15ULL) >> 20;
            int64_t slot = (int64_t)(hsh & (uint64_t)(b->hsize - 1));
            int32_t stamp = (int32_t)(t + 1);
            while (b->hstamp[slot] == stamp && b->hkey[slot] != m)
                slot = (slot + 1) & (b->hsize - 1);
            if (b->hstamp[slot] != stamp) {
                b->hstamp[slot] = stamp;
                b->hkey[slot] = m;
                b->hval[slot] = (int32_t)n_ent;
                b->ent_t[n_ent] = (int32_t)t;
                b->ent_m[n_ent++] = m;
            }
            *pe = b->hval[slot];
        }
    }
    return flush_tokens(ev, b, t0, n, n_ent);
}

/* r of the current S_j, transformer block: one sequence at a time, updated
 * from the previous grid point like r_tokens: only latents whose S_j grew,
 * and of those only where S_j & U_b grew, are evaluated again. */
static scalar_status r_block(scalar_evaluator *ev, cbuf *b)
{
    int64_t T = b->T, FD = ev->FD, kc = ev->kcU, C = ev->C;
    const scalar_sae *D = ev->D;
    memset(b->ustamp, 0, (size_t)ev->FU * sizeof(int32_t));
    for (int64_t sq = 0; sq < b->B; sq++) {
        int64_t nu = 0, tok0 = sq * T;
        for (int64_t t = 0; t < T; t++)
            for (int64_t q = 0; q < kc; q++) {
                int32_t i = b->z.idx[(tok0 + t) * kc + q];
                if (i >= 0 && b->ustamp[i] != (int32_t)(sq + 1)) {
                    b->ustamp[i] = (int32_t)(sq + 1);
                    b->upos[i] = (int32_t)nu;
                    b->ulist[nu++] = i;
                }
            }
        int64_t nw = (nu + 63) / 64 > 0 ? (nu + 63) / 64 : 1, n_ent = 0;
        for (int64_t c = 0; c < b->n_changed; c++) {
            int64_t j = b->changed[c];
            b->jent[j] = -1;
            const uint64_t *Sj = b->bits + j * b->nw;
            uint64_t *key = b->keys + n_ent * nw;
            int64_t cnt = 0;
            memset(key, 0, (size_t)nw * sizeof(uint64_t));
            for (int64_t u = 0; u < nu; u++)
                if (bit(Sj, b->ulist[u])) {
                    key[u >> 6] |= (uint64_t)1 << (u & 63);
                    cnt++;
                }
            /* S_j only grows, so an unchanged count is an unchanged key */
            if (cnt == b->cntprev[sq * FD + j])
                continue;
            b->cntprev[sq * FD + j] = (int32_t)cnt;
            if (cnt == 0 || cnt == nu) {
                for (int64_t t = 0; t < T; t++)
                    b->r[(tok0 + t) * FD + j] =
                        cnt == 0 ? b->r0[j] : b->rfull[(tok0 + t) * FD + j];
                continue;
            }
            int64_t e = 0;
            while (e < n_ent && memcmp(b->keys + e * nw, key, (size_t)nw * sizeof(uint64_t)))
                e++;
            if (e == n_ent)
                n_ent++;
            b->jent[j] = (int32_t)e;
        }
        /* evaluate the entries, max_B sequences at a time */
        for (int64_t e0 = 0; e0 < n_ent; e0 += ev->max_B) {
            int64_t ne = n_ent - e0 < ev->max_B ? n_ent - e0 : ev->max_B;
            for (int64_t e = 0; e < ne; e++) {
                const uint64_t *key = b->keys + (e0 + e) * nw;
                for (int64_t t = 0; t < T; t++)
                    for (int64_t q = 0; q < kc; q++) {
                        int64_t src = (tok0 + t) * kc + q, dst = ((e * T) + t) * kc + q;
                        int32_t i = b->z.idx[src];
                        int in = i >= 0 && bit(key, b->upos[i]);
                        b->ev_val[dst] = in ? b->z.val[src] : 0.0f;
                        b->ev_idx[dst] = in ? i : -1;
                    }
            }
            TRY(scalar_backend_sparse_decode(ev->be, b->x, b->ev_val, b->ev_idx, ev->U->W_dec,
                                             ev->U->b_dec, ne * T, kc, ev->FU, C));
            TRY(scalar__ev_path(ev, b->x, ne, T, b->y, NULL, NULL, NULL, NULL, NULL));
            if (D->cfg.apply_b_dec_to_input)
                for (int64_t e = 0; e < ne * T; e++)
                    for (int64_t c = 0; c < C; c++)
                        b->y[e * C + c] -= D->b_dec[c];
            for (int64_t q = 0; q < b->n_changed; q++) {
                int64_t j = b->changed[q], e = b->jent[j] - e0;
                if (b->jent[j] < 0 || e < 0 || e >= ne)
                    continue;
                for (int64_t t = 0; t < T; t++) {
                    const float *ye = b->y + (e * T + t) * C, *w = ev->WdT + j * C;
                    float s = 0.0f;
                    for (int64_t c = 0; c < C; c++)
                        s += ye[c] * w[c];
                    b->r[(tok0 + t) * FD + j] = s + D->b_enc[j];
                }
            }
        }
    }
    return SCALAR_OK;
}

static scalar_status check_order(const scalar_evaluator *ev, const int64_t *order, int64_t n,
                                 int64_t need, const char *fn)
{
    int64_t total = ev->FU * ev->FD;
    if (n < need)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the order has %lld edges; the grid "
                                 "needs %lld", fn, (long long)n, (long long)need);
    uint64_t *seen = scalar__alloc(ev->ctx, (size_t)((total + 63) / 64) * sizeof(uint64_t),
                                   "order check");
    if (!seen)
        return SCALAR_E_NOMEM;
    memset(seen, 0, (size_t)((total + 63) / 64) * sizeof(uint64_t));
    scalar_status st = SCALAR_OK;
    for (int64_t e = 0; e < n && st == SCALAR_OK; e++) {
        int64_t f = order[e];
        if (f < 0 || f >= total)
            st = scalar__error_set(SCALAR_E_INVALID_ARG, "%s: order[%lld] = %lld is not an edge "
                                   "(0 .. %lld)", fn, (long long)e, (long long)f,
                                   (long long)(total - 1));
        else if (bit(seen, f))
            st = scalar__error_set(SCALAR_E_INVALID_ARG, "%s: edge %lld appears twice in the "
                                   "order", fn, (long long)f);
        else
            seen[f >> 6] |= (uint64_t)1 << (f & 63);
    }
    scalar__free(ev->ctx, seen);
    return st;
}

/* One chunk of sequences: every grid point. */
static scalar_status curve_chunk(scalar_evaluator *ev, cbuf *b, const int32_t *ids,
                                 const int64_t *order, int64_t tok0, double *full_kl, float *kl)
{
    int64_t n = b->n, total = ev->FU * ev->FD, FD = ev->FD, done = 0;
    TRY(chunk_setup(ev, b, ids));
    TRY(full_circuit(ev, b));
    kl_rows(b->logp, b->logp_full, n, b->V, kl, ev->n_threads);
    for (int64_t t = 0; t < n; t++)
        *full_kl += kl[t];
    memset(b->bits, 0, (size_t)(FD * b->nw) * sizeof(uint64_t));
    memset(b->nkept, 0, (size_t)FD * sizeof(int32_t));
    memset(b->jinit, 0, (size_t)FD);
    memset(b->jflag, 0, (size_t)FD);
    memset(b->r, 0, (size_t)(n * FD) * sizeof(float)); /* latents without a kept edge */
    if (b->cntprev)
        memset(b->cntprev, 0xff, (size_t)(b->B * FD) * sizeof(int32_t)); /* -1 */
    int parity_topk = ev_quirk(ev, SCALAR_QUIRK_CURVE_TOPK);
    double *logq, *logq_buf = scalar__alloc(ev->ctx, (size_t)(n * b->V) * sizeof(double), "curve buffers");
    if (!logq_buf)
        return SCALAR_E_NOMEM;
    scalar_status st = SCALAR_OK;
    for (int64_t g = 0; g < ev->n_grid && st == SCALAR_OK; g++) {
        int64_t N = ev->grid[g], ne = N < total ? N : total;
        if (N == total && ev_quirk(ev, SCALAR_QUIRK_FULL_CIRCUIT)) {
            logq = b->logp_full;
        } else {
            b->n_changed = 0;
            for (; done < ne; done++) {
                int64_t f = order[done], i = f / FD, j = f % FD;
                b->bits[j * b->nw + (i >> 6)] |= (uint64_t)1 << (i & 63);
                b->nkept[j]++;
                if (!b->jflag[j]) {
                    b->jflag[j] = 1;
                    b->changed[b->n_changed++] = (int32_t)j;
                }
            }
            for (int64_t c = 0; c < b->n_changed; c++)
                b->jflag[b->changed[c]] = 0;
            st = ev_is_block(ev) ? r_block(ev, b) : r_tokens(ev, b);
            if (st == SCALAR_OK)
                st = run_codes(ev, b, b->r, !parity_topk, parity_topk, logq_buf);
            logq = logq_buf;
        }
        if (st != SCALAR_OK)
            break;
        kl_rows(b->logp, logq, n, b->V, ev->kl_tok[0] + g * ev->eval_tokens + tok0,
                ev->n_threads);
        kl_rows(b->logp_full, logq, n, b->V, ev->kl_tok[1] + g * ev->eval_tokens + tok0,
                ev->n_threads);
    }
    scalar__free(ev->ctx, logq_buf);
    return st;
}

scalar_status scalar_evaluator_curve(scalar_evaluator *ev, const int32_t *ids, int64_t n_seq,
                                     int64_t seq, const int64_t *order, int64_t n_order)
{
    static const char fn[] = "scalar_evaluator_curve";
    if (!ev || !ids)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: ev or ids is NULL", fn);
    if (n_seq < 1 || seq < 1 || seq > ev->T_max)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_seq %lld, seq %lld (1 .. %lld)", fn,
                                 (long long)n_seq, (long long)seq, (long long)ev->T_max);
    int64_t total = ev->FU * ev->FD, G = ev->n_grid, n_tok = n_seq * seq;
    int64_t need = ev->grid[G - 1] < total ? ev->grid[G - 1] : total;
    int64_t *own = NULL;
    if (order) {
        TRY(check_order(ev, order, n_order, need, fn));
    } else {
        own = scalar__alloc(ev->ctx, (size_t)total * sizeof(int64_t), "edge ranking");
        if (!own)
            return SCALAR_E_NOMEM;
        scalar_status st = scalar__ev_rank(ev, own);
        if (st != SCALAR_OK) {
            scalar__free(ev->ctx, own);
            return st;
        }
        order = own;
    }
    scalar__ev_drop_curve(ev);
    ev->eval_tokens = n_tok;
    scalar_status st = SCALAR_OK;
    for (int c = 0; c < 2 && st == SCALAR_OK; c++) {
        ev->kl_tok[c] = scalar__alloc(ev->ctx, (size_t)(G * n_tok) * sizeof(float), "curve");
        ev->mean[c] = scalar__alloc(ev->ctx, (size_t)G * sizeof(double), "curve");
        ev->lo[c] = scalar__alloc(ev->ctx, (size_t)G * sizeof(double), "curve");
        ev->hi[c] = scalar__alloc(ev->ctx, (size_t)G * sizeof(double), "curve");
        if (!ev->kl_tok[c] || !ev->mean[c] || !ev->lo[c] || !ev->hi[c])
            st = SCALAR_E_NOMEM;
    }
    int64_t Bc = ev->opt.batch;
    cbuf b;
    float *kl = NULL;
    if (st == SCALAR_OK)
        st = cbuf_alloc(ev, &b, Bc * seq, seq);
    else
        memset(&b, 0, sizeof b);
    if (st == SCALAR_OK) {
        kl = scalar__alloc(ev->ctx, (size_t)(Bc * seq) * sizeof(float), "curve");
        if (!kl)
            st = SCALAR_E_NOMEM;
    }
    double full_kl = 0.0;
    for (int64_t b0 = 0; b0 < n_seq && st == SCALAR_OK; b0 += Bc) {
        b.B = n_seq - b0 < Bc ? n_seq - b0 : Bc;
        b.n = b.B * seq;
        st = curve_chunk(ev, &b, ids + b0 * seq, order, b0 * seq, &full_kl, kl);
    }
    scalar__free(ev->ctx, kl);
    cbuf_free(ev->ctx, &b);
    scalar__free(ev->ctx, own);
    if (st == SCALAR_OK) {
        st = scalar__ev_finish_curve(ev);
        ev->scores[SCALAR_SCORE_FULL_KL] = full_kl / (double)n_tok;
    }
    if (st != SCALAR_OK)
        scalar__ev_drop_curve(ev);
    return st;
}
