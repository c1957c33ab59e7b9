/*
 * dispatch.c - the checked entry points of scalar/sys/backend.h.
 *
 * Every argument is validated here, once, so backend slots may assume sane
 * sizes, long enough strides and in-range indices (BLIS, for one, aborts the
 * process on a bad argument).  Then the backend's own slot runs on its
 * instance; a NULL slot, or one answering SCALAR_E_UNSUPPORTED for this call,
 * is run by cpu-ref on its own instance -- on host backends only, since
 * cpu-ref cannot read device memory.  Calls with nothing
 * to compute return before any backend sees them.
 */
#include <math.h>
#include <string.h>

#include "../internal.h"

#define TRY SCALAR_TRY

/* Run the backend's own kernel slot on its own instance.  A NULL slot, or
 * one answering SCALAR_E_UNSUPPORTED for this call, falls back to cpu-ref on
 * cpu-ref's own instance (ref_self, or self when the backend is cpu-ref) --
 * but only on host backends: cpu-ref cannot read device memory. */
#define RUN_KERNEL(be, slot, ...)                                                                  \
    do {                                                                                           \
        scalar_status run_st_ = SCALAR_E_UNSUPPORTED;                                              \
        if ((be)->native->slot)                                                                    \
            run_st_ = (be)->native->slot((be)->self, __VA_ARGS__);                                 \
        if (run_st_ == SCALAR_E_UNSUPPORTED) {                                                     \
            if (!(be)->is_host)                                                                    \
                return scalar__error_set(SCALAR_E_UNSUPPORTED, "backend \"%s\" has no " #slot    \
                                         " kernel", (be)->native->name);                           \
            run_st_ = (be)->ref->slot((be)->ref_self ? (be)->ref_self : (be)->self, __VA_ARGS__); \
        }                                                                                          \
        return run_st_;                                                                            \
    } while (0)

/* ---- argument checks: each returns SCALAR_OK or sets the message ---- */

static scalar_status need_backend(const scalar_backend *be, const char *fn)
{
    return be ? SCALAR_OK : scalar__error_set(SCALAR_E_INVALID_ARG, "%s: backend is NULL", fn);
}

static scalar_status need_size(int64_t v, const char *name, const char *fn)
{
    if (v >= 0)
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s=%lld is negative", fn, name,
                             (long long)v);
}

/* A pointer the sizes say will be touched (`used`) must not be NULL. */
static scalar_status need_ptr(const void *p, int used, const char *name, const char *fn)
{
    if (p || !used)
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s is NULL with non-zero sizes", fn, name);
}

/* A [rows, cols] float matrix with row stride ld (ld >= cols checked before)
 * must fit in the address space: (rows - 1) * ld + cols elements. */
static scalar_status need_extent(int64_t rows, int64_t cols, int64_t ld, const char *name,
                                 const char *fn)
{
    int64_t last, total;
    if (rows == 0 || cols == 0)
        return SCALAR_OK;
    if (__builtin_mul_overflow(rows - 1, ld, &last) || __builtin_add_overflow(last, cols, &total) ||
        total > (int64_t)(PTRDIFF_MAX / sizeof(float)))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: %s of %lld x %lld (row stride %lld) exceeds the address "
                                 "space", fn, name, (long long)rows, (long long)cols,
                                 (long long)ld);
    return SCALAR_OK;
}

static scalar_status need_matrix(int64_t rows, int64_t cols, const char *name, const char *fn)
{
    return need_extent(rows, cols, cols, name, fn);
}

/* Indices into a [n_rows, ...] array: each in [0, n_rows).  Only on host
 * backends: device memory cannot be read from here. */
static scalar_status need_indices(const scalar_backend *be, const int32_t *idx, int64_t n_idx,
                                  int64_t n_rows, const char *idx_name, const char *rows_name,
                                  const char *fn)
{
    if (!be->is_host)
        return SCALAR_OK;
    for (int64_t i = 0; i < n_idx; i++)
        if (idx[i] < 0 || idx[i] >= n_rows)
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: %s[%lld]=%d out of range [0, %s=%lld)", fn, idx_name,
                                     (long long)i, (int)idx[i], rows_name, (long long)n_rows);
    return SCALAR_OK;
}

/* ---- memory ---- */

scalar_status scalar_backend_buffer_alloc(void **out, scalar_backend *backend, size_t size)
{
    static const char fn[] = "scalar_backend_buffer_alloc";
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = NULL;
    TRY(need_backend(backend, fn));
    if (size == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: size is 0", fn);
    scalar_status st = backend->ops.buffer_alloc(backend->self, out, size);
    if (st != SCALAR_OK)
        *out = NULL;
    return st;
}

void scalar_backend_buffer_free(scalar_backend *backend, void *ptr, size_t size)
{
    if (backend && ptr)
        backend->ops.buffer_free(backend->self, ptr, size);
}

/* upload/download: same checks, then the slot or memcpy. */
static scalar_status copy_checked(scalar_backend *be, void *dst, const void *src, size_t size,
                                  scalar_status (*slot)(void *, void *, const void *, size_t),
                                  const char *fn)
{
    TRY(need_backend(be, fn));
    if (size == 0)
        return SCALAR_OK;
    TRY(need_ptr(dst, 1, "dst", fn));
    TRY(need_ptr(src, 1, "src", fn));
    if (slot)
        return slot(be->self, dst, src, size);
    memcpy(dst, src, size);
    return SCALAR_OK;
}

scalar_status scalar_backend_upload(scalar_backend *backend, void *dst, const void *src,
                                    size_t size)
{
    return copy_checked(backend, dst, src, size, backend ? backend->ops.upload : NULL,
                        "scalar_backend_upload");
}

scalar_status scalar_backend_download(scalar_backend *backend, void *dst, const void *src,
                                      size_t size)
{
    return copy_checked(backend, dst, src, size, backend ? backend->ops.download : NULL,
                        "scalar_backend_download");
}

scalar_status scalar_backend_synchronize(scalar_backend *backend)
{
    TRY(need_backend(backend, "scalar_backend_synchronize"));
    return backend->ops.synchronize ? backend->ops.synchronize(backend->self) : SCALAR_OK;
}

/* ---- GEMM ---- */

static scalar_status need_trans(int32_t flag, const char *name, const char *fn)
{
    if (flag == SCALAR_NO_TRANS || flag == SCALAR_TRANS)
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_INVALID_ARG,
                             "%s: %s=%d is neither SCALAR_NO_TRANS (0) nor SCALAR_TRANS (1)", fn,
                             name, (int)flag);
}

/* A stored [rows, cols] operand with row stride ld: ld >= cols. */
static scalar_status need_ld(int64_t ld, int64_t cols, const char *ld_name, const char *cols_name,
                             const char *what, const char *fn)
{
    if (ld >= cols)
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_SHAPE, "%s: %s=%lld < %s=%lld%s", fn, ld_name,
                             (long long)ld, cols_name, (long long)cols, what);
}

scalar_status scalar_backend_sgemm(scalar_backend *backend, int32_t trans_a, int32_t trans_b,
                                   int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                   int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                                   int64_t ldc)
{
    static const char fn[] = "scalar_backend_sgemm";
    TRY(need_backend(backend, fn));
    TRY(need_trans(trans_a, "trans_a", fn));
    TRY(need_trans(trans_b, "trans_b", fn));
    TRY(need_size(m, "m", fn));
    TRY(need_size(n, "n", fn));
    TRY(need_size(k, "k", fn));
    /* Stored shapes: A [m, k] or [k, m]; B [k, n] or [n, k]; C [m, n]. */
    int64_t a_rows = trans_a ? k : m, a_cols = trans_a ? m : k;
    int64_t b_rows = trans_b ? n : k, b_cols = trans_b ? k : n;
    TRY(need_ld(lda, a_cols, "lda", trans_a ? "m" : "k",
                trans_a ? " (A transposed)" : " (A not transposed)", fn));
    TRY(need_ld(ldb, b_cols, "ldb", trans_b ? "k" : "n",
                trans_b ? " (B transposed)" : " (B not transposed)", fn));
    TRY(need_ld(ldc, n, "ldc", "n", "", fn));
    if (m == 0 || n == 0)
        return SCALAR_OK;
    TRY(need_ptr(a, k > 0, "a", fn));
    TRY(need_ptr(b, k > 0, "b", fn));
    TRY(need_ptr(c, 1, "c", fn));
    TRY(need_extent(a_rows, a_cols, lda, "A", fn));
    TRY(need_extent(b_rows, b_cols, ldb, "B", fn));
    TRY(need_extent(m, n, ldc, "C", fn));
    RUN_KERNEL(backend, sgemm, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- elementwise and row-wise kernels ---- */

/* The common check of a [n_rows, n_cols] op: sizes, then whether it is empty. */
static scalar_status need_rows(int64_t n_rows, int64_t n_cols, const char *rows_name,
                               const char *cols_name, const char *fn)
{
    TRY(need_size(n_rows, rows_name, fn));
    TRY(need_size(n_cols, cols_name, fn));
    return need_matrix(n_rows, n_cols, "the matrix", fn);
}

scalar_status scalar_backend_bias_add(scalar_backend *backend, float *x, const float *bias,
                                      int64_t n_rows, int64_t n_cols)
{
    static const char fn[] = "scalar_backend_bias_add";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, n_cols, "n_rows", "n_cols", fn));
    if (n_rows == 0 || n_cols == 0)
        return SCALAR_OK;
    TRY(need_ptr(x, 1, "x", fn));
    TRY(need_ptr(bias, 1, "bias", fn));
    RUN_KERNEL(backend, bias_add, x, bias, n_rows, n_cols);
}

scalar_status scalar_backend_gelu_forward(scalar_backend *backend, float *out, const float *in,
                                          int64_t n)
{
    static const char fn[] = "scalar_backend_gelu_forward";
    TRY(need_backend(backend, fn));
    TRY(need_rows(1, n, "rows", "n", fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(in, 1, "in", fn));
    RUN_KERNEL(backend, gelu_forward, out, in, n);
}

scalar_status scalar_backend_gelu_backward(scalar_backend *backend, float *d_in, const float *in,
                                           const float *d_out, int64_t n)
{
    static const char fn[] = "scalar_backend_gelu_backward";
    TRY(need_backend(backend, fn));
    TRY(need_rows(1, n, "rows", "n", fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(d_in, 1, "d_in", fn));
    TRY(need_ptr(in, 1, "in", fn));
    TRY(need_ptr(d_out, 1, "d_out", fn));
    RUN_KERNEL(backend, gelu_backward, d_in, in, d_out, n);
}

scalar_status scalar_backend_layernorm_forward(scalar_backend *backend, float *out,
                                               float *out_mean, float *out_rstd, const float *in,
                                               const float *weight, const float *bias,
                                               int64_t n_rows, int64_t d, float eps)
{
    static const char fn[] = "scalar_backend_layernorm_forward";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, d, "n_rows", "d", fn));
    if (!(eps >= 0.0f) || isinf(eps))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: eps=%g must be finite and >= 0", fn,
                                 (double)eps);
    if (n_rows == 0)
        return SCALAR_OK;
    if (d == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: d=0 with n_rows=%lld (must be > 0)",
                                 fn, (long long)n_rows);
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(in, 1, "in", fn));
    RUN_KERNEL(backend, layernorm_forward, out, out_mean, out_rstd, in, weight, bias, n_rows, d,
               eps);
}

scalar_status scalar_backend_layernorm_backward(scalar_backend *backend, float *d_in,
                                                float *d_weight, float *d_bias,
                                                const float *d_out, const float *in,
                                                const float *weight, const float *mean,
                                                const float *rstd, int64_t n_rows, int64_t d)
{
    static const char fn[] = "scalar_backend_layernorm_backward";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, d, "n_rows", "d", fn));
    if (n_rows == 0 || d == 0 || (!d_in && !d_weight && !d_bias))
        return SCALAR_OK;
    TRY(need_ptr(d_out, 1, "d_out", fn));
    TRY(need_ptr(in, 1, "in", fn));
    TRY(need_ptr(mean, 1, "mean", fn));
    TRY(need_ptr(rstd, 1, "rstd", fn));
    RUN_KERNEL(backend, layernorm_backward, d_in, d_weight, d_bias, d_out, in, weight, mean, rstd,
               n_rows, d);
}

scalar_status scalar_backend_softmax_rows(scalar_backend *backend, float *out, const float *in,
                                          int64_t n_rows, int64_t n_cols)
{
    static const char fn[] = "scalar_backend_softmax_rows";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, n_cols, "n_rows", "n_cols", fn));
    if (n_rows == 0 || n_cols == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(in, 1, "in", fn));
    RUN_KERNEL(backend, softmax_rows, out, in, n_rows, n_cols);
}

scalar_status scalar_backend_topk_rows(scalar_backend *backend, float *out_values,
                                       int32_t *out_indices, const float *in, int64_t n_rows,
                                       int64_t n_cols, int64_t k)
{
    static const char fn[] = "scalar_backend_topk_rows";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, n_cols, "n_rows", "n_cols", fn));
    TRY(need_size(k, "k", fn));
    if (n_cols > INT32_MAX)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_cols=%lld > INT32_MAX", fn,
                                 (long long)n_cols);
    if (k > n_cols)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: k=%lld > n_cols=%lld", fn,
                                 (long long)k, (long long)n_cols);
    if (n_rows == 0 || k == 0)
        return SCALAR_OK;
    TRY(need_ptr(out_values, 1, "out_values", fn));
    TRY(need_ptr(out_indices, 1, "out_indices", fn));
    TRY(need_ptr(in, 1, "in", fn));
    RUN_KERNEL(backend, topk_rows, out_values, out_indices, in, n_rows, n_cols, k);
}

scalar_status scalar_backend_gather_rows(scalar_backend *backend, float *out, const float *src,
                                         const int32_t *idx, int64_t n_idx, int64_t n_src_rows,
                                         int64_t d)
{
    static const char fn[] = "scalar_backend_gather_rows";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_idx, d, "n_idx", "d", fn));
    TRY(need_rows(n_src_rows, d, "n_src_rows", "d", fn));
    if (n_idx == 0 || d == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(src, 1, "src", fn));
    TRY(need_ptr(idx, 1, "idx", fn));
    TRY(need_indices(backend, idx, n_idx, n_src_rows, "idx", "n_src_rows", fn));
    RUN_KERNEL(backend, gather_rows, out, src, idx, n_idx, n_src_rows, d);
}

scalar_status scalar_backend_scatter_add_rows(scalar_backend *backend, float *dst,
                                              const float *src, const int32_t *idx, int64_t n_idx,
                                              int64_t n_dst_rows, int64_t d)
{
    static const char fn[] = "scalar_backend_scatter_add_rows";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_idx, d, "n_idx", "d", fn));
    TRY(need_rows(n_dst_rows, d, "n_dst_rows", "d", fn));
    if (n_idx == 0 || d == 0)
        return SCALAR_OK;
    TRY(need_ptr(dst, 1, "dst", fn));
    TRY(need_ptr(src, 1, "src", fn));
    TRY(need_ptr(idx, 1, "idx", fn));
    TRY(need_indices(backend, idx, n_idx, n_dst_rows, "idx", "n_dst_rows", fn));
    RUN_KERNEL(backend, scatter_add_rows, dst, src, idx, n_idx, n_dst_rows, d);
}

/* ---- the GPT-2 model layer: attention, embeddings, loss, reductions, AdamW ---- */

/* a * b for sizes already known non-negative; `what` names the product. */
static scalar_status need_product(int64_t a, int64_t b, int64_t *out, const char *what,
                                  const char *fn)
{
    if (!__builtin_mul_overflow(a, b, out))
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s = %lld x %lld exceeds the address space",
                             fn, what, (long long)a, (long long)b);
}

/* Two float ranges [p, p + n) and [q, q + m) share an element. */
static int ranges_overlap(const float *p, int64_t n, const float *q, int64_t m)
{
    uintptr_t p0 = (uintptr_t)p, q0 = (uintptr_t)q;
    return p0 < q0 + (uintptr_t)m * sizeof(float) && q0 < p0 + (uintptr_t)n * sizeof(float);
}

/* A float hyper-parameter that must be finite and >= 0. */
static scalar_status need_finite_nonneg(float v, const char *name, const char *fn)
{
    if (v >= 0.0f && !isinf(v))
        return SCALAR_OK;
    return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s=%g must be finite and >= 0", fn, name,
                             (double)v);
}

/* The shapes of attention: qkv [B*T, 3C], out [B*T, C], att [B*n_head*T, T];
 * n_head >= 1 divides C, and heads are not empty when there are rows.
 * *out_rows = B*T. */
static scalar_status need_attention(int64_t B, int64_t T, int64_t C, int64_t n_head,
                                    int64_t *out_rows, const char *fn)
{
    int64_t c3, att_rows;
    TRY(need_size(B, "B", fn));
    TRY(need_size(T, "T", fn));
    TRY(need_size(C, "C", fn));
    if (n_head < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_head=%lld must be >= 1", fn,
                                 (long long)n_head);
    if (C % n_head != 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: C=%lld is not a multiple of n_head=%lld", fn, (long long)C,
                                 (long long)n_head);
    TRY(need_product(B, T, out_rows, "B*T", fn));
    TRY(need_product(C, 3, &c3, "3*C", fn));
    TRY(need_product(*out_rows, n_head, &att_rows, "B*T*n_head", fn));
    TRY(need_matrix(*out_rows, c3, "qkv [B*T, 3*C]", fn));
    TRY(need_matrix(att_rows, T, "att [B, n_head, T, T]", fn));
    if (*out_rows > 0 && C == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: C=0 with B*T=%lld (heads need at least one channel)", fn,
                                 (long long)*out_rows);
    return SCALAR_OK;
}

scalar_status scalar_backend_attention_forward(scalar_backend *backend, float *out, float *att,
                                               const float *qkv, int64_t B, int64_t T, int64_t C,
                                               int64_t n_head)
{
    static const char fn[] = "scalar_backend_attention_forward";
    int64_t rows;
    TRY(need_backend(backend, fn));
    TRY(need_attention(B, T, C, n_head, &rows, fn));
    if (rows == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(att, 1, "att", fn));
    TRY(need_ptr(qkv, 1, "qkv", fn));
    RUN_KERNEL(backend, attention_forward, out, att, qkv, B, T, C, n_head);
}

scalar_status scalar_backend_attention_backward(scalar_backend *backend, float *d_qkv,
                                                const float *d_out, const float *qkv,
                                                const float *att, int64_t B, int64_t T,
                                                int64_t C, int64_t n_head)
{
    static const char fn[] = "scalar_backend_attention_backward";
    int64_t rows;
    TRY(need_backend(backend, fn));
    TRY(need_attention(B, T, C, n_head, &rows, fn));
    if (rows == 0)
        return SCALAR_OK;
    TRY(need_ptr(d_qkv, 1, "d_qkv", fn));
    TRY(need_ptr(d_out, 1, "d_out", fn));
    TRY(need_ptr(qkv, 1, "qkv", fn));
    TRY(need_ptr(att, 1, "att", fn));
    RUN_KERNEL(backend, attention_backward, d_qkv, d_out, qkv, att, B, T, C, n_head);
}

/* The shapes of the embeddings: activations [B*T, C], wte [vocab, C],
 * wpe [n_pos, C], T <= n_pos.  *out_rows = B*T. */
static scalar_status need_embedding(int64_t B, int64_t T, int64_t C, int64_t vocab,
                                    int64_t n_pos, int64_t *out_rows, const char *fn)
{
    TRY(need_size(B, "B", fn));
    TRY(need_size(T, "T", fn));
    TRY(need_size(C, "C", fn));
    TRY(need_size(vocab, "vocab", fn));
    TRY(need_size(n_pos, "n_pos", fn));
    if (T > n_pos)
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: T=%lld > n_pos=%lld (more positions than wpe has rows)", fn,
                                 (long long)T, (long long)n_pos);
    TRY(need_product(B, T, out_rows, "B*T", fn));
    TRY(need_matrix(*out_rows, C, "the activations [B*T, C]", fn));
    TRY(need_matrix(vocab, C, "wte [vocab, C]", fn));
    return need_matrix(n_pos, C, "wpe [n_pos, C]", fn);
}

scalar_status scalar_backend_embedding_forward(scalar_backend *backend, float *out,
                                               const int32_t *ids, const float *wte,
                                               const float *wpe, int64_t B, int64_t T, int64_t C,
                                               int64_t vocab, int64_t n_pos)
{
    static const char fn[] = "scalar_backend_embedding_forward";
    int64_t rows;
    TRY(need_backend(backend, fn));
    TRY(need_embedding(B, T, C, vocab, n_pos, &rows, fn));
    if (rows == 0 || C == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(ids, 1, "ids", fn));
    TRY(need_ptr(wte, 1, "wte", fn));
    TRY(need_ptr(wpe, 1, "wpe", fn));
    TRY(need_indices(backend, ids, rows, vocab, "ids", "vocab", fn));
    RUN_KERNEL(backend, embedding_forward, out, ids, wte, wpe, B, T, C, vocab, n_pos);
}

scalar_status scalar_backend_embedding_backward(scalar_backend *backend, float *d_wte,
                                                float *d_wpe, const float *d_out,
                                                const int32_t *ids, int64_t B, int64_t T,
                                                int64_t C, int64_t vocab, int64_t n_pos)
{
    static const char fn[] = "scalar_backend_embedding_backward";
    int64_t rows;
    TRY(need_backend(backend, fn));
    TRY(need_embedding(B, T, C, vocab, n_pos, &rows, fn));
    if (rows == 0 || C == 0 || (!d_wte && !d_wpe))
        return SCALAR_OK;
    TRY(need_ptr(d_out, 1, "d_out", fn));
    if (d_wte) {
        TRY(need_ptr(ids, 1, "ids", fn));
        TRY(need_indices(backend, ids, rows, vocab, "ids", "vocab", fn));
    }
    RUN_KERNEL(backend, embedding_backward, d_wte, d_wpe, d_out, ids, B, T, C, vocab, n_pos);
}

/* The shapes of cross-entropy: logits [n, ld], ld >= vocab, vocab > 0 when
 * there are rows. */
static scalar_status need_cross_entropy(int64_t ld, int64_t n, int64_t vocab, const char *fn)
{
    TRY(need_size(n, "n", fn));
    TRY(need_size(vocab, "vocab", fn));
    TRY(need_ld(ld, vocab, "ld", "vocab", "", fn));
    TRY(need_extent(n, vocab, ld, "logits", fn));
    if (n > 0 && vocab == 0)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: vocab=0 with n=%lld (must be > 0)",
                                 fn, (long long)n);
    return SCALAR_OK;
}

/* Targets below vocab (negative ones mean "ignore"); host backends only. */
static scalar_status need_targets(const scalar_backend *be, const int32_t *targets, int64_t n,
                                  int64_t vocab, const char *fn)
{
    if (!be->is_host)
        return SCALAR_OK;
    for (int64_t i = 0; i < n; i++)
        if (targets[i] >= vocab)
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: targets[%lld]=%d >= vocab=%lld (negative ignores a row)",
                                     fn, (long long)i, (int)targets[i], (long long)vocab);
    return SCALAR_OK;
}

scalar_status scalar_backend_cross_entropy_forward(scalar_backend *backend, float *losses,
                                                   const float *logits, int64_t ld,
                                                   const int32_t *targets, int64_t n,
                                                   int64_t vocab)
{
    static const char fn[] = "scalar_backend_cross_entropy_forward";
    TRY(need_backend(backend, fn));
    TRY(need_cross_entropy(ld, n, vocab, fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(losses, 1, "losses", fn));
    TRY(need_ptr(logits, 1, "logits", fn));
    TRY(need_ptr(targets, 1, "targets", fn));
    TRY(need_targets(backend, targets, n, vocab, fn));
    RUN_KERNEL(backend, cross_entropy_forward, losses, logits, ld, targets, n, vocab);
}

scalar_status scalar_backend_cross_entropy_backward(scalar_backend *backend, float *d_logits,
                                                    const float *logits, int64_t ld,
                                                    const int32_t *targets,
                                                    const float *d_losses, int64_t n,
                                                    int64_t vocab)
{
    static const char fn[] = "scalar_backend_cross_entropy_backward";
    TRY(need_backend(backend, fn));
    TRY(need_cross_entropy(ld, n, vocab, fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(d_logits, 1, "d_logits", fn));
    TRY(need_ptr(logits, 1, "logits", fn));
    TRY(need_ptr(targets, 1, "targets", fn));
    TRY(need_ptr(d_losses, 1, "d_losses", fn));
    int64_t extent = (n - 1) * ld + vocab; /* fits: need_extent */
    if (ranges_overlap(d_logits, extent, logits, extent))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: d_logits overlaps logits", fn);
    TRY(need_targets(backend, targets, n, vocab, fn));
    RUN_KERNEL(backend, cross_entropy_backward, d_logits, logits, ld, targets, d_losses, n,
               vocab);
}

scalar_status scalar_backend_sum_rows(scalar_backend *backend, float *out, const float *x,
                                      int64_t n_rows, int64_t n_cols)
{
    static const char fn[] = "scalar_backend_sum_rows";
    TRY(need_backend(backend, fn));
    TRY(need_rows(n_rows, n_cols, "n_rows", "n_cols", fn));
    if (n_rows == 0 || n_cols == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(x, 1, "x", fn));
    RUN_KERNEL(backend, sum_rows, out, x, n_rows, n_cols);
}

scalar_status scalar_backend_add(scalar_backend *backend, float *out, const float *a,
                                 const float *b, int64_t n)
{
    static const char fn[] = "scalar_backend_add";
    TRY(need_backend(backend, fn));
    TRY(need_rows(1, n, "rows", "n", fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(a, 1, "a", fn));
    TRY(need_ptr(b, 1, "b", fn));
    if ((out != a && ranges_overlap(out, n, a, n)) || (out != b && ranges_overlap(out, n, b, n)))
        return scalar__error_set(SCALAR_E_INVALID_ARG,
                                 "%s: out partly overlaps a or b (it may only be one of them)",
                                 fn);
    RUN_KERNEL(backend, add, out, a, b, n);
}

/* n == 0 still reaches the backend: *out = 0 lives in backend memory. */
scalar_status scalar_backend_sumsq(scalar_backend *backend, double *out, const float *x,
                                   int64_t n)
{
    static const char fn[] = "scalar_backend_sumsq";
    TRY(need_backend(backend, fn));
    TRY(need_rows(1, n, "rows", "n", fn));
    if (!out)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out is NULL", fn);
    TRY(need_ptr(x, n > 0, "x", fn));
    RUN_KERNEL(backend, sumsq, out, x, n);
}

/* AdamW's hyper-parameters: the ranges torch.optim.AdamW accepts, finite. */
static scalar_status need_adamw_params(float lr, float beta1, float beta2, float eps,
                                       float weight_decay, float grad_scale, int64_t step,
                                       const char *fn)
{
    TRY(need_finite_nonneg(lr, "lr", fn));
    if (!(beta1 >= 0.0f && beta1 < 1.0f))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: beta1=%g must be in [0, 1)", fn,
                                 (double)beta1);
    if (!(beta2 >= 0.0f && beta2 < 1.0f))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: beta2=%g must be in [0, 1)", fn,
                                 (double)beta2);
    TRY(need_finite_nonneg(eps, "eps", fn));
    TRY(need_finite_nonneg(weight_decay, "weight_decay", fn));
    TRY(need_finite_nonneg(grad_scale, "grad_scale", fn));
    if (step < 1)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: step=%lld must be >= 1 (1 on the "
                                 "first update)", fn, (long long)step);
    return SCALAR_OK;
}

scalar_status scalar_backend_adamw(scalar_backend *backend, float *param, const float *grad,
                                   float *m, float *v, int64_t n, float lr, float beta1,
                                   float beta2, float eps, float weight_decay, float grad_scale,
                                   int64_t step)
{
    static const char fn[] = "scalar_backend_adamw";
    TRY(need_backend(backend, fn));
    TRY(need_rows(1, n, "rows", "n", fn));
    TRY(need_adamw_params(lr, beta1, beta2, eps, weight_decay, grad_scale, step, fn));
    if (n == 0)
        return SCALAR_OK;
    TRY(need_ptr(param, 1, "param", fn));
    TRY(need_ptr(grad, 1, "grad", fn));
    TRY(need_ptr(m, 1, "m", fn));
    TRY(need_ptr(v, 1, "v", fn));
    RUN_KERNEL(backend, adamw, param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay,
               grad_scale, step);
}

/* ---- sparse codes: decode, dot, outer-add ---- */

/* The shared shapes of the sparse-code kernels: n x k codes whose indices are
 * < n_rows (negative: absent), rows of d floats; *out_nk = n * k. */
static scalar_status need_sparse(const scalar_backend *be, const int32_t *idx, int64_t n,
                                 int64_t k, int64_t n_rows, int64_t d, int64_t *out_nk,
                                 const char *fn)
{
    TRY(need_rows(n, k, "n", "k", fn));
    TRY(need_rows(n, d, "n", "d", fn));
    TRY(need_rows(n_rows, d, "n_rows", "d", fn));
    if (n_rows > INT32_MAX)
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: n_rows=%lld exceeds int32 indices",
                                 fn, (long long)n_rows);
    *out_nk = n * k;
    if (*out_nk == 0 || !be->is_host)
        return SCALAR_OK;
    TRY(need_ptr(idx, 1, "idx", fn));
    for (int64_t i = 0; i < *out_nk; i++)
        if (idx[i] >= n_rows)
            return scalar__error_set(SCALAR_E_INVALID_ARG,
                                     "%s: idx[%lld]=%d out of range (< n_rows=%lld; negative "
                                     "means absent)", fn, (long long)i, (int)idx[i],
                                     (long long)n_rows);
    return SCALAR_OK;
}

scalar_status scalar_backend_sparse_decode(scalar_backend *backend, float *out,
                                           const float *values, const int32_t *idx,
                                           const float *W, const float *bias, int64_t n,
                                           int64_t k, int64_t n_rows, int64_t d)
{
    static const char fn[] = "scalar_backend_sparse_decode";
    int64_t nk;
    TRY(need_backend(backend, fn));
    TRY(need_sparse(backend, idx, n, k, n_rows, d, &nk, fn));
    if (n == 0 || d == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(values, nk > 0, "values", fn));
    TRY(need_ptr(W, nk > 0 && n_rows > 0, "W", fn));
    if ((nk > 0 && ranges_overlap(out, n * d, values, nk)) ||
        (nk > 0 && n_rows > 0 && ranges_overlap(out, n * d, W, n_rows * d)) ||
        (bias && ranges_overlap(out, n * d, bias, d)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out overlaps an input", fn);
    RUN_KERNEL(backend, sparse_decode, out, values, idx, W, bias, n, k, n_rows, d);
}

scalar_status scalar_backend_sparse_dot(scalar_backend *backend, float *out, const int32_t *idx,
                                        const float *W, const float *x, int64_t n, int64_t k,
                                        int64_t n_rows, int64_t d)
{
    static const char fn[] = "scalar_backend_sparse_dot";
    int64_t nk;
    TRY(need_backend(backend, fn));
    TRY(need_sparse(backend, idx, n, k, n_rows, d, &nk, fn));
    if (nk == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(W, n_rows > 0 && d > 0, "W", fn));
    TRY(need_ptr(x, d > 0, "x", fn));
    if ((d > 0 && ranges_overlap(out, nk, x, n * d)) ||
        (d > 0 && n_rows > 0 && ranges_overlap(out, nk, W, n_rows * d)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out overlaps an input", fn);
    RUN_KERNEL(backend, sparse_dot, out, idx, W, x, n, k, n_rows, d);
}

scalar_status scalar_backend_sparse_outer_add(scalar_backend *backend, float *dW, const float *a,
                                              const int32_t *idx, const float *x, int64_t n,
                                              int64_t k, int64_t n_rows, int64_t d)
{
    static const char fn[] = "scalar_backend_sparse_outer_add";
    int64_t nk;
    TRY(need_backend(backend, fn));
    TRY(need_sparse(backend, idx, n, k, n_rows, d, &nk, fn));
    if (nk == 0 || d == 0 || n_rows == 0)
        return SCALAR_OK;
    TRY(need_ptr(dW, 1, "dW", fn));
    TRY(need_ptr(a, 1, "a", fn));
    TRY(need_ptr(x, 1, "x", fn));
    if (ranges_overlap(dW, n_rows * d, a, nk) || ranges_overlap(dW, n_rows * d, x, n * d))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: dW overlaps an input", fn);
    RUN_KERNEL(backend, sparse_outer_add, dW, a, idx, x, n, k, n_rows, d);
}

/* ---- the Jacobian contraction of JSAE pairs ---- */

/* Shapes: A [n, k_a, h], B [n, k_b, h], g [n, h], J or S [n, k_a, k_b]; sets the
 * element counts. */
static scalar_status need_contract(int64_t n, int64_t k_a, int64_t k_b, int64_t h, int64_t *na,
                                   int64_t *nb, int64_t *ng, int64_t *nj, const char *fn)
{
    TRY(need_size(n, "n", fn));
    TRY(need_size(k_a, "k_a", fn));
    TRY(need_size(k_b, "k_b", fn));
    TRY(need_size(h, "h", fn));
    int64_t t;
    TRY(need_product(n, k_a, &t, "n * k_a", fn));
    TRY(need_product(t, h, na, "n * k_a * h", fn));
    TRY(need_product(t, k_b, nj, "n * k_a * k_b", fn));
    TRY(need_product(n, k_b, &t, "n * k_b", fn));
    TRY(need_product(t, h, nb, "n * k_b * h", fn));
    TRY(need_product(n, h, ng, "n * h", fn));
    return need_matrix(*na > *nb ? *na : *nb, 1, "the operands", fn);
}

scalar_status scalar_backend_jacobian_contract(scalar_backend *backend, float *J, const float *A,
                                               const float *g, const float *B, int64_t n,
                                               int64_t k_a, int64_t k_b, int64_t h)
{
    static const char fn[] = "scalar_backend_jacobian_contract";
    int64_t na, nb, ng, nj;
    TRY(need_backend(backend, fn));
    TRY(need_contract(n, k_a, k_b, h, &na, &nb, &ng, &nj, fn));
    if (nj == 0)
        return SCALAR_OK;
    TRY(need_ptr(J, 1, "J", fn));
    TRY(need_ptr(A, na > 0, "A", fn));
    TRY(need_ptr(B, nb > 0, "B", fn));
    TRY(need_ptr(g, ng > 0, "g", fn));
    if ((na && ranges_overlap(J, nj, A, na)) || (nb && ranges_overlap(J, nj, B, nb)) ||
        (ng && ranges_overlap(J, nj, g, ng)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: J overlaps an input", fn);
    RUN_KERNEL(backend, jacobian_contract, J, A, g, B, n, k_a, k_b, h);
}

scalar_status scalar_backend_jacobian_contract_backward(scalar_backend *backend, float *dA,
                                                        float *dB, const float *S, const float *A,
                                                        const float *g, const float *B, int64_t n,
                                                        int64_t k_a, int64_t k_b, int64_t h)
{
    static const char fn[] = "scalar_backend_jacobian_contract_backward";
    int64_t na, nb, ng, nj;
    TRY(need_backend(backend, fn));
    TRY(need_contract(n, k_a, k_b, h, &na, &nb, &ng, &nj, fn));
    if (na == 0 && nb == 0)
        return SCALAR_OK;
    TRY(need_ptr(dA, na > 0, "dA", fn));
    TRY(need_ptr(dB, nb > 0, "dB", fn));
    TRY(need_ptr(S, nj > 0, "S", fn));
    TRY(need_ptr(A, na > 0, "A", fn));
    TRY(need_ptr(B, nb > 0, "B", fn));
    TRY(need_ptr(g, ng > 0, "g", fn));
    const float *in[4] = {S, A, g, B};
    const int64_t in_n[4] = {nj, na, ng, nb};
    for (int i = 0; i < 4; i++)
        if (in_n[i] && ((na && ranges_overlap(dA, na, in[i], in_n[i])) ||
                        (nb && ranges_overlap(dB, nb, in[i], in_n[i]))))
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: an output overlaps an input", fn);
    if (na && nb && ranges_overlap(dA, na, dB, nb))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: dA overlaps dB", fn);
    RUN_KERNEL(backend, jacobian_contract_backward, dA, dB, S, A, g, B, n, k_a, k_b, h);
}

static scalar_status need_rows_index(const int32_t *idx, int64_t n, int64_t bound,
                                     const char *what, const char *fn)
{
    for (int64_t r = 0; r < n; r++)
        if (idx[r] < 0 || idx[r] >= bound)
            return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: %s[%lld] = %d is not in [0, %lld)",
                                     fn, what, (long long)r, (int)idx[r], (long long)bound);
    return SCALAR_OK;
}

scalar_status scalar_backend_jacobian_rows(scalar_backend *backend, float *out, const float *A,
                                           const int32_t *a_idx, const float *g,
                                           const int32_t *g_idx, const float *B, int64_t n_rows,
                                           int64_t n_a, int64_t n_g, int64_t h, int64_t d)
{
    static const char fn[] = "scalar_backend_jacobian_rows";
    int64_t n_out, na, ng, nb;
    TRY(need_backend(backend, fn));
    TRY(need_size(n_rows, "n_rows", fn));
    TRY(need_size(n_a, "n_a", fn));
    TRY(need_size(n_g, "n_g", fn));
    TRY(need_size(h, "h", fn));
    TRY(need_size(d, "d", fn));
    TRY(need_product(n_rows, d, &n_out, "n_rows * d", fn));
    TRY(need_product(n_a, h, &na, "n_a * h", fn));
    TRY(need_product(n_g, h, &ng, "n_g * h", fn));
    TRY(need_product(d, h, &nb, "d * h", fn));
    if (n_out == 0)
        return SCALAR_OK;
    TRY(need_ptr(out, 1, "out", fn));
    TRY(need_ptr(a_idx, 1, "a_idx", fn));
    TRY(need_ptr(g_idx, 1, "g_idx", fn));
    TRY(need_ptr(A, na > 0, "A", fn));
    TRY(need_ptr(g, ng > 0, "g", fn));
    TRY(need_ptr(B, nb > 0, "B", fn));
    TRY(need_rows_index(a_idx, n_rows, n_a, "a_idx", fn));
    TRY(need_rows_index(g_idx, n_rows, n_g, "g_idx", fn));
    if ((na && ranges_overlap(out, n_out, A, na)) || (ng && ranges_overlap(out, n_out, g, ng)) ||
        (nb && ranges_overlap(out, n_out, B, nb)))
        return scalar__error_set(SCALAR_E_INVALID_ARG, "%s: out overlaps an input", fn);
    RUN_KERNEL(backend, jacobian_rows, out, A, a_idx, g, g_idx, B, n_rows, n_a, n_g, h, d);
}
