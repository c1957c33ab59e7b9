/*
 * cpu_dense.c - cpu kernels over dense rows: bias, GELU, LayerNorm, softmax.
 *
 * Dimension legend (row-major):
 *   n_rows    rows of a row-wise op
 *   n_cols, d row length (d for LayerNorm's channels)
 *   n         elements of an elementwise op
 *
 * Threads: OpenMP over rows (or fixed chunks, or column blocks), static
 * schedule, only above SCALAR__CPU_PAR_MIN_WORK elements.  Every output
 * element is computed by the same instructions in the same order whatever the
 * thread count, so 1 and N threads give bit-identical results.  Inner loops
 * are `omp simd` (reductions included: the vector order is fixed at compile
 * time) or simd.h vectors where they need selects.
 */
#include <math.h>

#include "cpu.h"
#include "simd.h"

/* Elements per parallel chunk of a flat elementwise op (a multiple of the
 * vector width, so only the very last chunk has a partial vector). */
#define CPU_CHUNK 4096
/* Columns per block of the LayerNorm weight/bias gradient: 64 double
 * accumulators stay in L1 while the rows stream past. */
#define LN_COL_BLOCK 64

/* x[r, c] += bias[c]
 *   x:    [n_rows, n_cols]
 *   bias: [n_cols] */
scalar_status scalar__cpu_bias_add(void *self, float *x, const float *bias, int64_t n_rows,
                                   int64_t n_cols)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_rows * n_cols))
    for (int64_t r = 0; r < n_rows; r++) {
        float *x_row = x + r * n_cols;
#pragma omp simd
        for (int64_t c = 0; c < n_cols; c++)
            x_row[c] += bias[c];
    }
    return SCALAR_OK;
}

/* ---- GELU ---- */

#define GELU_SCALE 0.7978845608f /* sqrt(2/pi) */
#define GELU_CUBE 0.044715f

/* 0.5 x (1 + tanh u) = x * sigmoid(2u) = x / (1 + exp(-2u)): one exp, no
 * cancellation near u = 0.  The exponent is clamped to +-80, where the
 * quotient has long since reached x or 0, so exp never overflows. */
static inline scalar__vf gelu_v(scalar__vf x)
{
    scalar__vf u = GELU_SCALE * (x + GELU_CUBE * x * x * x);
    scalar__vf e = vf_exp_core(vf_clamp_finite(-2.0f * u, -80.0f, 80.0f));
    return x / (1.0f + e); /* NaN x stays NaN */
}

/* gelu'(x) = sig + 2 x sig (1 - sig) u'(x), sig = sigmoid(2u), 1 - sig = e sig.
 * Past |u| = 20 sig is 0 or 1 to float precision and the second term is
 * below 1e-15, but its polynomial in x could overflow: it is dropped there. */
static inline scalar__vf gelu_grad_v(scalar__vf x)
{
    scalar__vf x2 = x * x;
    scalar__vf u = GELU_SCALE * (x + GELU_CUBE * x2 * x);
    scalar__vf e = vf_exp(vf_clamp(-2.0f * u, -80.0f, 80.0f));
    scalar__vf sig = 1.0f / (1.0f + e);
    scalar__vf du_dx = GELU_SCALE * (1.0f + (3.0f * GELU_CUBE) * x2);
    scalar__vf tail = 2.0f * x * (e * sig) * sig * du_dx;
    scalar__vi moderate = (u < vf_splat(20.0f)) & (u > vf_splat(-20.0f));
    return sig + vf_select(moderate, tail, vf_splat(0.0f));
}

static void gelu_forward_span(float *out, const float *in, int64_t n)
{
    int64_t i = 0;
    for (; i + VF_LANES <= n; i += VF_LANES)
        vf_store(out + i, gelu_v(vf_load(in + i)));
    if (i < n)
        vf_store_part(out + i, gelu_v(vf_load_part(in + i, n - i, 0.0f)), n - i);
}

static void gelu_backward_span(float *d_in, const float *in, const float *d_out, int64_t n)
{
    int64_t i = 0;
    for (; i + VF_LANES <= n; i += VF_LANES) {
        scalar__vf g = gelu_grad_v(vf_load(in + i));
        vf_store(d_in + i, vf_load(d_in + i) + g * vf_load(d_out + i));
    }
    if (i < n) {
        int64_t rest = n - i;
        scalar__vf g = gelu_grad_v(vf_load_part(in + i, rest, 0.0f));
        scalar__vf acc = vf_load_part(d_in + i, rest, 0.0f);
        vf_store_part(d_in + i, acc + g * vf_load_part(d_out + i, rest, 0.0f), rest);
    }
}

/* out = gelu(in)
 *   out: [n] (may be in)
 *   in:  [n] */
scalar_status scalar__cpu_gelu_forward(void *self, float *out, const float *in, int64_t n)
{
    const scalar__cpu *s = self;
    int64_t n_chunks = (n + CPU_CHUNK - 1) / CPU_CHUNK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n))
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t i0 = ch * CPU_CHUNK, len = n - i0 < CPU_CHUNK ? n - i0 : CPU_CHUNK;
        gelu_forward_span(out + i0, in + i0, len);
    }
    return SCALAR_OK;
}

/* d_in += gelu'(in) * d_out
 *   d_in:  [n], accumulated
 *   in:    [n]
 *   d_out: [n] */
scalar_status scalar__cpu_gelu_backward(void *self, float *d_in, const float *in,
                                        const float *d_out, int64_t n)
{
    const scalar__cpu *s = self;
    int64_t n_chunks = (n + CPU_CHUNK - 1) / CPU_CHUNK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n))
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t i0 = ch * CPU_CHUNK, len = n - i0 < CPU_CHUNK ? n - i0 : CPU_CHUNK;
        gelu_backward_span(d_in + i0, in + i0, d_out + i0, len);
    }
    return SCALAR_OK;
}

/* ---- LayerNorm ---- */

/* y = (x - mean) * rstd * w + b for one row; w, b may be NULL.  Four loops
 * rather than a test per element: a conditional load would not vectorise. */
static void layernorm_apply_row(float *y, const float *x, const float *w, const float *b,
                                float mean, float rstd, int64_t d)
{
    if (w && b) {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            y[i] = (x[i] - mean) * rstd * w[i] + b[i];
    } else if (w) {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            y[i] = (x[i] - mean) * rstd * w[i];
    } else if (b) {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            y[i] = (x[i] - mean) * rstd + b[i];
    } else {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            y[i] = (x[i] - mean) * rstd;
    }
}

/* out = (in - mean) * rstd * weight + bias, per row, biased variance
 *   out:      [n_rows, d] (may be in)
 *   out_mean: [n_rows] or NULL
 *   out_rstd: [n_rows] or NULL
 *   in:       [n_rows, d]
 *   weight:   [d] or NULL (ones)
 *   bias:     [d] or NULL (zeros)
 * Two passes over the row for the variance: no E[x^2] - E[x]^2 cancellation. */
scalar_status scalar__cpu_layernorm_forward(void *self, float *out, float *out_mean,
                                            float *out_rstd, const float *in, const float *weight,
                                            const float *bias, int64_t n_rows, int64_t d,
                                            float eps)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_rows * d))
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = in + r * d;
        float sum = 0.0f, sum_sq = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < d; i++)
            sum += x[i];
        float mean = sum / (float)d;
#pragma omp simd reduction(+ : sum_sq)
        for (int64_t i = 0; i < d; i++)
            sum_sq += (x[i] - mean) * (x[i] - mean);
        float rstd = 1.0f / sqrtf(sum_sq / (float)d + eps);
        layernorm_apply_row(out + r * d, x, weight, bias, mean, rstd, d);
        if (out_mean)
            out_mean[r] = mean;
        if (out_rstd)
            out_rstd[r] = rstd;
    }
    return SCALAR_OK;
}

/* dx += rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = w * dy, one row. */
static void layernorm_d_in_row(float *dx, const float *dy, const float *x, const float *w,
                               float mean, float rstd, int64_t d)
{
    float sum_dn = 0.0f, sum_dn_xhat = 0.0f;
    if (w) {
#pragma omp simd reduction(+ : sum_dn, sum_dn_xhat)
        for (int64_t i = 0; i < d; i++) {
            sum_dn += w[i] * dy[i];
            sum_dn_xhat += w[i] * dy[i] * ((x[i] - mean) * rstd);
        }
    } else {
#pragma omp simd reduction(+ : sum_dn, sum_dn_xhat)
        for (int64_t i = 0; i < d; i++) {
            sum_dn += dy[i];
            sum_dn_xhat += dy[i] * ((x[i] - mean) * rstd);
        }
    }
    float mean_dn = sum_dn / (float)d, mean_dn_xhat = sum_dn_xhat / (float)d;
    if (w) {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            dx[i] += rstd * (w[i] * dy[i] - mean_dn - ((x[i] - mean) * rstd) * mean_dn_xhat);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < d; i++)
            dx[i] += rstd * (dy[i] - mean_dn - ((x[i] - mean) * rstd) * mean_dn_xhat);
    }
}

/* d_weight[c0 + j] += sum_r dy * xhat, d_bias[c0 + j] += sum_r dy for j < nc:
 * rows in ascending order into double accumulators, so a column's sum is the
 * same however the columns are split between threads. */
static void layernorm_d_wb_block(float *d_weight, float *d_bias, const float *d_out,
                                 const float *in, const float *mean, const float *rstd,
                                 int64_t n_rows, int64_t d, int64_t c0, int64_t nc)
{
    double acc_w[LN_COL_BLOCK] = {0}, acc_b[LN_COL_BLOCK] = {0};
    for (int64_t r = 0; r < n_rows; r++) {
        const float *dy = d_out + r * d + c0, *x = in + r * d + c0;
        float mu = mean[r], rs = rstd[r];
#pragma omp simd
        for (int64_t j = 0; j < nc; j++) {
            acc_w[j] += (double)(dy[j] * ((x[j] - mu) * rs));
            acc_b[j] += (double)dy[j];
        }
    }
    for (int64_t j = 0; j < nc; j++) {
        if (d_weight)
            d_weight[c0 + j] = (float)(d_weight[c0 + j] + acc_w[j]);
        if (d_bias)
            d_bias[c0 + j] = (float)(d_bias[c0 + j] + acc_b[j]);
    }
}

/* Backward of LayerNorm; every gradient accumulates.
 *   d_in:     [n_rows, d] or NULL
 *   d_weight: [d] or NULL
 *   d_bias:   [d] or NULL
 *   d_out, in: [n_rows, d];  weight: [d] or NULL;  mean, rstd: [n_rows]
 * d_in runs over rows; d_weight/d_bias (sums over rows) over column blocks,
 * so no thread ever reduces into another's memory. */
scalar_status scalar__cpu_layernorm_backward(void *self, float *d_in, float *d_weight,
                                             float *d_bias, const float *d_out, const float *in,
                                             const float *weight, const float *mean,
                                             const float *rstd, int64_t n_rows, int64_t d)
{
    const scalar__cpu *s = self;
    int par = scalar__cpu_parallel(s, n_rows * d);
    if (d_in) {
#pragma omp parallel for num_threads(s->n_threads) schedule(static) if (par)
        for (int64_t r = 0; r < n_rows; r++)
            layernorm_d_in_row(d_in + r * d, d_out + r * d, in + r * d, weight, mean[r], rstd[r],
                               d);
    }
    if (d_weight || d_bias) {
        int64_t n_blocks = (d + LN_COL_BLOCK - 1) / LN_COL_BLOCK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) if (par && n_blocks > 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            int64_t c0 = blk * LN_COL_BLOCK;
            int64_t nc = d - c0 < LN_COL_BLOCK ? d - c0 : LN_COL_BLOCK;
            layernorm_d_wb_block(d_weight, d_bias, d_out, in, mean, rstd, n_rows, d, c0, nc);
        }
    }
    return SCALAR_OK;
}

/* ---- softmax ---- */

/* One row: max, exp(x - max) summed in vector lanes, scale by 1/sum.  Tails
 * are padded with -inf, whose exp is exactly 0.  Rows with a NaN come out all
 * NaN, as in cpu-ref.  Shared with the attention kernel (cpu.h). */
void scalar__cpu_softmax_row(float *y, const float *x, int64_t n)
{
    scalar__vf vmax = vf_splat(-INFINITY), vsum = vf_splat(0.0f);
    scalar__vi vnan = {0};
    int64_t i = 0;
    for (; i < n; i += VF_LANES) {
        scalar__vf v = n - i >= VF_LANES ? vf_load(x + i) : vf_load_part(x + i, n - i, -INFINITY);
        vmax = vf_select(v > vmax, v, vmax);
        vnan |= v != v;
    }
    float max = vf_hmax(vmax);
    if (max == -INFINITY || vf_any(vnan)) { /* only -inf: zeros; a NaN: all NaN */
        float fill = vf_any(vnan) ? NAN : 0.0f;
        for (i = 0; i < n; i++)
            y[i] = fill;
        return;
    }
    /* x - max <= 0 from here on, or NaN where max = x = +inf: exp gives 0
     * there, the sum 0 or more, and 0 * (1/0) makes that row NaN as well. */
    for (i = 0; i + VF_LANES <= n; i += VF_LANES) {
        scalar__vf e = vf_exp_upto_hi(vf_load(x + i) - max);
        vf_store(y + i, e);
        vsum += e;
    }
    if (i < n) {
        scalar__vf e = vf_exp_upto_hi(vf_load_part(x + i, n - i, -INFINITY) - max);
        vf_store_part(y + i, e, n - i);
        vsum += e;
    }
    float inv_sum = 1.0f / vf_hsum(vsum);
#pragma omp simd
    for (i = 0; i < n; i++)
        y[i] *= inv_sum;
}

/* out[r, :] = softmax(in[r, :])
 *   out: [n_rows, n_cols] (may be in)
 *   in:  [n_rows, n_cols] */
scalar_status scalar__cpu_softmax_rows(void *self, float *out, const float *in, int64_t n_rows,
                                       int64_t n_cols)
{
    const scalar__cpu *s = self;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n_rows * n_cols))
    for (int64_t r = 0; r < n_rows; r++)
        scalar__cpu_softmax_row(out + r * n_cols, in + r * n_cols, n_cols);
    return SCALAR_OK;
}
