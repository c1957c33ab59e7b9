/*
 * check_model.c - the model: configuration, files, forward/backward against
 * the PyTorch fixture (tests/reference/), hooks, finite differences, training.
 *
 * Tolerance for the fixture: 1e-4 relative in the Euclidean norm,
 * ||ours - ref|| / ||ref||, as tests/reference/README.md states.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "suites.h"

#define OK(expr) ck_assert_msg((expr) == SCALAR_OK, "%s: %s", #expr, scalar_last_error())
#define FIXTURE_TOL 1e-4

static scalar_ctx *new_ctx(uint64_t seed, const char *backend)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    scalar_ctx_options_init(&o, sizeof o);
    o.seed = seed;
    o.backend = backend;
    o.n_threads = 2;
    OK(scalar_ctx_create(&ctx, &o));
    return ctx;
}

static void assert_msg_has(const char *needle)
{
    const char *msg = scalar_last_error();
    ck_assert_msg(msg && strstr(msg, needle), "message \"%s\" lacks \"%s\"", msg ? msg : "(null)",
                  needle);
}

static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

static scalar_model *tiny_model(scalar_ctx *ctx, int layers, int T)
{
    scalar_model_config c;
    scalar_model *m = NULL;
    scalar_model_config_init(&c, sizeof c);
    c.n_layer = layers;
    c.n_head = 2;
    c.n_embd = 8;
    c.block_size = T;
    c.vocab_size = 11;
    OK(scalar_model_create(&m, ctx, &c));
    return m;
}

/* Random ids in [0, V). */
static void fill_ids(int32_t *ids, size_t n, int32_t V, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        ids[i] = (int32_t)((seed >> 16) % (unsigned)V);
    }
}

/* ---- configuration and creation ---- */

START_TEST(test_config_toy_params)
{
    scalar_ctx *ctx = new_ctx(1, NULL);
    scalar_model *m = NULL;
    OK(scalar_model_create(&m, ctx, NULL));
    ck_assert_int_eq(scalar_model_n_params(m), 216448);
    ck_assert_int_eq(scalar_model_param_count(m), 2 + 12 * 4 + 2);
    const char *name;
    int64_t shape[2];
    int32_t ndim;
    OK(scalar_model_param_info(m, 4, &name, shape, &ndim));
    ck_assert_str_eq(name, "h.0.attn.c_attn.weight");
    ck_assert_int_eq(shape[0], 64);
    ck_assert_int_eq(shape[1], 192);
    ck_assert_int_eq(ndim, 2);
    ck_assert_int_eq(scalar_model_param_info(m, 52, &name, shape, &ndim), SCALAR_E_INVALID_ARG);
    scalar_model_config c;
    scalar_model_config_init(&c, sizeof c);
    OK(scalar_model_config_preset(&c, "gpt2"));
    ck_assert_int_eq(c.n_embd, 768);
    ck_assert_int_eq(c.vocab_size, 50257);
    ck_assert_int_eq(scalar_model_config_preset(&c, "llama"), SCALAR_E_INVALID_ARG);
    assert_msg_has("known: toy, gpt2");
    c.n_head = 5;
    c.n_embd = 64;
    scalar_model *bad = NULL;
    ck_assert_int_eq(scalar_model_create(&bad, ctx, &c), SCALAR_E_INVALID_ARG);
    assert_msg_has("not a multiple of n_head");
    ck_assert_ptr_null(bad);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_init_statistics)
{
    scalar_ctx *ctx = new_ctx(7, NULL);
    scalar_model *m = NULL, *m2 = NULL;
    OK(scalar_model_create(&m, ctx, NULL));
    OK(scalar_model_create(&m2, ctx, NULL));
    static float a[64 * 256], b[64 * 256];
    OK(scalar_model_param_read(m, "h.1.mlp.c_fc.weight", a, 64 * 256));
    OK(scalar_model_param_read(m2, "h.1.mlp.c_fc.weight", b, 64 * 256));
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0); /* same seed, same parameters */
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < 64 * 256; i++) {
        s += a[i];
        s2 += (double)a[i] * a[i];
    }
    double sd = sqrt(s2 / (64 * 256) - (s / (64 * 256)) * (s / (64 * 256)));
    ck_assert_msg(fabs(sd - 0.02) < 0.001, "c_fc std %g", sd);
    OK(scalar_model_param_read(m, "h.1.mlp.c_proj.weight", a, 64 * 256));
    s2 = 0.0;
    for (int i = 0; i < 64 * 256; i++)
        s2 += (double)a[i] * a[i];
    sd = sqrt(s2 / (64 * 256));
    ck_assert_msg(fabs(sd - 0.02 / sqrt(8.0)) < 0.0005, "c_proj std %g", sd);
    OK(scalar_model_param_read(m, "transformer.ln_f.weight", a, 64));
    OK(scalar_model_param_read(m, "h.3.attn.c_attn.bias", b, 192));
    for (int i = 0; i < 64; i++)
        ck_assert_float_eq(a[i], 1.0f);
    for (int i = 0; i < 192; i++)
        ck_assert_float_eq(b[i], 0.0f);
    ck_assert_int_eq(scalar_model_param_read(m, "h.9.ln_1.weight", a, 64), SCALAR_E_INVALID_ARG);
    assert_msg_has("h.9.ln_1.weight");
    ck_assert_int_eq(scalar_model_param_read(m, "ln_f.weight", a, 63), SCALAR_E_BUFSIZE);
    a[0] = NAN;
    ck_assert_int_eq(scalar_model_param_write(m, "ln_f.weight", a, 64), SCALAR_E_NUMERIC);
    scalar_model_free(m);
    scalar_model_free(m2);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_hook_names)
{
    char buf[32];
    int32_t layer, kind;
    OK(scalar_model_hook_name(buf, sizeof buf, 3, SCALAR_HOOK_MLP_OUT));
    ck_assert_str_eq(buf, "blocks.3.hook_mlp_out");
    OK(scalar_model_hook_parse("blocks.12.hook_resid_mid", &layer, &kind));
    ck_assert_int_eq(layer, 12);
    ck_assert_int_eq(kind, SCALAR_HOOK_RESID_MID);
    OK(scalar_model_hook_parse("2.mlp_in", &layer, &kind));
    ck_assert_int_eq(layer * 10 + kind, 20 + SCALAR_HOOK_MLP_IN);
    OK(scalar_model_hook_parse("resid_post.1", &layer, &kind));
    ck_assert_int_eq(layer * 10 + kind, 10 + SCALAR_HOOK_RESID_POST);
    ck_assert_int_eq(scalar_model_hook_parse("blocks.1.hook_attn", &layer, &kind),
                     SCALAR_E_INVALID_ARG);
    assert_msg_has("accepted");
    ck_assert_int_eq(scalar_model_hook_name(buf, 8, 3, 0), SCALAR_E_BUFSIZE);
    ck_assert_int_eq(scalar_model_hook_name(buf, sizeof buf, 0, 5), SCALAR_E_INVALID_ARG);
}
END_TEST

/* ---- files ---- */

START_TEST(test_save_load_roundtrip)
{
    scalar_ctx *ctx = new_ctx(3, NULL);
    scalar_model *m = tiny_model(ctx, 2, 16), *back = NULL;
    const char *dir = test_tmp_path("model_rt");
    OK(scalar_model_save(m, dir));
    OK(scalar_model_load(&back, ctx, dir));
    ck_assert_int_eq(scalar_model_n_params(back), scalar_model_n_params(m));
    for (int32_t i = 0; i < scalar_model_param_count(m); i++) {
        const char *name;
        int64_t shape[2];
        OK(scalar_model_param_info(m, i, &name, shape, NULL));
        size_t n = (size_t)(shape[0] * shape[1]);
        float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        OK(scalar_model_param_read(m, name, a, n));
        OK(scalar_model_param_read(back, name, b, n));
        ck_assert_int_eq(memcmp(a, b, n * sizeof *a), 0);
        free(a);
        free(b);
    }
    scalar_model_config c;
    scalar_model_config_init(&c, sizeof c);
    OK(scalar_model_get_config(back, &c));
    ck_assert_int_eq(c.n_layer, 2);
    ck_assert_int_eq(c.block_size, 16);
    ck_assert_int_eq(c.d_mlp, 32);
    /* The weights file alone, with config.json beside it. */
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    scalar_model_free(back);
    OK(scalar_model_load(&back, ctx, path));
    scalar_model_free(back);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* Write a safetensors file of the tiny model's tensors, edited by `edit`. */
typedef void (*tensor_edit)(const char **name, int64_t *shape, int32_t *ndim, float *data,
                            int *skip);

static void write_edited(scalar_ctx *ctx, scalar_model *m, const char *dir, tensor_edit edit,
                         const char *extra_name)
{
    scalar_safetensors_writer *w = NULL;
    OK(scalar_safetensors_writer_create(&w, ctx));
    int32_t n = scalar_model_param_count(m);
    float *bufs[64] = {0};
    char prefixed[64][64];
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        int64_t shape[2];
        int32_t ndim;
        int skip = 0;
        OK(scalar_model_param_info(m, i, &name, shape, &ndim));
        size_t count = (size_t)(shape[0] * shape[1]);
        bufs[i] = malloc(count * sizeof(float));
        OK(scalar_model_param_read(m, name, bufs[i], count));
        snprintf(prefixed[i], sizeof prefixed[i], "transformer.%s", name);
        const char *out_name = prefixed[i];
        if (edit)
            edit(&out_name, shape, &ndim, bufs[i], &skip);
        if (!skip)
            OK(scalar_safetensors_writer_add(w, out_name, SCALAR_DTYPE_F32, shape, ndim, bufs[i],
                                             (size_t)(shape[0] * shape[1]) * sizeof(float)));
    }
    if (extra_name) {
        int64_t shape[2] = {11, 8};
        OK(scalar_safetensors_writer_add(w, extra_name, SCALAR_DTYPE_F32, shape, 2, bufs[0],
                                         sizeof(float) * 88));
    }
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    OK(scalar_safetensors_writer_write(w, path));
    scalar_safetensors_writer_free(w);
    for (int32_t i = 0; i < n; i++)
        free(bufs[i]);
}

static void drop_ln2(const char **name, int64_t *shape, int32_t *ndim, float *data, int *skip)
{
    (void)shape, (void)ndim, (void)data;
    *skip = strcmp(*name, "transformer.h.1.ln_2.bias") == 0;
}

static void bad_shape(const char **name, int64_t *shape, int32_t *ndim, float *data, int *skip)
{
    (void)data, (void)skip;
    if (strcmp(*name, "transformer.h.0.mlp.c_fc.weight") == 0) {
        int64_t t = shape[0]; /* stored as Linear [out, in] instead of Conv1D [in, out] */
        shape[0] = shape[1];
        shape[1] = t;
        *ndim = 2;
    }
}

static void rename_unknown(const char **name, int64_t *shape, int32_t *ndim, float *data,
                           int *skip)
{
    (void)shape, (void)ndim, (void)data, (void)skip;
    if (strcmp(*name, "transformer.ln_f.bias") == 0)
        *name = "transformer.ln_f.beta";
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_load_rejects)
{
    scalar_ctx *ctx = new_ctx(3, NULL);
    scalar_model *m = tiny_model(ctx, 2, 16), *back = NULL;
    const char *dir = test_tmp_path("model_bad");
    char cfg[1100];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    OK(scalar_model_save(m, dir));
    /* transformers' layout: prefixed keys, a mask buffer and a tied lm_head load fine. */
    write_edited(ctx, m, dir, NULL, "lm_head.weight");
    OK(scalar_model_load(&back, ctx, dir));
    scalar_model_free(back);
    write_edited(ctx, m, dir, NULL, "transformer.h.0.attn.bias");
    OK(scalar_model_load(&back, ctx, dir));
    scalar_model_free(back);
    /* A head that is not the embedding. */
    write_edited(ctx, m, dir, drop_ln2, NULL);
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    assert_msg_has("\"h.1.ln_2.bias\" is missing");
    ck_assert_ptr_null(back);
    write_edited(ctx, m, dir, bad_shape, NULL);
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_SHAPE);
    assert_msg_has("h.0.mlp.c_fc.weight");
    write_edited(ctx, m, dir, rename_unknown, NULL);
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    assert_msg_has("unknown tensor \"transformer.ln_f.beta\"");
    /* config.json settings we do not honour */
    OK(scalar_model_save(m, dir));
    write_text(cfg, "{\"n_layer\":2,\"n_head\":2,\"n_embd\":8,\"n_positions\":16,"
                    "\"vocab_size\":11,\"activation_function\":\"relu\"}");
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_UNSUPPORTED);
    assert_msg_has("relu");
    write_text(cfg, "{\"n_layer\":2,\"n_head\":2,\"n_embd\":8,\"n_positions\":16,"
                    "\"vocab_size\":11,\"scale_attn_by_inverse_layer_idx\":true}");
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_UNSUPPORTED);
    write_text(cfg, "{\"n_layer\":2,\"n_head\":2,\"n_embd\":8,\"vocab_size\":11}");
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    assert_msg_has("n_ctx");
    write_text(cfg, "{\"n_layer\":3,\"n_head\":2,\"n_embd\":8,\"n_positions\":16,"
                    "\"vocab_size\":11}");
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    assert_msg_has("h.2.ln_1.weight");
    write_text(cfg, "{\"n_layer\":2,");
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    ck_assert_int_eq(scalar_model_load(&back, ctx, test_tmp_path("no_such_dir")), SCALAR_E_IO);
    ck_assert_ptr_null(back);
    /* Truncated weights. */
    OK(scalar_model_save(m, dir));
    char w[1100];
    snprintf(w, sizeof w, "%s/model.safetensors", dir);
    ck_assert_int_eq(truncate(w, 200), 0);
    ck_assert_int_eq(scalar_model_load(&back, ctx, dir), SCALAR_E_FORMAT);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- the PyTorch fixture (tests/reference/fixtures/gpt2_tiny) ---- */

typedef struct fixture {
    scalar_ctx *ctx;
    scalar_model *m;
    scalar_safetensors *exp;
    int64_t B, T, C, V;
    int32_t ids[64], targets[64];
} fixture;

static const char *fixture_dir(void)
{
    static char dir[1024];
    const char *src = getenv("SCALAR_SRC");
    snprintf(dir, sizeof dir, "%s/tests/reference/fixtures/gpt2_tiny", src && *src ? src : ".");
    return dir;
}

/* Read tensor `name` of the expected file into a malloc'ed buffer. */
static float *expected(const fixture *f, const char *name, size_t *n)
{
    size_t idx;
    ck_assert_msg(scalar_safetensors_find(&idx, f->exp, name) == SCALAR_OK, "fixture lacks %s",
                  name);
    *n = (size_t)scalar_safetensors_numel(f->exp, idx);
    float *buf = malloc(*n * sizeof *buf);
    OK(scalar_safetensors_read_f32(buf, *n, f->exp, idx));
    return buf;
}

static void fixture_open(fixture *f, const char *backend)
{
    char path[1100];
    memset(f, 0, sizeof *f);
    f->ctx = new_ctx(1, backend);
    OK(scalar_model_load(&f->m, f->ctx, fixture_dir()));
    snprintf(path, sizeof path, "%s/expected.safetensors", fixture_dir());
    OK(scalar_safetensors_open(&f->exp, f->ctx, path));
    f->B = 2, f->T = 32, f->C = 64, f->V = 128;
    size_t idx;
    OK(scalar_safetensors_find(&idx, f->exp, "ids"));
    float tmp[64];
    OK(scalar_safetensors_read_f32(tmp, 64, f->exp, idx));
    for (int i = 0; i < 64; i++)
        f->ids[i] = (int32_t)tmp[i];
    OK(scalar_safetensors_find(&idx, f->exp, "targets"));
    OK(scalar_safetensors_read_f32(tmp, 64, f->exp, idx));
    for (int i = 0; i < 64; i++)
        f->targets[i] = (int32_t)tmp[i];
}

static void fixture_close(fixture *f)
{
    scalar_safetensors_free(f->exp);
    scalar_model_free(f->m);
    scalar_ctx_free(f->ctx);
}

static void check_close(const fixture *f, const char *name, const float *ours, size_t n)
{
    size_t n_ref;
    float *ref = expected(f, name, &n_ref);
    ck_assert_uint_eq(n, n_ref);
    double e = rel_err(ours, ref, n);
    ck_assert_msg(e <= FIXTURE_TOL, "%s: relative error %.3g > %.0e", name, e, FIXTURE_TOL);
    free(ref);
}

static void fixture_forward_backward(const char *backend)
{
    fixture f;
    fixture_open(&f, backend);
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, f.m, f.B, f.T, SCALAR_WORKSPACE_GRAD));
    size_t BTC = (size_t)(f.B * f.T * f.C);
    float *grads[2][SCALAR_HOOK_KIND_COUNT];
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < SCALAR_HOOK_KIND_COUNT; k++) {
            grads[l][k] = malloc(BTC * sizeof(float));
            OK(scalar_model_workspace_set_grad_capture(ws, l, k, grads[l][k]));
        }
    float *logits = malloc((size_t)(f.B * f.T * f.V) * sizeof(float)), loss = 0.0f;
    OK(scalar_model_forward(f.m, ws, f.ids, f.targets, f.B, f.T, logits, &loss));
    check_close(&f, "logits", logits, (size_t)(f.B * f.T * f.V));
    check_close(&f, "loss", &loss, 1);
    OK(scalar_model_backward(f.m, ws));
    float *act = malloc(BTC * sizeof(float));
    char name[64], gname[80];
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < SCALAR_HOOK_KIND_COUNT; k++) {
            OK(scalar_model_hook_name(name, sizeof name, l, k));
            OK(scalar_model_workspace_read(ws, l, k, act, BTC));
            check_close(&f, name, act, BTC);
            snprintf(gname, sizeof gname, "grad.%s", name);
            check_close(&f, gname, grads[l][k], BTC);
        }
    for (int32_t i = 0; i < scalar_model_param_count(f.m); i++) {
        const char *pname;
        int64_t shape[2];
        OK(scalar_model_param_info(f.m, i, &pname, shape, NULL));
        size_t n = (size_t)(shape[0] * shape[1]);
        float *g = malloc(n * sizeof *g);
        OK(scalar_model_workspace_read_grad(ws, pname, g, n));
        snprintf(gname, sizeof gname, "grad.%s", pname);
        check_close(&f, gname, g, n);
        free(g);
    }
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < SCALAR_HOOK_KIND_COUNT; k++)
            free(grads[l][k]);
    free(act);
    free(logits);
    scalar_model_workspace_free(ws);
    fixture_close(&f);
}

START_TEST(test_fixture_cpu)
{
    fixture_forward_backward("cpu");
}
END_TEST

START_TEST(test_fixture_cpu_ref)
{
    fixture_forward_backward("cpu-ref");
}
END_TEST

/* The splice of the fixture: resid_mid of layer 0 halved, by a replacement
 * buffer and by a callback; both give splice.logits. */
static scalar_status halve(void *user, int32_t layer, int32_t kind, float *act, int64_t n,
                           int64_t d)
{
    int *calls = user;
    (*calls)++;
    ck_assert_int_eq(layer, 0);
    ck_assert_int_eq(kind, SCALAR_HOOK_RESID_MID);
    for (int64_t i = 0; i < n * d; i++)
        act[i] *= 0.5f;
    return SCALAR_OK;
}

static scalar_status refuse(void *user, int32_t layer, int32_t kind, float *act, int64_t n,
                            int64_t d)
{
    (void)user, (void)layer, (void)kind, (void)act, (void)n, (void)d;
    return scalar_last_error_set(SCALAR_E_NUMERIC, "hook refused");
}

START_TEST(test_fixture_splice)
{
    fixture f;
    fixture_open(&f, "cpu");
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, f.m, f.B, f.T, 0));
    size_t BTC = (size_t)(f.B * f.T * f.C), BTV = (size_t)(f.B * f.T * f.V);
    float *mid = malloc(BTC * sizeof(float)), *logits = malloc(BTV * sizeof(float));
    OK(scalar_model_forward(f.m, ws, f.ids, NULL, f.B, f.T, NULL, NULL));
    OK(scalar_model_workspace_read(ws, 0, SCALAR_HOOK_RESID_MID, mid, BTC));
    for (size_t i = 0; i < BTC; i++)
        mid[i] *= 0.5f;
    OK(scalar_model_workspace_set_replacement(ws, 0, SCALAR_HOOK_RESID_MID, mid));
    OK(scalar_model_forward(f.m, ws, f.ids, NULL, f.B, f.T, logits, NULL));
    check_close(&f, "splice.logits", logits, BTV);
    OK(scalar_model_workspace_set_replacement(ws, 0, SCALAR_HOOK_RESID_MID, NULL));
    int calls = 0;
    OK(scalar_model_workspace_set_hook(ws, 0, SCALAR_HOOK_RESID_MID, halve, &calls));
    OK(scalar_model_forward(f.m, ws, f.ids, NULL, f.B, f.T, logits, NULL));
    ck_assert_int_eq(calls, 1);
    check_close(&f, "splice.logits", logits, BTV);
    /* forward_from the halved resid_mid: the same logits again. */
    scalar_model_workspace_clear_hooks(ws);
    OK(scalar_model_forward_from(f.m, ws, 0, SCALAR_HOOK_RESID_MID, mid, NULL, f.B, f.T, logits,
                                 NULL));
    check_close(&f, "splice.logits", logits, BTV);
    /* A failing callback stops the forward with its status and message. */
    OK(scalar_model_workspace_set_hook(ws, 1, SCALAR_HOOK_MLP_IN, refuse, NULL));
    ck_assert_int_eq(scalar_model_forward(f.m, ws, f.ids, NULL, f.B, f.T, logits, NULL),
                     SCALAR_E_NUMERIC);
    assert_msg_has("hook refused");
    ck_assert_int_eq(scalar_model_workspace_read(ws, 0, 0, mid, BTC), SCALAR_E_INVALID_ARG);
    free(mid);
    free(logits);
    scalar_model_workspace_free(ws);
    fixture_close(&f);
}
END_TEST

/* Three trainer steps at a constant 1e-3 against torch.optim.AdamW + clipping. */
START_TEST(test_fixture_adamw)
{
    fixture f;
    fixture_open(&f, "cpu");
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = f.B;
    o.seq = f.T;
    o.warmup_steps = 0;
    o.lr = o.min_lr = 1e-3f;
    scalar_model_trainer *t = NULL;
    OK(scalar_model_trainer_create(&t, f.m, &o));
    size_t n_norms;
    float *norms = expected(&f, "grad_norms", &n_norms);
    for (int s = 0; s < 3; s++) {
        float loss, norm;
        OK(scalar_model_trainer_step(t, f.ids, f.targets, &loss, &norm));
        ck_assert_msg(fabs(norm - norms[s]) <= 1e-4 * norms[s], "step %d norm %g vs %g", s,
                      (double)norm, (double)norms[s]);
    }
    free(norms);
    ck_assert_int_eq(scalar_model_trainer_steps(t), 3);
    char gname[80];
    for (int32_t i = 0; i < scalar_model_param_count(f.m); i++) {
        const char *pname;
        int64_t shape[2];
        OK(scalar_model_param_info(f.m, i, &pname, shape, NULL));
        size_t n = (size_t)(shape[0] * shape[1]), n_ref;
        float *p = malloc(n * sizeof *p);
        OK(scalar_model_param_read(f.m, pname, p, n));
        snprintf(gname, sizeof gname, "adamw3.%s", pname);
        if (strstr(pname, "c_attn.bias")) {
            /* The k third has a zero gradient (softmax is shift-invariant): its
             * AdamW steps are sign(rounding noise) * lr, so compare q and v
             * norm-wise and hold k to three steps of lr (README). */
            float *ref = expected(&f, gname, &n_ref);
            size_t C = n / 3;
            ck_assert_msg(rel_err(p, ref, C) <= FIXTURE_TOL, "%s q", gname);
            ck_assert_msg(rel_err(p + 2 * C, ref + 2 * C, C) <= FIXTURE_TOL, "%s v", gname);
            for (size_t j = C; j < 2 * C; j++)
                ck_assert_msg(fabsf(p[j] - ref[j]) <= 3e-3f, "%s k[%zu]", gname, j);
            free(ref);
        } else {
            check_close(&f, gname, p, n);
        }
        free(p);
    }
    scalar_model_trainer_free(t);
    fixture_close(&f);
}
END_TEST

/* ---- structure: forward_from, backward_from, finite differences ---- */

START_TEST(test_forward_from_every_point)
{
    scalar_ctx *ctx = new_ctx(5, NULL);
    scalar_model *m = tiny_model(ctx, 3, 12);
    scalar_model_workspace *ws = NULL;
    enum { B = 3, T = 12, C = 8, V = 11 };
    OK(scalar_model_workspace_create(&ws, m, B, T, 0));
    int32_t ids[B * T];
    fill_ids(ids, B * T, V, 9);
    static float ref[B * T * V], out[B * T * V], act[B * T * C];
    OK(scalar_model_forward(m, ws, ids, NULL, B, T, ref, NULL));
    for (int l = 0; l < 3; l++)
        for (int k = 0; k < SCALAR_HOOK_KIND_COUNT; k++) {
            OK(scalar_model_forward(m, ws, ids, NULL, B, T, NULL, NULL));
            OK(scalar_model_workspace_read(ws, l, k, act, B * T * C));
            OK(scalar_model_forward_from(m, ws, l, k, act, NULL, B, T, out, NULL));
            ck_assert_msg(rel_err(out, ref, B * T * V) < 1e-6, "layer %d kind %d: %g", l, k,
                          rel_err(out, ref, B * T * V));
            /* Upstream points were not computed by this forward. */
            if (l > 0)
                ck_assert_int_eq(scalar_model_workspace_read(ws, l - 1, k, act, B * T * C),
                                 SCALAR_E_INVALID_ARG);
        }
    /* mlp_out twice in a row (the evaluator's loop) still has resid_mid. */
    OK(scalar_model_forward(m, ws, ids, NULL, B, T, NULL, NULL));
    OK(scalar_model_workspace_read(ws, 1, SCALAR_HOOK_MLP_OUT, act, B * T * C));
    OK(scalar_model_forward_from(m, ws, 1, SCALAR_HOOK_MLP_OUT, act, NULL, B, T, out, NULL));
    OK(scalar_model_forward_from(m, ws, 1, SCALAR_HOOK_MLP_OUT, act, NULL, B, T, out, NULL));
    ck_assert(rel_err(out, ref, B * T * V) < 1e-6);
    /* ... but not with another batch shape. */
    ck_assert_int_eq(scalar_model_forward_from(m, ws, 1, SCALAR_HOOK_MLP_IN, act, NULL, B - 1, T,
                                               out, NULL), SCALAR_E_INVALID_ARG);
    assert_msg_has("resid_mid");
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* backward_from a point with the gradient a full backward captured there
 * reproduces the full backward's gradients upstream of the point. */
START_TEST(test_backward_from_matches_full)
{
    scalar_ctx *ctx = new_ctx(6, NULL);
    scalar_model *m = tiny_model(ctx, 2, 8);
    enum { B = 2, T = 8, C = 8, V = 11, N = B * T * C };
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, m, B, T, SCALAR_WORKSPACE_GRAD));
    int32_t ids[B * T], tg[B * T];
    fill_ids(ids, B * T, V, 1);
    fill_ids(tg, B * T, V, 2);
    for (int k = 0; k < SCALAR_HOOK_KIND_COUNT; k++) {
        static float seed[N], pre_full[N], pre_from[N];
        float wpe_full[8 * C], wpe_from[8 * C], ln1_full[C], ln1_from[C];
        OK(scalar_model_workspace_set_grad_capture(ws, 1, k, seed));
        OK(scalar_model_workspace_set_grad_capture(ws, 0, SCALAR_HOOK_RESID_PRE, pre_full));
        OK(scalar_model_workspace_zero_grad(ws));
        OK(scalar_model_forward(m, ws, ids, tg, B, T, NULL, NULL));
        OK(scalar_model_backward(m, ws));
        OK(scalar_model_workspace_read_grad(ws, "wpe.weight", wpe_full, 8 * C));
        OK(scalar_model_workspace_read_grad(ws, "h.0.ln_1.weight", ln1_full, C));
        scalar_model_workspace_clear_hooks(ws);
        OK(scalar_model_workspace_set_grad_capture(ws, 0, SCALAR_HOOK_RESID_PRE, pre_from));
        OK(scalar_model_workspace_zero_grad(ws));
        OK(scalar_model_backward_from(m, ws, 1, k, seed));
        OK(scalar_model_workspace_read_grad(ws, "wpe.weight", wpe_from, 8 * C));
        OK(scalar_model_workspace_read_grad(ws, "h.0.ln_1.weight", ln1_from, C));
        if (k == SCALAR_HOOK_MLP_IN || k == SCALAR_HOOK_MLP_OUT) {
            /* Only part of the gradient passes through the MLP: compare
             * nothing, but it must be non-zero. */
            double s = 0;
            for (int i = 0; i < N; i++)
                s += fabs(pre_from[i]);
            ck_assert(s > 0);
        } else {
            ck_assert_msg(rel_err(pre_from, pre_full, N) < 1e-5, "kind %d resid_pre", k);
            ck_assert_msg(rel_err(wpe_from, wpe_full, 8 * C) < 1e-5, "kind %d wpe", k);
            ck_assert_msg(rel_err(ln1_from, ln1_full, C) < 1e-5, "kind %d ln_1", k);
        }
        scalar_model_workspace_clear_hooks(ws);
    }
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* Directional finite differences of the loss against the backward, over
 * every parameter at once and over one hook activation. */
START_TEST(test_finite_differences)
{
    scalar_ctx *ctx = new_ctx(8, "cpu-ref");
    scalar_model *m = tiny_model(ctx, 2, 6);
    enum { B = 2, T = 6, C = 8, V = 11 };
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, m, B, T, SCALAR_WORKSPACE_GRAD));
    int32_t ids[B * T], tg[B * T];
    fill_ids(ids, B * T, V, 3);
    fill_ids(tg, B * T, V, 4);
    float loss;
    OK(scalar_model_forward(m, ws, ids, tg, B, T, NULL, &loss));
    OK(scalar_model_backward(m, ws));
    int32_t n = scalar_model_param_count(m);
    double dot = 0.0;
    const double eps = 1e-3;
    /* direction: a fixed pseudo-random sign pattern per parameter tensor */
    float *p0[64], *dir[64];
    size_t sizes[64];
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        int64_t shape[2];
        OK(scalar_model_param_info(m, i, &name, shape, NULL));
        sizes[i] = (size_t)(shape[0] * shape[1]);
        p0[i] = malloc(sizes[i] * sizeof(float));
        dir[i] = malloc(sizes[i] * sizeof(float));
        float *g = malloc(sizes[i] * sizeof(float));
        OK(scalar_model_param_read(m, name, p0[i], sizes[i]));
        OK(scalar_model_workspace_read_grad(ws, name, g, sizes[i]));
        for (size_t j = 0; j < sizes[i]; j++) {
            dir[i][j] = ((j * 2654435761u + (size_t)i * 40503u) >> 7) & 1 ? 1.0f : -1.0f;
            dot += (double)g[j] * dir[i][j];
        }
        free(g);
    }
    float lp, lm;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        for (int32_t i = 0; i < n; i++) {
            const char *name;
            OK(scalar_model_param_info(m, i, &name, NULL, NULL));
            float *q = malloc(sizes[i] * sizeof(float));
            for (size_t j = 0; j < sizes[i]; j++)
                q[j] = p0[i][j] + (float)(sgn * eps) * dir[i][j];
            OK(scalar_model_param_write(m, name, q, sizes[i]));
            free(q);
        }
        OK(scalar_model_forward(m, ws, ids, tg, B, T, NULL, sgn > 0 ? &lp : &lm));
    }
    double fd = ((double)lp - (double)lm) / (2 * eps);
    ck_assert_msg(fabs(fd - dot) <= 2e-2 * fabs(dot), "finite difference %g vs backward %g", fd,
                  dot);
    for (int32_t i = 0; i < n; i++) {
        const char *name;
        OK(scalar_model_param_info(m, i, &name, NULL, NULL));
        OK(scalar_model_param_write(m, name, p0[i], sizes[i]));
        free(p0[i]);
        free(dir[i]);
    }
    /* The gradient at a hook point: perturb resid_mid of layer 1 via forward_from. */
    static float mid[B * T * C], g[B * T * C], x[B * T * C];
    OK(scalar_model_workspace_set_grad_capture(ws, 1, SCALAR_HOOK_RESID_MID, g));
    OK(scalar_model_forward(m, ws, ids, tg, B, T, NULL, &loss));
    OK(scalar_model_workspace_read(ws, 1, SCALAR_HOOK_RESID_MID, mid, B * T * C));
    OK(scalar_model_backward(m, ws));
    dot = 0.0;
    for (int i = 0; i < B * T * C; i++)
        dot += g[i] * (i % 3 == 0 ? 1.0 : -0.5);
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        for (int i = 0; i < B * T * C; i++)
            x[i] = mid[i] + (float)(sgn * eps) * (i % 3 == 0 ? 1.0f : -0.5f);
        OK(scalar_model_forward_from(m, ws, 1, SCALAR_HOOK_RESID_MID, x, tg, B, T, NULL,
                                     sgn > 0 ? &lp : &lm));
    }
    fd = ((double)lp - (double)lm) / (2 * eps);
    ck_assert_msg(fabs(fd - dot) <= 2e-2 * fabs(dot) + 1e-5, "hook fd %g vs %g", fd, dot);
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- sampling, errors ---- */

START_TEST(test_generate)
{
    scalar_ctx *ctx = new_ctx(2, NULL);
    scalar_model *m = tiny_model(ctx, 1, 8);
    scalar_model_workspace *ws = NULL;
    OK(scalar_model_workspace_create(&ws, m, 1, 8, 0));
    int32_t prompt[3] = {1, 2, 3}, a[20], b[20], c[20];
    OK(scalar_model_generate(m, ws, prompt, 3, 20, 1.0f, 42, a));
    OK(scalar_model_generate(m, ws, prompt, 3, 20, 1.0f, 42, b));
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    OK(scalar_model_generate(m, ws, prompt, 3, 20, 1.0f, 43, c));
    ck_assert_int_ne(memcmp(a, c, sizeof a), 0);
    for (int i = 0; i < 20; i++)
        ck_assert(a[i] >= 0 && a[i] < 11);
    /* temperature 0 is the argmax of the forward's last position */
    OK(scalar_model_generate(m, ws, prompt, 3, 1, 0.0f, 1, a));
    float logits[3 * 11];
    OK(scalar_model_forward(m, ws, prompt, NULL, 1, 3, logits, NULL));
    int best = 0;
    for (int j = 1; j < 11; j++)
        if (logits[22 + j] > logits[22 + best])
            best = j;
    ck_assert_int_eq(a[0], best);
    ck_assert_int_eq(scalar_model_generate(m, ws, prompt, 0, 5, 1.0f, 1, a), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_model_generate(m, ws, prompt, 3, 5, NAN, 1, a), SCALAR_E_INVALID_ARG);
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_bad_calls)
{
    scalar_ctx *ctx = new_ctx(2, NULL);
    scalar_model *m = tiny_model(ctx, 1, 8), *other = tiny_model(ctx, 1, 8);
    scalar_model_workspace *ws = NULL, *inf = NULL;
    ck_assert_int_eq(scalar_model_workspace_create(&ws, m, 1, 9, 0), SCALAR_E_INVALID_ARG);
    assert_msg_has("block_size=8");
    ck_assert_int_eq(scalar_model_workspace_create(&ws, NULL, 1, 8, 0), SCALAR_E_INVALID_ARG);
    OK(scalar_model_workspace_create(&ws, m, 2, 8, SCALAR_WORKSPACE_GRAD));
    OK(scalar_model_workspace_create(&inf, m, 2, 8, 0));
    int32_t ids[16] = {0}, tg[16] = {0};
    float loss;
    ids[5] = 11;
    ck_assert_int_ne(scalar_model_forward(m, ws, ids, NULL, 2, 8, NULL, NULL), SCALAR_OK);
    assert_msg_has("11");
    ids[5] = 0;
    tg[3] = 12;
    ck_assert_int_eq(scalar_model_forward(m, ws, ids, tg, 2, 8, NULL, &loss), SCALAR_E_INVALID_ARG);
    assert_msg_has("targets[3]=12");
    tg[3] = 0;
    ck_assert_int_eq(scalar_model_forward(m, ws, ids, tg, 3, 8, NULL, NULL), SCALAR_E_SHAPE);
    ck_assert_int_eq(scalar_model_forward(other, ws, ids, tg, 2, 8, NULL, NULL),
                     SCALAR_E_INVALID_ARG);
    assert_msg_has("another model");
    ck_assert_int_eq(scalar_model_forward(m, ws, ids, NULL, 2, 8, NULL, &loss),
                     SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_model_backward(m, ws), SCALAR_E_INVALID_ARG); /* forward failed */
    OK(scalar_model_forward(m, ws, ids, NULL, 2, 8, NULL, NULL));
    ck_assert_int_eq(scalar_model_backward(m, ws), SCALAR_E_INVALID_ARG);
    assert_msg_has("no targets");
    OK(scalar_model_forward(m, inf, ids, tg, 2, 8, NULL, &loss));
    ck_assert_int_eq(scalar_model_backward(m, inf), SCALAR_E_INVALID_ARG);
    assert_msg_has("SCALAR_WORKSPACE_GRAD");
    float buf[16 * 8];
    ck_assert_int_eq(scalar_model_workspace_set_grad_capture(inf, 0, 0, buf), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_model_workspace_set_hook(ws, 1, 0, NULL, NULL), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_model_workspace_read(ws, 0, 0, buf, 10), SCALAR_E_BUFSIZE);
    for (int i = 0; i < 16; i++)
        tg[i] = -1;
    ck_assert_int_eq(scalar_model_forward(m, ws, ids, tg, 2, 8, NULL, &loss), SCALAR_E_INVALID_ARG);
    assert_msg_has("ignored");
    /* Free in any order: the workspace keeps the model alive. */
    scalar_model *kept = m;
    scalar_model_free(m);
    OK(scalar_model_forward(kept, ws, ids, NULL, 2, 8, NULL, NULL));
    scalar_model_workspace_free(inf);
    scalar_model_workspace_free(ws);
    scalar_model_free(other);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- training ---- */

START_TEST(test_lr_schedule)
{
    scalar_ctx *ctx = new_ctx(2, NULL);
    scalar_model *m = tiny_model(ctx, 1, 8);
    scalar_model_trainer *t = NULL;
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = 1;
    o.seq = 8;
    OK(scalar_model_trainer_create(&t, m, &o));
    /* llm.c's schedule, as tests/reference/gpt2_ref.py has it. */
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 0), 1e-6f, 1e-12f);
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 999), 1e-3f, 1e-10f);
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 1000), 1e-3f, 1e-10f);
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 5500), 0.5f * (1e-3f + 1e-5f), 1e-8f);
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 9999), 1.000003e-5f, 1e-10f);
    ck_assert_float_eq_tol(scalar_model_trainer_lr(t, 20000), 1e-5f, 1e-12f);
    scalar_model_trainer_free(t);
    o.seq = 9;
    ck_assert_int_eq(scalar_model_trainer_create(&t, m, &o), SCALAR_E_INVALID_ARG);
    o.seq = 8;
    o.beta2 = 1.0f;
    ck_assert_int_eq(scalar_model_trainer_create(&t, m, &o), SCALAR_E_INVALID_ARG);
    assert_msg_has("betas");
    ck_assert_ptr_null(t);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* A repeating sequence is learnable: 60 steps cut the loss by more than half. */
START_TEST(test_training_learns)
{
    scalar_ctx *ctx = new_ctx(4, NULL);
    scalar_model *m = tiny_model(ctx, 2, 16);
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = 4;
    o.seq = 16;
    o.grad_accum = 2;
    o.warmup_steps = 5;
    o.max_steps = 60;
    o.lr = 1e-2f;
    o.min_lr = 1e-3f;
    scalar_model_trainer *t = NULL;
    OK(scalar_model_trainer_create(&t, m, &o));
    int32_t x[2 * 4 * 16], y[2 * 4 * 16];
    for (int i = 0; i < 2 * 4 * 16; i++) {
        x[i] = (i * 3) % 11;
        y[i] = (i * 3 + 3) % 11;
    }
    float first = 0, loss = 0, norm;
    for (int s = 0; s < 60; s++) {
        OK(scalar_model_trainer_step(t, x, y, &loss, &norm));
        if (s == 0)
            first = loss;
    }
    ck_assert_msg(fabsf(first - logf(11.0f)) < 0.1f, "first loss %g", (double)first);
    ck_assert_msg(loss < 0.5f * first, "loss %g after 60 steps, first %g", (double)loss,
                  (double)first);
    scalar_model_trainer_free(t);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* Save model + optimizer after 5 steps, reload both into fresh handles, take 5
 * more: the parameters are bit-identical to 10 uninterrupted steps. */
START_TEST(test_trainer_resume_bitwise)
{
    enum { B = 2, T = 8, N = B * T };
    int32_t x[N], y[N];
    float loss;
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = B;
    o.seq = T;
    o.warmup_steps = 3;
    o.max_steps = 10;
    scalar_ctx *ctx = new_ctx(11, NULL);
    scalar_model *a = tiny_model(ctx, 2, 8), *b = NULL;
    scalar_model_trainer *ta = NULL, *tb = NULL;
    OK(scalar_model_save(a, test_tmp_path("resume_init")));
    OK(scalar_model_trainer_create(&ta, a, &o));
    for (int s = 0; s < 10; s++) {
        fill_ids(x, N, 11, 100u + (unsigned)s);
        fill_ids(y, N, 11, 200u + (unsigned)s);
        OK(scalar_model_trainer_step(ta, x, y, &loss, NULL));
    }
    OK(scalar_model_load(&b, ctx, test_tmp_path("resume_init")));
    OK(scalar_model_trainer_create(&tb, b, &o));
    for (int s = 0; s < 5; s++) {
        fill_ids(x, N, 11, 100u + (unsigned)s);
        fill_ids(y, N, 11, 200u + (unsigned)s);
        OK(scalar_model_trainer_step(tb, x, y, &loss, NULL));
    }
    const char *ckpt = test_tmp_path("resume_ckpt");
    char opt_path[1100];
    snprintf(opt_path, sizeof opt_path, "%s/optimizer.safetensors", ckpt);
    OK(scalar_model_save(b, ckpt));
    OK(scalar_model_trainer_save(tb, opt_path));
    scalar_model_trainer_free(tb);
    scalar_model_free(b);
    b = NULL;
    OK(scalar_model_load(&b, ctx, ckpt));
    OK(scalar_model_trainer_create(&tb, b, &o));
    OK(scalar_model_trainer_load(tb, opt_path));
    ck_assert_int_eq(scalar_model_trainer_steps(tb), 5);
    for (int s = 5; s < 10; s++) {
        fill_ids(x, N, 11, 100u + (unsigned)s);
        fill_ids(y, N, 11, 200u + (unsigned)s);
        OK(scalar_model_trainer_step(tb, x, y, &loss, NULL));
    }
    for (int32_t i = 0; i < scalar_model_param_count(a); i++) {
        const char *name;
        int64_t shape[2];
        OK(scalar_model_param_info(a, i, &name, shape, NULL));
        size_t n = (size_t)(shape[0] * shape[1]);
        float *pa = malloc(n * sizeof(float)), *pb = malloc(n * sizeof(float));
        OK(scalar_model_param_read(a, name, pa, n));
        OK(scalar_model_param_read(b, name, pb, n));
        ck_assert_msg(memcmp(pa, pb, n * sizeof(float)) == 0, "%s differs after resume", name);
        free(pa);
        free(pb);
    }
    /* An optimizer file of another model shape is refused. */
    scalar_model *small = tiny_model(ctx, 1, 8);
    scalar_model_trainer *ts = NULL;
    OK(scalar_model_trainer_create(&ts, small, &o));
    ck_assert_int_eq(scalar_model_trainer_load(ts, opt_path), SCALAR_E_SHAPE);
    assert_msg_has("adamw.m");
    ck_assert_int_eq(scalar_model_trainer_steps(ts), 0);
    scalar_model_trainer_free(ts);
    scalar_model_free(small);
    scalar_model_trainer_free(ta);
    scalar_model_trainer_free(tb);
    scalar_model_free(a);
    scalar_model_free(b);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_trainer_nonfinite)
{
    scalar_ctx *ctx = new_ctx(4, NULL);
    scalar_model *m = tiny_model(ctx, 1, 8);
    float big[8];
    for (int i = 0; i < 8; i++)
        big[i] = 3e38f;
    OK(scalar_model_param_write(m, "h.0.ln_2.weight", big, 8));
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = 1;
    o.seq = 8;
    scalar_model_trainer *t = NULL;
    OK(scalar_model_trainer_create(&t, m, &o));
    int32_t x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {2, 3, 4, 5, 6, 7, 8, 9};
    float before[8], after[8];
    OK(scalar_model_param_read(m, "ln_f.bias", before, 8));
    ck_assert_int_eq(scalar_model_trainer_step(t, x, y, NULL, NULL), SCALAR_E_NUMERIC);
    assert_msg_has("unchanged");
    OK(scalar_model_param_read(m, "ln_f.bias", after, 8));
    ck_assert_int_eq(memcmp(before, after, sizeof before), 0);
    ck_assert_int_eq(scalar_model_trainer_steps(t), 0);
    scalar_model_trainer_free(t);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}
END_TEST

/* Every allocation failure on the way to a trained step is a clean NOMEM. */
START_TEST(test_alloc_failures)
{
    for (long fail = 1; fail < 200; fail++) {
        test_counting c = {0, 0, fail, 0};
        scalar_ctx *ctx = NULL;
        if (test_ctx_with(&ctx, &c, "cpu", 1) != SCALAR_OK)
            continue;
        scalar_model_config cfg;
        scalar_model_config_init(&cfg, sizeof cfg);
        cfg.n_layer = 1, cfg.n_head = 1, cfg.n_embd = 4, cfg.block_size = 4, cfg.vocab_size = 5;
        scalar_model *m = NULL;
        scalar_model_trainer *t = NULL;
        scalar_model_trainer_options o;
        scalar_model_trainer_options_init(&o, sizeof o);
        o.batch = 1;
        o.seq = 4;
        scalar_status st = scalar_model_create(&m, ctx, &cfg);
        if (st == SCALAR_OK)
            st = scalar_model_trainer_create(&t, m, &o);
        if (st == SCALAR_OK) {
            int32_t x[4] = {0, 1, 2, 3};
            st = scalar_model_trainer_step(t, x, x, NULL, NULL);
        }
        ck_assert_msg(st == SCALAR_OK || st == SCALAR_E_NOMEM, "fail_at %ld: %d %s", fail, st,
                      scalar_last_error());
        scalar_model_trainer_free(t);
        scalar_model_free(m);
        scalar_ctx_free(ctx);
        ck_assert_msg(c.live_bytes == 0, "fail_at %ld: %zu bytes leaked", fail, c.live_bytes);
        if (st == SCALAR_OK && fail > c.n_alloc)
            break;
    }
}
END_TEST

/* SPEC's data: 100 steps of the toy model on Tiny Shakespeare (16 x 128
 * tokens a step, warmup 10, peak lr 1e-3) take the loss from ln(128) = 4.85
 * to below 3.35 nats (the mean of the last 10 steps): the stated margin is
 * 1.5 nats (measured: 2.87).  Skips with a message when ../shared/data is absent. */
START_TEST(test_tinyshakespeare_100_steps)
{
    const char *dir = getenv("SCALAR_SHARED_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/tinyshakespeare.txt", dir && *dir ? dir : "../shared/data");
    if (access(path, R_OK) != 0) {
        printf("skipped: %s is absent\n", path);
        return;
    }
    const char *light = getenv("SCALAR_TEST_LIGHT");
    if (light && *light == '1') {
        printf("skipped: SCALAR_TEST_LIGHT=1 (100 training steps under valgrind take too long)\n");
        return;
    }
    /* One thread: results do not depend on the count, and on a machine whose
     * other core is busy (CI beside another job) a 2-thread team waits at
     * every barrier of these small batches for the descheduled thread: the
     * 3-second test took over 120 s that way. */
    scalar_ctx_options o1;
    scalar_ctx *ctx = NULL;
    scalar_ctx_options_init(&o1, sizeof o1);
    o1.seed = 0x5CA1A8;
    o1.n_threads = 1;
    OK(scalar_ctx_create(&ctx, &o1));
    scalar_dataset *ds = NULL;
    scalar_model *m = NULL;
    scalar_model_trainer *t = NULL;
    OK(scalar_dataset_load(&ds, ctx, path, NULL));
    OK(scalar_model_create(&m, ctx, NULL));
    scalar_model_trainer_options o;
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = 16;
    o.warmup_steps = 10;
    o.max_steps = 100;
    o.min_lr = 1e-4f;
    OK(scalar_model_trainer_create(&t, m, &o));
    static int32_t x[16 * 128], y[16 * 128];
    int64_t cursor = 0;
    float loss = 0.0f, first = 0.0f;
    double last10 = 0.0;
    for (int s = 0; s < 100; s++) {
        OK(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 16, 128, x, y));
        OK(scalar_model_trainer_step(t, x, y, &loss, NULL));
        if (s == 0)
            first = loss;
        if (s >= 90)
            last10 += loss / 10.0;
    }
    ck_assert_msg(fabsf(first - logf(128.0f)) < 0.05f, "first loss %g", (double)first);
    ck_assert_msg(last10 < 3.35, "mean loss of steps 91-100: %g (first %g)", last10,
                  (double)first);
    scalar_model_trainer_free(t);
    scalar_model_free(m);
    scalar_dataset_free(ds);
    scalar_ctx_free(ctx);
}
END_TEST

Suite *scalar_model_suite(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_config_toy_params);
    tcase_add_test(tc, test_init_statistics);
    tcase_add_test(tc, test_hook_names);
    tcase_add_test(tc, test_save_load_roundtrip);
    tcase_add_test(tc, test_load_rejects);
    tcase_add_test(tc, test_fixture_cpu);
    tcase_add_test(tc, test_fixture_cpu_ref);
    tcase_add_test(tc, test_fixture_splice);
    tcase_add_test(tc, test_fixture_adamw);
    tcase_add_test(tc, test_forward_from_every_point);
    tcase_add_test(tc, test_backward_from_matches_full);
    tcase_add_test(tc, test_finite_differences);
    tcase_add_test(tc, test_generate);
    tcase_add_test(tc, test_bad_calls);
    tcase_add_test(tc, test_lr_schedule);
    tcase_add_test(tc, test_training_learns);
    tcase_add_test(tc, test_trainer_resume_bitwise);
    tcase_add_test(tc, test_trainer_nonfinite);
    tcase_add_test(tc, test_alloc_failures);
    tcase_add_test(tc, test_tinyshakespeare_100_steps);
    suite_add_tcase(s, tc);
    return s;
}
