/*
 * check_backend_sparse.c - the sparse-code kernels (decode, dot, outer-add):
 * argument checks, hand-computed values, finite differences, every
 * registered host backend against cpu-ref, and the cpu backend on 1 and 2
 * threads compared bit for bit.
 *
 * Conformance thresholds:
 *   sparse_decode, sparse_outer_add  bit-exact (their order of operations is
 *                                    part of the contract)
 *   sparse_dot                       |x - ref| <= 1e-6 * sum_c |x_c W_c| per
 *                                    entry: float vector sums against cpu-ref's
 *                                    double, error bounded by the sum's
 *                                    condition, not its value (a dot that
 *                                    cancels to ~0 is still checked fairly);
 *                                    measured NMSE over 3000 entries ~1e-14
 * Finite differences: central, h = 1e-2 on a loss linear in each argument
 * (so the difference is exact up to rounding), relative error <= 1e-3.
 *
 * The Jacobian contraction (J = (A g) B^T per token) and its backward: per
 * entry |x - ref| <= 1e-6 * (the sum of |terms|), float sums against
 * cpu-ref's double; its backward against finite differences of
 * L = sum S . J (linear in A and B) within 1e-3 relative.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

#define DOT_REL 1e-6

typedef struct sp_case {
    int64_t n, k, n_rows, d;
    float *values, *W, *bias, *x, *a;
    int32_t *idx;
} sp_case;

/* Random codes with ~1/8 absent (-1) and repeats within a token allowed. */
static void sp_make(sp_case *c, int64_t n, int64_t k, int64_t n_rows, int64_t d,
                    scalar__rng *rng)
{
    c->n = n, c->k = k, c->n_rows = n_rows, c->d = d;
    c->values = bt_floats(n * k);
    c->a = bt_floats(n * k);
    c->W = bt_floats(n_rows * d);
    c->bias = bt_floats(d);
    c->x = bt_floats(n * d);
    c->idx = bt_ints(n * k);
    bt_fill_normal(c->values, n * k, rng, 1.0f, 0.0f);
    bt_fill_normal(c->a, n * k, rng, 1.0f, 0.0f);
    bt_fill_normal(c->W, n_rows * d, rng, 0.5f, 0.0f);
    bt_fill_normal(c->bias, d, rng, 0.5f, 0.0f);
    bt_fill_normal(c->x, n * d, rng, 1.0f, 0.0f);
    for (int64_t i = 0; i < n * k; i++)
        c->idx[i] = scalar__rng_below(rng, 8) == 0 ? -1
                                                    : (int32_t)scalar__rng_below(rng, (uint64_t)n_rows);
}

static void sp_free(sp_case *c)
{
    free(c->values);
    free(c->a);
    free(c->W);
    free(c->bias);
    free(c->x);
    free(c->idx);
}

/* ---- argument checks ---- */

START_TEST(test_sparse_arguments_checked)
{
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    const scalar_status E = SCALAR_E_INVALID_ARG;
    float out[8] = {0}, v[4] = {1, 1, 1, 1}, W[8] = {0}, x[8] = {0};
    int32_t ok[4] = {0, 1, -1, 3}, big[4] = {0, 4, 1, 2};
    bt_assert_error(scalar_backend_sparse_decode(NULL, out, v, ok, W, NULL, 2, 2, 4, 2), E,
                    "backend is NULL");
    bt_assert_error(scalar_backend_sparse_decode(be, out, v, big, W, NULL, 2, 2, 4, 2), E,
                    "idx[1]=4 out of range");
    bt_assert_error(scalar_backend_sparse_dot(be, out, big, W, x, 2, 2, 4, 2), E, "idx[1]=4");
    bt_assert_error(scalar_backend_sparse_outer_add(be, W, v, big, x, 2, 2, 4, 2), E,
                    "idx[1]=4");
    bt_assert_error(scalar_backend_sparse_decode(be, out, v, ok, W, NULL, -1, 2, 4, 2), E,
                    "n=-1");
    bt_assert_error(scalar_backend_sparse_dot(be, out, ok, W, x, 2, -2, 4, 2), E, "k=-2");
    bt_assert_error(scalar_backend_sparse_outer_add(be, W, v, ok, x, 2, 2, -4, 2), E,
                    "n_rows=-4");
    bt_assert_error(scalar_backend_sparse_decode(be, out, NULL, ok, W, NULL, 2, 2, 4, 2), E,
                    "values is NULL");
    bt_assert_error(scalar_backend_sparse_decode(be, out, v, NULL, W, NULL, 2, 2, 4, 2), E,
                    "idx is NULL");
    bt_assert_error(scalar_backend_sparse_outer_add(be, NULL, v, ok, x, 2, 2, 4, 2), E,
                    "dW is NULL");
    bt_assert_error(scalar_backend_sparse_decode(be, W, v, ok, W, NULL, 2, 2, 4, 2), E,
                    "overlaps");
    bt_assert_error(scalar_backend_sparse_outer_add(be, W, v, ok, W, 2, 2, 4, 2), E,
                    "overlaps");
    bt_assert_error(scalar_backend_sparse_dot(be, x, ok, W, x, 2, 2, 4, 2), E, "overlaps");
    /* nothing to compute: NULL pointers are fine */
    ck_assert_int_eq(scalar_backend_sparse_decode(be, NULL, NULL, NULL, NULL, NULL, 0, 3, 4, 2),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_dot(be, NULL, NULL, NULL, NULL, 5, 0, 4, 2),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_outer_add(be, NULL, NULL, NULL, NULL, 0, 2, 4, 2),
                     SCALAR_OK);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- hand-computed values, on every built-in backend ---- */

START_TEST(test_sparse_known_values)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    for (int b = 0; b < 2; b++) {
        scalar_ctx *ctx = bt_ctx(names[b], 2);
        scalar_backend *be = scalar_ctx_backend(ctx);
        /* W rows: r0 = (1, 2), r1 = (3, 4), r2 = (5, 6); token 0 codes (r2: 2, r0: -1),
         * token 1 codes (absent, r1: 0.5) */
        float W[6] = {1, 2, 3, 4, 5, 6}, v[4] = {2, -1, 7, 0.5f}, bias[2] = {10, 20};
        int32_t idx[4] = {2, 0, -1, 1};
        float out[4], dot[4], x[4] = {1, -1, 2, 0.5f}, dW[6] = {0};
        ck_assert_int_eq(scalar_backend_sparse_decode(be, out, v, idx, W, bias, 2, 2, 3, 2),
                         SCALAR_OK);
        ck_assert(out[0] == 10 + 10 - 1 && out[1] == 20 + 12 - 2);
        ck_assert(out[2] == 10 + 1.5f && out[3] == 20 + 2);
        ck_assert_int_eq(scalar_backend_sparse_decode(be, out, v, idx, W, NULL, 2, 2, 3, 2),
                         SCALAR_OK);
        ck_assert(out[0] == 9 && out[1] == 10 && out[2] == 1.5f && out[3] == 2);
        ck_assert_int_eq(scalar_backend_sparse_dot(be, dot, idx, W, x, 2, 2, 3, 2), SCALAR_OK);
        ck_assert(dot[0] == 5 - 6 && dot[1] == 1 - 2 && dot[2] == 0 && dot[3] == 6 + 2);
        ck_assert_int_eq(scalar_backend_sparse_outer_add(be, dW, v, idx, x, 2, 2, 3, 2),
                         SCALAR_OK);
        /* r0 += -1 * x0; r1 += 0.5 * x1; r2 += 2 * x0 */
        ck_assert(dW[0] == -1 && dW[1] == 1 && dW[2] == 1 && dW[3] == 0.25f);
        ck_assert(dW[4] == 2 && dW[5] == -2);
        scalar_ctx_free(ctx);
    }
}
END_TEST

/* ---- finite differences: L = sum(g * decode(values, W)) ---- */

static double sp_loss(scalar_backend *be, const sp_case *c, const float *g, float *out)
{
    ck_assert_int_eq(scalar_backend_sparse_decode(be, out, c->values, c->idx, c->W, c->bias,
                                                  c->n, c->k, c->n_rows, c->d),
                     SCALAR_OK);
    double L = 0.0;
    for (int64_t i = 0; i < c->n * c->d; i++)
        L += (double)g[i] * out[i];
    return L;
}

START_TEST(test_sparse_gradients_match_finite_differences)
{
    scalar__rng rng;
    scalar__rng_init(&rng, 77, 0);
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    sp_case c;
    sp_make(&c, 6, 3, 5, 7, &rng);
    float *g = bt_floats(c.n * c.d), *out = bt_floats(c.n * c.d);
    float *dv = bt_floats(c.n * c.k), *dW = bt_floats(c.n_rows * c.d);
    bt_fill_normal(g, c.n * c.d, &rng, 1.0f, 0.0f);
    memset(dW, 0, (size_t)(c.n_rows * c.d) * sizeof(float));
    /* dL/dvalues = sparse_dot(g); dL/dW = sparse_outer_add(values, g) */
    ck_assert_int_eq(scalar_backend_sparse_dot(be, dv, c.idx, c.W, g, c.n, c.k, c.n_rows, c.d),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_outer_add(be, dW, c.values, c.idx, g, c.n, c.k,
                                                     c.n_rows, c.d),
                     SCALAR_OK);
    const float h = 1e-2f;
    for (int64_t i = 0; i < c.n * c.k; i++) {
        float keep = c.values[i];
        c.values[i] = keep + h;
        double up = sp_loss(be, &c, g, out);
        c.values[i] = keep - h;
        double down = sp_loss(be, &c, g, out);
        c.values[i] = keep;
        double fd = (up - down) / (2.0 * h);
        ck_assert_msg(fabs(fd - dv[i]) <= 1e-3 * (1.0 + fabs(fd)), "d values[%lld]: %g vs fd %g",
                      (long long)i, (double)dv[i], fd);
    }
    for (int64_t i = 0; i < c.n_rows * c.d; i++) {
        float keep = c.W[i];
        c.W[i] = keep + h;
        double up = sp_loss(be, &c, g, out);
        c.W[i] = keep - h;
        double down = sp_loss(be, &c, g, out);
        c.W[i] = keep;
        double fd = (up - down) / (2.0 * h);
        ck_assert_msg(fabs(fd - dW[i]) <= 1e-3 * (1.0 + fabs(fd)), "d W[%lld]: %g vs fd %g",
                      (long long)i, (double)dW[i], fd);
    }
    free(g);
    free(out);
    free(dv);
    free(dW);
    sp_free(&c);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- conformance against cpu-ref ---- */

typedef struct sp_out {
    float *dec, *dec_nobias, *dot, *dW;
} sp_out;

static void sp_run(scalar_backend *be, const sp_case *c, sp_out *o, const float *dW0)
{
    int64_t n = c->n, k = c->k, nr = c->n_rows, d = c->d;
    o->dec = bt_floats(n * d);
    o->dec_nobias = bt_floats(n * d);
    o->dot = bt_floats(n * k);
    o->dW = bt_floats(nr * d);
    memcpy(o->dW, dW0, (size_t)(nr * d) * sizeof(float));
    ck_assert_int_eq(scalar_backend_sparse_decode(be, o->dec, c->values, c->idx, c->W, c->bias,
                                                  n, k, nr, d),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_decode(be, o->dec_nobias, c->values, c->idx, c->W,
                                                  NULL, n, k, nr, d),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_dot(be, o->dot, c->idx, c->W, c->x, n, k, nr, d),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sparse_outer_add(be, o->dW, c->a, c->idx, c->x, n, k, nr, d),
                     SCALAR_OK);
}

static void sp_out_free(sp_out *o)
{
    free(o->dec);
    free(o->dec_nobias);
    free(o->dot);
    free(o->dW);
}

static void sp_compare(const sp_case *c, const sp_out *x, const sp_out *ref, int exact_dot,
                       const char *name)
{
    size_t nd = (size_t)(c->n * c->d) * sizeof(float);
    ck_assert_msg(memcmp(x->dec, ref->dec, nd) == 0, "%s sparse_decode differs", name);
    ck_assert_msg(memcmp(x->dec_nobias, ref->dec_nobias, nd) == 0,
                  "%s sparse_decode (no bias) differs", name);
    ck_assert_msg(memcmp(x->dW, ref->dW, (size_t)(c->n_rows * c->d) * sizeof(float)) == 0,
                  "%s sparse_outer_add differs (n %lld k %lld rows %lld d %lld)", name,
                  (long long)c->n, (long long)c->k, (long long)c->n_rows, (long long)c->d);
    if (exact_dot) {
        ck_assert_msg(memcmp(x->dot, ref->dot, (size_t)(c->n * c->k) * sizeof(float)) == 0,
                      "%s sparse_dot differs", name);
        return;
    }
    for (int64_t t = 0; t < c->n; t++)
        for (int64_t j = 0; j < c->k; j++) {
            int32_t r = c->idx[t * c->k + j];
            double cond = 0.0;
            for (int64_t i = 0; r >= 0 && i < c->d; i++)
                cond += fabs((double)c->x[t * c->d + i] * c->W[(int64_t)r * c->d + i]);
            double err = fabs((double)x->dot[t * c->k + j] - ref->dot[t * c->k + j]);
            ck_assert_msg(err <= DOT_REL * cond, "%s sparse_dot[%lld, %lld]: %.9g vs %.9g", name,
                          (long long)t, (long long)j, (double)x->dot[t * c->k + j],
                          (double)ref->dot[t * c->k + j]);
        }
}

static void conf_sparse(scalar_backend *be, scalar_backend *ref, const char *name,
                        scalar__rng *rng)
{
    static const int64_t ns[] = {1, 7, 300}, ks[] = {1, 3, 10}, rows[] = {1, 5, 512},
                         ds[] = {1, 17, 64, 65};
    for (int trial = 0; trial < 24; trial++) {
        sp_case c;
        sp_make(&c, ns[scalar__rng_below(rng, 3)], ks[scalar__rng_below(rng, 3)],
                rows[scalar__rng_below(rng, 3)], ds[scalar__rng_below(rng, 4)], rng);
        float *dW0 = bt_floats(c.n_rows * c.d);
        bt_fill_normal(dW0, c.n_rows * c.d, rng, 1.0f, 0.0f);
        sp_out x, r;
        sp_run(be, &c, &x, dW0);
        sp_run(ref, &c, &r, dW0);
        sp_compare(&c, &x, &r, 0, name);
        sp_out_free(&x);
        sp_out_free(&r);
        free(dW0);
        sp_free(&c);
    }
}

START_TEST(test_conformance_sparse)
{
    bt_for_each_backend(conf_sparse);
}
END_TEST

START_TEST(test_cpu_sparse_one_and_two_threads_bit_identical)
{
    scalar__rng rng;
    scalar__rng_init(&rng, 9, 0);
    sp_case c;
    sp_make(&c, 2000, 10, 512, 64, &rng); /* above the parallel threshold */
    float *dW0 = bt_floats(c.n_rows * c.d);
    bt_fill_normal(dW0, c.n_rows * c.d, &rng, 1.0f, 0.0f);
    scalar_ctx *ctx1 = bt_ctx("cpu", 1), *ctx2 = bt_ctx("cpu", 2);
    sp_out one, two;
    sp_run(scalar_ctx_backend(ctx1), &c, &one, dW0);
    sp_run(scalar_ctx_backend(ctx2), &c, &two, dW0);
    sp_compare(&c, &one, &two, 1, "cpu 1 vs 2 threads");
    sp_out_free(&one);
    sp_out_free(&two);
    free(dW0);
    sp_free(&c);
    scalar_ctx_free(ctx1);
    scalar_ctx_free(ctx2);
}
END_TEST

/* ---- the Jacobian contraction ---- */

typedef struct jc_case {
    int64_t n, ka, kb, h;
    float *A, *g, *B, *S;
} jc_case;

static void jc_make(jc_case *c, int64_t n, int64_t ka, int64_t kb, int64_t h, scalar__rng *rng)
{
    c->n = n, c->ka = ka, c->kb = kb, c->h = h;
    c->A = bt_floats(n * ka * h);
    c->B = bt_floats(n * kb * h);
    c->g = bt_floats(n * h);
    c->S = bt_floats(n * ka * kb);
    bt_fill_normal(c->A, n * ka * h, rng, 1.0f, 0.0f);
    bt_fill_normal(c->B, n * kb * h, rng, 1.0f, 0.0f);
    bt_fill_normal(c->g, n * h, rng, 0.5f, 0.5f);
    bt_fill_normal(c->S, n * ka * kb, rng, 1.0f, 0.0f);
}

static void jc_free(jc_case *c)
{
    free(c->A);
    free(c->B);
    free(c->g);
    free(c->S);
}

START_TEST(test_jacobian_contract_known_values_and_arguments)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    for (int i = 0; i < 2; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        /* one token, k_a 1, k_b 2, h 2: J[0, b] = sum_h A[h] g[h] B[b, h] */
        float A[2] = {1, 2}, g[2] = {3, -1}, B[4] = {1, 1, 2, -1}, J[2], S[2] = {1, -2};
        float dA[2], dB[4];
        ck_assert_int_eq(scalar_backend_jacobian_contract(be, J, A, g, B, 1, 1, 2, 2), SCALAR_OK);
        ck_assert(J[0] == 3 - 2 && J[1] == 6 + 2);
        ck_assert_int_eq(scalar_backend_jacobian_contract_backward(be, dA, dB, S, A, g, B, 1, 1,
                                                                   2, 2),
                         SCALAR_OK);
        /* dA = g (S0 B0 + S1 B1) = (3, -1) * (1 - 4, 1 + 2); dB[b] = g S[b] A */
        ck_assert(dA[0] == -9 && dA[1] == -3);
        ck_assert(dB[0] == 3 && dB[1] == -2 && dB[2] == -6 && dB[3] == 4);
        scalar_ctx_free(ctx);
    }
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float x[8] = {0};
    bt_assert_error(scalar_backend_jacobian_contract(be, x, x, x, x, 1, 1, 1, 2),
                    SCALAR_E_INVALID_ARG, "overlaps");
    bt_assert_error(scalar_backend_jacobian_contract(be, NULL, x, x, x, 1, 1, 1, 2),
                    SCALAR_E_INVALID_ARG, "J is NULL");
    bt_assert_error(scalar_backend_jacobian_contract(be, x, x, x, x, 1, -1, 1, 2),
                    SCALAR_E_INVALID_ARG, "k_a=-1");
    bt_assert_error(scalar_backend_jacobian_contract_backward(be, x, x + 1, x, x + 5, x + 6,
                                                              x + 7, 1, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "overlaps an input");
    bt_assert_error(scalar_backend_jacobian_contract_backward(be, x, x, x + 4, x + 5, x + 6,
                                                              x + 7, 1, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "dA overlaps dB");
    ck_assert_int_eq(scalar_backend_jacobian_contract_backward(be, x, x + 1, x + 4, x + 5, x + 6,
                                                               x + 7, 1, 1, 1, 1),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_jacobian_contract(be, NULL, NULL, NULL, NULL, 0, 3, 3, 9),
                     SCALAR_OK);
    scalar_ctx_free(ctx);
}
END_TEST

/* L = sum S . J: dL/dA and dL/dB by central differences. */
START_TEST(test_jacobian_contract_backward_matches_finite_differences)
{
    scalar__rng rng;
    scalar__rng_init(&rng, 5, 0);
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    jc_case c;
    jc_make(&c, 3, 2, 3, 5, &rng);
    float *J = bt_floats(c.n * c.ka * c.kb), *dA = bt_floats(c.n * c.ka * c.h);
    float *dB = bt_floats(c.n * c.kb * c.h);
    ck_assert_int_eq(scalar_backend_jacobian_contract_backward(be, dA, dB, c.S, c.A, c.g, c.B,
                                                               c.n, c.ka, c.kb, c.h),
                     SCALAR_OK);
    float *params[2] = {c.A, c.B}, *grads[2] = {dA, dB};
    int64_t sizes[2] = {c.n * c.ka * c.h, c.n * c.kb * c.h};
    const float step = 1e-2f;
    for (int p = 0; p < 2; p++)
        for (int64_t i = 0; i < sizes[p]; i++) {
            double L[2];
            float keep = params[p][i];
            for (int side = 0; side < 2; side++) {
                params[p][i] = keep + (side ? -step : step);
                ck_assert_int_eq(scalar_backend_jacobian_contract(be, J, c.A, c.g, c.B, c.n, c.ka,
                                                                  c.kb, c.h),
                                 SCALAR_OK);
                L[side] = 0.0;
                for (int64_t e = 0; e < c.n * c.ka * c.kb; e++)
                    L[side] += (double)c.S[e] * J[e];
            }
            params[p][i] = keep;
            double fd = (L[0] - L[1]) / (2.0 * step);
            ck_assert_msg(fabs(fd - grads[p][i]) <= 1e-3 * (1.0 + fabs(fd)),
                          "%s[%lld]: %g vs fd %g", p ? "dB" : "dA", (long long)i,
                          (double)grads[p][i], fd);
        }
    free(J);
    free(dA);
    free(dB);
    jc_free(&c);
    scalar_ctx_free(ctx);
}
END_TEST

/* |x - ref| <= 1e-6 * sum |terms| per entry, the terms given by `cond`. */
static void jc_compare(const float *x, const float *ref, const double *cond, int64_t n,
                       const char *what, const char *name)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs((double)x[i] - ref[i]) <= 1e-6 * cond[i] + 1e-30,
                      "%s %s[%lld]: %.9g vs %.9g", name, what, (long long)i, (double)x[i],
                      (double)ref[i]);
}

static void conf_jacobian(scalar_backend *be, scalar_backend *ref, const char *name,
                          scalar__rng *rng)
{
    static const int64_t ns[] = {1, 5, 70}, ks[] = {1, 3, 10}, hs[] = {1, 17, 64, 256};
    for (int trial = 0; trial < 16; trial++) {
        jc_case c;
        jc_make(&c, ns[scalar__rng_below(rng, 3)], ks[scalar__rng_below(rng, 3)],
                ks[scalar__rng_below(rng, 3)], hs[scalar__rng_below(rng, 4)], rng);
        int64_t nj = c.n * c.ka * c.kb, na = c.n * c.ka * c.h, nb = c.n * c.kb * c.h;
        float *J = bt_floats(nj), *Jr = bt_floats(nj), *dA = bt_floats(na), *dAr = bt_floats(na);
        float *dB = bt_floats(nb), *dBr = bt_floats(nb);
        double *cj = calloc((size_t)nj, sizeof(double)), *ca = calloc((size_t)na, sizeof(double));
        double *cb = calloc((size_t)nb, sizeof(double));
        ck_assert(cj && ca && cb);
        ck_assert_int_eq(scalar_backend_jacobian_contract(be, J, c.A, c.g, c.B, c.n, c.ka, c.kb,
                                                          c.h), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_contract(ref, Jr, c.A, c.g, c.B, c.n, c.ka,
                                                          c.kb, c.h), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_contract_backward(be, dA, dB, c.S, c.A, c.g, c.B,
                                                                   c.n, c.ka, c.kb, c.h),
                         SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_contract_backward(ref, dAr, dBr, c.S, c.A, c.g,
                                                                   c.B, c.n, c.ka, c.kb, c.h),
                         SCALAR_OK);
        for (int64_t t = 0; t < c.n; t++)
            for (int64_t a = 0; a < c.ka; a++)
                for (int64_t b = 0; b < c.kb; b++)
                    for (int64_t i = 0; i < c.h; i++) {
                        double ag = fabs((double)c.A[(t * c.ka + a) * c.h + i] * c.g[t * c.h + i]);
                        double bg = fabs((double)c.B[(t * c.kb + b) * c.h + i] * c.g[t * c.h + i]);
                        double s = fabs((double)c.S[(t * c.ka + a) * c.kb + b]);
                        cj[(t * c.ka + a) * c.kb + b] += ag * fabs(c.B[(t * c.kb + b) * c.h + i]);
                        ca[(t * c.ka + a) * c.h + i] += s * bg;
                        cb[(t * c.kb + b) * c.h + i] += s * ag;
                    }
        jc_compare(J, Jr, cj, nj, "J", name);
        jc_compare(dA, dAr, ca, na, "dA", name);
        jc_compare(dB, dBr, cb, nb, "dB", name);
        free(J), free(Jr), free(dA), free(dAr), free(dB), free(dBr), free(cj), free(ca), free(cb);
        jc_free(&c);
    }
}

START_TEST(test_conformance_jacobian)
{
    bt_for_each_backend(conf_jacobian);
}
END_TEST

START_TEST(test_cpu_jacobian_one_and_two_threads_bit_identical)
{
    scalar__rng rng;
    scalar__rng_init(&rng, 13, 0);
    jc_case c;
    jc_make(&c, 300, 10, 10, 64, &rng); /* above the parallel threshold */
    int64_t nj = c.n * c.ka * c.kb, na = c.n * c.ka * c.h;
    float *out[2][3];
    for (int k = 0; k < 2; k++) {
        scalar_ctx *ctx = bt_ctx("cpu", k + 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        out[k][0] = bt_floats(nj), out[k][1] = bt_floats(na), out[k][2] = bt_floats(na);
        ck_assert_int_eq(scalar_backend_jacobian_contract(be, out[k][0], c.A, c.g, c.B, c.n, c.ka,
                                                          c.kb, c.h), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_contract_backward(be, out[k][1], out[k][2], c.S,
                                                                   c.A, c.g, c.B, c.n, c.ka, c.kb,
                                                                   c.h), SCALAR_OK);
        scalar_ctx_free(ctx);
    }
    ck_assert(memcmp(out[0][0], out[1][0], (size_t)nj * sizeof(float)) == 0);
    ck_assert(memcmp(out[0][1], out[1][1], (size_t)na * sizeof(float)) == 0);
    ck_assert(memcmp(out[0][2], out[1][2], (size_t)na * sizeof(float)) == 0);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++)
            free(out[k][j]);
    jc_free(&c);
}
END_TEST

/* scalar_backend_jacobian_rows: known values, cpu against cpu-ref on random
 * shapes (per entry within 1e-6 of the sum's condition sum |A g B|, the
 * float rounding of h-term sums), 1 and 2 threads equal, bad arguments. */
START_TEST(test_jacobian_rows)
{
    static const char *const names[] = {"cpu", "cpu-ref"};
    for (int i = 0; i < 2; i++) {
        scalar_ctx *ctx = bt_ctx(names[i], 1);
        scalar_backend *be = scalar_ctx_backend(ctx);
        /* A rows (1, 2), (0, 1); g rows (3, -1); B [2, 2] = (1, 1), (2, -1) */
        float A[4] = {1, 2, 0, 1}, g[2] = {3, -1}, B[4] = {1, 1, 2, -1}, out[4];
        int32_t ai[2] = {0, 1}, gi[2] = {0, 0};
        ck_assert_int_eq(scalar_backend_jacobian_rows(be, out, A, ai, g, gi, B, 2, 2, 1, 2, 2),
                         SCALAR_OK);
        /* row 0: (3, -2) . B rows = 1, 8; row 1: (0, -1) . B rows = -1, 1 */
        ck_assert(out[0] == 1 && out[1] == 8 && out[2] == -1 && out[3] == 1);
        scalar_ctx_free(ctx);
    }
    scalar__rng rng;
    scalar__rng_init(&rng, 11, 0);
    static const int64_t hs[] = {1, 17, 256, 3000}, ds[] = {1, 16, 64};
    for (int trial = 0; trial < 12; trial++) {
        int64_t h = hs[trial % 4], d = ds[trial % 3], n_a = 1 + (int64_t)scalar__rng_below(&rng, 40);
        int64_t n_g = 1 + (int64_t)scalar__rng_below(&rng, 30), R = (int64_t)scalar__rng_below(&rng, 300);
        float *A = bt_floats(n_a * h), *g = bt_floats(n_g * h), *B = bt_floats(d * h);
        float *o1 = bt_floats(R * d + 1), *o2 = bt_floats(R * d + 1), *o3 = bt_floats(R * d + 1);
        int32_t *ai = malloc((size_t)(R + 1) * sizeof *ai), *gi = malloc((size_t)(R + 1) * sizeof *gi);
        for (int64_t e = 0; e < n_a * h; e++)
            A[e] = scalar__rng_normal(&rng);
        for (int64_t e = 0; e < n_g * h; e++)
            g[e] = scalar__rng_normal(&rng);
        for (int64_t e = 0; e < d * h; e++)
            B[e] = scalar__rng_normal(&rng);
        for (int64_t r = 0; r < R; r++) {
            ai[r] = (int32_t)scalar__rng_below(&rng, (uint64_t)n_a);
            gi[r] = (int32_t)scalar__rng_below(&rng, (uint64_t)n_g);
        }
        scalar_ctx *c1 = bt_ctx("cpu", 1), *c2 = bt_ctx("cpu", 2), *cr = bt_ctx("cpu-ref", 1);
        ck_assert_int_eq(scalar_backend_jacobian_rows(scalar_ctx_backend(c1), o1, A, ai, g, gi, B,
                                                      R, n_a, n_g, h, d), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_rows(scalar_ctx_backend(c2), o2, A, ai, g, gi, B,
                                                      R, n_a, n_g, h, d), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_jacobian_rows(scalar_ctx_backend(cr), o3, A, ai, g, gi, B,
                                                      R, n_a, n_g, h, d), SCALAR_OK);
        for (int64_t r = 0; r < R; r++)
            for (int64_t c = 0; c < d; c++) {
                double cond = 0.0;
                for (int64_t i = 0; i < h; i++)
                    cond += fabs((double)A[ai[r] * h + i] * g[gi[r] * h + i] * B[c * h + i]);
                double e = fabs((double)o1[r * d + c] - o3[r * d + c]);
                ck_assert_msg(e <= 1e-6 * cond + 1e-30, "h %lld d %lld row %lld: %g vs %g",
                              (long long)h, (long long)d, (long long)r, (double)o1[r * d + c],
                              (double)o3[r * d + c]);
                ck_assert(o1[r * d + c] == o2[r * d + c]);
            }
        scalar_ctx_free(c1), scalar_ctx_free(c2), scalar_ctx_free(cr);
        free(A), free(g), free(B), free(o1), free(o2), free(o3), free(ai), free(gi);
    }
    scalar_ctx *ctx = bt_ctx("cpu", 1);
    scalar_backend *be = scalar_ctx_backend(ctx);
    float x[8] = {0}, y[8] = {0};
    int32_t ok[2] = {0, 0}, bad[2] = {0, 2};
    bt_assert_error(scalar_backend_jacobian_rows(be, y, x, bad, x, ok, x, 2, 2, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "a_idx[1] = 2");
    bt_assert_error(scalar_backend_jacobian_rows(be, y, x, ok, x, bad, x, 2, 2, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "g_idx[1] = 2");
    bt_assert_error(scalar_backend_jacobian_rows(be, x, x, ok, x + 4, ok, x + 6, 2, 2, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "overlaps");
    bt_assert_error(scalar_backend_jacobian_rows(be, NULL, x, ok, x, ok, x, 2, 2, 1, 1, 1),
                    SCALAR_E_INVALID_ARG, "out is NULL");
    bt_assert_error(scalar_backend_jacobian_rows(be, y, x, ok, x, ok, x, 2, 2, 1, -1, 1),
                    SCALAR_E_INVALID_ARG, "h=-1");
    ck_assert_int_eq(scalar_backend_jacobian_rows(be, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0,
                                                  5, 5),
                     SCALAR_OK);
    scalar_ctx_free(ctx);
}
END_TEST

TCase *bt_sparse_tcase(void)
{
    TCase *tc = tcase_create("sparse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sparse_arguments_checked);
    tcase_add_test(tc, test_sparse_known_values);
    tcase_add_test(tc, test_sparse_gradients_match_finite_differences);
    tcase_add_test(tc, test_conformance_sparse);
    tcase_add_test(tc, test_cpu_sparse_one_and_two_threads_bit_identical);
    tcase_add_test(tc, test_jacobian_contract_known_values_and_arguments);
    tcase_add_test(tc, test_jacobian_contract_backward_matches_finite_differences);
    tcase_add_test(tc, test_conformance_jacobian);
    tcase_add_test(tc, test_cpu_jacobian_one_and_two_threads_bit_identical);
    tcase_add_test(tc, test_jacobian_rows);
    return tc;
}
