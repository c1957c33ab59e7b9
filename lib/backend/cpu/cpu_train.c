/*
 * cpu_train.c - cpu kernels of a training step: column sums (bias
 * gradients), elementwise add (residuals), sum of squares (gradient norm),
 * AdamW.
 *
 * Dimension legend (row-major):
 *   n_rows, n_cols  rows and columns of a column sum
 *   n               elements of an elementwise op
 *
 * Threads: OpenMP over column ranges (sum_rows) or fixed chunks, static
 * schedule, above SCALAR__CPU_PAR_MIN_WORK elements.  All four give exactly
 * cpu-ref's bits on any thread count: sum_rows adds each column in double,
 * rows in order; sumsq keeps the block and lane order of its contract; add
 * and adamw are elementwise float arithmetic in cpu-ref's order (ISO C mode
 * compiles without FMA contraction, so vector lanes round like scalars;
 * AdamW's square roots are simd.h vectors, see vf_sqrt).
 */
#include <math.h>

#include "cpu.h"
#include "simd.h"

/* Elements per parallel chunk of an elementwise op. */
#define CPU_CHUNK 4096
/* sum_rows: at most 2048 double accumulators (16 KiB, in L1) per pass over
 * the rows; a thread gets at least 64 columns. */
#define SUM_COL_BLOCK 2048
#define SUM_MIN_COLS 64
/* sumsq's contract: blocks of 4096 elements, 8 lanes per block. */
#define SUMSQ_BLOCK 4096
#define SUMSQ_LANES 8
/* Block sums computed per parallel pass of sumsq (2 KiB of stack); the
 * passes' sums are then added in order on the calling thread. */
#define SUMSQ_PASS_BLOCKS 256

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* out[c] += sum_r x[r, c]
 *   out: [n_cols], accumulated
 *   x:   [n_rows, n_cols]
 * Each thread owns a contiguous range of columns (at most SUM_COL_BLOCK at a
 * time, in double accumulators on the stack) and streams the rows once,
 * top to bottom: the bits of cpu-ref (double sums in row order), and reads
 * that stay sequential.  Splitting rows would need a different order. */
scalar_status scalar__cpu_sum_rows(void *self, float *out, const float *x, int64_t n_rows,
                                   int64_t n_cols)
{
    const scalar__cpu *s = self;
    int64_t n_par = scalar__cpu_parallel(s, n_rows * n_cols) ? s->n_threads : 1;
    if (n_par > n_cols / SUM_MIN_COLS)
        n_par = n_cols / SUM_MIN_COLS > 0 ? n_cols / SUM_MIN_COLS : 1;
    int64_t width = (n_cols + n_par - 1) / n_par; /* columns per thread */
#pragma omp parallel for num_threads(s->n_threads) schedule(static) if (n_par > 1)
    for (int64_t part = 0; part < n_par; part++) {
        int64_t p0 = part * width, p1 = min64(n_cols, p0 + width);
        for (int64_t c0 = p0; c0 < p1; c0 += SUM_COL_BLOCK) {
            int64_t nc = min64(SUM_COL_BLOCK, p1 - c0);
            double acc[SUM_COL_BLOCK];
            for (int64_t j = 0; j < nc; j++)
                acc[j] = 0.0;
            for (int64_t r = 0; r < n_rows; r++) {
                const float *row = x + r * n_cols + c0;
#pragma omp simd
                for (int64_t j = 0; j < nc; j++)
                    acc[j] += row[j];
            }
            for (int64_t j = 0; j < nc; j++)
                out[c0 + j] = (float)(out[c0 + j] + acc[j]);
        }
    }
    return SCALAR_OK;
}

/* out[i] = a[i] + b[i]
 *   out, a, b: [n]; out may be a or b (each element is read before it is written) */
scalar_status scalar__cpu_add(void *self, float *out, const float *a, const float *b, int64_t n)
{
    const scalar__cpu *s = self;
    int64_t n_chunks = (n + CPU_CHUNK - 1) / CPU_CHUNK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n))
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t i0 = ch * CPU_CHUNK, len = min64(CPU_CHUNK, n - i0);
        float *o = out + i0;
        const float *pa = a + i0, *pb = b + i0;
#pragma omp simd
        for (int64_t i = 0; i < len; i++)
            o[i] = pa[i] + pb[i];
    }
    return SCALAR_OK;
}

/* One block of sumsq: element i's exact double square into lane i % 8, then
 * the lanes in order. */
static double sumsq_block(const float *x, int64_t len)
{
    double lane[SUMSQ_LANES] = {0};
    int64_t i = 0;
    for (; i + SUMSQ_LANES <= len; i += SUMSQ_LANES) {
#pragma omp simd
        for (int l = 0; l < SUMSQ_LANES; l++)
            lane[l] += (double)x[i + l] * x[i + l];
    }
    for (int l = 0; i < len; i++, l++)
        lane[l] += (double)x[i] * x[i];
    double sum = 0.0;
    for (int l = 0; l < SUMSQ_LANES; l++)
        sum += lane[l];
    return sum;
}

/* *out = sum_i x[i]^2 in the contract's order (scalar/sys/backend.h)
 *   out: one double
 *   x:   [n] */
scalar_status scalar__cpu_sumsq(void *self, double *out, const float *x, int64_t n)
{
    const scalar__cpu *s = self;
    const int64_t pass_len = (int64_t)SUMSQ_PASS_BLOCKS * SUMSQ_BLOCK;
    double total = 0.0;
    for (int64_t p0 = 0; p0 < n; p0 += pass_len) {
        double block_sum[SUMSQ_PASS_BLOCKS];
        int64_t len = min64(pass_len, n - p0), nb = (len + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, len) && nb > 1)
        for (int64_t k = 0; k < nb; k++)
            block_sum[k] = sumsq_block(x + p0 + k * SUMSQ_BLOCK,
                                       min64(SUMSQ_BLOCK, len - k * SUMSQ_BLOCK));
        for (int64_t k = 0; k < nb; k++)
            total += block_sum[k];
    }
    *out = total;
    return SCALAR_OK;
}

/* The scalar factors of an AdamW step, each rounded to float once. */
typedef struct adamw_factors {
    float grad_scale, decay, w1, beta2, w2, neg_step_size, bc2_sqrt, eps;
} adamw_factors;

/* One vector of AdamW, in cpu-ref's order (lib/backend/ref/ref_train.c).
 * ATen's lerp picks one of two formulas by the weight: `lerp_small`. */
static inline void adamw_vec(scalar__vf *p, scalar__vf *m, scalar__vf *v, scalar__vf grad,
                             const adamw_factors *f, int lerp_small)
{
    scalar__vf g = grad * f->grad_scale, p_dec = *p * f->decay;
    *m = lerp_small ? *m + f->w1 * (g - *m) : g - (g - *m) * (1.0f - f->w1);
    *v = *v * f->beta2 + f->w2 * g * g;
    *p = p_dec + f->neg_step_size * *m / (vf_sqrt(*v) / f->bc2_sqrt + f->eps);
}

/* Elements [0, len) of one chunk; the tail goes through the same vector code
 * (padded with zeros, whose lanes are dropped), so it rounds the same way. */
static void adamw_span(float *param, const float *grad, float *m, float *v, int64_t len,
                       const adamw_factors *f)
{
    int lerp_small = fabsf(f->w1) < 0.5f;
    for (int64_t i = 0; i < len; i += VF_LANES) {
        int64_t w = len - i < VF_LANES ? len - i : VF_LANES;
        int full = w == VF_LANES;
        scalar__vf vp = full ? vf_load(param + i) : vf_load_part(param + i, w, 0.0f);
        scalar__vf vm = full ? vf_load(m + i) : vf_load_part(m + i, w, 0.0f);
        scalar__vf vv = full ? vf_load(v + i) : vf_load_part(v + i, w, 0.0f);
        scalar__vf vg = full ? vf_load(grad + i) : vf_load_part(grad + i, w, 0.0f);
        adamw_vec(&vp, &vm, &vv, vg, f, lerp_small);
        if (full) {
            vf_store(param + i, vp);
            vf_store(m + i, vm);
            vf_store(v + i, vv);
        } else {
            vf_store_part(param + i, vp, w);
            vf_store_part(m + i, vm, w);
            vf_store_part(v + i, vv, w);
        }
    }
}

/* One AdamW step, PyTorch's order (torch.optim.AdamW, foreach=False)
 *   param, m, v: [n], updated
 *   grad:        [n] */
scalar_status scalar__cpu_adamw(void *self, float *param, const float *grad, float *m, float *v,
                                int64_t n, float lr, float beta1, float beta2, float eps,
                                float weight_decay, float grad_scale, int64_t step)
{
    const scalar__cpu *s = self;
    double bc1 = 1.0 - pow(beta1, (double)step), bc2 = 1.0 - pow(beta2, (double)step);
    adamw_factors f = {
        .grad_scale = grad_scale,
        .decay = (float)(1.0 - (double)lr * weight_decay),
        .w1 = (float)(1.0 - (double)beta1),
        .beta2 = beta2,
        .w2 = (float)(1.0 - (double)beta2),
        .neg_step_size = (float)-((double)lr / bc1),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = eps,
    };
    int64_t n_chunks = (n + CPU_CHUNK - 1) / CPU_CHUNK;
#pragma omp parallel for num_threads(s->n_threads) schedule(static) \
    if (scalar__cpu_parallel(s, n))
    for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t i0 = ch * CPU_CHUNK;
        adamw_span(param + i0, grad + i0, m + i0, v + i0, min64(CPU_CHUNK, n - i0), &f);
    }
    return SCALAR_OK;
}
