/*
 * ref_model.c - cpu-ref kernels of the GPT-2 model layer: causal attention,
 * token + position embeddings, cross-entropy.
 *
 * Dimension legend (row-major, llm.c letters):
 *   B        batch size
 *   T        sequence length (positions 0..T-1)
 *   C        channels; n_head heads of hs = C / n_head channels each
 *   vocab    rows of the token embedding, classes of the loss
 *   n_pos    rows of the position embedding
 *   n, ld    rows of the logits and their row stride
 *
 * Oracle code: dot products and sums in double, the formula's own loop
 * order.  Gradients that gather over many rows (dk, dv, dq of attention,
 * the embedding tables) add into their float outputs one term at a time,
 * as llm.c does: holding them in double would need scratch memory.
 */
#include <math.h>

#include "ref.h"

/* ---- attention ---- */

/* q . k over one head, in double. */
static double dot_head(const float *q, const float *k, int64_t hs)
{
    double s = 0.0;
    for (int64_t j = 0; j < hs; j++)
        s += (double)q[j] * k[j];
    return s;
}

/* att_row[t2] = softmax over t2 <= t of scale * q . k[t2], 0 beyond t.
 *   att_row: [T]
 *   q:       [hs]
 *   k0:      key t2 = 0 of this head; key t2 at k0 + t2 * ld
 * The rules of scalar__ref_softmax_rows: a NaN score makes the row NaN, a row
 * of -inf scores is zeros.  Scores are recomputed rather than stored, so the
 * probabilities see double scores. */
static void attention_row(float *att_row, const float *q, const float *k0, int64_t ld, int64_t t,
                          int64_t T, int64_t hs, double scale)
{
    double max = -INFINITY;
    int has_nan = 0;
    for (int64_t t2 = 0; t2 <= t; t2++) {
        double s = scale * dot_head(q, k0 + t2 * ld, hs);
        if (s > max)
            max = s;
        else if (isnan(s))
            has_nan = 1;
    }
    for (int64_t t2 = t + 1; t2 < T; t2++)
        att_row[t2] = 0.0f;
    if (has_nan || max == -INFINITY) {
        for (int64_t t2 = 0; t2 <= t; t2++)
            att_row[t2] = has_nan ? NAN : 0.0f;
        return;
    }
    double sum = 0.0;
    for (int64_t t2 = 0; t2 <= t; t2++)
        sum += exp(scale * dot_head(q, k0 + t2 * ld, hs) - max);
    for (int64_t t2 = 0; t2 <= t; t2++)
        att_row[t2] = (float)(exp(scale * dot_head(q, k0 + t2 * ld, hs) - max) / sum);
}

/* att = causal softmax(q k^T / sqrt(hs)), out = att v, per batch and head
 *   out: [B*T, C]
 *   att: [B, n_head, T, T]
 *   qkv: [B*T, 3C], each row q | k | v */
scalar_status scalar__ref_attention_forward(void *self, float *out, float *att, const float *qkv,
                                            int64_t B, int64_t T, int64_t C, int64_t n_head)
{
    (void)self;
    int64_t hs = C / n_head, ld = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < n_head; h++) {
            const float *q0 = qkv + b * T * ld + h * hs, *k0 = q0 + C, *v0 = q0 + 2 * C;
            for (int64_t t = 0; t < T; t++) {
                float *att_row = att + ((b * n_head + h) * T + t) * T;
                attention_row(att_row, q0 + t * ld, k0, ld, t, T, hs, scale);
                float *out_row = out + (b * T + t) * C + h * hs;
                for (int64_t j = 0; j < hs; j++) {
                    double acc = 0.0;
                    for (int64_t t2 = 0; t2 <= t; t2++)
                        acc += (double)att_row[t2] * v0[t2 * ld + j];
                    out_row[j] = (float)acc;
                }
            }
        }
    return SCALAR_OK;
}

/* Backward of one row (b, h, t): datt[t2] = d_out . v[t2],
 * dpre[t2] = att[t2] (datt[t2] - sum_t3 att[t3] datt[t3]); then
 * dq += dpre k[t2] scale, dk[t2] += dpre q scale, dv[t2] += att[t2] d_out.
 *   dq, q, d_out: [hs];  att_row: [T];  key / value t2 at k0, v0 + t2 * ld
 *   dk0, dv0: key / value gradients of t2 = 0, same stride */
static void attention_backward_row(float *dq, float *dk0, float *dv0, const float *d_out,
                                   const float *q, const float *k0, const float *v0,
                                   const float *att_row, int64_t ld, int64_t t, int64_t hs,
                                   double scale)
{
    double s = 0.0; /* first pass: sum_t2 att[t2] datt[t2] */
    for (int64_t t2 = 0; t2 <= t; t2++)
        s += att_row[t2] * dot_head(d_out, v0 + t2 * ld, hs);
    for (int64_t t2 = 0; t2 <= t; t2++) { /* second pass: datt again, then the three adds */
        double datt = dot_head(d_out, v0 + t2 * ld, hs);
        double dpre = (double)att_row[t2] * (datt - s) * scale;
        const float *k = k0 + t2 * ld;
        float *dk = dk0 + t2 * ld, *dv = dv0 + t2 * ld;
        for (int64_t j = 0; j < hs; j++) {
            dq[j] = (float)(dq[j] + dpre * k[j]);
            dk[j] = (float)(dk[j] + dpre * q[j]);
            dv[j] = (float)(dv[j] + (double)att_row[t2] * d_out[j]);
        }
    }
}

/* d_qkv += the gradient of attention's out
 *   d_qkv: [B*T, 3C], accumulated
 *   d_out: [B*T, C]
 *   qkv:   [B*T, 3C]
 *   att:   [B, n_head, T, T], from the forward pass */
scalar_status scalar__ref_attention_backward(void *self, float *d_qkv, const float *d_out,
                                             const float *qkv, const float *att, int64_t B,
                                             int64_t T, int64_t C, int64_t n_head)
{
    (void)self;
    int64_t hs = C / n_head, ld = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < n_head; h++) {
            const float *q0 = qkv + b * T * ld + h * hs;
            float *dq0 = d_qkv + b * T * ld + h * hs;
            for (int64_t t = 0; t < T; t++)
                attention_backward_row(dq0 + t * ld, dq0 + C, dq0 + 2 * C,
                                       d_out + (b * T + t) * C + h * hs, q0 + t * ld, q0 + C,
                                       q0 + 2 * C, att + ((b * n_head + h) * T + t) * T, ld, t,
                                       hs, scale);
        }
    return SCALAR_OK;
}

/* ---- embeddings ---- */

/* out[b*T+t, :] = wte[ids[b*T+t], :] + wpe[t, :]
 *   out: [B*T, C]
 *   ids: [B*T], in [0, vocab) (checked by the dispatcher)
 *   wte: [vocab, C]
 *   wpe: [n_pos, C], T <= n_pos */
scalar_status scalar__ref_embedding_forward(void *self, float *out, const int32_t *ids,
                                            const float *wte, const float *wpe, int64_t B,
                                            int64_t T, int64_t C, int64_t vocab, int64_t n_pos)
{
    (void)self;
    (void)vocab;
    (void)n_pos;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int64_t i = b * T + t;
            for (int64_t c = 0; c < C; c++)
                out[i * C + c] = wte[(int64_t)ids[i] * C + c] + wpe[t * C + c];
        }
    return SCALAR_OK;
}

/* d_wte[ids[i], :] += d_out[i, :] for i ascending; d_wpe[t, :] += d_out[b*T+t, :]
 * for b ascending.  Float adds in that order: the contract every backend keeps.
 *   d_wte: [vocab, C] or NULL, accumulated
 *   d_wpe: [n_pos, C] or NULL, accumulated
 *   d_out: [B*T, C]
 *   ids:   [B*T] (NULL when d_wte is) */
scalar_status scalar__ref_embedding_backward(void *self, float *d_wte, float *d_wpe,
                                             const float *d_out, const int32_t *ids, int64_t B,
                                             int64_t T, int64_t C, int64_t vocab, int64_t n_pos)
{
    (void)self;
    (void)vocab;
    (void)n_pos;
    for (int64_t i = 0; d_wte && i < B * T; i++)
        for (int64_t c = 0; c < C; c++)
            d_wte[(int64_t)ids[i] * C + c] += d_out[i * C + c];
    for (int64_t b = 0; d_wpe && b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t c = 0; c < C; c++)
                d_wpe[t * C + c] += d_out[(b * T + t) * C + c];
    return SCALAR_OK;
}

/* ---- cross-entropy ---- */

/* max and log(sum(exp(x - max))) of one row, in double; 0 if the row holds a
 * NaN or its max is infinite (then the loss and its gradient are NaN). */
static int row_logsumexp(const float *x, int64_t vocab, double *out_max, double *out_log_sum)
{
    double max = -INFINITY;
    for (int64_t c = 0; c < vocab; c++) {
        if (isnan(x[c]))
            return 0;
        if (x[c] > max)
            max = x[c];
    }
    if (isinf(max))
        return 0;
    double sum = 0.0;
    for (int64_t c = 0; c < vocab; c++)
        sum += exp((double)x[c] - max);
    *out_max = max;
    *out_log_sum = log(sum);
    return 1;
}

/* losses[i] = logsumexp(logits[i, :vocab]) - logits[i, targets[i]]; 0 when
 * targets[i] < 0
 *   losses:  [n]
 *   logits:  [n, ld], ld >= vocab
 *   targets: [n], < vocab (checked by the dispatcher) */
scalar_status scalar__ref_cross_entropy_forward(void *self, float *losses, const float *logits,
                                                int64_t ld, const int32_t *targets, int64_t n,
                                                int64_t vocab)
{
    (void)self;
    for (int64_t i = 0; i < n; i++) {
        const float *x = logits + i * ld;
        double max, log_sum;
        if (targets[i] < 0)
            losses[i] = 0.0f;
        else if (!row_logsumexp(x, vocab, &max, &log_sum))
            losses[i] = NAN;
        else
            losses[i] = (float)(max + log_sum - x[targets[i]]);
    }
    return SCALAR_OK;
}

/* d_logits[i, c] += d_losses[i] * (softmax(logits[i, :])[c] - (c == targets[i])),
 * rows with targets[i] < 0 untouched
 *   d_logits: [n, ld], accumulated (columns vocab..ld untouched)
 *   logits:   [n, ld]
 *   targets:  [n];  d_losses: [n] */
scalar_status scalar__ref_cross_entropy_backward(void *self, float *d_logits,
                                                 const float *logits, int64_t ld,
                                                 const int32_t *targets, const float *d_losses,
                                                 int64_t n, int64_t vocab)
{
    (void)self;
    for (int64_t i = 0; i < n; i++) {
        if (targets[i] < 0)
            continue;
        const float *x = logits + i * ld;
        float *dx = d_logits + i * ld;
        double max = 0.0, log_sum = 0.0;
        int finite = row_logsumexp(x, vocab, &max, &log_sum);
        for (int64_t c = 0; c < vocab; c++) {
            double p = finite ? exp((double)x[c] - max - log_sum) : NAN;
            double indicator = c == targets[i] ? 1.0 : 0.0;
            dx[c] = (float)(dx[c] + (double)d_losses[i] * (p - indicator));
        }
    }
    return SCALAR_OK;
}
