/*
 * check_evaluator.c - the SCALAR evaluator: attribution against central
 * finite differences through the public model and SAE calls (every path),
 * the all-edges properties, scores, random orders, determinism, bad calls.
 *
 * Tolerances: finite differences in float32 with step 1e-2 (smaller where a
 * top-k set would change within the step) on a tiny model: norm-wise
 * relative 1e-2 (truncation ~h^2, rounding ~eps/h); KL identities
 * 1e-6 absolute (the same float computation reached two ways).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

#define OK(x) ck_assert_int_eq((x), SCALAR_OK)

enum { C = 16, T = 6, NSEQ = 2, FU = 12, FD = 10, K = 3, LAYER = 0 };

static scalar_ctx *new_ctx(void)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    OK(scalar_ctx_options_init(&o, sizeof o));
    o.n_threads = 1;
    OK(scalar_ctx_create(&ctx, &o));
    return ctx;
}

static uint64_t lcg = 88172645463325252ULL;
static float urand(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((lcg >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static scalar_model *tiny_model(scalar_ctx *ctx)
{
    scalar_model_config mc;
    OK(scalar_model_config_init(&mc, sizeof mc));
    mc.n_layer = 2;
    mc.n_head = 2;
    mc.n_embd = C;
    mc.block_size = 16;
    mc.vocab_size = 32;
    scalar_model *m = NULL;
    OK(scalar_model_create(&m, ctx, &mc));
    /* perturb biases and LayerNorm weights so every path term matters */
    for (int32_t p = 0; p < scalar_model_param_count(m); p++) {
        const char *name;
        int64_t shape[2];
        int32_t ndim;
        OK(scalar_model_param_info(m, p, &name, shape, &ndim));
        if (ndim != 1)
            continue;
        int64_t n = shape[0];
        float *v = malloc((size_t)n * sizeof *v);
        OK(scalar_model_param_read(m, name, v, (size_t)n));
        for (int64_t e = 0; e < n; e++)
            v[e] += 0.2f * urand();
        OK(scalar_model_param_write(m, name, v, (size_t)n));
        free(v);
    }
    return m;
}

static scalar_sae *rand_sae(scalar_ctx *ctx, int32_t d_sae, int32_t k, const char *hook,
                            float scale)
{
    scalar_sae_config c;
    OK(scalar_sae_config_init(&c, sizeof c));
    c.d_in = C;
    c.d_sae = d_sae;
    c.k = k;
    c.hook_name = hook;
    scalar_sae *s = NULL;
    OK(scalar_sae_create(&s, ctx, &c));
    float *w = malloc((size_t)(C * d_sae) * sizeof *w);
    for (int64_t e = 0; e < C * d_sae; e++)
        w[e] = scale * urand();
    OK(scalar_sae_param_write(s, "W_enc", w, (size_t)(C * d_sae)));
    for (int64_t e = 0; e < C * d_sae; e++)
        w[e] = 0.5f * urand();
    OK(scalar_sae_param_write(s, "W_dec", w, (size_t)(C * d_sae)));
    for (int64_t e = 0; e < d_sae; e++)
        w[e] = 0.3f + 0.1f * urand();
    OK(scalar_sae_param_write(s, "b_enc", w, (size_t)d_sae));
    for (int64_t e = 0; e < C; e++)
        w[e] = 0.1f * urand();
    OK(scalar_sae_param_write(s, "b_dec", w, (size_t)C));
    free(w);
    return s;
}

static const char *const hook_u[] = {"blocks.0.hook_mlp_in", "blocks.0.hook_resid_mid",
                                     "blocks.0.hook_resid_pre"};
static const char *const hook_d[] = {"blocks.0.hook_mlp_out", "blocks.0.hook_resid_post",
                                     "blocks.0.hook_resid_post"};
static const int32_t kind_u[] = {SCALAR_HOOK_MLP_IN, SCALAR_HOOK_RESID_MID,
                                 SCALAR_HOOK_RESID_PRE};
static const int32_t kind_d[] = {SCALAR_HOOK_MLP_OUT, SCALAR_HOOK_RESID_POST,
                                 SCALAR_HOOK_RESID_POST};

static void make_ids(int32_t *ids, int n, int salt)
{
    for (int i = 0; i < n; i++)
        ids[i] = (i * 7 + salt * 13 + 3) % 32;
}

/* sum_t F(p)[t, :] for one sequence: decode p with U, run the path through
 * the model (forward_from at U's hook after a clean forward), D's dense codes. */
static void f_sum(scalar_model *m, scalar_model_workspace *ws, const int32_t *ids,
                  const scalar_sae *U, const scalar_sae *D, int path, const float *p,
                  double *out, unsigned char *kept)
{
    float x[T * C], y[T * C], codes[T * FD];
    OK(scalar_sae_decode_dense(U, p, T, x));
    OK(scalar_model_forward(m, ws, ids, NULL, 1, T, NULL, NULL));
    OK(scalar_model_forward_from(m, ws, LAYER, kind_u[path], x, NULL, 1, T, NULL, NULL));
    OK(scalar_model_workspace_read(ws, LAYER, kind_d[path], y, T * C));
    OK(scalar_sae_encode_dense(D, y, T, codes));
    for (int j = 0; j < FD; j++) {
        out[j] = 0.0;
        for (int t = 0; t < T; t++)
            out[j] += codes[t * FD + j];
    }
    for (int e = 0; e < T * FD; e++)
        kept[e] = codes[e] != 0.0f;
}

/* d(sum_t F)/dp[tp, i] by central differences, with a step small enough that
 * D's kept sets do not change (the gradient exists only there). */
static void fd_grad(scalar_model *m, scalar_model_workspace *ws, const int32_t *ids,
                    const scalar_sae *U, const scalar_sae *D, int path, const float *z, int tp,
                    int i, double *g)
{
    float p[T * FU];
    double f0[FD], fp[FD], fm[FD];
    unsigned char k0[T * FD], kp[T * FD], km[T * FD];
    f_sum(m, ws, ids, U, D, path, z, f0, k0);
    for (float h = 1e-2f; h >= 1e-4f; h /= 10.0f) {
        memcpy(p, z, sizeof p);
        p[tp * FU + i] += h;
        f_sum(m, ws, ids, U, D, path, p, fp, kp);
        p[tp * FU + i] = z[tp * FU + i] - h;
        f_sum(m, ws, ids, U, D, path, p, fm, km);
        if (memcmp(k0, kp, sizeof k0) == 0 && memcmp(k0, km, sizeof k0) == 0) {
            for (int j = 0; j < FD; j++)
                g[j] = (fp[j] - fm[j]) / (2.0 * h);
            return;
        }
    }
    ck_abort_msg("a top-k set changes within 1e-4 of the codes: a degenerate draw");
}

static void check_fd(int path)
{
    scalar_ctx *ctx = new_ctx();
    scalar_model *m = tiny_model(ctx);
    scalar_sae *U = rand_sae(ctx, FU, K, hook_u[path], 0.8f);
    scalar_sae *D = rand_sae(ctx, FD, K, hook_d[path], 0.8f);
    scalar_evaluator_options o;
    OK(scalar_evaluator_options_init(&o, sizeof o));
    o.attribution = SCALAR_ATTR_JACOBIAN;
    scalar_evaluator *ev = NULL;
    OK(scalar_evaluator_create(&ev, m, U, D, path, LAYER, &o));
    int32_t ids[NSEQ * T];
    make_ids(ids, NSEQ * T, path);
    OK(scalar_evaluator_attribute(ev, ids, NSEQ, T));
    float A[FU * FD];
    OK(scalar_evaluator_read_attribution(ev, A, FU * FD));

    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, m, 1, T, 0));
    double fd2[FU * FD] = {0};
    for (int b = 0; b < NSEQ; b++) {
        float act[T * C], z[T * FU];
        OK(scalar_model_forward(m, ws, ids + b * T, NULL, 1, T, NULL, NULL));
        OK(scalar_model_workspace_read(ws, LAYER, kind_u[path], act, T * C));
        OK(scalar_sae_encode_dense(U, act, T, z));
        for (int tp = 0; tp < T; tp++)
            for (int i = 0; i < FU; i++) {
                double g[FD];
                fd_grad(m, ws, ids + b * T, U, D, path, z, tp, i, g);
                for (int j = 0; j < FD; j++)
                    fd2[i * FD + j] += g[j] * g[j];
            }
    }
    double num = 0.0, den = 0.0;
    for (int e = 0; e < FU * FD; e++) {
        double d = A[e] - sqrt(fd2[e]);
        num += d * d;
        den += fd2[e];
    }
    ck_assert_msg(den > 1e-6, "no gradient at all: the test draws are degenerate");
    ck_assert_msg(sqrt(num / den) < 1e-2, "path %d: attribution vs finite differences: rel %g",
                  path, sqrt(num / den));
    scalar_model_workspace_free(ws);
    scalar_evaluator_free(ev);
    scalar_sae_free(U);
    scalar_sae_free(D);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}

START_TEST(test_attribution_fd_ff) { check_fd(SCALAR_PATH_FF_LAYER); }
END_TEST
START_TEST(test_attribution_fd_mlpblock) { check_fd(SCALAR_PATH_FF_BLOCK); }
END_TEST
START_TEST(test_attribution_fd_block) { check_fd(SCALAR_PATH_BLOCK); }
END_TEST

/* ---- the SAE pair spliced by hand: the full circuit of clean mode ---- */

typedef struct splice {
    const scalar_sae *D;
    int path;
    const float *mid; /* clean resid_mid (FF layer) */
} splice;

static scalar_status splice_d(void *user, int32_t layer, int32_t kind, float *act, int64_t n,
                              int64_t d)
{
    splice *s = user;
    (void)layer, (void)kind;
    float *vals = malloc((size_t)(n * K) * sizeof *vals);
    int32_t *idx = malloc((size_t)(n * K) * sizeof *idx);
    scalar_status st = scalar_sae_encode(s->D, act, n, vals, idx);
    if (st == SCALAR_OK)
        st = scalar_sae_decode(s->D, vals, idx, n, K, act);
    free(vals);
    free(idx);
    (void)d;
    return st;
}

static double kl_by_hand(const float *p_logits, const float *q_logits, int64_t n, int64_t V)
{
    double total = 0.0;
    for (int64_t t = 0; t < n; t++) {
        const float *a = p_logits + t * V, *b = q_logits + t * V;
        double ma = a[0], mb = b[0], sa = 0, sb = 0;
        for (int64_t v = 1; v < V; v++) {
            ma = a[v] > ma ? a[v] : ma;
            mb = b[v] > mb ? b[v] : mb;
        }
        for (int64_t v = 0; v < V; v++) {
            sa += exp(a[v] - ma);
            sb += exp(b[v] - mb);
        }
        for (int64_t v = 0; v < V; v++) {
            double p = exp(a[v] - ma) / sa, q = exp(b[v] - mb) / sb;
            total += p * (log(p + 1e-8) - log(q + 1e-8));
        }
    }
    return total / (double)n;
}

static double pair_splice_kl(scalar_model *m, const scalar_sae *U, const scalar_sae *D, int path,
                             const int32_t *ids, int nseq)
{
    int64_t n = (int64_t)nseq * T, V = 32;
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, m, nseq, T, 0));
    float *clean = malloc((size_t)(n * V) * sizeof *clean);
    float *q = malloc((size_t)(n * V) * sizeof *q);
    float *act = malloc((size_t)(n * C) * sizeof *act);
    float *rec = malloc((size_t)(n * C) * sizeof *rec);
    float *vals = malloc((size_t)(n * K) * sizeof *vals);
    int32_t *idx = malloc((size_t)(n * K) * sizeof *idx);
    OK(scalar_model_forward(m, ws, ids, NULL, nseq, T, clean, NULL));
    OK(scalar_model_workspace_read(ws, LAYER, kind_u[path], act, (size_t)(n * C)));
    OK(scalar_sae_encode(U, act, n, vals, idx));
    OK(scalar_sae_decode(U, vals, idx, n, K, rec));
    splice s = {D, path, NULL};
    if (path == SCALAR_PATH_FF_BLOCK) {
        /* the path's input is U's reconstruction, skip path included */
        OK(scalar_model_workspace_set_replacement(ws, LAYER, SCALAR_HOOK_RESID_MID, rec));
    } else {
        OK(scalar_model_workspace_set_replacement(ws, LAYER, kind_u[path], rec));
    }
    OK(scalar_model_workspace_set_hook(ws, LAYER, kind_d[path], splice_d, &s));
    OK(scalar_model_forward(m, ws, ids, NULL, nseq, T, q, NULL));
    double kl = kl_by_hand(clean, q, n, V);
    free(clean), free(q), free(act), free(rec), free(vals), free(idx);
    scalar_model_workspace_free(ws);
    return kl;
}

static void check_all_edges(int path)
{
    scalar_ctx *ctx = new_ctx();
    scalar_model *m = tiny_model(ctx);
    scalar_sae *U = rand_sae(ctx, FU, K, hook_u[path], 0.8f);
    scalar_sae *D = rand_sae(ctx, FD, K, hook_d[path], 0.8f);
    scalar_evaluator_options o;
    OK(scalar_evaluator_options_init(&o, sizeof o));
    o.bootstrap = 200;
    scalar_evaluator *ev = NULL;
    OK(scalar_evaluator_create(&ev, m, U, D, path, LAYER, &o));
    int32_t ids[3 * T];
    make_ids(ids, 3 * T, 5 + path);
    OK(scalar_evaluator_attribute(ev, ids, 3, T));
    OK(scalar_evaluator_curve(ev, ids, 3, T, NULL, 0));
    int64_t G = scalar_evaluator_n_points(ev);
    ck_assert_int_gt(G, 2);
    int64_t *edges = malloc((size_t)G * sizeof *edges);
    double *mean = malloc((size_t)G * sizeof *mean), *full = malloc((size_t)G * sizeof *full);
    double *lo = malloc((size_t)G * sizeof *lo), *hi = malloc((size_t)G * sizeof *hi);
    OK(scalar_evaluator_read_curve(ev, SCALAR_CURVE_KL, edges, mean, lo, hi, (size_t)G));
    OK(scalar_evaluator_read_curve(ev, SCALAR_CURVE_KL_FULL, NULL, full, NULL, NULL, (size_t)G));
    ck_assert_int_eq(edges[G - 1], FU * FD); /* clean grid ends at every edge */
    double sc[SCALAR_SCORE_COUNT];
    OK(scalar_evaluator_scores(ev, sc, SCALAR_SCORE_COUNT));
    ck_assert_msg(fabs(full[G - 1]) < 1e-6, "appendix KL with every edge: %g", full[G - 1]);
    ck_assert_msg(fabs(mean[G - 1] - sc[SCALAR_SCORE_FULL_KL]) < 1e-6, "%g vs %g", mean[G - 1],
                  sc[SCALAR_SCORE_FULL_KL]);
    double hand = pair_splice_kl(m, U, D, path, ids, 3);
    ck_assert_msg(fabs(hand - sc[SCALAR_SCORE_FULL_KL]) <= 1e-5 * (1.0 + hand),
                  "path %d: full circuit KL %g, SAE pair spliced by hand %g", path,
                  sc[SCALAR_SCORE_FULL_KL], hand);
    for (int64_t g = 0; g < G; g++) {
        ck_assert(lo[g] <= mean[g] + 1e-12 && mean[g] <= hi[g] + 1e-12);
        ck_assert(mean[g] >= -1e-6);
    }
    ck_assert_double_eq_tol(sc[SCALAR_SCORE_S_REL], sc[SCALAR_SCORE_S_ABS] / (FU * FD), 1e-12);
    free(edges), free(mean), free(full), free(lo), free(hi);
    scalar_evaluator_free(ev);
    scalar_sae_free(U);
    scalar_sae_free(D);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}

START_TEST(test_all_edges_ff) { check_all_edges(SCALAR_PATH_FF_LAYER); }
END_TEST
START_TEST(test_all_edges_mlpblock) { check_all_edges(SCALAR_PATH_FF_BLOCK); }
END_TEST
START_TEST(test_all_edges_block) { check_all_edges(SCALAR_PATH_BLOCK); }
END_TEST

/* ---- the PyTorch oracle's fixture (tests/reference/fixtures/scalar_tiny) ---- */

typedef struct fx_case {
    const char *name, *U, *D;
    int32_t path, parity, kind, steps;
} fx_case;

static const fx_case fx_cases[] = {
    {"ff.clean.grad5", "ff_U32", "ff_D48", 0, 0, 0, 5},
    {"ff.parity.grad5", "ff_U32", "ff_D48", 0, 1, 0, 5},
    {"ff.clean.jacobian", "ff_U32", "ff_D48", 0, 0, 1, 1},
    {"ff.parity.grad1", "ff_U32", "ff_D48", 0, 1, 0, 1},
    {"ff.clean.grad5.eq", "ff_U32", "ff_D32", 0, 0, 0, 5},
    {"ff.parity.grad5.eq", "ff_U32", "ff_D32", 0, 1, 0, 5},
    {"mlpblock.clean.grad5", "mlpblock_U32", "mlpblock_D48", 1, 0, 0, 5},
    {"mlpblock.parity.grad5", "mlpblock_U32", "mlpblock_D48", 1, 1, 0, 5},
    {"mlpblock.clean.jacobian", "mlpblock_U32", "mlpblock_D48", 1, 0, 1, 1},
    {"mlpblock.clean.grad5.eq", "mlpblock_U32", "mlpblock_D32", 1, 0, 0, 5},
    {"mlpblock.parity.grad5.eq", "mlpblock_U32", "mlpblock_D32", 1, 1, 0, 5},
    {"block.clean.grad5", "block_U32", "block_D48", 2, 0, 0, 5},
    {"block.parity.grad5", "block_U32", "block_D48", 2, 1, 0, 5},
    {"block.clean.jacobian", "block_U32", "block_D48", 2, 0, 1, 1},
    {"block.clean.grad5.eq", "block_U32", "block_D32", 2, 0, 0, 5},
    {"block.parity.grad5.eq", "block_U32", "block_D32", 2, 1, 0, 5},
};

static const char *fx_dir(void)
{
    static char dir[1024];
    const char *src = getenv("SCALAR_SRC");
    snprintf(dir, sizeof dir, "%s/tests/reference/fixtures/scalar_tiny", src && *src ? src : ".");
    return dir;
}

/* Tensor `name` of the fixture: floats (F32) or raw int32 (I32), malloc'ed. */
static void *fx_tensor(scalar_safetensors *st, const char *case_name, const char *field,
                       size_t *n)
{
    char name[160];
    size_t idx;
    if (case_name)
        snprintf(name, sizeof name, "%s.%s", case_name, field);
    else
        snprintf(name, sizeof name, "%s", field);
    ck_assert_msg(scalar_safetensors_find(&idx, st, name) == SCALAR_OK, "fixture lacks %s", name);
    *n = (size_t)scalar_safetensors_numel(st, idx);
    const void *data;
    size_t bytes;
    OK(scalar_safetensors_data(&data, &bytes, st, idx));
    void *out = malloc(bytes);
    memcpy(out, data, bytes);
    return out;
}

static double fx_rel(const float *x, const float *ref, size_t n)
{
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        err += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        norm += (double)ref[i] * ref[i];
    }
    return norm > 0.0 ? sqrt(err / norm) : sqrt(err);
}

START_TEST(test_fixture_case)
{
    const fx_case *c = &fx_cases[_i];
    char path[1200];
    scalar_ctx *ctx = new_ctx();
    scalar_model *m = NULL;
    OK(scalar_model_load(&m, ctx, fx_dir()));
    scalar_sae *U = NULL, *D = NULL;
    snprintf(path, sizeof path, "%s/sae/%s", fx_dir(), c->U);
    OK(scalar_sae_load(&U, ctx, path));
    snprintf(path, sizeof path, "%s/sae/%s", fx_dir(), c->D);
    OK(scalar_sae_load(&D, ctx, path));
    scalar_safetensors *st = NULL;
    snprintf(path, sizeof path, "%s/expected.safetensors", fx_dir());
    OK(scalar_safetensors_open(&st, ctx, path));
    size_t n_attr, n_eval, nA, n_order, n_grid, n_kl, n_klf, n_full;
    int32_t *ids_attr = fx_tensor(st, NULL, "ids_attr", &n_attr);
    int32_t *ids_eval = fx_tensor(st, NULL, "ids_eval", &n_eval);
    float *A_ref = fx_tensor(st, c->name, "A", &nA);
    int32_t *order32 = fx_tensor(st, c->name, "order", &n_order);
    int32_t *grid = fx_tensor(st, c->name, "grid", &n_grid);
    float *kl_ref = fx_tensor(st, c->name, "kl", &n_kl);
    float *klf_ref = fx_tensor(st, c->name, "kl_full", &n_klf);
    float *full_ref = fx_tensor(st, c->name, "full_kl", &n_full);

    scalar_evaluator_options o;
    OK(scalar_evaluator_options_init(&o, sizeof o));
    o.quirks = c->parity ? SCALAR_QUIRKS_PARITY : 0;
    o.attribution = c->kind ? SCALAR_ATTR_JACOBIAN : SCALAR_ATTR_GRADIENT_PATH;
    o.steps = c->steps;
    o.bootstrap = 0;
    scalar_evaluator *ev = NULL;
    OK(scalar_evaluator_create(&ev, m, U, D, c->path, 0, &o));
    OK(scalar_evaluator_attribute(ev, ids_attr, 4, 16));
    float *A = malloc(nA * sizeof *A);
    OK(scalar_evaluator_read_attribution(ev, A, nA));
    double eA = fx_rel(A, A_ref, nA);
    ck_assert_msg(eA <= 1e-4, "%s: attribution error %.3g > 1e-4", c->name, eA);

    /* our order against the oracle's on the positive scores: equal except
     * swaps of scores within 1e-5 relative (float32 can order near-ties either way) */
    int64_t *ours = malloc(n_order * sizeof *ours);
    OK(scalar_evaluator_read_order(ev, ours, n_order));
    for (size_t e = 0; e < n_order && A_ref[order32[e]] > 0.0f; e++) {
        float a = A_ref[ours[e]], r = A_ref[order32[e]];
        ck_assert_msg(ours[e] == order32[e] || fabsf(a - r) <= 1e-5f * r,
                      "%s: order[%zu] = %lld (A %g), oracle %d (A %g)", c->name, e,
                      (long long)ours[e], (double)a, (int)order32[e], (double)r);
    }

    /* the curve with the oracle's order */
    for (size_t e = 0; e < n_order; e++)
        ours[e] = order32[e];
    OK(scalar_evaluator_curve(ev, ids_eval, 3, 16, ours, (int64_t)n_order));
    int64_t G = scalar_evaluator_n_points(ev);
    ck_assert_int_eq(G, (int64_t)n_grid);
    int64_t *edges = malloc((size_t)G * sizeof *edges);
    OK(scalar_evaluator_read_curve(ev, SCALAR_CURVE_KL, edges, NULL, NULL, NULL, (size_t)G));
    for (int64_t g = 0; g < G; g++)
        ck_assert_int_eq(edges[g], grid[g]);
    float *kl = malloc(n_kl * sizeof *kl), *klf = malloc(n_klf * sizeof *klf);
    OK(scalar_evaluator_read_token_kl(ev, SCALAR_CURVE_KL, kl, n_kl));
    OK(scalar_evaluator_read_token_kl(ev, SCALAR_CURVE_KL_FULL, klf, n_klf));
    double ek = fx_rel(kl, kl_ref, n_kl), ef = fx_rel(klf, klf_ref, n_klf);
    ck_assert_msg(ek <= 1e-4, "%s: KL curve error %.3g > 1e-4", c->name, ek);
    ck_assert_msg(ef <= 1e-4, "%s: appendix curve error %.3g > 1e-4", c->name, ef);
    double sc[SCALAR_SCORE_COUNT], full_mean = 0.0;
    OK(scalar_evaluator_scores(ev, sc, SCALAR_SCORE_COUNT));
    for (size_t t = 0; t < n_full; t++)
        full_mean += full_ref[t] / (double)n_full;
    ck_assert_msg(fabs(sc[SCALAR_SCORE_FULL_KL] - full_mean) <= 1e-4 * full_mean,
                  "%s: full-circuit KL %g, oracle %g", c->name, sc[SCALAR_SCORE_FULL_KL],
                  full_mean);

    free(ids_attr), free(ids_eval), free(A_ref), free(order32), free(grid), free(kl_ref);
    free(klf_ref), free(full_ref), free(A), free(ours), free(edges), free(kl), free(klf);
    scalar_evaluator_free(ev);
    scalar_safetensors_free(st);
    scalar_sae_free(U);
    scalar_sae_free(D);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

Suite *scalar_evaluator_suite(void)
{
    Suite *s = suite_create("evaluator");
    TCase *tc = tcase_create("attribution");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_attribution_fd_ff);
    tcase_add_test(tc, test_attribution_fd_mlpblock);
    tcase_add_test(tc, test_attribution_fd_block);
    suite_add_tcase(s, tc);
    tc = tcase_create("curve");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_all_edges_ff);
    tcase_add_test(tc, test_all_edges_mlpblock);
    tcase_add_test(tc, test_all_edges_block);
    suite_add_tcase(s, tc);
    tc = tcase_create("fixture");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_fixture_case, 0, (int)(sizeof fx_cases / sizeof fx_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}
