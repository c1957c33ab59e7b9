/*
 * model_cli.h - what the model commands (train-model, eval-model, generate)
 * share: corpus loading, validation loss, number parsing, progress lines.
 */
#ifndef SCALAR_TOOLS_MODEL_CLI_H
#define SCALAR_TOOLS_MODEL_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "cli.h"

/* Load `path` (text, .npy or .bin ids), or without a path the default corpus
 * (Debian's fortunes, sorted).  Prints the error; returns CLI_OK or CLI_FAIL. */
int cli_corpus_load(scalar_dataset **out, scalar_ctx *ctx, const char *path, const char *cmd);

/* Mean cross-entropy (nats per token) over the split in non-overlapping
 * windows of T tokens (window j predicts tokens jT+1 .. jT+T), B windows per
 * forward; max_windows > 0 caps the count.  Uses `ws` (max B x T). */
scalar_status cli_eval_loss(const scalar_model *m, scalar_model_workspace *ws,
                            const scalar_dataset *ds, int32_t split, int64_t B, int64_t T,
                            int64_t max_windows, double *out_loss);

/* Strict parsing; 0 on success. */
int cli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);
int cli_parse_f32(const char *s, float lo, float hi, float *out);

/* 1 if stderr is a terminal (progress lines are drawn only then). */
int cli_progress_enabled(void);

/* "1h02m", "3m05s", "12s" */
void cli_format_duration(char *buf, size_t size, double seconds);

double cli_now(void);

/* mkdir -p: create `path` and any missing parents; 0, or -1 with errno set
 * (ENOTDIR when a component exists and is not a folder). */
int cli_make_dirs(const char *path);

/* Option parsing inside a `for (i ...)` loop over argv, with `o` the option,
 * `v` its value (non-NULL), `a` the args struct and `cmd` the command: each
 * macro consumes the value and continues the loop when `o` matches, or returns
 * a usage error for a bad number. */
#define CLI_STR_OPT(cmd, name, field)                                                              \
    if (strcmp(o, name) == 0) {                                                                    \
        a->field = v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
#define CLI_INT_OPT(cmd, name, field, lo, hi)                                                      \
    if (strcmp(o, name) == 0) {                                                                    \
        if (cli_parse_i64(v, lo, hi, &a->field))                                                   \
            return cli_usage_error(cmd, "bad value for %s: %s", o, v);                             \
        i++;                                                                                       \
        continue;                                                                                  \
    }
#define CLI_F_OPT(cmd, name, field)                                                                \
    if (strcmp(o, name) == 0) {                                                                    \
        if (cli_parse_f32(v, 0.0f, 10.0f, &a->field))                                              \
            return cli_usage_error(cmd, "bad value for %s: %s", o, v);                             \
        i++;                                                                                       \
        continue;                                                                                  \
    }

#endif
