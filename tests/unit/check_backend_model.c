/*
 * check_backend_model.c - the model-layer kernels (attention, embeddings,
 * cross-entropy, sum_rows, add, sumsq, AdamW): every registered host
 * backend against cpu-ref over random shapes and zero-size edges, and the
 * cpu backend on 1 and 2 threads compared bit for bit.
 *
 * Conformance thresholds (NMSE = sum((x - ref)^2) / sum(ref^2); for
 * accumulated gradients, of the increments x - x0 against ref - x0):
 *   attention forward (out, att)  NMSE <= 1e-10: float dot products and
 *   and backward (d_qkv)          sums (BLIS GEMMs on cpu) against cpu-ref's
 *                                 double, a few ulps per element; measured
 *                                 <= 1e-12 up to T = 1024
 *   cross-entropy forward and
 *   backward                      NMSE <= 1e-10 (measured <= 1e-13)
 *   embeddings, sum_rows, add,
 *   sumsq, adamw                  bit-exact (their order of operations is
 *                                 part of the contract)
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check_backend.h"
#include "suites.h"

#define NMSE_ATT_FWD 1e-10
#define NMSE_ATT_BWD 1e-10
#define NMSE_CE 1e-10

static int64_t pick(scalar__rng *rng, const int64_t *list, size_t n)
{
    return list[scalar__rng_below(rng, n)];
}
#define PICK(rng, list) pick(rng, list, sizeof(list) / sizeof(list[0]))

static float *copy_floats(const float *x, int64_t n)
{
    float *y = bt_floats(n);
    memcpy(y, x, (size_t)(n > 0 ? n : 1) * sizeof(float));
    return y;
}

static void fill(float *x, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = v;
}

/* NMSE of the increments x - x0 against ref - x0 (accumulated gradients). */
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

static void assert_nmse(double nmse, double limit, const char *what, const char *name)
{
    ck_assert_msg(nmse <= limit, "%s on %s: NMSE %.3g > %.3g", what, name, nmse, limit);
}

static void assert_same(const void *x, const void *ref, size_t bytes, const char *what,
                        const char *name)
{
    ck_assert_msg(memcmp(x, ref, bytes) == 0, "%s on %s differs from cpu-ref", what, name);
}

/* ---- attention ---- */

typedef struct att_shape {
    int64_t B, T, n_head, hs;
} att_shape;

static void check_attention_backward(scalar_backend *be, scalar_backend *ref, const char *name,
                                     const att_shape *sh, const float *qkv, const float *att,
                                     scalar__rng *rng)
{
    int64_t C = sh->n_head * sh->hs, rows = sh->B * sh->T;
    float *d_out = bt_floats(rows * C), *g0 = bt_floats(rows * 3 * C);
    bt_fill_normal(d_out, rows * C, rng, 1.0f, 0.0f);
    bt_fill_normal(g0, rows * 3 * C, rng, 0.5f, 0.0f);
    float *g = copy_floats(g0, rows * 3 * C), *g_ref = copy_floats(g0, rows * 3 * C);
    ck_assert_int_eq(scalar_backend_attention_backward(be, g, d_out, qkv, att, sh->B, sh->T, C,
                                                       sh->n_head), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_attention_backward(ref, g_ref, d_out, qkv, att, sh->B, sh->T,
                                                       C, sh->n_head), SCALAR_OK);
    double nmse = nmse_increment(g, g_ref, g0, rows * 3 * C);
    ck_assert_msg(nmse <= NMSE_ATT_BWD, "%s attention_backward B=%lld T=%lld n_head=%lld "
                  "hs=%lld: NMSE %.3g > %.3g", name, (long long)sh->B, (long long)sh->T,
                  (long long)sh->n_head, (long long)sh->hs, nmse, NMSE_ATT_BWD);
    free(d_out);
    free(g0);
    free(g);
    free(g_ref);
}

static void check_attention_case(scalar_backend *be, scalar_backend *ref, const char *name,
                                 const att_shape *sh, scalar__rng *rng)
{
    int64_t C = sh->n_head * sh->hs, rows = sh->B * sh->T;
    int64_t n_att = sh->B * sh->n_head * sh->T * sh->T;
    float *qkv = bt_floats(rows * 3 * C), *out = bt_floats(rows * C);
    float *out_ref = bt_floats(rows * C), *att = bt_floats(n_att), *att_ref = bt_floats(n_att);
    bt_fill_normal(qkv, rows * 3 * C, rng, 1.5f, 0.0f);
    fill(att, n_att, 777.0f); /* every entry is written, the masked ones with 0 */
    fill(out, rows * C, 777.0f);
    ck_assert_int_eq(scalar_backend_attention_forward(be, out, att, qkv, sh->B, sh->T, C,
                                                      sh->n_head), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_attention_forward(ref, out_ref, att_ref, qkv, sh->B, sh->T, C,
                                                      sh->n_head), SCALAR_OK);
    double e_out = bt_nmse(out, out_ref, rows * C), e_att = bt_nmse(att, att_ref, n_att);
    ck_assert_msg(e_out <= NMSE_ATT_FWD && e_att <= NMSE_ATT_FWD,
                  "%s attention_forward B=%lld T=%lld n_head=%lld hs=%lld: NMSE out %.3g, "
                  "att %.3g > %.3g", name, (long long)sh->B, (long long)sh->T,
                  (long long)sh->n_head, (long long)sh->hs, e_out, e_att, NMSE_ATT_FWD);
    for (int64_t r = 0; r < sh->B * sh->n_head * sh->T; r++)
        for (int64_t t2 = r % sh->T + 1; t2 < sh->T; t2++)
            ck_assert_msg(att[r * sh->T + t2] == 0.0f, "%s att above the diagonal", name);
    check_attention_backward(be, ref, name, sh, qkv, att_ref, rng);
    free(qkv);
    free(out);
    free(out_ref);
    free(att);
    free(att_ref);
}

static void conf_attention(scalar_backend *be, scalar_backend *ref, const char *name,
                           scalar__rng *rng)
{
    /* T = 1; odd head sizes; the cpu backend's direct path (hs <= 64 and
     * T * hs <= 4096: the toy model's 128 x 16, the limits 64 x 64 and
     * 1024 x 4, row blocks of 4 with ragged ends) and its BLIS path beyond
     * (several query blocks and key tiles; hs = 520, too wide for a tile) */
    static const att_shape fixed[] = {
        {1, 1, 1, 1},     {2, 1, 3, 16},   {2, 5, 2, 3},    {1, 17, 3, 5},
        {3, 33, 2, 16},   {1, 64, 1, 64},  {2, 128, 4, 16}, {1, 1023, 1, 4},
        {1, 257, 1, 16},  {1, 200, 2, 64}, {1, 600, 1, 16}, {1, 70, 1, 512},
        {1, 9, 2, 520},
    };
    static const int64_t Bs[] = {1, 2, 3}, Ts[] = {1, 2, 7, 31, 32, 33, 65};
    static const int64_t heads[] = {1, 2, 4}, hss[] = {1, 2, 7, 16, 17, 64};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check_attention_case(be, ref, name, &fixed[i], rng);
    for (int trial = 0; trial < 8; trial++) {
        att_shape sh = {PICK(rng, Bs), PICK(rng, Ts), PICK(rng, heads), PICK(rng, hss)};
        check_attention_case(be, ref, name, &sh, rng);
    }
}

START_TEST(test_conformance_attention)
{
    bt_for_each_backend(conf_attention);
}
END_TEST

/* ---- embeddings ---- */

static void check_embedding_case(scalar_backend *be, scalar_backend *ref, const char *name,
                                 int64_t B, int64_t T, int64_t C, int64_t vocab, int64_t n_pos,
                                 scalar__rng *rng)
{
    int64_t rows = B * T;
    float *wte = bt_floats(vocab * C), *wpe = bt_floats(n_pos * C), *d_out = bt_floats(rows * C);
    float *out = bt_floats(rows * C), *out_ref = bt_floats(rows * C);
    int32_t *ids = bt_ints(rows);
    for (int64_t i = 0; i < rows; i++) /* repeats whenever rows > vocab */
        ids[i] = (int32_t)scalar__rng_below(rng, (uint64_t)vocab);
    bt_fill_normal(wte, vocab * C, rng, 1.0f, 0.0f);
    bt_fill_normal(wpe, n_pos * C, rng, 0.3f, 0.0f);
    bt_fill_normal(d_out, rows * C, rng, 1.0f, 0.0f);
    ck_assert_int_eq(scalar_backend_embedding_forward(be, out, ids, wte, wpe, B, T, C, vocab,
                                                      n_pos), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_embedding_forward(ref, out_ref, ids, wte, wpe, B, T, C, vocab,
                                                      n_pos), SCALAR_OK);
    assert_same(out, out_ref, (size_t)(rows * C) * sizeof(float), "embedding_forward", name);
    for (int variant = 0; variant < 3; variant++) { /* both, d_wte only, d_wpe only */
        float *g_te = copy_floats(wte, vocab * C), *g_pe = copy_floats(wpe, n_pos * C);
        float *r_te = copy_floats(wte, vocab * C), *r_pe = copy_floats(wpe, n_pos * C);
        int with_te = variant != 2, with_pe = variant != 1;
        ck_assert_int_eq(scalar_backend_embedding_backward(be, with_te ? g_te : NULL,
                                                           with_pe ? g_pe : NULL, d_out,
                                                           with_te ? ids : NULL, B, T, C, vocab,
                                                           n_pos), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_embedding_backward(ref, with_te ? r_te : NULL,
                                                           with_pe ? r_pe : NULL, d_out,
                                                           with_te ? ids : NULL, B, T, C, vocab,
                                                           n_pos), SCALAR_OK);
        assert_same(g_te, r_te, (size_t)(vocab * C) * sizeof(float), "embedding d_wte", name);
        assert_same(g_pe, r_pe, (size_t)(n_pos * C) * sizeof(float), "embedding d_wpe", name);
        free(g_te);
        free(g_pe);
        free(r_te);
        free(r_pe);
    }
    free(wte);
    free(wpe);
    free(d_out);
    free(out);
    free(out_ref);
    free(ids);
}

static void conf_embedding(scalar_backend *be, scalar_backend *ref, const char *name,
                           scalar__rng *rng)
{
    static const int64_t Bs[] = {1, 2, 3}, Ts[] = {1, 5, 17}, Cs[] = {1, 3, 64, 65, 130};
    static const int64_t vocabs[] = {1, 7, 50}, extra_pos[] = {0, 3};
    for (int trial = 0; trial < 12; trial++) {
        int64_t T = PICK(rng, Ts);
        check_embedding_case(be, ref, name, PICK(rng, Bs), T, PICK(rng, Cs), PICK(rng, vocabs),
                             T + PICK(rng, extra_pos), rng);
    }
}

START_TEST(test_conformance_embedding)
{
    bt_for_each_backend(conf_embedding);
}
END_TEST

/* ---- cross-entropy ---- */

static void check_cross_entropy_case(scalar_backend *be, scalar_backend *ref, const char *name,
                                     int64_t n, int64_t vocab, int64_t ld, float scale,
                                     float offset, scalar__rng *rng)
{
    float *logits = bt_floats(n * ld), *losses = bt_floats(n), *losses_ref = bt_floats(n);
    float *d_losses = bt_floats(n), *g0 = bt_floats(n * ld);
    int32_t *targets = bt_ints(n);
    bt_fill_normal(logits, n * ld, rng, scale, offset);
    bt_fill_normal(d_losses, n, rng, 1.0f, 0.5f);
    bt_fill_normal(g0, n * ld, rng, 0.01f, 0.0f);
    for (int64_t i = 0; i < n; i++) {
        targets[i] = (int32_t)scalar__rng_below(rng, (uint64_t)vocab);
        if (i % 5 == 3)
            targets[i] = -1; /* ignored */
        for (int64_t c = vocab; c < ld; c++)
            g0[i * ld + c] = 777.0f; /* padding: must survive */
    }
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, losses, logits, ld, targets, n,
                                                          vocab), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(ref, losses_ref, logits, ld, targets, n,
                                                          vocab), SCALAR_OK);
    assert_nmse(bt_nmse(losses, losses_ref, n), NMSE_CE, "cross_entropy_forward", name);
    float *g = copy_floats(g0, n * ld), *g_ref = copy_floats(g0, n * ld);
    ck_assert_int_eq(scalar_backend_cross_entropy_backward(be, g, logits, ld, targets, d_losses,
                                                           n, vocab), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_backward(ref, g_ref, logits, ld, targets,
                                                           d_losses, n, vocab), SCALAR_OK);
    double nmse = nmse_increment(g, g_ref, g0, n * ld);
    ck_assert_msg(nmse <= NMSE_CE, "%s cross_entropy_backward n=%lld vocab=%lld ld=%lld: NMSE "
                  "%.3g > %.3g", name, (long long)n, (long long)vocab, (long long)ld, nmse,
                  NMSE_CE);
    for (int64_t i = 0; i < n; i++) {
        if (targets[i] < 0) {
            ck_assert_msg(losses[i] == 0.0f, "%s: an ignored row's loss is %g", name,
                          (double)losses[i]);
            assert_same(g + i * ld, g0 + i * ld, (size_t)ld * sizeof(float),
                        "an ignored row's gradient", name);
        }
        for (int64_t c = vocab; c < ld; c++)
            ck_assert_msg(g[i * ld + c] == 777.0f, "%s wrote d_logits' padding", name);
    }
    free(logits);
    free(losses);
    free(losses_ref);
    free(d_losses);
    free(g0);
    free(g);
    free(g_ref);
    free(targets);
}

static void conf_cross_entropy(scalar_backend *be, scalar_backend *ref, const char *name,
                               scalar__rng *rng)
{
    static const int64_t ns[] = {1, 3, 17, 40}, pads[] = {0, 1, 16};
    static const int64_t vocabs[] = {1, 2, 7, 63, 64, 65, 1000, 5003};
    static const float scales[] = {1.0f, 5.0f}, offsets[] = {0.0f, 100.0f, -50.0f};
    for (int trial = 0; trial < 16; trial++) {
        int64_t vocab = PICK(rng, vocabs);
        check_cross_entropy_case(be, ref, name, PICK(rng, ns), vocab, vocab + PICK(rng, pads),
                                 scales[trial % 2], offsets[trial % 3], rng);
    }
    check_cross_entropy_case(be, ref, name, 2, 50257, 50257 + 15, 3.0f, 0.0f, rng); /* GPT-2 */
}

START_TEST(test_conformance_cross_entropy)
{
    bt_for_each_backend(conf_cross_entropy);
}
END_TEST

/* ---- sum_rows, add, sumsq ---- */

static void conf_reductions(scalar_backend *be, scalar_backend *ref, const char *name,
                            scalar__rng *rng)
{
    /* cols: one or two threads' ranges (64 columns each at least), and ranges
     * wider than one 2048-column pass */
    static const int64_t rows[] = {1, 3, 17, 300}, cols[] = {1, 3, 63, 64, 65, 200, 4100};
    static const int64_t lens[] = {1, 3, 7, 8, 9, 4095, 4096, 4097, 5003, 40000};
    for (size_t trial = 0; trial < 2 * sizeof cols / sizeof cols[0]; trial++) {
        int64_t r = PICK(rng, rows), c = cols[trial / 2];
        float *x = bt_floats(r * c), *out = bt_floats(c);
        bt_fill_normal(x, r * c, rng, 1.0f, 0.25f);
        bt_fill_normal(out, c, rng, 1.0f, 0.0f);
        float *out_ref = copy_floats(out, c);
        ck_assert_int_eq(scalar_backend_sum_rows(be, out, x, r, c), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_sum_rows(ref, out_ref, x, r, c), SCALAR_OK);
        assert_same(out, out_ref, (size_t)c * sizeof(float), "sum_rows", name);
        free(x);
        free(out);
        free(out_ref);
    }
    for (int trial = 0; trial < 10; trial++) {
        int64_t n = PICK(rng, lens);
        float *a = bt_floats(n), *b = bt_floats(n), *out = bt_floats(n), *out_ref = bt_floats(n);
        bt_fill_normal(a, n, rng, 3.0f, 0.0f);
        bt_fill_normal(b, n, rng, 1.0f, 1.0f);
        ck_assert_int_eq(scalar_backend_add(be, out, a, b, n), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_add(ref, out_ref, a, b, n), SCALAR_OK);
        assert_same(out, out_ref, (size_t)n * sizeof(float), "add", name);
        ck_assert_int_eq(scalar_backend_add(be, b, a, b, n), SCALAR_OK); /* out is b */
        assert_same(b, out_ref, (size_t)n * sizeof(float), "add in place", name);
        double sq = -1.0, sq_ref = -2.0;
        ck_assert_int_eq(scalar_backend_sumsq(be, &sq, a, n), SCALAR_OK);
        ck_assert_int_eq(scalar_backend_sumsq(ref, &sq_ref, a, n), SCALAR_OK);
        ck_assert_msg(sq == sq_ref, "%s sumsq n=%lld: %.17g, cpu-ref %.17g", name, (long long)n,
                      sq, sq_ref);
        free(a);
        free(b);
        free(out);
        free(out_ref);
    }
}

START_TEST(test_conformance_reductions)
{
    bt_for_each_backend(conf_reductions);
}
END_TEST

/* ---- AdamW ---- */

typedef struct adamw_hp {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
} adamw_hp;

static void conf_adamw(scalar_backend *be, scalar_backend *ref, const char *name,
                       scalar__rng *rng)
{
    static const int64_t lens[] = {1, 7, 4096, 5003};
    /* GPT-2's; beta1 < 0.5 (ATen's other lerp formula) with eps 0; beta1 0
     * with a zero clip coefficient */
    static const adamw_hp hps[] = {
        {6e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f},
        {0.5f, 0.3f, 0.5f, 0.0f, 0.0f, 0.25f},
        {1e-3f, 0.0f, 0.999f, 1e-6f, 0.01f, 0.0f},
    };
    for (size_t h = 0; h < sizeof hps / sizeof hps[0]; h++) {
        const adamw_hp *hp = &hps[h];
        int64_t n = PICK(rng, lens);
        float *p = bt_floats(n), *g = bt_floats(n), *m = bt_floats(n), *v = bt_floats(n);
        bt_fill_normal(p, n, rng, 0.2f, 0.0f);
        fill(m, n, 0.0f);
        fill(v, n, 0.0f);
        float *p_ref = copy_floats(p, n), *m_ref = copy_floats(m, n), *v_ref = copy_floats(v, n);
        for (int64_t step = 1; step <= 3; step++) {
            bt_fill_normal(g, n, rng, 0.1f, 0.0f);
            ck_assert_int_eq(scalar_backend_adamw(be, p, g, m, v, n, hp->lr, hp->beta1, hp->beta2,
                                                  hp->eps, hp->weight_decay, hp->grad_scale,
                                                  step), SCALAR_OK);
            ck_assert_int_eq(scalar_backend_adamw(ref, p_ref, g, m_ref, v_ref, n, hp->lr,
                                                  hp->beta1, hp->beta2, hp->eps,
                                                  hp->weight_decay, hp->grad_scale, step),
                             SCALAR_OK);
        }
        assert_same(p, p_ref, (size_t)n * sizeof(float), "adamw param", name);
        assert_same(m, m_ref, (size_t)n * sizeof(float), "adamw m", name);
        assert_same(v, v_ref, (size_t)n * sizeof(float), "adamw v", name);
        free(p);
        free(g);
        free(m);
        free(v);
        free(p_ref);
        free(m_ref);
        free(v_ref);
    }
}

START_TEST(test_conformance_adamw)
{
    bt_for_each_backend(conf_adamw);
}
END_TEST

/* ---- zero sizes: valid no-ops, NULL pointers included ---- */

static void conf_model_zero_sizes(scalar_backend *be, scalar_backend *ref, const char *name,
                                  scalar__rng *rng)
{
    (void)ref;
    (void)rng;
    ck_assert_int_eq(scalar_backend_attention_forward(be, NULL, NULL, NULL, 0, 8, 6, 2),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_attention_forward(be, NULL, NULL, NULL, 2, 0, 6, 3),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_attention_forward(be, NULL, NULL, NULL, 0, 4, 0, 1),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_attention_backward(be, NULL, NULL, NULL, NULL, 0, 8, 6, 2),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_embedding_forward(be, NULL, NULL, NULL, NULL, 0, 4, 8, 10, 4),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_embedding_forward(be, NULL, NULL, NULL, NULL, 2, 4, 0, 10, 4),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_embedding_backward(be, NULL, NULL, NULL, NULL, 2, 4, 8, 10,
                                                       4), SCALAR_OK); /* nothing asked */
    ck_assert_int_eq(scalar_backend_embedding_backward(be, NULL, NULL, NULL, NULL, 0, 4, 8, 10,
                                                       4), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, NULL, NULL, 5, NULL, 0, 5),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, NULL, NULL, 0, NULL, 0, 0),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_backward(be, NULL, NULL, 5, NULL, NULL, 0, 5),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sum_rows(be, NULL, NULL, 0, 5), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sum_rows(be, NULL, NULL, 5, 0), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_add(be, NULL, NULL, NULL, 0), SCALAR_OK);
    double sq = -1.0; /* n = 0 still writes the sum */
    ck_assert_int_eq(scalar_backend_sumsq(be, &sq, NULL, 0), SCALAR_OK);
    ck_assert_msg(sq == 0.0, "%s sumsq of nothing is %g", name, sq);
    ck_assert_int_eq(scalar_backend_adamw(be, NULL, NULL, NULL, NULL, 0, 1e-3f, 0.9f, 0.999f,
                                          1e-8f, 0.0f, 1.0f, 1), SCALAR_OK);
}

START_TEST(test_model_zero_sizes_are_noops)
{
    bt_for_each_backend(conf_model_zero_sizes);
}
END_TEST

TCase *bt_model_conformance_tcase(void)
{
    TCase *tc = tcase_create("model_conformance");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_conformance_attention);
    tcase_add_test(tc, test_conformance_embedding);
    tcase_add_test(tc, test_conformance_cross_entropy);
    tcase_add_test(tc, test_conformance_reductions);
    tcase_add_test(tc, test_conformance_adamw);
    tcase_add_test(tc, test_model_zero_sizes_are_noops);
    return tc;
}

/* ---- determinism: cpu on 1 and 2 threads, bit for bit ---- */

/* Sizes above SCALAR__CPU_PAR_MIN_WORK (and, for sumsq, above one parallel
 * pass of 256 blocks), so the 2-thread run really splits the work. */
enum {
    MT_B = 2, MT_T = 130, MT_NH = 2, MT_HS = 16, MT_C = MT_NH * MT_HS, MT_ROWS = MT_B * MT_T,
    MT_VOCAB = 1000, MT_EC = 200, MT_N = 1100000
};

typedef struct mt_run {
    float out[MT_ROWS * MT_C], att[MT_B * MT_NH * MT_T * MT_T], d_qkv[MT_ROWS * 3 * MT_C];
    float emb[MT_ROWS * MT_EC], d_wte[MT_VOCAB * MT_EC], d_wpe[MT_T * MT_EC];
    float losses[MT_ROWS], d_logits[MT_ROWS * MT_VOCAB], sums[MT_EC];
    double sumsq;
} mt_run;

typedef struct mt_in {
    float qkv[MT_ROWS * 3 * MT_C], d_out[MT_ROWS * MT_C], wte[MT_VOCAB * MT_EC];
    float wpe[MT_T * MT_EC], d_emb[MT_ROWS * MT_EC], logits[MT_ROWS * MT_VOCAB];
    float d_losses[MT_ROWS], big[MT_N], grad[MT_N];
    int32_t ids[MT_ROWS], targets[MT_ROWS];
} mt_in;

/* Every model-layer kernel of `be` on `in`; AdamW updates p, m, v. */
static void mt_run_all(scalar_backend *be, const mt_in *in, mt_run *o, float *p, float *m,
                       float *v)
{
    ck_assert_int_eq(scalar_backend_attention_forward(be, o->out, o->att, in->qkv, MT_B, MT_T,
                                                      MT_C, MT_NH), SCALAR_OK);
    memset(o->d_qkv, 0, sizeof o->d_qkv);
    ck_assert_int_eq(scalar_backend_attention_backward(be, o->d_qkv, in->d_out, in->qkv, o->att,
                                                       MT_B, MT_T, MT_C, MT_NH), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_embedding_forward(be, o->emb, in->ids, in->wte, in->wpe,
                                                      MT_B, MT_T, MT_EC, MT_VOCAB, MT_T),
                     SCALAR_OK);
    memset(o->d_wte, 0, sizeof o->d_wte);
    memset(o->d_wpe, 0, sizeof o->d_wpe);
    ck_assert_int_eq(scalar_backend_embedding_backward(be, o->d_wte, o->d_wpe, in->d_emb, in->ids,
                                                       MT_B, MT_T, MT_EC, MT_VOCAB, MT_T),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_backend_cross_entropy_forward(be, o->losses, in->logits, MT_VOCAB,
                                                          in->targets, MT_ROWS, MT_VOCAB),
                     SCALAR_OK);
    memset(o->d_logits, 0, sizeof o->d_logits);
    ck_assert_int_eq(scalar_backend_cross_entropy_backward(be, o->d_logits, in->logits, MT_VOCAB,
                                                           in->targets, in->d_losses, MT_ROWS,
                                                           MT_VOCAB), SCALAR_OK);
    memset(o->sums, 0, sizeof o->sums);
    ck_assert_int_eq(scalar_backend_sum_rows(be, o->sums, in->d_emb, MT_ROWS, MT_EC), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_sumsq(be, &o->sumsq, in->big, MT_N), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_add(be, p, p, in->big, MT_N), SCALAR_OK);
    ck_assert_int_eq(scalar_backend_adamw(be, p, in->grad, m, v, MT_N, 6e-4f, 0.9f, 0.95f, 1e-8f,
                                          0.1f, 0.5f, 1), SCALAR_OK);
}

static void mt_fill(mt_in *in, scalar__rng *rng)
{
    bt_fill_normal(in->qkv, MT_ROWS * 3 * MT_C, rng, 1.0f, 0.0f);
    bt_fill_normal(in->d_out, MT_ROWS * MT_C, rng, 1.0f, 0.0f);
    bt_fill_normal(in->wte, MT_VOCAB * MT_EC, rng, 1.0f, 0.0f);
    bt_fill_normal(in->wpe, MT_T * MT_EC, rng, 0.3f, 0.0f);
    bt_fill_normal(in->d_emb, MT_ROWS * MT_EC, rng, 1.0f, 0.0f);
    bt_fill_normal(in->logits, MT_ROWS * MT_VOCAB, rng, 2.0f, 0.0f);
    bt_fill_normal(in->d_losses, MT_ROWS, rng, 1.0f, 1.0f);
    bt_fill_normal(in->big, MT_N, rng, 1.0f, 0.1f);
    bt_fill_normal(in->grad, MT_N, rng, 0.01f, 0.0f);
    for (int i = 0; i < MT_ROWS; i++) {
        in->ids[i] = (int32_t)scalar__rng_below(rng, 40); /* many repeats */
        in->targets[i] = i % 7 == 0 ? -1 : (int32_t)scalar__rng_below(rng, MT_VOCAB);
    }
}

START_TEST(test_cpu_model_kernels_one_and_two_threads_bit_identical)
{
    mt_in *in = malloc(sizeof *in);
    mt_run *one = malloc(sizeof *one), *two = malloc(sizeof *two);
    float *pmv = calloc(6 * (size_t)MT_N, sizeof(float));
    ck_assert(in && one && two && pmv);
    scalar__rng rng;
    scalar__rng_init(&rng, 4242, 0);
    mt_fill(in, &rng);
    scalar_ctx *ctx1 = bt_ctx("cpu", 1), *ctx2 = bt_ctx("cpu", 2);
    mt_run_all(scalar_ctx_backend(ctx1), in, one, pmv, pmv + MT_N, pmv + 2 * MT_N);
    mt_run_all(scalar_ctx_backend(ctx2), in, two, pmv + 3 * MT_N, pmv + 4 * MT_N,
               pmv + 5 * MT_N);
#define SAME(field) \
    ck_assert_msg(memcmp(one->field, two->field, sizeof one->field) == 0, #field " differs")
    SAME(out);
    SAME(att);
    SAME(d_qkv);
    SAME(emb);
    SAME(d_wte);
    SAME(d_wpe);
    SAME(losses);
    SAME(d_logits);
    SAME(sums);
#undef SAME
    ck_assert_msg(memcmp(&one->sumsq, &two->sumsq, sizeof(double)) == 0,
                  "sumsq differs: %.17g vs %.17g", one->sumsq, two->sumsq);
    ck_assert_msg(memcmp(pmv, pmv + 3 * (size_t)MT_N, 3 * (size_t)MT_N * sizeof(float)) == 0,
                  "add + adamw differ");
    scalar_ctx_free(ctx1);
    scalar_ctx_free(ctx2);
    free(in);
    free(one);
    free(two);
    free(pmv);
}
END_TEST

TCase *bt_model_threads_tcase(void)
{
    TCase *tc = tcase_create("model_threads");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cpu_model_kernels_one_and_two_threads_bit_identical);
    return tc;
}
