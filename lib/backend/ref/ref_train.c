/*
 * ref_train.c - cpu-ref kernels of a training step: column sums (bias
 * gradients), elementwise add (residuals), sum of squares (gradient norm),
 * AdamW.
 *
 * Dimension legend (row-major):
 *   n_rows, n_cols  rows and columns of a column sum
 *   n               elements of an elementwise op
 *
 * sumsq and adamw have an order of operations fixed by their contract
 * (scalar/sys/backend.h), so the cpu backend gives these very bits; the
 * column sum adds in double, rows in order, as the cpu backend does too.
 */
#include <math.h>

#include "ref.h"

/* Elements per block of sumsq, and lanes per block (both in the contract). */
#define SUMSQ_BLOCK 4096
#define SUMSQ_LANES 8

/* out[c] += sum_r x[r, c]
 *   out: [n_cols], accumulated
 *   x:   [n_rows, n_cols] */
scalar_status scalar__ref_sum_rows(void *self, float *out, const float *x, int64_t n_rows,
                                   int64_t n_cols)
{
    (void)self;
    for (int64_t c = 0; c < n_cols; c++) {
        double acc = 0.0;
        for (int64_t r = 0; r < n_rows; r++)
            acc += x[r * n_cols + c];
        out[c] = (float)(out[c] + acc);
    }
    return SCALAR_OK;
}

/* out[i] = a[i] + b[i]
 *   out, a, b: [n]; out may be a or b */
scalar_status scalar__ref_add(void *self, float *out, const float *a, const float *b, int64_t n)
{
    (void)self;
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
    return SCALAR_OK;
}

/* *out = sum_i x[i]^2 in the contract's order: blocks of SUMSQ_BLOCK, in a
 * block lane i % SUMSQ_LANES, lanes then blocks added in order.
 *   out: one double
 *   x:   [n] */
scalar_status scalar__ref_sumsq(void *self, double *out, const float *x, int64_t n)
{
    (void)self;
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += SUMSQ_BLOCK) {
        int64_t len = n - i0 < SUMSQ_BLOCK ? n - i0 : SUMSQ_BLOCK;
        double lane[SUMSQ_LANES] = {0};
        for (int64_t i = 0; i < len; i++) /* a float's square is exact in double */
            lane[i % SUMSQ_LANES] += (double)x[i0 + i] * x[i0 + i];
        double block = 0.0;
        for (int l = 0; l < SUMSQ_LANES; l++)
            block += lane[l];
        total += block;
    }
    *out = total;
    return SCALAR_OK;
}

/* One AdamW step, PyTorch's order (torch.optim.AdamW, foreach=False), float
 * arithmetic with the scalar factors rounded to float once
 *   param, m, v: [n], updated
 *   grad:        [n] */
scalar_status scalar__ref_adamw(void *self, float *param, const float *grad, float *m, float *v,
                                int64_t n, float lr, float beta1, float beta2, float eps,
                                float weight_decay, float grad_scale, int64_t step)
{
    (void)self;
    float decay = (float)(1.0 - (double)lr * weight_decay);
    float w1 = (float)(1.0 - (double)beta1), w2 = (float)(1.0 - (double)beta2);
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    float neg_step_size = (float)-((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] * grad_scale;
        float p = param[i] * decay;
        /* exp_avg.lerp_(g, w1): ATen's two-sided lerp formula */
        float mi = fabsf(w1) < 0.5f ? m[i] + w1 * (g - m[i]) : g - (g - m[i]) * (1.0f - w1);
        float vi = v[i] * beta2 + w2 * g * g; /* mul_(beta2).addcmul_(g, g, value=w2) */
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        param[i] = p + neg_step_size * mi / denom; /* addcdiv_(m, denom, value=-lr/bc1) */
        m[i] = mi;
        v[i] = vi;
    }
    return SCALAR_OK;
}
