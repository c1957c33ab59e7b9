/*
 * check_backend_kernels.c - every registered backend against cpu-ref
 * (conformance), backward kernels against finite differences, known values,
 * and bit-identical results of the cpu backend on 1 and 2 threads.
 *
 * Conformance thresholds (NMSE = sum((x - ref)^2) / sum(ref^2), ggml style):
 *   sgemm                      NMSE <= 1e-12 * max(k, 1): float accumulation
 *                              against cpu-ref's double grows like k * eps^2
 *                              (eps^2 ~ 3.6e-15), so this leaves ~300x room
 *   gelu, layernorm, softmax   NMSE <= 1e-10 (a few float ulps per element)
 *   bias_add, topk, gather,
 *   scatter_add                bit-exact (copies and ordered float adds)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend/cpu/cpu.h" /* the sgemm microkernels, tested directly */
#include "check_backend.h"
#include "suites.h"

#define NMSE_ELEMENTWISE 1e-10
#define NMSE_GEMM_PER_K 1e-12

/* Run `fn` for every registered host backend but cpu-ref, on 2 threads,
 * against a cpu-ref context.  The cases pass host pointers; a device backend
 * will be run through upload/download when one exists (the CUDA backend). */
void bt_for_each_backend(bt_conf_fn fn)
{
    bt_register_test_backends();
    scalar_ctx *ref_ctx = bt_ctx("cpu-ref", 1);
    int n_tested = 0;
    for (size_t i = 0; i < scalar_backend_count(); i++) {
        const char *name = scalar_backend_name(i);
        if (strcmp(name, "cpu-ref") == 0)
            continue;
        scalar_ctx *ctx = bt_ctx(name, 2);
        if (!scalar_backend_is_host(scalar_ctx_backend(ctx))) {
            scalar_ctx_free(ctx);
            continue;
        }
        scalar__rng rng;
        scalar__rng_init(&rng, 20240607u, i);
        fn(scalar_ctx_backend(ctx), scalar_ctx_backend(ref_ctx), name, &rng);
        scalar_ctx_free(ctx);
        n_tested++;
    }
    ck_assert_int_ge(n_tested, 3); /* cpu, test-lite, test-unsup at least */
    scalar_ctx_free(ref_ctx);
}

static int64_t pick(scalar__rng *rng, const int64_t *list, size_t n)
{
    return list[scalar__rng_below(rng, n)];
}
#define PICK(rng, list) pick(rng, list, sizeof(list) / sizeof(list[0]))

static void assert_nmse(double nmse, double limit, const char *what, const char *name)
{
    ck_assert_msg(nmse <= limit, "%s on %s: NMSE %.3g > %.3g", what, name, nmse, limit);
}

/* ---- sgemm ---- */

typedef struct gemm_case {
    int32_t ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    float alpha, beta;
} gemm_case;

/* GEMM operands are allocated to their exact size, so valgrind reports any
 * read past them (Debian's BLIS 0.9.0 sup kernels did that; see cpu.c). */

static void check_gemm_case(scalar_backend *be, scalar_backend *ref, const char *name,
                            const gemm_case *g, scalar__rng *rng)
{
    int64_t a_rows = g->ta ? g->k : g->m, b_rows = g->tb ? g->n : g->k;
    float *a = bt_floats(a_rows * g->lda);
    float *b = bt_floats(b_rows * g->ldb);
    float *c = bt_floats(g->m * g->ldc), *c_ref = bt_floats(g->m * g->ldc);
    bt_fill_normal(a, a_rows * g->lda, rng, 1.0f, 0.0f);
    bt_fill_normal(b, b_rows * g->ldb, rng, 1.0f, 0.0f);
    bt_fill_normal(c, g->m * g->ldc, rng, 1.0f, 0.0f);
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->ldc; j++)
            if (j >= g->n)
                c[i * g->ldc + j] = 777.0f; /* padding: must survive */
            else if (g->beta == 0.0f)
                c[i * g->ldc + j] = NAN; /* beta == 0: must not be read */
    memcpy(c_ref, c, (size_t)(g->m * g->ldc) * sizeof(float));
    ck_assert_int_eq(scalar_backend_sgemm(be, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a, g->lda,
                                          b, g->ldb, g->beta, c, g->ldc), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sgemm(ref, g->ta, g->tb, g->m, g->n, g->k, g->alpha, a,
                                          g->lda, b, g->ldb, g->beta, c_ref, g->ldc), SCALAR_OK);
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->ldc; j++) {
            float x = c[i * g->ldc + j], r = c_ref[i * g->ldc + j];
            if (j >= g->n) {
                ck_assert_msg(x == 777.0f, "%s sgemm wrote C's padding", name);
                continue;
            }
            ck_assert_msg(isfinite(x), "%s sgemm: C[%lld,%lld] = %g", name, (long long)i,
                          (long long)j, (double)x);
            err += ((double)x - r) * ((double)x - r);
            norm += (double)r * r;
        }
    double nmse = norm > 0.0 ? err / norm : err, limit = NMSE_GEMM_PER_K * (g->k > 1 ? g->k : 1);
    ck_assert_msg(nmse <= limit,
                  "%s sgemm ta=%d tb=%d m=%lld n=%lld k=%lld lda=%lld ldb=%lld ldc=%lld "
                  "alpha=%g beta=%g: NMSE %.3g > %.3g", name, g->ta, g->tb, (long long)g->m,
                  (long long)g->n, (long long)g->k, (long long)g->lda, (long long)g->ldb,
                  (long long)g->ldc, (double)g->alpha, (double)g->beta, nmse, limit);
    free(a);
    free(b);
    free(c);
    free(c_ref);
}

static int64_t gemm_pad(scalar__rng *rng)
{
    static const int64_t pads[] = {0, 0, 1, 3, 16};
    return PICK(rng, pads);
}

static void conf_sgemm(scalar_backend *be, scalar_backend *ref, const char *name,
                       scalar__rng *rng)
{
    static const int64_t dims[] = {1, 2, 3, 17, 31, 63, 64, 65, 127};
    static const float alphas[] = {1.0f, -0.75f, 2.0f};
    static const float betas[] = {0.0f, 1.0f, -0.5f};
    for (int32_t ta = 0; ta < 2; ta++)
        for (int32_t tb = 0; tb < 2; tb++)
            for (int trial = 0; trial < 15; trial++) {
                gemm_case g = {.ta = ta, .tb = tb, .m = PICK(rng, dims), .n = PICK(rng, dims),
                               .k = PICK(rng, dims), .alpha = alphas[trial % 3],
                               .beta = betas[(trial / 3) % 3]};
                if (trial == 3)
                    g.m = 0;
                if (trial == 4)
                    g.n = 0;
                if (trial == 5 || trial == 6) {
                    g.k = 0; /* C = beta * C, with NaN in C when beta is 0 */
                    g.beta = trial == 5 ? 0.0f : -0.5f;
                }
                g.lda = (ta ? g.m : g.k) + gemm_pad(rng);
                g.ldb = (tb ? g.k : g.n) + gemm_pad(rng);
                g.ldc = g.n + gemm_pad(rng);
                check_gemm_case(be, ref, name, &g, rng);
            }
    /* one GPT-2-like shape with a padded stride (DESIGN: N + 16) */
    gemm_case big = {.ta = 0, .tb = 1, .m = 96, .n = 256, .k = 300, .lda = 300,
                     .ldb = 316, .ldc = 272, .alpha = 1.0f, .beta = 0.0f};
    check_gemm_case(be, ref, name, &big, rng);
}

START_TEST(test_conformance_sgemm)
{
    bt_for_each_backend(conf_sgemm);
}
END_TEST

/* Shapes where Debian's BLIS 0.9.0 reads past A, B or C: one float past B,
 * A and C in the first four, most of a row past A in the last. */
typedef struct overread_case {
    int32_t ta, tb;
    int64_t m, n, k;
    int operand; /* 0: A, 1: B, 2: C ends at the protected page */
} overread_case;

/* Run one case with the chosen operand ending exactly where `page_end`, a
 * PROT_NONE page, begins; compare with cpu-ref on ordinary memory. */
static void run_overread_case(scalar_backend *be, scalar_backend *ref, const overread_case *oc,
                              unsigned char *page_end, float beta)
{
    int64_t n_el[3] = {oc->m * oc->k, oc->k * oc->n, oc->m * oc->n};
    float *buf[3], *c_ref = bt_floats(n_el[2]);
    scalar__rng rng;
    scalar__rng_init(&rng, 17, (uint64_t)oc->operand);
    for (int i = 0; i < 3; i++) {
        buf[i] = i == oc->operand ? (float *)(void *)(page_end - n_el[i] * (int64_t)sizeof(float))
                                  : bt_floats(n_el[i]);
        bt_fill_normal(buf[i], n_el[i], &rng, 1.0f, 0.0f);
    }
    memcpy(c_ref, buf[2], (size_t)n_el[2] * sizeof(float));
    int64_t lda = oc->ta ? oc->m : oc->k, ldb = oc->tb ? oc->k : oc->n;
    ck_assert_int_eq(scalar_backend_sgemm(be, oc->ta, oc->tb, oc->m, oc->n, oc->k, 1.0f, buf[0],
                                          lda, buf[1], ldb, beta, buf[2], oc->n), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sgemm(ref, oc->ta, oc->tb, oc->m, oc->n, oc->k, 1.0f, buf[0],
                                          lda, buf[1], ldb, beta, c_ref, oc->n), SCALAR_OK);
    assert_nmse(bt_nmse(buf[2], c_ref, n_el[2]), NMSE_GEMM_PER_K * (double)oc->k,
                "sgemm next to a protected page", "cpu");
    for (int i = 0; i < 3; i++)
        if (i != oc->operand)
            free(buf[i]);
    free(c_ref);
}

START_TEST(test_sgemm_operand_ending_at_protected_page)
{
    static const overread_case cases[] = {
        {0, 0, 17, 1, 2, 1}, {0, 1, 1, 17, 2, 0}, {1, 0, 65, 2, 63, 2}, {0, 0, 3, 63, 65, 2},
        {0, 1, 1, 63, 65, 0},
    };
    long page = sysconf(_SC_PAGESIZE);
    void *mem = NULL;
    ck_assert_int_eq(posix_memalign(&mem, (size_t)page, 2 * (size_t)page), 0);
    unsigned char *guard = (unsigned char *)mem + page;
    ck_assert_int_eq(mprotect(guard, (size_t)page, PROT_NONE), 0);
    scalar_ctx *ctx = bt_ctx("cpu", 1), *ref_ctx = bt_ctx("cpu-ref", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_overread_case(scalar_ctx_backend(ctx), scalar_ctx_backend(ref_ctx), &cases[i], guard,
                          0.0f);
        run_overread_case(scalar_ctx_backend(ctx), scalar_ctx_backend(ref_ctx), &cases[i], guard,
                          1.0f);
    }
    ck_assert_int_eq(mprotect(guard, (size_t)page, PROT_READ | PROT_WRITE), 0);
    free(mem);
    scalar_ctx_free(ctx);
    scalar_ctx_free(ref_ctx);
}
END_TEST

/* ---- bias, GELU ---- */

static void conf_bias_gelu(scalar_backend *be, scalar_backend *ref, const char *name,
                           scalar__rng *rng)
{
    static const int64_t rows[] = {1, 3, 17, 65}, cols[] = {1, 3, 17, 63, 65, 127, 300};
    static const int64_t lens[] = {1, 3, 7, 17, 63, 65, 127, 4096, 5003};
    for (int trial = 0; trial < 10; trial++) {
        int64_t r = PICK(rng, rows), c = PICK(rng, cols);
        float *x = bt_floats(r * c), *x_ref = bt_floats(r * c), *bias = bt_floats(c);
        bt_fill_normal(x, r * c, rng, 1.0f, 0.0f);
        bt_fill_normal(bias, c, rng, 1.0f, 0.0f);
        memcpy(x_ref, x, (size_t)(r * c) * sizeof(float));
        ck_assert_int_eq(scalar_backend_bias_add(be, x, bias, r, c), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_bias_add(ref, x_ref, bias, r, c), SCALAR_OK);
        ck_assert_msg(memcmp(x, x_ref, (size_t)(r * c) * sizeof(float)) == 0,
                      "%s bias_add %lldx%lld differs from cpu-ref", name, (long long)r,
                      (long long)c);
        free(x);
        free(x_ref);
        free(bias);
    }
    for (int trial = 0; trial < 10; trial++) {
        int64_t n = PICK(rng, lens);
        float *in = bt_floats(n), *out = bt_floats(n), *out_ref = bt_floats(n);
        float *d_out = bt_floats(n), *d_in = bt_floats(n), *d_in_ref = bt_floats(n);
        bt_fill_normal(in, n, rng, 3.0f, 0.0f);
        if (n > 6) { /* tails: saturation on both sides, and zero */
            in[0] = -12.0f, in[1] = 12.0f, in[2] = 0.0f, in[3] = -30.0f, in[4] = 40.0f;
        }
        bt_fill_normal(d_out, n, rng, 1.0f, 0.0f);
        bt_fill_normal(d_in, n, rng, 1.0f, 0.0f);
        memcpy(d_in_ref, d_in, (size_t)n * sizeof(float));
        ck_assert_int_eq(scalar_backend_gelu_forward(be, out, in, n), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_gelu_forward(ref, out_ref, in, n), SCALAR_OK);
        assert_nmse(bt_nmse(out, out_ref, n), NMSE_ELEMENTWISE, "gelu_forward", name);
        ck_assert_int_eq(scalar_backend_gelu_backward(be, d_in, in, d_out, n), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_gelu_backward(ref, d_in_ref, in, d_out, n), SCALAR_OK);
        assert_nmse(bt_nmse(d_in, d_in_ref, n), NMSE_ELEMENTWISE, "gelu_backward", name);
        /* in place gives the same bits as out of place */
        ck_assert_int_eq(scalar_backend_gelu_forward(be, in, in, n), SCALAR_OK);
        ck_assert_msg(memcmp(in, out, (size_t)n * sizeof(float)) == 0, "%s gelu in place", name);
        free(in);
        free(out);
        free(out_ref);
        free(d_out);
        free(d_in);
        free(d_in_ref);
    }
}

START_TEST(test_conformance_bias_gelu)
{
    bt_for_each_backend(conf_bias_gelu);
}
END_TEST

/* ---- LayerNorm ---- */

/* Increments x - x0 against ref - x0, so the random starting values of an
 * accumulated gradient do not dilute the comparison. */
static double nmse_increment(const float *x, const float *ref, const float *x0, int64_t n)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double dx = (double)x[i] - x0[i], dr = (double)ref[i] - x0[i];
        err += (dx - dr) * (dx - dr);
        norm += dr * dr;
    }
    return norm > 0.0 ? err / norm : err;
}

static void conf_layernorm_backward(scalar_backend *be, scalar_backend *ref, const char *name,
                                    scalar__rng *rng, const float *in, const float *w,
                                    const float *mean, const float *rstd, int64_t r, int64_t d,
                                    int variant)
{
    float *d_out = bt_floats(r * d), *g0 = bt_floats(r * d + 2 * d);
    float *g = bt_floats(r * d + 2 * d), *g_ref = bt_floats(r * d + 2 * d);
    bt_fill_normal(d_out, r * d, rng, 1.0f, 0.0f);
    bt_fill_normal(g0, r * d + 2 * d, rng, 0.5f, 0.0f);
    memcpy(g, g0, (size_t)(r * d + 2 * d) * sizeof(float));
    memcpy(g_ref, g0, (size_t)(r * d + 2 * d) * sizeof(float));
    /* variant bits: 1 skips d_in, 2 skips d_weight, 4 skips d_bias */
    float *dx = variant & 1 ? NULL : g, *dw = variant & 2 ? NULL : g + r * d;
    float *db = variant & 4 ? NULL : g + r * d + d;
    ck_assert_int_eq(scalar_backend_layernorm_backward(be, dx, dw, db, d_out, in, w, mean, rstd, r,
                                                       d), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_layernorm_backward(ref, dx ? g_ref : NULL,
                                                       dw ? g_ref + r * d : NULL,
                                                       db ? g_ref + r * d + d : NULL, d_out, in,
                                                       w, mean, rstd, r, d), SCALAR_OK);
    assert_nmse(nmse_increment(g, g_ref, g0, r * d), NMSE_ELEMENTWISE, "layernorm d_in", name);
    assert_nmse(nmse_increment(g + r * d, g_ref + r * d, g0 + r * d, d), NMSE_ELEMENTWISE,
                "layernorm d_weight", name);
    assert_nmse(nmse_increment(g + r * d + d, g_ref + r * d + d, g0 + r * d + d, d),
                NMSE_ELEMENTWISE, "layernorm d_bias", name);
    free(d_out);
    free(g0);
    free(g);
    free(g_ref);
}

static void conf_layernorm(scalar_backend *be, scalar_backend *ref, const char *name,
                           scalar__rng *rng)
{
    static const int64_t rows[] = {1, 3, 17, 40}, dims[] = {1, 3, 17, 63, 64, 65, 127, 768};
    for (int trial = 0; trial < 16; trial++) {
        int64_t r = PICK(rng, rows), d = PICK(rng, dims);
        float eps = trial % 2 ? 1e-5f : 1e-3f;
        float *in = bt_floats(r * d), *w = bt_floats(d), *b = bt_floats(d);
        float *out = bt_floats(r * d), *out_ref = bt_floats(r * d);
        float *stats = bt_floats(2 * r), *stats_ref = bt_floats(2 * r);
        bt_fill_normal(in, r * d, rng, 2.0f, 0.3f);
        bt_fill_normal(w, d, rng, 0.2f, 1.0f);
        bt_fill_normal(b, d, rng, 0.5f, 0.0f);
        const float *wp = trial % 4 < 2 ? w : NULL;
        const float *bp = trial % 4 == 1 || trial % 4 == 2 ? b : NULL;
        ck_assert_int_eq(scalar_backend_layernorm_forward(be, out, stats, stats + r, in, wp, bp, r,
                                                          d, eps), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_layernorm_forward(ref, out_ref, stats_ref, stats_ref + r,
                                                          in, wp, bp, r, d, eps), SCALAR_OK);
        assert_nmse(bt_nmse(out, out_ref, r * d), NMSE_ELEMENTWISE, "layernorm_forward", name);
        assert_nmse(bt_nmse(stats, stats_ref, r), NMSE_ELEMENTWISE, "layernorm mean", name);
        assert_nmse(bt_nmse(stats + r, stats_ref + r, r), NMSE_ELEMENTWISE, "layernorm rstd",
                    name);
        /* in place, without statistics: the same bits as out of place */
        ck_assert_int_eq(scalar_backend_layernorm_forward(be, in, NULL, NULL, in, wp, bp, r, d,
                                                          eps), SCALAR_OK);
        ck_assert_msg(memcmp(in, out, (size_t)(r * d) * sizeof(float)) == 0,
                      "%s layernorm in place", name);
        bt_fill_normal(in, r * d, rng, 2.0f, 0.3f);
        ck_assert_int_eq(scalar_backend_layernorm_forward(ref, out_ref, stats_ref, stats_ref + r,
                                                          in, wp, bp, r, d, eps), SCALAR_OK);
        conf_layernorm_backward(be, ref, name, rng, in, wp, stats_ref, stats_ref + r, r, d,
                                trial % 8);
        free(in);
        free(w);
        free(b);
        free(out);
        free(out_ref);
        free(stats);
        free(stats_ref);
    }
}

START_TEST(test_conformance_layernorm)
{
    bt_for_each_backend(conf_layernorm);
}
END_TEST

/* ---- softmax ---- */

static void conf_softmax(scalar_backend *be, scalar_backend *ref, const char *name,
                         scalar__rng *rng)
{
    static const int64_t rows[] = {1, 3, 17, 64}, cols[] = {1, 2, 3, 17, 63, 65, 127, 1000};
    for (int trial = 0; trial < 14; trial++) {
        int64_t r = PICK(rng, rows), c = PICK(rng, cols);
        float *in = bt_floats(r * c), *out = bt_floats(r * c), *out_ref = bt_floats(r * c);
        bt_fill_normal(in, r * c, rng, 4.0f, 0.0f);
        for (int64_t i = 0; i < r * c; i++) /* causal-mask style -inf entries */
            if (trial % 2 && scalar__rng_below(rng, 3) == 0)
                in[i] = -INFINITY;
        if (trial % 3 == 0)
            for (int64_t j = 0; j < c; j++)
                in[j] = -INFINITY; /* a fully masked row: zeros */
        ck_assert_int_eq(scalar_backend_softmax_rows(be, out, in, r, c), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_softmax_rows(ref, out_ref, in, r, c), SCALAR_OK);
        assert_nmse(bt_nmse(out, out_ref, r * c), NMSE_ELEMENTWISE, "softmax_rows", name);
        ck_assert_int_eq(scalar_backend_softmax_rows(be, in, in, r, c), SCALAR_OK);
        ck_assert_msg(memcmp(in, out, (size_t)(r * c) * sizeof(float)) == 0,
                      "%s softmax in place", name);
        free(in);
        free(out);
        free(out_ref);
    }
}

START_TEST(test_conformance_softmax)
{
    bt_for_each_backend(conf_softmax);
}
END_TEST

/* ---- top-k ---- */

/* Values with many ties (halves), NaN, +-inf and both zeros. */
static void fill_topk_input(float *x, int64_t n, scalar__rng *rng)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t kind = scalar__rng_below(rng, 40);
        if (kind == 0)
            x[i] = NAN;
        else if (kind == 1)
            x[i] = -INFINITY;
        else if (kind == 2)
            x[i] = INFINITY;
        else if (kind == 3)
            x[i] = -0.0f;
        else if (kind == 4)
            x[i] = 0.0f;
        else
            x[i] = floorf(scalar__rng_normal(rng) * 4.0f) / 2.0f;
    }
}

static void conf_topk(scalar_backend *be, scalar_backend *ref, const char *name,
                      scalar__rng *rng)
{
    static const int64_t rows[] = {1, 5, 33}, cols[] = {1, 3, 17, 63, 64, 65, 127, 130, 500};
    for (int trial = 0; trial < 24; trial++) {
        int64_t r = PICK(rng, rows), c = trial == 0 ? 2000 : PICK(rng, cols);
        int64_t ks[] = {1, 2, c < 17 ? c : 17, c, c > 1 ? c - 1 : 1};
        int64_t k = trial == 0 ? 32 : PICK(rng, ks);
        k = k < c ? k : c;
        float *in = bt_floats(r * c), *v = bt_floats(r * k), *v_ref = bt_floats(r * k);
        int32_t *ix = bt_ints(r * k), *ix_ref = bt_ints(r * k);
        if (trial % 4 == 3) {
            bt_fill_normal(in, r * c, rng, 1.0f, 0.0f); /* no ties: the block-skipping path */
        } else if (trial % 4 == 1) {
            /* ties but no NaN: the chunk-maxima floor is active, and entries equal to
             * it (or to the k-th value) must still be taken in index order */
            bt_fill_normal(in, r * c, rng, 1.0f, 0.0f);
            for (int64_t i = 0; i < r * c; i++)
                in[i] = i % 3 ? floorf(in[i] * 2.0f) / 2.0f : fmaxf(in[i], 0.0f) * 0.0f;
        } else {
            fill_topk_input(in, r * c, rng);
        }
        ck_assert_int_eq(scalar_backend_topk_rows(be, v, ix, in, r, c, k), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_topk_rows(ref, v_ref, ix_ref, in, r, c, k), SCALAR_OK);
        ck_assert_msg(memcmp(ix, ix_ref, (size_t)(r * k) * sizeof(int32_t)) == 0,
                      "%s topk %lldx%lld k=%lld: indices differ from cpu-ref", name,
                      (long long)r, (long long)c, (long long)k);
        ck_assert_msg(memcmp(v, v_ref, (size_t)(r * k) * sizeof(float)) == 0,
                      "%s topk: values differ from cpu-ref", name);
        free(in);
        free(v);
        free(v_ref);
        free(ix);
        free(ix_ref);
    }
}

START_TEST(test_conformance_topk)
{
    bt_for_each_backend(conf_topk);
}
END_TEST

/* ---- gather / scatter-add ---- */

static void conf_gather_scatter(scalar_backend *be, scalar_backend *ref, const char *name,
                                scalar__rng *rng)
{
    static const int64_t n_rows[] = {1, 5, 64}, n_idxs[] = {1, 17, 200}, ds[] = {1, 17, 64, 65,
                                                                                300};
    for (int trial = 0; trial < 16; trial++) {
        int64_t nr = PICK(rng, n_rows), ni = PICK(rng, n_idxs), d = PICK(rng, ds);
        float *table = bt_floats(nr * d), *table_ref = bt_floats(nr * d);
        float *rows = bt_floats(ni * d), *rows_ref = bt_floats(ni * d);
        int32_t *idx = bt_ints(ni);
        for (int64_t i = 0; i < ni; i++) /* repeats whenever ni > nr */
            idx[i] = (int32_t)scalar__rng_below(rng, (uint64_t)nr);
        bt_fill_normal(table, nr * d, rng, 1.0f, 0.0f);
        ck_assert_int_eq(scalar_backend_gather_rows(be, rows, table, idx, ni, nr, d), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_gather_rows(ref, rows_ref, table, idx, ni, nr, d),
                         SCALAR_OK);
        ck_assert_msg(memcmp(rows, rows_ref, (size_t)(ni * d) * sizeof(float)) == 0,
                      "%s gather_rows differs", name);
        bt_fill_normal(rows, ni * d, rng, 1.0f, 0.0f);
        memcpy(table_ref, table, (size_t)(nr * d) * sizeof(float));
        ck_assert_int_eq(scalar_backend_scatter_add_rows(be, table, rows, idx, ni, nr, d),
                         SCALAR_OK);
        ck_assert_int_eq(scalar_backend_scatter_add_rows(ref, table_ref, rows, idx, ni, nr, d),
                         SCALAR_OK);
        ck_assert_msg(memcmp(table, table_ref, (size_t)(nr * d) * sizeof(float)) == 0,
                      "%s scatter_add_rows %lld rows into %lld, d=%lld differs", name,
                      (long long)ni, (long long)nr, (long long)d);
        free(table);
        free(table_ref);
        free(rows);
        free(rows_ref);
        free(idx);
    }
}

START_TEST(test_conformance_gather_scatter)
{
    bt_for_each_backend(conf_gather_scatter);
}
END_TEST

/* ---- zero sizes: valid no-ops on every backend, NULL pointers included ---- */

static void conf_zero_sizes(scalar_backend *be, scalar_backend *ref, const char *name,
                            scalar__rng *rng)
{
    (void)ref;
    (void)rng;
    float c[6] = {1, 2, 3, 4, 5, 6};
    ck_assert_int_eq(scalar_backend_sgemm(be, 0, 0, 0, 3, 4, 1.0f, NULL, 4, NULL, 3, 0.0f, NULL,
                                          3), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sgemm(be, 0, 1, 2, 0, 4, 1.0f, NULL, 4, NULL, 4, 0.0f, NULL,
                                          0), SCALAR_OK);
    /* k = 0: C = beta * C, and A, B may be NULL */
    ck_assert_int_eq(scalar_backend_sgemm(be, 1, 1, 2, 3, 0, 1.0f, NULL, 2, NULL, 0, 2.0f, c, 3),
                     SCALAR_OK);
    ck_assert_msg(c[0] == 2.0f && c[5] == 12.0f, "%s sgemm k=0 must scale C by beta", name);
    c[0] = c[4] = NAN; /* beta = 0: C is written, never read */
    ck_assert_int_eq(scalar_backend_sgemm(be, 0, 0, 2, 3, 0, 1.0f, NULL, 0, NULL, 3, 0.0f, c, 3),
                     SCALAR_OK);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(c[i] == 0.0f, "%s sgemm k=0 beta=0: C[%d] = %g", name, i, (double)c[i]);
    ck_assert_int_eq(scalar_backend_bias_add(be, NULL, NULL, 0, 5), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_bias_add(be, NULL, NULL, 5, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gelu_forward(be, NULL, NULL, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gelu_backward(be, NULL, NULL, NULL, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_layernorm_forward(be, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                                                      8, 1e-5f), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_layernorm_backward(be, NULL, NULL, NULL, NULL, NULL, NULL,
                                                       NULL, NULL, 0, 8), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_softmax_rows(be, NULL, NULL, 0, 4), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_softmax_rows(be, NULL, NULL, 4, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_topk_rows(be, NULL, NULL, NULL, 0, 10, 3), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_topk_rows(be, NULL, NULL, c, 2, 3, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_topk_rows(be, NULL, NULL, NULL, 3, 0, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gather_rows(be, NULL, NULL, NULL, 0, 4, 8), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gather_rows(be, NULL, NULL, NULL, 3, 0, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_scatter_add_rows(be, NULL, NULL, NULL, 0, 4, 8), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_scatter_add_rows(be, NULL, NULL, NULL, 5, 2, 0), SCALAR_OK);
}

START_TEST(test_zero_sizes_are_noops)
{
    bt_for_each_backend(conf_zero_sizes);
}
END_TEST

/* ---- the cpu backend's own sgemm microkernels (lib/backend/cpu/cpu_gemm_ukr.c) ----
 * Called directly, as BLIS calls them: packed A (k columns of MR), packed B
 * (k rows of NR), zero-padded past m and n; every edge tile size, k across
 * one KC block, beta 0 (C full of NaN, never read) and not, C stored by rows
 * and by columns.  Cells of C outside the tile must survive.  Against a
 * double-precision loop: |err| <= 1e-5 * (sum |a b| + |beta c|). */
typedef void (*ukr_fn)(int64_t, int64_t, int64_t, const float *, const float *, const float *,
                       const float *, float *, int64_t, int64_t);

static void check_ukr(const char *name, ukr_fn fn, int64_t mr, int64_t nr, scalar__rng *rng)
{
    static const int64_t ks[] = {0, 1, 7, 256};
    static const float betas[] = {0.0f, -0.5f};
    int64_t ld = mr + nr + 3; /* C's outer stride, either storage */
    for (int64_t m = 1; m <= mr; m += (m < 3 || m >= mr - 2) ? 1 : 5)
        for (int64_t n = 1; n <= nr; n += (n < 3 || n >= nr - 2) ? 1 : 6)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int bi = 0; bi < 2; bi++)
                    for (int by_cols = 0; by_cols < 2; by_cols++) {
                        int64_t k = ks[ki];
                        float alpha = 1.25f, beta = betas[bi];
                        float *a = bt_floats(k * mr + 1), *b = bt_floats(k * nr + 1);
                        float *c = bt_floats(ld * ld), *c0 = bt_floats(ld * ld);
                        for (int64_t p = 0; p < k; p++) {
                            for (int64_t i = 0; i < mr; i++)
                                a[p * mr + i] = i < m ? scalar__rng_normal(rng) : 0.0f;
                            for (int64_t j = 0; j < nr; j++)
                                b[p * nr + j] = j < n ? scalar__rng_normal(rng) : 0.0f;
                        }
                        for (int64_t i = 0; i < ld * ld; i++)
                            c[i] = 777.0f;
                        int64_t rs = by_cols ? 1 : ld, cs = by_cols ? ld : 1;
                        for (int64_t i = 0; i < m; i++)
                            for (int64_t j = 0; j < n; j++)
                                c[i * rs + j * cs] = beta == 0.0f ? NAN : scalar__rng_normal(rng);
                        memcpy(c0, c, (size_t)(ld * ld) * sizeof(float));
                        fn(m, n, k, &alpha, a, b, &beta, c, rs, cs);
                        for (int64_t i = 0; i < ld * ld; i++) {
                            int64_t r = by_cols ? i % ld : i / ld, col = by_cols ? i / ld : i % ld;
                            if (r < m && col < n) {
                                double dot = 0.0, mag = 0.0;
                                for (int64_t p = 0; p < k; p++) {
                                    dot += (double)a[p * mr + r] * b[p * nr + col];
                                    mag += fabs((double)a[p * mr + r] * b[p * nr + col]);
                                }
                                double want = alpha * dot, c_old = c0[i];
                                if (beta != 0.0f)
                                    want += beta * c_old;
                                mag = fabs(alpha) * mag + (beta != 0.0f ? fabs(beta * c_old) : 0.0);
                                ck_assert_msg(fabs(c[i] - want) <= 1e-5 * mag + 1e-30,
                                              "%s m=%lld n=%lld k=%lld beta=%g %s: C[%lld,%lld] = "
                                              "%.9g, want %.9g", name, (long long)m, (long long)n,
                                              (long long)k, (double)beta, by_cols ? "cols" : "rows",
                                              (long long)r, (long long)col, (double)c[i], want);
                            } else {
                                ck_assert_msg(c[i] == 777.0f, "%s wrote outside its %lldx%lld tile",
                                              name, (long long)m, (long long)n);
                            }
                        }
                        free(a);
                        free(b);
                        free(c);
                        free(c0);
                    }
}

START_TEST(test_cpu_sgemm_microkernels)
{
    scalar__rng rng;
    scalar__rng_init(&rng, 31, 0);
    if (!scalar__cpu_sgemm_ukr_available()) {
        printf("test_cpu_sgemm_microkernels: skipped, this build has no AVX2+FMA kernel\n");
        return;
    }
    check_ukr("avx2 6x16", scalar__cpu_sgemm_ukr_6x16, 6, 16, &rng);
    if (scalar__cpu_sgemm_ukr512_available())
        check_ukr("avx512 24x16", scalar__cpu_sgemm_ukr_24x16, 24, 16, &rng);
    else
        printf("test_cpu_sgemm_microkernels: the AVX-512 kernel skipped (no AVX-512 here)\n");
}
END_TEST

TCase *bt_conformance_tcase(void)
{
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conformance_sgemm);
    tcase_add_test(tc, test_cpu_sgemm_microkernels);
    tcase_add_test(tc, test_sgemm_operand_ending_at_protected_page);
    tcase_add_test(tc, test_conformance_bias_gelu);
    tcase_add_test(tc, test_conformance_layernorm);
    tcase_add_test(tc, test_conformance_softmax);
    tcase_add_test(tc, test_conformance_topk);
    tcase_add_test(tc, test_conformance_gather_scatter);
    tcase_add_test(tc, test_zero_sizes_are_noops);
    return tc;
}
