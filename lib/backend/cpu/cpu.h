/*
 * cpu.h - the "cpu" backend's instance and kernels, shared by cpu.c (table,
 * lifecycle, BLIS GEMM), cpu_dense.c, cpu_rows.c, cpu_attention.c,
 * cpu_model.c and cpu_train.c (OpenMP kernels).
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

/* C = alpha op(A) op(B) + beta C through BLIS on n_threads threads, m, n,
 * k > 0, arguments as scalar_backend_sgemm() (cpu.c). */
void scalar__cpu_blis_sgemm(int32_t n_threads, int32_t trans_a, int32_t trans_b, int64_t m,
                            int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                            const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* cpu_gemm_ukr.c: an AVX2/FMA 6 x 16 sgemm microkernel that cpu.c registers
 * in a BLIS context when BLIS runs its generic kernels (whether it can:
 * scalar__cpu_sgemm_ukr_available; whether it does: scalar__cpu_sgemm_kernel). */
void scalar__cpu_sgemm_ukr_6x16(int64_t m, int64_t n, int64_t k, const float *alpha,
                                const float *a, const float *b, const float *beta, float *c,
                                int64_t rs_c, int64_t cs_c);
void scalar__cpu_sgemm_ukr_24x16(int64_t m, int64_t n, int64_t k, const float *alpha,
                                 const float *a, const float *b, const float *beta, float *c,
                                 int64_t rs_c, int64_t cs_c);
int scalar__cpu_sgemm_ukr_available(void);
int scalar__cpu_sgemm_ukr512_available(void);
const char *scalar__cpu_sgemm_kernel(void);

/* One row of softmax (cpu_dense.c): y = softmax(x), n > 0, y may be x. */
void scalar__cpu_softmax_row(float *y, const float *x, int64_t n);

/* cpu_attention.c */
scalar_status scalar__cpu_attention_forward(void *self, float *out, float *att, const float *qkv,
                                            int64_t B, int64_t T, int64_t C, int64_t n_head);
scalar_status scalar__cpu_attention_backward(void *self, float *d_qkv, const float *d_out,
                                             const float *qkv, const float *att, int64_t B,
                                             int64_t T, int64_t C, int64_t n_head);
/* cpu_attention_direct.c: one head in vector loops, for heads where BLIS
 * calls would be tiny (whether: scalar__cpu_attention_direct_ok). */
int scalar__cpu_attention_direct_ok(int64_t T, int64_t hs);
void scalar__cpu_attention_head_forward(float *out, float *att, const float *q, const float *k,
                                        const float *v, int64_t ld, int64_t ldo, int64_t T,
                                        int64_t hs, float scale);
void scalar__cpu_attention_head_backward(float *dq, float *dk, float *dv, const float *d_out,
                                         const float *q, const float *k, const float *v,
                                         const float *att, int64_t ld, int64_t ldo, int64_t T,
                                         int64_t hs, float scale);
/* cpu_model.c */
scalar_status scalar__cpu_embedding_forward(void *self, float *out, const int32_t *ids,
                                            const float *wte, const float *wpe, int64_t B,
                                            int64_t T, int64_t C, int64_t vocab, int64_t n_pos);
scalar_status scalar__cpu_embedding_backward(void *self, float *d_wte, float *d_wpe,
                                             const float *d_out, const int32_t *ids, int64_t B,
                                             int64_t T, int64_t C, int64_t vocab, int64_t n_pos);
scalar_status scalar__cpu_cross_entropy_forward(void *self, float *losses, const float *logits,
                                                int64_t ld, const int32_t *targets, int64_t n,
                                                int64_t vocab);
scalar_status scalar__cpu_cross_entropy_backward(void *self, float *d_logits,
                                                 const float *logits, int64_t ld,
                                                 const int32_t *targets, const float *d_losses,
                                                 int64_t n, int64_t vocab);
/* cpu_train.c */
scalar_status scalar__cpu_sum_rows(void *self, float *out, const float *x, int64_t n_rows,
                                   int64_t n_cols);
scalar_status scalar__cpu_add(void *self, float *out, const float *a, const float *b, int64_t n);
scalar_status scalar__cpu_sumsq(void *self, double *out, const float *x, int64_t n);
scalar_status scalar__cpu_adamw(void *self, float *param, const float *grad, float *m, float *v,
                                int64_t n, float lr, float beta1, float beta2, float eps,
                                float weight_decay, float grad_scale, int64_t step);

/* cpu_sparse.c */
scalar_status scalar__cpu_sparse_decode(void *self, float *out, const float *values,
                                        const int32_t *idx, const float *W, const float *bias,
                                        int64_t n, int64_t k, int64_t n_rows, int64_t d);
scalar_status scalar__cpu_sparse_dot(void *self, float *out, const int32_t *idx, const float *W,
                                     const float *x, int64_t n, int64_t k, int64_t n_rows,
                                     int64_t d);
scalar_status scalar__cpu_sparse_outer_add(void *self, float *dW, const float *a,
                                           const int32_t *idx, const float *x, int64_t n,
                                           int64_t k, int64_t n_rows, int64_t d);

scalar_status scalar__cpu_jacobian_rows(void *self, float *out, const float *A,
                                        const int32_t *a_idx, const float *g,
                                        const int32_t *g_idx, const float *B, int64_t n_rows,
                                        int64_t n_a, int64_t n_g, int64_t h, int64_t d);
scalar_status scalar__cpu_jacobian_contract(void *self, float *J, const float *A, const float *g,
                                            const float *B, int64_t n, int64_t ka, int64_t kb,
                                            int64_t h);
scalar_status scalar__cpu_jacobian_contract_backward(void *self, float *dA, float *dB,
                                                     const float *S, const float *A,
                                                     const float *g, const float *B, int64_t n,
                                                     int64_t ka, int64_t kb, int64_t h);

#endif /* SCALAR_BACKEND_CPU_H */
