/*
 * check_backend_model_numerics.c - the model-layer backward kernels against
 * finite differences of their own backend's forward, and every model-layer
 * kernel against known values, on cpu-ref and cpu.
 *
 * Finite differences: loss L = sum(out * r) for a fixed random r (for the
 * cross-entropy, sum(losses * d_losses)), evaluated in double from the float
 * forward kernel, central differences.  Tolerance on the whole gradient:
 * ||fd - analytic||_2 <= tol * ||analytic||_2 with
 *   attention, cross-entropy  h = 1e-2, tol = 5e-3 (the float forward leaves
 *                             ~1e-4 of noise per quotient; the h^2 term of
 *                             the central difference is ~1e-5)
 *   embeddings                h = 0.25, tol = 1e-5 (L is linear: only
 *                             rounding noise)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

#define FD_REL_TOL 5e-3
#define FD_LINEAR_TOL 1e-5

static const char *const backends[] = {"cpu-ref", "cpu"};

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

/* A loss of the parameters, evaluated by a forward kernel. */
typedef double (*loss_fn)(scalar_backend *be, void *problem);

/* fd[i] = (L(param_i + h) - L(param_i - h)) / 2h for i < n. */
static void finite_differences(scalar_backend *be, void *problem, loss_fn loss, float *param,
                               int64_t n, float h, double *fd)
{
    for (int64_t i = 0; i < n; i++) {
        float saved = param[i];
        param[i] = saved + h;
        double up = loss(be, problem);
        param[i] = saved - h;
        double down = loss(be, problem);
        param[i] = saved;
        fd[i] = (up - down) / (2.0 * (double)h);
    }
}

/* ---- attention ---- */

enum { AT_B = 2, AT_T = 4, AT_NH = 2, AT_HS = 3, AT_C = AT_NH * AT_HS, AT_ROWS = AT_B * AT_T };

typedef struct att_problem {
    float qkv[AT_ROWS * 3 * AT_C], r[AT_ROWS * AT_C];
    float out[AT_ROWS * AT_C], att[AT_B * AT_NH * AT_T * AT_T];
} att_problem;

static double att_loss(scalar_backend *be, void *problem)
{
    att_problem *p = problem;
    ck_assert_int_eq(scalar_backend_attention_forward(be, p->out, p->att, p->qkv, AT_B, AT_T,
                                                      AT_C, AT_NH), SCALAR_OK);
    return dot_f64(p->out, p->r, AT_ROWS * AT_C);
}

START_TEST(test_attention_backward_matches_finite_differences)
{
    enum { N = AT_ROWS * 3 * AT_C };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        scalar__rng rng;
        scalar__rng_init(&rng, 31, (uint64_t)bi);
        att_problem p;
        bt_fill_normal(p.qkv, N, &rng, 1.0f, 0.0f);
        bt_fill_normal(p.r, AT_ROWS * AT_C, &rng, 1.0f, 0.0f);
        att_loss(be, &p); /* p.att for the backward */
        float g[N];
        double fd[N];
        for (int i = 0; i < N; i++)
            g[i] = 1.0f; /* starts at 1 to check that it accumulates */
        ck_assert_int_eq(scalar_backend_attention_backward(be, g, p.r, p.qkv, p.att, AT_B, AT_T,
                                                           AT_C, AT_NH), SCALAR_OK);
        for (int i = 0; i < N; i++)
            g[i] -= 1.0f;
        finite_differences(be, &p, att_loss, p.qkv, N, 1e-2f, fd);
        double err = rel_error(fd, g, N);
        ck_assert_msg(err <= FD_REL_TOL, "%s attention_backward vs finite differences (q, k "
                      "and v): %.3g > %.3g", backends[bi], err, FD_REL_TOL);
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* ---- embeddings ---- */

enum { EM_B = 2, EM_T = 3, EM_C = 4, EM_VOCAB = 5, EM_NPOS = 4, EM_ROWS = EM_B * EM_T };

typedef struct emb_problem {
    float wte[EM_VOCAB * EM_C], wpe[EM_NPOS * EM_C], r[EM_ROWS * EM_C], out[EM_ROWS * EM_C];
    int32_t ids[EM_ROWS];
} emb_problem;

static double emb_loss(scalar_backend *be, void *problem)
{
    emb_problem *p = problem;
    ck_assert_int_eq(scalar_backend_embedding_forward(be, p->out, p->ids, p->wte, p->wpe, EM_B,
                                                      EM_T, EM_C, EM_VOCAB, EM_NPOS), SCALAR_OK);
    return dot_f64(p->out, p->r, EM_ROWS * EM_C);
}

START_TEST(test_embedding_backward_matches_finite_differences)
{
    static const int32_t ids[EM_ROWS] = {1, 3, 1, 4, 1, 0}; /* 2 unused, 1 repeated */
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        scalar__rng rng;
        scalar__rng_init(&rng, 37, (uint64_t)bi);
        emb_problem p;
        memcpy(p.ids, ids, sizeof ids);
        bt_fill_normal(p.wte, EM_VOCAB * EM_C, &rng, 1.0f, 0.0f);
        bt_fill_normal(p.wpe, EM_NPOS * EM_C, &rng, 1.0f, 0.0f);
        bt_fill_normal(p.r, EM_ROWS * EM_C, &rng, 1.0f, 0.0f);
        float d_wte[EM_VOCAB * EM_C] = {0}, d_wpe[EM_NPOS * EM_C] = {0};
        double fd[EM_VOCAB * EM_C];
        ck_assert_int_eq(scalar_backend_embedding_backward(be, d_wte, d_wpe, p.r, p.ids, EM_B,
                                                           EM_T, EM_C, EM_VOCAB, EM_NPOS),
                         SCALAR_OK);
        finite_differences(be, &p, emb_loss, p.wte, EM_VOCAB * EM_C, 0.25f, fd);
        double err = rel_error(fd, d_wte, EM_VOCAB * EM_C);
        ck_assert_msg(err <= FD_LINEAR_TOL, "%s embedding d_wte vs finite differences: %.3g",
                      backends[bi], err);
        for (int c = 0; c < EM_C; c++) /* token 2 appears nowhere */
            ck_assert(d_wte[2 * EM_C + c] == 0.0f);
        finite_differences(be, &p, emb_loss, p.wpe, EM_NPOS * EM_C, 0.25f, fd);
        err = rel_error(fd, d_wpe, EM_NPOS * EM_C);
        ck_assert_msg(err <= FD_LINEAR_TOL, "%s embedding d_wpe vs finite differences: %.3g",
                      backends[bi], err);
        for (int c = 0; c < EM_C; c++) /* position 3 >= T */
            ck_assert(d_wpe[3 * EM_C + c] == 0.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* ---- cross-entropy ---- */

enum { CE_N = 4, CE_VOCAB = 7, CE_LD = 9 };

typedef struct ce_problem {
    float logits[CE_N * CE_LD], d_losses[CE_N], losses[CE_N];
    int32_t targets[CE_N];
} ce_problem;

static double ce_loss(scalar_backend *be, void *problem)
{
    ce_problem *p = problem;
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, p->losses, p->logits, CE_LD,
                                                          p->targets, CE_N, CE_VOCAB), SCALAR_OK);
    return dot_f64(p->losses, p->d_losses, CE_N);
}

START_TEST(test_cross_entropy_backward_matches_finite_differences)
{
    static const int32_t targets[CE_N] = {3, -1, 0, 6}; /* row 1 ignored */
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        scalar__rng rng;
        scalar__rng_init(&rng, 41, (uint64_t)bi);
        ce_problem p;
        memcpy(p.targets, targets, sizeof targets);
        bt_fill_normal(p.logits, CE_N * CE_LD, &rng, 2.0f, 0.0f);
        bt_fill_normal(p.d_losses, CE_N, &rng, 1.0f, 0.5f);
        float g[CE_N * CE_LD];
        double fd[CE_N * CE_LD];
        for (int i = 0; i < CE_N * CE_LD; i++)
            g[i] = 1.0f;
        ck_assert_int_eq(scalar_backend_cross_entropy_backward(be, g, p.logits, CE_LD, p.targets,
                                                               p.d_losses, CE_N, CE_VOCAB),
                         SCALAR_OK);
        for (int i = 0; i < CE_N * CE_LD; i++)
            g[i] -= 1.0f; /* padding and the ignored row: 0 */
        finite_differences(be, &p, ce_loss, p.logits, CE_N * CE_LD, 1e-2f, fd);
        double err = rel_error(fd, g, CE_N * CE_LD);
        ck_assert_msg(err <= FD_REL_TOL, "%s cross_entropy_backward vs finite differences: %.3g "
                      "> %.3g", backends[bi], err, FD_REL_TOL);
        for (int c = 0; c < CE_LD; c++)
            ck_assert(g[CE_LD + c] == 0.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

TCase *bt_model_gradient_tcase(void)
{
    TCase *tc = tcase_create("model_gradients");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_attention_backward_matches_finite_differences);
    tcase_add_test(tc, test_embedding_backward_matches_finite_differences);
    tcase_add_test(tc, test_cross_entropy_backward_matches_finite_differences);
    return tc;
}

/* ---- known values ---- */

/* T = 1: each position sees only itself, att = 1 and out = v, exactly. */
START_TEST(test_attention_single_position_copies_v)
{
    enum { B = 2, NH = 3, HS = 5, C = NH * HS };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar__rng rng;
        scalar__rng_init(&rng, 43, 0);
        float qkv[B * 3 * C], out[B * C], att[B * NH];
        bt_fill_normal(qkv, B * 3 * C, &rng, 3.0f, 0.0f);
        ck_assert_int_eq(scalar_backend_attention_forward(scalar_ctx_backend(ctx), out, att, qkv,
                                                          B, 1, C, NH), SCALAR_OK);
        for (int b = 0; b < B; b++)
            ck_assert_msg(memcmp(out + b * C, qkv + b * 3 * C + 2 * C, C * sizeof(float)) == 0,
                          "%s: out != v at T = 1", backends[bi]);
        for (int i = 0; i < B * NH; i++)
            ck_assert(att[i] == 1.0f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* Equal keys: every visible position gets 1/(t+1), and out is the running
 * mean of v. */
START_TEST(test_attention_equal_keys_average_values)
{
    enum { T = 6, NH = 2, HS = 4, C = NH * HS };
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar__rng rng;
        scalar__rng_init(&rng, 47, 0);
        float qkv[T * 3 * C], out[T * C], att[NH * T * T];
        bt_fill_normal(qkv, T * 3 * C, &rng, 1.0f, 0.0f);
        for (int t = 1; t < T; t++) /* all keys equal to key 0 */
            memcpy(qkv + t * 3 * C + C, qkv + C, C * sizeof(float));
        ck_assert_int_eq(scalar_backend_attention_forward(scalar_ctx_backend(ctx), out, att, qkv,
                                                          1, T, C, NH), SCALAR_OK);
        for (int h = 0; h < NH; h++)
            for (int t = 0; t < T; t++) {
                for (int t2 = 0; t2 < T; t2++) {
                    double want = t2 <= t ? 1.0 / (t + 1) : 0.0;
                    ck_assert_msg(fabs(att[(h * T + t) * T + t2] - want) < 1e-6,
                                  "%s att[%d,%d,%d] = %g, want %g", backends[bi], h, t, t2,
                                  (double)att[(h * T + t) * T + t2], want);
                }
                for (int j = 0; j < HS; j++) {
                    double mean = 0.0;
                    for (int t2 = 0; t2 <= t; t2++)
                        mean += qkv[t2 * 3 * C + 2 * C + h * HS + j];
                    mean /= t + 1;
                    ck_assert(fabs(out[t * C + h * HS + j] - mean) < 1e-5);
                }
            }
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_embedding_known_sum)
{
    /* wte[v, c] = 10 v + c, wpe[t, c] = 100 t: out = 10 id + c + 100 t exactly */
    float wte[4 * 3], wpe[2 * 3], out[2 * 2 * 3];
    const int32_t ids[4] = {2, 0, 3, 3};
    for (int v = 0; v < 4; v++)
        for (int c = 0; c < 3; c++)
            wte[v * 3 + c] = (float)(10 * v + c);
    for (int t = 0; t < 2; t++)
        for (int c = 0; c < 3; c++)
            wpe[t * 3 + c] = (float)(100 * t);
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        ck_assert_int_eq(scalar_backend_embedding_forward(scalar_ctx_backend(ctx), out, ids, wte,
                                                          wpe, 2, 2, 3, 4, 2), SCALAR_OK);
        for (int i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++)
                ck_assert(out[i * 3 + c] == (float)(10 * ids[i] + c + 100 * (i % 2)));
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* Uniform logits: every loss is log(vocab), and the gradient d (1/V - onehot). */
START_TEST(test_cross_entropy_uniform_logits)
{
    enum { N = 3, V = 50257 };
    float *logits = bt_floats(N * V), *g = bt_floats(N * V);
    const int32_t targets[N] = {0, 50256, -1};
    const float d_losses[N] = {1.0f, 0.25f, 7.0f};
    for (int64_t i = 0; i < N * V; i++)
        logits[i] = 0.5f;
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float losses[N];
        ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, losses, logits, V, targets, N,
                                                              V), SCALAR_OK);
        ck_assert_msg(fabs(losses[0] - log((double)V)) < 2e-6 * log((double)V),
                      "%s loss %.9g, want log(%d) = %.9g", backends[bi], (double)losses[0], V,
                      log((double)V));
        ck_assert(losses[1] == losses[0] && losses[2] == 0.0f);
        memset(g, 0, (size_t)N * V * sizeof(float));
        ck_assert_int_eq(scalar_backend_cross_entropy_backward(be, g, logits, V, targets,
                                                               d_losses, N, V), SCALAR_OK);
        for (int i = 0; i < 2; i++)
            for (int64_t c = 0; c < V; c += 997) {
                double want = d_losses[i] * (1.0 / V - (c == targets[i] ? 1.0 : 0.0));
                ck_assert(fabs(g[i * V + c] - want) < 1e-6 * fabs(want));
            }
        ck_assert(fabs(g[V + 50256] - 0.25 * (1.0 / V - 1.0)) < 1e-7);
        for (int64_t c = 0; c < V; c++)
            ck_assert(g[2 * V + c] == 0.0f);
        scalar_ctx_free(ctx);
    }
    free(logits);
    free(g);
}
END_TEST

START_TEST(test_cross_entropy_two_classes_and_large_logits)
{
    /* softmax([0, ln 3]) = [1/4, 3/4]; shifting by 1000 changes nothing */
    const float logits[2 * 2] = {0.0f, 1.0986122887f, 1000.0f, 1001.0986122887f};
    const int32_t targets[2] = {0, 1};
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        float losses[2];
        ck_assert_int_eq(scalar_backend_cross_entropy_forward(scalar_ctx_backend(ctx), losses,
                                                              logits, 2, targets, 2, 2),
                         SCALAR_OK);
        ck_assert(fabs(losses[0] - log(4.0)) < 1e-6);
        ck_assert(fabs(losses[1] - log(4.0 / 3.0)) < 1e-4); /* 1000 + x: float spacing 6e-5 */
        scalar_ctx_free(ctx);
    }
}
END_TEST

START_TEST(test_sum_rows_add_sumsq_known_values)
{
    const float x[3 * 2] = {1, 2, 3, 4, 5, 6};
    enum { N = 10000 };
    float *ramp = bt_floats(N);
    for (int i = 0; i < N; i++)
        ramp[i] = (float)(i + 1);
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float sums[2] = {0.5f, -1.0f}, y[6];
        ck_assert_int_eq(scalar_backend_sum_rows(be, sums, x, 3, 2), SCALAR_OK);
        ck_assert(sums[0] == 9.5f && sums[1] == 11.0f); /* accumulated */
        memcpy(y, x, sizeof y);
        ck_assert_int_eq(scalar_backend_add(be, y, y, x, 6), SCALAR_OK); /* out is a */
        for (int i = 0; i < 6; i++)
            ck_assert(y[i] == 2.0f * x[i]);
        double sq = 0.0;
        ck_assert_int_eq(scalar_backend_sumsq(be, &sq, x, 6), SCALAR_OK);
        ck_assert(sq == 91.0);
        ck_assert_int_eq(scalar_backend_sumsq(be, &sq, ramp, N), SCALAR_OK);
        ck_assert(sq == (double)N * (N + 1) * (2.0 * N + 1) / 6.0); /* exact: integers < 2^53 */
        scalar_ctx_free(ctx);
    }
    free(ramp);
}
END_TEST

/* AdamW by hand.  p = 1, grad = 0.5, grad_scale = 2 (g = 1), lr = 0.1,
 * weight_decay = 0.1, betas (0.9, 0.999), eps = 1e-8, step 1:
 *   p = 1 * (1 - 0.01) = 0.99;  m = 0.1 g = 0.1;  v = 0.001 g^2 = 0.001;
 *   bc1 = 0.1, bc2 = 0.001: p = 0.99 - (0.1 / 0.1) * 0.1 / (1 + 1e-8) = 0.89.
 * Step 2 with grad = -0.25 (g = -0.5): the same formulas in double, with
 * the float hyper-parameters the kernel sees (0.999f is not 0.999: 1 - beta2
 * differs by 1.3e-5 relative, which v shows). */
START_TEST(test_adamw_hand_computed_steps)
{
    const double lr = 0.1f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.1f;
    for (int bi = 0; bi < 2; bi++) {
        scalar_ctx *ctx = bt_ctx(backends[bi], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        float p = 1.0f, m = 0.0f, v = 0.0f, grad = 0.5f;
        ck_assert_int_eq(scalar_backend_adamw(be, &p, &grad, &m, &v, 1, 0.1f, 0.9f, 0.999f,
                                              1e-8f, 0.1f, 2.0f, 1), SCALAR_OK);
        ck_assert_msg(fabs(p - 0.89) < 1e-6, "%s step 1: p = %.9g", backends[bi], (double)p);
        ck_assert(fabs(m - 0.1) < 1e-7 && fabs(v - 0.001) < 1e-7);
        double m1 = 1.0 - b1, v1 = 1.0 - b2, p1 = (1.0 - lr * wd) - lr * m1 / (1.0 - b1) /
                                                                    (sqrt(v1 / (1.0 - b2)) + eps);
        ck_assert(fabs(p - p1) < 3e-7 && fabs(m - m1) < 1e-8 && fabs(v - v1) < 1e-11);
        grad = -0.25f;
        ck_assert_int_eq(scalar_backend_adamw(be, &p, &grad, &m, &v, 1, 0.1f, 0.9f, 0.999f,
                                              1e-8f, 0.1f, 2.0f, 2), SCALAR_OK);
        double g = -0.5, m2 = m1 + (1.0 - b1) * (g - m1), v2 = b2 * v1 + (1.0 - b2) * g * g;
        double bc1 = 1.0 - b1 * b1, bc2 = 1.0 - b2 * b2;
        double p2 = p1 * (1.0 - lr * wd) - (lr / bc1) * m2 / (sqrt(v2) / sqrt(bc2) + eps);
        ck_assert_msg(fabs(p - p2) < 1e-6 && fabs(m - m2) < 1e-7 && fabs(v - v2) < 5e-10,
                      "%s step 2: p = %.9g (want %.9g), m = %.9g (%.9g), v = %.9g (%.9g)",
                      backends[bi], (double)p, p2, (double)m, m2, (double)v, v2);
        /* first step without decay moves each parameter by lr against its gradient's sign */
        float ps[3] = {0.5f, 0.5f, 0.5f}, gs[3] = {3.0f, -0.01f, 1e-3f}, ms[3] = {0}, vs[3] = {0};
        ck_assert_int_eq(scalar_backend_adamw(be, ps, gs, ms, vs, 3, 0.01f, 0.9f, 0.95f, 1e-12f,
                                              0.0f, 1.0f, 1), SCALAR_OK);
        ck_assert(fabsf(ps[0] - 0.49f) < 1e-6f && fabsf(ps[1] - 0.51f) < 1e-6f &&
                  fabsf(ps[2] - 0.49f) < 1e-6f);
        scalar_ctx_free(ctx);
    }
}
END_TEST

TCase *bt_model_known_values_tcase(void)
{
    TCase *tc = tcase_create("model_known_values");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_attention_single_position_copies_v);
    tcase_add_test(tc, test_attention_equal_keys_average_values);
    tcase_add_test(tc, test_embedding_known_sum);
    tcase_add_test(tc, test_cross_entropy_uniform_logits);
    tcase_add_test(tc, test_cross_entropy_two_classes_and_large_logits);
    tcase_add_test(tc, test_sum_rows_add_sumsq_known_values);
    tcase_add_test(tc, test_adamw_hand_computed_steps);
    return tc;
}
