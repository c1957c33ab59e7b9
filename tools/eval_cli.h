/*
 * eval_cli.h - what the SCALAR commands (eval, paper) share: the pairs of a
 * train-sae run folder along a path, their evaluation on the validation
 * split (SPEC.md section 3's data), and the result files.
 */
#ifndef SCALAR_TOOLS_EVAL_CLI_H
#define SCALAR_TOOLS_EVAL_CLI_H

#include <cjson/cJSON.h>

#include "cli.h"

#define EVAL_MAX_LAYERS 64

typedef struct eval_opts {
    int32_t path;                /* SCALAR_PATH_* */
    uint32_t quirks;             /* 0 clean, SCALAR_QUIRKS_PARITY parity */
    int32_t attribution, steps, bootstrap, batch;
    uint64_t seed;
    int64_t seq, attr_seqs, eval_seqs; /* SPEC: 128, 576 (24 x 24), 50 */
    int32_t n_layers;            /* 0: every layer */
    int32_t layers[EVAL_MAX_LAYERS];
} eval_opts;

/* The SCALAR numbers of one pair. */
typedef struct eval_layer {
    int32_t layer, F_U, F_D;
    char hook_u[64], hook_d[64];
    double scores[SCALAR_SCORE_COUNT];
    int64_t n_points, *edges;    /* [n_points] */
    double *mean[2], *lo[2], *hi[2]; /* per curve (SCALAR_CURVE_*) */
    double seconds_attr, seconds_curve;
} eval_layer;

typedef struct eval_result {
    int32_t n;
    eval_layer layer[EVAL_MAX_LAYERS];
} eval_result;

/* Defaults: SPEC.md's data and settings, clean mode, the path of `placement`
 * (ff, mlpblock, block; NULL leaves path at -1). */
void eval_opts_init(eval_opts *o);
/* "ff", "mlpblock", "block" -> SCALAR_PATH_*; -1 if unknown. */
int32_t eval_path_parse(const char *s);
const char *eval_path_name(int32_t path);
/* "clean", "parity" or "custom" for a quirk set. */
const char *eval_mode_name(uint32_t quirks);

/* Evaluate every pair of run folder `dir` along o->path; prints progress on a
 * terminal.  Returns CLI_OK or CLI_FAIL (message printed). */
int eval_run_folder(scalar_ctx *ctx, scalar_model *m, const scalar_dataset *ds, const char *dir,
                    const eval_opts *o, eval_result *r, const char *cmd);
void eval_result_free(eval_result *r);

/* results.json object of one run folder's evaluation. */
cJSON *eval_result_json(const eval_result *r, const eval_opts *o, const char *dir);
/* out/results.json, out/scalar.csv, out/curves.csv, out/curves.svg. */
int eval_write_outputs(const char *out, const eval_result *r, const eval_opts *o,
                       const char *dir, const char *label, const char *cmd);
/* The per-layer table on stdout. */
void eval_print_table(const eval_result *r, const eval_opts *o, const char *label);

#endif
