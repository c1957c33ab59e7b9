/*
 * cpu_sparse.c - the cpu backend's sparse-code kernels: decode (gather-
 * accumulate of k dictionary rows per token), dot (the values' gradient) and
 * outer-add (the dictionary's gradient).
 *
 * Dimension legend (row-major):
 *   n       tokens;  k  codes per token
 *   n_rows  dictionary rows;  d  row length
 *
 * Threads: decode and dot split the tokens; outer-add splits the dictionary
 * rows (every thread scans all n*k codes and takes those in its row range),
 * so each row receives its additions in (t, j) order whatever the thread
 * count.  decode and outer-add are cpu-ref's float operations in cpu-ref's
 * order (ISO C: no contraction into FMAs), hence bit-identical to it; dot
 * sums in float vectors, a few ulps from cpu-ref's double.
 */
#include <string.h>

#include "cpu.h"

/* out[t] = bias + sum_j values[t,j] W[idx[t,j]]
 *   out: [n, d];  values, idx: [n, k];  W: [n_rows, d];  bias: [d] or NULL */
scalar_status scalar__cpu_sparse_decode(void *self, float *out, const float *values,
                                        const int32_t *idx, const float *W, const float *bias,
                                        int64_t n, int64_t k, int64_t n_rows, int64_t d)
{
    const scalar__cpu *s = self;
    (void)n_rows;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * (k + 1) * d))
    for (int64_t t = 0; t < n; t++) {
        float *restrict o = out + t * d;
        if (bias)
            memcpy(o, bias, (size_t)d * sizeof *o);
        else
            memset(o, 0, (size_t)d * sizeof *o);
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            if (r < 0)
                continue;
            const float *restrict w = W + (int64_t)r * d;
            float v = values[t * k + j];
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                o[c] += v * w[c];
        }
    }
    return SCALAR_OK;
}

/* out[t,j] = x[t] . W[idx[t,j]] (0 for an absent code)
 *   out, idx: [n, k];  W: [n_rows, d];  x: [n, d] */
scalar_status scalar__cpu_sparse_dot(void *self, float *out, const int32_t *idx, const float *W,
                                     const float *x, int64_t n, int64_t k, int64_t n_rows,
                                     int64_t d)
{
    const scalar__cpu *s = self;
    (void)n_rows;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * k * d))
    for (int64_t t = 0; t < n; t++) {
        const float *restrict xt = x + t * d;
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            float acc = 0.0f;
            if (r >= 0) {
                const float *restrict w = W + (int64_t)r * d;
#pragma omp simd reduction(+ : acc)
                for (int64_t c = 0; c < d; c++)
                    acc += xt[c] * w[c];
            }
            out[t * k + j] = acc;
        }
    }
    return SCALAR_OK;
}

/* dW[idx[t,j]] += a[t,j] x[t], (t, j) ascending per row; rows [r0, r1) only. */
static void outer_add_rows(float *dW, const float *a, const int32_t *idx, const float *x,
                           int64_t n, int64_t k, int64_t d, int32_t r0, int32_t r1)
{
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            if (r < r0 || r >= r1)
                continue;
            float *restrict g = dW + (int64_t)r * d;
            const float *restrict xt = x + t * d;
            float v = a[t * k + j];
#pragma omp simd
            for (int64_t c = 0; c < d; c++)
                g[c] += v * xt[c];
        }
}

/* dW[idx[t,j]] += a[t,j] x[t]
 *   dW: [n_rows, d], accumulated;  a, idx: [n, k];  x: [n, d] */
scalar_status scalar__cpu_sparse_outer_add(void *self, float *dW, const float *a,
                                           const int32_t *idx, const float *x, int64_t n,
                                           int64_t k, int64_t n_rows, int64_t d)
{
    const scalar__cpu *s = self;
    int32_t n_parts = scalar__cpu_parallel(s, n * k * d) && n_rows > 1 ? s->n_threads : 1;
#pragma omp parallel for num_threads(n_parts) schedule(static, 1) if (n_parts > 1)
    for (int32_t p = 0; p < n_parts; p++) {
        int32_t r0 = (int32_t)(n_rows * p / n_parts), r1 = (int32_t)(n_rows * (p + 1) / n_parts);
        outer_add_rows(dW, a, idx, x, n, k, d, r0, r1);
    }
    return SCALAR_OK;
}

/* ---- the Jacobian contraction of JSAE pairs ---- */

/* J[t, a, b] = sum_h A[t, a, h] g[t, h] B[t, b, h]; tokens split between
 * threads, float sums over h (vectorised).
 *   J: [n, ka, kb];  A: [n, ka, h];  g: [n, h];  B: [n, kb, h] */
scalar_status scalar__cpu_jacobian_contract(void *self, float *J, const float *A, const float *g,
                                            const float *B, int64_t n, int64_t ka, int64_t kb,
                                            int64_t h)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * ka * kb * h))
    for (int64_t t = 0; t < n; t++) {
        const float *restrict gt = g + t * h;
        for (int64_t a = 0; a < ka; a++) {
            const float *restrict at = A + (t * ka + a) * h;
            for (int64_t b = 0; b < kb; b++) {
                const float *restrict bt = B + (t * kb + b) * h;
                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                for (int64_t i = 0; i < h; i++)
                    acc += at[i] * gt[i] * bt[i];
                J[(t * ka + a) * kb + b] = acc;
            }
        }
    }
    return SCALAR_OK;
}

/* dA[t, a, :] = g[t] sum_b S[t, a, b] B[t, b, :];  dB[t, b, :] = g[t] sum_a S[t, a, b] A[t, a, :]
 * (written); per token, rows accumulate in b (resp. a) order, then scale by g. */
scalar_status scalar__cpu_jacobian_contract_backward(void *self, float *dA, float *dB,
                                                     const float *S, const float *A,
                                                     const float *g, const float *B, int64_t n,
                                                     int64_t ka, int64_t kb, int64_t h)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n * ka * kb * h))
    for (int64_t t = 0; t < n; t++) {
        const float *restrict gt = g + t * h;
        const float *St = S + t * ka * kb;
        for (int64_t a = 0; a < ka; a++) {
            float *restrict da = dA + (t * ka + a) * h;
            memset(da, 0, (size_t)h * sizeof *da);
            for (int64_t b = 0; b < kb; b++) {
                float sv = St[a * kb + b];
                const float *restrict bt = B + (t * kb + b) * h;
                if (sv != 0.0f) {
#pragma omp simd
                    for (int64_t i = 0; i < h; i++)
                        da[i] += sv * bt[i];
                }
            }
#pragma omp simd
            for (int64_t i = 0; i < h; i++)
                da[i] *= gt[i];
        }
        for (int64_t b = 0; b < kb; b++) {
            float *restrict db = dB + (t * kb + b) * h;
            memset(db, 0, (size_t)h * sizeof *db);
            for (int64_t a = 0; a < ka; a++) {
                float sv = St[a * kb + b];
                const float *restrict at = A + (t * ka + a) * h;
                if (sv != 0.0f) {
#pragma omp simd
                    for (int64_t i = 0; i < h; i++)
                        db[i] += sv * at[i];
                }
            }
#pragma omp simd
            for (int64_t i = 0; i < h; i++)
                db[i] *= gt[i];
        }
    }
    return SCALAR_OK;
}

/* ---- the evaluator's Jacobian rows ---- */

/* Rows per tile: the scaled rows live on the stack (at most 64 KiB). */
#define JR_TILE_FLOATS 16384

/* out[r, :] = (A[a_idx[r]] (.) g[g_idx[r]]) B^T: tiles of rows gathered and
 * scaled on the stack, each one single-threaded GEMM against B; tiles split
 * between threads.  Nothing is allocated.
 *   out: [n_rows, d];  A: [n_a, h];  g: [n_g, h];  B: [d, h] */
scalar_status scalar__cpu_jacobian_rows(void *self, float *out, const float *A,
                                        const int32_t *a_idx, const float *g,
                                        const int32_t *g_idx, const float *B, int64_t n_rows,
                                        int64_t n_a, int64_t n_g, int64_t h, int64_t d)
{
    const scalar__cpu *s = self;
    (void)n_a, (void)n_g;
    if (h > JR_TILE_FLOATS)
        return SCALAR_E_UNSUPPORTED; /* cpu-ref takes it */
    int64_t rows = JR_TILE_FLOATS / h, n_tiles = (n_rows + rows - 1) / rows;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_rows * h * d) && n_tiles > 1)
    for (int64_t tile = 0; tile < n_tiles; tile++) {
        float m[JR_TILE_FLOATS];
        int64_t r0 = tile * rows, nr = n_rows - r0 < rows ? n_rows - r0 : rows;
        for (int64_t r = 0; r < nr; r++) {
            const float *restrict a = A + (int64_t)a_idx[r0 + r] * h;
            const float *restrict gr = g + (int64_t)g_idx[r0 + r] * h;
            float *restrict mr = m + r * h;
#pragma omp simd
            for (int64_t i = 0; i < h; i++)
                mr[i] = a[i] * gr[i];
        }
        scalar__cpu_blis_sgemm(1, SCALAR_NO_TRANS, SCALAR_TRANS, nr, d, h, 1.0f, m, h, B, h, 0.0f,
                               out + r0 * d, d);
    }
    return SCALAR_OK;
}
