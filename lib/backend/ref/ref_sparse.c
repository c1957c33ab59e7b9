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
