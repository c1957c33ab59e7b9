/*
 * bench_sae.c - TopK SAE training steps/s through libscalar against the same
 * step in PyTorch, both measured in this run on this machine; sparse against
 * dense decoding; our step's rate against an sgemm of the encoder's shape.
 *
 * Sizes (d_in, d_sae, k, tokens per step):
 *   toy   64, 512, 10, 16384        (SPEC.md's toy SAE)
 *   gpt2  768, 24576, 32, 4096      (a GPT-2-small residual SAE)
 * Inputs x ~ N(0, 1), one fixed batch; SPEC.md's initialisation.
 *
 *   train   scalar_sae_trainer_step_acts on a one-member group (a plain TopK
 *           SAE): blocked encoder GEMM + top-k, sparse decode, loss, sparse
 *           gradients, global clip 1.0, Adam (lr 1e-3 constant: warmup 0 and
 *           min_lr = lr, so the rate is PyTorch's; betas 0.9/0.95, eps 1e-8)
 *   decode  scalar_sae_decode (gather-accumulate of k decoder rows per token)
 *           against scalar_sae_decode_dense (a GEMM on the dense codes) for
 *           the same codes, those of x
 *   sgemm   one [n, d_in] x [d_in, d_sae] sgemm (the encoder's shape, whole
 *           batch) through scalar_backend_sgemm: our step's useful-FLOP rate
 *           is printed as a fraction of it
 * PyTorch runs bench/torch_sae.py in a subprocess (the step a PyTorch user
 * writes: dense pre-activations, torch.topk, scatter into dense codes,
 * codes @ W_dec, autograd, clip_grad_norm_, torch.optim.Adam; float32) with
 * torch.set_num_threads and BLIS_NUM_THREADS equal to ours.  Each side runs
 * WARMUP untimed steps, then STEPS timed ones (at most 2 at gpt2 size, where a
 * PyTorch step takes seconds), and reports the median step (best in
 * brackets).
 * Targets: train >= 3x PyTorch at toy size, >= 5x at gpt2 size; sparse decode
 * >= 5x dense.  A miss is printed loudly but the exit status stays 0 (as
 * bench_model).  Without python3 or torch the PyTorch columns say why and our
 * numbers still print.
 *
 * Last, per size at the largest thread count, a profile of training steps:
 * every backend call goes through a timing wrapper around "cpu" (registered
 * here as "cpu-sae-prof"); it gives the encoder GEMM's share of the step.
 *
 * Environment:
 *   SCALAR_BENCH_PYTHON      the Python with torch (default /usr/bin/python3)
 *   SCALAR_BENCH_STEPS       timed steps per measurement (default 3; gpt2: at most 2)
 *   SCALAR_BENCH_WARMUP      untimed steps before them (default 1)
 *   SCALAR_BENCH_THREADS     largest thread count; 1 .. this are run (default 2)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#define BENCH_NAME "bench_sae"
#include "bench_util.h"

#define TARGET_DECODE 5.0
#define BATCH_SECONDS 0.05  /* one timed batch of sgemm calls */
#define DECODE_SECONDS 0.3  /* timed decode calls per measurement, roughly */
#define MAX_CALLS 64        /* timed calls (steps, decodes) per measurement */
#define MAX_THREADS 16
#define MAX_SHAPES 8

typedef struct sae_size {
    const char *name;
    int32_t d_in, d_sae, k;
    int64_t n; /* tokens per step */
    double target; /* train: ours over PyTorch, steps/s */
    int max_steps; /* timed steps at most (a PyTorch gpt2 step takes seconds) */
    int sgemm_rounds;
} sae_size;

static const sae_size sizes[] = {
    {"toy", 64, 512, 10, 16384, 3.0, MAX_CALLS, 5},
    {"gpt2", 768, 24576, 32, 4096, 5.0, 2, 2},
};
#define N_SIZES ((int)(sizeof sizes / sizeof sizes[0]))

typedef struct side {
    double median_s, best_s; /* seconds per step or call */
    int ok;
} side;

typedef struct sae_run {
    side ours, torch; /* training steps */
    side sparse, dense; /* decode calls */
    double sgemm; /* GFLOP/s of the encoder's shape */
    double decode_diff; /* max |sparse - dense| / max |dense| */
    float our_loss, torch_loss; /* after the timed steps */
    char version[32], blas[512];
    char why[512]; /* non-empty: the PyTorch baseline was skipped, and why */
} sae_run;

/* FLOP we count per step: the encoder GEMM, and the four sparse passes of k
 * rows of d_in per token (decode, its dot products with the loss gradient,
 * the two outer-product scatters into the W_dec and W_enc gradients). */
static double useful_flop(const sae_size *z)
{
    return 2.0 * (double)z->n * z->d_in * z->d_sae + 2.0 * (double)z->n * z->k * z->d_in * 4;
}

/* One dense GEMM of the encoder's size; PyTorch's step runs six. */
static double gemm_flop(const sae_size *z)
{
    return 2.0 * (double)z->n * z->d_in * z->d_sae;
}

/* x[i] ~ N(0, 1): Box-Muller on a splitmix64 stream. */
static void fill_normal(float *x, int64_t n, uint64_t seed)
{
    for (int64_t i = 0; i < n; i += 2) {
        double u[2];
        for (int j = 0; j < 2; j++) {
            uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            u[j] = ((double)(z >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
        }
        double r = sqrt(-2.0 * log(u[0])), a = 6.283185307179586 * u[1];
        x[i] = (float)(r * cos(a));
        if (i + 1 < n)
            x[i + 1] = (float)(r * sin(a));
    }
}

/* A one-member group: a plain TopK SAE of the size, SPEC.md's initialisation. */
static scalar_status make_group(scalar_sae_group **out, scalar_ctx *ctx, const sae_size *z)
{
    scalar_sae_config cfg;
    scalar_sae_config_init(&cfg, sizeof cfg);
    cfg.d_in = z->d_in;
    cfg.d_sae = z->d_sae;
    cfg.k = z->k;
    int32_t n_lat = z->d_sae;
    return scalar_sae_group_create(out, ctx, &cfg, 1, &n_lat, NULL, SCALAR_SAE_GROUP_SHARE);
}

/* A trainer with PyTorch's Adam: constant lr 1e-3 (no warmup, no decay). */
static scalar_status make_trainer(scalar_sae_trainer **out, scalar_sae_group *g, int64_t n)
{
    scalar_sae_trainer_options o;
    scalar_sae_trainer_options_init(&o, sizeof o);
    o.warmup_steps = 0;
    o.min_lr = o.lr; /* 1e-3; betas 0.9, 0.95, eps 1e-8, clip 1.0 are the defaults */
    return scalar_sae_trainer_create(out, NULL, &g, 1, n, &o);
}

/* ===================================================================== */
/*  libscalar                                                             */
/* ===================================================================== */

static scalar_status time_train(scalar_sae_trainer *tr, const float *x, int64_t n, int warmup,
                                int steps, side *out, float *loss)
{
    const float *acts[1] = {x};
    double t[MAX_CALLS];
    scalar_status st = SCALAR_OK;
    for (int s = 0; s < warmup + steps && st == SCALAR_OK; s++) {
        double t0 = now();
        st = scalar_sae_trainer_step_acts(tr, acts, n, loss, NULL);
        if (s >= warmup)
            t[s - warmup] = now() - t0;
    }
    if (st == SCALAR_OK) {
        median_best(t, steps, &out->median_s, &out->best_s);
        out->ok = 1;
    }
    return st;
}

typedef struct decode_args {
    const scalar_sae *sae;
    const float *vals, *codes;
    const int32_t *idx;
    int64_t n, k;
    float *x_hat;
    int dense;
} decode_args;

static scalar_status decode_once(const decode_args *a)
{
    return a->dense ? scalar_sae_decode_dense(a->sae, a->codes, a->n, a->x_hat)
                    : scalar_sae_decode(a->sae, a->vals, a->idx, a->n, a->k, a->x_hat);
}

/* One untimed call, then as many timed ones as fit in DECODE_SECONDS (at
 * least min_calls, at most MAX_CALLS): median and best call. */
static scalar_status time_decode(const decode_args *a, int min_calls, side *out)
{
    double t0 = now();
    scalar_status st = decode_once(a);
    double probe = now() - t0;
    int calls = (int)(DECODE_SECONDS / (probe > 1e-6 ? probe : 1e-6));
    calls = calls < min_calls ? min_calls : calls > MAX_CALLS ? MAX_CALLS : calls;
    double t[MAX_CALLS];
    for (int c = 0; c < calls && st == SCALAR_OK; c++) {
        t0 = now();
        st = decode_once(a);
        t[c] = now() - t0;
    }
    if (st == SCALAR_OK) {
        median_best(t, calls, &out->median_s, &out->best_s);
        out->ok = 1;
    }
    return st;
}

/* Sparse and dense decode of x's codes under the group's SAE. */
static scalar_status bench_decode(scalar_sae_group *g, const sae_size *z, const float *x,
                                  int min_calls, sae_run *r)
{
    const int64_t n = z->n, k = z->k, d = z->d_in, m = z->d_sae;
    scalar_sae *sae = NULL;
    float *vals = malloc((size_t)(n * k) * sizeof(float));
    int32_t *idx = malloc((size_t)(n * k) * sizeof(int32_t));
    float *codes = calloc((size_t)(n * m), sizeof(float));
    float *sparse = malloc((size_t)(n * d) * sizeof(float));
    float *dense = malloc((size_t)(n * d) * sizeof(float));
    scalar_status st = vals && idx && codes && sparse && dense ? SCALAR_OK : SCALAR_E_NOMEM;
    if (st == SCALAR_OK)
        st = scalar_sae_group_get_sae(&sae, g, 0);
    if (st == SCALAR_OK)
        st = scalar_sae_encode(sae, x, n, vals, idx);
    for (int64_t t = 0; st == SCALAR_OK && t < n; t++)
        for (int64_t j = 0; j < k; j++)
            codes[t * m + idx[t * k + j]] = vals[t * k + j];
    decode_args a = {sae, vals, codes, idx, n, k, sparse, 0};
    if (st == SCALAR_OK)
        st = time_decode(&a, min_calls, &r->sparse);
    a.x_hat = dense;
    a.dense = 1;
    if (st == SCALAR_OK)
        st = time_decode(&a, min_calls, &r->dense);
    double diff = 0.0, scale = 0.0;
    for (int64_t i = 0; st == SCALAR_OK && i < n * d; i++) {
        double e = fabs((double)sparse[i] - dense[i]), v = fabs((double)dense[i]);
        diff = e > diff ? e : diff;
        scale = v > scale ? v : scale;
    }
    r->decode_diff = scale > 0.0 ? diff / scale : diff;
    scalar_sae_free(sae);
    free(vals);
    free(idx);
    free(codes);
    free(sparse);
    free(dense);
    return st;
}

/* sgemm of the encoder's shape, training steps, decode; at n_threads. */
static int bench_ours(const sae_size *z, int n_threads, const float *x, int warmup, int steps,
                      sae_run *r)
{
    scalar_ctx *ctx = make_ctx("cpu", n_threads);
    scalar_sae_group *g = NULL;
    scalar_sae_trainer *tr = NULL;
    if (!ctx)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    scalar_status st = measure_sgemm(scalar_ctx_backend(ctx), z->n, z->d_in, z->d_sae,
                                     z->sgemm_rounds, BATCH_SECONDS, &r->sgemm);
    if (st == SCALAR_OK)
        st = make_group(&g, ctx, z);
    if (st == SCALAR_OK)
        st = make_trainer(&tr, g, z->n);
    if (st == SCALAR_OK)
        st = time_train(tr, x, z->n, warmup, steps, &r->ours, &r->our_loss);
    scalar_sae_trainer_free(tr); /* its workspaces go before the decode's buffers come */
    if (st == SCALAR_OK)
        st = bench_decode(g, z, x, steps < 2 ? steps : 2, r);
    scalar_sae_group_free(g);
    scalar_ctx_free(ctx);
    if (st != SCALAR_OK) {
        char what[64];
        snprintf(what, sizeof what, "libscalar %s SAE, %d thread%s", z->name, n_threads,
                 n_threads == 1 ? "" : "s");
        return fail(what, st);
    }
    return 0;
}

/* ===================================================================== */
/*  PyTorch in a subprocess                                               */
/* ===================================================================== */

static void parse_torch(const char *output, int status, sae_run *r)
{
    cJSON *root = parse_last_json(output);
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "skip");
    const cJSON *train = cJSON_GetObjectItemCaseSensitive(root, "train");
    const cJSON *med = cJSON_GetObjectItemCaseSensitive(train, "median_s");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(train, "best_s");
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(train, "loss");
    if (cJSON_IsString(why)) {
        snprintf(r->why, sizeof r->why, "%s", why->valuestring);
    } else if (!cJSON_IsNumber(med) || !cJSON_IsNumber(best) || !(med->valuedouble > 0.0)) {
        char tail[400];
        last_line(tail, sizeof tail, output);
        snprintf(r->why, sizeof r->why, "no result (exit status %d): %s", status, tail);
    } else {
        r->torch.median_s = med->valuedouble;
        r->torch.best_s = best->valuedouble;
        r->torch.ok = 1;
        r->torch_loss = cJSON_IsNumber(loss) ? (float)loss->valuedouble : NAN;
        copy_string(r->version, sizeof r->version, root, "torch");
        copy_string(r->blas, sizeof r->blas, root, "blas");
    }
    cJSON_Delete(root);
}

static void bench_torch(const sae_size *z, int n_threads, int warmup, int steps, sae_run *r)
{
    char args[256];
    snprintf(args, sizeof args, "--threads %d --steps %d --warmup %d --d-in %d --d-sae %d --k %d "
             "--batch %lld", n_threads, steps, warmup, (int)z->d_in, (int)z->d_sae, (int)z->k,
             (long long)z->n);
    int status = 0;
    char *output = run_script("torch_sae.py", n_threads, args, &status, r->why, sizeof r->why);
    if (!output)
        return;
    parse_torch(output, status, r);
    free(output);
}

/* ===================================================================== */
/*  Report                                                                */
/* ===================================================================== */

/* "steps/s [best]" of a side, or "skipped". */
static void format_steps(char *buf, size_t size, const side *s)
{
    if (s->ok)
        snprintf(buf, size, "%7.3f [%7.3f]", 1.0 / s->median_s, 1.0 / s->best_s);
    else
        snprintf(buf, size, "%17s", "skipped");
}

/* "ratio x" and a flag when below target, or "-" without a number. */
static void format_ratio(char *buf, size_t size, double ratio, double target)
{
    if (ratio > 0.0)
        snprintf(buf, size, "%7.2fx %-3s", ratio, ratio < target ? "<--" : "");
    else
        snprintf(buf, size, "%8s %3s", "-", "");
}

/* The other side's median time over ours; 0 without one. */
static double ratio_of(const side *ours, const side *other)
{
    return ours->ok && other->ok ? other->median_s / ours->median_s : 0.0;
}

static void print_train_row(const sae_size *z, int n_threads, const sae_run *r)
{
    char o[48], p[48], q[32], tg[32] = "-", tl[32] = "-";
    format_steps(o, sizeof o, &r->ours);
    format_steps(p, sizeof p, &r->torch);
    format_ratio(q, sizeof q, ratio_of(&r->ours, &r->torch), z->target);
    double ours = useful_flop(z) / r->ours.median_s * 1e-9;
    if (r->torch.ok) {
        snprintf(tg, sizeof tg, "%.1f", 6.0 * gemm_flop(z) / r->torch.median_s * 1e-9);
        snprintf(tl, sizeof tl, "%.2f", r->torch_loss);
    }
    printf("%-4s  %3d  %s  %s  %s %5.1fx %8.1f %7.1f %6.0f%% %8s %9.2f %10s\n", z->name,
           n_threads, o, p, q, z->target, ours, r->sgemm, 100.0 * ours / r->sgemm, tg,
           r->our_loss, tl);
}

static void print_decode_row(const sae_size *z, int n_threads, const sae_run *r)
{
    char q[32];
    format_ratio(q, sizeof q, ratio_of(&r->sparse, &r->dense), TARGET_DECODE);
    printf("%-4s  %3d  %9.3f [%9.3f]  %9.3f [%9.3f]  %s %5.1fx %8.1f %8.1f   %.1e\n", z->name,
           n_threads, 1e3 * r->sparse.median_s, 1e3 * r->sparse.best_s, 1e3 * r->dense.median_s,
           1e3 * r->dense.best_s, q, TARGET_DECODE,
           2.0 * (double)z->n * z->k * z->d_in / r->sparse.median_s * 1e-9,
           gemm_flop(z) / r->dense.median_s * 1e-9, r->decode_diff);
}

/* ===================================================================== */
/*  Profile: a timing wrapper backend around "cpu"                        */
/* ===================================================================== */

typedef struct gemm_shape {
    int32_t ta, tb;
    int64_t m, n, k;
    long calls;
    double seconds;
} gemm_shape;

/* The profile since prof_reset(): process-wide, this is a program. */
static struct {
    double seconds[SCALAR_OP_COUNT];
    long calls[SCALAR_OP_COUNT];
    gemm_shape shapes[MAX_SHAPES];
    int n_shapes;
} prof;

static const char *const op_names[SCALAR_OP_COUNT] = {
    [SCALAR_OP_SGEMM] = "sgemm", [SCALAR_OP_BIAS_ADD] = "bias_add",
    [SCALAR_OP_TOPK_ROWS] = "topk_rows", [SCALAR_OP_GATHER_ROWS] = "gather_rows",
    [SCALAR_OP_SCATTER_ADD_ROWS] = "scatter_add_rows", [SCALAR_OP_SUM_ROWS] = "sum_rows",
    [SCALAR_OP_ADD] = "add", [SCALAR_OP_SUMSQ] = "sumsq", [SCALAR_OP_ADAMW] = "adamw",
    [SCALAR_OP_SPARSE_DECODE] = "sparse_decode", [SCALAR_OP_SPARSE_DOT] = "sparse_dot",
    [SCALAR_OP_SPARSE_OUTER_ADD] = "sparse_outer_add",
};

static void prof_reset(void)
{
    memset(&prof, 0, sizeof prof);
}

static double prof_end(int32_t op, double t0)
{
    double dt = now() - t0;
    prof.seconds[op] += dt;
    prof.calls[op]++;
    return dt;
}

typedef struct prof_backend {
    scalar_ctx *inner; /* a "cpu" context with the outer one's thread count */
} prof_backend;

static scalar_backend *inner(void *self)
{
    return scalar_ctx_backend(((prof_backend *)self)->inner);
}

static scalar_status prof_create(void **out_self, scalar_ctx *ctx, const char *params)
{
    (void)params;
    prof_backend *s = calloc(1, sizeof *s);
    if (!s)
        return SCALAR_E_NOMEM;
    s->inner = make_ctx("cpu", scalar_ctx_n_threads(ctx));
    if (!s->inner) {
        free(s);
        return scalar_sys_error_set(SCALAR_E_BACKEND, "cpu-sae-prof: no cpu context");
    }
    *out_self = s;
    return SCALAR_OK;
}

static void prof_destroy(void *self)
{
    scalar_ctx_free(((prof_backend *)self)->inner);
    free(self);
}

static scalar_status prof_alloc(void *self, void **out_ptr, size_t size)
{
    return scalar_backend_buffer_alloc(out_ptr, inner(self), size);
}

static void prof_free(void *self, void *ptr, size_t size)
{
    scalar_backend_buffer_free(inner(self), ptr, size);
}

static scalar_status prof_sgemm(void *self, int32_t ta, int32_t tb, int64_t m, int64_t n, int64_t k,
                                float alpha, const float *a, int64_t lda, const float *b,
                                int64_t ldb, float beta, float *c, int64_t ldc)
{
    double t0 = now();
    scalar_status st = scalar_backend_sgemm(inner(self), ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                            beta, c, ldc);
    double dt = prof_end(SCALAR_OP_SGEMM, t0);
    int i = 0;
    for (; i < prof.n_shapes; i++) {
        const gemm_shape *g = &prof.shapes[i];
        if (g->ta == ta && g->tb == tb && g->m == m && g->n == n && g->k == k)
            break;
    }
    if (i == prof.n_shapes && i < MAX_SHAPES)
        prof.shapes[prof.n_shapes++] = (gemm_shape){ta, tb, m, n, k, 0, 0.0};
    if (i < MAX_SHAPES) {
        prof.shapes[i].calls++;
        prof.shapes[i].seconds += dt;
    }
    return st;
}

/* A slot that times the checked entry point of the same name on "cpu". */
#define PROF_SLOT(slot, OP, params, args)                                                          \
    static scalar_status prof_##slot params                                                       \
    {                                                                                              \
        double t0_ = now();                                                                        \
        scalar_status st_ = scalar_backend_##slot args;                                            \
        prof_end(OP, t0_);                                                                         \
        return st_;                                                                                \
    }

PROF_SLOT(bias_add, SCALAR_OP_BIAS_ADD,
          (void *self, float *x, const float *bias, int64_t rows, int64_t cols),
          (inner(self), x, bias, rows, cols))
PROF_SLOT(topk_rows, SCALAR_OP_TOPK_ROWS,
          (void *self, float *values, int32_t *indices, const float *in, int64_t rows,
           int64_t cols, int64_t k),
          (inner(self), values, indices, in, rows, cols, k))
PROF_SLOT(gather_rows, SCALAR_OP_GATHER_ROWS,
          (void *self, float *out, const float *src, const int32_t *idx, int64_t n_idx,
           int64_t n_src, int64_t d),
          (inner(self), out, src, idx, n_idx, n_src, d))
PROF_SLOT(scatter_add_rows, SCALAR_OP_SCATTER_ADD_ROWS,
          (void *self, float *dst, const float *src, const int32_t *idx, int64_t n_idx,
           int64_t n_dst, int64_t d),
          (inner(self), dst, src, idx, n_idx, n_dst, d))
PROF_SLOT(sum_rows, SCALAR_OP_SUM_ROWS,
          (void *self, float *out, const float *x, int64_t rows, int64_t cols),
          (inner(self), out, x, rows, cols))
PROF_SLOT(add, SCALAR_OP_ADD, (void *self, float *out, const float *a, const float *b, int64_t n),
          (inner(self), out, a, b, n))
PROF_SLOT(sumsq, SCALAR_OP_SUMSQ, (void *self, double *out, const float *x, int64_t n),
          (inner(self), out, x, n))
PROF_SLOT(adamw, SCALAR_OP_ADAMW,
          (void *self, float *param, const float *grad, float *m, float *v, int64_t n, float lr,
           float beta1, float beta2, float eps, float wd, float scale, int64_t step),
          (inner(self), param, grad, m, v, n, lr, beta1, beta2, eps, wd, scale, step))
PROF_SLOT(sparse_decode, SCALAR_OP_SPARSE_DECODE,
          (void *self, float *out, const float *values, const int32_t *idx, const float *W,
           const float *bias, int64_t n, int64_t k, int64_t n_rows, int64_t d),
          (inner(self), out, values, idx, W, bias, n, k, n_rows, d))
PROF_SLOT(sparse_dot, SCALAR_OP_SPARSE_DOT,
          (void *self, float *out, const int32_t *idx, const float *W, const float *x, int64_t n,
           int64_t k, int64_t n_rows, int64_t d),
          (inner(self), out, idx, W, x, n, k, n_rows, d))
PROF_SLOT(sparse_outer_add, SCALAR_OP_SPARSE_OUTER_ADD,
          (void *self, float *dW, const float *a, const int32_t *idx, const float *x, int64_t n,
           int64_t k, int64_t n_rows, int64_t d),
          (inner(self), dW, a, idx, x, n, k, n_rows, d))

/* Slots left NULL (the GPT-2 model layer's) would run on cpu-ref; an SAE step
 * calls none of them. */
static const scalar_backend_ops prof_ops = {
    .abi_version = SCALAR_BACKEND_ABI_VERSION,
    .struct_size = sizeof(scalar_backend_ops),
    .name = "cpu-sae-prof",
    .create = prof_create,
    .destroy = prof_destroy,
    .buffer_alloc = prof_alloc,
    .buffer_free = prof_free,
    .sgemm = prof_sgemm,
    .bias_add = prof_bias_add,
    .topk_rows = prof_topk_rows,
    .gather_rows = prof_gather_rows,
    .scatter_add_rows = prof_scatter_add_rows,
    .sum_rows = prof_sum_rows,
    .add = prof_add,
    .sumsq = prof_sumsq,
    .adamw = prof_adamw,
    .sparse_decode = prof_sparse_decode,
    .sparse_dot = prof_sparse_dot,
    .sparse_outer_add = prof_sparse_outer_add,
};

static int by_total_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

static void print_profile(const sae_size *z, int n_threads, int steps, double step_s,
                          double sgemm)
{
    const double per = 1000.0 / steps; /* ms per step */
    printf("\nprofile of a %s training step, %d thread%s: %d step%s after 1 warmup, every "
           "backend call timed through a wrapper around \"cpu\" (%.1f ms per step)\n", z->name,
           n_threads, n_threads == 1 ? "" : "s", steps, steps == 1 ? "" : "s", 1000.0 * step_s);
    double rows[SCALAR_OP_COUNT][2], kernels = 0.0;
    for (int op = 0; op < SCALAR_OP_COUNT; op++) {
        rows[op][0] = prof.seconds[op];
        rows[op][1] = op;
        kernels += prof.seconds[op];
    }
    qsort(rows, SCALAR_OP_COUNT, sizeof rows[0], by_total_desc);
    printf("  %-34s %6s %9s %7s\n", "kernel", "calls", "ms/step", "%step");
    for (int r = 0; r < SCALAR_OP_COUNT; r++) {
        int op = (int)rows[r][1];
        if (prof.calls[op])
            printf("  %-34s %6ld %9.2f %6.1f%%\n", op_names[op] ? op_names[op] : "?",
                   prof.calls[op] / steps, rows[r][0] * per, 100.0 * rows[r][0] / steps / step_s);
    }
    double outside = step_s * steps - kernels;
    printf("  %-34s %6s %9.2f %6.1f%%\n", "outside kernels (library loops)", "", outside * per,
           100.0 * outside / steps / step_s);
    printf("  sgemm by shape (C[m,n] = op(A)[m,k] op(B)[k,n], T = transposed):\n");
    double enc_s = 0.0;
    long enc_calls = 0;
    int64_t enc_rows = 0;
    for (int i = 0; i < prof.n_shapes; i++) {
        const gemm_shape *g = &prof.shapes[i];
        char label[64];
        snprintf(label, sizeof label, "%s%s %lldx%lldx%lld", g->ta ? "T" : "N", g->tb ? "T" : "N",
                 (long long)g->m, (long long)g->n, (long long)g->k);
        int enc = g->n == z->d_sae && g->k == z->d_in && !g->ta && !g->tb;
        if (enc) {
            enc_s += g->seconds;
            enc_calls += g->calls;
            enc_rows = g->m > enc_rows ? g->m : enc_rows;
        }
        printf("    %-30s %6ld %9.2f %6.1f%% %8.1f GFLOP/s%s\n", label, g->calls / steps,
               g->seconds * per, 100.0 * g->seconds / steps / step_s,
               2.0 * (double)g->m * g->n * g->k * (double)g->calls / g->seconds * 1e-9,
               enc ? "  (encoder)" : "");
    }
    if (enc_calls)
        printf("  encoder GEMM: %.1f%% of the step (%ld blocks of <= %lld tokens, %.1f GFLOP/s; "
               "one sgemm of the whole batch: %.1f GFLOP/s)\n",
               100.0 * enc_s / steps / step_s, enc_calls / steps,
               (long long)enc_rows, gemm_flop(z) * steps / enc_s * 1e-9, sgemm);
}

/* steps training steps of size z on "cpu-sae-prof" at n_threads. */
static int run_profile(const sae_size *z, int n_threads, int steps, const float *x, double sgemm)
{
    scalar_ctx *ctx = make_ctx("cpu-sae-prof", n_threads);
    scalar_sae_group *g = NULL;
    scalar_sae_trainer *tr = NULL;
    const float *acts[1] = {x};
    scalar_status st = ctx ? make_group(&g, ctx, z) : SCALAR_E_BACKEND;
    if (st == SCALAR_OK)
        st = make_trainer(&tr, g, z->n);
    if (st == SCALAR_OK)
        st = scalar_sae_trainer_step_acts(tr, acts, z->n, NULL, NULL); /* warmup */
    prof_reset();
    double t0 = now();
    for (int s = 0; s < steps && st == SCALAR_OK; s++)
        st = scalar_sae_trainer_step_acts(tr, acts, z->n, NULL, NULL);
    double step_s = (now() - t0) / steps;
    if (st == SCALAR_OK)
        print_profile(z, n_threads, steps, step_s, sgemm);
    scalar_sae_trainer_free(tr);
    scalar_sae_group_free(g);
    scalar_ctx_free(ctx);
    return st == SCALAR_OK ? 0 : fail("profile", st);
}

/* ===================================================================== */

int main(void)
{
    const int steps_env = env_int("SCALAR_BENCH_STEPS", 3, 1, MAX_CALLS);
    const int warmup = env_int("SCALAR_BENCH_WARMUP", 1, 0, 64);
    const int max_threads = env_int("SCALAR_BENCH_THREADS", 2, 1, MAX_THREADS);
    double t_start = now();

    printf("TopK SAE training step: libscalar vs PyTorch; sparse vs dense decode\n");
    for (int s = 0; s < N_SIZES; s++)
        printf("  %-4s d_in %d, d_sae %d, k %d, %lld tokens per step (x ~ N(0,1))\n",
               sizes[s].name, (int)sizes[s].d_in, (int)sizes[s].d_sae, (int)sizes[s].k,
               (long long)sizes[s].n);
    print_machine();
    scalar_ctx *probe = make_ctx("cpu", max_threads);
    if (!probe)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    printf("libscalar %s, backend: %s\n", scalar_version_string(),
           scalar_backend_describe(scalar_ctx_backend(probe)));
    scalar_ctx_free(probe);
    printf("train: scalar_sae_trainer_step_acts (blocked encoder GEMM + top-k, sparse decode, "
           "loss, sparse gradients, clip 1.0, Adam lr 1e-3 betas 0.9/0.95 eps 1e-8); PyTorch: "
           "bench/torch_sae.py (dense pre-activations, torch.topk, scatter into dense codes, "
           "codes @ W_dec, autograd, clip_grad_norm_, torch.optim.Adam), float32\n");
    printf("timing: %d warmup step%s, then %d timed (gpt2: %d); steps/s of the median step "
           "[best step in brackets]; ratio = PyTorch median step time / ours\n", warmup,
           warmup == 1 ? "" : "s", steps_env,
           steps_env < sizes[N_SIZES - 1].max_steps ? steps_env : sizes[N_SIZES - 1].max_steps);
    printf("FLOP counted per step (ours, \"useful\"): encoder GEMM 2*n*d_in*d_sae + sparse "
           "decode, its dot products and the two gradient scatters 4 * 2*n*k*d_in (top-k, "
           "biases, loss and Adam not counted):");
    for (int s = 0; s < N_SIZES; s++)
        printf(" %s %.3g%s", sizes[s].name, useful_flop(&sizes[s]), s + 1 < N_SIZES ? "," : "\n");
    printf("PyTorch GFLOP/s column: 6 dense GEMMs of 2*n*d_in*d_sae (encoder and decoder, "
           "forward and both gradients of each) per its step time\n");

    float *xs[N_SIZES] = {0};
    sae_run runs[N_SIZES][MAX_THREADS + 1];
    memset(runs, 0, sizeof runs);
    int rc = 0;
    for (int s = 0; s < N_SIZES && !rc; s++) {
        const sae_size *z = &sizes[s];
        int steps = steps_env < z->max_steps ? steps_env : z->max_steps;
        xs[s] = malloc((size_t)(z->n * z->d_in) * sizeof(float));
        if (!xs[s]) {
            rc = fail("setup", SCALAR_E_NOMEM);
            break;
        }
        fill_normal(xs[s], z->n * z->d_in, 0x5AE0u + (uint64_t)s);
        for (int t = 1; t <= max_threads && !rc; t++) {
            rc = bench_ours(z, t, xs[s], warmup, steps, &runs[s][t]);
            if (!rc)
                bench_torch(z, t, warmup, steps, &runs[s][t]);
        }
    }

    if (!rc) {
        printf("PyTorch: bench/torch_sae.py, torch.set_num_threads and BLIS_NUM_THREADS = "
               "ours\n");
        for (int t = 1; t <= max_threads; t++) {
            const sae_run *r = &runs[0][t];
            const char *s_ = t == 1 ? "" : "s";
            if (r->why[0])
                printf("PyTorch baseline skipped (%d thread%s): %s\n", t, s_, r->why);
            else
                printf("PyTorch (%d thread%s): torch %s, BLAS mapped: %s%s\n", t, s_, r->version,
                       r->blas, strstr(r->blas, "blis") ? " (BLIS)" : "  <-- NOT BLIS");
            for (int s = 1; s < N_SIZES; s++)
                if (runs[s][t].why[0] && strcmp(runs[s][t].why, r->why))
                    printf("PyTorch baseline skipped (%s, %d thread%s): %s\n", sizes[s].name, t,
                           s_, runs[s][t].why);
        }
        printf("GEMM kernels: libscalar's cpu backend: see \"backend\" above; PyTorch: the same "
               "libblis through libblas.so.3, with BLIS's own kernels (the sub-configuration "
               "named first)\n");
        printf("\ntraining steps (sgemm: [n, d_in] x [d_in, d_sae] through scalar_backend_sgemm, "
               "best of its rounds; loss: after the timed steps, same data distribution and "
               "initialisation, different draws)\n");
        printf("%-4s  %3s  %17s  %17s  %11s %6s %8s %7s %7s %8s %9s %10s\n", "size", "thr",
               "libscalar step/s", "PyTorch step/s", "ratio", "target", "GFLOP/s", "sgemm",
               "%sgemm", "torch GF", "loss", "torch loss");
        int miss = 0, compared = 0;
        for (int s = 0; s < N_SIZES; s++)
            for (int t = 1; t <= max_threads; t++) {
                const sae_run *r = &runs[s][t];
                print_train_row(&sizes[s], t, r);
                double q = ratio_of(&r->ours, &r->torch);
                compared += q > 0.0;
                miss += q > 0.0 && q < sizes[s].target;
            }
        printf("\ndecode, same codes (those of x): sparse = scalar_sae_decode (k rows gathered "
               "per token), dense = scalar_sae_decode_dense (GEMM on [n, d_sae] codes); ms per "
               "call, median [best]; GFLOP/s of 2*n*k*d_in and 2*n*d_sae*d_in; diff = max "
               "|sparse - dense| / max |dense|\n");
        printf("%-4s  %3s  %21s  %21s  %11s %6s %8s %8s   %s\n", "size", "thr", "sparse ms",
               "dense ms", "ratio", "target", "sp GF/s", "dn GF/s", "diff");
        int dmiss = 0, dcompared = 0;
        for (int s = 0; s < N_SIZES; s++)
            for (int t = 1; t <= max_threads; t++) {
                const sae_run *r = &runs[s][t];
                print_decode_row(&sizes[s], t, r);
                double q = ratio_of(&r->sparse, &r->dense);
                dcompared += q > 0.0;
                dmiss += q > 0.0 && q < TARGET_DECODE;
            }
        printf("\ntargets: train (toy >= %.0fx, gpt2 >= %.0fx PyTorch): ", sizes[0].target,
               sizes[1].target);
        if (compared == 0)
            printf("not checked (no PyTorch)");
        else
            printf("%s, %d of %d met", miss ? "NO" : "yes", compared - miss, compared);
        printf("; sparse decode >= %.0fx dense: %s, %d of %d met\n", TARGET_DECODE,
               dmiss ? "NO" : "yes", dcompared - dmiss, dcompared);
    }

    if (!rc)
        rc = scalar_backend_register(&prof_ops) == SCALAR_OK ? 0
                                                              : fail("register cpu-sae-prof",
                                                                     SCALAR_E_BACKEND);
    for (int s = 0; s < N_SIZES && !rc; s++) {
        int steps = steps_env < sizes[s].max_steps ? steps_env : sizes[s].max_steps;
        rc = run_profile(&sizes[s], max_threads, steps, xs[s], runs[s][max_threads].sgemm);
    }
    for (int s = 0; s < N_SIZES; s++)
        free(xs[s]);
    if (!rc)
        printf("(%.1f s)\n", now() - t_start);
    return rc;
}
