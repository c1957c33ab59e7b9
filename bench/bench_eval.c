/*
 * bench_eval.c - the SCALAR evaluator's attribution (step 1: the full matrix
 * A [F_U, F_D] of one SAE pair) through libscalar against the reference's
 * slow algorithm in PyTorch, both measured in this run on this machine.
 *
 * Setup (all from fixed seeds, written to a temporary folder so that both
 * sides load the same files):
 *   model  SPEC.md's toy GPT-2 (4 layers, 4 heads, n_embd 64, context 128,
 *          vocabulary 128), SPEC init from the context seed, then (as
 *          tests/reference's fixtures) LayerNorm weights x U[0.5, 1.5), every
 *          bias N(0, 0.02^2), and every tensor except the LayerNorm weights
 *          x WEIGHT_SCALE (6): attention scores, GELU inputs and logits of std
 *          ~1 instead of the near-linear, near-uniform regime of the plain init
 *   SAEs   per path (ff, mlpblock, block at layer 1) a TopK upstream and
 *          downstream SAE, d_sae 512, k 10, on the hooks the path needs; with
 *          mu, s the mean and rms spread of the hook's activation on the data:
 *          unit directions d_i ~ normalised N(0, I), W_dec[i] = s d_i,
 *          W_enc[:, i] = d_i / s (W_enc = W_dec^T up to the scale), b_enc in
 *          [0.05, 0.1) (pre-activations are ~N(0, 1)), b_dec = mu
 *   data   64 sequences x 128 tokens: the first 8,192 tokens of Tiny
 *          Shakespeare's val split (../shared/data/tinyshakespeare.txt or
 *          $SCALAR_BENCH_TEXT; SPEC's split), else a fixed pseudo-random stream
 *
 *   ours   scalar_evaluator_attribute on all 64 x 128 tokens in one call
 *          (gradient path, S = 5; clean mode, and parity mode), a fresh
 *          evaluator per run, RUNS timed runs (default 3): median [best]
 *   torch  bench/torch_eval.py: tests/reference/scalar_ref.py's
 *          attribution_slow (one autograd backward per downstream latent per
 *          point, retain_graph) in float32, on the same files and tokens,
 *          for LATENTS (default 16) downstream latents, extrapolated linearly
 *          to every latent D keeps at some position, point by point (the
 *          formula is printed); clean mode.  Its columns are compared with
 *          ours (norm-wise relative per column, tolerance 1e-3).
 * Both at 1 .. THREADS threads (torch.set_num_threads and BLIS_NUM_THREADS
 * equal to ours).  ratio = PyTorch's extrapolated time / our median.
 * Targets (clean mode): >= 50x for ff and mlpblock, >= 10x for block.  A
 * miss is printed loudly but the exit status stays 0 (as the other benches).
 * Without python3 or torch the PyTorch columns say why and our
 * numbers still print.
 *
 * Environment:
 *   SCALAR_BENCH_PYTHON      the Python with torch (default /usr/bin/python3)
 *   SCALAR_BENCH_RUNS        timed runs of ours per measurement (default 3)
 *   SCALAR_BENCH_LATENTS     downstream latents PyTorch runs (default 16)
 *   SCALAR_BENCH_THREADS     largest thread count; 1 .. this are run (default 2)
 *   SCALAR_BENCH_TEXT        the text whose val split gives the tokens
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#define BENCH_NAME "bench_eval"
#include "bench_util.h"

#define N_SEQ 64
#define SEQ 128
#define LAYER 1
#define D_SAE 512
#define TOPK 10
#define STEPS 5
#define WEIGHT_SCALE 6.0f
#define SEED 0xE7A1u
#define CHECK_TOL 1e-3
#define MAX_RUNS 15
#define MAX_THREADS 16
#define N_PATHS 3
#define STATS_BATCH 8

static const char *const path_names[N_PATHS] = {"ff", "mlpblock", "block"};
static const int32_t path_ids[N_PATHS] = {SCALAR_PATH_FF_LAYER, SCALAR_PATH_FF_BLOCK,
                                          SCALAR_PATH_BLOCK};
static const int32_t hook_u[N_PATHS] = {SCALAR_HOOK_MLP_IN, SCALAR_HOOK_RESID_MID,
                                        SCALAR_HOOK_RESID_PRE};
static const int32_t hook_d[N_PATHS] = {SCALAR_HOOK_MLP_OUT, SCALAR_HOOK_RESID_POST,
                                        SCALAR_HOOK_RESID_POST};
static const double targets[N_PATHS] = {50.0, 50.0, 10.0};

typedef struct side {
    double median_s, best_s;
    int ok;
} side;

typedef struct torch_path {
    double measured_s, extrapolated_s, literal_s, per_backward_s;
    double t_codes, t_fwd, t_bwd; /* t_fwd, t_bwd: summed over the points */
    int n_kept[STEPS], latents, ok;
    double check_rel, check_median;
    int check_worst, check_over, check_columns;
    char check_why[128];
} torch_path;

typedef struct run {
    side clean[N_PATHS], parity[N_PATHS];
    torch_path torch[N_PATHS];
    char why[512], version[64], blas[512], reader[128];
} run;

/* ===================================================================== */
/*  Random numbers (splitmix64)                                           */
/* ===================================================================== */

static uint64_t rng_state;

static uint64_t next_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double uniform(void)
{
    return (double)(next_u64() >> 11) * 0x1.0p-53;
}

/* N(0, 1) by Box-Muller (one of the pair). */
static double normal(void)
{
    double u = uniform() + 0x1.0p-54, v = uniform();
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* ===================================================================== */
/*  Setup: model, data, SAEs, files                                       */
/* ===================================================================== */

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* The toy model, SPEC init, then the perturbation and scale described above. */
static scalar_status make_model(scalar_ctx *ctx, scalar_model **out)
{
    scalar_model_config mc;
    scalar_model_config_init(&mc, sizeof mc);
    scalar_status st = scalar_model_config_preset(&mc, "toy");
    if (st == SCALAR_OK)
        st = scalar_model_create(out, ctx, &mc);
    rng_state = SEED;
    for (int32_t p = 0; st == SCALAR_OK && p < scalar_model_param_count(*out); p++) {
        const char *name;
        int64_t shape[2];
        int32_t ndim;
        st = scalar_model_param_info(*out, p, &name, shape, &ndim);
        if (st != SCALAR_OK)
            break;
        size_t n = (size_t)(shape[0] * shape[1]);
        float *v = malloc(n * sizeof *v);
        if (!v)
            return SCALAR_E_NOMEM;
        st = scalar_model_param_read(*out, name, v, n);
        int ln_weight = strstr(name, "ln_") && ends_with(name, ".weight");
        for (size_t e = 0; st == SCALAR_OK && e < n; e++) {
            if (ln_weight)
                v[e] *= (float)(0.5 + uniform());
            else if (ends_with(name, ".bias"))
                v[e] = (float)(0.02 * normal());
            if (!ln_weight)
                v[e] *= WEIGHT_SCALE;
        }
        if (st == SCALAR_OK)
            st = scalar_model_param_write(*out, name, v, n);
        free(v);
    }
    return st;
}

/* The first N_SEQ * SEQ tokens of the val split of the text (SPEC's split:
 * n_train = floor(0.9 n) rounded down to a multiple of 256); 0 on success,
 * else -1 with the ids a fixed pseudo-random stream. */
static int load_ids(int32_t *ids, char *desc, size_t desc_size)
{
    const char *path = getenv("SCALAR_BENCH_TEXT");
    if (!path || !*path)
        path = "../shared/data/tinyshakespeare.txt";
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)n)) && fread(text, 1, (size_t)n, f) == (size_t)n) {
        long n_train = (long)floor((double)n * 0.9) / 256 * 256;
        if (n - n_train >= N_SEQ * SEQ &&
            scalar_ascii_encode(text + n_train, N_SEQ * SEQ, ids) == SCALAR_OK) {
            snprintf(desc, desc_size, "%s, val split (from token %ld of %ld), the first %d "
                     "tokens as %d sequences of %d", path, n_train, n, N_SEQ * SEQ, N_SEQ, SEQ);
            free(text);
            fclose(f);
            return 0;
        }
    }
    free(text);
    if (f)
        fclose(f);
    rng_state = SEED + 1;
    for (int i = 0; i < N_SEQ * SEQ; i++)
        ids[i] = (int32_t)(next_u64() % SCALAR_ASCII_VOCAB_SIZE);
    snprintf(desc, desc_size, "%s not found: %d x %d uniform pseudo-random ids in [0, 128) "
             "(splitmix64, seed %#x)", path, N_SEQ, SEQ, SEED + 1);
    return -1;
}

/* Mean [C] and rms spread about it of every hook kind at LAYER on the data. */
static scalar_status hook_stats(scalar_model *m, const int32_t *ids, int64_t C,
                                double mu[][64], double *spread)
{
    scalar_model_workspace *ws = NULL;
    float *x = malloc((size_t)(STATS_BATCH * SEQ * C) * sizeof *x);
    double sum[SCALAR_HOOK_KIND_COUNT][64] = {{0}}, sq[SCALAR_HOOK_KIND_COUNT] = {0};
    scalar_status st = x ? scalar_model_workspace_create(&ws, m, STATS_BATCH, SEQ, 0)
                         : SCALAR_E_NOMEM;
    for (int b = 0; st == SCALAR_OK && b < N_SEQ; b += STATS_BATCH) {
        st = scalar_model_forward(m, ws, ids + b * SEQ, NULL, STATS_BATCH, SEQ, NULL, NULL);
        for (int h = 0; st == SCALAR_OK && h < SCALAR_HOOK_KIND_COUNT; h++) {
            st = scalar_model_workspace_read(ws, LAYER, h, x, (size_t)(STATS_BATCH * SEQ * C));
            for (int64_t e = 0; st == SCALAR_OK && e < STATS_BATCH * SEQ * C; e++) {
                sum[h][e % C] += x[e];
                sq[h] += (double)x[e] * x[e];
            }
        }
    }
    const double n = (double)N_SEQ * SEQ;
    for (int h = 0; h < SCALAR_HOOK_KIND_COUNT; h++) {
        double m2 = 0.0;
        for (int64_t c = 0; c < C; c++) {
            mu[h][c] = sum[h][c] / n;
            m2 += mu[h][c] * mu[h][c];
        }
        spread[h] = sqrt(fmax(sq[h] / (n * (double)C) - m2 / (double)C, 1e-12));
    }
    scalar_model_workspace_free(ws);
    free(x);
    return st;
}

/* A TopK SAE on hook kind h at LAYER, drawn as described above. */
static scalar_status make_sae(scalar_ctx *ctx, int32_t h, const double *mu, double s,
                              uint64_t seed, scalar_sae **out)
{
    const int64_t C = 64, F = D_SAE;
    char hook[32];
    scalar_sae_config c;
    scalar_sae_config_init(&c, sizeof c);
    c.d_in = (int32_t)C;
    c.d_sae = (int32_t)F;
    c.k = TOPK;
    c.hook_name = hook;
    scalar_status st = scalar_model_hook_name(hook, sizeof hook, LAYER, h);
    if (st == SCALAR_OK)
        st = scalar_sae_create(out, ctx, &c);
    float *enc = malloc((size_t)(C * F) * sizeof(float));
    float *dec = malloc((size_t)(C * F) * sizeof(float));
    float *b_enc = malloc((size_t)F * sizeof(float)), b_dec[64];
    if (st == SCALAR_OK && !(enc && dec && b_enc))
        st = SCALAR_E_NOMEM;
    rng_state = seed;
    for (int64_t i = 0; st == SCALAR_OK && i < F; i++) {
        double d[64], norm = 0.0;
        for (int64_t k = 0; k < C; k++) {
            d[k] = normal();
            norm += d[k] * d[k];
        }
        norm = sqrt(norm);
        for (int64_t k = 0; k < C; k++) {
            dec[i * C + k] = (float)(s * d[k] / norm);
            enc[k * F + i] = (float)(d[k] / norm / s);
        }
        b_enc[i] = (float)(0.05 + 0.05 * uniform());
    }
    for (int64_t k = 0; k < C; k++)
        b_dec[k] = (float)mu[k];
    if (st == SCALAR_OK)
        st = scalar_sae_param_write(*out, "W_enc", enc, (size_t)(C * F));
    if (st == SCALAR_OK)
        st = scalar_sae_param_write(*out, "W_dec", dec, (size_t)(C * F));
    if (st == SCALAR_OK)
        st = scalar_sae_param_write(*out, "b_enc", b_enc, (size_t)F);
    if (st == SCALAR_OK)
        st = scalar_sae_param_write(*out, "b_dec", b_dec, (size_t)C);
    free(enc);
    free(dec);
    free(b_enc);
    return st;
}

static void join(char *out, size_t size, const char *dir, const char *a, const char *b)
{
    snprintf(out, size, "%s/%s%s%s", dir, a, b ? "/" : "", b ? b : "");
}

/* The folder's files (those this bench and the library write) and itself. */
static void remove_folder(const char *dir)
{
    static const char *const files[] = {"cfg.json", "sae_weights.safetensors", "config.json",
                                        "model.safetensors"};
    char p[4200], sub[64];
    for (int s = -1; s < 2 * N_PATHS; s++) {
        if (s < 0)
            snprintf(sub, sizeof sub, "model");
        else
            snprintf(sub, sizeof sub, "%s_%s", path_names[s / 2], s % 2 ? "D" : "U");
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            join(p, sizeof p, dir, sub, files[f]);
            unlink(p);
        }
        join(p, sizeof p, dir, sub, NULL);
        rmdir(p);
    }
    for (int s = 0; s < N_PATHS; s++) {
        snprintf(sub, sizeof sub, "%s_A.f32", path_names[s]);
        join(p, sizeof p, dir, sub, NULL);
        unlink(p);
    }
    join(p, sizeof p, dir, "ids.i32", NULL);
    unlink(p);
    rmdir(dir);
}

static int write_floats(const char *dir, const char *name, const void *data, size_t bytes)
{
    char p[4200];
    join(p, sizeof p, dir, name, NULL);
    FILE *f = fopen(p, "wb");
    int ok = f && fwrite(data, 1, bytes, f) == bytes;
    if (f && fclose(f))
        ok = 0;
    return ok ? 0 : -1;
}

/* Model, hook statistics, SAEs and ids into dir. */
static int setup(const char *dir, const int32_t *ids, double spread_out[SCALAR_HOOK_KIND_COUNT])
{
    scalar_ctx *ctx = make_ctx("cpu", 2);
    scalar_model *m = NULL;
    double mu[SCALAR_HOOK_KIND_COUNT][64];
    char p[4200];
    if (!ctx)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    scalar_status st = make_model(ctx, &m);
    if (st == SCALAR_OK)
        st = hook_stats(m, ids, 64, mu, spread_out);
    if (st == SCALAR_OK) {
        join(p, sizeof p, dir, "model", NULL);
        st = scalar_model_save(m, p);
    }
    for (int s = 0; s < 2 * N_PATHS && st == SCALAR_OK; s++) {
        int32_t h = s % 2 ? hook_d[s / 2] : hook_u[s / 2];
        scalar_sae *sae = NULL;
        char sub[64];
        st = make_sae(ctx, h, mu[h], spread_out[h], SEED + 100 + (uint64_t)s, &sae);
        snprintf(sub, sizeof sub, "%s_%s", path_names[s / 2], s % 2 ? "D" : "U");
        join(p, sizeof p, dir, sub, NULL);
        if (st == SCALAR_OK)
            st = scalar_sae_save(sae, p);
        scalar_sae_free(sae);
    }
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    if (st != SCALAR_OK)
        return fail("setup", st);
    if (write_floats(dir, "ids.i32", ids, (size_t)(N_SEQ * SEQ) * sizeof(int32_t))) {
        fprintf(stderr, BENCH_NAME ": could not write %s/ids.i32\n", dir);
        return 1;
    }
    return 0;
}

/* ===================================================================== */
/*  libscalar                                                             */
/* ===================================================================== */

/* runs timed scalar_evaluator_attribute calls on all the tokens, each on a
 * fresh evaluator; the first run's A goes to dir/<path>_A.f32 when save. */
static scalar_status time_attribute(scalar_model *m, const scalar_sae *U, const scalar_sae *D,
                                    int p, uint32_t quirks, const int32_t *ids, int runs,
                                    const char *save_dir, side *out, int64_t *kept)
{
    double t[MAX_RUNS];
    scalar_status st = SCALAR_OK;
    scalar_evaluator_options o;
    scalar_evaluator_options_init(&o, sizeof o);
    o.quirks = quirks;
    o.steps = STEPS;
    for (int r = 0; r < runs && st == SCALAR_OK; r++) {
        scalar_evaluator *ev = NULL;
        st = scalar_evaluator_create(&ev, m, U, D, path_ids[p], LAYER, &o);
        double t0 = now();
        if (st == SCALAR_OK)
            st = scalar_evaluator_attribute(ev, ids, N_SEQ, SEQ);
        t[r] = now() - t0;
        if (st == SCALAR_OK && r == 0 && (save_dir || kept)) {
            float *A = malloc((size_t)D_SAE * D_SAE * sizeof(float));
            st = A ? scalar_evaluator_read_attribution(ev, A, (size_t)D_SAE * D_SAE)
                   : SCALAR_E_NOMEM;
            if (st == SCALAR_OK && kept) {
                *kept = 0; /* downstream latents with a nonzero column */
                for (int j = 0; j < D_SAE; j++) {
                    int nz = 0;
                    for (int i = 0; i < D_SAE && !nz; i++)
                        nz = A[i * D_SAE + j] != 0.0f;
                    *kept += nz;
                }
            }
            char name[64];
            snprintf(name, sizeof name, "%s_A.f32", path_names[p]);
            if (st == SCALAR_OK && save_dir &&
                write_floats(save_dir, name, A, (size_t)D_SAE * D_SAE * sizeof(float)))
                st = SCALAR_E_IO;
            free(A);
        }
        scalar_evaluator_free(ev);
    }
    if (st == SCALAR_OK) {
        median_best(t, runs, &out->median_s, &out->best_s);
        out->ok = 1;
    }
    return st;
}

/* Every path, clean and parity, at n_threads, on the saved files. */
static int bench_ours(const char *dir, int n_threads, const int32_t *ids, int runs, run *r,
                      int64_t kept[N_PATHS])
{
    scalar_ctx *ctx = make_ctx("cpu", n_threads);
    scalar_model *m = NULL;
    char p[4200];
    if (!ctx)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    join(p, sizeof p, dir, "model", NULL);
    scalar_status st = scalar_model_load(&m, ctx, p);
    for (int q = 0; q < N_PATHS && st == SCALAR_OK; q++) {
        scalar_sae *U = NULL, *D = NULL;
        char sub[64];
        snprintf(sub, sizeof sub, "%s_U", path_names[q]);
        join(p, sizeof p, dir, sub, NULL);
        st = scalar_sae_load(&U, ctx, p);
        snprintf(sub, sizeof sub, "%s_D", path_names[q]);
        join(p, sizeof p, dir, sub, NULL);
        if (st == SCALAR_OK)
            st = scalar_sae_load(&D, ctx, p);
        if (st == SCALAR_OK)
            st = time_attribute(m, U, D, q, 0u, ids, runs, n_threads == 1 ? dir : NULL,
                                &r->clean[q], n_threads == 1 ? &kept[q] : NULL);
        if (st == SCALAR_OK)
            st = time_attribute(m, U, D, q, SCALAR_QUIRKS_PARITY, ids, runs, NULL,
                                &r->parity[q], NULL);
        scalar_sae_free(U);
        scalar_sae_free(D);
        if (st != SCALAR_OK) {
            char what[96];
            snprintf(what, sizeof what, "libscalar %s, %d thread%s", path_names[q], n_threads,
                     n_threads == 1 ? "" : "s");
            scalar_model_free(m);
            scalar_ctx_free(ctx);
            return fail(what, st);
        }
    }
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    return st == SCALAR_OK ? 0 : fail("load the saved model", st);
}

/* ===================================================================== */
/*  PyTorch in a subprocess                                               */
/* ===================================================================== */

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static double sum_array(const cJSON *o, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;
    double s = 0.0;
    cJSON_ArrayForEach(e, a) s += cJSON_IsNumber(e) ? e->valuedouble : NAN;
    return cJSON_IsArray(a) ? s : NAN;
}

static void parse_torch(const char *output, int status, run *r)
{
    cJSON *root = parse_last_json(output);
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "skip");
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(root, "paths");
    if (cJSON_IsString(why)) {
        snprintf(r->why, sizeof r->why, "%s", why->valuestring);
    } else if (!cJSON_IsObject(paths)) {
        char tail[400];
        last_line(tail, sizeof tail, output);
        snprintf(r->why, sizeof r->why, "no result (exit status %d): %s", status, tail);
    } else {
        copy_string(r->version, sizeof r->version, root, "torch");
        copy_string(r->blas, sizeof r->blas, root, "blas");
        copy_string(r->reader, sizeof r->reader, root, "reader");
        for (int q = 0; q < N_PATHS; q++) {
            const cJSON *o = cJSON_GetObjectItemCaseSensitive(paths, path_names[q]);
            torch_path *t = &r->torch[q];
            t->extrapolated_s = num(o, "extrapolated_s");
            if (!(t->extrapolated_s > 0.0))
                continue;
            t->measured_s = num(o, "measured_s");
            t->literal_s = num(o, "literal_s");
            t->per_backward_s = num(o, "per_backward_s");
            t->t_codes = num(o, "t_codes");
            t->t_fwd = sum_array(o, "t_fwd");
            t->t_bwd = sum_array(o, "t_bwd");
            t->latents = (int)num(o, "latents");
            const cJSON *nk = cJSON_GetObjectItemCaseSensitive(o, "n_kept"), *e;
            int s = 0;
            cJSON_ArrayForEach(e, nk) if (s < STEPS) t->n_kept[s++] = (int)e->valuedouble;
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "check");
            const cJSON *cw = cJSON_GetObjectItemCaseSensitive(c, "skip");
            t->check_rel = num(c, "max_rel");
            t->check_median = num(c, "median_rel");
            t->check_worst = (int)num(c, "worst_latent");
            t->check_over = (int)num(c, "over_1e-3");
            t->check_columns = (int)num(c, "columns");
            snprintf(t->check_why, sizeof t->check_why, "%s",
                     cJSON_IsString(cw) ? cw->valuestring : "");
            t->ok = 1;
        }
    }
    cJSON_Delete(root);
}

static void bench_torch(const char *dir, int n_threads, int latents, run *r)
{
    char args[4400];
    snprintf(args, sizeof args, "--threads %d --latents %d --layer %d --steps %d --n-seq %d "
             "--seq %d --mode clean --dir ", n_threads, latents, LAYER, STEPS, N_SEQ, SEQ);
    append_quoted(args, sizeof args, dir);
    int status = 0;
    char *output = run_script("torch_eval.py", n_threads, args, &status, r->why, sizeof r->why);
    if (!output)
        return;
    parse_torch(output, status, r);
    free(output);
}

/* ===================================================================== */
/*  Report                                                                */
/* ===================================================================== */

static void format_ratio(char *buf, size_t size, double ratio, double target)
{
    if (ratio > 0.0)
        snprintf(buf, size, "%8.1fx %-3s", ratio, ratio < target ? "<--" : "");
    else
        snprintf(buf, size, "%9s %3s", "-", "");
}

int main(void)
{
    const int runs = env_int("SCALAR_BENCH_RUNS", 3, 1, MAX_RUNS);
    const int latents = env_int("SCALAR_BENCH_LATENTS", 16, 1, D_SAE);
    const int max_threads = env_int("SCALAR_BENCH_THREADS", 2, 1, MAX_THREADS);
    double t_start = now();

    int32_t *ids = malloc((size_t)(N_SEQ * SEQ) * sizeof *ids);
    if (!ids)
        return fail("setup", SCALAR_E_NOMEM);
    char data_desc[512];
    load_ids(ids, data_desc, sizeof data_desc);

    printf("SCALAR evaluator, step 1 (the full attribution matrix A [%d, %d] of one SAE pair "
           "on %d x %d tokens): libscalar vs the reference's slow algorithm in PyTorch\n",
           D_SAE, D_SAE, N_SEQ, SEQ);
    printf("  model: SPEC's toy GPT-2 (4 layers, 4 heads, n_embd 64, context 128, vocab 128), "
           "SPEC init, LayerNorm weights x U[0.5, 1.5), biases N(0, 0.02^2), every tensor but "
           "the LayerNorm weights x %.0f\n", (double)WEIGHT_SCALE);
    printf("  SAEs: per path a TopK pair at layer %d, d_sae %d, k %d; W_dec rows s*d_i, W_enc "
           "= W_dec^T / s^2 (d_i unit, random), b_enc in [0.05, 0.1), b_dec = the hook's mean "
           "(s: its rms spread)\n", LAYER, D_SAE, TOPK);
    printf("  paths: ff (mlp_in -> mlp_out), mlpblock (resid_mid -> resid_post), block "
           "(resid_pre -> resid_post)\n");
    printf("  data: %s\n", data_desc);
    print_machine();
    scalar_ctx *probe = make_ctx("cpu", max_threads);
    if (!probe)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    printf("libscalar %s, backend: %s\n", scalar_version_string(),
           scalar_backend_describe(scalar_ctx_backend(probe)));
    scalar_ctx_free(probe);

    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/bench_eval.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, BENCH_NAME ": mkdtemp %s failed\n", dir);
        return 1;
    }
    double spread[SCALAR_HOOK_KIND_COUNT];
    int rc = setup(dir, ids, spread);
    if (!rc)
        printf("  hook rms spread at layer %d: resid_pre %.2f, resid_mid %.2f, mlp_in %.2f, "
               "mlp_out %.2f, resid_post %.2f\n", LAYER, spread[SCALAR_HOOK_RESID_PRE],
               spread[SCALAR_HOOK_RESID_MID], spread[SCALAR_HOOK_MLP_IN],
               spread[SCALAR_HOOK_MLP_OUT], spread[SCALAR_HOOK_RESID_POST]);
    printf("ours: scalar_evaluator_attribute on all %d x %d tokens in one call, gradient path "
           "S = %d, a fresh evaluator per run; %d timed run%s, median [best]\n", N_SEQ, SEQ,
           STEPS, runs, runs == 1 ? "" : "s");
    printf("PyTorch: bench/torch_eval.py, tests/reference/scalar_ref.py's attribution_slow "
           "(one autograd backward per downstream latent per point) in float32 with F.layer_norm "
           "/ F.gelu, clean mode, on the same files and tokens; %d downstream latents run, "
           "extrapolated:\n", latents);
    printf("  T_ext = t_codes + sum_s (t_fwd_s + t_bwd_s * n_s / J), J = %d latents run, n_s = "
           "latents D keeps at >= 1 token at point s (t_codes: clean forward + U.encode; t_fwd_s: "
           "path forward + D.encode at point s; t_bwd_s: the J backwards there)\n", latents);
    fflush(stdout);

    run *runs_t = calloc((size_t)max_threads + 1, sizeof *runs_t);
    int64_t kept[N_PATHS] = {0};
    if (!runs_t)
        rc = fail("setup", SCALAR_E_NOMEM);
    for (int t = 1; t <= max_threads && !rc; t++) {
        rc = bench_ours(dir, t, ids, runs, &runs_t[t], kept);
        if (!rc)
            bench_torch(dir, t, latents, &runs_t[t]);
    }

    if (!rc) {
        for (int t = 1; t <= max_threads; t++) {
            const run *r = &runs_t[t];
            const char *s_ = t == 1 ? "" : "s";
            if (r->why[0])
                printf("PyTorch baseline skipped (%d thread%s): %s\n", t, s_, r->why);
            else
                printf("PyTorch (%d thread%s): torch %s, BLAS mapped: %s%s; files read by %s\n",
                       t, s_, r->version, r->blas,
                       strstr(r->blas, "blis") ? " (BLIS)" : "  <-- NOT BLIS", r->reader);
        }
        printf("\nPyTorch's parts (seconds; fwd and bwd summed over the %d points; n_s per "
               "point, alpha = 0 .. 1) and the check of its J columns against ours (norm-wise "
               "relative per column, tolerance %.0e):\n", STEPS, CHECK_TOL);
        printf("%-8s %3s %8s %8s %8s %8s %9s %10s %10s  %-22s %s\n", "path", "thr", "t_codes",
               "t_fwd", "t_bwd", "ms/bwd", "measured", "T_ext", "literal", "n_s", "check");
        for (int q = 0; q < N_PATHS; q++)
            for (int t = 1; t <= max_threads; t++) {
                const torch_path *p = &runs_t[t].torch[q];
                if (!p->ok) {
                    printf("%-8s %3d  (no PyTorch result)\n", path_names[q], t);
                    continue;
                }
                char ns[64] = "", chk[160];
                for (int s = 0; s < STEPS; s++)
                    snprintf(ns + strlen(ns), sizeof ns - strlen(ns), "%s%d", s ? " " : "",
                             p->n_kept[s]);
                if (p->check_why[0])
                    snprintf(chk, sizeof chk, "skipped: %s", p->check_why);
                else
                    snprintf(chk, sizeof chk, "%s: max %.1e (latent %d), median %.1e, %d of %d "
                             "over", p->check_rel <= CHECK_TOL ? "ok" : "DIFFERENT",
                             p->check_rel, p->check_worst, p->check_median, p->check_over,
                             p->check_columns);
                printf("%-8s %3d %8.2f %8.2f %8.2f %8.1f %9.2f %10.1f %10.1f  %-22s %s\n",
                       path_names[q], t, p->t_codes, p->t_fwd, p->t_bwd,
                       1e3 * p->per_backward_s, p->measured_s, p->extrapolated_s, p->literal_s,
                       ns, chk);
            }
        printf("  (literal: the reference's loop over all %d latents at every point, n_s = %d; "
               "ours computes only kept latents: %lld / %lld / %lld downstream latents have a "
               "nonzero column (ff / mlpblock / block))\n", D_SAE, D_SAE, (long long)kept[0],
               (long long)kept[1], (long long)kept[2]);

        printf("\nattribution of all %d x %d tokens, seconds: ours median [best]; PyTorch "
               "T_ext; ratio = T_ext / our median (parity: against the same T_ext, the "
               "reference's cost being the same in both modes)\n", N_SEQ, SEQ);
        printf("%-8s %3s  %19s  %19s  %10s  %12s %6s  %12s\n", "path", "thr", "ours clean",
               "ours parity", "PyTorch", "ratio", "target", "parity ratio");
        int miss = 0, compared = 0, bad_check = 0;
        for (int q = 0; q < N_PATHS; q++)
            for (int t = 1; t <= max_threads; t++) {
                const run *r = &runs_t[t];
                const torch_path *p = &r->torch[q];
                double ratio = p->ok ? p->extrapolated_s / r->clean[q].median_s : 0.0;
                double pratio = p->ok ? p->extrapolated_s / r->parity[q].median_s : 0.0;
                char q1[32], q2[32], ts[32] = "skipped";
                format_ratio(q1, sizeof q1, ratio, targets[q]);
                format_ratio(q2, sizeof q2, pratio, targets[q]);
                if (p->ok)
                    snprintf(ts, sizeof ts, "%.1f", p->extrapolated_s);
                printf("%-8s %3d  %8.3f [%8.3f]  %8.3f [%8.3f]  %10s  %s %5.0fx  %s\n",
                       path_names[q], t, r->clean[q].median_s, r->clean[q].best_s,
                       r->parity[q].median_s, r->parity[q].best_s, ts, q1, targets[q], q2);
                compared += ratio > 0.0;
                miss += ratio > 0.0 && ratio < targets[q];
                bad_check += p->ok && !p->check_why[0] && !(p->check_rel <= CHECK_TOL);
            }
        printf("\ntargets (clean mode: ff, mlpblock >= 50x, block >= 10x the reference's slow "
               "algorithm): ");
        if (compared == 0)
            printf("not checked (no PyTorch)\n");
        else
            printf("%s, %d of %d met\n", miss ? "NO" : "yes", compared - miss, compared);
        if (bad_check)
            printf("CHECK: %d PyTorch subsets differ from ours by more than %.0e (see above)\n",
                   bad_check, CHECK_TOL);
    }
    free(runs_t);
    free(ids);
    remove_folder(dir);
    if (!rc)
        printf("(%.1f s)\n", now() - t_start);
    return rc;
}
