/*
 * check_sae_train.c - Staircase groups and the SAE trainer: losses and every
 * gradient against the PyTorch fixture (tests/reference/fixtures/sae_tiny:
 * topk, ties, share, detach, noshare), the Adam step, training that learns,
 * group files, member views, streaming from a model, checkpoints, bad calls.
 *
 * Tolerances: the fixture's own, norm-wise relative 1e-4 per tensor (its
 * outputs are float64 rounded to float; ours are float sums over d_in = 8
 * and 19 tokens); top-k indices exactly equal.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "suites.h"

#define OK(x) ck_assert_int_eq((x), SCALAR_OK)
#define FIX_TOL 1e-4

static scalar_ctx *new_ctx(int32_t n_threads)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    OK(scalar_ctx_options_init(&o, sizeof o));
    o.n_threads = n_threads;
    OK(scalar_ctx_create(&ctx, &o));
    return ctx;
}

static scalar_sae_config base_config(int32_t d_in, int32_t d_sae, int32_t k)
{
    scalar_sae_config c;
    OK(scalar_sae_config_init(&c, sizeof c));
    c.d_in = d_in;
    c.d_sae = d_sae;
    c.k = k;
    return c;
}

/* ---- the fixture ---- */

typedef struct fixture {
    scalar_ctx *ctx;
    scalar_safetensors *st;
} fixture;

static void fixture_open(fixture *f)
{
    char path[1200];
    const char *src = getenv("SCALAR_SRC");
    snprintf(path, sizeof path, "%s/tests/reference/fixtures/sae_tiny/sae_fixture.safetensors",
             src && *src ? src : ".");
    f->ctx = new_ctx(1);
    OK(scalar_safetensors_open(&f->st, f->ctx, path));
}

static void fixture_close(fixture *f)
{
    scalar_safetensors_free(f->st);
    scalar_ctx_free(f->ctx);
}

/* Tensor `name` (printf-style) as malloc'ed floats; *n its size. */
static float *fx(const fixture *f, size_t *n, const char *fmt, const char *a, int j)
{
    char name[128];
    size_t idx;
    snprintf(name, sizeof name, fmt, a, j);
    ck_assert_msg(scalar_safetensors_find(&idx, f->st, name) == SCALAR_OK, "fixture lacks %s",
                  name);
    *n = (size_t)scalar_safetensors_numel(f->st, idx);
    float *buf = malloc(*n * sizeof *buf);
    ck_assert_ptr_nonnull(buf);
    OK(scalar_safetensors_read_f32(buf, *n, f->st, idx));
    return buf;
}

static double norm_rel(const float *x, const float *ref, size_t n)
{
    double err = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        err += ((double)x[i] - ref[i]) * ((double)x[i] - ref[i]);
        norm += (double)ref[i] * ref[i];
    }
    return norm > 0.0 ? sqrt(err / norm) : sqrt(err);
}

/* Write fixture tensor `src` into the group's tensor `dst`. */
static void load_param(const fixture *f, scalar_sae_group *g, const char *dst, const char *fmt,
                       const char *a, int j)
{
    size_t n;
    float *v = fx(f, &n, fmt, a, j);
    OK(scalar_sae_group_param_write(g, dst, v, n));
    free(v);
}

/* The trainer's gradient of group `gi`'s tensor `name` against fixture tensor `fmt`. */
static void check_grad(const fixture *f, const scalar_sae_trainer *t, int32_t gi,
                       const char *name, const char *fmt, const char *a, int j)
{
    size_t n;
    float *ref = fx(f, &n, fmt, a, j);
    float *ours = malloc(n * sizeof *ours);
    OK(scalar_sae_trainer_read_grad(t, gi, name, ours, n));
    double e = norm_rel(ours, ref, n);
    ck_assert_msg(e <= FIX_TOL, "%s grad %s (group %d): norm-wise error %.3g > %.0e", a, name,
                  (int)gi, e, FIX_TOL);
    free(ours);
    free(ref);
}

/* One case of one group (topk, ties, share, detach): loss, codes, gradients. */
static void fixture_group_case(const char *c, int32_t n_members, const int32_t *sizes, int32_t d_sae,
                               int32_t mode)
{
    fixture f;
    fixture_open(&f);
    scalar_sae_config base = base_config(8, d_sae, 3);
    scalar_sae_group *g = NULL;
    OK(scalar_sae_group_create(&g, f.ctx, &base, n_members, sizes, NULL, mode));
    int single = n_members == 1;
    load_param(&f, g, "W_enc", "%s.W_enc", c, 0);
    load_param(&f, g, "W_dec", "%s.W_dec", c, 0);
    float *x[3];
    size_t n_x;
    for (int j = 0; j < n_members; j++) {
        char b_enc[24], b_dec[24];
        snprintf(b_enc, sizeof b_enc, "b_enc.%d", j);
        snprintf(b_dec, sizeof b_dec, "b_dec.%d", j);
        load_param(&f, g, b_enc, single ? "%s.b_enc" : "%s.sae%d.b_enc", c, j);
        load_param(&f, g, b_dec, single ? "%s.b_dec" : "%s.sae%d.b_dec", c, j);
        x[j] = fx(&f, &n_x, single ? "%s.x" : "%s.sae%d.x", c, j);
    }
    scalar_sae_trainer *t = NULL;
    OK(scalar_sae_trainer_create(&t, NULL, &g, 1, 19, NULL));
    ck_assert_int_eq(scalar_sae_trainer_n_saes(t), n_members);
    float losses[3];
    OK(scalar_sae_trainer_compute_acts(t, (const float *const *)x, 19, losses));
    for (int j = 0; j < n_members; j++) {
        size_t n;
        float *ref_loss = fx(&f, &n, single ? "%s.loss" : "%s.sae%d.loss", c, j);
        ck_assert_msg(fabs(losses[j] - ref_loss[0]) <= FIX_TOL * fabs(ref_loss[0]),
                      "%s SAE %d loss %.9g vs %.9g", c, j, (double)losses[j],
                      (double)ref_loss[0]);
        free(ref_loss);
        /* the member view encodes as the fixture's top-k */
        scalar_sae *m = NULL;
        OK(scalar_sae_group_get_sae(&m, g, j));
        float vals[19 * 3], *ref_vals = fx(&f, &n, single ? "%s.values" : "%s.sae%d.values", c, j);
        int32_t idx[19 * 3];
        size_t ni;
        float *ref_idx = fx(&f, &ni, single ? "%s.indices" : "%s.sae%d.indices", c, j);
        OK(scalar_sae_encode(m, x[j], 19, vals, idx));
        for (size_t e = 0; e < ni; e++)
            ck_assert_msg(idx[e] == (int32_t)ref_idx[e], "%s SAE %d index %zu: %d vs %d", c, j, e,
                          (int)idx[e], (int)ref_idx[e]);
        /* dead latents since creation: those no token kept with a value > 0 */
        int fired[64] = {0}, alive = 0;
        for (size_t e = 0; e < ni; e++)
            if (vals[e] > 0.0f && !fired[idx[e]])
                fired[idx[e]] = 1, alive++;
        int64_t dead[3];
        OK(scalar_sae_trainer_dead_latents(t, dead, 0));
        ck_assert_int_eq(dead[j], sizes[j] - alive);
        ck_assert(norm_rel(vals, ref_vals, n) <= FIX_TOL);
        free(ref_vals);
        free(ref_idx);
        scalar_sae_free(m);
    }
    check_grad(&f, t, 0, "W_enc", "%s.grad.W_enc", c, 0);
    check_grad(&f, t, 0, "W_dec", "%s.grad.W_dec", c, 0);
    for (int j = 0; j < n_members; j++) {
        char b_enc[24], b_dec[24];
        snprintf(b_enc, sizeof b_enc, "b_enc.%d", j);
        snprintf(b_dec, sizeof b_dec, "b_dec.%d", j);
        check_grad(&f, t, 0, b_enc, single ? "%s.grad.b_enc" : "%s.grad.sae%d.b_enc", c, j);
        check_grad(&f, t, 0, b_dec, single ? "%s.grad.b_dec" : "%s.grad.sae%d.b_dec", c, j);
    }
    int64_t dead[3];
    OK(scalar_sae_trainer_dead_latents(t, dead, 1)); /* reset: a new window starts */
    OK(scalar_sae_trainer_dead_latents(t, dead, 0));
    for (int j = 0; j < n_members; j++)
        ck_assert_int_eq(dead[j], sizes[j]);
    /* the global norm a step reports is the fixture's (before clipping) */
    size_t n;
    float *ref_norm = fx(&f, &n, "%s.grad_norm", c, 0), norm = 0.0f;
    OK(scalar_sae_trainer_step_acts(t, (const float *const *)x, 19, NULL, &norm));
    ck_assert_msg(fabs(norm - ref_norm[0]) <= FIX_TOL * ref_norm[0], "%s grad norm %.9g vs %.9g",
                  c, (double)norm, (double)ref_norm[0]);
    free(ref_norm);
    for (int j = 0; j < n_members; j++)
        free(x[j]);
    scalar_sae_trainer_free(t);
    scalar_sae_group_free(g);
    fixture_close(&f);
}

START_TEST(test_fixture_topk)
{
    const int32_t sizes[] = {32};
    fixture_group_case("topk", 1, sizes, 32, SCALAR_SAE_GROUP_SHARE);
}
END_TEST

START_TEST(test_fixture_ties)
{
    const int32_t sizes[] = {16};
    fixture_group_case("ties", 1, sizes, 16, SCALAR_SAE_GROUP_SHARE);
}
END_TEST

START_TEST(test_fixture_staircase_share)
{
    const int32_t sizes[] = {16, 32, 48};
    fixture_group_case("share", 3, sizes, 48, SCALAR_SAE_GROUP_SHARE);
}
END_TEST

START_TEST(test_fixture_staircase_detach)
{
    const int32_t sizes[] = {16, 32, 48};
    fixture_group_case("detach", 3, sizes, 48, SCALAR_SAE_GROUP_DETACH);
}
END_TEST

/* noshare: three one-member groups in one trainer (one global clip). */
START_TEST(test_fixture_noshare)
{
    fixture f;
    fixture_open(&f);
    const int32_t sizes[] = {16, 32, 48};
    scalar_sae_group *g[3];
    float *x[3];
    size_t n;
    for (int j = 0; j < 3; j++) {
        scalar_sae_config base = base_config(8, sizes[j], 3);
        OK(scalar_sae_group_create(&g[j], f.ctx, &base, 1, &sizes[j], NULL,
                                   SCALAR_SAE_GROUP_SHARE));
        load_param(&f, g[j], "W_enc", "%s.sae%d.W_enc", "noshare", j);
        load_param(&f, g[j], "W_dec", "%s.sae%d.W_dec", "noshare", j);
        load_param(&f, g[j], "b_enc.0", "%s.sae%d.b_enc", "noshare", j);
        load_param(&f, g[j], "b_dec.0", "%s.sae%d.b_dec", "noshare", j);
        x[j] = fx(&f, &n, "%s.sae%d.x", "noshare", j);
    }
    scalar_sae_trainer *t = NULL;
    OK(scalar_sae_trainer_create(&t, NULL, g, 3, 19, NULL));
    OK(scalar_sae_trainer_compute_acts(t, (const float *const *)x, 19, NULL));
    for (int j = 0; j < 3; j++) {
        check_grad(&f, t, j, "W_enc", "%s.grad.sae%d.W_enc", "noshare", j);
        check_grad(&f, t, j, "W_dec", "%s.grad.sae%d.W_dec", "noshare", j);
        check_grad(&f, t, j, "b_enc.0", "%s.grad.sae%d.b_enc", "noshare", j);
        check_grad(&f, t, j, "b_dec.0", "%s.grad.sae%d.b_dec", "noshare", j);
    }
    float norm = 0.0f, *ref_norm = fx(&f, &n, "%s.grad_norm", "noshare", 0);
    OK(scalar_sae_trainer_step_acts(t, (const float *const *)x, 19, NULL, &norm));
    ck_assert(fabs(norm - ref_norm[0]) <= FIX_TOL * ref_norm[0]);
    free(ref_norm);
    for (int j = 0; j < 3; j++) {
        free(x[j]);
        scalar_sae_group_free(g[j]);
    }
    scalar_sae_trainer_free(t); /* after the caller's group references: it holds its own */
    fixture_close(&f);
}
END_TEST

/* ---- JSAE pairs against the fixture (jsae_ff, jsae_block, jsae_ff_kout4) ---- */

/* A one-layer model (C 8, F 32) whose ln_2 and MLP are the fixture's. */
static scalar_model *jsae_model(const fixture *f, const char *c, int block)
{
    scalar_model_config mc;
    OK(scalar_model_config_init(&mc, sizeof mc));
    mc.n_layer = 1, mc.n_head = 2, mc.n_embd = 8, mc.d_mlp = 32, mc.block_size = 32;
    mc.vocab_size = 16;
    scalar_model *m = NULL;
    OK(scalar_model_create(&m, f->ctx, &mc));
    static const char *const names[][2] = {{"h.0.mlp.c_fc.weight", "mlp.c_fc.weight"},
                                           {"h.0.mlp.c_fc.bias", "mlp.c_fc.bias"},
                                           {"h.0.mlp.c_proj.weight", "mlp.c_proj.weight"},
                                           {"h.0.mlp.c_proj.bias", "mlp.c_proj.bias"},
                                           {"h.0.ln_2.weight", "ln_2.weight"},
                                           {"h.0.ln_2.bias", "ln_2.bias"}};
    for (int i = 0; i < (block ? 6 : 4); i++) {
        size_t n;
        char fmt[64];
        snprintf(fmt, sizeof fmt, "%%s.%s", names[i][1]);
        float *v = fx(f, &n, fmt, c, 0);
        OK(scalar_model_param_write(m, names[i][0], v, n));
        free(v);
    }
    return m;
}

static void jsae_case(const char *c, int block, int32_t k_out)
{
    fixture f;
    fixture_open(&f);
    scalar_model *model = jsae_model(&f, c, block);
    const int32_t size = 16;
    const char *hooks[2] = {block ? "blocks.0.hook_resid_mid" : "blocks.0.hook_mlp_in",
                            block ? "blocks.0.hook_resid_post" : "blocks.0.hook_mlp_out"};
    static const char *const side[2] = {"in", "out"};
    scalar_sae_group *g[2];
    for (int s = 0; s < 2; s++) {
        scalar_sae_config base = base_config(8, size, s ? k_out : 3);
        OK(scalar_sae_group_create(&g[s], f.ctx, &base, 1, &size, &hooks[s], 0));
        char fmt[64];
        static const char *const p[4][2] = {{"W_enc", "W_enc"}, {"W_dec", "W_dec"},
                                            {"b_enc.0", "b_enc"}, {"b_dec.0", "b_dec"}};
        for (int i = 0; i < 4; i++) {
            snprintf(fmt, sizeof fmt, "%%s.%s.%s", side[s], p[i][1]);
            load_param(&f, g[s], p[i][0], fmt, c, 0);
        }
    }
    size_t n;
    float *x = fx(&f, &n, "%s.x", c, 0), *y = fx(&f, &n, "%s.y", c, 0);
    const float *acts[2] = {x, y};
    for (int mode = 0; mode < 2; mode++) {
        scalar_sae_trainer *t = NULL;
        OK(scalar_sae_trainer_create(&t, model, g, 2, 19, NULL));
        float *lam = fx(&f, &n, mode ? "%s.mean.lambda" : "%s.lambda", c, 0);
        OK(scalar_sae_trainer_add_jacobian(t, 0, 1, block ? SCALAR_JSAE_FF_BLOCK
                                                          : SCALAR_JSAE_FF_LAYER,
                                           0, lam[0], mode ? SCALAR_JSAE_MEAN : SCALAR_JSAE_SUM));
        ck_assert_int_eq(scalar_sae_trainer_n_jacobians(t), 1);
        float losses[2], pen;
        OK(scalar_sae_trainer_compute_acts(t, acts, 19, losses));
        OK(scalar_sae_trainer_jacobian_penalties(t, &pen));
        float *ref_loss = fx(&f, &n, mode ? "%s.mean.loss" : "%s.loss", c, 0);
        double total = (double)losses[0] + losses[1] + pen;
        ck_assert_msg(fabs(total - ref_loss[0]) <= FIX_TOL * fabs(ref_loss[0]),
                      "%s mode %d: loss %.9g vs %.9g", c, mode, total, (double)ref_loss[0]);
        float *P = fx(&f, &n, "%s.penalty", c, 0);
        double want_pen = mode ? (double)lam[0] * P[0] / 19.0 : (double)lam[0] * P[0];
        ck_assert_msg(fabs(pen - want_pen) <= FIX_TOL * want_pen, "%s mode %d: penalty %.9g vs "
                      "%.9g", c, mode, (double)pen, want_pen);
        static const char *const gp[4][2] = {{"W_enc", "W_enc"}, {"W_dec", "W_dec"},
                                             {"b_enc.0", "b_enc"}, {"b_dec.0", "b_dec"}};
        for (int s = 0; s < 2; s++)
            for (int i = 0; i < 4; i++) {
                char fmt[64];
                snprintf(fmt, sizeof fmt, "%%s.%sgrad.%s.%s", mode ? "mean." : "", side[s],
                         gp[i][1]);
                check_grad(&f, t, s, gp[i][0], fmt, c, 0);
            }
        free(lam);
        free(ref_loss);
        free(P);
        scalar_sae_trainer_free(t);
    }
    free(x);
    free(y);
    scalar_sae_group_free(g[0]);
    scalar_sae_group_free(g[1]);
    scalar_model_free(model);
    fixture_close(&f);
}

START_TEST(test_fixture_jsae_ff_layer)
{
    jsae_case("jsae_ff", 0, 3);
}
END_TEST

START_TEST(test_fixture_jsae_ff_block)
{
    jsae_case("jsae_block", 1, 3);
}
END_TEST

START_TEST(test_fixture_jsae_k_out_differs)
{
    jsae_case("jsae_ff_kout4", 0, 4);
}
END_TEST

/* ---- the update ---- */

/* Adam's first step moves every parameter by -lr * g / (|g| + eps) (bias
 * corrections cancel), the clip coefficient cancelling too. */
START_TEST(test_first_step_is_lr_times_sign)
{
    fixture f;
    fixture_open(&f);
    const int32_t sizes[] = {32};
    scalar_sae_config base = base_config(8, 32, 3);
    scalar_sae_group *g = NULL;
    OK(scalar_sae_group_create(&g, f.ctx, &base, 1, sizes, NULL, SCALAR_SAE_GROUP_SHARE));
    size_t n;
    float *x = fx(&f, &n, "%s.x", "topk", 0);
    scalar_sae_trainer_options o;
    OK(scalar_sae_trainer_options_init(&o, sizeof o));
    o.warmup_steps = 4;
    o.grad_clip = 0.5f; /* below the gradient norm: the clip acts */
    scalar_sae_trainer *t = NULL;
    OK(scalar_sae_trainer_create(&t, NULL, &g, 1, 19, &o));
    ck_assert_float_eq(scalar_sae_trainer_lr(t, 0), 2.5e-4f);
    float before[8 * 32], after[8 * 32], grad[8 * 32], norm;
    OK(scalar_sae_group_param_read(g, "W_enc", before, 256));
    OK(scalar_sae_trainer_step_acts(t, (const float *const *)&x, 19, NULL, &norm));
    ck_assert(norm > 0.5f);
    OK(scalar_sae_trainer_read_grad(t, 0, "W_enc", grad, 256));
    OK(scalar_sae_group_param_read(g, "W_enc", after, 256));
    int moved = 0;
    for (int i = 0; i < 256; i++) {
        double g_clipped = grad[i] * (0.5 / (norm + 1e-6));
        double want = -2.5e-4 * g_clipped / (fabs(g_clipped) + 1e-8);
        ck_assert_msg(fabs((after[i] - before[i]) - want) <= 1e-6, "W_enc[%d] moved %g, want %g",
                      i, (double)(after[i] - before[i]), want);
        moved += grad[i] != 0.0f;
    }
    ck_assert_int_gt(moved, 0);
    ck_assert_int_eq(scalar_sae_trainer_steps(t), 1);
    free(x);
    scalar_sae_trainer_free(t);
    scalar_sae_group_free(g);
    fixture_close(&f);
}
END_TEST

/* Activations that are sparse sums of 24 directions in 16 dimensions: a
 * TopK SAE of 64 latents, k 4, learns them (loss falls by more than 4x). */
static void make_sparse_data(float *x, int64_t n, uint64_t seed)
{
    scalar_ctx *ctx = new_ctx(1);
    static float dirs[24 * 16];
    uint32_t s = (uint32_t)seed;
    for (int i = 0; i < 24 * 16; i++) {
        s = s * 1664525u + 1013904223u;
        dirs[i] = (float)(s >> 8) / (float)(1u << 23) - 1.0f;
    }
    for (int64_t t = 0; t < n; t++) {
        memset(x + t * 16, 0, 16 * sizeof(float));
        for (int a = 0; a < 3; a++) {
            s = s * 1664525u + 1013904223u;
            int d = (int)((s >> 8) % 24);
            s = s * 1664525u + 1013904223u;
            float amp = 0.5f + (float)(s >> 8) / (float)(1u << 24);
            for (int c = 0; c < 16; c++)
                x[t * 16 + c] += amp * dirs[d * 16 + c];
        }
    }
    scalar_ctx_free(ctx);
}

START_TEST(test_training_learns_sparse_directions)
{
    scalar_ctx *ctx = new_ctx(2);
    const int32_t sizes[] = {32, 64};
    scalar_sae_config base = base_config(16, 64, 4);
    scalar_sae_group *g = NULL;
    OK(scalar_sae_group_create(&g, ctx, &base, 2, sizes, NULL, SCALAR_SAE_GROUP_SHARE));
    scalar_sae_trainer_options o;
    OK(scalar_sae_trainer_options_init(&o, sizeof o));
    o.warmup_steps = 20;
    o.max_steps = 400;
    o.lr = 1e-2f;
    o.min_lr = 1e-3f;
    scalar_sae_trainer *t = NULL;
    OK(scalar_sae_trainer_create(&t, NULL, &g, 1, 512, &o));
    float *x = malloc(512 * 16 * sizeof *x);
    float first[2], last[2];
    for (int step = 0; step < 400; step++) {
        make_sparse_data(x, 512, (uint64_t)step + 1);
        const float *acts[2] = {x, x};
        OK(scalar_sae_trainer_step_acts(t, acts, 512, step == 0 ? first : last, NULL));
    }
    for (int j = 0; j < 2; j++)
        ck_assert_msg(last[j] < first[j] / 4, "SAE %d: loss %g -> %g", j, (double)first[j],
                      (double)last[j]);
    ck_assert_int_eq(scalar_sae_trainer_steps(t), 400);
    free(x);
    scalar_sae_trainer_free(t);
    scalar_sae_group_free(g);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- groups: files, views ---- */

START_TEST(test_group_save_load_bit_identical_and_member_saves_as_saelens)
{
    scalar_ctx *ctx = new_ctx(1);
    const int32_t sizes[] = {8, 24, 40};
    const char *hooks[] = {"blocks.0.hook_resid_pre", NULL, "blocks.1.hook_resid_pre"};
    scalar_sae_config base = base_config(12, 40, 5);
    base.seed = 7;
    scalar_sae_group *g = NULL, *back = NULL;
    OK(scalar_sae_group_create(&g, ctx, &base, 3, sizes, hooks, SCALAR_SAE_GROUP_DETACH));
    float b[24];
    for (int i = 0; i < 24; i++)
        b[i] = 0.01f * (float)i - 0.1f;
    OK(scalar_sae_group_param_write(g, "b_enc.1", b, 24));
    OK(scalar_sae_group_param_write(g, "b_dec.2", b, 12));
    const char *dir = test_tmp_path("group_roundtrip");
    OK(scalar_sae_group_save(g, dir));
    OK(scalar_sae_group_load(&back, ctx, dir));
    ck_assert_int_eq(scalar_sae_group_n_members(back), 3);
    ck_assert_int_eq(scalar_sae_group_mode(back), SCALAR_SAE_GROUP_DETACH);
    static const char *const names[] = {"W_enc", "W_dec", "b_enc.0", "b_dec.0", "b_enc.1",
                                        "b_dec.1", "b_enc.2", "b_dec.2"};
    float x1[12 * 40], x2[12 * 40];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        memset(x1, 0, sizeof x1);
        memset(x2, 0, sizeof x2);
        OK(scalar_sae_group_param_read(g, names[i], x1, 480));
        OK(scalar_sae_group_param_read(back, names[i], x2, 480));
        ck_assert_msg(memcmp(x1, x2, sizeof x1) == 0, "%s differs after the round trip", names[i]);
    }
    /* the group's matrices are those of a single SAE with the same seed */
    scalar_sae *single = NULL;
    OK(scalar_sae_create(&single, ctx, &base));
    OK(scalar_sae_param_read(single, "W_enc", x2, 480));
    OK(scalar_sae_group_param_read(g, "W_enc", x1, 480));
    ck_assert(memcmp(x1, x2, sizeof x1) == 0);
    /* member 1 alone, saved as SAELens, loads as a plain SAE with its slice */
    scalar_sae *m = NULL, *plain = NULL;
    OK(scalar_sae_group_get_sae(&m, back, 1));
    scalar_sae_config mc;
    OK(scalar_sae_config_init(&mc, sizeof mc));
    OK(scalar_sae_get_config(m, &mc));
    ck_assert_int_eq(mc.d_sae, 24);
    ck_assert_ptr_null(mc.hook_name);
    const char *mdir = test_tmp_path("group_member1");
    OK(scalar_sae_save(m, mdir));
    OK(scalar_sae_load(&plain, ctx, mdir));
    float we[12 * 24], we2[12 * 24];
    OK(scalar_sae_param_read(plain, "W_enc", we, 288));
    OK(scalar_sae_param_read(m, "W_enc", we2, 288));
    ck_assert(memcmp(we, we2, sizeof we) == 0);
    for (int i = 0; i < 12; i++)
        for (int c = 0; c < 24; c++)
            ck_assert(we[i * 24 + c] == x1[i * 40 + c]); /* the first 24 columns */
    float xin[3 * 12], v1[15], v2[15];
    int32_t i1[15], i2[15];
    for (int i = 0; i < 36; i++)
        xin[i] = (float)((i * 7) % 11) * 0.2f - 1.0f;
    OK(scalar_sae_encode(m, xin, 3, v1, i1));
    OK(scalar_sae_encode(plain, xin, 3, v2, i2));
    ck_assert(memcmp(v1, v2, sizeof v1) == 0 && memcmp(i1, i2, sizeof i1) == 0);
    /* a member handle keeps the group alive after the caller frees it */
    scalar_sae *m2 = NULL;
    OK(scalar_sae_group_get_sae(&m2, g, 2));
    scalar_sae_group_free(g);
    OK(scalar_sae_get_config(m2, &mc));
    ck_assert_str_eq(mc.hook_name, "blocks.1.hook_resid_pre");
    OK(scalar_sae_encode(m2, xin, 3, v1, i1));
    scalar_sae_free(m2);
    scalar_sae_free(m);
    scalar_sae_free(plain);
    scalar_sae_free(single);
    scalar_sae_group_free(back);
    scalar_ctx_free(ctx);
}
END_TEST

static void assert_error(scalar_status got, scalar_status want, const char *needle)
{
    ck_assert_int_eq(got, want);
    ck_assert_msg(strstr(scalar_last_error(), needle), "\"%s\" not in \"%s\"", needle,
                  scalar_last_error());
}

START_TEST(test_group_bad_arguments)
{
    scalar_ctx *ctx = new_ctx(1);
    scalar_sae_group *g = (scalar_sae_group *)1;
    scalar_sae_config base = base_config(8, 32, 3);
    const int32_t up[] = {16, 32}, flat[] = {16, 16}, small[] = {2, 32};
    const scalar_status E = SCALAR_E_INVALID_ARG;
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, flat, NULL, 0), E, "increase");
    ck_assert_ptr_null(g);
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, small, NULL, 0), E, ">= k");
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, up, NULL, 5), E, "mode");
    assert_error(scalar_sae_group_create(&g, ctx, &base, 0, up, NULL, 0), E, "n_members");
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, NULL, NULL, 0), E, "sizes");
    base.d_sae = 48;
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, up, NULL, 0), E, "largest");
    base = base_config(8, 32, 3);
    base.architecture = SCALAR_SAE_STANDARD;
    assert_error(scalar_sae_group_create(&g, ctx, &base, 2, up, NULL, 0), E, "TopK");
    base = base_config(8, 32, 3);
    OK(scalar_sae_group_create(&g, ctx, &base, 2, up, NULL, 0));
    scalar_sae *m = NULL;
    assert_error(scalar_sae_group_get_sae(&m, g, 2), E, "index 2");
    float buf[4];
    assert_error(scalar_sae_group_param_read(g, "b_enc.2", buf, 4), E, "no tensor");
    assert_error(scalar_sae_group_param_read(g, "b_enc.01", buf, 4), E, "no tensor");
    assert_error(scalar_sae_group_param_read(g, "W_enc", buf, 4), SCALAR_E_BUFSIZE, "capacity");
    assert_error(scalar_sae_group_param_write(g, "b_dec.0", buf, 4), E, "has 8 floats");
    float bias[8] = {0, 0, 0, NAN, 0, 0, 0, 0};
    assert_error(scalar_sae_group_param_write(g, "b_dec.0", bias, 8), SCALAR_E_NUMERIC,
                 "not finite");
    /* a single SAE folder is not a group, and the reverse */
    const char *dir = test_tmp_path("group_not_single");
    OK(scalar_sae_group_save(g, dir));
    scalar_sae *plain = NULL;
    ck_assert_int_ne(scalar_sae_load(&plain, ctx, dir), SCALAR_OK);
    scalar_sae *single = NULL;
    OK(scalar_sae_create(&single, ctx, &base));
    const char *sdir = test_tmp_path("single_not_group");
    OK(scalar_sae_save(single, sdir));
    scalar_sae_group *g2 = NULL;
    assert_error(scalar_sae_group_load(&g2, ctx, sdir), SCALAR_E_FORMAT, "format");
    /* trainer arguments */
    scalar_sae_trainer *t = NULL;
    scalar_sae_group *twice[2] = {g, g};
    assert_error(scalar_sae_trainer_create(&t, NULL, twice, 2, 10, NULL), E, "repeats");
    assert_error(scalar_sae_trainer_create(&t, NULL, &g, 1, 0, NULL), E, "max_tokens");
    scalar_sae_trainer_options o;
    OK(scalar_sae_trainer_options_init(&o, sizeof o));
    o.beta2 = 1.0f;
    assert_error(scalar_sae_trainer_create(&t, NULL, &g, 1, 10, &o), E, "betas");
    OK(scalar_sae_trainer_create(&t, NULL, &g, 1, 10, NULL));
    float x[11 * 8] = {0};
    const float *acts[2] = {x, NULL};
    assert_error(scalar_sae_trainer_read_grad(t, 0, "W_enc", buf, 4), E, "no gradient");
    assert_error(scalar_sae_trainer_compute_acts(t, acts, 10, NULL), E, "acts[1]");
    acts[1] = x;
    assert_error(scalar_sae_trainer_step_acts(t, acts, 11, NULL, NULL), E, "n_tokens 11");
    int32_t ids[4] = {0};
    assert_error(scalar_sae_trainer_step(t, ids, 1, 4, NULL, NULL), E, "without a model");
    x[3] = NAN;
    assert_error(scalar_sae_trainer_step_acts(t, acts, 10, NULL, NULL), SCALAR_E_NUMERIC,
                 "unchanged");
    ck_assert_int_eq(scalar_sae_trainer_steps(t), 0);
    scalar_sae_trainer_free(t);
    scalar_sae_free(single);
    scalar_sae_group_free(g);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- streaming from a model; checkpoints ---- */

static scalar_model *tiny_model(scalar_ctx *ctx)
{
    scalar_model_config mc;
    OK(scalar_model_config_init(&mc, sizeof mc));
    mc.n_layer = 2;
    mc.n_head = 2;
    mc.n_embd = 16;
    mc.block_size = 16;
    mc.vocab_size = 32;
    scalar_model *m = NULL;
    OK(scalar_model_create(&m, ctx, &mc));
    return m;
}

START_TEST(test_model_stream_matches_given_activations)
{
    scalar_ctx *ctx = new_ctx(2);
    scalar_model *model = tiny_model(ctx);
    const int32_t sizes[] = {32, 64, 96};
    const char *hooks[] = {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre",
                           "blocks.1.hook_resid_post"};
    scalar_sae_config base = base_config(16, 96, 4);
    scalar_sae_group *g = NULL;
    OK(scalar_sae_group_create(&g, ctx, &base, 3, sizes, hooks, SCALAR_SAE_GROUP_SHARE));
    scalar_sae_trainer *t = NULL;
    OK(scalar_sae_trainer_create(&t, model, &g, 1, 64, NULL));
    int32_t ids[4 * 16];
    for (int i = 0; i < 64; i++)
        ids[i] = (i * 13 + 5) % 32;
    float from_model[3], given[3];
    OK(scalar_sae_trainer_evaluate(t, ids, 4, 16, from_model));
    /* the same activations read from a workspace */
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, model, 4, 16, 0));
    OK(scalar_model_forward(model, ws, ids, NULL, 4, 16, NULL, NULL));
    float *x = malloc(3 * 64 * 16 * sizeof *x);
    const int32_t layer[] = {0, 1, 1}, kind[] = {SCALAR_HOOK_RESID_PRE, SCALAR_HOOK_RESID_PRE,
                                                 SCALAR_HOOK_RESID_POST};
    const float *acts[3];
    for (int j = 0; j < 3; j++) {
        OK(scalar_model_workspace_read(ws, layer[j], kind[j], x + j * 1024, 1024));
        acts[j] = x + j * 1024;
    }
    OK(scalar_sae_trainer_compute_acts(t, acts, 64, given));
    ck_assert(memcmp(from_model, given, sizeof given) == 0);
    float a[3], b[3];
    OK(scalar_sae_trainer_step(t, ids, 4, 16, a, NULL));
    ck_assert(memcmp(a, given, sizeof a) == 0);
    OK(scalar_sae_trainer_step(t, ids, 2, 16, b, NULL)); /* a smaller batch reuses the workspace */
    /* errors: a hook the model lacks, a width that is not n_embd */
    scalar_sae_trainer *bad = NULL;
    const char *far[] = {"blocks.0.hook_resid_pre", "blocks.5.hook_resid_pre",
                         "blocks.1.hook_mlp_out"};
    scalar_sae_group *g2 = NULL, *g3 = NULL;
    OK(scalar_sae_group_create(&g2, ctx, &base, 3, sizes, far, 0));
    assert_error(scalar_sae_trainer_create(&bad, model, &g2, 1, 64, NULL), SCALAR_E_INVALID_ARG,
                 "blocks.5.hook_resid_pre");
    scalar_sae_config wide = base_config(8, 96, 4);
    OK(scalar_sae_group_create(&g3, ctx, &wide, 3, sizes, hooks, 0));
    assert_error(scalar_sae_trainer_create(&bad, model, &g3, 1, 64, NULL), SCALAR_E_INVALID_ARG,
                 "n_embd");
    assert_error(scalar_sae_trainer_step(t, ids, 5, 16, NULL, NULL), SCALAR_E_INVALID_ARG,
                 "max_tokens");
    free(x);
    scalar_model_workspace_free(ws);
    scalar_sae_trainer_free(t);
    scalar_sae_group_free(g);
    scalar_sae_group_free(g2);
    scalar_sae_group_free(g3);
    scalar_model_free(model);
    scalar_ctx_free(ctx);
}
END_TEST

/* Save after 3 steps, restore into a fresh trainer on reloaded groups: the
 * next 2 steps give the bits of an uninterrupted run. */
START_TEST(test_checkpoint_resume_is_bit_identical)
{
    scalar_ctx *ctx = new_ctx(2);
    const int32_t sizes[] = {32, 64};
    scalar_sae_config base = base_config(16, 64, 4);
    scalar_sae_group *g = NULL, *g2 = NULL;
    OK(scalar_sae_group_create(&g, ctx, &base, 2, sizes, NULL, SCALAR_SAE_GROUP_DETACH));
    scalar_sae_trainer *t = NULL, *t2 = NULL;
    OK(scalar_sae_trainer_create(&t, NULL, &g, 1, 256, NULL));
    float *x = malloc(256 * 16 * sizeof *x);
    const float *acts[2] = {x, x};
    for (int step = 0; step < 3; step++) {
        make_sparse_data(x, 256, (uint64_t)step + 11);
        OK(scalar_sae_trainer_step_acts(t, acts, 256, NULL, NULL));
    }
    const char *gdir = test_tmp_path("resume_group"), *state = test_tmp_path("resume_state");
    OK(scalar_sae_group_save(g, gdir));
    OK(scalar_sae_trainer_save(t, state));
    OK(scalar_sae_group_load(&g2, ctx, gdir));
    OK(scalar_sae_trainer_create(&t2, NULL, &g2, 1, 256, NULL));
    OK(scalar_sae_trainer_load(t2, state));
    ck_assert_int_eq(scalar_sae_trainer_steps(t2), 3);
    for (int step = 3; step < 5; step++) {
        make_sparse_data(x, 256, (uint64_t)step + 11);
        OK(scalar_sae_trainer_step_acts(t, acts, 256, NULL, NULL));
        OK(scalar_sae_trainer_step_acts(t2, acts, 256, NULL, NULL));
    }
    float w1[16 * 64], w2[16 * 64];
    OK(scalar_sae_group_param_read(g, "W_dec", w1, 1024));
    OK(scalar_sae_group_param_read(g2, "W_dec", w2, 1024));
    ck_assert(memcmp(w1, w2, sizeof w1) == 0);
    /* a state for other shapes is refused and changes nothing */
    scalar_sae_group *g3 = NULL;
    scalar_sae_trainer *t3 = NULL;
    const int32_t other[] = {16, 64};
    OK(scalar_sae_group_create(&g3, ctx, &base, 2, other, NULL, 0));
    OK(scalar_sae_trainer_create(&t3, NULL, &g3, 1, 256, NULL));
    assert_error(scalar_sae_trainer_load(t3, state), SCALAR_E_SHAPE, "group.0.adam.m");
    ck_assert_int_eq(scalar_sae_trainer_steps(t3), 0);
    free(x);
    scalar_sae_trainer_free(t);
    scalar_sae_trainer_free(t2);
    scalar_sae_trainer_free(t3);
    scalar_sae_group_free(g);
    scalar_sae_group_free(g2);
    scalar_sae_group_free(g3);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- metrics ---- */

/* log-softmax of one row, double. */
static void log_softmax(const float *x, int64_t V, double *out)
{
    double mx = x[0], s = 0.0;
    for (int64_t v = 1; v < V; v++)
        mx = x[v] > mx ? x[v] : mx;
    for (int64_t v = 0; v < V; v++)
        s += exp((double)x[v] - mx);
    for (int64_t v = 0; v < V; v++)
        out[v] = (double)x[v] - mx - log(s);
}

/* scalar_sae_metrics against the same numbers computed here through the
 * public API: activations read from a workspace, encode/decode by hand,
 * splices by scalar_model_workspace_set_replacement (not the library's
 * callback), CE from the targets and KL from the logits.  Two SAEs on two
 * hooks, 5 windows of 16 in batches of 2 (the last batch short). */
START_TEST(test_metrics_match_a_hand_computation)
{
    scalar_ctx *ctx = new_ctx(2);
    scalar_model *model = tiny_model(ctx);
    int32_t ids[400];
    for (int i = 0; i < 400; i++)
        ids[i] = (i * 7 + i / 5) % 32;
    scalar_dataset_options dopt;
    OK(scalar_dataset_options_init(&dopt, sizeof dopt));
    dopt.val_fraction = 0.25;
    dopt.split_multiple = 1;
    scalar_dataset *ds = NULL;
    OK(scalar_dataset_create_from_ids(&ds, ctx, ids, 400, &dopt));
    const char *hooks[2] = {"blocks.0.hook_resid_mid", "blocks.1.hook_mlp_out"};
    scalar_sae *sae[2];
    for (int i = 0; i < 2; i++) {
        scalar_sae_config c = base_config(16, 48, 3);
        c.hook_name = hooks[i];
        c.seed = (uint64_t)i;
        OK(scalar_sae_create(&sae[i], ctx, &c));
    }
    double each[2 * SCALAR_SAE_METRIC_COUNT], all[SCALAR_SAE_METRIC_COUNT];
    OK(scalar_sae_metrics(model, ds, SCALAR_SPLIT_VAL, (const scalar_sae *const *)sae, 2, 2, 16,
                          5, each, all));
    /* by hand: windows w = 0..4 of the val split, one at a time */
    const int64_t T = 16, V = 32, d = 16;
    const int32_t layer[2] = {0, 1}, kind[2] = {SCALAR_HOOK_RESID_MID, SCALAR_HOOK_MLP_OUT};
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, model, 1, T, 0));
    double ce_clean = 0, ce[3] = {0}, kl[3] = {0}, err[2] = {0}, sx2[2] = {0}, sx[2][16] = {{0}};
    double l0[2] = {0};
    float act[2][16 * 16], rec[2][16 * 16], vals[16 * 3], logits[16 * 32], loss;
    int32_t idx[16 * 3], x[17], fired[2][48] = {{0}};
    double lp[16][32], lq[32];
    for (int w = 0; w < 5; w++) {
        OK(scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, w * T, T + 1, x));
        scalar_model_workspace_clear_hooks(ws);
        OK(scalar_model_forward(model, ws, x, x + 1, 1, T, logits, &loss));
        ce_clean += loss * T;
        for (int t = 0; t < T; t++)
            log_softmax(logits + t * V, V, lp[t]);
        for (int i = 0; i < 2; i++) {
            OK(scalar_model_workspace_read(ws, layer[i], kind[i], act[i], 256));
            OK(scalar_sae_encode(sae[i], act[i], T, vals, idx));
            OK(scalar_sae_decode(sae[i], vals, idx, T, 3, rec[i]));
            for (int e = 0; e < 48; e++)
                if (vals[e] > 0)
                    l0[i] += 1, fired[i][idx[e]] = 1;
            for (int e = 0; e < 256; e++) {
                err[i] += ((double)act[i][e] - rec[i][e]) * ((double)act[i][e] - rec[i][e]);
                sx2[i] += (double)act[i][e] * act[i][e];
                sx[i][e % d] += act[i][e];
            }
        }
        /* alone: replace by the clean reconstruction; all: the second SAE reads the
         * activation the first splice changed, so compute it from that forward */
        for (int i = 0; i < 3; i++) {
            scalar_model_workspace_clear_hooks(ws);
            if (i < 2) {
                OK(scalar_model_workspace_set_replacement(ws, layer[i], kind[i], rec[i]));
            } else {
                OK(scalar_model_workspace_set_replacement(ws, layer[0], kind[0], rec[0]));
                float a1[256], r1[256];
                OK(scalar_model_forward(model, ws, x, NULL, 1, T, NULL, NULL));
                OK(scalar_model_workspace_read(ws, layer[1], kind[1], a1, 256));
                OK(scalar_sae_encode(sae[1], a1, T, vals, idx));
                OK(scalar_sae_decode(sae[1], vals, idx, T, 3, r1));
                memcpy(rec[1], r1, sizeof r1);
                OK(scalar_model_workspace_set_replacement(ws, layer[1], kind[1], rec[1]));
            }
            OK(scalar_model_forward(model, ws, x, x + 1, 1, T, logits, &loss));
            ce[i] += loss * T;
            for (int t = 0; t < T; t++) {
                log_softmax(logits + t * V, V, lq);
                for (int v = 0; v < V; v++)
                    kl[i] += exp(lp[t][v]) * (lp[t][v] - lq[v]);
            }
        }
    }
    const double n = 5 * T, tol = 1e-4;
#define NEAR(a, b) ck_assert_msg(fabs((a) - (b)) <= tol * (1 + fabs(b)), #a " %.9g vs %.9g", \
                                 (double)(a), (double)(b))
    for (int i = 0; i < 2; i++) {
        const double *r = each + i * SCALAR_SAE_METRIC_COUNT;
        double var = sx2[i], dead = 0;
        for (int c = 0; c < d; c++)
            var -= sx[i][c] * sx[i][c] / n;
        for (int f = 0; f < 48; f++)
            dead += !fired[i][f];
        NEAR(r[SCALAR_SAE_METRIC_L0], l0[i] / n);
        NEAR(r[SCALAR_SAE_METRIC_FVU], err[i] / var);
        NEAR(r[SCALAR_SAE_METRIC_MSE], err[i] / n);
        ck_assert(r[SCALAR_SAE_METRIC_DEAD] == dead);
        NEAR(r[SCALAR_SAE_METRIC_CE_CLEAN], ce_clean / n);
        NEAR(r[SCALAR_SAE_METRIC_CE_SPLICED], ce[i] / n);
        NEAR(r[SCALAR_SAE_METRIC_CE_INCREASE], (ce[i] - ce_clean) / n);
        NEAR(r[SCALAR_SAE_METRIC_KL], kl[i] / n);
        ck_assert(r[SCALAR_SAE_METRIC_KL] > 0 && r[SCALAR_SAE_METRIC_FVU] > 0);
    }
    NEAR(all[SCALAR_SAE_METRIC_CE_SPLICED], ce[2] / n);
    NEAR(all[SCALAR_SAE_METRIC_KL], kl[2] / n);
    ck_assert(isnan(all[SCALAR_SAE_METRIC_FVU]));
#undef NEAR
    /* bad calls */
    scalar_sae *twice[2] = {sae[0], sae[0]};
    assert_error(scalar_sae_metrics(model, ds, SCALAR_SPLIT_VAL, (const scalar_sae *const *)twice,
                                    2, 2, 16, 5, each, NULL),
                 SCALAR_E_INVALID_ARG, "same hook");
    assert_error(scalar_sae_metrics(model, ds, SCALAR_SPLIT_VAL, (const scalar_sae *const *)sae,
                                    2, 2, 17, 5, each, NULL),
                 SCALAR_E_INVALID_ARG, "block_size");
    scalar_sae *nohook = NULL;
    scalar_sae_config c = base_config(16, 48, 3);
    OK(scalar_sae_create(&nohook, ctx, &c));
    assert_error(scalar_sae_metrics(model, ds, SCALAR_SPLIT_VAL,
                                    (const scalar_sae *const *)&nohook, 1, 2, 16, 5, each, NULL),
                 SCALAR_E_INVALID_ARG, "no hook");
    scalar_sae_free(nohook);
    scalar_model_workspace_free(ws);
    for (int i = 0; i < 2; i++)
        scalar_sae_free(sae[i]);
    scalar_dataset_free(ds);
    scalar_model_free(model);
    scalar_ctx_free(ctx);
}
END_TEST

Suite *scalar_sae_train_suite(void)
{
    Suite *s = suite_create("sae_train");
    TCase *tc = tcase_create("fixture");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_topk);
    tcase_add_test(tc, test_fixture_ties);
    tcase_add_test(tc, test_fixture_staircase_share);
    tcase_add_test(tc, test_fixture_staircase_detach);
    tcase_add_test(tc, test_fixture_noshare);
    tcase_add_test(tc, test_fixture_jsae_ff_layer);
    tcase_add_test(tc, test_fixture_jsae_ff_block);
    tcase_add_test(tc, test_fixture_jsae_k_out_differs);
    suite_add_tcase(s, tc);
    tc = tcase_create("training");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_first_step_is_lr_times_sign);
    tcase_add_test(tc, test_training_learns_sparse_directions);
    tcase_add_test(tc, test_model_stream_matches_given_activations);
    tcase_add_test(tc, test_checkpoint_resume_is_bit_identical);
    tcase_add_test(tc, test_metrics_match_a_hand_computation);
    suite_add_tcase(s, tc);
    tc = tcase_create("groups");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_group_save_load_bit_identical_and_member_saves_as_saelens);
    tcase_add_test(tc, test_group_bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
