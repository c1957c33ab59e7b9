/*
 * check_backend.c - the backend suite: registry, argument checks of every
 * entry point, buffers, and the numeric cases of check_backend_kernels.c,
 * check_backend_numerics.c and the check_backend_model*.c files.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

/* ---- shared helpers ---- */

scalar_ctx *bt_ctx(const char *backend, int32_t n_threads)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    ck_assert_int_eq(scalar_ctx_options_init(&o, sizeof o), SCALAR_OK);
    o.backend = backend;
    o.n_threads = n_threads;
    scalar_status st = scalar_ctx_create(&ctx, &o);
    ck_assert_msg(st == SCALAR_OK, "context on %s: %s", backend, scalar_last_error());
    return ctx;
}

float *bt_floats(int64_t n)
{
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

int32_t *bt_ints(int64_t n)
{
    int32_t *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    ck_assert_ptr_nonnull(p);
    return p;
}

void bt_fill_normal(float *x, int64_t n, scalar__rng *rng, float scale, float offset)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = offset + scale * scalar__rng_normal(rng);
}

double bt_nmse(const float *x, const float *ref, int64_t n)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(ref[i])) {
            if (isnan(x[i]) != isnan(ref[i]))
                return INFINITY;
            continue;
        }
        err += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        norm += (double)ref[i] * ref[i];
    }
    return norm > 0.0 ? err / norm : err;
}

/* ---- test backends ---- */

static scalar_status tb_create(void **out_self, scalar_ctx *ctx, const char *params)
{
    (void)ctx;
    (void)params;
    *out_self = malloc(16);
    return *out_self ? SCALAR_OK : SCALAR_E_NOMEM;
}

static void tb_destroy(void *self)
{
    free(self);
}

static scalar_status tb_alloc(void *self, void **out_ptr, size_t size)
{
    (void)self;
    *out_ptr = aligned_alloc(64, (size + 63) & ~(size_t)63);
    return *out_ptr ? SCALAR_OK : SCALAR_E_NOMEM;
}

static void tb_free(void *self, void *ptr, size_t size)
{
    (void)self;
    (void)size;
    free(ptr);
}

static int unsupported_calls;

static scalar_status tb_sgemm_unsupported(void *self, int32_t trans_a, int32_t trans_b,
                                          int64_t m, int64_t n, int64_t k, float alpha,
                                          const float *a, int64_t lda, const float *b, int64_t ldb,
                                          float beta, float *c, int64_t ldc)
{
    (void)self, (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k, (void)alpha, (void)a;
    (void)lda, (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    unsupported_calls++;
    return scalar_sys_error_set(SCALAR_E_UNSUPPORTED, "test-unsup: no sgemm here");
}

int bt_unsupported_calls(void)
{
    return unsupported_calls;
}

/* Lifecycle and memory only: every kernel falls back to cpu-ref. */
static scalar_backend_ops lite_ops(const char *name)
{
    scalar_backend_ops ops;
    memset(&ops, 0, sizeof ops);
    ops.abi_version = SCALAR_BACKEND_ABI_VERSION;
    ops.struct_size = sizeof ops;
    ops.name = name;
    ops.create = tb_create;
    ops.destroy = tb_destroy;
    ops.buffer_alloc = tb_alloc;
    ops.buffer_free = tb_free;
    return ops;
}

static int is_registered(const char *name)
{
    for (size_t i = 0; i < scalar_backend_count(); i++)
        if (strcmp(scalar_backend_name(i), name) == 0)
            return 1;
    return 0;
}

static int32_t tb_not_host(void *self)
{
    (void)self;
    return 0;
}

/* Once per process: with CK_FORK=no every test shares one registry. */
void bt_register_test_backends(void)
{
    if (!is_registered("test-lite")) {
        scalar_backend_ops ops = lite_ops("test-lite");
        ck_assert_int_eq(scalar_backend_register(&ops), SCALAR_OK);
    }
    if (!is_registered("test-unsup")) {
        scalar_backend_ops ops = lite_ops("test-unsup");
        ops.sgemm = tb_sgemm_unsupported;
        ck_assert_int_eq(scalar_backend_register(&ops), SCALAR_OK);
    }
    if (!is_registered("test-device")) {
        scalar_backend_ops ops = lite_ops("test-device"); /* memory "not host", no kernels */
        ops.buffer_is_host = tb_not_host;
        ck_assert_int_eq(scalar_backend_register(&ops), SCALAR_OK);
    }
}

static void assert_error(scalar_status got, scalar_status want, const char *needle)
{
    ck_assert_msg(got == want, "status %d, want %d (%s)", (int)got, (int)want,
                  scalar_last_error());
    ck_assert_msg(strstr(scalar_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"",
                  scalar_last_error(), needle);
}

void bt_assert_error(scalar_status got, scalar_status want, const char *needle)
{
    assert_error(got, want, needle);
}

/* ---- registry ---- */

START_TEST(test_register_rejects_wrong_abi_version)
{
    scalar_backend_ops ops = lite_ops("test-bad-abi");
    ops.abi_version = SCALAR_BACKEND_ABI_VERSION + 1;
    assert_error(scalar_backend_register(&ops), SCALAR_E_VERSION, "abi_version");
    ck_assert(!is_registered("test-bad-abi"));
}
END_TEST

START_TEST(test_register_rejects_small_struct)
{
    scalar_backend_ops ops = lite_ops("test-small");
    ops.struct_size = SCALAR_BACKEND_OPS_V1_SIZE - 8;
    assert_error(scalar_backend_register(&ops), SCALAR_E_VERSION, "struct_size");
    ck_assert_int_eq(sizeof(scalar_backend_ops), SCALAR_BACKEND_OPS_V4_SIZE);
}
END_TEST

START_TEST(test_register_rejects_bad_names)
{
    static const char *const bad[] = {"Test-Upper", "test_underscore", "", "has space"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        scalar_backend_ops ops = lite_ops(bad[i]);
        assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "name");
    }
    scalar_backend_ops ops = lite_ops(NULL);
    assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "name");
    assert_error(scalar_backend_register(NULL), SCALAR_E_INVALID_ARG, "NULL");
}
END_TEST

START_TEST(test_register_rejects_duplicate_name)
{
    scalar_backend_ops ops = lite_ops("cpu");
    assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "\"cpu\" exists");
    bt_register_test_backends();
    ops = lite_ops("test-lite");
    assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "exists");
}
END_TEST

START_TEST(test_register_rejects_missing_mandatory_slot)
{
    scalar_backend_ops ops = lite_ops("test-no-free");
    ops.buffer_free = NULL;
    assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "mandatory");
    ops = lite_ops("test-no-create");
    ops.create = NULL;
    assert_error(scalar_backend_register(&ops), SCALAR_E_INVALID_ARG, "mandatory");
    ck_assert(!is_registered("test-no-free") && !is_registered("test-no-create"));
}
END_TEST

/* Slots a version-1 table does not have: registering with struct_size 192
 * must leave them NULL, so these are never called. */
static scalar_status tb_sum_rows_past_v1(void *self, float *out, const float *x, int64_t n_rows,
                                         int64_t n_cols)
{
    (void)self, (void)out, (void)x, (void)n_rows, (void)n_cols;
    ck_abort_msg("sum_rows slot past a version-1 struct_size was called");
    return SCALAR_E_BACKEND;
}

static scalar_status tb_add_past_v1(void *self, float *out, const float *a, const float *b,
                                    int64_t n)
{
    (void)self, (void)out, (void)a, (void)b, (void)n;
    ck_abort_msg("add slot past a version-1 struct_size was called");
    return SCALAR_E_BACKEND;
}

/* Register "test-v1": a table as a backend built against the version-1
 * header passes it (struct_size 192), with non-NULL garbage where the
 * version-2 slots would be.  And "test-v1-exact", whose table is a heap
 * block of exactly 192 bytes, so ASan sees any read past it. */
static void register_v1_backends(void)
{
    if (!is_registered("test-v1")) {
        scalar_backend_ops ops = lite_ops("test-v1");
        ops.struct_size = SCALAR_BACKEND_OPS_V1_SIZE;
        ops.sum_rows = tb_sum_rows_past_v1;
        ops.add = tb_add_past_v1;
        ck_assert_int_eq(scalar_backend_register(&ops), SCALAR_OK);
    }
    if (!is_registered("test-v1-exact")) {
        scalar_backend_ops ops = lite_ops("test-v1-exact");
        ops.struct_size = SCALAR_BACKEND_OPS_V1_SIZE;
        void *exact = malloc(SCALAR_BACKEND_OPS_V1_SIZE);
        ck_assert_ptr_nonnull(exact);
        memcpy(exact, &ops, SCALAR_BACKEND_OPS_V1_SIZE);
        ck_assert_int_eq(scalar_backend_register(exact), SCALAR_OK);
        free(exact); /* the registry keeps a copy */
    }
}

START_TEST(test_register_v1_size_table_runs_new_ops_on_cpu_ref)
{
    static const char *const names[] = {"test-v1", "test-v1-exact"};
    register_v1_backends();
    scalar_ctx *ref_ctx = bt_ctx("cpu-ref", 1);
    scalar_backend *ref = scalar_ctx_backend(ref_ctx);
    for (int i = 0; i < 2; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        for (int32_t op = 0; op < SCALAR_OP_COUNT; op++)
            ck_assert_int_eq(scalar_backend_supports(be, op), 0);
        float x[6] = {1, 2, 3, 4, 5, 6}, sum[3] = {0}, sum_ref[3] = {0}, y[6], y_ref[6];
        float qkv[2 * 6], att[4], att_ref[4], out[2 * 2], out_ref[2 * 2];
        for (int j = 0; j < 12; j++)
            qkv[j] = 0.25f * (float)(j % 5) - 0.5f;
        ck_assert_int_eq(scalar_backend_sum_rows(be, sum, x, 2, 3), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_sum_rows(ref, sum_ref, x, 2, 3), SCALAR_OK);
        ck_assert(memcmp(sum, sum_ref, sizeof sum) == 0 && sum[0] == 5.0f);
        ck_assert_int_eq(scalar_backend_add(be, y, x, x, 6), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_add(ref, y_ref, x, x, 6), SCALAR_OK);
        ck_assert(memcmp(y, y_ref, sizeof y) == 0 && y[5] == 12.0f);
        ck_assert_int_eq(scalar_backend_attention_forward(be, out, att, qkv, 1, 2, 2, 1),
                         SCALAR_OK);
        ck_assert_int_eq(scalar_backend_attention_forward(ref, out_ref, att_ref, qkv, 1, 2, 2, 1),
                         SCALAR_OK);
        ck_assert(memcmp(out, out_ref, sizeof out) == 0 && memcmp(att, att_ref, sizeof att) == 0);
        int32_t codes[2] = {2, -1};
        ck_assert_int_eq(scalar_backend_sparse_decode(be, y, x, codes, x, NULL, 1, 2, 3, 2),
                         SCALAR_OK);
        ck_assert(y[0] == 5.0f && y[1] == 6.0f); /* 1 * row 2 of x as [3, 2] */
        scalar_ctx_free(ctx);
    }
    scalar_ctx_free(ref_ctx);
}
END_TEST

/* The same GEMM and LayerNorm on `be` and on cpu-ref give the same bits. */
static void assert_same_as_cpu_ref(scalar_backend *be)
{
    scalar_ctx *ref_ctx = bt_ctx("cpu-ref", 1);
    scalar_backend *ref = scalar_ctx_backend(ref_ctx);
    scalar__rng rng;
    scalar__rng_init(&rng, 5, 0);
    float a[17 * 9], b[9 * 5], c[17 * 5], c_ref[17 * 5], ln[17 * 9], ln_ref[17 * 9];
    bt_fill_normal(a, 17 * 9, &rng, 1.0f, 0.0f);
    bt_fill_normal(b, 9 * 5, &rng, 1.0f, 0.0f);
    ck_assert_int_eq(scalar_backend_sgemm(be, 0, 0, 17, 5, 9, 1.0f, a, 9, b, 5, 0.0f, c, 5),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sgemm(ref, 0, 0, 17, 5, 9, 1.0f, a, 9, b, 5, 0.0f, c_ref, 5),
                     SCALAR_OK);
    ck_assert(memcmp(c, c_ref, sizeof c) == 0);
    ck_assert_int_eq(scalar_backend_layernorm_forward(be, ln, NULL, NULL, a, NULL, NULL, 17, 9,
                                                      1e-5f), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_layernorm_forward(ref, ln_ref, NULL, NULL, a, NULL, NULL, 17,
                                                      9, 1e-5f), SCALAR_OK);
    ck_assert(memcmp(ln, ln_ref, sizeof ln) == 0);
    scalar_ctx_free(ref_ctx);
}

START_TEST(test_backend_without_kernels_falls_back_to_cpu_ref)
{
    bt_register_test_backends();
    scalar_ctx *ctx = bt_ctx("test-lite", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    ck_assert_str_eq(scalar_ctx_backend_name(ctx), "test-lite");
    ck_assert_str_eq(scalar_backend_describe(be), "test-lite");
    ck_assert_int_eq(scalar_backend_is_host(be), 1);
    for (int32_t op = 0; op < SCALAR_OP_COUNT; op++)
        ck_assert_int_eq(scalar_backend_supports(be, op), 0);
    assert_same_as_cpu_ref(be);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_unsupported_call_retries_on_cpu_ref)
{
    bt_register_test_backends();
    scalar_ctx *ctx = bt_ctx("test-unsup", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    ck_assert_int_eq(scalar_backend_supports(be, SCALAR_OP_SGEMM), 1);
    ck_assert_int_eq(scalar_backend_supports(be, SCALAR_OP_SOFTMAX_ROWS), 0);
    int before = bt_unsupported_calls();
    assert_same_as_cpu_ref(be);
    ck_assert_int_eq(bt_unsupported_calls(), before + 1);
    scalar_ctx_free(ctx);
}
END_TEST

/* cpu-ref cannot read device memory: a non-host backend without a kernel
 * gets a clear error, never cpu-ref loops over its pointers. */
START_TEST(test_device_backend_without_kernel_is_unsupported)
{
    bt_register_test_backends();
    scalar_ctx *ctx = bt_ctx("test-device", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float x[4] = {0};
    ck_assert_int_eq(scalar_backend_is_host(be), 0);
    assert_error(scalar_backend_gelu_forward(be, x, x, 4), SCALAR_E_UNSUPPORTED,
                 "\"test-device\" has no gelu_forward kernel");
    assert_error(scalar_backend_sgemm(be, 0, 0, 1, 1, 1, 1.0f, x, 1, x, 1, 0.0f, x, 1),
                 SCALAR_E_UNSUPPORTED, "no sgemm kernel");
    assert_error(scalar_backend_add(be, x, x, x, 4), SCALAR_E_UNSUPPORTED, "no add kernel");
    assert_error(scalar_backend_attention_forward(be, x, x + 2, x, 1, 1, 1, 1),
                 SCALAR_E_UNSUPPORTED, "\"test-device\" has no attention_forward kernel");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_builtin_backends_support_every_op)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    ck_assert_int_ge(scalar_backend_count(), 2);
    for (int i = 0; i < 2; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        for (int32_t op = 0; op < SCALAR_OP_COUNT; op++)
            ck_assert_int_eq(scalar_backend_supports(be, op), 1);
        ck_assert_int_eq(scalar_backend_supports(be, -1), 0);
        ck_assert_int_eq(scalar_backend_supports(be, SCALAR_OP_COUNT), 0);
        scalar_ctx_free(ctx);
    }
    ck_assert_int_eq(scalar_backend_supports(NULL, SCALAR_OP_SGEMM), 0);
}
END_TEST

START_TEST(test_describe_names_blis_and_threads)
{
    scalar_ctx *ctx = bt_ctx("cpu", 2), *ref_ctx = bt_ctx("cpu-ref", 1);
    const char *d = scalar_backend_describe(scalar_ctx_backend(ctx));
    ck_assert_msg(strncmp(d, "BLIS ", 5) == 0 && strstr(d, "), 2 threads"), "describe: %s", d);
    ck_assert_str_eq(scalar_backend_describe(scalar_ctx_backend(ref_ctx)), "cpu-ref");
    ck_assert_str_eq(scalar_backend_describe(NULL), "");
    scalar_ctx_free(ctx);
    scalar_ctx_free(ref_ctx);
}
END_TEST

/* ---- argument validation ---- */

START_TEST(test_null_backend_rejected_everywhere)
{
    float f[4] = {0};
    int32_t ix[2] = {0};
    void *p = f;
    const char *needle = "backend is NULL";
    assert_error(scalar_backend_buffer_alloc(&p, NULL, 16), SCALAR_E_INVALID_ARG, needle);
    ck_assert_ptr_null(p);
    assert_error(scalar_backend_upload(NULL, f, f, 4), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_download(NULL, f, f, 4), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_synchronize(NULL), SCALAR_E_INVALID_ARG,
                 "scalar_backend_synchronize: backend is NULL");
    assert_error(scalar_backend_sgemm(NULL, 0, 0, 1, 1, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1),
                 SCALAR_E_INVALID_ARG, "scalar_backend_sgemm: backend is NULL");
    assert_error(scalar_backend_bias_add(NULL, f, f, 1, 1), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_gelu_forward(NULL, f, f, 1), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_gelu_backward(NULL, f, f, f, 1), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_layernorm_forward(NULL, f, f, f, f, f, f, 1, 1, 1e-5f),
                 SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_layernorm_backward(NULL, f, f, f, f, f, f, f, f, 1, 1),
                 SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_softmax_rows(NULL, f, f, 1, 1), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_topk_rows(NULL, f, ix, f, 1, 1, 1), SCALAR_E_INVALID_ARG, needle);
    assert_error(scalar_backend_gather_rows(NULL, f, f, ix, 1, 1, 1), SCALAR_E_INVALID_ARG,
                 "scalar_backend_gather_rows: backend is NULL");
    assert_error(scalar_backend_scatter_add_rows(NULL, f, f, ix, 1, 1, 1), SCALAR_E_INVALID_ARG,
                 needle);
    scalar_backend_buffer_free(NULL, f, 16); /* no-op */
    ck_assert_int_eq(scalar_backend_is_host(NULL), 0);
}
END_TEST

START_TEST(test_negative_sizes_rejected)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[4] = {0};
    int32_t ix[2] = {0};
    const scalar_status E = SCALAR_E_INVALID_ARG;
    assert_error(scalar_backend_sgemm(be, 0, 0, -1, 1, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1), E,
                 "scalar_backend_sgemm: m=-1 is negative");
    assert_error(scalar_backend_sgemm(be, 0, 0, 1, -2, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1), E, "n=-2");
    assert_error(scalar_backend_sgemm(be, 0, 0, 1, 1, -3, 1.0f, f, 1, f, 1, 0.0f, f, 1), E, "k=-3");
    assert_error(scalar_backend_bias_add(be, f, f, -1, 1), E, "n_rows=-1 is negative");
    assert_error(scalar_backend_bias_add(be, f, f, 1, -1), E, "n_cols=-1");
    assert_error(scalar_backend_gelu_forward(be, f, f, -5), E, "n=-5 is negative");
    assert_error(scalar_backend_gelu_backward(be, f, f, f, -5), E, "n=-5");
    assert_error(scalar_backend_layernorm_forward(be, f, f, f, f, f, f, 1, -4, 1e-5f), E, "d=-4");
    assert_error(scalar_backend_layernorm_backward(be, f, f, f, f, f, f, f, f, -1, 4), E,
                 "n_rows=-1");
    assert_error(scalar_backend_softmax_rows(be, f, f, 1, -7), E, "n_cols=-7");
    assert_error(scalar_backend_topk_rows(be, f, ix, f, 1, 2, -1), E, "k=-1 is negative");
    assert_error(scalar_backend_gather_rows(be, f, f, ix, -1, 1, 1), E, "n_idx=-1");
    assert_error(scalar_backend_gather_rows(be, f, f, ix, 1, -1, 1), E, "n_src_rows=-1");
    assert_error(scalar_backend_scatter_add_rows(be, f, f, ix, 1, -2, 1), E, "n_dst_rows=-2");
    assert_error(scalar_backend_scatter_add_rows(be, f, f, ix, 1, 1, -3), E, "d=-3");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_sgemm_short_strides_are_shape_errors)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[64] = {0};
    const scalar_status E = SCALAR_E_SHAPE;
    assert_error(scalar_backend_sgemm(be, 0, 0, 2, 2, 4, 1.0f, f, 3, f, 2, 0.0f, f, 2), E,
                 "scalar_backend_sgemm: lda=3 < k=4 (A not transposed)");
    assert_error(scalar_backend_sgemm(be, 1, 0, 5, 2, 4, 1.0f, f, 4, f, 2, 0.0f, f, 2), E,
                 "lda=4 < m=5 (A transposed)");
    assert_error(scalar_backend_sgemm(be, 0, 0, 2, 6, 4, 1.0f, f, 4, f, 5, 0.0f, f, 6), E,
                 "ldb=5 < n=6 (B not transposed)");
    assert_error(scalar_backend_sgemm(be, 0, 1, 2, 6, 4, 1.0f, f, 4, f, 3, 0.0f, f, 6), E,
                 "ldb=3 < k=4 (B transposed)");
    assert_error(scalar_backend_sgemm(be, 0, 0, 2, 6, 4, 1.0f, f, 4, f, 6, 0.0f, f, 5), E,
                 "ldc=5 < n=6");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_sgemm_bad_transpose_flag)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[4] = {0};
    assert_error(scalar_backend_sgemm(be, 2, 0, 1, 1, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1),
                 SCALAR_E_INVALID_ARG, "trans_a=2 is neither");
    assert_error(scalar_backend_sgemm(be, 0, -1, 1, 1, 1, 1.0f, f, 1, f, 1, 0.0f, f, 1),
                 SCALAR_E_INVALID_ARG, "trans_b=-1");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_null_pointers_with_sizes_rejected)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[16] = {0};
    int32_t ix[4] = {0};
    const scalar_status E = SCALAR_E_INVALID_ARG;
    assert_error(scalar_backend_sgemm(be, 0, 0, 2, 2, 2, 1.0f, NULL, 2, f, 2, 0.0f, f, 2), E,
                 "a is NULL");
    assert_error(scalar_backend_sgemm(be, 0, 0, 2, 2, 2, 1.0f, f, 2, f, 2, 0.0f, NULL, 2), E,
                 "c is NULL");
    assert_error(scalar_backend_bias_add(be, f, NULL, 2, 2), E, "bias is NULL");
    assert_error(scalar_backend_gelu_forward(be, NULL, f, 3), E, "out is NULL");
    assert_error(scalar_backend_gelu_backward(be, f, f, NULL, 3), E, "d_out is NULL");
    assert_error(scalar_backend_layernorm_forward(be, f, NULL, NULL, NULL, NULL, NULL, 2, 2, 0.0f),
                 E, "in is NULL");
    assert_error(scalar_backend_layernorm_backward(be, f, NULL, NULL, f, f, NULL, f, NULL, 2, 2),
                 E, "rstd is NULL");
    assert_error(scalar_backend_softmax_rows(be, NULL, f, 2, 2), E, "out is NULL");
    assert_error(scalar_backend_topk_rows(be, f, NULL, f, 2, 2, 1), E, "out_indices is NULL");
    assert_error(scalar_backend_gather_rows(be, f, f, NULL, 2, 2, 2), E, "idx is NULL");
    assert_error(scalar_backend_scatter_add_rows(be, f, NULL, ix, 2, 2, 2), E, "src is NULL");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_out_of_range_indices_rejected)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    for (int i = 0; i < 2; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float table[3 * 2] = {1, 2, 3, 4, 5, 6}, rows[3 * 2] = {0};
        const int32_t too_big[3] = {0, 3, 1}, negative[3] = {2, 1, -1};
        const scalar_status E = SCALAR_E_INVALID_ARG;
        assert_error(scalar_backend_gather_rows(be, rows, table, too_big, 3, 3, 2), E,
                     "scalar_backend_gather_rows: idx[1]=3 out of range [0, n_src_rows=3)");
        assert_error(scalar_backend_gather_rows(be, rows, table, negative, 3, 3, 2), E,
                     "idx[2]=-1 out of range");
        assert_error(scalar_backend_scatter_add_rows(be, table, rows, too_big, 3, 2, 2), E,
                     "idx[1]=3 out of range [0, n_dst_rows=2)");
        assert_error(scalar_backend_scatter_add_rows(be, table, rows, negative, 3, 3, 2), E,
                     "idx[2]=-1");
        ck_assert(table[0] == 1.0f && table[5] == 6.0f && rows[0] == 0.0f); /* untouched */
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_topk_k_and_width_limits)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[4] = {0}, v[8];
    int32_t ix[8];
    assert_error(scalar_backend_topk_rows(be, v, ix, f, 1, 4, 5), SCALAR_E_INVALID_ARG,
                 "scalar_backend_topk_rows: k=5 > n_cols=4");
    assert_error(scalar_backend_topk_rows(be, v, ix, f, 1, (int64_t)INT32_MAX + 1, 1),
                 SCALAR_E_INVALID_ARG, "n_cols=2147483648 > INT32_MAX");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_layernorm_eps_and_width_checked)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[8] = {0};
    const scalar_status E = SCALAR_E_INVALID_ARG;
    assert_error(scalar_backend_layernorm_forward(be, f, NULL, NULL, f, NULL, NULL, 2, 4, -1.0f),
                 E, "eps=-1 must be finite and >= 0");
    assert_error(scalar_backend_layernorm_forward(be, f, NULL, NULL, f, NULL, NULL, 2, 4, NAN), E,
                 "eps=nan");
    assert_error(scalar_backend_layernorm_forward(be, f, NULL, NULL, f, NULL, NULL, 2, 4,
                                                  INFINITY), E, "eps=inf");
    assert_error(scalar_backend_layernorm_forward(be, f, NULL, NULL, f, NULL, NULL, 2, 0, 1e-5f),
                 E, "d=0 with n_rows=2");
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_sizes_beyond_address_space_rejected)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float f[4] = {0};
    assert_error(scalar_backend_gelu_forward(be, f, f, INT64_MAX), SCALAR_E_INVALID_ARG,
                 "exceeds the address space");
    assert_error(scalar_backend_softmax_rows(be, f, f, INT64_MAX / 2, 4), SCALAR_E_INVALID_ARG,
                 "exceeds the address space");
    assert_error(scalar_backend_sgemm(be, 0, 0, INT64_MAX / 4, 2, 2, 1.0f, f, 2, f, 2, 0.0f, f,
                                      INT64_MAX / 8), SCALAR_E_INVALID_ARG, "A of");
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- buffers ---- */

START_TEST(test_buffer_round_trip)
{
    static const char *const names[] = {"cpu", "cpu-ref", "test-lite"};
    bt_register_test_backends();
    unsigned char pattern[1000], back[1000];
    for (int i = 0; i < 1000; i++)
        pattern[i] = (unsigned char)(i * 37 + 11);
    for (int i = 0; i < 3; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        void *buf = NULL;
        ck_assert_int_eq(scalar_backend_buffer_alloc(&buf, be, sizeof pattern), SCALAR_OK);
        ck_assert_ptr_nonnull(buf);
        ck_assert_int_eq((uintptr_t)buf % 64, 0);
        ck_assert_int_eq(scalar_backend_upload(be, buf, pattern, sizeof pattern), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_synchronize(be), SCALAR_OK);
        memset(back, 0, sizeof back);
        ck_assert_int_eq(scalar_backend_download(be, back, buf, sizeof back), SCALAR_OK);
        ck_assert(memcmp(pattern, back, sizeof back) == 0);
        scalar_backend_buffer_free(be, buf, sizeof pattern);
        scalar_backend_buffer_free(be, NULL, 0); /* no-op */
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_buffer_arguments_checked)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    void *buf = &buf;
    char c[4] = {0};
    assert_error(scalar_backend_buffer_alloc(&buf, be, 0), SCALAR_E_INVALID_ARG, "size is 0");
    ck_assert_ptr_null(buf);
    assert_error(scalar_backend_buffer_alloc(NULL, be, 16), SCALAR_E_INVALID_ARG, "out is NULL");
    assert_error(scalar_backend_upload(be, NULL, c, 4), SCALAR_E_INVALID_ARG,
                 "scalar_backend_upload: dst is NULL");
    assert_error(scalar_backend_download(be, c, NULL, 4), SCALAR_E_INVALID_ARG,
                 "scalar_backend_download: src is NULL");
    ck_assert_int_eq(scalar_backend_upload(be, NULL, NULL, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_download(be, NULL, NULL, 0), SCALAR_OK);
    scalar_ctx_free(ctx);
}
END_TEST

typedef struct counting_alloc {
    int live;
    size_t bytes;
} counting_alloc;

static void *count_alloc(void *user, size_t size, size_t alignment)
{
    counting_alloc *ca = user;
    ca->live++;
    ca->bytes += size;
    return aligned_alloc(alignment, size);
}

static void count_free(void *user, void *ptr, size_t size)
{
    counting_alloc *ca = user;
    ca->live--;
    ca->bytes -= size;
    free(ptr);
}

START_TEST(test_buffers_come_from_context_allocator)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    for (int i = 0; i < 2; i++) {
        counting_alloc ca = {0, 0};
        scalar_allocator al;
        ck_assert_int_eq(scalar_allocator_init(&al, sizeof al), SCALAR_OK);
        al.user = &ca;
        al.alloc = count_alloc;
        al.free = count_free;
        scalar_ctx_options o;
        scalar_ctx_options_init(&o, sizeof o);
        o.backend = names[i];
        o.allocator = &al;
        scalar_ctx *ctx = NULL;
        ck_assert_int_eq(scalar_ctx_create(&ctx, &o), SCALAR_OK);
        int live = ca.live;
        size_t bytes = ca.bytes;
        void *buf = NULL;
        ck_assert_int_eq(scalar_backend_buffer_alloc(&buf, scalar_ctx_backend(ctx), 1000),
                         SCALAR_OK);
        ck_assert_int_eq(ca.live, live + 1);
        ck_assert_uint_ge(ca.bytes - bytes, 1000);
        scalar_backend_buffer_free(scalar_ctx_backend(ctx), buf, 1000);
        ck_assert_int_eq(ca.live, live);
        scalar_ctx_free(ctx);
        ck_assert_int_eq(ca.live, 0);
        ck_assert_uint_eq(ca.bytes, 0);
    }
}
END_TEST

Suite *scalar_backend_suite(void)
{
    Suite *s = suite_create("backend");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_register_rejects_wrong_abi_version);
    tcase_add_test(tc, test_register_rejects_small_struct);
    tcase_add_test(tc, test_register_rejects_bad_names);
    tcase_add_test(tc, test_register_rejects_duplicate_name);
    tcase_add_test(tc, test_register_rejects_missing_mandatory_slot);
    tcase_add_test(tc, test_register_v1_size_table_runs_new_ops_on_cpu_ref);
    tcase_add_test(tc, test_backend_without_kernels_falls_back_to_cpu_ref);
    tcase_add_test(tc, test_unsupported_call_retries_on_cpu_ref);
    tcase_add_test(tc, test_device_backend_without_kernel_is_unsupported);
    tcase_add_test(tc, test_builtin_backends_support_every_op);
    tcase_add_test(tc, test_describe_names_blis_and_threads);
    suite_add_tcase(s, tc);
    tc = tcase_create("validation");
    tcase_add_test(tc, test_null_backend_rejected_everywhere);
    tcase_add_test(tc, test_negative_sizes_rejected);
    tcase_add_test(tc, test_sgemm_short_strides_are_shape_errors);
    tcase_add_test(tc, test_sgemm_bad_transpose_flag);
    tcase_add_test(tc, test_null_pointers_with_sizes_rejected);
    tcase_add_test(tc, test_out_of_range_indices_rejected);
    tcase_add_test(tc, test_topk_k_and_width_limits);
    tcase_add_test(tc, test_layernorm_eps_and_width_checked);
    tcase_add_test(tc, test_sizes_beyond_address_space_rejected);
    suite_add_tcase(s, tc);
    tc = tcase_create("buffers");
    tcase_add_test(tc, test_buffer_round_trip);
    tcase_add_test(tc, test_buffer_arguments_checked);
    tcase_add_test(tc, test_buffers_come_from_context_allocator);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, bt_conformance_tcase());
    suite_add_tcase(s, bt_gradient_tcase());
    suite_add_tcase(s, bt_known_values_tcase());
    suite_add_tcase(s, bt_threads_tcase());
    suite_add_tcase(s, bt_model_validation_tcase());
    suite_add_tcase(s, bt_model_conformance_tcase());
    suite_add_tcase(s, bt_model_gradient_tcase());
    suite_add_tcase(s, bt_model_known_values_tcase());
    suite_add_tcase(s, bt_model_threads_tcase());
    suite_add_tcase(s, bt_sparse_tcase());
    return s;
}
