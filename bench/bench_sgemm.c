/*
 * bench_sgemm.c - GEMM through the "cpu" backend against the same GEMM
 * through BLIS directly and through "cpu-ref", all measured in this run.
 *
 * For every shape C[m, n] = A[m, k] B[k, n] and thread count T:
 *   backend  scalar_backend_sgemm on a context with backend "cpu", T threads
 *   direct   the backend's BLIS call (lib/backend/cpu/cpu.c) made directly:
 *            same context (with libscalar's microkernel where BLIS runs
 *            "generic"), same packed path, no vtable
 *   BLIS     bli_sgemm_ex with BLIS's default context, T threads
 *   BLISsup  the same on BLIS's small-matrix path
 *   cpu-ref  scalar_backend_sgemm on "cpu-ref" (one thread, double sums),
 *            timed on the first rows of A only: it is ~100x slower, and its
 *            speed per row does not depend on m
 * backend and direct run in alternating batches of ~50 ms (so drift hits
 * both alike) and report the best batch; the target is backend/direct >= 0.95
 * (the vtable adds no cost).
 * Exit status: 0 unless something fails; a missed ratio is printed loudly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wtype-limits"
#include <blis.h>
#pragma GCC diagnostic pop

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#include "bench_peak.h"

#include "backend/cpu/cpu.h" /* scalar__cpu_blis_sgemm: the backend's call, for "direct" */

#define TARGET_RATIO 0.95
#define BATCH_SECONDS 0.05 /* one timed batch of calls */
#define ROUNDS 7           /* batches per method: ~0.35 s each */
#define REF_SECONDS 0.1    /* one cpu-ref call on the row slice */

typedef struct shape {
    int64_t m, k, n;
} shape;

static const shape shapes[] = {
    {4096, 64, 256}, {4096, 256, 64}, {4096, 64, 512}, {1024, 768, 3072},
};

typedef struct problem {
    int64_t m, k, n, lda, ldb, ldc;
    float *a, *b, *c;
} problem;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what, scalar_status st)
{
    fprintf(stderr, "bench_sgemm: %s: %s (%s)\n", what, scalar_status_string(st),
            scalar_last_error());
    return 1;
}

/* Row strides: a width that is a multiple of 1024 gets +16 (DESIGN.md). */
static int64_t padded(int64_t width)
{
    return width % 1024 == 0 ? width + 16 : width;
}

static int problem_init(problem *p, const shape *s)
{
    p->m = s->m, p->k = s->k, p->n = s->n;
    p->lda = padded(s->k), p->ldb = padded(s->n), p->ldc = padded(s->n);
    p->a = malloc((size_t)(p->m * p->lda) * sizeof(float));
    p->b = malloc((size_t)(p->k * p->ldb) * sizeof(float));
    p->c = malloc((size_t)(p->m * p->ldc) * sizeof(float));
    if (!p->a || !p->b || !p->c)
        return 1;
    unsigned x = 12345u;
    for (int64_t i = 0; i < p->m * p->lda; i++)
        p->a[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (int64_t i = 0; i < p->k * p->ldb; i++)
        p->b[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    memset(p->c, 0, (size_t)(p->m * p->ldc) * sizeof(float));
    return 0;
}

static void problem_free(problem *p)
{
    free(p->a);
    free(p->b);
    free(p->c);
}

/* One GEMM of the first `rows` rows through the backend. */
static scalar_status backend_gemm(scalar_backend *be, const problem *p, int64_t rows)
{
    return scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, rows, p->n, p->k, 1.0f, p->a,
                                p->lda, p->b, p->ldb, 0.0f, p->c, p->ldc);
}

/* Direct BLIS.  sup == 2: the very call the cpu backend makes (its BLIS
 * context, which holds libscalar's microkernel where BLIS runs "generic";
 * be/direct isolates the cost of the vtable); sup == 0: BLIS's default
 * context on the packed path; sup == 1: BLIS's default small-matrix path,
 * which the backend avoids for its out-of-bounds reads (cpu.c). */
static void blis_gemm(int32_t n_threads, const problem *p, int sup)
{
    if (sup == 2) {
        scalar__cpu_blis_sgemm(n_threads, SCALAR_NO_TRANS, SCALAR_NO_TRANS, p->m, p->n, p->k,
                               1.0f, p->a, p->lda, p->b, p->ldb, 0.0f, p->c, p->ldc);
        return;
    }
    rntm_t rntm;
    float alpha = 1.0f, beta = 0.0f;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(n_threads, &rntm);
    if (!sup)
        bli_rntm_disable_l3_sup(&rntm);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, p->m, p->n, p->k, &alpha, p->a, p->lda, 1,
                 p->b, p->ldb, 1, &beta, p->c, p->ldc, 1, NULL, &rntm);
}

/* Seconds per call of one batch of `reps` calls (be == NULL: direct BLIS). */
static double time_batch(scalar_backend *be, int32_t n_threads, const problem *p, int reps,
                         scalar_status *st)
{
    double t0 = now();
    for (int r = 0; r < reps && *st == SCALAR_OK; r++) {
        if (be)
            *st = backend_gemm(be, p, p->m);
        else
            blis_gemm(n_threads, p, 2);
    }
    return (now() - t0) / reps;
}

/* Best seconds per call of backend and of BLIS, in alternating batches. */
static scalar_status time_pair(scalar_backend *be, int32_t n_threads, const problem *p,
                               double *best_be, double *best_blis)
{
    scalar_status st = SCALAR_OK;
    double probe = time_batch(be, n_threads, p, 1, &st); /* also warms up */
    time_batch(NULL, n_threads, p, 1, &st);
    int reps = (int)(BATCH_SECONDS / (probe > 1e-6 ? probe : 1e-6)) + 1;
    *best_be = *best_blis = 1e30;
    for (int round = 0; round < ROUNDS && st == SCALAR_OK; round++) {
        double t_be = time_batch(be, n_threads, p, reps, &st);
        double t_blis = time_batch(NULL, n_threads, p, reps, &st);
        *best_be = t_be < *best_be ? t_be : *best_be;
        *best_blis = t_blis < *best_blis ? t_blis : *best_blis;
    }
    return st;
}

/* Best seconds per call of direct BLIS with its default context, on the
 * packed (sup 0) or small-matrix (sup 1) path. */
static double time_blis_default(int32_t n_threads, const problem *p, int reps, int sup)
{
    double best = 1e30;
    for (int round = 0; round < ROUNDS; round++) {
        double t0 = now();
        for (int r = 0; r < reps; r++)
            blis_gemm(n_threads, p, sup);
        double t = (now() - t0) / reps;
        best = t < best ? t : best;
    }
    return best;
}

/* cpu-ref GFLOP/s on a row slice sized to take ~REF_SECONDS, best of 3. */
static scalar_status time_ref(scalar_backend *ref, const problem *p, double *gflops)
{
    int64_t rows = p->m < 4 ? p->m : 4;
    double t0 = now();
    scalar_status st = backend_gemm(ref, p, rows);
    double per_row = (now() - t0) / (double)rows;
    rows = (int64_t)(REF_SECONDS / per_row) + 1;
    rows = rows < p->m ? rows : p->m;
    double best = 1e30;
    for (int r = 0; r < 3 && st == SCALAR_OK; r++) {
        t0 = now();
        st = backend_gemm(ref, p, rows);
        double t = now() - t0;
        best = t < best ? t : best;
    }
    *gflops = 2.0 * (double)rows * (double)p->n * (double)p->k / best * 1e-9;
    return st;
}


/* Other processes on these 2 cores skew the 2-thread numbers most: say so. */
static void print_load(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    char line[128];
    if (f && fgets(line, sizeof line, f))
        printf("load average before the run (1, 5, 15 min): %.*s\n", 14, line);
    if (f)
        fclose(f);
}

static scalar_ctx *make_ctx(const char *backend, int32_t n_threads)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    scalar_ctx_options_init(&o, sizeof o);
    o.backend = backend;
    o.n_threads = n_threads;
    return scalar_ctx_create(&ctx, &o) == SCALAR_OK ? ctx : NULL;
}

/* Benchmark one shape for 1 and 2 threads; count ratios below target. */
static int bench_shape(const shape *s, scalar_ctx *const ctx[2], scalar_backend *ref,
                       const double peak[2], int *misses)
{
    problem p;
    if (problem_init(&p, s))
        return fail("out of memory", SCALAR_E_NOMEM);
    double ref_gflops = 0.0;
    scalar_status st = time_ref(ref, &p, &ref_gflops);
    for (int32_t t = 1; t <= 2 && st == SCALAR_OK; t++) {
        double t_be, t_blis;
        st = time_pair(scalar_ctx_backend(ctx[t - 1]), t, &p, &t_be, &t_blis);
        double flop = 2.0 * (double)p.m * (double)p.n * (double)p.k;
        double g_be = flop / t_be * 1e-9, g_blis = flop / t_blis * 1e-9, ratio = g_be / g_blis;
        int reps = (int)(BATCH_SECONDS / (t_blis > 1e-6 ? t_blis : 1e-6)) + 1;
        double g_def = flop / time_blis_default(t, &p, reps, 0) * 1e-9;
        double g_sup = flop / time_blis_default(t, &p, reps, 1) * 1e-9;
        char label[64];
        snprintf(label, sizeof label, "%lldx%lldx%lld", (long long)p.m, (long long)p.k,
                 (long long)p.n);
        printf("%-18s %3d %8.1f %8.1f %8.1f %8.1f %8.2f %8.3f %8.2f %8.1f %6.0f%%%s\n", label,
               (int)t, g_be, g_blis, g_def, g_sup, ref_gflops, ratio, g_be / g_def,
               g_be / ref_gflops,
               100.0 * g_be / peak[t - 1],
               ratio < TARGET_RATIO ? "   <-- BELOW 0.95" : "");
        *misses += ratio < TARGET_RATIO;
    }
    problem_free(&p);
    return st == SCALAR_OK ? 0 : fail("scalar_backend_sgemm", st);
}

int main(void)
{
    scalar_ctx *ctx[2] = {make_ctx("cpu", 1), make_ctx("cpu", 2)};
    scalar_ctx *ref_ctx = make_ctx("cpu-ref", 1);
    if (!ctx[0] || !ctx[1] || !ref_ctx)
        return fail("scalar_ctx_create", SCALAR_E_BACKEND);
    double t0 = now();
    printf("sgemm C[m,n] = A[m,k] B[k,n], row-major, beta = 0; GFLOP/s, best of %d batches\n",
           ROUNDS);
    printf("backend: %s\n", scalar_backend_describe(scalar_ctx_backend(ctx[1])));
    print_load();
    double peak[2] = {measure_peak(1), measure_peak(2)};
    printf("%%peak: of this machine's measured fp32 FMA peak (%s), %.1f GFLOP/s on 1 thread, "
           "%.1f on 2; cpu-ref: 1 thread, timed on a row slice\n", peak_isa(), peak[0], peak[1]);
    printf("direct: the backend's own BLIS call without the vtable (same context and path); "
           "BLIS: bli_sgemm_ex with BLIS's default context, packed path; BLISsup: the same on "
           "BLIS's small-matrix path (not used: out-of-bounds reads in 0.9.0)\n");
    printf("%-18s %3s %8s %8s %8s %8s %8s %8s %8s %8s %7s\n", "m x k x n", "thr", "backend",
           "direct", "BLIS", "BLISsup", "cpu-ref", "be/dir", "be/BLIS", "be/ref", "%peak");
    int misses = 0, rc = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0] && rc == 0; i++)
        rc = bench_shape(&shapes[i], ctx, scalar_ctx_backend(ref_ctx), peak, &misses);
    if (rc == 0) {
        if (misses == 0)
            printf("every backend/direct ratio >= %.2f: yes (%.1f s)\n", TARGET_RATIO,
                   now() - t0);
        else
            printf("every backend/direct ratio >= %.2f: NO, %d below (%.1f s)\n", TARGET_RATIO,
                   misses, now() - t0);
    }
    scalar_ctx_free(ctx[0]);
    scalar_ctx_free(ctx[1]);
    scalar_ctx_free(ref_ctx);
    return rc;
}
