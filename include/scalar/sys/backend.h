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
#define SCALAR_OP_COUNT 10             /**< Number of operation ids in this version. */
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
} scalar_backend_ops;

/** Size of the first version of ::scalar_backend_ops on LP64; smaller structs are refused. */
#define SCALAR_BACKEND_OPS_V1_SIZE 192u

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

SCALAR_END_DECL

/** @} */
#endif /* SCALAR_SYS_BACKEND_H */
