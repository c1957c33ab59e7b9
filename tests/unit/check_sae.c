/*
 * check_sae.c - the SAE handle: configuration, SPEC.md initialisation,
 * encode and decode (sparse and dense, every architecture) against plain
 * double loops, SAELens files (round trip bit for bit, the cfg.json
 * spellings of several SAELens versions, every refusal with its message),
 * bad calls and allocation failures.
 *
 * Tolerances: codes and reconstructions against double loops, |err| <=
 * 1e-5 * (sum of |terms| + 1): float GEMMs and sums over d_in <= 64 terms.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "suites.h"

#define TOL 1e-5

static scalar_ctx *new_ctx(void)
{
    scalar_ctx *ctx = NULL;
    ck_assert_int_eq(scalar_ctx_create(&ctx, NULL), SCALAR_OK);
    return ctx;
}

static scalar_sae_config toy_config(int32_t arch, int32_t d_in, int32_t d_sae, int32_t k)
{
    scalar_sae_config c;
    ck_assert_int_eq(scalar_sae_config_init(&c, sizeof c), SCALAR_OK);
    c.architecture = arch;
    c.d_in = d_in;
    c.d_sae = d_sae;
    c.k = k;
    return c;
}

/* Deterministic values in [-1, 1). */
static float noise(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return (float)(*state >> 8) / (float)(1u << 23) - 1.0f;
}

static float *random_floats(size_t n, uint32_t seed, float scale)
{
    float *x = malloc(n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * noise(&seed);
    return x;
}

/* Random biases (and thresholds), so that encode sees every term. */
static void randomize_biases(scalar_sae *sae, const scalar_sae_config *c, uint32_t seed)
{
    float *b_enc = random_floats((size_t)c->d_sae, seed, 0.3f);
    float *b_dec = random_floats((size_t)c->d_in, seed + 1, 0.3f);
    ck_assert_int_eq(scalar_sae_param_write(sae, "b_enc", b_enc, (size_t)c->d_sae), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_write(sae, "b_dec", b_dec, (size_t)c->d_in), SCALAR_OK);
    if (c->architecture == SCALAR_SAE_JUMPRELU) {
        /* thresholds of both signs: a negative one still passes only positive codes */
        float *thr = random_floats((size_t)c->d_sae, seed + 2, 0.2f);
        ck_assert_int_eq(scalar_sae_param_write(sae, "threshold", thr, (size_t)c->d_sae),
                         SCALAR_OK);
        free(thr);
    }
    free(b_enc);
    free(b_dec);
}

/* The dense codes of SAE_H's formulas in double: pre, activation, top-k. */
static void naive_codes(const scalar_sae *sae, const scalar_sae_config *c, const float *x,
                        int64_t n, double *codes)
{
    int64_t d_in = c->d_in, d_sae = c->d_sae;
    float *W_enc = malloc((size_t)(d_in * d_sae) * sizeof(float));
    float *b_enc = malloc((size_t)d_sae * sizeof(float)), *b_dec = malloc((size_t)d_in * 4);
    float *thr = malloc((size_t)d_sae * sizeof(float));
    ck_assert_int_eq(scalar_sae_param_read(sae, "W_enc", W_enc, (size_t)(d_in * d_sae)), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(sae, "b_enc", b_enc, (size_t)d_sae), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(sae, "b_dec", b_dec, (size_t)d_in), SCALAR_OK);
    if (c->architecture == SCALAR_SAE_JUMPRELU)
        ck_assert_int_eq(scalar_sae_param_read(sae, "threshold", thr, (size_t)d_sae), SCALAR_OK);
    for (int64_t t = 0; t < n; t++) {
        double *row = codes + t * d_sae;
        for (int64_t j = 0; j < d_sae; j++) {
            double pre = b_enc[j];
            for (int64_t i = 0; i < d_in; i++)
                pre += ((double)x[t * d_in + i] - (c->apply_b_dec_to_input ? b_dec[i] : 0.0)) *
                       W_enc[i * d_sae + j];
            if (c->architecture == SCALAR_SAE_JUMPRELU)
                row[j] = pre > thr[j] && pre > 0.0 ? pre : 0.0;
            else
                row[j] = pre > 0.0 ? pre : 0.0;
        }
        if (c->architecture != SCALAR_SAE_TOPK)
            continue;
        for (int64_t j = 0; j < d_sae; j++) { /* keep j if fewer than k beat it */
            int64_t beat = 0;
            for (int64_t l = 0; l < d_sae; l++)
                beat += row[l] > row[j] || (row[l] == row[j] && l < j);
            if (beat >= c->k)
                row[j] = -0.0; /* marked off; read as 0 */
        }
    }
    free(W_enc);
    free(b_enc);
    free(b_dec);
    free(thr);
}

START_TEST(test_config_init_and_checks)
{
    scalar_sae_config c;
    ck_assert_int_eq(scalar_sae_config_init(&c, sizeof c), SCALAR_OK);
    ck_assert_int_eq(c.architecture, SCALAR_SAE_TOPK);
    ck_assert_int_eq(c.d_in, 64);
    ck_assert_int_eq(c.d_sae, 512);
    ck_assert_int_eq(c.k, 10);
    ck_assert_int_eq(c.apply_b_dec_to_input, 1);
    ck_assert_uint_eq(scalar_sae_config_size(), sizeof c);
    ck_assert_int_eq(scalar_sae_config_init(&c, 8), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_config_init(NULL, sizeof c), SCALAR_E_INVALID_ARG);

    scalar_ctx *ctx = new_ctx();
    scalar_sae *sae = (scalar_sae *)1;
    const struct {
        int32_t arch, d_in, d_sae, k;
        const char *msg;
    } bad[] = {
        {SCALAR_SAE_TOPK, 8, 16, 0, "k 0 not in 1..d_sae (16)"},
        {SCALAR_SAE_TOPK, 8, 16, 17, "k 17 not in 1..d_sae (16)"},
        {7, 8, 16, 2, "unknown architecture 7"},
        {SCALAR_SAE_STANDARD, 0, 16, 2, "d_in 0 and d_sae 16 must be in"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = toy_config(bad[i].arch, bad[i].d_in, bad[i].d_sae, bad[i].k);
        ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_E_INVALID_ARG);
        ck_assert_ptr_null(sae);
        ck_assert_msg(strstr(scalar_last_error(), bad[i].msg), "%s", scalar_last_error());
    }
    c = toy_config(SCALAR_SAE_TOPK, 8, 16, 2);
    c.reserved0 = 1;
    ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "reserved0"));
    ck_assert_int_eq(scalar_sae_create(&sae, NULL, &c), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_create(NULL, ctx, &c), SCALAR_E_INVALID_ARG);
    scalar_sae_free(NULL);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_create_initialisation)
{
    scalar_ctx *ctx = new_ctx();
    scalar_sae_config c = toy_config(SCALAR_SAE_TOPK, 64, 512, 10);
    c.hook_name = "blocks.1.hook_mlp_out";
    scalar_sae *a, *b, *other;
    ck_assert_int_eq(scalar_sae_create(&a, ctx, &c), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_create(&b, ctx, &c), SCALAR_OK);
    c.seed = 1;
    ck_assert_int_eq(scalar_sae_create(&other, ctx, &c), SCALAR_OK);
    size_t n = 64 * 512;
    float *W_enc = malloc(n * 4), *W_dec = malloc(n * 4), *W_b = malloc(n * 4), *W_o = malloc(n * 4);
    float b_enc[512], b_dec[64];
    ck_assert_int_eq(scalar_sae_param_read(a, "W_enc", W_enc, n), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(a, "W_dec", W_dec, n), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(b, "W_dec", W_b, n), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(other, "W_dec", W_o, n), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(a, "b_enc", b_enc, 512), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(a, "b_dec", b_dec, 64), SCALAR_OK);
    /* W_enc = W_dec^T; U[-b, b), b = sqrt(6/64): mean ~0, variance b^2/3 = 6/64/3 */
    double bound = sqrt(6.0 / 64.0), sum = 0.0, sumsq = 0.0;
    int differ = 0;
    for (int64_t j = 0; j < 512; j++)
        for (int64_t i = 0; i < 64; i++) {
            float w = W_dec[j * 64 + i];
            ck_assert_float_eq(W_enc[i * 512 + j], w);
            ck_assert_msg(fabs(w) <= bound, "W_dec entry %g outside +-%g", (double)w, bound);
            sum += w;
            sumsq += (double)w * w;
            differ += W_o[j * 64 + i] != w;
        }
    ck_assert_msg(fabs(sum / (double)n) < 0.01, "mean %g", sum / (double)n);
    ck_assert_msg(fabs(sumsq / (double)n / (bound * bound / 3.0) - 1.0) < 0.03,
                  "variance ratio %g", sumsq / (double)n / (bound * bound / 3.0));
    ck_assert_int_eq(memcmp(W_dec, W_b, n * 4), 0); /* same seed, same SAE */
    ck_assert_int_gt(differ, (int)(n * 9 / 10));    /* another seed, another SAE */
    for (int j = 0; j < 512; j++)
        ck_assert_float_eq(b_enc[j], 0.0f);
    for (int i = 0; i < 64; i++)
        ck_assert_float_eq(b_dec[i], 0.0f);
    scalar_sae_config got;
    got.struct_size = sizeof got;
    ck_assert_int_eq(scalar_sae_get_config(a, &got), SCALAR_OK);
    ck_assert_str_eq(got.hook_name, "blocks.1.hook_mlp_out");
    ck_assert_int_eq(got.k, 10);
    float none[1];
    ck_assert_int_eq(scalar_sae_param_read(a, "threshold", none, 1), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_param_read(a, "b_dec", none, 1), SCALAR_E_BUFSIZE);
    none[0] = NAN;
    float ok[64] = {0};
    ok[5] = NAN;
    ck_assert_int_eq(scalar_sae_param_write(a, "b_dec", ok, 64), SCALAR_E_NUMERIC);
    ck_assert_int_eq(scalar_sae_param_write(a, "b_dec", ok, 63), SCALAR_E_INVALID_ARG);
    free(W_enc);
    free(W_dec);
    free(W_b);
    free(W_o);
    scalar_sae_free(a);
    scalar_sae_free(b);
    scalar_sae_free(other);
    scalar_ctx_free(ctx);
}
END_TEST

/* encode, encode_dense, decode and decode_dense of one SAE against the loops. */
static void check_codes(int32_t arch, int32_t d_in, int32_t d_sae, int32_t k, int64_t n,
                        int apply_b_dec)
{
    scalar_ctx *ctx = new_ctx();
    scalar_sae_config c = toy_config(arch, d_in, d_sae, k);
    c.apply_b_dec_to_input = apply_b_dec;
    scalar_sae *sae;
    ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_get_config(sae, &c), SCALAR_OK);
    randomize_biases(sae, &c, 7u + (uint32_t)arch);
    float *x = random_floats((size_t)(n * d_in), 99u, 2.0f);
    double *want = malloc((size_t)(n * d_sae) * sizeof *want);
    float *dense = malloc((size_t)(n * d_sae) * sizeof *dense);
    naive_codes(sae, &c, x, n, want);
    ck_assert_int_eq(scalar_sae_encode_dense(sae, x, n, dense), SCALAR_OK);
    for (int64_t e = 0; e < n * d_sae; e++)
        ck_assert_msg(fabs(dense[e] - want[e]) <= TOL * (fabs(want[e]) + 1.0),
                      "arch %d dense code %lld: %.9g, want %.9g", (int)arch, (long long)e,
                      (double)dense[e], want[e]);
    float *x_hat = malloc((size_t)(n * d_in) * sizeof *x_hat);
    float *x_hat2 = malloc((size_t)(n * d_in) * sizeof *x_hat2);
    ck_assert_int_eq(scalar_sae_decode_dense(sae, dense, n, x_hat), SCALAR_OK);
    if (arch == SCALAR_SAE_TOPK) {
        float *values = malloc((size_t)(n * k) * sizeof *values);
        int32_t *idx = malloc((size_t)(n * k) * sizeof *idx);
        ck_assert_int_eq(scalar_sae_encode(sae, x, n, values, idx), SCALAR_OK);
        for (int64_t t = 0; t < n; t++)
            for (int64_t j = 0; j < k; j++) {
                int32_t l = idx[t * k + j];
                ck_assert_int_ge(l, 0);
                ck_assert_int_lt(l, d_sae);
                ck_assert_float_eq(values[t * k + j], dense[t * d_sae + l]);
                if (j > 0)
                    ck_assert(values[t * k + j - 1] >= values[t * k + j]);
            }
        ck_assert_int_eq(scalar_sae_decode(sae, values, idx, n, k, x_hat2), SCALAR_OK);
        for (int64_t e = 0; e < n * d_in; e++)
            ck_assert_msg(fabsf(x_hat[e] - x_hat2[e]) <= TOL * (fabsf(x_hat[e]) + 1.0f),
                          "sparse decode %lld: %.9g, dense %.9g", (long long)e,
                          (double)x_hat2[e], (double)x_hat[e]);
        free(values);
        free(idx);
    }
    /* decode_dense against W_dec^T f + b_dec in double */
    float *W_dec = malloc((size_t)(d_sae * d_in) * sizeof *W_dec), *b_dec = malloc((size_t)d_in * 4);
    ck_assert_int_eq(scalar_sae_param_read(sae, "W_dec", W_dec, (size_t)(d_sae * d_in)), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_read(sae, "b_dec", b_dec, (size_t)d_in), SCALAR_OK);
    for (int64_t t = 0; t < n; t++)
        for (int64_t i = 0; i < d_in; i++) {
            double acc = b_dec[i], mag = fabs(b_dec[i]);
            for (int64_t j = 0; j < d_sae; j++) {
                acc += (double)dense[t * d_sae + j] * W_dec[j * d_in + i];
                mag += fabs((double)dense[t * d_sae + j] * W_dec[j * d_in + i]);
            }
            ck_assert_msg(fabs(x_hat[t * d_in + i] - acc) <= TOL * (mag + 1.0),
                          "decode_dense [%lld,%lld]: %.9g, want %.9g", (long long)t,
                          (long long)i, (double)x_hat[t * d_in + i], acc);
        }
    free(W_dec);
    free(b_dec);
    free(x);
    free(want);
    free(dense);
    free(x_hat);
    free(x_hat2);
    scalar_sae_free(sae);
    scalar_ctx_free(ctx);
}

START_TEST(test_codes_match_loops)
{
    check_codes(SCALAR_SAE_TOPK, 64, 512, 10, 37, 1);  /* toy */
    check_codes(SCALAR_SAE_TOPK, 17, 40, 40, 5, 0);    /* k = d_sae, no b_dec on the input */
    check_codes(SCALAR_SAE_TOPK, 8, 4096, 3, 300, 1);  /* several encoder blocks */
    check_codes(SCALAR_SAE_STANDARD, 12, 33, 0, 9, 1);
    check_codes(SCALAR_SAE_JUMPRELU, 12, 33, 0, 9, 1);
}
END_TEST

START_TEST(test_sae_keeps_its_context)
{
    scalar_ctx *ctx = new_ctx();
    scalar_sae_config c = toy_config(SCALAR_SAE_TOPK, 8, 16, 2);
    scalar_sae *sae;
    ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_OK);
    scalar_ctx_free(ctx); /* the SAE holds its own reference */
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, values[2];
    int32_t idx[2];
    ck_assert_int_eq(scalar_sae_encode(sae, x, 1, values, idx), SCALAR_OK);
    scalar_sae_free(sae); /* frees the context too: ASan and valgrind see a leak otherwise */
}
END_TEST

START_TEST(test_decode_indices)
{
    scalar_ctx *ctx = new_ctx();
    scalar_sae_config c = toy_config(SCALAR_SAE_TOPK, 4, 8, 2);
    scalar_sae *sae;
    ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_OK);
    float W_dec[32], b_dec[4] = {1, 2, 3, 4}, x_hat[8];
    for (int i = 0; i < 32; i++)
        W_dec[i] = (float)i;
    ck_assert_int_eq(scalar_sae_param_write(sae, "W_dec", W_dec, 32), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_param_write(sae, "b_dec", b_dec, 4), SCALAR_OK);
    float values[4] = {2.0f, 5.0f, 1.0f, 7.0f};
    int32_t idx[4] = {3, -1, 0, 7}; /* token 0: 2 * row 3 (a skipped code); token 1: rows 0, 7 */
    ck_assert_int_eq(scalar_sae_decode(sae, values, idx, 2, 2, x_hat), SCALAR_OK);
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq(x_hat[i], b_dec[i] + 2.0f * W_dec[12 + i]);
        ck_assert_float_eq(x_hat[4 + i], b_dec[i] + W_dec[i] + 7.0f * W_dec[28 + i]);
    }
    idx[3] = 8;
    ck_assert_int_eq(scalar_sae_decode(sae, values, idx, 2, 2, x_hat), SCALAR_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "token 1 code 1: latent 8 >= d_sae 8"));
    ck_assert_int_eq(scalar_sae_decode(sae, values, idx, 0, 2, NULL), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_decode(sae, NULL, idx, 1, 2, x_hat), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_encode(sae, NULL, 1, values, idx), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_encode(sae, b_dec, -1, values, idx), SCALAR_E_INVALID_ARG);
    scalar_sae_free(sae);
    c = toy_config(SCALAR_SAE_STANDARD, 4, 8, 0);
    ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_encode(sae, b_dec, 1, values, idx), SCALAR_E_INVALID_ARG);
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "sparse codes need a TopK SAE"));
    scalar_sae_free(sae);
    scalar_ctx_free(ctx);
}
END_TEST

/* ---- files ---- */

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static int same_params(const scalar_sae *a, const scalar_sae *b, const char *name, size_t n)
{
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    int same = scalar_sae_param_read(a, name, x, n) == SCALAR_OK &&
               scalar_sae_param_read(b, name, y, n) == SCALAR_OK && memcmp(x, y, n * 4) == 0;
    free(x);
    free(y);
    return same;
}

START_TEST(test_save_load_round_trip)
{
    scalar_ctx *ctx = new_ctx();
    const int32_t archs[] = {SCALAR_SAE_TOPK, SCALAR_SAE_STANDARD, SCALAR_SAE_JUMPRELU};
    for (int a = 0; a < 3; a++) {
        scalar_sae_config c = toy_config(archs[a], 16, 48, 5);
        c.hook_name = "blocks.2.hook_resid_pre";
        c.apply_b_dec_to_input = a != 1;
        scalar_sae *sae, *back;
        ck_assert_int_eq(scalar_sae_create(&sae, ctx, &c), SCALAR_OK);
        randomize_biases(sae, &c, 3u);
        char dir[64];
        snprintf(dir, sizeof dir, "sae-%d", a);
        const char *path = test_tmp_path(dir);
        ck_assert_int_eq(scalar_sae_save(sae, path), SCALAR_OK);
        ck_assert_int_eq(scalar_sae_load(&back, ctx, path), SCALAR_OK);
        scalar_sae_config got;
        got.struct_size = sizeof got;
        ck_assert_int_eq(scalar_sae_get_config(back, &got), SCALAR_OK);
        ck_assert_int_eq(got.architecture, archs[a]);
        ck_assert_int_eq(got.d_in, 16);
        ck_assert_int_eq(got.d_sae, 48);
        ck_assert_int_eq(got.k, archs[a] == SCALAR_SAE_TOPK ? 5 : 0);
        ck_assert_int_eq(got.apply_b_dec_to_input, a != 1);
        ck_assert_str_eq(got.hook_name, "blocks.2.hook_resid_pre");
        ck_assert(same_params(sae, back, "W_enc", 16 * 48));
        ck_assert(same_params(sae, back, "b_enc", 48));
        ck_assert(same_params(sae, back, "W_dec", 48 * 16));
        ck_assert(same_params(sae, back, "b_dec", 16));
        if (archs[a] == SCALAR_SAE_JUMPRELU)
            ck_assert(same_params(sae, back, "threshold", 48));
        char cfg_path[1100];
        snprintf(cfg_path, sizeof cfg_path, "%s/cfg.json", path);
        char *text = read_text(cfg_path);
        cJSON *root = cJSON_Parse(text);
        ck_assert_ptr_nonnull(root);
        const char *arch_str[] = {"topk", "standard", "jumprelu"};
        ck_assert_str_eq(cJSON_GetObjectItem(root, "architecture")->valuestring, arch_str[a]);
        ck_assert_int_eq(cJSON_GetObjectItem(root, "d_sae")->valueint, 48);
        ck_assert_int_eq(cJSON_GetObjectItem(root, "d_in")->valueint, 16);
        ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "metadata"),
                                             "hook_name")->valuestring,
                         "blocks.2.hook_resid_pre");
        if (archs[a] == SCALAR_SAE_TOPK)
            ck_assert_int_eq(cJSON_GetObjectItem(root, "k")->valueint, 5);
        cJSON_Delete(root);
        free(text);
        scalar_sae_free(sae);
        scalar_sae_free(back);
    }
    scalar_ctx_free(ctx);
}
END_TEST

/* A folder with `cfg` and the tensors of a 4 x 6 SAE (threshold if asked),
 * one of them optionally renamed, reshaped or poisoned. */
static const char *make_folder(const char *name, const char *cfg, int with_threshold,
                               const char *rename_b_enc, int b_enc_len, int nan)
{
    const char *dir = test_tmp_path(name);
    mkdir(dir, 0755);
    char path[1100];
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    write_text(path, cfg);
    scalar_ctx *ctx = new_ctx();
    scalar_safetensors_writer *w;
    ck_assert_int_eq(scalar_safetensors_writer_create(&w, ctx), SCALAR_OK);
    float W[24], b6[6] = {0}, b4[4] = {0}, thr[6] = {0};
    for (int i = 0; i < 24; i++)
        W[i] = (float)i / 24.0f;
    if (nan)
        W[5] = NAN;
    int64_t s_enc[2] = {4, 6}, s_dec[2] = {6, 4}, s6[1] = {b_enc_len}, s4[1] = {4}, s_thr[1] = {6};
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "W_enc", SCALAR_DTYPE_F32, s_enc, 2, W, 96),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, rename_b_enc ? rename_b_enc : "b_enc",
                                                   SCALAR_DTYPE_F32, s6, 1, b6,
                                                   (size_t)b_enc_len * 4), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "W_dec", SCALAR_DTYPE_F32, s_dec, 2, W, 96),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "b_dec", SCALAR_DTYPE_F32, s4, 1, b4, 16),
                     SCALAR_OK);
    if (with_threshold)
        ck_assert_int_eq(scalar_safetensors_writer_add(w, "threshold", SCALAR_DTYPE_F32, s_thr, 1,
                                                       thr, 24), SCALAR_OK);
    snprintf(path, sizeof path, "%s/sae_weights.safetensors", dir);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    scalar_ctx_free(ctx);
    return dir;
}

START_TEST(test_load_cfg_spellings)
{
    scalar_ctx *ctx = new_ctx();
    scalar_sae *sae;
    scalar_sae_config got;
    got.struct_size = sizeof got;
    /* SAELens <= 5: TopK as activation_fn with k in activation_fn_kwargs, hook in metadata */
    const char *old = make_folder("old-topk", "{\"d_in\": 4, \"d_sae\": 6, \"architecture\": "
                                  "\"standard\", \"activation_fn\": \"topk\", "
                                  "\"activation_fn_kwargs\": {\"k\": 3}, \"metadata\": "
                                  "{\"hook_name\": \"blocks.0.hook_mlp_out\"}, "
                                  "\"normalize_activations\": \"none\"}", 0, NULL, 6, 0);
    ck_assert_int_eq(scalar_sae_load(&sae, ctx, old), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_get_config(sae, &got), SCALAR_OK);
    ck_assert_int_eq(got.architecture, SCALAR_SAE_TOPK);
    ck_assert_int_eq(got.k, 3);
    ck_assert_str_eq(got.hook_name, "blocks.0.hook_mlp_out");
    ck_assert_int_eq(got.apply_b_dec_to_input, 1);
    scalar_sae_free(sae);
    /* no architecture key: standard; apply_b_dec_to_input false; hook top-level */
    const char *std = make_folder("std", "{\"d_in\": 4, \"d_sae\": 6, \"apply_b_dec_to_input\": "
                                  "false, \"hook_name\": \"blocks.3.hook_resid_post\"}", 0, NULL,
                                  6, 0);
    ck_assert_int_eq(scalar_sae_load(&sae, ctx, std), SCALAR_OK);
    ck_assert_int_eq(scalar_sae_get_config(sae, &got), SCALAR_OK);
    ck_assert_int_eq(got.architecture, SCALAR_SAE_STANDARD);
    ck_assert_int_eq(got.apply_b_dec_to_input, 0);
    ck_assert_str_eq(got.hook_name, "blocks.3.hook_resid_post");
    scalar_sae_free(sae);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_load_refusals)
{
    scalar_ctx *ctx = new_ctx();
    const struct {
        const char *name, *cfg;
        int threshold;
        const char *rename;
        int b_enc_len, nan;
        scalar_status status;
        const char *msg;
    } cases[] = {
        {"gated", "{\"d_in\": 4, \"d_sae\": 6, \"architecture\": \"gated\"}", 0, NULL, 6, 0,
         SCALAR_E_FORMAT, "architecture \"gated\" is not supported"},
        {"norm", "{\"d_in\": 4, \"d_sae\": 6, \"normalize_activations\": "
         "\"expected_average_only_in\"}", 0, NULL, 6, 0, SCALAR_E_FORMAT,
         "normalize_activations = expected_average_only_in is not supported"},
        {"no-k", "{\"d_in\": 4, \"d_sae\": 6, \"architecture\": \"topk\"}", 0, NULL, 6, 0,
         SCALAR_E_FORMAT, "activation_fn_kwargs.k"},
        {"no-d", "{\"d_sae\": 6}", 0, NULL, 6, 0, SCALAR_E_FORMAT, "d_in"},
        {"missing-thr", "{\"d_in\": 4, \"d_sae\": 6, \"architecture\": \"jumprelu\"}", 0, NULL, 6,
         0, SCALAR_E_FORMAT, "tensor \"threshold\" is missing (a jumprelu SAE)"},
        {"extra", "{\"d_in\": 4, \"d_sae\": 6}", 1, NULL, 6, 0, SCALAR_E_FORMAT,
         "unexpected tensor \"threshold\" for a standard SAE"},
        {"renamed", "{\"d_in\": 4, \"d_sae\": 6}", 0, "b_gate", 6, 0, SCALAR_E_FORMAT,
         "unexpected tensor \"b_gate\""},
        {"shape", "{\"d_in\": 4, \"d_sae\": 6}", 0, NULL, 5, 0, SCALAR_E_SHAPE,
         "\"b_enc\" has shape [5], cfg.json says [6]"},
        {"nan", "{\"d_in\": 4, \"d_sae\": 6}", 0, NULL, 6, 1, SCALAR_E_NUMERIC,
         "\"W_enc\"[5] is not finite"},
        {"dtype", "{\"d_in\": 4, \"d_sae\": 6, \"dtype\": \"float64\"}", 0, NULL, 6, 0,
         SCALAR_E_FORMAT, "dtype = float64 is not supported"},
        {"topk-jump", "{\"d_in\": 4, \"d_sae\": 6, \"architecture\": \"jumprelu\", "
         "\"activation_fn\": \"topk\", \"activation_fn_kwargs\": {\"k\": 2}}", 1, NULL, 6, 0,
         SCALAR_E_FORMAT, "activation_fn \"topk\" with architecture \"jumprelu\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *dir = make_folder(cases[i].name, cases[i].cfg, cases[i].threshold,
                                      cases[i].rename, cases[i].b_enc_len, cases[i].nan);
        scalar_sae *sae = (scalar_sae *)1;
        ck_assert_int_eq(scalar_sae_load(&sae, ctx, dir), cases[i].status);
        ck_assert_ptr_null(sae);
        ck_assert_msg(strstr(scalar_last_error(), cases[i].msg), "%s: %s", cases[i].name,
                      scalar_last_error());
    }
    scalar_sae *sae;
    ck_assert_int_eq(scalar_sae_load(&sae, ctx, test_tmp_path("no-such-folder")), SCALAR_E_IO);
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "is not a folder"));
    ck_assert_int_eq(scalar_sae_load(&sae, NULL, "x"), SCALAR_E_INVALID_ARG);
    ck_assert_int_eq(scalar_sae_save(NULL, "x"), SCALAR_E_INVALID_ARG);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_allocation_failures)
{
    scalar_sae_config c = toy_config(SCALAR_SAE_TOPK, 16, 64, 4);
    float x[32] = {0}, values[8];
    int32_t idx[8];
    int passed = 0;
    for (long fail_at = 1; fail_at < 40 && !passed; fail_at++) {
        test_counting counts = {0, 0, 0, 0};
        scalar_ctx *ctx;
        ck_assert_int_eq(test_ctx_with(&ctx, &counts, NULL, 1), SCALAR_OK);
        counts.fail_at = counts.n_alloc + fail_at;
        scalar_sae *sae = NULL;
        scalar_status s = scalar_sae_create(&sae, ctx, &c);
        if (s == SCALAR_OK)
            s = scalar_sae_encode(sae, x, 2, values, idx);
        if (s == SCALAR_OK)
            passed = 1;
        else
            ck_assert_int_eq(s, SCALAR_E_NOMEM);
        scalar_sae_free(sae);
        scalar_ctx_free(ctx);
        ck_assert_uint_eq(counts.live_bytes, 0);
    }
    ck_assert(passed);
}
END_TEST

Suite *scalar_sae_suite(void)
{
    Suite *s = suite_create("sae");
    TCase *tc = tcase_create("sae");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_config_init_and_checks);
    tcase_add_test(tc, test_create_initialisation);
    tcase_add_test(tc, test_codes_match_loops);
    tcase_add_test(tc, test_sae_keeps_its_context);
    tcase_add_test(tc, test_decode_indices);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_load_cfg_spellings);
    tcase_add_test(tc, test_load_refusals);
    tcase_add_test(tc, test_allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}
