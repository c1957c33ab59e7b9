/*
 * cpu_attention_direct.c - causal attention of one small head, forward and
 * backward, in register-blocked vector loops instead of BLIS calls.
 *
 * Why: the toy model's heads are hs = 16 wide and T = 128 long.  Through
 * BLIS every (head, query block) is a GEMM with k = 16 or n = 16, where
 * packing and call overhead cost more than the arithmetic; these loops run
 * the same work 3-4x faster (bench/bench_model.c shows the attention
 * kernels' share of a training step).
 *
 * Dimension legend (row-major, llm.c letters):
 *   T        sequence length of the head; query t sees keys j <= t
 *   hs       head size, <= ATT_DIRECT_HS
 *   ld       row stride of q, k, v and their gradients (3C in the model)
 *   ldo      row stride of out and d_out (C in the model)
 *   Tp       T rounded up to 2 vectors: the row stride of the transposed
 *            keys / values, zero-padded so key blocks never need a tail
 *
 * Blocking: ATT_R = 4 query rows at a time.  Scores and datt are 4 rows x 2
 * vectors of keys (8 accumulators), reduced over hs with one broadcast per
 * row; the weighted sums over keys (out, dq) are 4 rows x 2 vectors of
 * columns, one broadcast of a probability per row and key; the scatter into
 * dk and dv keeps the 4 rows' q (or d_out) columns in registers and streams
 * the key rows past.  Rows past T in the last block read row t0 again and
 * their results are dropped (their weights are zero for dk, dv).
 *
 * Scratch lives on the stack (the transposed keys or values, and 4 rows of
 * datt: at most 32 KiB), so concurrent calls never share memory.
 *
 * Determinism: one call handles one (b, h) head from start to end, in a fixed
 * order of instructions, so results do not depend on the thread count.
 */
#include <math.h>

#include "cpu.h"
#include "simd.h"

#define ATT_R 4
/* Fully unrolled loops over the ATT_R rows, so that the accumulator arrays
 * live in registers (GCC's -O2 would keep them in memory). */
#if defined(__clang__)
#define UNROLL_ROWS _Pragma("unroll")
#else
#define UNROLL_ROWS _Pragma("GCC unroll 8")
#endif
/* Largest head size and T * hs (floats of one transposed tile) for which the
 * direct path is used; wider heads go through BLIS, where GEMMs are big. */
#define ATT_DIRECT_HS 64
#define ATT_DIRECT_TILE 4096
#define ATT_DIRECT_T 1024
#define ATT_KB (2 * VF_LANES) /* keys per score block */

static int64_t pad_keys(int64_t T)
{
    return (T + ATT_KB - 1) / ATT_KB * ATT_KB;
}

int scalar__cpu_attention_direct_ok(int64_t T, int64_t hs)
{
    return hs <= ATT_DIRECT_HS && T <= ATT_DIRECT_T && pad_keys(T) * hs <= ATT_DIRECT_TILE;
}

/* Columns [c, c + VF_LANES) of a row of hs floats, zeros past hs. */
static inline scalar__vf load_cols(const float *row, int64_t c, int64_t hs)
{
    return c + VF_LANES <= hs ? vf_load(row + c) : vf_load_part(row + c, hs - c, 0.0f);
}

static inline void store_cols(float *row, int64_t c, int64_t hs, scalar__vf v)
{
    if (c + VF_LANES <= hs)
        vf_store(row + c, v);
    else if (c < hs)
        vf_store_part(row + c, v, hs - c);
}

/* xt[d * Tp + j] = x[j * ld + d] for j < T, 0 for T <= j < Tp. */
static void transpose_head(float *xt, const float *x, int64_t ld, int64_t T, int64_t Tp,
                           int64_t hs)
{
    for (int64_t d = 0; d < hs; d++) {
        float *dst = xt + d * Tp;
        for (int64_t j = 0; j < T; j++)
            dst[j] = x[j * ld + d];
        for (int64_t j = T; j < Tp; j++)
            dst[j] = 0.0f;
    }
}

/* dst[r][j] = alpha * sum_d rows[r][d] * xt[d][j] for the 4 rows and keys
 * j < kend (rounded up to a block; dst rows hold Tp floats).
 *   rows[r]: [hs], stride-free row pointers;  xt: [hs, Tp] */
static void rows_times_xt(float *dst, int64_t ld_dst, const float *const rows[ATT_R],
                          const float *xt, int64_t Tp, int64_t hs, int64_t kend, float alpha)
{
    for (int64_t j = 0; j < kend; j += ATT_KB) {
        scalar__vf acc[ATT_R][2];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++)
            acc[r][0] = acc[r][1] = vf_splat(0.0f);
        for (int64_t d = 0; d < hs; d++) {
            scalar__vf ka = vf_load(xt + d * Tp + j), kb = vf_load(xt + d * Tp + j + VF_LANES);
            UNROLL_ROWS
            for (int r = 0; r < ATT_R; r++) {
                scalar__vf qd = vf_splat(rows[r][d]);
                acc[r][0] = vf_fma(qd, ka, acc[r][0]);
                acc[r][1] = vf_fma(qd, kb, acc[r][1]);
            }
        }
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            vf_store(dst + r * ld_dst + j, alpha * acc[r][0]);
            vf_store(dst + r * ld_dst + j + VF_LANES, alpha * acc[r][1]);
        }
    }
}

/* out_rows[r][c] (=, or += when accumulate) sum_{j < kend} w[r][j] x[j][c]:
 * the weighted sum of key rows x (stride ld) for the 4 weight rows w. */
static void weights_times_rows(float *const out_rows[ATT_R], int nr, const float *const w[ATT_R],
                               const float *x, int64_t ld, int64_t hs, int64_t kend,
                               int accumulate)
{
    for (int64_t c = 0; c < hs; c += 2 * VF_LANES) {
        scalar__vf acc[ATT_R][2];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++)
            acc[r][0] = acc[r][1] = vf_splat(0.0f);
        for (int64_t j = 0; j < kend; j++) {
            scalar__vf xa = load_cols(x + j * ld, c, hs);
            scalar__vf xb = load_cols(x + j * ld, c + VF_LANES, hs);
            UNROLL_ROWS
            for (int r = 0; r < ATT_R; r++) {
                scalar__vf wj = vf_splat(w[r][j]);
                acc[r][0] = vf_fma(wj, xa, acc[r][0]);
                acc[r][1] = vf_fma(wj, xb, acc[r][1]);
            }
        }
        for (int r = 0; r < nr; r++) {
            if (accumulate) {
                acc[r][0] += load_cols(out_rows[r], c, hs);
                acc[r][1] += load_cols(out_rows[r], c + VF_LANES, hs);
            }
            store_cols(out_rows[r], c, hs, acc[r][0]);
            store_cols(out_rows[r], c + VF_LANES, hs, acc[r][1]);
        }
    }
}

/* dx[j][c] += sum_r w[r][j - w_off] src[r][c] for keys j0 <= j < j1: the 4
 * source rows' columns stay in registers while the key rows stream past. */
static void scatter_to_keys(float *dx, int64_t ld, const float *const w[ATT_R], int64_t w_off,
                            const float *const src[ATT_R], int64_t hs, int64_t j0, int64_t j1)
{
    for (int64_t c = 0; c < hs; c += 2 * VF_LANES) {
        scalar__vf sa[ATT_R], sb[ATT_R];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            sa[r] = load_cols(src[r], c, hs);
            sb[r] = load_cols(src[r], c + VF_LANES, hs);
        }
        for (int64_t j = j0; j < j1; j++) {
            float *row = dx + j * ld;
            scalar__vf a = load_cols(row, c, hs), b = load_cols(row, c + VF_LANES, hs);
            UNROLL_ROWS
            for (int r = 0; r < ATT_R; r++) {
                scalar__vf wj = vf_splat(w[r][j - w_off]);
                a = vf_fma(wj, sa[r], a);
                b = vf_fma(wj, sb[r], b);
            }
            store_cols(row, c, hs, a);
            store_cols(row, c + VF_LANES, hs, b);
        }
    }
}

/* Forward of one head:
 *   att[t][j] = softmax_{j <= t}(scale q[t] . k[j]), 0 for j > t   [T, T]
 *   out[t]    = sum_{j <= t} att[t][j] v[j]                        [T, hs], stride ldo */
void scalar__cpu_attention_head_forward(float *out, float *att, const float *q, const float *k,
                                        const float *v, int64_t ld, int64_t ldo, int64_t T,
                                        int64_t hs, float scale)
{
    float kt[ATT_DIRECT_TILE];
    float scores[ATT_R * ATT_DIRECT_T];
    int64_t Tp = pad_keys(T);
    transpose_head(kt, k, ld, T, Tp, hs);
    for (int64_t t0 = 0; t0 < T; t0 += ATT_R) {
        int nr = T - t0 < ATT_R ? (int)(T - t0) : ATT_R;
        int64_t kend = t0 + nr; /* keys any of the rows sees */
        const float *q_rows[ATT_R], *w[ATT_R];
        float *out_rows[ATT_R];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            int64_t t = t0 + (r < nr ? r : 0);
            q_rows[r] = q + t * ld;
            w[r] = att + t * T;
            out_rows[r] = out + t * ldo;
        }
        rows_times_xt(scores, Tp, q_rows, kt, Tp, hs, kend, scale);
        for (int r = 0; r < nr; r++) {
            int64_t t = t0 + r;
            float *row = att + t * T;
            scalar__cpu_softmax_row(row, scores + r * Tp, t + 1);
            for (int64_t j = t + 1; j < T; j++)
                row[j] = 0.0f;
        }
        weights_times_rows(out_rows, nr, w, v, ld, hs, kend, 0);
    }
}

/* Backward of one head, accumulated into dq, dk, dv (stride ld):
 *   datt[t][j] = d_out[t] . v[j]
 *   dpre[t][j] = scale att[t][j] (datt[t][j] - sum_{j' <= t} att[t][j'] datt[t][j'])
 *   dq[t] += sum_j dpre[t][j] k[j];  dk[j] += sum_t dpre[t][j] q[t];
 *   dv[j] += sum_t att[t][j] d_out[t] */
void scalar__cpu_attention_head_backward(float *dq, float *dk, float *dv, const float *d_out,
                                         const float *q, const float *k, const float *v,
                                         const float *att, int64_t ld, int64_t ldo, int64_t T,
                                         int64_t hs, float scale)
{
    float vt[ATT_DIRECT_TILE];
    float dpre[ATT_R * ATT_DIRECT_T];
    static const float zeros[ATT_DIRECT_HS];
    int64_t Tp = pad_keys(T);
    transpose_head(vt, v, ld, T, Tp, hs);
    for (int64_t t0 = 0; t0 < T; t0 += ATT_R) {
        int nr = T - t0 < ATT_R ? (int)(T - t0) : ATT_R;
        int64_t kend = t0 + nr;
        const float *d_rows[ATT_R], *q_rows[ATT_R], *att_rows[ATT_R], *w[ATT_R];
        float *dq_rows[ATT_R];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            int valid = r < nr;
            int64_t t = t0 + (valid ? r : 0);
            d_rows[r] = valid ? d_out + t * ldo : zeros;
            q_rows[r] = valid ? q + t * ld : zeros;
            att_rows[r] = att + t * T;
            w[r] = dpre + r * Tp;
            dq_rows[r] = dq + t * ld;
        }
        rows_times_xt(dpre, Tp, d_rows, vt, Tp, hs, kend, 1.0f); /* datt */
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            float *row = dpre + r * Tp;
            int64_t n = r < nr ? t0 + r + 1 : 0; /* keys of this query */
            const float *a = att_rows[r];
            scalar__vf vs = vf_splat(0.0f);
            int64_t j = 0;
            for (; j + VF_LANES <= n; j += VF_LANES)
                vs = vf_fma(vf_load(a + j), vf_load(row + j), vs);
            if (j < n)
                vs += vf_load_part(a + j, n - j, 0.0f) * vf_load_part(row + j, n - j, 0.0f);
            float s = vf_hsum(vs);
#pragma omp simd
            for (j = 0; j < n; j++)
                row[j] = scale * a[j] * (row[j] - s);
            for (j = n; j < kend; j++)
                row[j] = 0.0f;
        }
        weights_times_rows(dq_rows, nr, w, k, ld, hs, kend, 1);
        scatter_to_keys(dk, ld, w, 0, q_rows, hs, 0, kend);
        /* dv: keys before t0 are seen by all 4 rows; the diagonal block
         * reads att only where j <= t (a masked copy), like cpu-ref */
        scatter_to_keys(dv, ld, att_rows, 0, d_rows, hs, 0, t0);
        float diag[ATT_R][ATT_R];
        const float *diag_rows[ATT_R];
        UNROLL_ROWS
        for (int r = 0; r < ATT_R; r++) {
            for (int c = 0; c < ATT_R; c++)
                diag[r][c] = r < nr && c <= r && c < nr ? att_rows[r][t0 + c] : 0.0f;
            diag_rows[r] = diag[r];
        }
        scatter_to_keys(dv, ld, diag_rows, t0, d_rows, hs, t0, kend);
    }
}
