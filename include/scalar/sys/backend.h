/**
 * @file sys/backend.h
 * @brief Implementer tier: the backend vtable, registration, and the checked
 *        kernel entry points.
 *
 * @defgroup scalar_sys_backend Backend implementer tier
 * @brief Write a backend; call kernels directly.
 *
 * Only backend authors, tests and tools need this header.  Its stability
 * promise is versioned apart from the user tier by ::SCALAR_BACKEND_ABI_VERSION.
 *
 * **Kernel conventions.**  Every matrix is row-major; `ld*` arguments are row
 * strides in elements.  Pointers passed to kernels address the backend's memory
 * (scalar_backend_buffer_alloc()); on host backends (scalar_backend_is_host()
 * returns 1) any host memory will do.  Gradient outputs of backward kernels
 * accumulate (`+=`), as in llm.c: zero them before the first call.  Every
 * entry point validates its arguments before the backend sees them, so a
 * backend slot may assume sizes are non-negative, strides large enough and
 * indices in range (on host backends).  A size of zero is a valid no-op.
 *
 * **Writing a backend.**  Fill a `static const` ::scalar_backend_ops with
 * designated initialisers and pass it to scalar_backend_register().  Slots left
 * NULL fall back to the "cpu-ref" kernel; a slot may also return
 * ::SCALAR_E_UNSUPPORTED for one call to the same effect.  The conformance
 * suite in tests/unit/check_backend.c runs every registered backend against
 * "cpu-ref".
 * @{
 */
#ifndef SCALAR_SYS_BACKEND_H
#define SCALAR_SYS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../export.h"
#include "../core.h"
#include "../backend.h"

SCALAR_BEGIN_DECL

/** Version of ::scalar_backend_ops's layout; bumped by anything but an append. */
#define SCALAR_BACKEND_ABI_VERSION 1u

/** @name Operation ids, for scalar_backend_ops::supports
 * @{ */
#define SCALAR_OP_SGEMM 0              /**< scalar_backend_sgemm() */
#define SCALAR_OP_BIAS_ADD 1           /**< scalar_backend_bias_add() */
#define SCALAR_OP_GELU_FORWARD 2       /**< scalar_backend_gelu_forward() */
#define SCALAR_OP_GELU_BACKWARD 3      /**< scalar_backend_gelu_backward() */
#define SCALAR_OP_LAYERNORM_FORWARD 4  /**< scalar_backend_layernorm_forward() */
#define SCALAR_OP_LAYERNORM_BACKWARD 5 /**< scalar_backend_layernorm_backward() */
#define SCALAR_OP_SOFTMAX_ROWS 6       /**< scalar_backend_softmax_rows() */
#define SCALAR_OP_TOPK_ROWS 7          /**< scalar_backend_topk_rows() */
#define SCALAR_OP_GATHER_ROWS 8        /**< scalar_backend_gather_rows() */
#define SCALAR_OP_SCATTER_ADD_ROWS 9   /**< scalar_backend_scatter_add_rows() */
#define SCALAR_OP_ATTENTION_FORWARD 10      /**< scalar_backend_attention_forward() */
#define SCALAR_OP_ATTENTION_BACKWARD 11     /**< scalar_backend_attention_backward() */
#define SCALAR_OP_EMBEDDING_FORWARD 12      /**< scalar_backend_embedding_forward() */
#define SCALAR_OP_EMBEDDING_BACKWARD 13     /**< scalar_backend_embedding_backward() */
#define SCALAR_OP_CROSS_ENTROPY_FORWARD 14  /**< scalar_backend_cross_entropy_forward() */
#define SCALAR_OP_CROSS_ENTROPY_BACKWARD 15 /**< scalar_backend_cross_entropy_backward() */
#define SCALAR_OP_SUM_ROWS 16               /**< scalar_backend_sum_rows() */
#define SCALAR_OP_ADD 17                    /**< scalar_backend_add() */
#define SCALAR_OP_SUMSQ 18                  /**< scalar_backend_sumsq() */
#define SCALAR_OP_ADAMW 19                  /**< scalar_backend_adamw() */
#define SCALAR_OP_SPARSE_DECODE 20          /**< scalar_backend_sparse_decode() */
#define SCALAR_OP_SPARSE_DOT 21             /**< scalar_backend_sparse_dot() */
#define SCALAR_OP_SPARSE_OUTER_ADD 22       /**< scalar_backend_sparse_outer_add() */
#define SCALAR_OP_JACOBIAN_CONTRACT 23      /**< scalar_backend_jacobian_contract() */
#define SCALAR_OP_JACOBIAN_CONTRACT_BACKWARD 24 /**< scalar_backend_jacobian_contract_backward() */
#define SCALAR_OP_JACOBIAN_ROWS 25          /**< scalar_backend_jacobian_rows() */
#define SCALAR_OP_COUNT 26 /**< Number of operation ids in this version. */
/** @} */

/** Transpose flag of scalar_backend_sgemm(): use the matrix as stored. */
#define SCALAR_NO_TRANS 0
/** Transpose flag of scalar_backend_sgemm(): use the transpose of the stored matrix. */
#define SCALAR_TRANS 1

/**
 * @brief The vtable of a backend.
 *
 * Every slot takes the instance pointer `self` (made by `create`) first and
 * returns ::scalar_status; outputs follow, then inputs, then sizes.  Slots
 * must not abort, print, or keep caller pointers after returning; they report
 * details with scalar_sys_error_set().  The semantics of each kernel slot are
 * those of the scalar_backend_* function of the same name.
 *
 * Append-only within one ::SCALAR_BACKEND_ABI_VERSION: the library copies
 * `min(struct_size, sizeof)` bytes on registration, so slots a backend was
 * compiled without read as NULL.
 */
typedef struct scalar_backend_ops {
    /* ---- header ---- */
    uint32_t abi_version;  /**< Must be ::SCALAR_BACKEND_ABI_VERSION. */
    size_t struct_size;    /**< sizeof(struct scalar_backend_ops) as compiled. */
    const char *name;      /**< Unique, `[a-z0-9-]+`, static storage. */

    /* ---- lifecycle (mandatory) ---- */
    /** Make an instance for @p ctx; @p params is an option string or NULL. */
    scalar_status (*create)(void **out_self, scalar_ctx *ctx, const char *params);
    /** Release an instance. */
    void (*destroy)(void *self);
    /** One-line configuration text, borrowed from the instance; NULL slot: the name. */
    const char *(*describe)(void *self);

    /* ---- memory (alloc and free mandatory) ---- */
    /** Allocate @p size > 0 bytes of backend memory, 64-byte aligned. */
    scalar_status (*buffer_alloc)(void *self, void **out_ptr, size_t size);
    /** Release memory from buffer_alloc. */
    void (*buffer_free)(void *self, void *ptr, size_t size);
    /** 1 if backend memory is ordinary host memory; NULL slot: 1. */
    int32_t (*buffer_is_host)(void *self);
    /** Copy host to backend memory; NULL slot: memcpy. */
    scalar_status (*upload)(void *self, void *dst, const void *src, size_t size);
    /** Copy backend to host memory; NULL slot: memcpy. */
    scalar_status (*download)(void *self, void *dst, const void *src, size_t size);
    /** Wait for queued work; NULL slot: the backend is synchronous. */
    scalar_status (*synchronize)(void *self);

    /* ---- capability (optional) ---- */
    /** 1 if the backend runs @p op (a SCALAR_OP_* id); NULL slot: every non-NULL kernel slot. */
    int32_t (*supports)(void *self, int32_t op);

    /* ---- kernels (optional: NULL falls back to cpu-ref) ---- */
    /** See scalar_backend_sgemm(). */
    scalar_status (*sgemm)(void *self, int32_t trans_a, int32_t trans_b, int64_t m, int64_t n,
                           int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float beta, float *c, int64_t ldc);
    /** See scalar_backend_bias_add(). */
    scalar_status (*bias_add)(void *self, float *x, const float *bias, int64_t n_rows,
                              int64_t n_cols);
    /** See scalar_backend_gelu_forward(). */
    scalar_status (*gelu_forward)(void *self, float *out, const float *in, int64_t n);
    /** See scalar_backend_gelu_backward(). */
    scalar_status (*gelu_backward)(void *self, float *d_in, const float *in, const float *d_out,
                                   int64_t n);
    /** See scalar_backend_layernorm_forward(). */
    scalar_status (*layernorm_forward)(void *self, float *out, float *out_mean, float *out_rstd,
                                       const float *in, const float *weight, const float *bias,
                                       int64_t n_rows, int64_t d, float eps);
    /** See scalar_backend_layernorm_backward(). */
    scalar_status (*layernorm_backward)(void *self, float *d_in, float *d_weight, float *d_bias,
                                        const float *d_out, const float *in, const float *weight,
                                        const float *mean, const float *rstd, int64_t n_rows,
                                        int64_t d);
    /** See scalar_backend_softmax_rows(). */
    scalar_status (*softmax_rows)(void *self, float *out, const float *in, int64_t n_rows,
                                  int64_t n_cols);
    /** See scalar_backend_topk_rows(). */
    scalar_status (*topk_rows)(void *self, float *out_values, int32_t *out_indices,
                               const float *in, int64_t n_rows, int64_t n_cols, int64_t k);
    /** See scalar_backend_gather_rows(). */
    scalar_status (*gather_rows)(void *self, float *out, const float *src, const int32_t *idx,
                                 int64_t n_idx, int64_t n_src_rows, int64_t d);
    /** See scalar_backend_scatter_add_rows(). */
    scalar_status (*scatter_add_rows)(void *self, float *dst, const float *src,
                                      const int32_t *idx, int64_t n_idx, int64_t n_dst_rows,
                                      int64_t d);

    /* ---- extension (optional) ---- */
    /** Backend-specific extras by name; NULL if unknown. */
    void *(*get_proc_address)(void *self, const char *name);
    /* slots above: abi 1, version 1 = 192 bytes on LP64 (SCALAR_BACKEND_OPS_V1_SIZE) */

    /* ---- kernels for the GPT-2 model layer (optional: NULL falls back to cpu-ref) ---- */
    /** See scalar_backend_attention_forward(). @since 0.2 */
    scalar_status (*attention_forward)(void *self, float *out, float *att, const float *qkv,
                                       int64_t B, int64_t T, int64_t C, int64_t n_head);
    /** See scalar_backend_attention_backward(). @since 0.2 */
    scalar_status (*attention_backward)(void *self, float *d_qkv, const float *d_out,
                                        const float *qkv, const float *att, int64_t B, int64_t T,
                                        int64_t C, int64_t n_head);
    /** See scalar_backend_embedding_forward(). @since 0.2 */
    scalar_status (*embedding_forward)(void *self, float *out, const int32_t *ids,
                                       const float *wte, const float *wpe, int64_t B, int64_t T,
                                       int64_t C, int64_t vocab, int64_t n_pos);
    /** See scalar_backend_embedding_backward(). @since 0.2 */
    scalar_status (*embedding_backward)(void *self, float *d_wte, float *d_wpe,
                                        const float *d_out, const int32_t *ids, int64_t B,
                                        int64_t T, int64_t C, int64_t vocab, int64_t n_pos);
    /** See scalar_backend_cross_entropy_forward(). @since 0.2 */
    scalar_status (*cross_entropy_forward)(void *self, float *losses, const float *logits,
                                           int64_t ld, const int32_t *targets, int64_t n,
                                           int64_t vocab);
    /** See scalar_backend_cross_entropy_backward(). @since 0.2 */
    scalar_status (*cross_entropy_backward)(void *self, float *d_logits, const float *logits,
                                            int64_t ld, const int32_t *targets,
                                            const float *d_losses, int64_t n, int64_t vocab);
    /** See scalar_backend_sum_rows(). @since 0.2 */
    scalar_status (*sum_rows)(void *self, float *out, const float *x, int64_t n_rows,
                              int64_t n_cols);
    /** See scalar_backend_add(). @since 0.2 */
    scalar_status (*add)(void *self, float *out, const float *a, const float *b, int64_t n);
    /** See scalar_backend_sumsq(). @since 0.2 */
    scalar_status (*sumsq)(void *self, double *out, const float *x, int64_t n);
    /** See scalar_backend_adamw(). @since 0.2 */
    scalar_status (*adamw)(void *self, float *param, const float *grad, float *m, float *v,
                           int64_t n, float lr, float beta1, float beta2, float eps,
                           float weight_decay, float grad_scale, int64_t step);
    /* slots above: abi 1, version 2 = 272 bytes on LP64 (SCALAR_BACKEND_OPS_V2_SIZE) */

    /* ---- sparse-code kernels for the SAE layer (optional: NULL falls back to cpu-ref) ---- */
    /** See scalar_backend_sparse_decode(). @since 0.2 */
    scalar_status (*sparse_decode)(void *self, float *out, const float *values,
                                   const int32_t *idx, const float *W, const float *bias,
                                   int64_t n, int64_t k, int64_t n_rows, int64_t d);
    /** See scalar_backend_sparse_dot(). @since 0.2 */
    scalar_status (*sparse_dot)(void *self, float *out, const int32_t *idx, const float *W,
                                const float *x, int64_t n, int64_t k, int64_t n_rows, int64_t d);
    /** See scalar_backend_sparse_outer_add(). @since 0.2 */
    scalar_status (*sparse_outer_add)(void *self, float *dW, const float *a, const int32_t *idx,
                                      const float *x, int64_t n, int64_t k, int64_t n_rows,
                                      int64_t d);
    /** See scalar_backend_jacobian_contract(). @since 0.2 */
    scalar_status (*jacobian_contract)(void *self, float *J, const float *A, const float *g,
                                       const float *B, int64_t n, int64_t k_a, int64_t k_b,
                                       int64_t h);
    /** See scalar_backend_jacobian_contract_backward(). @since 0.2 */
    scalar_status (*jacobian_contract_backward)(void *self, float *dA, float *dB, const float *S,
                                                const float *A, const float *g, const float *B,
                                                int64_t n, int64_t k_a, int64_t k_b, int64_t h);
    /* slots above: abi 1, version 3 = 312 bytes on LP64 (SCALAR_BACKEND_OPS_V3_SIZE) */

    /* ---- the evaluator's Jacobian rows (optional: NULL falls back to cpu-ref) ---- */
    /** See scalar_backend_jacobian_rows(). @since 0.2 */
    scalar_status (*jacobian_rows)(void *self, float *out, const float *A, const int32_t *a_idx,
                                   const float *g, const int32_t *g_idx, const float *B,
                                   int64_t n_rows, int64_t n_a, int64_t n_g, int64_t h,
                                   int64_t d);
    /* slots above: abi 1, version 4 = 320 bytes on LP64 (SCALAR_BACKEND_OPS_V4_SIZE) */
} scalar_backend_ops;

/** Size of the first version of ::scalar_backend_ops on LP64; smaller structs are refused. */
#define SCALAR_BACKEND_OPS_V1_SIZE 192u
/**
 * Size of the second version of ::scalar_backend_ops on LP64 (the model-layer
 * kernels appended after `get_proc_address`).  A table registered with
 * `struct_size` between ::SCALAR_BACKEND_OPS_V1_SIZE and this reads the slots
 * it lacks as NULL: those kernels run on cpu-ref.
 */
#define SCALAR_BACKEND_OPS_V2_SIZE 272u
/**
 * Size of the third version of ::scalar_backend_ops on LP64 (the sparse-code
 * and Jacobian kernels of the SAE layer appended after `adamw`).  Smaller
 * tables read the slots they lack as NULL: those kernels run on cpu-ref.
 */
#define SCALAR_BACKEND_OPS_V3_SIZE 312u
/**
 * Size of the fourth version of ::scalar_backend_ops on LP64 (the
 * evaluator's `jacobian_rows` appended after `jacobian_contract_backward`).
 * Smaller tables read it as NULL: it runs on cpu-ref.
 */
#define SCALAR_BACKEND_OPS_V4_SIZE 320u

/**
 * @brief Register a backend so contexts can select it by name.
 *
 * The library copies `min(ops->struct_size, sizeof(scalar_backend_ops))`
 * bytes; @p ops need not outlive the call, but `name` and the functions must
 * stay valid for the life of the process.
 *
 * @param[in] ops copied.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL, bad name, missing
 *         mandatory slot, name already taken); ::SCALAR_E_VERSION (wrong
 *         abi_version or struct_size below ::SCALAR_BACKEND_OPS_V1_SIZE);
 *         ::SCALAR_E_NOMEM (registry full: 32 backends).
 * @note Internally locked: may be called from any thread.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_register(const scalar_backend_ops *ops);

/**
 * @brief Set the calling thread's error message from a backend slot.
 *
 * printf-style; the text is truncated to 1023 bytes.  This is the only
 * variadic function of libscalar (C callers only).
 *
 * @param[in] status the code the slot is about to return.
 * @param[in] fmt    printf format.
 * @return @p status, so a slot can write `return scalar_sys_error_set(...)`.
 * @note Thread-local.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_sys_error_set(scalar_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ===================================================================== */
/*  Backend memory                                                        */
/* ===================================================================== */

/**
 * @brief 1 if the backend's memory is ordinary host memory.
 * @param[in] backend borrowed.
 * @return 1 or 0; 0 for NULL.
 * @note Thread-safe.
 * @since 0.1
 */
SCALAR_API int32_t scalar_backend_is_host(const scalar_backend *backend);

/**
 * @brief Allocate backend memory (64-byte aligned; host backends use the
 *        context's allocator).
 * @param[out] out     receives the pointer on success, NULL on failure; owned:
 *                     release with scalar_backend_buffer_free().
 * @param[in]  backend borrowed.
 * @param[in]  size    bytes, > 0.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_NOMEM.
 * @note Thread-safe if the allocator hooks are.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_buffer_alloc(void **out, scalar_backend *backend,
                                                     size_t size);

/**
 * @brief Release backend memory; NULL @p ptr does nothing.
 * @param[in] backend borrowed.
 * @param[in] ptr     owned, from scalar_backend_buffer_alloc().
 * @param[in] size    the size it was allocated with.
 * @since 0.1
 */
SCALAR_API void scalar_backend_buffer_free(scalar_backend *backend, void *ptr, size_t size);

/**
 * @brief Copy @p size bytes from host memory @p src to backend memory @p dst.
 * @param[in]  backend borrowed.
 * @param[out] dst     backend memory.
 * @param[in]  src     host memory.
 * @param[in]  size    bytes.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_upload(scalar_backend *backend, void *dst,
                                               const void *src, size_t size);

/**
 * @brief Copy @p size bytes from backend memory @p src to host memory @p dst.
 * @param[in]  backend borrowed.
 * @param[out] dst     host memory.
 * @param[in]  src     backend memory.
 * @param[in]  size    bytes.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_download(scalar_backend *backend, void *dst,
                                                 const void *src, size_t size);

/**
 * @brief Wait until all work queued on the backend is done.
 * @param[in] backend borrowed.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_synchronize(scalar_backend *backend);

/**
 * @brief 1 if the backend runs @p op natively rather than through the cpu-ref fallback.
 * @param[in] backend borrowed.
 * @param[in] op      a SCALAR_OP_* id.
 * @return 1 or 0.
 * @since 0.1
 */
SCALAR_API int32_t scalar_backend_supports(const scalar_backend *backend, int32_t op);

/* ===================================================================== */
/*  Kernels                                                               */
/* ===================================================================== */

/**
 * @brief General matrix multiply: `C = alpha * op(A) op(B) + beta * C`, row-major.
 *
 * Shapes: op(A) [m, k], op(B) [k, n], C [m, n].  A is stored [m, k] with row
 * stride lda >= k, or [k, m] with lda >= m when transposed; likewise B is
 * [k, n] (ldb >= n) or [n, k] (ldb >= k).  ldc >= n.  With beta == 0, C is
 * written without being read (NaN in C does not propagate).
 *
 * @param[in]     backend borrowed.
 * @param[in]     trans_a ::SCALAR_NO_TRANS or ::SCALAR_TRANS.
 * @param[in]     trans_b ::SCALAR_NO_TRANS or ::SCALAR_TRANS.
 * @param[in]     m       rows of C.
 * @param[in]     n       columns of C.
 * @param[in]     k       inner dimension.
 * @param[in]     alpha   scale of the product.
 * @param[in]     a       A, borrowed.
 * @param[in]     lda     row stride of A.
 * @param[in]     b       B, borrowed.
 * @param[in]     ldb     row stride of B.
 * @param[in]     beta    scale of the old C.
 * @param[in,out] c       C [m, ldc].
 * @param[in]     ldc     row stride of C.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         non-zero sizes, negative size, bad flag); ::SCALAR_E_SHAPE (a stride
 *         smaller than its row); ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_sgemm(scalar_backend *backend, int32_t trans_a,
                                              int32_t trans_b, int64_t m, int64_t n, int64_t k,
                                              float alpha, const float *a, int64_t lda,
                                              const float *b, int64_t ldb, float beta, float *c,
                                              int64_t ldc);

/**
 * @brief Add a bias row to every row: `x[r, c] += bias[c]`.
 * @param[in]     backend borrowed.
 * @param[in,out] x       [n_rows, n_cols].
 * @param[in]     bias    [n_cols].
 * @param[in]     n_rows  rows.
 * @param[in]     n_cols  columns.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_bias_add(scalar_backend *backend, float *x,
                                                 const float *bias, int64_t n_rows,
                                                 int64_t n_cols);

/**
 * @brief GELU, tanh approximation:
 *        `out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
 * @param[in]  backend borrowed.
 * @param[out] out     [n]; may alias @p in.
 * @param[in]  in      [n].
 * @param[in]  n       elements.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_gelu_forward(scalar_backend *backend, float *out,
                                                     const float *in, int64_t n);

/**
 * @brief Backward of scalar_backend_gelu_forward(): `d_in += gelu'(in) * d_out`.
 * @param[in]     backend borrowed.
 * @param[in,out] d_in    [n], accumulated.
 * @param[in]     in      [n], the forward input.
 * @param[in]     d_out   [n].
 * @param[in]     n       elements.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_gelu_backward(scalar_backend *backend, float *d_in,
                                                      const float *in, const float *d_out,
                                                      int64_t n);

/**
 * @brief LayerNorm over the last dimension, biased variance:
 *        `out = (in - mean) * rstd * weight + bias`, `rstd = 1/sqrt(var + eps)`.
 * @param[in]  backend  borrowed.
 * @param[out] out      [n_rows, d]; may alias @p in.
 * @param[out] out_mean [n_rows], or NULL when the backward pass is not needed.
 * @param[out] out_rstd [n_rows], or NULL.
 * @param[in]  in       [n_rows, d].
 * @param[in]  weight   [d], or NULL for ones.
 * @param[in]  bias     [d], or NULL for zeros.
 * @param[in]  n_rows   rows.
 * @param[in]  d        row length, > 0 when n_rows > 0.
 * @param[in]  eps      added to the variance, >= 0 (GPT-2: 1e-5).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_layernorm_forward(scalar_backend *backend, float *out,
                                                          float *out_mean, float *out_rstd,
                                                          const float *in, const float *weight,
                                                          const float *bias, int64_t n_rows,
                                                          int64_t d, float eps);

/**
 * @brief Backward of scalar_backend_layernorm_forward(); every gradient accumulates.
 *
 * `d_in += rstd * (w*d_out - mean(w*d_out) - xhat * mean(w*d_out*xhat))`,
 * `d_weight += sum_rows(d_out * xhat)`, `d_bias += sum_rows(d_out)`, with
 * `xhat = (in - mean) * rstd` and w the weight (ones if NULL).
 *
 * @param[in]     backend  borrowed.
 * @param[in,out] d_in     [n_rows, d], or NULL to skip.
 * @param[in,out] d_weight [d], or NULL to skip.
 * @param[in,out] d_bias   [d], or NULL to skip.
 * @param[in]     d_out    [n_rows, d].
 * @param[in]     in       [n_rows, d], the forward input.
 * @param[in]     weight   [d], or NULL for ones.
 * @param[in]     mean     [n_rows], from the forward pass.
 * @param[in]     rstd     [n_rows], from the forward pass.
 * @param[in]     n_rows   rows.
 * @param[in]     d        row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_layernorm_backward(
    scalar_backend *backend, float *d_in, float *d_weight, float *d_bias, const float *d_out,
    const float *in, const float *weight, const float *mean, const float *rstd, int64_t n_rows,
    int64_t d);

/**
 * @brief Softmax of every row, max-subtracted for stability.
 *
 * A row whose entries are all -inf comes out as zeros.
 *
 * @param[in]  backend borrowed.
 * @param[out] out     [n_rows, n_cols]; may alias @p in.
 * @param[in]  in      [n_rows, n_cols].
 * @param[in]  n_rows  rows.
 * @param[in]  n_cols  columns.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_softmax_rows(scalar_backend *backend, float *out,
                                                     const float *in, int64_t n_rows,
                                                     int64_t n_cols);

/**
 * @brief The k largest entries of every row, with their column indices.
 *
 * Per row, values in descending order; equal values keep the lower index
 * first; NaN ranks below every number (so it is picked only when fewer than k
 * numbers exist).  The order is fully determined, identical on every backend.
 *
 * @param[in]  backend     borrowed.
 * @param[out] out_values  [n_rows, k].
 * @param[out] out_indices [n_rows, k], column indices in [0, n_cols).
 * @param[in]  in          [n_rows, n_cols].
 * @param[in]  n_rows      rows.
 * @param[in]  n_cols      columns, at most INT32_MAX.
 * @param[in]  k           0 <= k <= n_cols.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_topk_rows(scalar_backend *backend, float *out_values,
                                                  int32_t *out_indices, const float *in,
                                                  int64_t n_rows, int64_t n_cols, int64_t k);

/**
 * @brief Gather rows: `out[i, :] = src[idx[i], :]`.
 * @param[in]  backend    borrowed.
 * @param[out] out        [n_idx, d].
 * @param[in]  src        [n_src_rows, d].
 * @param[in]  idx        [n_idx], each in [0, n_src_rows).
 * @param[in]  n_idx      rows to gather.
 * @param[in]  n_src_rows rows of @p src.
 * @param[in]  d          row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (an index out of range, named in
 *         the message); ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_gather_rows(scalar_backend *backend, float *out,
                                                    const float *src, const int32_t *idx,
                                                    int64_t n_idx, int64_t n_src_rows, int64_t d);

/**
 * @brief Scatter-add rows: `dst[idx[i], :] += src[i, :]` for i in order.
 *
 * Repeated indices accumulate; the summation order is i ascending on every
 * backend, so results are deterministic.
 *
 * @param[in]     backend    borrowed.
 * @param[in,out] dst        [n_dst_rows, d].
 * @param[in]     src        [n_idx, d].
 * @param[in]     idx        [n_idx], each in [0, n_dst_rows).
 * @param[in]     n_idx      rows to add.
 * @param[in]     n_dst_rows rows of @p dst.
 * @param[in]     d          row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (an index out of range);
 *         ::SCALAR_E_BACKEND.
 * @since 0.1
 */
SCALAR_API scalar_status scalar_backend_scatter_add_rows(scalar_backend *backend, float *dst,
                                                         const float *src, const int32_t *idx,
                                                         int64_t n_idx, int64_t n_dst_rows,
                                                         int64_t d);

/* ===================================================================== */
/*  Kernels of the GPT-2 model layer                                      */
/* ===================================================================== */

/**
 * @brief Causal multi-head self-attention, GPT-2 layout.
 *
 * Each row of @p qkv is `q | k | v`, C columns each; head h uses columns
 * `h*hs .. h*hs+hs-1` of each part, `hs = C / n_head`.  For every batch b,
 * head h and position t:
 * `att[b,h,t,t2] = softmax_{t2 <= t}(q[b,t,h,:] . k[b,t2,h,:] / sqrt(hs))`,
 * 0 for `t2 > t`, and `out[b,t,h*hs+j] = sum_{t2 <= t} att[b,h,t,t2] v[b,t2,h,j]`.
 * The softmax is max-subtracted; a NaN among a row's scores makes that row
 * of @p att NaN, as in scalar_backend_softmax_rows().
 *
 * @param[in]  backend borrowed.
 * @param[out] out     [B*T, C], overwritten; must not overlap @p att or @p qkv.
 * @param[out] att     [B, n_head, T, T], overwritten with the probabilities;
 *                     keep it for scalar_backend_attention_backward().
 * @param[in]  qkv     [B*T, 3*C].
 * @param[in]  B       batch size.
 * @param[in]  T       sequence length.
 * @param[in]  C       channels, a multiple of @p n_head; > 0 when B*T > 0.
 * @param[in]  n_head  heads, >= 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         non-zero sizes, negative size, n_head < 1, C not a multiple of
 *         n_head, sizes beyond the address space); ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_attention_forward(scalar_backend *backend, float *out,
                                                          float *att, const float *qkv, int64_t B,
                                                          int64_t T, int64_t C, int64_t n_head);

/**
 * @brief Backward of scalar_backend_attention_forward(): `d_qkv += dL/dqkv`.
 *
 * With `datt[t2] = d_out[b,t,h,:] . v[b,t2,h,:]` and
 * `dpre[t2] = att[t2] (datt[t2] - sum_{t3 <= t} att[t3] datt[t3])`, row
 * (b, h, t) adds `dpre[t2] k[t2] / sqrt(hs)` to dq[t], `dpre[t2] q[t] / sqrt(hs)`
 * to dk[t2] and `att[t2] d_out[t]` to dv[t2], for every `t2 <= t`.  No
 * scratch memory: the row sum is one pass over t2 and datt is recomputed in
 * the second.
 *
 * @param[in]     backend borrowed.
 * @param[in,out] d_qkv   [B*T, 3*C], accumulated; must not overlap the inputs.
 * @param[in]     d_out   [B*T, C].
 * @param[in]     qkv     [B*T, 3*C], the forward input.
 * @param[in]     att     [B, n_head, T, T], from the forward pass.
 * @param[in]     B       batch size.
 * @param[in]     T       sequence length.
 * @param[in]     C       channels, a multiple of @p n_head; > 0 when B*T > 0.
 * @param[in]     n_head  heads, >= 1.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as the forward);
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_attention_backward(scalar_backend *backend, float *d_qkv,
                                                           const float *d_out, const float *qkv,
                                                           const float *att, int64_t B, int64_t T,
                                                           int64_t C, int64_t n_head);

/**
 * @brief Token plus position embedding:
 *        `out[b*T+t, :] = wte[ids[b*T+t], :] + wpe[t, :]`.
 * @param[in]  backend borrowed.
 * @param[out] out     [B*T, C].
 * @param[in]  ids     [B*T], each in [0, vocab) (checked on host backends; the
 *                     message names the index and the value).
 * @param[in]  wte     [vocab, C], token embeddings.
 * @param[in]  wpe     [n_pos, C], position embeddings.
 * @param[in]  B       batch size.
 * @param[in]  T       sequence length, <= @p n_pos.
 * @param[in]  C       channels.
 * @param[in]  vocab   rows of @p wte.
 * @param[in]  n_pos   rows of @p wpe.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         non-zero sizes, negative size, T > n_pos, an id out of range, sizes
 *         beyond the address space); ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_embedding_forward(scalar_backend *backend, float *out,
                                                          const int32_t *ids, const float *wte,
                                                          const float *wpe, int64_t B, int64_t T,
                                                          int64_t C, int64_t vocab,
                                                          int64_t n_pos);

/**
 * @brief Backward of scalar_backend_embedding_forward(); both gradients accumulate.
 *
 * `d_wte[ids[i], :] += d_out[i, :]` for i = 0, 1, ..., B*T-1 in that order,
 * and `d_wpe[t, :] += d_out[b*T+t, :]` for b ascending: float additions in a
 * fixed order, so the result does not depend on the thread count.
 *
 * @param[in]     backend borrowed.
 * @param[in,out] d_wte   [vocab, C], or NULL to skip.
 * @param[in,out] d_wpe   [n_pos, C], or NULL to skip.
 * @param[in]     d_out   [B*T, C].
 * @param[in]     ids     [B*T], each in [0, vocab); may be NULL when @p d_wte is.
 * @param[in]     B       batch size.
 * @param[in]     T       sequence length, <= @p n_pos.
 * @param[in]     C       channels.
 * @param[in]     vocab   rows of @p d_wte.
 * @param[in]     n_pos   rows of @p d_wpe.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as the forward);
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_embedding_backward(scalar_backend *backend, float *d_wte,
                                                           float *d_wpe, const float *d_out,
                                                           const int32_t *ids, int64_t B,
                                                           int64_t T, int64_t C, int64_t vocab,
                                                           int64_t n_pos);

/**
 * @brief Cross-entropy loss of every row:
 *        `losses[i] = logsumexp(logits[i, 0:vocab]) - logits[i, targets[i]]`.
 *
 * Max-subtracted, so large logits do not overflow.  A row whose target is
 * negative is ignored (its loss is 0).  A row holding a NaN, or whose largest
 * logit is infinite, gets a NaN loss.
 *
 * @param[in]  backend borrowed.
 * @param[out] losses  [n].
 * @param[in]  logits  [n, ld], the first @p vocab columns of each row used.
 * @param[in]  ld      row stride of @p logits, >= vocab.
 * @param[in]  targets [n], each < vocab (checked on host backends); < 0 ignores the row.
 * @param[in]  n       rows.
 * @param[in]  vocab   classes, > 0 when n > 0.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         non-zero sizes, negative size, vocab = 0, a target >= vocab, sizes
 *         beyond the address space); ::SCALAR_E_SHAPE (ld < vocab);
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_cross_entropy_forward(scalar_backend *backend,
                                                              float *losses, const float *logits,
                                                              int64_t ld, const int32_t *targets,
                                                              int64_t n, int64_t vocab);

/**
 * @brief Backward of scalar_backend_cross_entropy_forward():
 *        `d_logits[i, c] += d_losses[i] * (softmax(logits[i, :])[c] - (c == targets[i]))`.
 *
 * Rows whose target is negative are left untouched, and so are the columns
 * from @p vocab to @p ld.
 *
 * @param[in]     backend  borrowed.
 * @param[in,out] d_logits [n, ld], accumulated; must not overlap @p logits.
 * @param[in]     logits   [n, ld].
 * @param[in]     ld       row stride of both @p logits and @p d_logits, >= vocab.
 * @param[in]     targets  [n], each < vocab; < 0 ignores the row.
 * @param[in]     d_losses [n], the gradient of each row's loss.
 * @param[in]     n        rows.
 * @param[in]     vocab    classes, > 0 when n > 0.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as the forward, and
 *         @p d_logits overlapping @p logits); ::SCALAR_E_SHAPE (ld < vocab);
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_cross_entropy_backward(
    scalar_backend *backend, float *d_logits, const float *logits, int64_t ld,
    const int32_t *targets, const float *d_losses, int64_t n, int64_t vocab);

/**
 * @brief Column sums, accumulated: `out[c] += sum_r x[r, c]` (bias gradients).
 *
 * Each column is summed in double, rows in ascending order, then added to
 * `out[c]` once: the same bits on any thread count.
 *
 * @param[in]     backend borrowed.
 * @param[in,out] out     [n_cols], accumulated.
 * @param[in]     x       [n_rows, n_cols].
 * @param[in]     n_rows  rows.
 * @param[in]     n_cols  columns.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_sum_rows(scalar_backend *backend, float *out,
                                                 const float *x, int64_t n_rows, int64_t n_cols);

/**
 * @brief Elementwise sum: `out[i] = a[i] + b[i]` (residual connections).
 * @param[in]  backend borrowed.
 * @param[out] out     [n]; may be @p a or @p b (exactly, not a shifted overlap).
 * @param[in]  a       [n].
 * @param[in]  b       [n].
 * @param[in]  n       elements.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_add(scalar_backend *backend, float *out, const float *a,
                                            const float *b, int64_t n);

/**
 * @brief Sum of squares in double: `*out = sum_i x[i]^2` (gradient norms).
 *
 * The order is part of the contract, so every thread count (and cpu and
 * cpu-ref) gives the same bits: `x` is cut into blocks of 4096 elements; in a
 * block, element i adds its exact double square to lane `i % 8`, and the
 * block's sum is lanes 0..7 added in order; the block sums are added in order.
 *
 * @param[in]  backend borrowed.
 * @param[out] out     one double (backend memory); 0 when @p n is 0.
 * @param[in]  x       [n].
 * @param[in]  n       elements.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG; ::SCALAR_E_BACKEND.
 * @note One thread at a time per output buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_sumsq(scalar_backend *backend, double *out,
                                              const float *x, int64_t n);

/**
 * @brief One AdamW step, in the arithmetic order of PyTorch's
 *        `torch.optim.AdamW` (foreach=False), gradient scaled first.
 *
 * Per element, in float: `g = grad * grad_scale`;
 * `p *= 1 - lr*weight_decay`; `m += (g - m) * (1 - beta1)` (PyTorch's lerp);
 * `v = v*beta2 + (1 - beta2)*g*g`;
 * `p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)`, with
 * `bc1 = 1 - beta1^step` and `bc2 = 1 - beta2^step`.  The scalar factors
 * (`1 - lr*weight_decay`, `lr/bc1`, `sqrt(bc2)`) are computed in double and
 * rounded to float once, as PyTorch's Python scalars are (from the float
 * arguments: pass 0.9f and PyTorch's result for beta1 = 0.9f is matched, not
 * that for 0.9).
 *
 * @param[in]     backend      borrowed.
 * @param[in,out] param        [n].
 * @param[in]     grad         [n].
 * @param[in,out] m            [n], first moment (zeros before step 1).
 * @param[in,out] v            [n], second moment (zeros before step 1).
 * @param[in]     n            elements.
 * @param[in]     lr           learning rate, finite, >= 0.
 * @param[in]     beta1        in [0, 1).
 * @param[in]     beta2        in [0, 1).
 * @param[in]     eps          finite, >= 0.
 * @param[in]     weight_decay finite, >= 0.
 * @param[in]     grad_scale   gradient multiplier (the clip coefficient), finite, >= 0.
 * @param[in]     step         the step number, >= 1 (1 on the first call).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         n > 0, negative n, a hyper-parameter out of range, step < 1);
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per parameter buffer.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_adamw(scalar_backend *backend, float *param,
                                              const float *grad, float *m, float *v, int64_t n,
                                              float lr, float beta1, float beta2, float eps,
                                              float weight_decay, float grad_scale, int64_t step);

/**
 * @brief Decode sparse codes: `out[t] = bias + sum_j values[t,j] * W[idx[t,j]]`.
 *
 * Per element of `out`, in float: start from `bias` (0 when NULL), then add
 * `values[t,j] * W[idx[t,j], c]` for j = 0, 1, ..., k - 1 in that order (one
 * rounding for the product, one for the sum: the order is part of the
 * contract, so every backend gives cpu-ref's bits).  A negative index is a
 * code that is absent: it is skipped.  The gather-accumulate of k rows that
 * replaces a dense `[n, n_rows] x [n_rows, d]` GEMM for TopK codes.
 *
 * @param[in]  backend borrowed.
 * @param[out] out     [n, d], written.
 * @param[in]  values  [n, k].
 * @param[in]  idx     [n, k], each < n_rows (negative: skipped).
 * @param[in]  W       [n_rows, d], the dictionary rows.
 * @param[in]  bias    [d] or NULL.
 * @param[in]  n       tokens.
 * @param[in]  k       codes per token.
 * @param[in]  n_rows  rows of @p W.
 * @param[in]  d       row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL handle or pointer with
 *         non-zero sizes, a negative size, an index >= n_rows, @p out
 *         overlapping an input); ::SCALAR_E_BACKEND.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_sparse_decode(scalar_backend *backend, float *out,
                                                      const float *values, const int32_t *idx,
                                                      const float *W, const float *bias,
                                                      int64_t n, int64_t k, int64_t n_rows,
                                                      int64_t d);

/**
 * @brief Dot products of rows with selected dictionary rows:
 *        `out[t,j] = x[t] . W[idx[t,j]]`.
 *
 * The gradient of sparse decode with respect to its values.  A negative index
 * gives 0.  The summation order is the backend's (cpu-ref sums in double and
 * rounds once).
 *
 * @param[in]  backend borrowed.
 * @param[out] out     [n, k], written.
 * @param[in]  idx     [n, k], each < n_rows (negative: out is 0).
 * @param[in]  W       [n_rows, d].
 * @param[in]  x       [n, d].
 * @param[in]  n       tokens.
 * @param[in]  k       codes per token.
 * @param[in]  n_rows  rows of @p W.
 * @param[in]  d       row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as scalar_backend_sparse_decode());
 *         ::SCALAR_E_BACKEND.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_sparse_dot(scalar_backend *backend, float *out,
                                                   const int32_t *idx, const float *W,
                                                   const float *x, int64_t n, int64_t k,
                                                   int64_t n_rows, int64_t d);

/**
 * @brief Sparse outer-product accumulation: `dW[idx[t,j]] += a[t,j] * x[t]`.
 *
 * The gradient of sparse decode with respect to the dictionary (a = the
 * codes, x = the output gradient), and of a TopK encoder with respect to its
 * kept columns (a = the pre-activation gradient, x = the input; dW then holds
 * the transposed encoder gradient).  Per element of `dW`, in float: the
 * additions in (t, j) order, one rounding for the product, one for the sum;
 * the order is part of the contract (bit-identical on every backend and
 * thread count).  Negative indices are skipped, which is how a caller leaves
 * rows out (a Staircase `detach` prefix).
 *
 * @param[in]     backend borrowed.
 * @param[in,out] dW      [n_rows, d], accumulated.
 * @param[in]     a       [n, k].
 * @param[in]     idx     [n, k], each < n_rows (negative: skipped).
 * @param[in]     x       [n, d].
 * @param[in]     n       tokens.
 * @param[in]     k       codes per token.
 * @param[in]     n_rows  rows of @p dW.
 * @param[in]     d       row length.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as scalar_backend_sparse_decode());
 *         ::SCALAR_E_BACKEND.
 * @note One thread at a time per @p dW.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_sparse_outer_add(scalar_backend *backend, float *dW,
                                                         const float *a, const int32_t *idx,
                                                         const float *x, int64_t n, int64_t k,
                                                         int64_t n_rows, int64_t d);

/**
 * @brief Per-token Jacobian contraction of a JSAE pair:
 *        `J[t, a, b] = sum_h A[t, a, h] g[t, h] B[t, b, h]`.
 *
 * A holds the out-SAE's kept encoder columns mapped back through the path
 * (`W_enc_out[:, a]^T W_proj^T`), B the in-SAE's kept decoder rows mapped
 * forward (`W_dec_in[b] W_fc`), g the path's diagonal (gelu' at the token's
 * pre-activation): J is the token's Jacobian between the two sets of kept
 * latents.  The summation order is the backend's (cpu-ref sums in double).
 *
 * @param[in]  backend borrowed.
 * @param[out] J       [n, k_a, k_b], written.
 * @param[in]  A       [n, k_a, h].
 * @param[in]  g       [n, h].
 * @param[in]  B       [n, k_b, h].
 * @param[in]  n       tokens.
 * @param[in]  k_a     rows of A per token.
 * @param[in]  k_b     rows of B per token.
 * @param[in]  h       the contracted width.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL with non-zero sizes, a
 *         negative size, @p J overlapping an input); ::SCALAR_E_BACKEND.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_jacobian_contract(scalar_backend *backend, float *J,
                                                          const float *A, const float *g,
                                                          const float *B, int64_t n, int64_t k_a,
                                                          int64_t k_b, int64_t h);

/**
 * @brief Backward of scalar_backend_jacobian_contract() for `dL/dJ = S`:
 *        `dA[t, a, :] = g[t] * sum_b S[t, a, b] B[t, b, :]` and
 *        `dB[t, b, :] = g[t] * sum_a S[t, a, b] A[t, a, :]` (both written).
 *
 * g is a constant (SPEC.md's JSAE holds gelu' fixed), so it gets no gradient.
 * The summation order is the backend's (cpu-ref sums in double).
 *
 * @param[in]  backend borrowed.
 * @param[out] dA      [n, k_a, h].
 * @param[out] dB      [n, k_b, h].
 * @param[in]  S       [n, k_a, k_b].
 * @param[in]  A       [n, k_a, h].
 * @param[in]  g       [n, h].
 * @param[in]  B       [n, k_b, h].
 * @param[in]  n       tokens.
 * @param[in]  k_a     rows of A per token.
 * @param[in]  k_b     rows of B per token.
 * @param[in]  h       the contracted width.
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (as scalar_backend_jacobian_contract(),
 *         and @p dA overlapping @p dB); ::SCALAR_E_BACKEND.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_jacobian_contract_backward(
    scalar_backend *backend, float *dA, float *dB, const float *S, const float *A, const float *g,
    const float *B, int64_t n, int64_t k_a, int64_t k_b, int64_t h);

/**
 * @brief Rows of a path's transposed Jacobian, the `A diag(g) B` contraction:
 *        `out[r, c] = sum_h A[a_idx[r], h] g[g_idx[r], h] B[c, h]`.
 *
 * The SCALAR evaluator's per-token Jacobian rows: row r pairs a downstream
 * latent (A's row: its encoder column mapped back through the MLP's output
 * projection) with a token (g's row: the GELU derivative at the token's MLP
 * pre-activation); B is the MLP's input projection, transposed.  cpu gathers
 * and scales tiles of rows and runs them as GEMMs against B; the summation
 * order is the backend's (cpu-ref sums in double).
 *
 * @param[in]  backend borrowed.
 * @param[out] out     [n_rows, d], written.
 * @param[in]  A       [n_a, h].
 * @param[in]  a_idx   [n_rows], each in [0, n_a).
 * @param[in]  g       [n_g, h].
 * @param[in]  g_idx   [n_rows], each in [0, n_g).
 * @param[in]  B       [d, h].
 * @param[in]  n_rows  rows of @p out.
 * @param[in]  n_a     rows of @p A.
 * @param[in]  n_g     rows of @p g.
 * @param[in]  h       the contracted width.
 * @param[in]  d       columns of @p out (rows of @p B).
 * @return ::SCALAR_OK; ::SCALAR_E_INVALID_ARG (NULL with non-zero sizes, a
 *         negative size, an index out of range, @p out overlapping an input);
 *         ::SCALAR_E_BACKEND.
 * @since 0.2
 */
SCALAR_API scalar_status scalar_backend_jacobian_rows(scalar_backend *backend, float *out,
                                                      const float *A, const int32_t *a_idx,
                                                      const float *g, const int32_t *g_idx,
                                                      const float *B, int64_t n_rows, int64_t n_a,
                                                      int64_t n_g, int64_t h, int64_t d);

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_SYS_BACKEND_H */
