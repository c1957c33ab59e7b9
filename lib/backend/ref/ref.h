/*
 * ref.h - the cpu-ref kernels, for ref.c's table.
 *
 * Kernels never look at `self`: the registry resolves a NULL kernel slot of
 * any other backend to these functions once, at context creation, and the
 * dispatcher then calls them with that backend's own instance.  Arguments are
 * validated by lib/backend/dispatch.c before they get here.
 */
#ifndef SCALAR_BACKEND_REF_H
#define SCALAR_BACKEND_REF_H

#include "../../internal.h"

scalar_status scalar__ref_sgemm(void *self, int32_t trans_a, int32_t trans_b, int64_t m,
                                int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                                const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
scalar_status scalar__ref_bias_add(void *self, float *x, const float *bias, int64_t n_rows,
                                   int64_t n_cols);
scalar_status scalar__ref_gelu_forward(void *self, float *out, const float *in, int64_t n);
scalar_status scalar__ref_gelu_backward(void *self, float *d_in, const float *in,
                                        const float *d_out, int64_t n);
scalar_status scalar__ref_layernorm_forward(void *self, float *out, float *out_mean,
                                            float *out_rstd, const float *in, const float *weight,
                                            const float *bias, int64_t n_rows, int64_t d,
                                            float eps);
scalar_status scalar__ref_layernorm_backward(void *self, float *d_in, float *d_weight,
                                             float *d_bias, const float *d_out, const float *in,
                                             const float *weight, const float *mean,
                                             const float *rstd, int64_t n_rows, int64_t d);
scalar_status scalar__ref_softmax_rows(void *self, float *out, const float *in, int64_t n_rows,
                                       int64_t n_cols);
scalar_status scalar__ref_topk_rows(void *self, float *out_values, int32_t *out_indices,
                                    const float *in, int64_t n_rows, int64_t n_cols, int64_t k);
scalar_status scalar__ref_gather_rows(void *self, float *out, const float *src,
                                      const int32_t *idx, int64_t n_idx, int64_t n_src_rows,
                                      int64_t d);
scalar_status scalar__ref_scatter_add_rows(void *self, float *dst, const float *src,
                                           const int32_t *idx, int64_t n_idx, int64_t n_dst_rows,
                                           int64_t d);

/* ref_model.c */
scalar_status scalar__ref_attention_forward(void *self, float *out, float *att, const float *qkv,
                                            int64_t B, int64_t T, int64_t C, int64_t n_head);
scalar_status scalar__ref_attention_backward(void *self, float *d_qkv, const float *d_out,
                                             const float *qkv, const float *att, int64_t B,
                                             int64_t T, int64_t C, int64_t n_head);
scalar_status scalar__ref_embedding_forward(void *self, float *out, const int32_t *ids,
                                            const float *wte, const float *wpe, int64_t B,
                                            int64_t T, int64_t C, int64_t vocab, int64_t n_pos);
scalar_status scalar__ref_embedding_backward(void *self, float *d_wte, float *d_wpe,
                                             const float *d_out, const int32_t *ids, int64_t B,
                                             int64_t T, int64_t C, int64_t vocab, int64_t n_pos);
scalar_status scalar__ref_cross_entropy_forward(void *self, float *losses, const float *logits,
                                                int64_t ld, const int32_t *targets, int64_t n,
                                                int64_t vocab);
scalar_status scalar__ref_cross_entropy_backward(void *self, float *d_logits,
                                                 const float *logits, int64_t ld,
                                                 const int32_t *targets, const float *d_losses,
                                                 int64_t n, int64_t vocab);
/* ref_train.c */
scalar_status scalar__ref_sum_rows(void *self, float *out, const float *x, int64_t n_rows,
                                   int64_t n_cols);
scalar_status scalar__ref_add(void *self, float *out, const float *a, const float *b, int64_t n);
scalar_status scalar__ref_sumsq(void *self, double *out, const float *x, int64_t n);
scalar_status scalar__ref_adamw(void *self, float *param, const float *grad, float *m, float *v,
                                int64_t n, float lr, float beta1, float beta2, float eps,
                                float weight_decay, float grad_scale, int64_t step);

/* ref_sparse.c */
scalar_status scalar__ref_sparse_decode(void *self, float *out, const float *values,
                                        const int32_t *idx, const float *W, const float *bias,
                                        int64_t n, int64_t k, int64_t n_rows, int64_t d);
scalar_status scalar__ref_sparse_dot(void *self, float *out, const int32_t *idx, const float *W,
                                     const float *x, int64_t n, int64_t k, int64_t n_rows,
                                     int64_t d);
scalar_status scalar__ref_sparse_outer_add(void *self, float *dW, const float *a,
                                           const int32_t *idx, const float *x, int64_t n,
                                           int64_t k, int64_t n_rows, int64_t d);

scalar_status scalar__ref_jacobian_rows(void *self, float *out, const float *A,
                                        const int32_t *a_idx, const float *g,
                                        const int32_t *g_idx, const float *B, int64_t n_rows,
                                        int64_t n_a, int64_t n_g, int64_t h, int64_t d);
scalar_status scalar__ref_jacobian_contract(void *self, float *J, const float *A, const float *g,
                                            const float *B, int64_t n, int64_t ka, int64_t kb,
                                            int64_t h);
scalar_status scalar__ref_jacobian_contract_backward(void *self, float *dA, float *dB,
                                                     const float *S, const float *A,
                                                     const float *g, const float *B, int64_t n,
                                                     int64_t ka, int64_t kb, int64_t h);

#endif /* SCALAR_BACKEND_REF_H */
