/*
 * metrics.c - SAE quality numbers on a model (scalar/eval.h): L0, FVU, MSE,
 * dead latents from the clean forward, CE increase and KL from forwards
 * with reconstructions spliced in through workspace hooks.
 *
 * Dimension legend:
 *   B windows per forward;  T tokens per window;  n = B*T
 *   d d_in (= n_embd);  F d_sae;  k codes per token (TopK);  V vocab
 *
 * Per batch: a clean forward with an observing hook at every SAE's point
 * (reconstruct into scratch, accumulate statistics) keeps the clean
 * log-probabilities [n, V]; then per SAE a forward whose hook overwrites
 * the activation with its reconstruction, and one with every hook splicing.
 * Buffers are allocated once per call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"

#define TRY SCALAR_TRY

typedef struct m_sae {
    const scalar_sae *sae;
    int32_t layer, kind, topk;
    int64_t d, F, k;
    float *vals, *xhat, *dense;   /* [n, k], [n, d], [n, F] (non-TopK) */
    int32_t *idx;                 /* [n, k] */
    unsigned char *fired;         /* [F] */
    double *sum_x;                /* [d] */
    double sum_x2, sq_err, l0, n_tok;
    double ce, kl;                /* sums over tokens, spliced alone */
    int splice;                   /* 1: write the reconstruction into the activation */
} m_sae;

/* x_hat of `act` into m->xhat (TopK: sparse codes; else dense). */
static scalar_status reconstruct(m_sae *m, const float *act, int64_t n)
{
    if (m->topk) {
        TRY(scalar_sae_encode(m->sae, act, n, m->vals, m->idx));
        return scalar_sae_decode(m->sae, m->vals, m->idx, n, m->k, m->xhat);
    }
    TRY(scalar_sae_encode_dense(m->sae, act, n, m->dense));
    return scalar_sae_decode_dense(m->sae, m->dense, n, m->xhat);
}

static void observe(m_sae *m, const float *act, int64_t n)
{
    int64_t d = m->d;
    for (int64_t t = 0; t < n; t++) {
        for (int64_t c = 0; c < d; c++) {
            double x = act[t * d + c], e = x - m->xhat[t * d + c];
            m->sum_x[c] += x;
            m->sum_x2 += x * x;
            m->sq_err += e * e;
        }
        if (m->topk) {
            for (int64_t j = 0; j < m->k; j++)
                if (m->vals[t * m->k + j] > 0.0f) {
                    m->l0 += 1.0;
                    m->fired[m->idx[t * m->k + j]] = 1;
                }
        } else {
            for (int64_t f = 0; f < m->F; f++)
                if (m->dense[t * m->F + f] != 0.0f) {
                    m->l0 += 1.0;
                    m->fired[f] = 1;
                }
        }
    }
    m->n_tok += (double)n;
}

static scalar_status hook(void *user, int32_t layer, int32_t kind, float *act, int64_t n,
                          int64_t d)
{
    m_sae *m = user;
    (void)layer, (void)kind, (void)d;
    TRY(reconstruct(m, act, n));
    if (m->splice)
        memcpy(act, m->xhat, (size_t)(n * m->d) * sizeof *act);
    else
        observe(m, act, n);
    return SCALAR_OK;
}

/* logp[t] = log_softmax(logits[t]) over V, in place, in double. */
static void log_softmax_rows(float *x, int64_t n, int64_t V, int32_t n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && n * V >= 65536)
    for (int64_t t = 0; t < n; t++) {
        float *row = x + t * V;
        double lse = scalar__ev_logsumexp(row, V);
        for (int64_t v = 0; v < V; v++)
            row[v] = (float)((double)row[v] - lse);
    }
}

/* sum over tokens of KL(p || q), both given as log-probabilities [n, V]. */
static double kl_sum(const float *logp, const float *logq, int64_t n, int64_t V)
{
    double total = 0.0;
    for (int64_t t = 0; t < n; t++) {
        double kl = 0.0;
        for (int64_t v = 0; v < V; v++) {
            double lp = logp[t * V + v];
            kl += exp(lp) * (lp - (double)logq[t * V + v]);
        }
        total += kl;
    }
    return total;
}

typedef struct m_run {
    const scalar_model *model;
    scalar_model_workspace *ws;
    m_sae *s;
    int32_t n_saes;
    int64_t V;
    float *logp, *logq;           /* [n, V] */
    int32_t *x, *y, *buf;         /* [n], [n], [T + 1] */
    double ce_clean, ce_all, kl_all, n_tok;
} m_run;

static scalar_status set_hooks(m_run *r, int32_t only, int splice)
{
    scalar_model_workspace_clear_hooks(r->ws);
    for (int32_t i = 0; i < r->n_saes; i++) {
        if (only >= 0 && i != only)
            continue;
        r->s[i].splice = splice;
        TRY(scalar_model_workspace_set_hook(r->ws, r->s[i].layer, r->s[i].kind, hook, &r->s[i]));
    }
    return SCALAR_OK;
}

/* Forward the batch with the hooks set; *ce = loss sum; logits into logq. */
static scalar_status forward(m_run *r, int64_t B, int64_t T, double *ce)
{
    float loss = 0.0f;
    TRY(scalar_model_forward(r->model, r->ws, r->x, r->y, B, T, r->logq, &loss));
    *ce = (double)loss * (double)(B * T);
    log_softmax_rows(r->logq, B * T, r->V, scalar_ctx_n_threads(r->model->ctx));
    return SCALAR_OK;
}

static scalar_status run_batch(m_run *r, int64_t B, int64_t T, int each, int all)
{
    int64_t n = B * T;
    double ce;
    TRY(set_hooks(r, -1, 0));
    TRY(forward(r, B, T, &ce));
    r->ce_clean += ce;
    r->n_tok += (double)n;
    float *tmp = r->logp;
    r->logp = r->logq, r->logq = tmp; /* keep the clean log-probabilities */
    for (int32_t i = 0; each && i < r->n_saes; i++) {
        TRY(set_hooks(r, i, 1));
        TRY(forward(r, B, T, &ce));
        r->s[i].ce += ce;
        r->s[i].kl += kl_sum(r->logp, r->logq, n, r->V);
    }
    if (all) {
        TRY(set_hooks(r, -1, 1));
        TRY(forward(r, B, T, &ce));
        r->ce_all += ce;
        r->kl_all += kl_sum(r->logp, r->logq, n, r->V);
    }
    return SCALAR_OK;
}

static scalar_status check_saes(const scalar_model *model, const scalar_sae *const *saes,
                                int32_t n_saes, m_sae *s, const char *fn)
{
    for (int32_t i = 0; i < n_saes; i++) {
        const scalar_sae *sae = saes[i];
        if (!sae)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: saes[%d] is NULL", fn, (int)i);
        if (!sae->cfg.hook_name ||
            scalar_model_hook_parse(sae->cfg.hook_name, &s[i].layer, &s[i].kind) != SCALAR_OK ||
            s[i].layer >= model->cfg.n_layer)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: saes[%d]: the model has no hook "
                                     "\"%s\"", fn, (int)i,
                                     sae->cfg.hook_name ? sae->cfg.hook_name : "(none)");
        if (sae->cfg.d_in != model->cfg.n_embd)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: saes[%d] has d_in %d, the "
                                     "model's n_embd is %d", fn, (int)i, (int)sae->cfg.d_in,
                                     (int)model->cfg.n_embd);
        for (int32_t j = 0; j < i; j++)
            if (s[j].layer == s[i].layer && s[j].kind == s[i].kind)
                return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: saes[%d] and saes[%d] read "
                                         "the same hook %s (one SAE per hook point)", fn, (int)j,
                                         (int)i, sae->cfg.hook_name);
        s[i].sae = sae;
        s[i].topk = sae->cfg.architecture == SCALAR_SAE_TOPK;
        s[i].d = sae->cfg.d_in;
        s[i].F = sae->cfg.d_sae;
        s[i].k = s[i].topk ? sae->cfg.k : 0;
    }
    return SCALAR_OK;
}

static scalar_status alloc_run(m_run *r, scalar_ctx *ctx, int64_t B, int64_t T, const char *fn)
{
    int64_t n = B * T;
    r->logp = scalar__alloc(ctx, (size_t)(n * r->V) * sizeof(float), fn);
    r->logq = scalar__alloc(ctx, (size_t)(n * r->V) * sizeof(float), fn);
    r->x = scalar__alloc(ctx, (size_t)(2 * n + T + 1) * sizeof(int32_t), fn);
    if (!r->logp || !r->logq || !r->x)
        return SCALAR_E_NOMEM;
    r->y = r->x + n;
    r->buf = r->y + n;
    for (int32_t i = 0; i < r->n_saes; i++) {
        m_sae *m = &r->s[i];
        m->vals = scalar__alloc(ctx, (size_t)(n * (m->k + m->d)) * sizeof(float), fn);
        m->idx = scalar__alloc(ctx, (size_t)(n * (m->k > 0 ? m->k : 1)) * sizeof(int32_t), fn);
        m->fired = scalar__calloc(ctx, (size_t)m->F, 1, fn);
        m->sum_x = scalar__calloc(ctx, (size_t)m->d, sizeof(double), fn);
        m->dense = m->topk ? NULL : scalar__alloc(ctx, (size_t)(n * m->F) * sizeof(float), fn);
        if (!m->vals || !m->idx || !m->fired || !m->sum_x || (!m->topk && !m->dense))
            return SCALAR_E_NOMEM;
        m->xhat = m->vals + n * m->k;
    }
    return SCALAR_OK;
}

static void free_run(m_run *r, scalar_ctx *ctx)
{
    for (int32_t i = 0; r->s && i < r->n_saes; i++) {
        scalar__free(ctx, r->s[i].vals);
        scalar__free(ctx, r->s[i].idx);
        scalar__free(ctx, r->s[i].fired);
        scalar__free(ctx, r->s[i].sum_x);
        scalar__free(ctx, r->s[i].dense);
    }
    scalar__free(ctx, r->s);
    scalar__free(ctx, r->logp);
    scalar__free(ctx, r->logq);
    scalar__free(ctx, r->x);
    scalar_model_workspace_free(r->ws);
}

static void write_results(const m_run *r, double *out_each, double *out_all)
{
    double ce_clean = r->ce_clean / r->n_tok;
    for (int32_t i = 0; out_each && i < r->n_saes; i++) {
        const m_sae *m = &r->s[i];
        double *o = out_each + (size_t)i * SCALAR_SAE_METRIC_COUNT, var = m->sum_x2, dead = 0;
        for (int64_t c = 0; c < m->d; c++)
            var -= m->sum_x[c] * m->sum_x[c] / m->n_tok;
        for (int64_t f = 0; f < m->F; f++)
            dead += !m->fired[f];
        o[SCALAR_SAE_METRIC_L0] = m->l0 / m->n_tok;
        o[SCALAR_SAE_METRIC_FVU] = var > 0.0 ? m->sq_err / var : NAN;
        o[SCALAR_SAE_METRIC_MSE] = m->sq_err / m->n_tok;
        o[SCALAR_SAE_METRIC_DEAD] = dead;
        o[SCALAR_SAE_METRIC_CE_CLEAN] = ce_clean;
        o[SCALAR_SAE_METRIC_CE_SPLICED] = m->ce / r->n_tok;
        o[SCALAR_SAE_METRIC_CE_INCREASE] = m->ce / r->n_tok - ce_clean;
        o[SCALAR_SAE_METRIC_KL] = m->kl / r->n_tok;
    }
    if (out_all) {
        for (int e = 0; e < SCALAR_SAE_METRIC_COUNT; e++)
            out_all[e] = NAN;
        out_all[SCALAR_SAE_METRIC_CE_CLEAN] = ce_clean;
        out_all[SCALAR_SAE_METRIC_CE_SPLICED] = r->ce_all / r->n_tok;
        out_all[SCALAR_SAE_METRIC_CE_INCREASE] = r->ce_all / r->n_tok - ce_clean;
        out_all[SCALAR_SAE_METRIC_KL] = r->kl_all / r->n_tok;
    }
}

scalar_status scalar_sae_metrics(const scalar_model *model, const scalar_dataset *data,
                                 int32_t split, const scalar_sae *const *saes, int32_t n_saes,
                                 int64_t batch, int64_t seq, int64_t max_windows,
                                 double *out_each, double *out_all)
{
    static const char fn[] = "scalar_sae_metrics";
    if (!model || !data || !saes)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: model, data or saes is NULL", fn);
    if (n_saes < 1 || batch < 1 || seq < 1 || seq > model->cfg.block_size || max_windows < 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_saes %d, batch %lld, seq %lld "
                                 "(block_size %d), max_windows %lld out of range", fn,
                                 (int)n_saes, (long long)batch, (long long)seq,
                                 (int)model->cfg.block_size, (long long)max_windows);
    int64_t n_tok = 0;
    TRY(scalar_dataset_n_tokens(data, split, &n_tok));
    int64_t n_win = n_tok > 0 ? (n_tok - 1) / seq : 0;
    if (max_windows > 0 && n_win > max_windows)
        n_win = max_windows;
    if (n_win < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: the split has %lld tokens, fewer "
                                 "than one window of %lld + 1", fn, (long long)n_tok,
                                 (long long)seq);
    scalar_ctx *ctx = model->ctx;
    m_run r;
    memset(&r, 0, sizeof r);
    r.model = model;
    r.n_saes = n_saes;
    r.V = model->cfg.vocab_size;
    int64_t B = batch < n_win ? batch : n_win;
    r.s = scalar__calloc(ctx, (size_t)n_saes, sizeof *r.s, fn);
    scalar_status s = r.s ? check_saes(model, saes, n_saes, r.s, fn) : SCALAR_E_NOMEM;
    if (s == SCALAR_OK)
        s = alloc_run(&r, ctx, B, seq, fn);
    if (s == SCALAR_OK)
        s = scalar_model_workspace_create(&r.ws, (scalar_model *)model, B, seq, 0);
    for (int64_t w0 = 0; s == SCALAR_OK && w0 < n_win; w0 += B) {
        int64_t b = n_win - w0 < B ? n_win - w0 : B;
        for (int64_t i = 0; s == SCALAR_OK && i < b; i++) {
            s = scalar_dataset_tokens(data, split, (w0 + i) * seq, seq + 1, r.buf);
            memcpy(r.x + i * seq, r.buf, (size_t)seq * sizeof *r.x);
            memcpy(r.y + i * seq, r.buf + 1, (size_t)seq * sizeof *r.y);
        }
        if (s == SCALAR_OK)
            s = run_batch(&r, b, seq, out_each != NULL, out_all != NULL);
    }
    if (s == SCALAR_OK)
        write_results(&r, out_each, out_all);
    free_run(&r, ctx);
    return s;
}
