/*
 * check_backend_numerics.c - backward kernels against finite differences,
 * kernels against known values, and the cpu backend's results on 1 and 2
 * threads compared bit for bit.
 *
 * Finite differences: loss L = sum(out * r) for a fixed random r, evaluated
 * in double from the float forward kernel, central differences with
 * h = 1e-3.  The float forward leaves ~1e-4 of rounding noise in each
 * difference quotient, so the tolerance is on the whole gradient:
 * ||fd - analytic||_2 <= FD_REL_TOL * ||analytic||_2, with FD_REL_TOL = 5e-3.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

#define FD_H 1e-3f
#define FD_REL_TOL 5e-3

static const char *const fd_backends[] = {"cpu-ref", "cpu"};

static double dot_f64(const float *x, const float *r, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += (double)x[i] * r[i];
    return s;
}

static double rel_error(const double *fd, const float *an, int64_t n)
{
    double err = 0.0, norm = 0.0;
    for (int64_t i = 0; i < n; i++) {
        err += (fd[i] - an[i]) * (fd[i] - an[i]);
        norm += (double)an[i] * an[i];
    }
    return sqrt(err) / (norm > 0.0 ? sqrt(norm) : 1.0);
}

/* ---- GELU ---- */

static double gelu_loss(scalar_backend *be, const float *x, const float *r, float *out, int64_t n)
{
    ck_assert_int_eq(scalar_backend_gelu_forward(be, out, x, n), SCALAR_OK);
    return dot_f64(out, r, n);
}

START_TEST(test_gelu_backward_matches_finite_differences)
{
    enum { N = 41 };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        scalar__rng rng;
        scalar__rng_init(&rng, 7, (uint64_t)bi);
        float x[N], r[N], out[N], d_in[N], d_in0[N], an[N];
        double fd[N];
        for (int i = 0; i < N; i++) /* a grid over [-5, 5], jittered */
            x[i] = -5.0f + 10.0f * (float)i / (N - 1) + 0.01f * scalar__rng_normal(&rng);
        bt_fill_normal(r, N, &rng, 1.0f, 0.0f);
        bt_fill_normal(d_in0, N, &rng, 1.0f, 0.0f);
        memcpy(d_in, d_in0, sizeof d_in);
        ck_assert_int_eq(scalar_backend_gelu_backward(be, d_in, x, r, N), SCALAR_OK);
        for (int i = 0; i < N; i++) {
            an[i] = (float)((double)d_in[i] - d_in0[i]); /* it accumulates */
            float saved = x[i];
            x[i] = saved + FD_H;
            double up = gelu_loss(be, x, r, out, N);
            x[i] = saved - FD_H;
            double down = gelu_loss(be, x, r, out, N);
            x[i] = saved;
            fd[i] = (up - down) / (2.0 * FD_H);
        }
        double err = rel_error(fd, an, N);
        ck_assert_msg(err <= FD_REL_TOL, "%s gelu_backward vs finite differences: %.3g > %.3g",
                      fd_backends[bi], err, FD_REL_TOL);
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* ---- LayerNorm ---- */

enum { LN_ROWS = 3, LN_D = 17 };

typedef struct ln_problem {
    float in[LN_ROWS * LN_D], w[LN_D], b[LN_D], r[LN_ROWS * LN_D];
} ln_problem;

static double ln_loss(scalar_backend *be, const ln_problem *p)
{
    float out[LN_ROWS * LN_D];
    ck_assert_int_eq(scalar_backend_layernorm_forward(be, out, NULL, NULL, p->in, p->w, p->b,
                                                      LN_ROWS, LN_D, 1e-5f), SCALAR_OK);
    return dot_f64(out, p->r, LN_ROWS * LN_D);
}

/* Central difference of the loss along each entry of `param` (n entries). */
static void ln_finite_differences(scalar_backend *be, ln_problem *p, float *param, int64_t n,
                                  double *fd)
{
    for (int64_t i = 0; i < n; i++) {
        float saved = param[i];
        param[i] = saved + FD_H;
        double up = ln_loss(be, p);
        param[i] = saved - FD_H;
        double down = ln_loss(be, p);
        param[i] = saved;
        fd[i] = (up - down) / (2.0 * FD_H);
    }
}

static void check_ln_gradient(const char *backend, const char *what, ln_problem *p, float *param,
                              const float *analytic, int64_t n, scalar_backend *be)
{
    double fd[LN_ROWS * LN_D];
    ln_finite_differences(be, p, param, n, fd);
    double err = rel_error(fd, analytic, n);
    ck_assert_msg(err <= FD_REL_TOL, "%s layernorm %s vs finite differences: %.3g > %.3g",
                  backend, what, err, FD_REL_TOL);
}

START_TEST(test_layernorm_backward_matches_finite_differences)
{
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        scalar__rng rng;
        scalar__rng_init(&rng, 11, (uint64_t)bi);
        ln_problem p;
        bt_fill_normal(p.in, LN_ROWS * LN_D, &rng, 1.5f, 0.4f);
        bt_fill_normal(p.w, LN_D, &rng, 0.3f, 1.0f);
        bt_fill_normal(p.b, LN_D, &rng, 0.3f, 0.0f);
        bt_fill_normal(p.r, LN_ROWS * LN_D, &rng, 1.0f, 0.0f);
        float out[LN_ROWS * LN_D], mean[LN_ROWS], rstd[LN_ROWS];
        ck_assert_int_eq(scalar_backend_layernorm_forward(be, out, mean, rstd, p.in, p.w, p.b,
                                                          LN_ROWS, LN_D, 1e-5f), SCALAR_OK);
        /* gradients start at 1 to check that they accumulate */
        float g[LN_ROWS * LN_D + 2 * LN_D];
        for (int i = 0; i < LN_ROWS * LN_D + 2 * LN_D; i++)
            g[i] = 1.0f;
        float *d_in = g, *d_w = g + LN_ROWS * LN_D, *d_b = d_w + LN_D;
        ck_assert_int_eq(scalar_backend_layernorm_backward(be, d_in, d_w, d_b, p.r, p.in, p.w,
                                                           mean, rstd, LN_ROWS, LN_D), SCALAR_OK);
        for (int i = 0; i < LN_ROWS * LN_D + 2 * LN_D; i++)
            g[i] -= 1.0f;
        check_ln_gradient(fd_backends[bi], "d_in", &p, p.in, d_in, LN_ROWS * LN_D, be);
        check_ln_gradient(fd_backends[bi], "d_weight", &p, p.w, d_w, LN_D, be);
        check_ln_gradient(fd_backends[bi], "d_bias", &p, p.b, d_b, LN_D, be);
        scalar_ctx_free(ctx);
    }
}
END_TEST

TCase *bt_gradient_tcase(void)
{
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gelu_backward_matches_finite_differences);
    tcase_add_test(tc, test_layernorm_backward_matches_finite_differences);
    return tc;
}

/* ---- known values, on cpu-ref and cpu ---- */

START_TEST(test_gelu_known_values)
{
    static const float x[] = {-6.0f, -3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f, 6.0f};
    enum { N = sizeof x / sizeof x[0] };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 1);
        float out[N];
        ck_assert_int_eq(scalar_backend_gelu_forward(scalar_ctx_backend(ctx), out, x, N),
                         SCALAR_OK);
        for (int i = 0; i < N; i++) {
            double xv = x[i];
            double u = 0.79788456080286535588 /* sqrt(2/pi) */ * (xv + 0.044715 * xv * xv * xv);
            double want = 0.5 * xv * (1.0 + tanh(u));
            ck_assert_msg(fabs(out[i] - want) <= 1e-6 * fmax(1.0, fabs(want)),
                          "%s gelu(%g) = %.9g, want %.9g", fd_backends[bi], xv, (double)out[i],
                          want);
        }
        ck_assert(out[4] == 0.0f);
        ck_assert(fabsf(out[6] - 0.8411920f) < 1e-6f); /* gelu(1), tanh form */
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_layernorm_output_has_mean_zero_var_one)
{
    enum { R = 4, D = 96 };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 1);
        scalar__rng rng;
        scalar__rng_init(&rng, 3, 0);
        float in[R * D], out[R * D], mean[R], rstd[R];
        bt_fill_normal(in, R * D, &rng, 3.0f, 5.0f);
        ck_assert_int_eq(scalar_backend_layernorm_forward(scalar_ctx_backend(ctx), out, mean, rstd,
                                                          in, NULL, NULL, R, D, 1e-5f), SCALAR_OK);
        for (int r = 0; r < R; r++) {
            double m = 0.0, v = 0.0, m_in = 0.0;
            for (int i = 0; i < D; i++) {
                m += out[r * D + i];
                m_in += in[r * D + i];
            }
            m /= D;
            for (int i = 0; i < D; i++)
                v += (out[r * D + i] - m) * (out[r * D + i] - m);
            v /= D;
            ck_assert_msg(fabs(m) < 1e-5, "%s row %d mean %g", fd_backends[bi], r, m);
            ck_assert_msg(fabs(v - 1.0) < 1e-4, "%s row %d var %g", fd_backends[bi], r, v);
            ck_assert(fabs(mean[r] - m_in / D) < 1e-5);
        }
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_softmax_known_rows)
{
    const float inf = INFINITY;
    float in[5][4] = {
        {1.0f, 2.0f, 3.0f, 4.0f},
        {-inf, -inf, -inf, -inf}, /* fully masked: zeros */
        {-inf, 5.0f, -inf, -inf}, /* one survivor: exactly one-hot */
        {1000.0f, 1001.0f, -inf, 999.0f}, /* large logits: no overflow */
        {0.0f, NAN, 1.0f, 2.0f}, /* NaN poisons the row */
    };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 1);
        float out[5][4];
        ck_assert_int_eq(scalar_backend_softmax_rows(scalar_ctx_backend(ctx), &out[0][0],
                                                     &in[0][0], 5, 4), SCALAR_OK);
        double sum = 0.0;
        for (int j = 0; j < 4; j++)
            sum += out[0][j];
        ck_assert(fabs(sum - 1.0) < 1e-6);
        ck_assert(fabsf(out[0][3] - 0.6439142598f) < 1e-6f);
        for (int j = 0; j < 4; j++) {
            ck_assert(out[1][j] == 0.0f);
            ck_assert(out[2][j] == (j == 1 ? 1.0f : 0.0f));
            ck_assert(isnan(out[4][j]));
        }
        ck_assert(fabsf(out[3][1] - 0.6652409558f) < 1e-6f && out[3][2] == 0.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_topk_ties_and_nan_order)
{
    const float row[8] = {1.0f, 3.0f, 3.0f, NAN, 2.0f, 3.0f, -INFINITY, NAN};
    const int32_t want[8] = {1, 2, 5, 4, 0, 6, 3, 7};
    const float zeros[3] = {-0.0f, 0.0f, -0.0f}; /* equal values: lower index first */
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float v[8];
        int32_t ix[8];
        for (int64_t k = 0; k <= 8; k++) {
            ck_assert_int_eq(scalar_backend_topk_rows(be, v, ix, row, 1, 8, k), SCALAR_OK);
            for (int64_t t = 0; t < k; t++) {
                ck_assert_msg(ix[t] == want[t], "%s k=%lld: index %lld is %d, want %d",
                              fd_backends[bi], (long long)k, (long long)t, ix[t], want[t]);
                ck_assert(memcmp(&v[t], &row[ix[t]], sizeof(float)) == 0);
            }
        }
        ck_assert_int_eq(scalar_backend_topk_rows(be, v, ix, zeros, 1, 3, 3), SCALAR_OK);
        ck_assert(ix[0] == 0 && ix[1] == 1 && ix[2] == 2);
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_sgemm_known_product)
{
    /* [[1 2 3] [4 5 6]] x [[1 0] [0 1] [1 1]] = [[4 5] [10 11]] */
    const float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(fd_backends[bi], 1);
        float c[4] = {1, 1, 1, 1};
        ck_assert_int_eq(scalar_backend_sgemm(scalar_ctx_backend(ctx), SCALAR_NO_TRANS,
                                              SCALAR_NO_TRANS, 2, 2, 3, 2.0f, a, 3, b, 2, -1.0f,
                                              c, 2), SCALAR_OK);
        ck_assert(c[0] == 7.0f && c[1] == 9.0f && c[2] == 19.0f && c[3] == 21.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

TCase *bt_known_values_tcase(void)
{
    TCase *tc = tcase_create("known_values");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gelu_known_values);
    tcase_add_test(tc, test_layernorm_output_has_mean_zero_var_one);
    tcase_add_test(tc, test_softmax_known_rows);
    tcase_add_test(tc, test_topk_ties_and_nan_order);
    tcase_add_test(tc, test_sgemm_known_product);
    return tc;
}

/* ---- determinism: cpu on 1 and 2 threads, every non-GEMM kernel ---- */

/* Sizes well above SCALAR__CPU_PAR_MIN_WORK, so the 2-thread run really
 * splits the work. */
enum { DT_ROWS = 256, DT_D = 769, DT_N = DT_ROWS * DT_D, DT_K = 24, DT_IDX = 600, DT_DST = 40 };

typedef struct dt_out {
    float bias[DT_N], gelu[DT_N], d_gelu[DT_N], ln[DT_N], stats[2 * DT_ROWS];
    float d_ln[DT_N + 2 * DT_D], soft[DT_N], topv[DT_ROWS * DT_K], gath[DT_IDX * DT_D];
    float scat[DT_DST * DT_D];
    int32_t topi[DT_ROWS * DT_K];
} dt_out;

typedef struct dt_in {
    float x[DT_N], y[DT_N], w[DT_D], b[DT_D], src[DT_IDX * DT_D];
    int32_t idx[DT_IDX];
} dt_in;

static void dt_run(scalar_backend *be, const dt_in *in, dt_out *o)
{
    memcpy(o->bias, in->x, sizeof o->bias);
    ck_assert_int_eq(scalar_backend_bias_add(be, o->bias, in->w, DT_ROWS, DT_D), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gelu_forward(be, o->gelu, in->x, DT_N), SCALAR_OK);
    memcpy(o->d_gelu, in->y, sizeof o->d_gelu);
    ck_assert_int_eq(scalar_backend_gelu_backward(be, o->d_gelu, in->x, in->y, DT_N), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_layernorm_forward(be, o->ln, o->stats, o->stats + DT_ROWS,
                                                      in->x, in->w, in->b, DT_ROWS, DT_D, 1e-5f),
                     SCALAR_OK);
    memset(o->d_ln, 0, sizeof o->d_ln);
    ck_assert_int_eq(scalar_backend_layernorm_backward(be, o->d_ln, o->d_ln + DT_N,
                                                       o->d_ln + DT_N + DT_D, in->y, in->x, in->w,
                                                       o->stats, o->stats + DT_ROWS, DT_ROWS,
                                                       DT_D), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_softmax_rows(be, o->soft, in->x, DT_ROWS, DT_D), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_topk_rows(be, o->topv, o->topi, in->x, DT_ROWS, DT_D, DT_K),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_gather_rows(be, o->gath, in->x, in->idx, DT_IDX, DT_ROWS,
                                                DT_D), SCALAR_OK);
    memcpy(o->scat, in->x, sizeof o->scat);
    ck_assert_int_eq(scalar_backend_scatter_add_rows(be, o->scat, in->src, in->idx, DT_IDX, DT_DST,
                                                     DT_D), SCALAR_OK);
}

START_TEST(test_cpu_one_and_two_threads_bit_identical)
{
    dt_in *in = malloc(sizeof *in);
    dt_out *one = malloc(sizeof *one), *two = malloc(sizeof *two);
    ck_assert(in && one && two);
    scalar__rng rng;
    scalar__rng_init(&rng, 99, 0);
    bt_fill_normal(in->x, DT_N, &rng, 2.0f, 0.1f);
    bt_fill_normal(in->y, DT_N, &rng, 1.0f, 0.0f);
    bt_fill_normal(in->w, DT_D, &rng, 0.2f, 1.0f);
    bt_fill_normal(in->b, DT_D, &rng, 0.2f, 0.0f);
    bt_fill_normal(in->src, DT_IDX * DT_D, &rng, 1.0f, 0.0f);
    for (int i = 0; i < DT_IDX; i++) /* < DT_DST: valid for gather and scatter, many repeats */
        in->idx[i] = (int32_t)scalar__rng_below(&rng, DT_DST);
    scalar_ctx *ctx1 = bt_ctx("cpu", 1), *ctx2 = bt_ctx("cpu", 2);
    ck_assert_int_eq(scalar_ctx_n_threads(ctx2), 2);
    dt_run(scalar_ctx_backend(ctx1), in, one);
    dt_run(scalar_ctx_backend(ctx2), in, two);
#define SAME(field) \
    ck_assert_msg(memcmp(one->field, two->field, sizeof one->field) == 0, #field " differs")
    SAME(bias);
    SAME(gelu);
    SAME(d_gelu);
    SAME(ln);
    SAME(stats);
    SAME(d_ln);
    SAME(soft);
    SAME(topv);
    SAME(topi);
    SAME(gath);
    SAME(scat);
#undef SAME
    scalar_ctx_free(ctx1);
    scalar_ctx_free(ctx2);
    free(in);
    free(one);
    free(two);
}
END_TEST

TCase *bt_threads_tcase(void)
{
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cpu_one_and_two_threads_bit_identical);
    return tc;
}
