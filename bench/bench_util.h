/*
 * bench_util.h - helpers shared by the benches that compare libscalar with a
 * PyTorch baseline measured in the same run (bench_model.c, bench_sae.c):
 * the clock, environment knobs, median and best of step times, the machine
 * line, a context, an sgemm rate through scalar_backend_sgemm, and the
 * plumbing of a bench/<script>.py run as a subprocess whose last JSON line is
 * its result.
 *
 * Header-only, static functions (like bench_peak.h); a bench that does not
 * use one gets no warning.  Define BENCH_NAME (the program's name, for
 * messages) before including it.
 */
#ifndef SCALAR_BENCH_UTIL_H
#define SCALAR_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "scalar/scalar.h"
#include "scalar/sys/backend.h"

#ifndef BENCH_NAME
#error "define BENCH_NAME before including bench_util.h"
#endif

#define BENCH_UTIL_FN static __attribute__((unused))

BENCH_UTIL_FN double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

BENCH_UTIL_FN int fail(const char *what, scalar_status st)
{
    fprintf(stderr, BENCH_NAME ": %s: %s (%s)\n", what, scalar_status_string(st),
            scalar_last_error());
    return 1;
}

/* The integer in environment variable name, fallback when unset or empty
 * (and, with a message, when not an integer in lo..hi). */
BENCH_UTIL_FN int env_int(const char *name, int fallback, int lo, int hi)
{
    const char *s = getenv(name);
    char *end;
    long v = s && *s ? strtol(s, &end, 10) : fallback;
    if (s && *s && (*end || v < lo || v > hi)) {
        fprintf(stderr, BENCH_NAME ": %s=%s ignored (want %d..%d)\n", name, s, lo, hi);
        v = fallback;
    }
    return (int)v;
}

BENCH_UTIL_FN int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and minimum of n step times (sorts them). */
BENCH_UTIL_FN void median_best(double *t, int n, double *median, double *best)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    *best = t[0];
}

/* "machine: <CPU>, <n> online CPUs" and the load average before the run. */
BENCH_UTIL_FN void print_machine(void)
{
    char line[256], model[256] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *c = strchr(line, ':');
            snprintf(model, sizeof model, "%s", c ? c + 2 : line);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    if (f)
        fclose(f);
    printf("machine: %s, %ld online CPUs\n", model, sysconf(_SC_NPROCESSORS_ONLN));
    f = fopen("/proc/loadavg", "r");
    if (f && fgets(line, sizeof line, f))
        printf("load average before the run (1, 5, 15 min): %.*s\n", 14, line);
    if (f)
        fclose(f);
}

/* A context on backend with n_threads workers, or NULL. */
BENCH_UTIL_FN scalar_ctx *make_ctx(const char *backend, int32_t n_threads)
{
    scalar_ctx_options o;
    scalar_ctx *ctx = NULL;
    scalar_ctx_options_init(&o, sizeof o);
    o.backend = backend;
    o.n_threads = n_threads;
    return scalar_ctx_create(&ctx, &o) == SCALAR_OK ? ctx : NULL;
}

/* GFLOP/s of C[m,n] = A[m,k] B[k,n] through scalar_backend_sgemm: one untimed
 * call, then the best of `rounds` batches of ~batch_seconds each (a batch is
 * at least one call).  A and B uniform in [-0.5, 0.5). */
BENCH_UTIL_FN scalar_status measure_sgemm(scalar_backend *be, int64_t m, int64_t k, int64_t n,
                                          int rounds, double batch_seconds, double *gflops)
{
    float *a = malloc((size_t)(m * k) * sizeof(float)), *b = malloc((size_t)(k * n) * sizeof(float));
    float *c = malloc((size_t)(m * n) * sizeof(float));
    scalar_status st = a && b && c ? SCALAR_OK : SCALAR_E_NOMEM;
    unsigned x = 12345u;
    for (int64_t i = 0; a && i < m * k; i++)
        a[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    for (int64_t i = 0; b && i < k * n; i++)
        b[i] = (float)((x = x * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
    double t0 = now();
    if (st == SCALAR_OK)
        st = scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, m, n, k, 1.0f, a, k, b, n,
                                  0.0f, c, n);
    double probe = now() - t0;
    int reps = (int)(batch_seconds / (probe > 1e-6 ? probe : 1e-6)) + 1;
    double best = 1e30;
    for (int round = 0; round < rounds && st == SCALAR_OK; round++) {
        t0 = now();
        for (int r = 0; r < reps && st == SCALAR_OK; r++)
            st = scalar_backend_sgemm(be, SCALAR_NO_TRANS, SCALAR_NO_TRANS, m, n, k, 1.0f, a, k, b,
                                      n, 0.0f, c, n);
        double t = (now() - t0) / reps;
        best = t < best ? t : best;
    }
    *gflops = 2.0 * (double)m * (double)n * (double)k / best * 1e-9;
    free(a);
    free(b);
    free(c);
    return st;
}

/* ===================================================================== */
/*  A PyTorch baseline in a subprocess                                    */
/* ===================================================================== */

/* bench/<name> beside this source tree: ./bench (make bench runs from the
 * root), else relative to the binary (build/<config>/bench/). */
BENCH_UTIL_FN int find_script(const char *name, char *path, size_t size)
{
    snprintf(path, size, "bench/%s", name);
    if (access(path, R_OK) == 0)
        return 0;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    snprintf(path, size, "%s/../../../bench/%s", exe, name);
    return access(path, R_OK) == 0 ? 0 : -1;
}

/* Append s to the command in single quotes (sh). */
BENCH_UTIL_FN void append_quoted(char *cmd, size_t size, const char *s)
{
    size_t n = strlen(cmd);
    if (n + 1 < size)
        cmd[n++] = '\'';
    for (; *s && n + 5 < size; s++) {
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    if (n + 1 < size)
        cmd[n++] = '\'';
    cmd[n] = 0;
}

/* The string root[key], or "?". */
BENCH_UTIL_FN void copy_string(char *dst, size_t size, const cJSON *root, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    snprintf(dst, size, "%s", cJSON_IsString(v) ? v->valuestring : "?");
}

/* The script's last line of output, for a message. */
BENCH_UTIL_FN void last_line(char *dst, size_t size, const char *output)
{
    size_t n = strlen(output);
    while (n && output[n - 1] == '\n')
        n--;
    size_t start = n;
    while (start && output[start - 1] != '\n')
        start--;
    snprintf(dst, size, "%.*s", (int)(n - start), output + start);
}

/* The last line of output that starts with '{', parsed (NULL if none parses). */
BENCH_UTIL_FN cJSON *parse_last_json(const char *output)
{
    const char *line = NULL;
    for (const char *p = output; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (*p == '{')
            line = p;
    return line ? cJSON_Parse(line) : NULL;
}

/* Run `python bench/<script> <args> 2>&1` with OMP_NUM_THREADS and
 * BLIS_NUM_THREADS set to n_threads; python is $SCALAR_BENCH_PYTHON, else
 * /usr/bin/python3, else python3 on the PATH.  Returns its output (malloc'd,
 * the tail when long: the JSON line comes last) and its exit status in
 * *status; or NULL with why (size why_size) saying what went wrong. */
BENCH_UTIL_FN char *run_script(const char *script_name, int n_threads, const char *args,
                               int *status, char *why, size_t why_size)
{
    char script[4200];
    if (find_script(script_name, script, sizeof script)) {
        snprintf(why, why_size, "bench/%s not found", script_name);
        return NULL;
    }
    const char *python = getenv("SCALAR_BENCH_PYTHON");
    if (!python || !*python)
        python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=%d BLIS_NUM_THREADS=%d ", n_threads, n_threads);
    append_quoted(cmd, sizeof cmd, python);
    strcat(cmd, " ");
    append_quoted(cmd, sizeof cmd, script);
    snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " %s 2>&1", args);
    fflush(stdout);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(why, why_size, "could not start %s", python);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0, got;
    char *output = malloc(cap);
    while (output && (got = fread(output + len, 1, cap - 1 - len, p)) > 0) {
        len += got;
        if (len == cap - 1) { /* keep the tail: the JSON line comes last */
            memmove(output, output + cap / 2, len - cap / 2);
            len -= cap / 2;
        }
    }
    int st = pclose(p);
    *status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (!output) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    output[len] = 0;
    if (*status == 127) {
        snprintf(why, why_size, "%s not found (set SCALAR_BENCH_PYTHON)", python);
        free(output);
        return NULL;
    }
    return output;
}

#endif /* SCALAR_BENCH_UTIL_H */
