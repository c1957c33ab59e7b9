/*
 * cpu_attention.c - cpu causal multi-head self-attention, forward and backward.
 *
 * Dimension legend (row-major, llm.c letters):
 *   B        batch size
 *   T        sequence length; query t sees keys t2 <= t
 *   C        channels; n_head heads of hs = C / n_head channels each
 *   ld       row stride of qkv and d_qkv, 3C (each row is q | k | v)
 *
 * Small heads (hs <= 64, T * hs <= 4096: the toy model) go to the
 * register-blocked loops of cpu_attention_direct.c, one task per (b, h).
 * Wider heads use BLIS as follows.
 *
 * Forward: tasks of (b, h, ATT_QB query rows [t0, t1)), run by OpenMP
 * threads in any order.  Each is two single-threaded BLIS GEMMs with the
 * softmax between them: the scores of its rows against keys [0, t1) go
 * straight into att (only the block's upper-right triangle is wasted work,
 * ~ATT_QB / T of the total), each row's softmax runs in place over t2 <= t
 * with zeros after, and out = att v reads the zeros harmlessly.  Every task
 * writes its own rows of out and att with the same instructions on any
 * thread count, so results never depend on it.
 *
 * Backward: one task per (b, h) pair, since dk and dv of a head gather over
 * every query t.  cpu-ref's two passes per query row (s = sum att datt, then
 * datt again for the updates), done for ATT_QB rows at a time against
 * ATT_KT keys at a time so that GEMMs do the work: per tile,
 * datt = d_out v^T, and in the second pass dpre = att (datt - s) feeds
 * dq += dpre k, dk += dpre^T q and dv += att^T d_out.  Nothing is allocated:
 * the tile lives on the stack (32 KiB).
 */
#include <math.h>

#include "cpu.h"

/* Query rows per forward task (one pair of GEMMs) and per backward block. */
#define ATT_QB 64
/* Keys per backward tile: the tile of datt / dpre is ATT_QB x ATT_KT floats
 * (32 KiB) on the stack. */
#define ATT_KT 128

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* One forward task: query rows [t0, t1) of batch b, head h.
 *   scores: att[b, h, t0:t1, 0:t1] = (q[t0:t1] k[0:t1]^T) / sqrt(hs)
 *   softmax of each row t over t2 <= t, zeros for t2 > t
 *   out[b, t0:t1, head h] = att[b, h, t0:t1, 0:t1] v[0:t1] */
static void attention_forward_task(float *out, float *att, const float *qkv, int64_t b,
                                   int64_t h, int64_t t0, int64_t t1, int64_t T, int64_t C,
                                   int64_t n_head)
{
    int64_t hs = C / n_head, ld = 3 * C, m = t1 - t0;
    float scale = 1.0f / sqrtf((float)hs);
    const float *q0 = qkv + b * T * ld + h * hs, *k0 = q0 + C, *v0 = q0 + 2 * C;
    float *rows = att + ((b * n_head + h) * T + t0) * T;
    scalar__cpu_blis_sgemm(1, SCALAR_NO_TRANS, SCALAR_TRANS, m, t1, hs, scale, q0 + t0 * ld, ld,
                           k0, ld, 0.0f, rows, T);
    for (int64_t t = t0; t < t1; t++) {
        float *row = rows + (t - t0) * T;
        scalar__cpu_softmax_row(row, row, t + 1);
        for (int64_t t2 = t + 1; t2 < T; t2++)
            row[t2] = 0.0f;
    }
    scalar__cpu_blis_sgemm(1, SCALAR_NO_TRANS, SCALAR_NO_TRANS, m, hs, t1, 1.0f, rows, T, v0, ld,
                           0.0f, out + (b * T + t0) * C + h * hs, C);
}

/* att = causal softmax(q k^T / sqrt(hs)), out = att v
 *   out: [B*T, C]
 *   att: [B, n_head, T, T]
 *   qkv: [B*T, 3C] */
scalar_status scalar__cpu_attention_forward(void *self, float *out, float *att, const float *qkv,
                                            int64_t B, int64_t T, int64_t C, int64_t n_head)
{
    const scalar__cpu *s = self;
    int64_t hs = C / n_head;
    if (scalar__cpu_attention_direct_ok(T, hs)) {
        float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1) \
    if (scalar__cpu_parallel(s, B * n_head * T * T) && B * n_head > 1)
        for (int64_t bh = 0; bh < B * n_head; bh++) {
            int64_t b = bh / n_head, h = bh % n_head;
            const float *q = qkv + b * T * 3 * C + h * hs;
            scalar__cpu_attention_head_forward(out + b * T * C + h * hs, att + bh * T * T, q,
                                               q + C, q + 2 * C, 3 * C, C, T, hs, scale);
        }
        return SCALAR_OK;
    }
    int64_t n_qb = (T + ATT_QB - 1) / ATT_QB, n_tasks = B * n_head * n_qb;
    /* Later query blocks hold more keys: dynamic scheduling, heaviest first,
     * balances the triangle; which thread runs a task never changes its result. */
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1) \
    if (scalar__cpu_parallel(s, B * n_head * T * T) && n_tasks > 1)
    for (int64_t task = n_tasks - 1; task >= 0; task--) {
        int64_t qb = task % n_qb, bh = task / n_qb;
        int64_t t0 = qb * ATT_QB;
        attention_forward_task(out, att, qkv, bh / n_head, bh % n_head, t0,
                               min64(t0 + ATT_QB, T), T, C, n_head);
    }
    return SCALAR_OK;
}

/* A query block [t0, t1) of one head against its keys, tile by tile:
 * everything the backward's GEMMs need. */
typedef struct att_block {
    const float *q0, *k0, *v0, *d_out0, *att0; /* row 0 of this (b, h) */
    float *dq0, *dk0, *dv0;                     /* row 0 of its gradients */
    int64_t ld, C, T, hs, t0, t1;
    float scale;
} att_block;

/* tile[r, c] = d_out[t0 + r] . v[k0 + c], r < t1 - t0, c < kn (row stride ATT_KT). */
static void datt_tile(float *tile, const att_block *a, int64_t k0, int64_t kn)
{
    scalar__cpu_blis_sgemm(1, SCALAR_NO_TRANS, SCALAR_TRANS, a->t1 - a->t0, kn, a->hs, 1.0f,
                           a->d_out0 + a->t0 * a->C, a->C, a->v0 + k0 * a->ld, a->ld, 0.0f, tile,
                           ATT_KT);
}

/* s[r] = sum_{t2 <= t0 + r} att[t0 + r, t2] datt[t0 + r, t2]: the first pass. */
static void backward_row_sums(float *s, float *tile, const att_block *a)
{
    int64_t rows = a->t1 - a->t0;
    for (int64_t r = 0; r < rows; r++)
        s[r] = 0.0f;
    for (int64_t k0 = 0; k0 < a->t1; k0 += ATT_KT) {
        int64_t kn = min64(ATT_KT, a->t1 - k0);
        datt_tile(tile, a, k0, kn);
        for (int64_t r = 0; r < rows; r++) {
            const float *att_row = a->att0 + (a->t0 + r) * a->T + k0, *datt = tile + r * ATT_KT;
            int64_t n = min64(kn, a->t0 + r - k0 + 1); /* keys <= t */
            for (int64_t c = 0; c < n; c++)
                s[r] += att_row[c] * datt[c];
        }
    }
}

/* The second pass over one key tile [k0, k0 + kn): the tile becomes
 * dpre = att (datt - s), 0 past the diagonal, then
 *   dq[t0:t1]     += scale dpre k[k0:k0+kn]
 *   dk[k0:k0+kn]  += scale dpre^T q[t0:t1]
 *   dv[k0:k0+kn]  += att^T d_out[t0:t1]  (att masked the same way) */
static void backward_tile(float *tile, const float *s, const att_block *a, int64_t k0, int64_t kn)
{
    int64_t rows = a->t1 - a->t0, ld = a->ld;
    int diagonal = k0 + kn - 1 > a->t0; /* some key after some row's query */
    datt_tile(tile, a, k0, kn);
    for (int64_t r = 0; r < rows; r++) {
        const float *att_row = a->att0 + (a->t0 + r) * a->T + k0;
        float *d = tile + r * ATT_KT;
        int64_t n = min64(kn, a->t0 + r - k0 + 1);
        for (int64_t c = 0; c < n; c++)
            d[c] = att_row[c] * (d[c] - s[r]);
        for (int64_t c = n; c < kn; c++)
            d[c] = 0.0f;
    }
    scalar__cpu_blis_sgemm(1, SCALAR_NO_TRANS, SCALAR_NO_TRANS, rows, a->hs, kn, a->scale, tile,
                           ATT_KT, a->k0 + k0 * ld, ld, 1.0f, a->dq0 + a->t0 * ld, ld);
    scalar__cpu_blis_sgemm(1, SCALAR_TRANS, SCALAR_NO_TRANS, kn, a->hs, rows, a->scale, tile,
                           ATT_KT, a->q0 + a->t0 * ld, ld, 1.0f, a->dk0 + k0 * ld, ld);
    const float *att = a->att0 + a->t0 * a->T + k0;
    int64_t ld_att = a->T;
    if (diagonal) { /* the masked copy: entries past the diagonal are not read */
        for (int64_t r = 0; r < rows; r++) {
            int64_t n = min64(kn, a->t0 + r - k0 + 1);
            for (int64_t c = 0; c < kn; c++)
                tile[r * ATT_KT + c] = c < n ? att[r * ld_att + c] : 0.0f;
        }
        att = tile;
        ld_att = ATT_KT;
    }
    scalar__cpu_blis_sgemm(1, SCALAR_TRANS, SCALAR_NO_TRANS, kn, a->hs, rows, 1.0f, att, ld_att,
                           a->d_out0 + a->t0 * a->C, a->C, 1.0f, a->dv0 + k0 * ld, ld);
}

/* d_qkv += the gradient of attention's out
 *   d_qkv: [B*T, 3C], accumulated
 *   d_out: [B*T, C]
 *   qkv:   [B*T, 3C]
 *   att:   [B, n_head, T, T], from the forward pass
 * One task per (b, h), its query blocks and key tiles in ascending order, so
 * every element of d_qkv gets its additions in one fixed order whatever the
 * thread count. */
scalar_status scalar__cpu_attention_backward(void *self, float *d_qkv, const float *d_out,
                                             const float *qkv, const float *att, int64_t B,
                                             int64_t T, int64_t C, int64_t n_head)
{
    const scalar__cpu *s = self;
    int64_t hs = C / n_head, ld = 3 * C;
    if (scalar__cpu_attention_direct_ok(T, hs)) {
        float scale = 1.0f / sqrtf((float)hs);
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1) \
    if (scalar__cpu_parallel(s, B * n_head * T * T) && B * n_head > 1)
        for (int64_t bh = 0; bh < B * n_head; bh++) {
            int64_t b = bh / n_head, h = bh % n_head, off = b * T * ld + h * hs;
            scalar__cpu_attention_head_backward(
                d_qkv + off, d_qkv + off + C, d_qkv + off + 2 * C, d_out + b * T * C + h * hs,
                qkv + off, qkv + off + C, qkv + off + 2 * C, att + bh * T * T, ld, C, T, hs, scale);
        }
        return SCALAR_OK;
    }
#pragma omp parallel for num_threads(s->n_threads) schedule(dynamic, 1) \
    if (scalar__cpu_parallel(s, B * n_head * T * T) && B * n_head > 1)
    for (int64_t bh = 0; bh < B * n_head; bh++) {
        int64_t b = bh / n_head, h = bh % n_head;
        float tile[ATT_QB * ATT_KT], row_sums[ATT_QB];
        att_block a = {
            .q0 = qkv + b * T * ld + h * hs, .k0 = qkv + b * T * ld + C + h * hs,
            .v0 = qkv + b * T * ld + 2 * C + h * hs, .d_out0 = d_out + b * T * C + h * hs,
            .att0 = att + bh * T * T, .dq0 = d_qkv + b * T * ld + h * hs,
            .dk0 = d_qkv + b * T * ld + C + h * hs, .dv0 = d_qkv + b * T * ld + 2 * C + h * hs,
            .ld = ld, .C = C, .T = T, .hs = hs, .scale = 1.0f / sqrtf((float)hs),
        };
        for (a.t0 = 0; a.t0 < T; a.t0 += ATT_QB) {
            a.t1 = min64(a.t0 + ATT_QB, T);
            backward_row_sums(row_sums, tile, &a);
            for (int64_t k0 = 0; k0 < a.t1; k0 += ATT_KT)
                backward_tile(tile, row_sums, &a, k0, min64(ATT_KT, a.t1 - k0));
        }
    }
    return SCALAR_OK;
}
