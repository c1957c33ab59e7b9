/*
 * ref_sparse.c - cpu-ref's sparse-code kernels (decode, dot, outer-add):
 * plain loops in the orders their contracts fix.
 *
 * Dimension legend (row-major):
 *   n       tokens;  k  codes per token
 *   n_rows  dictionary rows;  d  row length
 * A negative index is an absent code everywhere (the dispatcher has checked
 * every index is < n_rows).
 */
#include "ref.h"

/* out[t] = bias + sum_j values[t,j] W[idx[t,j]], j ascending, in float
 *   out: [n, d];  values, idx: [n, k];  W: [n_rows, d];  bias: [d] or NULL */
scalar_status scalar__ref_sparse_decode(void *self, float *out, const float *values,
                                        const int32_t *idx, const float *W, const float *bias,
                                        int64_t n, int64_t k, int64_t n_rows, int64_t d)
{
    (void)self;
    (void)n_rows;
    for (int64_t t = 0; t < n; t++) {
        float *o = out + t * d;
        for (int64_t c = 0; c < d; c++)
            o[c] = bias ? bias[c] : 0.0f;
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            if (r < 0)
                continue;
            float v = values[t * k + j];
            for (int64_t c = 0; c < d; c++) {
                float p = v * W[(int64_t)r * d + c];
                o[c] = o[c] + p;
            }
        }
    }
    return SCALAR_OK;
}

/* out[t,j] = x[t] . W[idx[t,j]], summed in double, 0 for an absent code
 *   out, idx: [n, k];  W: [n_rows, d];  x: [n, d] */
scalar_status scalar__ref_sparse_dot(void *self, float *out, const int32_t *idx, const float *W,
                                     const float *x, int64_t n, int64_t k, int64_t n_rows,
                                     int64_t d)
{
    (void)self;
    (void)n_rows;
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            double acc = 0.0;
            for (int64_t c = 0; r >= 0 && c < d; c++)
                acc += (double)x[t * d + c] * W[(int64_t)r * d + c];
            out[t * k + j] = (float)acc;
        }
    return SCALAR_OK;
}

/* dW[idx[t,j]] += a[t,j] x[t] in (t, j) order, in float
 *   dW: [n_rows, d];  a, idx: [n, k];  x: [n, d] */
scalar_status scalar__ref_sparse_outer_add(void *self, float *dW, const float *a,
                                           const int32_t *idx, const float *x, int64_t n,
                                           int64_t k, int64_t n_rows, int64_t d)
{
    (void)self;
    (void)n_rows;
    for (int64_t t = 0; t < n; t++)
        for (int64_t j = 0; j < k; j++) {
            int32_t r = idx[t * k + j];
            if (r < 0)
                continue;
            float v = a[t * k + j];
            for (int64_t c = 0; c < d; c++) {
                float p = v * x[t * d + c];
                dW[(int64_t)r * d + c] = dW[(int64_t)r * d + c] + p;
            }
        }
    return SCALAR_OK;
}

/* J[t, a, b] = sum_h A[t, a, h] g[t, h] B[t, b, h], in double
 *   J: [n, ka, kb];  A: [n, ka, h];  g: [n, h];  B: [n, kb, h] */
scalar_status scalar__ref_jacobian_contract(void *self, float *J, const float *A, const float *g,
                                            const float *B, int64_t n, int64_t ka, int64_t kb,
                                            int64_t h)
{
    (void)self;
    for (int64_t t = 0; t < n; t++)
        for (int64_t a = 0; a < ka; a++)
            for (int64_t b = 0; b < kb; b++) {
                double s = 0.0;
                for (int64_t i = 0; i < h; i++)
                    s += (double)A[(t * ka + a) * h + i] * g[t * h + i] * B[(t * kb + b) * h + i];
                J[(t * ka + a) * kb + b] = (float)s;
            }
    return SCALAR_OK;
}

/* dA[t, a, :] = g[t] sum_b S[t, a, b] B[t, b, :];  dB[t, b, :] = g[t] sum_a S[t, a, b] A[t, a, :],
 * in double */
scalar_status scalar__ref_jacobian_contract_backward(void *self, float *dA, float *dB,
                                                     const float *S, const float *A,
                                                     const float *g, const float *B, int64_t n,
                                                     int64_t ka, int64_t kb, int64_t h)
{
    (void)self;
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < h; i++) {
            for (int64_t a = 0; a < ka; a++) {
                double s = 0.0;
                for (int64_t b = 0; b < kb; b++)
                    s += (double)S[(t * ka + a) * kb + b] * B[(t * kb + b) * h + i];
                dA[(t * ka + a) * h + i] = (float)(s * g[t * h + i]);
            }
            for (int64_t b = 0; b < kb; b++) {
                double s = 0.0;
                for (int64_t a = 0; a < ka; a++)
                    s += (double)S[(t * ka + a) * kb + b] * A[(t * ka + a) * h + i];
                dB[(t * kb + b) * h + i] = (float)(s * g[t * h + i]);
            }
        }
    return SCALAR_OK;
}

/* out[r, c] = sum_h A[a_idx[r], h] g[g_idx[r], h] B[c, h], in double
 *   out: [n_rows, d];  A: [n_a, h];  g: [n_g, h];  B: [d, h] */
scalar_status scalar__ref_jacobian_rows(void *self, float *out, const float *A,
                                        const int32_t *a_idx, const float *g,
                                        const int32_t *g_idx, const float *B, int64_t n_rows,
                                        int64_t n_a, int64_t n_g, int64_t h, int64_t d)
{
    (void)self, (void)n_a, (void)n_g;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *a = A + (int64_t)a_idx[r] * h, *gr = g + (int64_t)g_idx[r] * h;
        for (int64_t c = 0; c < d; c++) {
            double s = 0.0;
            for (int64_t i = 0; i < h; i++)
                s += (double)a[i] * gr[i] * B[c * h + i];
            out[r * d + c] = (float)s;
        }
    }
    return SCALAR_OK;
}
