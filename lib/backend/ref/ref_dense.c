/*
 * ref_dense.c - cpu-ref dense kernels: GEMM, bias, GELU, LayerNorm, softmax.
 *
 * Dimension legend (every matrix row-major, ld* = row stride in elements):
 *   m, n, k   rows of C, columns of C, inner dimension of a GEMM
 *   n_rows    rows of a row-wise op
 *   n_cols, d row length (d for LayerNorm's channels)
 *   n         elements of an elementwise op
 *
 * Oracle code: every sum is a double, every kernel the naive loop of its
 * formula, so a disagreement with another backend is that backend's fault.
 */
#include <math.h>

#include "ref.h"

/* Columns of C per pass of the GEMM: 16 double accumulators read B rows in
 * short contiguous runs instead of walking a column of B per dot product
 * (about 10x faster, still one double dot product per element of C). */
#define REF_GEMM_NB 16

/* C = alpha * op(A) op(B) + beta * C
 *   a: [m, k] (lda >= k), or [k, m] (lda >= m) when trans_a
 *   b: [k, n] (ldb >= n), or [n, k] (ldb >= k) when trans_b
 *   c: [m, n] (ldc >= n); not read when beta == 0 */
scalar_status scalar__ref_sgemm(void *self, int32_t trans_a, int32_t trans_b, int64_t m,
                                int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    (void)self;
    for (int64_t i = 0; i < m; i++) {
        float *c_row = c + i * ldc;
        for (int64_t j0 = 0; j0 < n; j0 += REF_GEMM_NB) {
            int64_t nb = n - j0 < REF_GEMM_NB ? n - j0 : REF_GEMM_NB;
            double acc[REF_GEMM_NB] = {0};
            for (int64_t p = 0; p < k; p++) {
                double a_ip = trans_a ? a[p * lda + i] : a[i * lda + p];
                for (int64_t jj = 0; jj < nb; jj++) {
                    int64_t j = j0 + jj;
                    acc[jj] += a_ip * (trans_b ? b[j * ldb + p] : b[p * ldb + j]);
                }
            }
            for (int64_t jj = 0; jj < nb; jj++) {
                double v = (double)alpha * acc[jj];
                if (beta != 0.0f) /* beta == 0: C is write-only, NaN in it must not leak */
                    v += (double)beta * c_row[j0 + jj];
                c_row[j0 + jj] = (float)v;
            }
        }
    }
    return SCALAR_OK;
}

/* x[r, c] += bias[c]
 *   x:    [n_rows, n_cols]
 *   bias: [n_cols] */
scalar_status scalar__ref_bias_add(void *self, float *x, const float *bias, int64_t n_rows,
                                   int64_t n_cols)
{
    (void)self;
    for (int64_t r = 0; r < n_rows; r++) {
        float *x_row = x + r * n_cols;
        for (int64_t c = 0; c < n_cols; c++)
            x_row[c] += bias[c];
    }
    return SCALAR_OK;
}

#define GELU_SCALE 0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_CUBE 0.044715

/* GELU, tanh form, and its derivative, in double straight from the formula. */
static double gelu(double x)
{
    double u = GELU_SCALE * (x + GELU_CUBE * x * x * x);
    return 0.5 * x * (1.0 + tanh(u));
}

static double gelu_grad(double x)
{
    double u = GELU_SCALE * (x + GELU_CUBE * x * x * x);
    double t = tanh(u);
    double du_dx = GELU_SCALE * (1.0 + 3.0 * GELU_CUBE * x * x);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx;
}

/* out = gelu(in)
 *   out: [n] (may be in)
 *   in:  [n] */
scalar_status scalar__ref_gelu_forward(void *self, float *out, const float *in, int64_t n)
{
    (void)self;
    for (int64_t i = 0; i < n; i++)
        out[i] = (float)gelu(in[i]);
    return SCALAR_OK;
}

/* d_in += gelu'(in) * d_out
 *   d_in:  [n], accumulated
 *   in:    [n]
 *   d_out: [n] */
scalar_status scalar__ref_gelu_backward(void *self, float *d_in, const float *in,
                                        const float *d_out, int64_t n)
{
    (void)self;
    for (int64_t i = 0; i < n; i++)
        d_in[i] = (float)(d_in[i] + gelu_grad(in[i]) * d_out[i]);
    return SCALAR_OK;
}

/* out = (in - mean) * rstd * weight + bias, per row, biased variance
 *   out:      [n_rows, d] (may be in)
 *   out_mean: [n_rows] or NULL
 *   out_rstd: [n_rows] or NULL
 *   in:       [n_rows, d]
 *   weight:   [d] or NULL (ones)
 *   bias:     [d] or NULL (zeros) */
scalar_status scalar__ref_layernorm_forward(void *self, float *out, float *out_mean,
                                            float *out_rstd, const float *in, const float *weight,
                                            const float *bias, int64_t n_rows, int64_t d,
                                            float eps)
{
    (void)self;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = in + r * d;
        float *y = out + r * d;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < d; i++)
            mean += x[i];
        mean /= (double)d;
        for (int64_t i = 0; i < d; i++) /* two passes: no cancellation */
            var += ((double)x[i] - mean) * ((double)x[i] - mean);
        var /= (double)d;
        double rstd = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < d; i++) {
            double v = ((double)x[i] - mean) * rstd;
            v = v * (weight ? weight[i] : 1.0f) + (bias ? bias[i] : 0.0f);
            y[i] = (float)v;
        }
        if (out_mean)
            out_mean[r] = (float)mean;
        if (out_rstd)
            out_rstd[r] = (float)rstd;
    }
    return SCALAR_OK;
}

/* d_in += rstd * (w*d_out - mean(w*d_out) - xhat * mean(w*d_out*xhat)), per row
 *   d_in:  [n_rows, d] or NULL, accumulated
 *   in, d_out: [n_rows, d];  weight: [d] or NULL;  mean, rstd: [n_rows] */
static void ref_layernorm_d_in(float *d_in, const float *d_out, const float *in,
                               const float *weight, const float *mean, const float *rstd,
                               int64_t n_rows, int64_t d)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = in + r * d, *dy = d_out + r * d;
        double mu = mean[r], rs = rstd[r];
        double sum_dn = 0.0, sum_dn_xhat = 0.0;
        for (int64_t i = 0; i < d; i++) {
            double dn = (double)dy[i] * (weight ? weight[i] : 1.0f);
            sum_dn += dn;
            sum_dn_xhat += dn * ((double)x[i] - mu) * rs;
        }
        double mean_dn = sum_dn / (double)d, mean_dn_xhat = sum_dn_xhat / (double)d;
        for (int64_t i = 0; i < d; i++) {
            double dn = (double)dy[i] * (weight ? weight[i] : 1.0f);
            double xhat = ((double)x[i] - mu) * rs;
            d_in[r * d + i] = (float)(d_in[r * d + i] + rs * (dn - mean_dn - xhat * mean_dn_xhat));
        }
    }
}

/* d_weight += sum_rows(d_out * xhat);  d_bias += sum_rows(d_out)
 *   d_weight, d_bias: [d] or NULL, accumulated */
scalar_status scalar__ref_layernorm_backward(void *self, float *d_in, float *d_weight,
                                             float *d_bias, const float *d_out, const float *in,
                                             const float *weight, const float *mean,
                                             const float *rstd, int64_t n_rows, int64_t d)
{
    (void)self;
    if (d_in)
        ref_layernorm_d_in(d_in, d_out, in, weight, mean, rstd, n_rows, d);
    if (!d_weight && !d_bias)
        return SCALAR_OK;
    for (int64_t i = 0; i < d; i++) { /* a column at a time: one double sum per output */
        double sum_w = 0.0, sum_b = 0.0;
        for (int64_t r = 0; r < n_rows; r++) {
            double dy = d_out[r * d + i];
            sum_w += dy * ((double)in[r * d + i] - mean[r]) * rstd[r];
            sum_b += dy;
        }
        if (d_weight)
            d_weight[i] = (float)(d_weight[i] + sum_w);
        if (d_bias)
            d_bias[i] = (float)(d_bias[i] + sum_b);
    }
    return SCALAR_OK;
}

/* out[r, :] = exp(in[r, :] - max) / sum(exp(in[r, :] - max))
 *   out: [n_rows, n_cols] (may be in)
 *   in:  [n_rows, n_cols]
 * A row of -inf only comes out as zeros; a NaN anywhere in a row makes the
 * whole row NaN. */
scalar_status scalar__ref_softmax_rows(void *self, float *out, const float *in, int64_t n_rows,
                                       int64_t n_cols)
{
    (void)self;
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = in + r * n_cols;
        float *y = out + r * n_cols;
        float max = -INFINITY;
        int has_nan = 0;
        for (int64_t i = 0; i < n_cols; i++) {
            if (x[i] > max)
                max = x[i];
            else if (isnan(x[i]))
                has_nan = 1;
        }
        if (max == -INFINITY) { /* nothing but -inf (and NaN): no max to subtract */
            for (int64_t i = 0; i < n_cols; i++)
                y[i] = has_nan ? NAN : 0.0f;
            continue;
        }
        double sum = 0.0;
        for (int64_t i = 0; i < n_cols; i++)
            sum += exp((double)x[i] - max);
        for (int64_t i = 0; i < n_cols; i++)
            y[i] = (float)(exp((double)x[i] - max) / sum);
    }
    return SCALAR_OK;
}
