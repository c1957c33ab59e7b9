/*
 * cpu_model.c - cpu token + position embeddings and cross-entropy.
 *
 * Dimension legend (row-major, llm.c letters):
 *   B, T     batch size, sequence length; activation row i = b*T + t
 *   C        channels
 *   vocab    rows of the token embedding, classes of the loss
 *   n_pos    rows of the position embedding
 *   n, ld    rows of the logits and their row stride
 *
 * Threads: OpenMP over rows (embedding forward, cross-entropy) or column
 * blocks (embedding backward: rows may repeat a token id), static schedule,
 * above SCALAR__CPU_PAR_MIN_WORK elements.  Each output element is computed
 * by the same instructions in the same order whatever the thread count; the
 * embeddings give exactly cpu-ref's bits.
 */
#include <math.h>

#include "cpu.h"
#include "simd.h"

/* Columns per block of the embedding backward: each block belongs to one thread. */
#define EMB_COL_BLOCK 64
/* Logits per float partial sum of the cross-entropy normaliser; the partial
 * sums add up in double, so a 50k-class row keeps ~1e-7 relative accuracy. */
#define CE_SEGMENT 512

/* ---- embeddings ---- */

/* out[b*T+t, :] = wte[ids[b*T+t], :] + wpe[t, :]
 *   out: [B*T, C]
 *   ids: [B*T], in [0, vocab) (checked by the dispatcher)
 *   wte: [vocab, C];  wpe: [n_pos, C], T <= n_pos */
scalar_status scalar__cpu_embedding_forward(void *self, float *out, const int32_t *ids,
                                            const float *wte, const float *wpe, int64_t B,
                                            int64_t T, int64_t C, int64_t vocab, int64_t n_pos)
{
    const scalar__cpu *s = self;
    (void)vocab;
    (void)n_pos;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, B * T * C))
    for (int64_t i = 0; i < B * T; i++) {
        const float *te = wte + (int64_t)ids[i] * C, *pe = wpe + (i % T) * C;
        float *o = out + i * C;
#pragma omp simd
        for (int64_t c = 0; c < C; c++)
            o[c] = te[c] + pe[c];
    }
    return SCALAR_OK;
}

/* Columns [c0, c0 + nc) of the embedding backward, in cpu-ref's order. */
static void embedding_backward_block(float *d_wte, float *d_wpe, const float *d_out,
                                     const int32_t *ids, int64_t B, int64_t T, int64_t C,
                                     int64_t c0, int64_t nc)
{
    for (int64_t i = 0; d_wte && i < B * T; i++) {
        float *dst = d_wte + (int64_t)ids[i] * C + c0;
        const float *src = d_out + i * C + c0;
#pragma omp simd
        for (int64_t j = 0; j < nc; j++)
            dst[j] += src[j];
    }
    for (int64_t b = 0; d_wpe && b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            float *dst = d_wpe + t * C + c0;
            const float *src = d_out + (b * T + t) * C + c0;
#pragma omp simd
            for (int64_t j = 0; j < nc; j++)
                dst[j] += src[j];
        }
}

/* d_wte[ids[i], :] += d_out[i, :] (i ascending); d_wpe[t, :] += d_out[b*T+t, :]
 * (b ascending)
 *   d_wte: [vocab, C] or NULL;  d_wpe: [n_pos, C] or NULL;  both accumulated
 *   d_out: [B*T, C];  ids: [B*T] (NULL when d_wte is)
 * Threads split the columns, never the rows: repeated ids would race. */
scalar_status scalar__cpu_embedding_backward(void *self, float *d_wte, float *d_wpe,
                                             const float *d_out, const int32_t *ids, int64_t B,
                                             int64_t T, int64_t C, int64_t vocab, int64_t n_pos)
{
    const scalar__cpu *s = self;
    (void)vocab;
    (void)n_pos;
    int64_t n_blocks = (C + EMB_COL_BLOCK - 1) / EMB_COL_BLOCK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, B * T * C) && n_blocks > 1)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        int64_t c0 = blk * EMB_COL_BLOCK;
        int64_t nc = C - c0 < EMB_COL_BLOCK ? C - c0 : EMB_COL_BLOCK;
        embedding_backward_block(d_wte, d_wpe, d_out, ids, B, T, C, c0, nc);
    }
    return SCALAR_OK;
}

/* ---- cross-entropy ---- */

/* The next vector of a row: full, or its tail padded with `fill`. */
static inline scalar__vf row_vec(const float *x, int64_t i, int64_t n, float fill)
{
    return n - i >= VF_LANES ? vf_load(x + i) : vf_load_part(x + i, n - i, fill);
}

/* Max and sum(exp(x - max)) of one row; 0 when the row holds a NaN or its
 * max is infinite (cpu-ref's rule: the loss and its gradient are NaN). */
static int row_max_sumexp(const float *x, int64_t vocab, float *out_max, double *out_sum)
{
    scalar__vf vmax = vf_splat(-INFINITY);
    scalar__vi vnan = {0};
    for (int64_t i = 0; i < vocab; i += VF_LANES) {
        scalar__vf v = row_vec(x, i, vocab, -INFINITY);
        vmax = vf_select(v > vmax, v, vmax);
        vnan |= v != v;
    }
    float max = vf_hmax(vmax);
    if (vf_any(vnan) || isinf(max))
        return 0;
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < vocab; i0 += CE_SEGMENT) {
        int64_t end = vocab - i0 < CE_SEGMENT ? vocab : i0 + CE_SEGMENT;
        scalar__vf vsum = vf_splat(0.0f);
        for (int64_t i = i0; i < end; i += VF_LANES) /* x - max <= 0; padding gives exp 0 */
            vsum += vf_exp_upto_hi(row_vec(x, i, end, -INFINITY) - max);
        sum += vf_hsum(vsum);
    }
    *out_max = max;
    *out_sum = sum; /* >= 1: the max contributes exp(0) */
    return 1;
}

/* losses[i] = logsumexp(logits[i, :vocab]) - logits[i, targets[i]]; 0 when
 * targets[i] < 0
 *   losses:  [n]
 *   logits:  [n, ld], ld >= vocab
 *   targets: [n], < vocab (checked by the dispatcher) */
scalar_status scalar__cpu_cross_entropy_forward(void *self, float *losses, const float *logits,
                                                int64_t ld, const int32_t *targets, int64_t n,
                                                int64_t vocab)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * vocab))
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * ld;
        float max;
        double sum;
        if (targets[i] < 0)
            losses[i] = 0.0f;
        else if (!row_max_sumexp(x, vocab, &max, &sum))
            losses[i] = NAN;
        else
            losses[i] = (float)((double)max + log(sum) - x[targets[i]]);
    }
    return SCALAR_OK;
}

/* dx[c] += dl * (softmax(x)[c] - (c == target)) for one row.  The target's
 * entry is redone on its own, in double: adding dl * p and then -dl would
 * lose the small difference p - 1 when p is close to 1. */
static void cross_entropy_backward_row(float *dx, const float *x, int64_t vocab, int32_t target,
                                       float dl)
{
    float max, dx_target = dx[target];
    double sum;
    if (!row_max_sumexp(x, vocab, &max, &sum)) {
        for (int64_t c = 0; c < vocab; c++)
            dx[c] += NAN;
        return;
    }
    float scale = (float)(dl / sum); /* dl * p = scale * exp(x - max) */
    int64_t i = 0;
    for (; i + VF_LANES <= vocab; i += VF_LANES) {
        scalar__vf e = vf_exp_upto_hi(vf_load(x + i) - max);
        vf_store(dx + i, vf_load(dx + i) + scale * e);
    }
    if (i < vocab) {
        int64_t rest = vocab - i;
        scalar__vf e = vf_exp_upto_hi(vf_load_part(x + i, rest, -INFINITY) - max);
        vf_store_part(dx + i, vf_load_part(dx + i, rest, 0.0f) + scale * e, rest);
    }
    double p_target = exp((double)x[target] - max) / sum;
    dx[target] = (float)(dx_target + (double)dl * (p_target - 1.0));
}

/* d_logits[i, c] += d_losses[i] * (softmax(logits[i, :])[c] - (c == targets[i])),
 * rows with targets[i] < 0 untouched
 *   d_logits: [n, ld], accumulated (columns vocab..ld untouched)
 *   logits:   [n, ld]
 *   targets:  [n];  d_losses: [n] */
scalar_status scalar__cpu_cross_entropy_backward(void *self, float *d_logits,
                                                 const float *logits, int64_t ld,
                                                 const int32_t *targets, const float *d_losses,
                                                 int64_t n, int64_t vocab)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * vocab))
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= 0)
            cross_entropy_backward_row(d_logits + i * ld, logits + i * ld, vocab, targets[i],
                                       d_losses[i]);
    return SCALAR_OK;
}
