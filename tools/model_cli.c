/*
 * model_cli.c - helpers of the model commands (see model_cli.h).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus.h"
#include "model_cli.h"

int cli_corpus_load(scalar_dataset **out, scalar_ctx *ctx, const char *path, const char *cmd)
{
    scalar_status st;
    *out = NULL;
    if (path) {
        st = scalar_dataset_load(out, ctx, path, NULL);
    } else {
        char **paths = NULL;
        size_t n = 0;
        if (cli_default_corpus_paths(cmd, &paths, &n) != CLI_OK)
            return CLI_FAIL;
        st = scalar_dataset_load_files(out, ctx, (const char *const *)paths, n, NULL);
        cli_corpus_paths_free(paths, n);
    }
    return st == SCALAR_OK ? CLI_OK : cli_fail(cmd);
}

scalar_status cli_eval_loss(const scalar_model *m, scalar_model_workspace *ws,
                            const scalar_dataset *ds, int32_t split, int64_t B, int64_t T,
                            int64_t max_windows, double *out_loss)
{
    int64_t n_tok = 0;
    scalar_status st = scalar_dataset_n_tokens(ds, split, &n_tok);
    if (st != SCALAR_OK)
        return st;
    int64_t n_win = n_tok > 0 ? (n_tok - 1) / T : 0;
    if (max_windows > 0 && n_win > max_windows)
        n_win = max_windows;
    if (n_win < 1)
        return scalar_last_error_set(SCALAR_E_SHAPE, "the split is shorter than one window");
    int32_t *buf = malloc((size_t)(T + 1) * sizeof *buf);
    int32_t *x = malloc((size_t)(B * T) * sizeof *x), *y = malloc((size_t)(B * T) * sizeof *y);
    if (!buf || !x || !y) {
        free(buf), free(x), free(y);
        return scalar_last_error_set(SCALAR_E_NOMEM, "out of memory");
    }
    double total = 0.0;
    for (int64_t w0 = 0; w0 < n_win && st == SCALAR_OK; w0 += B) {
        int64_t b = n_win - w0 < B ? n_win - w0 : B;
        for (int64_t i = 0; i < b && st == SCALAR_OK; i++) {
            st = scalar_dataset_tokens(ds, split, (w0 + i) * T, T + 1, buf);
            memcpy(x + i * T, buf, (size_t)T * sizeof *x);
            memcpy(y + i * T, buf + 1, (size_t)T * sizeof *y);
        }
        float loss = 0.0f;
        if (st == SCALAR_OK)
            st = scalar_model_forward(m, ws, x, y, b, T, NULL, &loss);
        total += (double)loss * (double)(b * T);
    }
    free(buf), free(x), free(y);
    if (st == SCALAR_OK)
        *out_loss = total / (double)(n_win * T);
    return st;
}

int cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_f32(const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int cli_progress_enabled(void)
{
    return isatty(2);
}

void cli_format_duration(char *buf, size_t size, double s)
{
    long t = s > 0 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && !(errno == EEXIST && stat(buf, &st) == 0 &&
                                       S_ISDIR(st.st_mode))) {
            if (errno == EEXIST)
                errno = ENOTDIR;
            return -1;
        }
        buf[i] = c;
    }
    return 0;
}
