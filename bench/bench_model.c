/*
 * bench_model.c - tokens/s of SPEC.md's toy GPT-2 through libscalar against
 * the same model in PyTorch, both measured in this run on this machine.
 *
 * Model: 4 layers, 4 heads, n_embd 64, context 128, vocabulary 128 (216,448
 * parameters); a batch is 128 sequences x 128 tokens = 16,384 tokens.
 *   train    scalar_model_trainer_step: forward, cross-entropy, backward,
 *            global-norm clip 1.0, AdamW (SPEC.md defaults)
 *   forward  scalar_model_forward on an inference workspace: logits, no
 *            loss, no gradients
 * PyTorch runs bench/torch_model.py in a subprocess (tests/reference/
 * gpt2_ref.py's model, torch.optim.AdamW, clip_grad_norm_, float32) with
 * torch.set_num_threads and BLIS_NUM_THREADS equal to ours, twice: gpt2_ref
 * as written ("gpt2_ref", the baseline of the targets) and with its LayerNorm
 * and GELU swapped for F.layer_norm and F.gelu ("native", what a PyTorch
 * user would write).  Each side runs WARMUP untimed steps, then STEPS timed
 * ones, and reports the median step (best in brackets).
 * Our GFLOP/s use the formula printed with them and are compared with an
 * sgemm of the model's MLP shape through scalar_backend_sgemm, timed here.
 * The timing, machine and subprocess helpers are bench_util.h's (shared with
 * bench_sae.c).
 * Targets: train >= 2x PyTorch, forward >= 3x; a miss is printed loudly but
 * the exit status stays 0 (as bench_sgemm).  Without python3 or torch the
 * PyTorch columns say why and our numbers still print.
 *
 * Last, a per-kernel profile of training steps: every backend call goes
 * through a timing wrapper around "cpu" (registered here as "cpu-prof"),
 * split into phases by the first kernel of each (embedding_forward starts
 * the forward, cross_entropy_backward the backward, sumsq the optimizer).
 *
 * Environment:
 *   SCALAR_BENCH_PYTHON      the Python with torch (default /usr/bin/python3)
 *   SCALAR_BENCH_STEPS       timed steps per measurement (default 3)
 *   SCALAR_BENCH_WARMUP      untimed steps before them (default 1)
 *   SCALAR_BENCH_THREADS     largest thread count; 1 .. this are run (default 2)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#include "bench_peak.h"
#define BENCH_NAME "bench_model"
#include "bench_util.h"

#define BATCH 128
#define SEQ 128
#define TARGET_TRAIN 2.0
#define TARGET_FORWARD 3.0
#define GEMM_M (BATCH * SEQ) /* the MLP's up-projection: [BT, C] x [C, 4C] */
#define GEMM_K 64
#define GEMM_N 256
#define BATCH_SECONDS 0.05 /* one timed batch of sgemm calls */
#define GEMM_ROUNDS 5
#define PROFILE_STEPS 1
#define MAX_THREADS 16

/* ===================================================================== */
/*  libscalar                                                             */
/* ===================================================================== */

typedef struct side {
    double median_s, best_s; /* seconds per step */
    int ok;
} side;

typedef struct run {
    side train, forward;
} run;

/* Uniform ids in [0, vocab) from an LCG started at seed. */
static void fill_ids(int32_t *ids, int64_t n, int32_t vocab, unsigned seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = (int32_t)((seed >> 8) % (unsigned)vocab);
    }
}

static scalar_status time_train(scalar_model *model, const int32_t *x, const int32_t *y,
                                int warmup, int steps, side *out)
{
    scalar_model_trainer *tr = NULL;
    scalar_status st = scalar_model_trainer_create(&tr, model, NULL); /* batch 128 x 128 */
    double t[64];
    for (int s = 0; s < warmup + steps && st == SCALAR_OK; s++) {
        double t0 = now();
        st = scalar_model_trainer_step(tr, x, y, NULL, NULL);
        if (s >= warmup)
            t[s - warmup] = now() - t0;
    }
    if (st == SCALAR_OK) {
        median_best(t, steps, &out->median_s, &out->best_s);
        out->ok = 1;
    }
    scalar_model_trainer_free(tr);
    return st;
}

static scalar_status time_forward(scalar_model *model, const int32_t *x, int warmup, int steps,
                                  side *out)
{
    scalar_model_workspace *ws = NULL;
    scalar_status st = scalar_model_workspace_create(&ws, model, BATCH, SEQ, 0);
    double t[64];
    for (int s = 0; s < warmup + steps && st == SCALAR_OK; s++) {
        double t0 = now();
        st = scalar_model_forward(model, ws, x, NULL, BATCH, SEQ, NULL, NULL);
        if (s >= warmup)
            t[s - warmup] = now() - t0;
    }
    if (st == SCALAR_OK) {
        median_best(t, steps, &out->median_s, &out->best_s);
        out->ok = 1;
    }
    scalar_model_workspace_free(ws);
    return st;
}

/* Our train and forward at n_threads, on a fresh toy model. */
static int bench_ours(int n_threads, const int32_t *x, const int32_t *y, int warmup, int steps,
                      run *out)
{
    scalar_ctx *ctx = make_ctx("cpu", n_threads);
    scalar_model *model = NULL;
    if (!ctx)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    scalar_status st = scalar_model_create(&model, ctx, NULL);
    if (st == SCALAR_OK)
        st = time_train(model, x, y, warmup, steps, &out->train);
    if (st == SCALAR_OK)
        st = time_forward(model, x, warmup, steps, &out->forward);
    scalar_model_free(model);
    scalar_ctx_free(ctx);
    return st == SCALAR_OK ? 0 : fail("libscalar toy model", st);
}

/* ===================================================================== */
/*  PyTorch in a subprocess                                               */
/* ===================================================================== */

enum { IMPL_REF, IMPL_NATIVE, N_IMPL };
static const char *const impl_names[N_IMPL] = {"ref", "native"};

typedef struct torch_run {
    run impl[N_IMPL];
    char version[32], blas[512];
    char why[512]; /* non-empty: the baseline was skipped, and why */
} torch_run;

static int read_side(const cJSON *impl, const char *mode, side *out)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(impl, mode);
    const cJSON *med = cJSON_GetObjectItemCaseSensitive(o, "median_s");
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(o, "best_s");
    if (!cJSON_IsNumber(med) || !cJSON_IsNumber(best) || !(med->valuedouble > 0.0))
        return -1;
    out->median_s = med->valuedouble;
    out->best_s = best->valuedouble;
    out->ok = 1;
    return 0;
}

/* Parse the last JSON line of the script's output. */
static void parse_torch(const char *output, int status, torch_run *out)
{
    cJSON *root = parse_last_json(output);
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "skip");
    const cJSON *impls = cJSON_GetObjectItemCaseSensitive(root, "impls");
    int bad = !cJSON_IsObject(impls);
    for (int i = 0; i < N_IMPL && !bad; i++) {
        const cJSON *impl = cJSON_GetObjectItemCaseSensitive(impls, impl_names[i]);
        bad = read_side(impl, "train", &out->impl[i].train) ||
              read_side(impl, "forward", &out->impl[i].forward);
    }
    if (cJSON_IsString(why)) {
        snprintf(out->why, sizeof out->why, "%s", why->valuestring);
    } else if (bad) {
        char tail[400];
        last_line(tail, sizeof tail, output);
        snprintf(out->why, sizeof out->why, "no result (exit status %d): %s", status, tail);
    } else {
        copy_string(out->version, sizeof out->version, root, "torch");
        copy_string(out->blas, sizeof out->blas, root, "blas");
    }
    if (out->why[0])
        memset(out->impl, 0, sizeof out->impl);
    cJSON_Delete(root);
}

static void bench_torch(int n_threads, int warmup, int steps, torch_run *out)
{
    memset(out, 0, sizeof *out);
    char args[256];
    snprintf(args, sizeof args, "--threads %d --steps %d --warmup %d --batch %d --seq %d --mode "
             "both --impl both", n_threads, steps, warmup, BATCH, SEQ);
    int status = 0;
    char *output = run_script("torch_model.py", n_threads, args, &status, out->why,
                              sizeof out->why);
    if (!output)
        return;
    parse_torch(output, status, out);
    free(output);
}

/* ===================================================================== */
/*  Report                                                                */
/* ===================================================================== */

typedef struct model_flops {
    double forward, train; /* per token */
    int64_t L, C, F, V, T, n_params;
} model_flops;

static model_flops count_flops(void)
{
    scalar_ctx *ctx = make_ctx("cpu", 1);
    scalar_model *model = NULL;
    scalar_model_config cfg;
    model_flops f = {0};
    scalar_model_config_init(&cfg, sizeof cfg);
    if (ctx && scalar_model_create(&model, ctx, NULL) == SCALAR_OK &&
        scalar_model_get_config(model, &cfg) == SCALAR_OK) {
        f.L = cfg.n_layer, f.C = cfg.n_embd, f.V = cfg.vocab_size, f.T = SEQ;
        f.F = cfg.d_mlp ? cfg.d_mlp : 4 * cfg.n_embd;
        f.n_params = scalar_model_n_params(model);
        double matmul = 2.0 * (double)(f.L * (4 * f.C * f.C + 2 * f.C * f.F) + f.C * f.V);
        double attention = 2.0 * (double)(f.L * f.T * f.C);
        f.forward = matmul + attention;
        f.train = 3.0 * f.forward;
    }
    scalar_model_free(model);
    scalar_ctx_free(ctx);
    return f;
}

static void print_flops(const model_flops *f)
{
    printf("FLOP per token: forward = 2*(L*(4*C^2 + 2*C*F) + C*V) [weight matmuls incl. the tied "
           "LM head] + 2*L*T*C [causal attention: QK^T and AV at 4*T*C per layer, halved]\n"
           "  = 2*(%lld*(4*%lld^2 + 2*%lld*%lld) + %lld*%lld) + 2*%lld*%lld*%lld = %.0f + %.0f = "
           "%.0f; train = 3 x forward = %.0f (biases, LayerNorm, GELU, softmax, loss and AdamW "
           "not counted)\n",
           (long long)f->L, (long long)f->C, (long long)f->C, (long long)f->F, (long long)f->C,
           (long long)f->V, (long long)f->L, (long long)f->T, (long long)f->C,
           f->forward - 2.0 * (double)(f->L * f->T * f->C), 2.0 * (double)(f->L * f->T * f->C),
           f->forward, f->train);
}

/* "tok/s [best]" of a side, or why there is none. */
static void format_side(char *buf, size_t size, const side *sd)
{
    const double tokens = (double)BATCH * SEQ;
    if (sd->ok)
        snprintf(buf, size, "%7.0f [%7.0f]", tokens / sd->median_s, tokens / sd->best_s);
    else
        snprintf(buf, size, "%17s", "skipped");
}

/* PyTorch median step time over ours; 0 if there is no PyTorch number. */
static double ratio_of(const side *ours, const side *torch)
{
    return torch->ok ? torch->median_s / ours->median_s : 0.0;
}

/* "ratio x" and a flag when below target, or "-" without PyTorch. */
static void format_ratio(char *buf, size_t size, double ratio, double target)
{
    if (ratio > 0.0)
        snprintf(buf, size, "%6.2fx %-3s", ratio, ratio < target ? "<--" : "");
    else
        snprintf(buf, size, "%7s %3s", "-", "");
}

/* One line: ours, both PyTorch models and the ratios, GFLOP/s and its fractions. */
static void print_row(int n_threads, const char *what, const side *ours, const side *ref,
                      const side *native, double target, double flop_per_token, double sgemm,
                      double peak)
{
    char o[48], r[48], n[48], rr[32], rn[32];
    format_side(o, sizeof o, ours);
    format_side(r, sizeof r, ref);
    format_side(n, sizeof n, native);
    format_ratio(rr, sizeof rr, ratio_of(ours, ref), target);
    format_ratio(rn, sizeof rn, ratio_of(ours, native), target);
    double gflops = flop_per_token * (double)BATCH * SEQ / ours->median_s * 1e-9;
    printf("%3d  %-7s  %s  %s %s  %s %s %4.1fx %8.1f %6.0f%% %6.0f%%\n", n_threads, what, o, r,
           rr, n, rn, target, gflops, 100.0 * gflops / sgemm, 100.0 * gflops / peak);
}

/* ===================================================================== */
/*  Profile: a timing wrapper backend around "cpu"                        */
/* ===================================================================== */

enum { PH_START, PH_FORWARD, PH_BACKWARD, PH_OPTIMIZER, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {"zero_grad", "forward+loss", "backward",
                                                  "clip+AdamW"};
static const char *const op_names[SCALAR_OP_COUNT] = {
    "sgemm", "bias_add", "gelu_forward", "gelu_backward", "layernorm_forward",
    "layernorm_backward", "softmax_rows", "topk_rows", "gather_rows", "scatter_add_rows",
    "attention_forward", "attention_backward", "embedding_forward", "embedding_backward",
    "cross_entropy_forward", "cross_entropy_backward", "sum_rows", "add", "sumsq", "adamw"};

#define MAX_SHAPES 32
typedef struct gemm_shape {
    int32_t ta, tb, phase;
    int64_t m, n, k;
    long calls;
    double seconds;
} gemm_shape;

/* The profile of the steps since prof_reset(): process-wide, this is a program. */
static struct {
    int phase;
    double phase_start[PH_COUNT], phase_wall[PH_COUNT];
    double op_seconds[PH_COUNT][SCALAR_OP_COUNT];
    long op_calls[SCALAR_OP_COUNT];
    gemm_shape shapes[MAX_SHAPES];
    int n_shapes;
} prof;

static void prof_reset(void)
{
    memset(&prof, 0, sizeof prof);
}

/* Close the running phase at time t and open `phase`. */
static void prof_phase(int phase, double t)
{
    prof.phase_wall[prof.phase] += t - prof.phase_start[prof.phase];
    prof.phase = phase;
    prof.phase_start[phase] = t;
}

static double prof_begin(int32_t op)
{
    double t = now();
    if (op == SCALAR_OP_EMBEDDING_FORWARD)
        prof_phase(PH_FORWARD, t);
    else if (op == SCALAR_OP_CROSS_ENTROPY_BACKWARD)
        prof_phase(PH_BACKWARD, t);
    else if (op == SCALAR_OP_SUMSQ)
        prof_phase(PH_OPTIMIZER, t);
    return t;
}

static double prof_end(int32_t op, double t0)
{
    double dt = now() - t0;
    prof.op_seconds[prof.phase][op] += dt;
    prof.op_calls[op]++;
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
        return scalar_sys_error_set(SCALAR_E_BACKEND, "cpu-prof: no cpu context");
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
    double t0 = prof_begin(SCALAR_OP_SGEMM);
    scalar_status st = scalar_backend_sgemm(inner(self), ta, tb, m, n, k, alpha, a, lda, b, ldb,
                                            beta, c, ldc);
    double dt = prof_end(SCALAR_OP_SGEMM, t0);
    int i = 0;
    for (; i < prof.n_shapes; i++) {
        const gemm_shape *g = &prof.shapes[i];
        if (g->ta == ta && g->tb == tb && g->m == m && g->n == n && g->k == k &&
            g->phase == prof.phase)
            break;
    }
    if (i == prof.n_shapes && i < MAX_SHAPES)
        prof.shapes[prof.n_shapes++] = (gemm_shape){ta, tb, prof.phase, m, n, k, 0, 0.0};
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
        double t0_ = prof_begin(OP);                                                               \
        scalar_status st_ = scalar_backend_##slot args;                                            \
        prof_end(OP, t0_);                                                                         \
        return st_;                                                                                \
    }

PROF_SLOT(bias_add, SCALAR_OP_BIAS_ADD,
          (void *self, float *x, const float *bias, int64_t rows, int64_t cols),
          (inner(self), x, bias, rows, cols))
PROF_SLOT(gelu_forward, SCALAR_OP_GELU_FORWARD, (void *self, float *out, const float *in, int64_t n),
          (inner(self), out, in, n))
PROF_SLOT(gelu_backward, SCALAR_OP_GELU_BACKWARD,
          (void *self, float *d_in, const float *in, const float *d_out, int64_t n),
          (inner(self), d_in, in, d_out, n))
PROF_SLOT(layernorm_forward, SCALAR_OP_LAYERNORM_FORWARD,
          (void *self, float *out, float *mean, float *rstd, const float *in, const float *w,
           const float *b, int64_t rows, int64_t d, float eps),
          (inner(self), out, mean, rstd, in, w, b, rows, d, eps))
PROF_SLOT(layernorm_backward, SCALAR_OP_LAYERNORM_BACKWARD,
          (void *self, float *d_in, float *d_w, float *d_b, const float *d_out, const float *in,
           const float *w, const float *mean, const float *rstd, int64_t rows, int64_t d),
          (inner(self), d_in, d_w, d_b, d_out, in, w, mean, rstd, rows, d))
PROF_SLOT(attention_forward, SCALAR_OP_ATTENTION_FORWARD,
          (void *self, float *out, float *att, const float *qkv, int64_t B, int64_t T, int64_t C,
           int64_t H),
          (inner(self), out, att, qkv, B, T, C, H))
PROF_SLOT(attention_backward, SCALAR_OP_ATTENTION_BACKWARD,
          (void *self, float *d_qkv, const float *d_out, const float *qkv, const float *att,
           int64_t B, int64_t T, int64_t C, int64_t H),
          (inner(self), d_qkv, d_out, qkv, att, B, T, C, H))
PROF_SLOT(embedding_forward, SCALAR_OP_EMBEDDING_FORWARD,
          (void *self, float *out, const int32_t *ids, const float *wte, const float *wpe,
           int64_t B, int64_t T, int64_t C, int64_t vocab, int64_t n_pos),
          (inner(self), out, ids, wte, wpe, B, T, C, vocab, n_pos))
PROF_SLOT(embedding_backward, SCALAR_OP_EMBEDDING_BACKWARD,
          (void *self, float *d_wte, float *d_wpe, const float *d_out, const int32_t *ids,
           int64_t B, int64_t T, int64_t C, int64_t vocab, int64_t n_pos),
          (inner(self), d_wte, d_wpe, d_out, ids, B, T, C, vocab, n_pos))
PROF_SLOT(cross_entropy_forward, SCALAR_OP_CROSS_ENTROPY_FORWARD,
          (void *self, float *losses, const float *logits, int64_t ld, const int32_t *targets,
           int64_t n, int64_t vocab),
          (inner(self), losses, logits, ld, targets, n, vocab))
PROF_SLOT(cross_entropy_backward, SCALAR_OP_CROSS_ENTROPY_BACKWARD,
          (void *self, float *d_logits, const float *logits, int64_t ld, const int32_t *targets,
           const float *d_losses, int64_t n, int64_t vocab),
          (inner(self), d_logits, logits, ld, targets, d_losses, n, vocab))
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

static const scalar_backend_ops prof_ops = {
    .abi_version = SCALAR_BACKEND_ABI_VERSION,
    .struct_size = sizeof(scalar_backend_ops),
    .name = "cpu-prof",
    .create = prof_create,
    .destroy = prof_destroy,
    .buffer_alloc = prof_alloc,
    .buffer_free = prof_free,
    .sgemm = prof_sgemm,
    .bias_add = prof_bias_add,
    .gelu_forward = prof_gelu_forward,
    .gelu_backward = prof_gelu_backward,
    .layernorm_forward = prof_layernorm_forward,
    .layernorm_backward = prof_layernorm_backward,
    .attention_forward = prof_attention_forward,
    .attention_backward = prof_attention_backward,
    .embedding_forward = prof_embedding_forward,
    .embedding_backward = prof_embedding_backward,
    .cross_entropy_forward = prof_cross_entropy_forward,
    .cross_entropy_backward = prof_cross_entropy_backward,
    .sum_rows = prof_sum_rows,
    .add = prof_add,
    .sumsq = prof_sumsq,
    .adamw = prof_adamw,
};

static int by_total_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return (x < y) - (x > y);
}

static void print_profile(int n_threads, double step_s, scalar_backend *cpu)
{
    const double per = 1000.0 / PROFILE_STEPS; /* ms per step */
    printf("\nprofile of a training step, %d thread%s: %d step%s after 1 warmup, every backend "
           "call timed through a wrapper around \"cpu\" (%.1f ms per step, %.0f tok/s)\n",
           n_threads, n_threads == 1 ? "" : "s", PROFILE_STEPS, PROFILE_STEPS == 1 ? "" : "s",
           1000.0 * step_s, (double)BATCH * SEQ / step_s);
    printf("%-14s %9s %11s %12s\n", "phase", "wall ms", "kernels ms", "outside ms");
    for (int ph = 0; ph < PH_COUNT; ph++) {
        double k = 0.0;
        for (int op = 0; op < SCALAR_OP_COUNT; op++)
            k += prof.op_seconds[ph][op];
        printf("%-14s %9.1f %11.1f %12.1f\n", phase_names[ph], prof.phase_wall[ph] * per, k * per,
               (prof.phase_wall[ph] - k) * per);
    }
    /* Kernels sorted by total time: rows of {total, op}. */
    double rows[SCALAR_OP_COUNT][2];
    for (int op = 0; op < SCALAR_OP_COUNT; op++) {
        rows[op][0] = 0.0;
        rows[op][1] = op;
        for (int ph = 0; ph < PH_COUNT; ph++)
            rows[op][0] += prof.op_seconds[ph][op];
    }
    qsort(rows, SCALAR_OP_COUNT, sizeof rows[0], by_total_desc);
    printf("%-23s %-8s %6s %9s %7s %9s %9s %9s\n", "kernel", "runs on", "calls", "ms/step",
           "%step", "fwd ms", "bwd ms", "opt ms");
    for (int r = 0; r < SCALAR_OP_COUNT; r++) {
        int op = (int)rows[r][1];
        if (!prof.op_calls[op])
            continue;
        printf("%-23s %-8s %6ld %9.1f %6.1f%% %9.1f %9.1f %9.1f\n", op_names[op],
               scalar_backend_supports(cpu, op) ? "cpu" : "cpu-ref", prof.op_calls[op] / PROFILE_STEPS,
               rows[r][0] * per, 100.0 * rows[r][0] / (step_s * PROFILE_STEPS),
               prof.op_seconds[PH_FORWARD][op] * per, prof.op_seconds[PH_BACKWARD][op] * per,
               prof.op_seconds[PH_OPTIMIZER][op] * per);
    }
    printf("sgemm by shape (C[m,n] = op(A)[m,k] op(B)[k,n], T = transposed):\n");
    printf("  %-8s %-24s %6s %9s %9s\n", "phase", "op(A) op(B)  m x n x k", "calls", "ms/step",
           "GFLOP/s");
    for (int i = 0; i < prof.n_shapes; i++) {
        const gemm_shape *g = &prof.shapes[i];
        char label[64];
        snprintf(label, sizeof label, "%s%s %lldx%lldx%lld", g->ta ? "T" : "N", g->tb ? "T" : "N",
                 (long long)g->m, (long long)g->n, (long long)g->k);
        printf("  %-8s %-24s %6ld %9.2f %9.1f\n",
               g->phase == PH_FORWARD ? "fwd" : g->phase == PH_BACKWARD ? "bwd" : "other", label,
               g->calls / PROFILE_STEPS, g->seconds * per,
               2.0 * (double)(g->m * g->n * g->k) * (double)g->calls / g->seconds * 1e-9);
    }
}

static int run_profile(int n_threads, const int32_t *x, const int32_t *y)
{
    scalar_status st = scalar_backend_register(&prof_ops);
    scalar_ctx *ctx = st == SCALAR_OK ? make_ctx("cpu-prof", n_threads) : NULL;
    scalar_ctx *cpu = make_ctx("cpu", n_threads);
    scalar_model *model = NULL;
    scalar_model_trainer *tr = NULL;
    if (!ctx || !cpu)
        st = SCALAR_E_BACKEND;
    if (st == SCALAR_OK)
        st = scalar_model_create(&model, ctx, NULL);
    if (st == SCALAR_OK)
        st = scalar_model_trainer_create(&tr, model, NULL);
    if (st == SCALAR_OK)
        st = scalar_model_trainer_step(tr, x, y, NULL, NULL); /* warmup */
    prof_reset();
    double t0 = now();
    for (int s = 0; s < PROFILE_STEPS && st == SCALAR_OK; s++) {
        prof.phase = PH_START; /* open zero_grad without closing anything */
        prof.phase_start[PH_START] = now();
        st = scalar_model_trainer_step(tr, x, y, NULL, NULL);
        prof_phase(PH_START, now()); /* close the optimizer */
    }
    double step_s = (now() - t0) / PROFILE_STEPS;
    if (st == SCALAR_OK)
        print_profile(n_threads, step_s, scalar_ctx_backend(cpu));
    scalar_model_trainer_free(tr);
    scalar_model_free(model);
    scalar_ctx_free(ctx);
    scalar_ctx_free(cpu);
    return st == SCALAR_OK ? 0 : fail("profile", st);
}

/* ===================================================================== */

int main(void)
{
    const int steps = env_int("SCALAR_BENCH_STEPS", 3, 1, 64);
    const int warmup = env_int("SCALAR_BENCH_WARMUP", 1, 0, 64);
    const int max_threads = env_int("SCALAR_BENCH_THREADS", 2, 1, MAX_THREADS);
    const int64_t n_tokens = (int64_t)BATCH * SEQ;
    double t_start = now();
    int32_t *x = malloc((size_t)n_tokens * sizeof *x), *y = malloc((size_t)n_tokens * sizeof *y);
    model_flops fl = count_flops();
    if (!x || !y || fl.forward <= 0.0)
        return fail("setup", SCALAR_E_NOMEM);
    fill_ids(x, n_tokens, (int32_t)fl.V, 1u);
    fill_ids(y, n_tokens, (int32_t)fl.V, 2u);

    printf("toy GPT-2 (SPEC.md): %lld layers, n_embd %lld, d_mlp %lld, vocab %lld, context %d, "
           "%lld parameters; batch %d x %d = %lld tokens per step\n",
           (long long)fl.L, (long long)fl.C, (long long)fl.F, (long long)fl.V, SEQ,
           (long long)fl.n_params, BATCH, SEQ, (long long)n_tokens);
    print_machine();
    scalar_ctx *probe = make_ctx("cpu", max_threads);
    if (!probe)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    printf("libscalar %s, backend: %s\n", scalar_version_string(),
           scalar_backend_describe(scalar_ctx_backend(probe)));
    printf("train: scalar_model_trainer_step (forward, loss, backward, clip 1.0, AdamW); forward: "
           "scalar_model_forward, logits only, no gradients\n");
    printf("timing: %d warmup step%s, then %d timed; tok/s of the median step [best step in "
           "brackets]; ratio = PyTorch median step time / ours\n", warmup, warmup == 1 ? "" : "s",
           steps);
    print_flops(&fl);

    run ours[MAX_THREADS + 1];
    torch_run theirs[MAX_THREADS + 1];
    double sgemm[MAX_THREADS + 1], peak[MAX_THREADS + 1];
    for (int t = 1; t <= max_threads; t++) {
        scalar_ctx *ctx = make_ctx("cpu", t);
        scalar_status st = ctx ? measure_sgemm(scalar_ctx_backend(ctx), GEMM_M, GEMM_K, GEMM_N,
                                               GEMM_ROUNDS, BATCH_SECONDS, &sgemm[t])
                               : SCALAR_E_BACKEND;
        scalar_ctx_free(ctx);
        if (st != SCALAR_OK)
            return fail("sgemm", st);
        peak[t] = measure_peak(t);
        memset(&ours[t], 0, sizeof ours[t]);
        if (bench_ours(t, x, y, warmup, steps, &ours[t]))
            return 1;
        bench_torch(t, warmup, steps, &theirs[t]);
    }

    printf("PyTorch: bench/torch_model.py, torch.set_num_threads and BLIS_NUM_THREADS = ours; "
           "gpt2_ref = tests/reference/gpt2_ref.py as written, native = the same with "
           "F.layer_norm and F.gelu(approximate=\"tanh\")\n");
    for (int t = 1; t <= max_threads; t++) {
        const char *s_ = t == 1 ? "" : "s";
        if (theirs[t].why[0])
            printf("PyTorch baseline skipped (%d thread%s): %s\n", t, s_, theirs[t].why);
        else
            printf("PyTorch (%d thread%s): torch %s, BLAS mapped: %s%s\n", t, s_,
                   theirs[t].version, theirs[t].blas,
                   strstr(theirs[t].blas, "blis") ? " (BLIS)" : "  <-- NOT BLIS");
    }
    {
        scalar_ctx *ctx = make_ctx("cpu", 1);
        if (ctx)
            printf("GEMM kernels: libscalar's cpu backend: %s; PyTorch: the same libblis through "
                   "libblas.so.3, with BLIS's own kernels (the sub-configuration named first)\n",
                   scalar_backend_describe(scalar_ctx_backend(ctx)));
        scalar_ctx_free(ctx);
    }
    printf("sgemm %dx%dx%d (m x k x n, the MLP up-projection) through scalar_backend_sgemm, best "
           "of %d batches, GFLOP/s:", GEMM_M, GEMM_K, GEMM_N, GEMM_ROUNDS);
    for (int t = 1; t <= max_threads; t++)
        printf(" %.1f (%d thr)%s", sgemm[t], t, t < max_threads ? "," : "");
    printf("; measured %s FMA peak:", peak_isa());
    for (int t = 1; t <= max_threads; t++)
        printf(" %.1f (%d thr)%s", peak[t], t, t < max_threads ? "," : "\n");
    printf("%3s  %-7s  %17s  %17s %8s %3s  %17s %8s %3s %5s %8s %7s %7s\n", "thr", "mode",
           "libscalar tok/s", "gpt2_ref tok/s", "ratio", "", "native tok/s", "ratio", "",
           "target", "GFLOP/s", "%sgemm", "%peak");
    int miss[N_IMPL] = {0}, compared[N_IMPL] = {0};
    for (int t = 1; t <= max_threads; t++) {
        const run *r = &theirs[t].impl[IMPL_REF], *n = &theirs[t].impl[IMPL_NATIVE];
        print_row(t, "train", &ours[t].train, &r->train, &n->train, TARGET_TRAIN, fl.train,
                  sgemm[t], peak[t]);
        print_row(t, "forward", &ours[t].forward, &r->forward, &n->forward, TARGET_FORWARD,
                  fl.forward, sgemm[t], peak[t]);
        for (int i = 0; i < N_IMPL; i++) {
            const run *ti = &theirs[t].impl[i];
            double rt = ratio_of(&ours[t].train, &ti->train);
            double rf = ratio_of(&ours[t].forward, &ti->forward);
            compared[i] += (rt > 0.0) + (rf > 0.0);
            miss[i] += (rt > 0.0 && rt < TARGET_TRAIN) + (rf > 0.0 && rf < TARGET_FORWARD);
        }
    }
    printf("targets (train >= %.0fx, forward >= %.0fx PyTorch):", TARGET_TRAIN, TARGET_FORWARD);
    for (int i = 0; i < N_IMPL; i++) {
        const char *name = i == IMPL_REF ? "gpt2_ref" : "native";
        if (compared[i] == 0)
            printf(" vs %s not checked (no PyTorch)%s", name, i + 1 < N_IMPL ? ";" : "\n");
        else
            printf(" vs %s %s, %d of %d met%s", name, miss[i] ? "NO" : "yes",
                   compared[i] - miss[i], compared[i], i + 1 < N_IMPL ? ";" : "\n");
    }

    int rc = run_profile(max_threads, x, y);
    printf("(%.1f s)\n", now() - t_start);
    scalar_ctx_free(probe);
    free(x);
    free(y);
    return rc;
}
