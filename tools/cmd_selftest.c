/*
 * cmd_selftest.c - `scalar selftest [--keep FILE]`: the round-trip demo.
 *
 * 1. Random inputs, deterministic from the context's seed.
 * 2. Each kernel (sgemm, gelu_forward, layernorm_forward, softmax_rows,
 *    topk_rows) runs on the context's backend and on a second context using
 *    "cpu-ref"; inputs go through backend buffers (buffer_alloc, upload,
 *    download), so a device backend is tested the way callers use it.
 * 3. Outputs are compared: max abs and norm-wise rel difference, pass when every
 *    element satisfies |x - ref| <= atol + rtol |ref| (top-k: exactly equal).
 * 4. Inputs and the backend's outputs go to a safetensors file through the
 *    atomic writer, with __metadata__; the file is read back and every tensor
 *    and metadata value must be bit-identical.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <scalar/sys/backend.h>

#include "cli.h"

#define XSTR(x) STR(x)
#define STR(x) #x

/* Sizes.  sgemm: C[M,N] = A[M,K] B[K,N]; gelu: G elements; layernorm: LN_R
 * rows of LN_D; softmax and top-k: ROWS x COLS, keeping TOP_K per row. */
#define M 64
#define K 80
#define N 48
#define G 4096
#define LN_R 32
#define LN_D 96
#define ROWS 32
#define COLS 100
#define TOP_K 8

/* One tensor of the demo: an input (random) or an output (data[0] from the
 * context's backend, data[1] from cpu-ref). */
typedef struct tensor {
    const char *name;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[2];
    int is_output;
    float offset, scale; /* inputs: uniform in [offset - scale, offset + scale) */
    void *data[2];
} tensor;

enum {
    T_SG_A, T_SG_B, T_SG_C,
    T_GE_IN, T_GE_OUT,
    T_LN_IN, T_LN_W, T_LN_B, T_LN_OUT, T_LN_MEAN, T_LN_RSTD,
    T_SM_IN, T_SM_OUT,
    T_TK_IN, T_TK_VAL, T_TK_IDX,
    N_TENSORS
};

#define IN2(nm, r, c, off, sc) { nm, SCALAR_DTYPE_F32, 2, { r, c }, 0, off, sc, { 0 } }
#define IN1(nm, n, off, sc) { nm, SCALAR_DTYPE_F32, 1, { n, 0 }, 0, off, sc, { 0 } }
#define OUT2(nm, dt, r, c) { nm, dt, 2, { r, c }, 1, 0, 0, { 0 } }
#define OUT1(nm, n) { nm, SCALAR_DTYPE_F32, 1, { n, 0 }, 1, 0, 0, { 0 } }

static const tensor tensor_specs[N_TENSORS] = {
    [T_SG_A] = IN2("sgemm.a", M, K, 0.0f, 1.0f),
    [T_SG_B] = IN2("sgemm.b", K, N, 0.0f, 1.0f),
    [T_SG_C] = OUT2("sgemm.c", SCALAR_DTYPE_F32, M, N),
    [T_GE_IN] = IN1("gelu.in", G, 0.0f, 4.0f),
    [T_GE_OUT] = OUT1("gelu.out", G),
    [T_LN_IN] = IN2("layernorm.in", LN_R, LN_D, 0.5f, 2.0f),
    [T_LN_W] = IN1("layernorm.weight", LN_D, 1.0f, 0.25f),
    [T_LN_B] = IN1("layernorm.bias", LN_D, 0.0f, 0.25f),
    [T_LN_OUT] = OUT2("layernorm.out", SCALAR_DTYPE_F32, LN_R, LN_D),
    [T_LN_MEAN] = OUT1("layernorm.mean", LN_R),
    [T_LN_RSTD] = OUT1("layernorm.rstd", LN_R),
    [T_SM_IN] = IN2("softmax.in", ROWS, COLS, 0.0f, 6.0f),
    [T_SM_OUT] = OUT2("softmax.out", SCALAR_DTYPE_F32, ROWS, COLS),
    [T_TK_IN] = IN2("topk.in", ROWS, COLS, 0.0f, 1.0f),
    [T_TK_VAL] = OUT2("topk.values", SCALAR_DTYPE_F32, ROWS, TOP_K),
    [T_TK_IDX] = OUT2("topk.indices", SCALAR_DTYPE_I32, ROWS, TOP_K),
};

/* One kernel call on backend pointers d[i] = the op's tensors[i]. */
typedef scalar_status (*op_call)(scalar_backend *be, void *const *d);

#define MAX_OP_TENSORS 6

typedef struct op {
    const char *name;
    const char *shape;
    int tensors[MAX_OP_TENSORS];
    int n_tensors;
    double atol, rtol; /* 0, 0: exact */
    op_call call;
} op;

static scalar_status call_sgemm(scalar_backend *be, void *const *d)
{
    return scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, M, N, K, 1.0f, d[0], K,
                                d[1], N, 0.0f, d[2], N);
}
static scalar_status call_gelu(scalar_backend *be, void *const *d)
{
    return scalar_backend_gelu_forward(be, d[1], d[0], G);
}
static scalar_status call_layernorm(scalar_backend *be, void *const *d)
{
    return scalar_backend_layernorm_forward(be, d[3], d[4], d[5], d[0], d[1], d[2], LN_R, LN_D,
                                            1e-5f);
}
static scalar_status call_softmax(scalar_backend *be, void *const *d)
{
    return scalar_backend_softmax_rows(be, d[1], d[0], ROWS, COLS);
}
static scalar_status call_topk(scalar_backend *be, void *const *d)
{
    return scalar_backend_topk_rows(be, d[1], d[2], d[0], ROWS, COLS, TOP_K);
}

static const op ops[] = {
    { "sgemm", "[" XSTR(M) "," XSTR(K) "]x[" XSTR(K) "," XSTR(N) "]",
      { T_SG_A, T_SG_B, T_SG_C }, 3, 1e-4, 1e-4, call_sgemm },
    { "gelu_forward", "[" XSTR(G) "]", { T_GE_IN, T_GE_OUT }, 2, 1e-5, 1e-4, call_gelu },
    { "layernorm_forward", "[" XSTR(LN_R) "," XSTR(LN_D) "]",
      { T_LN_IN, T_LN_W, T_LN_B, T_LN_OUT, T_LN_MEAN, T_LN_RSTD }, 6, 1e-4, 1e-4,
      call_layernorm },
    { "softmax_rows", "[" XSTR(ROWS) "," XSTR(COLS) "]", { T_SM_IN, T_SM_OUT }, 2, 1e-6, 1e-4,
      call_softmax },
    { "topk_rows", "[" XSTR(ROWS) "," XSTR(COLS) "] k=" XSTR(TOP_K),
      { T_TK_IN, T_TK_VAL, T_TK_IDX }, 3, 0.0, 0.0, call_topk },
};
#define N_OPS (sizeof ops / sizeof ops[0])

/* ---- data ------------------------------------------------------------- */

static uint64_t tensor_numel(const tensor *t)
{
    return t->ndim == 2 ? (uint64_t)(t->shape[0] * t->shape[1]) : (uint64_t)t->shape[0];
}

static size_t tensor_nbytes(const tensor *t)
{
    return (size_t)tensor_numel(t) * scalar_dtype_size(t->dtype);
}

/* splitmix64: one stream per tensor, so each input depends only on (seed, index). */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static void fill_input(tensor *t, uint64_t seed, int index)
{
    uint64_t state = seed ^ ((uint64_t)(index + 1) * 0xD1B54A32D192ED03u);
    float *x = t->data[0];
    for (uint64_t i = 0; i < tensor_numel(t); i++) {
        float u = (float)(splitmix64(&state) >> 40) * 0x1p-24f; /* [0, 1) */
        x[i] = t->offset + t->scale * (2.0f * u - 1.0f);
    }
}

static void tensors_free(tensor *ts)
{
    for (int i = 0; i < N_TENSORS; i++) {
        free(ts[i].data[0]);
        free(ts[i].data[1]);
    }
}

static int tensors_make(tensor *ts, uint64_t seed)
{
    memcpy(ts, tensor_specs, sizeof tensor_specs);
    for (int i = 0; i < N_TENSORS; i++) {
        size_t bytes = tensor_nbytes(&ts[i]);
        ts[i].data[0] = calloc(1, bytes);
        ts[i].data[1] = ts[i].is_output ? calloc(1, bytes) : NULL;
        if (!ts[i].data[0] || (ts[i].is_output && !ts[i].data[1])) {
            fprintf(stderr, "scalar: selftest: out of memory\n");
            return CLI_FAIL;
        }
        if (!ts[i].is_output)
            fill_input(&ts[i], seed, i);
    }
    return CLI_OK;
}

/* ---- running an op on one backend -------------------------------------- */

/* Uploads the op's inputs, runs it, downloads its outputs into data[which]. */
static scalar_status op_run(const op *o, tensor *ts, scalar_backend *be, int which)
{
    void *dev[MAX_OP_TENSORS] = {0};
    scalar_status st = SCALAR_OK;
    for (int i = 0; i < o->n_tensors && st == SCALAR_OK; i++) {
        tensor *t = &ts[o->tensors[i]];
        st = scalar_backend_buffer_alloc(&dev[i], be, tensor_nbytes(t));
        if (st == SCALAR_OK && !t->is_output)
            st = scalar_backend_upload(be, dev[i], t->data[0], tensor_nbytes(t));
    }
    if (st == SCALAR_OK)
        st = o->call(be, dev);
    if (st == SCALAR_OK)
        st = scalar_backend_synchronize(be);
    for (int i = 0; i < o->n_tensors && st == SCALAR_OK; i++) {
        tensor *t = &ts[o->tensors[i]];
        if (t->is_output)
            st = scalar_backend_download(be, t->data[which], dev[i], tensor_nbytes(t));
    }
    for (int i = 0; i < o->n_tensors; i++)
        scalar_backend_buffer_free(be, dev[i], tensor_nbytes(&ts[o->tensors[i]]));
    return st;
}

/* ---- comparing -------------------------------------------------------- */

typedef struct diff {
    double max_abs, max_rel; /* max_rel: norm-wise, ||x - ref|| / ||ref|| */
    double err2, ref2;       /* running sums of squares behind max_rel */
    int pass;
} diff;

static void diff_value(diff *df, double x, double ref, double atol, double rtol)
{
    if (isnan(x) || isnan(ref)) {
        if (!(isnan(x) && isnan(ref))) {
            df->max_abs = df->max_rel = INFINITY;
            df->pass = 0;
        }
        return;
    }
    double d = fabs(x - ref);
    if (!(d <= atol + rtol * fabs(ref)))
        df->pass = 0;
    df->max_abs = fmax(df->max_abs, d);
    /* Element-wise relative error blows up where a GEMM cancels to near 0;
     * the norm-wise error is the meaningful one. */
    df->err2 += d * d;
    df->ref2 += ref * ref;
    df->max_rel = df->ref2 > 0.0 ? sqrt(df->err2 / df->ref2) : sqrt(df->err2);
}

static void diff_tensor(diff *df, const tensor *t, double atol, double rtol)
{
    uint64_t n = tensor_numel(t);
    for (uint64_t i = 0; i < n; i++) {
        if (t->dtype == SCALAR_DTYPE_I32) {
            const int32_t *x = t->data[0], *r = t->data[1];
            diff_value(df, x[i], r[i], 0.0, 0.0);
        } else {
            const float *x = t->data[0], *r = t->data[1];
            diff_value(df, x[i], r[i], atol, rtol);
        }
    }
}

static int op_check(const op *o, tensor *ts, scalar_backend *be, scalar_backend *ref_be)
{
    diff df = {0.0, 0.0, 0.0, 0.0, 1};
    char tol[32];
    if (op_run(o, ts, be, 0) != SCALAR_OK || op_run(o, ts, ref_be, 1) != SCALAR_OK) {
        cli_fail("selftest");
        fprintf(stderr, "scalar: selftest: %s failed\n", o->name);
        df.pass = 0;
        df.max_abs = df.max_rel = NAN;
    } else {
        for (int i = 0; i < o->n_tensors; i++)
            if (ts[o->tensors[i]].is_output)
                diff_tensor(&df, &ts[o->tensors[i]], o->atol, o->rtol);
    }
    if (o->atol == 0.0 && o->rtol == 0.0)
        snprintf(tol, sizeof tol, "exact");
    else
        snprintf(tol, sizeof tol, "%.0e+%.0e*|ref|", o->atol, o->rtol);
    printf("%-18s %-18s %10.3g %10.3g  %-18s %s\n", o->name, o->shape, df.max_abs, df.max_rel,
           tol, df.pass ? "pass" : "FAIL");
    return df.pass;
}

/* ---- the file round trip ----------------------------------------------- */

typedef struct meta_entry {
    const char *key;
    char value[64];
} meta_entry;

#define N_META 4

static void meta_fill(meta_entry *meta, scalar_ctx *ctx)
{
    meta[0].key = "producer";
    snprintf(meta[0].value, sizeof meta[0].value, "scalar selftest");
    meta[1].key = "libscalar";
    snprintf(meta[1].value, sizeof meta[1].value, "%s", scalar_version_string());
    meta[2].key = "backend";
    snprintf(meta[2].value, sizeof meta[2].value, "%s", scalar_ctx_backend_name(ctx));
    meta[3].key = "seed";
    snprintf(meta[3].value, sizeof meta[3].value, "%" PRIu64, scalar_ctx_seed(ctx));
}

static scalar_status file_write(const char *path, const tensor *ts, const meta_entry *meta,
                                scalar_ctx *ctx)
{
    scalar_safetensors_writer *w;
    scalar_status st = scalar_safetensors_writer_create(&w, ctx);
    for (int i = 0; i < N_TENSORS && st == SCALAR_OK; i++)
        st = scalar_safetensors_writer_add(w, ts[i].name, ts[i].dtype, ts[i].shape, ts[i].ndim,
                                           ts[i].data[0], tensor_nbytes(&ts[i]));
    for (int i = 0; i < N_META && st == SCALAR_OK; i++)
        st = scalar_safetensors_writer_set_metadata(w, meta[i].key, meta[i].value);
    if (st == SCALAR_OK)
        st = scalar_safetensors_writer_write(w, path);
    scalar_safetensors_writer_free(w);
    return st;
}

/* 1 if tensor t is in st exactly as written; prints what differs. */
static int file_tensor_matches(const scalar_safetensors *st, const tensor *t)
{
    size_t index, nbytes;
    int64_t shape[SCALAR_MAX_DIMS];
    const void *data;
    if (scalar_safetensors_find(&index, st, t->name) != SCALAR_OK ||
        scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, index) != SCALAR_OK ||
        scalar_safetensors_data(&data, &nbytes, st, index) != SCALAR_OK) {
        printf("  %s: %s\n", t->name, scalar_last_error());
        return 0;
    }
    int same = scalar_safetensors_dtype(st, index) == t->dtype &&
               scalar_safetensors_ndim(st, index) == t->ndim &&
               memcmp(shape, t->shape, (size_t)t->ndim * sizeof shape[0]) == 0 &&
               nbytes == tensor_nbytes(t) && memcmp(data, t->data[0], nbytes) == 0;
    if (!same)
        printf("  %s: read back differs from what was written\n", t->name);
    return same;
}

static int file_meta_matches(const scalar_safetensors *st, const meta_entry *meta)
{
    int same = scalar_safetensors_metadata_count(st) == N_META;
    for (int i = 0; i < N_META; i++) {
        const char *v = scalar_safetensors_metadata_get(st, meta[i].key);
        if (!v || strcmp(v, meta[i].value) != 0) {
            printf("  __metadata__ %s: read back differs\n", meta[i].key);
            same = 0;
        }
    }
    return same;
}

/* Writes, reads back, compares; returns 1 pass, 0 mismatch, -1 error. */
static int file_round_trip(const char *path, int kept, const tensor *ts, scalar_ctx *ctx)
{
    meta_entry meta[N_META];
    scalar_safetensors *st;
    size_t bytes = 0;
    meta_fill(meta, ctx);
    if (file_write(path, ts, meta, ctx) != SCALAR_OK ||
        scalar_safetensors_open(&st, ctx, path) != SCALAR_OK) {
        cli_fail("selftest");
        return -1;
    }
    int same = scalar_safetensors_count(st) == N_TENSORS && file_meta_matches(st, meta);
    for (int i = 0; i < N_TENSORS; i++) {
        same &= file_tensor_matches(st, &ts[i]);
        bytes += tensor_nbytes(&ts[i]);
    }
    scalar_safetensors_free(st);
    printf("%-18s %-18s %10s %10s  %-18s %s\n", "safetensors", "write+read", "-", "-",
           "bit-identical", same ? "pass" : "FAIL");
    printf("\nfile: %s (%d tensors, %zu data bytes, %d metadata keys; %s)\n", path, N_TENSORS,
           bytes, N_META, kept ? "kept" : "temporary, removed");
    return same;
}

/* ---- command ---------------------------------------------------------- */

typedef struct selftest_paths {
    char dir[4000];  /* temp folder, empty when --keep */
    char file[4096]; /* room for dir + "/selftest.safetensors" */
} selftest_paths;

static int paths_make(selftest_paths *p, const char *keep)
{
    p->dir[0] = '\0';
    if (keep) {
        if (strlen(keep) >= sizeof p->file) {
            fprintf(stderr, "scalar: selftest: --keep path too long\n");
            return CLI_FAIL;
        }
        snprintf(p->file, sizeof p->file, "%s", keep);
        return CLI_OK;
    }
    const char *tmp = getenv("TMPDIR");
    int len = snprintf(p->dir, sizeof p->dir, "%s/scalar-selftest-XXXXXX",
                       tmp && *tmp ? tmp : "/tmp");
    if (len < 0 || (size_t)len >= sizeof p->dir || !mkdtemp(p->dir)) {
        perror("scalar: selftest: cannot make a temporary folder");
        p->dir[0] = '\0';
        return CLI_FAIL;
    }
    snprintf(p->file, sizeof p->file, "%s/selftest.safetensors", p->dir);
    return CLI_OK;
}

static void paths_remove(const selftest_paths *p)
{
    if (p->dir[0]) {
        unlink(p->file);
        rmdir(p->dir);
    }
}

/* The comparisons and the file; returns the number of failed checks, or -1. */
static int run_checks(scalar_ctx *ctx, scalar_ctx *ref_ctx, tensor *ts,
                      const selftest_paths *paths)
{
    int failed = 0;
    printf("selftest: backend %s against cpu-ref, %" PRId32 " threads, seed 0x%" PRIx64 "\n\n",
           scalar_ctx_backend_name(ctx), scalar_ctx_n_threads(ctx), scalar_ctx_seed(ctx));
    printf("%-18s %-18s %10s %10s  %-18s %s\n", "check", "shape", "max abs", "rel norm",
           "tolerance", "result");
    for (size_t i = 0; i < N_OPS; i++)
        failed += !op_check(&ops[i], ts, scalar_ctx_backend(ctx), scalar_ctx_backend(ref_ctx));
    int file = file_round_trip(paths->file, paths->dir[0] == '\0', ts, ctx);
    if (file < 0)
        return -1;
    return failed + !file;
}

static int selftest_run(const cli_global *global, int argc, char **argv)
{
    const char *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
            keep = argv[++i];
        else if (strncmp(argv[i], "--keep=", 7) == 0 && argv[i][7])
            keep = argv[i] + 7;
        else
            return cli_usage_error(&cli_cmd_selftest, "unexpected argument '%s'", argv[i]);
    }
    cli_global ref_global = *global;
    ref_global.backend = "cpu-ref";
    scalar_ctx *ctx = NULL, *ref_ctx = NULL;
    tensor ts[N_TENSORS] = {{0}};
    selftest_paths paths;
    int rc = cli_ctx_create(&ctx, global, "selftest");
    if (rc == CLI_OK)
        rc = cli_ctx_create(&ref_ctx, &ref_global, "selftest");
    if (rc == CLI_OK)
        rc = tensors_make(ts, scalar_ctx_seed(ctx));
    if (rc == CLI_OK)
        rc = paths_make(&paths, keep);
    if (rc == CLI_OK) {
        int failed = run_checks(ctx, ref_ctx, ts, &paths);
        if (failed == 0)
            printf("selftest: all %zu checks passed\n", N_OPS + 1);
        else if (failed > 0)
            printf("selftest: %d of %zu checks FAILED\n", failed, N_OPS + 1);
        rc = failed == 0 ? CLI_OK : CLI_FAIL;
        paths_remove(&paths);
    }
    tensors_free(ts);
    scalar_ctx_free(ref_ctx);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_selftest = {
    .name = "selftest",
    .args = "[--keep FILE]",
    .summary = "run the kernels against cpu-ref and round-trip a safetensors file",
    .help = "Makes random matrices (deterministic from --seed), runs sgemm,\n"
            "gelu_forward, layernorm_forward, softmax_rows and topk_rows on the\n"
            "backend chosen with --backend and on cpu-ref, and prints per kernel the\n"
            "largest absolute difference and the norm-wise relative difference\n"
            "and pass or FAIL against the tolerance shown.  Then writes the inputs and\n"
            "outputs, with __metadata__, to a safetensors file with the atomic writer,\n"
            "reads it back and checks every tensor and value is bit-identical.\n"
            "\noptions:\n"
            "  --keep FILE   write the file to FILE and keep it (default: a file in a\n"
            "                temporary folder under $TMPDIR, removed at the end)\n"
            "\nexit status: 0 every check passed, 1 a mismatch or a failed call, 2 usage\n"
            "error.\n",
    .run = selftest_run,
};
