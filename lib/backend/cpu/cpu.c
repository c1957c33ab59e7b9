/*
 * cpu.c - the "cpu" backend: lifecycle, memory, GEMM through BLIS, ops table.
 *
 * GEMMs go to bli_sgemm_ex with a runtime object built per call from the
 * context's thread count, never through BLIS_NUM_THREADS or
 * bli_thread_set_num_threads (process-wide, shared with any other BLIS user).
 * BLIS aborts on bad arguments, so everything it sees was checked first by
 * lib/backend/dispatch.c, and sizes it handles badly (k == 0) stop here.
 * Where BLIS does not recognise the CPU and runs its portable "generic"
 * microkernels (BLIS 0.9.0 on anything newer than Zen 3, e.g. Zen 5), and the
 * build targets AVX2 + FMA, GEMMs get a copy of BLIS's context holding our
 * microkernel (cpu_gemm_ukr.c: AVX-512 24 x 16 where the CPU has it, else
 * AVX2 6 x 16): BLIS's own blocking, packing and threading around a kernel
 * 3-5x faster than its generic one.  `scalar info` says which;
 * SCALAR_BLIS_OWN_KERNELS=1 in the environment keeps BLIS's kernels,
 * SCALAR_CPU_NO_AVX512=1 picks the AVX2 kernel.
 * The other kernels are OpenMP loops in cpu_dense.c, cpu_rows.c,
 * cpu_attention.c, cpu_model.c and cpu_train.c.
 *
 * BLIS 0.9.0 (Debian 12) has small-matrix ("sup") kernels that, for some edge
 * shapes, read past the last element of an operand: one float past C, and up
 * to one row stride past A or B (flame/blis#635, #824; measured with valgrind
 * over ~27k random shapes, strides and alignments).  Such a read faults when
 * it crosses into an unmapped page (a tensor at the end of an mmap'ed file)
 * and makes every caller's valgrind run report us.  So every call takes
 * BLIS's packed path, which stays in bounds, at 5-20% of speed on the d=64
 * shapes (make bench) and none on GPT-2 sizes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* blis.h defines hundreds of unused static helpers and unused parameters. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include <blis.h>
#pragma GCC diagnostic pop

#include "cpu.h"

_Static_assert(sizeof(dim_t) >= sizeof(int64_t) && sizeof(inc_t) >= sizeof(int64_t),
               "BLIS must be built with 64-bit dim_t/inc_t (BLIS_INT_TYPE_SIZE=64)");

/* ---- our microkernel in a BLIS context, where BLIS runs "generic" ---- */

/* The kernels with BLIS 0.9's gemm microkernel signature (bli_l3_ukr_prot.h). */
static void sgemm_ukr_avx2(dim_t m, dim_t n, dim_t k, float *restrict alpha, float *restrict a,
                           float *restrict b, float *restrict beta, float *restrict c, inc_t rs_c,
                           inc_t cs_c, auxinfo_t *restrict data, cntx_t *restrict cntx)
{
    (void)data, (void)cntx;
    scalar__cpu_sgemm_ukr_6x16(m, n, k, alpha, a, b, beta, c, rs_c, cs_c);
}

static void sgemm_ukr_avx512(dim_t m, dim_t n, dim_t k, float *restrict alpha, float *restrict a,
                             float *restrict b, float *restrict beta, float *restrict c,
                             inc_t rs_c, inc_t cs_c, auxinfo_t *restrict data,
                             cntx_t *restrict cntx)
{
    (void)data, (void)cntx;
    scalar__cpu_sgemm_ukr_24x16(m, n, k, alpha, a, b, beta, c, rs_c, cs_c);
}

typedef void (*sgemm_ukr_fn)(dim_t, dim_t, dim_t, float *restrict, float *restrict,
                             float *restrict, float *restrict, float *restrict, inc_t, inc_t,
                             auxinfo_t *restrict, cntx_t *restrict);

/* A kernel and its float block sizes.  Cache blocks: a KC x NR micro-panel
 * of B (16 KiB) stays in L1, an MC x KC block of A (~170 KiB) in L2, as in
 * BLIS's own Haswell (6 x 16: MC 168, KC 256, NC 4080) configuration. */
typedef struct ukr_config {
    const char *name;
    sgemm_ukr_fn fn;
    dim_t mr, nr, mc, kc, nc;
} ukr_config;

static const ukr_config ukr_avx2 = {"avx2 6x16", sgemm_ukr_avx2, 6, 16, 168, 256, 4080};
static const ukr_config ukr_avx512 = {"avx512 24x16", sgemm_ukr_avx512, 24, 16, 168, 256, 4080};

static cntx_t ukr_cntx;             /* BLIS's generic context with our sgemm kernel */
static const cntx_t *ukr_ready;     /* &ukr_cntx once set up, NULL when not used */
static const ukr_config *ukr_chosen; /* which kernel */
static pthread_once_t ukr_once = PTHREAD_ONCE_INIT;

static void set_float_blksz(bszid_t id, dim_t value)
{
    blksz_t *bs = bli_cntx_get_blksz(id, &ukr_cntx);
    bli_blksz_set_def(value, BLIS_FLOAT, bs);
    bli_blksz_set_max(value, BLIS_FLOAT, bs);
}

static void ukr_setup(void)
{
    if (!scalar__cpu_sgemm_ukr_available() || getenv("SCALAR_BLIS_OWN_KERNELS") ||
        bli_arch_query_id() != BLIS_ARCH_GENERIC)
        return;
    const ukr_config *u = scalar__cpu_sgemm_ukr512_available() && !getenv("SCALAR_CPU_NO_AVX512")
                              ? &ukr_avx512
                              : &ukr_avx2;
    ukr_cntx = *bli_gks_query_cntx(); /* a plain struct: values, no pointers to its own fields */
    set_float_blksz(BLIS_MR, u->mr);
    set_float_blksz(BLIS_NR, u->nr);
    set_float_blksz(BLIS_MC, u->mc / u->mr * u->mr);
    set_float_blksz(BLIS_KC, u->kc);
    set_float_blksz(BLIS_NC, u->nc / u->nr * u->nr);
    blksz_t bs[5];
    bszid_t ids[5] = {BLIS_NC, BLIS_KC, BLIS_MC, BLIS_NR, BLIS_MR};
    for (int i = 0; i < 5; i++)
        bs[i] = *bli_cntx_get_blksz(ids[i], &ukr_cntx);
    bli_cntx_set_blkszs(BLIS_NAT, 5, BLIS_NC, &bs[0], BLIS_NR, BLIS_KC, &bs[1], BLIS_KR, BLIS_MC,
                        &bs[2], BLIS_MR, BLIS_NR, &bs[3], BLIS_NR, BLIS_MR, &bs[4], BLIS_MR,
                        &ukr_cntx);
    void_fp ukr; /* BLIS 0.9 stores kernels as void *: ISO C has no cast for that */
    sgemm_ukr_fn fn = u->fn;
    _Static_assert(sizeof ukr == sizeof fn, "BLIS's void_fp holds a function pointer");
    memcpy(&ukr, &fn, sizeof ukr);
    /* row-preferential: the kernels store rows of C; BLIS transposes the
     * problem when that suits C's storage better */
    bli_cntx_set_l3_nat_ukrs(1, BLIS_GEMM_UKR, BLIS_FLOAT, ukr, TRUE, &ukr_cntx);
    ukr_chosen = u;
    ukr_ready = &ukr_cntx;
}

/* The context for bli_sgemm_ex: ours, or NULL for BLIS's default. */
static cntx_t *sgemm_cntx(void)
{
    pthread_once(&ukr_once, ukr_setup);
    return (cntx_t *)ukr_ready;
}

const char *scalar__cpu_sgemm_kernel(void)
{
    return sgemm_cntx() ? ukr_chosen->name : "BLIS";
}

static const char *blis_threading(void)
{
    if (bli_info_get_enable_openmp())
        return "openmp";
    if (bli_info_get_enable_pthreads())
        return "pthreads";
    return "single-threaded";
}

static scalar_status cpu_create(void **out_self, scalar_ctx *ctx, const char *params)
{
    (void)params;
    scalar__cpu *s = scalar__calloc(ctx, 1, sizeof *s, "cpu");
    if (!s)
        return SCALAR_E_NOMEM;
    s->ctx = ctx;
    s->n_threads = scalar_ctx_n_threads(ctx);
    if (s->n_threads < 1)
        s->n_threads = 1;
    snprintf(s->description, sizeof s->description, "BLIS %s (%s%s%s, %s), %d thread%s",
             bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()),
             sgemm_cntx() ? " + libscalar sgemm kernel " : "",
             sgemm_cntx() ? scalar__cpu_sgemm_kernel() : "", blis_threading(),
             (int)s->n_threads, s->n_threads == 1 ? "" : "s");
    *out_self = s;
    return SCALAR_OK;
}

static void cpu_destroy(void *self)
{
    scalar__cpu *s = self;
    scalar__free(s->ctx, s);
}

static const char *cpu_describe(void *self)
{
    const scalar__cpu *s = self;
    return s->description;
}

/* Host memory from the context's allocator hooks, 64-byte aligned. */
static scalar_status cpu_buffer_alloc(void *self, void **out_ptr, size_t size)
{
    scalar__cpu *s = self;
    *out_ptr = scalar__alloc_raw(s->ctx, size);
    if (!*out_ptr)
        return scalar__error_set(SCALAR_E_NOMEM, "cpu: out of memory (%zu-byte buffer)", size);
    return SCALAR_OK;
}

static void cpu_buffer_free(void *self, void *ptr, size_t size)
{
    scalar__cpu *s = self;
    scalar__free_raw(s->ctx, ptr, size);
}

/* C = beta * C, the whole GEMM when k == 0 (BLIS is not asked: an empty inner
 * dimension is a corner its argument checks and kernels need not agree on). */
static void scale_c(float *c, int64_t m, int64_t n, int64_t ldc, float beta)
{
    for (int64_t i = 0; i < m; i++) {
        float *c_row = c + i * ldc;
        if (beta == 0.0f) { /* write-only: NaN in C must not survive */
            for (int64_t j = 0; j < n; j++)
                c_row[j] = 0.0f;
        } else {
            for (int64_t j = 0; j < n; j++)
                c_row[j] *= beta;
        }
    }
}

/* C = alpha * op(A) op(B) + beta * C through BLIS on n_threads threads
 *   a: [m, k] (lda >= k), or [k, m] (lda >= m) when trans_a
 *   b: [k, n] (ldb >= n), or [n, k] (ldb >= k) when trans_b
 *   c: [m, n] (ldc >= n); BLIS does not read C when beta == 0
 * m, n, k > 0 (BLIS need not agree with us on empty shapes).  Row-major
 * maps onto BLIS's general strides as rs = ld, cs = 1. */
void scalar__cpu_blis_sgemm(int32_t n_threads, int32_t trans_a, int32_t trans_b, int64_t m,
                            int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                            const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    rntm_t rntm; /* per call: concurrent calls on one instance never share it */
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(n_threads, &rntm);
    /* BLIS 0.9.0 (Debian 12) has out-of-bounds reads in its small/unpacked
     * ("sup") Haswell-family kernels (flame/blis #635, #821): they read a few
     * floats past the end of A or B, which faults when a caller's matrix ends
     * at a page boundary and shows up under valgrind.  The packed path reads
     * only inside the matrices; it costs 5-20% on the d=64 shapes (make bench). */
    bli_rntm_disable_l3_sup(&rntm);
    /* BLIS 0.9's typed API takes non-const pointers; it only reads A, B, alpha, beta. */
    bli_sgemm_ex(trans_a == SCALAR_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE,
                 trans_b == SCALAR_TRANS ? BLIS_TRANSPOSE : BLIS_NO_TRANSPOSE, (dim_t)m, (dim_t)n,
                 (dim_t)k, &alpha, (float *)a, (inc_t)lda, 1, (float *)b, (inc_t)ldb, 1, &beta, c,
                 (inc_t)ldc, 1, sgemm_cntx(), &rntm);
}

/* C = alpha * op(A) op(B) + beta * C
 *   a: [m, k] (lda >= k), or [k, m] (lda >= m) when trans_a
 *   b: [k, n] (ldb >= n), or [n, k] (ldb >= k) when trans_b
 *   c: [m, n] (ldc >= n); BLIS does not read C when beta == 0 */
static scalar_status cpu_sgemm(void *self, int32_t trans_a, int32_t trans_b, int64_t m,
                               int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    const scalar__cpu *s = self;
    if (m == 0 || n == 0)
        return SCALAR_OK;
    if (k == 0) {
        scale_c(c, m, n, ldc, beta);
        return SCALAR_OK;
    }
    scalar__cpu_blis_sgemm(s->n_threads, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                           c, ldc);
    return SCALAR_OK;
}

const scalar_backend_ops scalar__backend_cpu_ops = {
    .abi_version = SCALAR_BACKEND_ABI_VERSION,
    .struct_size = sizeof(scalar_backend_ops),
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .buffer_alloc = cpu_buffer_alloc,
    .buffer_free = cpu_buffer_free,
    .buffer_is_host = NULL, /* host memory */
    .upload = NULL,         /* memcpy */
    .download = NULL,       /* memcpy */
    .synchronize = NULL,    /* every kernel returns when done */
    .supports = NULL,       /* every slot below */
    .sgemm = cpu_sgemm,
    .bias_add = scalar__cpu_bias_add,
    .gelu_forward = scalar__cpu_gelu_forward,
    .gelu_backward = scalar__cpu_gelu_backward,
    .layernorm_forward = scalar__cpu_layernorm_forward,
    .layernorm_backward = scalar__cpu_layernorm_backward,
    .softmax_rows = scalar__cpu_softmax_rows,
    .topk_rows = scalar__cpu_topk_rows,
    .gather_rows = scalar__cpu_gather_rows,
    .scatter_add_rows = scalar__cpu_scatter_add_rows,
    .get_proc_address = NULL,
    .attention_forward = scalar__cpu_attention_forward,
    .attention_backward = scalar__cpu_attention_backward,
    .embedding_forward = scalar__cpu_embedding_forward,
    .embedding_backward = scalar__cpu_embedding_backward,
    .cross_entropy_forward = scalar__cpu_cross_entropy_forward,
    .cross_entropy_backward = scalar__cpu_cross_entropy_backward,
    .sum_rows = scalar__cpu_sum_rows,
    .add = scalar__cpu_add,
    .sumsq = scalar__cpu_sumsq,
    .adamw = scalar__cpu_adamw,
    .sparse_decode = scalar__cpu_sparse_decode,
    .sparse_dot = scalar__cpu_sparse_dot,
    .sparse_outer_add = scalar__cpu_sparse_outer_add,
    .jacobian_contract = scalar__cpu_jacobian_contract,
    .jacobian_contract_backward = scalar__cpu_jacobian_contract_backward,
    .jacobian_rows = scalar__cpu_jacobian_rows,
};
