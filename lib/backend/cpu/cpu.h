/*
 * cpu.h - the "cpu" backend's instance and kernels, shared by cpu.c (table,
 * lifecycle, BLIS GEMM), cpu_dense.c and cpu_rows.c (OpenMP kernels).
 */
#ifndef SCALAR_BACKEND_CPU_H
#define SCALAR_BACKEND_CPU_H

#include "../../internal.h"

/* One instance per context.  Read-only after create, so kernels may run
 * concurrently on one instance (each call builds its own BLIS runtime). */
typedef struct scalar__cpu {
    scalar_ctx *ctx;
    int32_t n_threads; /* OpenMP team size and BLIS ways, from scalar_ctx_n_threads() */
    char description[160];
} scalar__cpu;

/* Work (elements touched) below which a kernel runs on the calling thread:
 * waking the OpenMP team costs a few microseconds, which 32k elements of
 * streaming work (~10 us) are the first to repay. */
#define SCALAR__CPU_PAR_MIN_WORK 32768

/* Whether a kernel with `work` elements should fork a team. */
static inline int scalar__cpu_parallel(const scalar__cpu *s, int64_t work)
{
    return s->n_threads > 1 && work >= SCALAR__CPU_PAR_MIN_WORK;
}

scalar_status scalar__cpu_bias_add(void *self, float *x, const float *bias, int64_t n_rows,
                                   int64_t n_cols);
scalar_status scalar__cpu_gelu_forward(void *self, float *out, const float *in, int64_t n);
scalar_status scalar__cpu_gelu_backward(void *self, float *d_in, const float *in,
                                        const float *d_out, int64_t n);
scalar_status scalar__cpu_layernorm_forward(void *self, float *out, float *out_mean,
                                            float *out_rstd, const float *in, const float *weight,
                                            const float *bias, int64_t n_rows, int64_t d,
                                            float eps);
scalar_status scalar__cpu_layernorm_backward(void *self, float *d_in, float *d_weight,
                                             float *d_bias, const float *d_out, const float *in,
                                             const float *weight, const float *mean,
                                             const float *rstd, int64_t n_rows, int64_t d);
scalar_status scalar__cpu_softmax_rows(void *self, float *out, const float *in, int64_t n_rows,
                                       int64_t n_cols);
scalar_status scalar__cpu_topk_rows(void *self, float *out_values, int32_t *out_indices,
                                    const float *in, int64_t n_rows, int64_t n_cols, int64_t k);
scalar_status scalar__cpu_gather_rows(void *self, float *out, const float *src,
                                      const int32_t *idx, int64_t n_idx, int64_t n_src_rows,
                                      int64_t d);
scalar_status scalar__cpu_scatter_add_rows(void *self, float *dst, const float *src,
                                           const int32_t *idx, int64_t n_idx, int64_t n_dst_rows,
                                           int64_t d);

#endif /* SCALAR_BACKEND_CPU_H */
