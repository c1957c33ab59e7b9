/*
 * sae_cli.h - what the SAE commands (train-sae, sae-metrics) share: the SAE
 * set of a placement and variant (SPEC.md section 2), its folders, and the
 * metrics report.
 */
#ifndef SCALAR_TOOLS_SAE_CLI_H
#define SCALAR_TOOLS_SAE_CLI_H

#include <cjson/cJSON.h>

#include "cli.h"

#define SAE_SET_MAX_GROUPS 64
#define SAE_SET_MAX_MEMBERS 16

/* The groups of one placement and variant: a one-member group is a plain
 * TopK SAE (saved as a SAELens folder "sae.G"), a Staircase group is saved
 * in the group layout ("group.G"). */
typedef struct sae_set {
    int32_t n_groups, n_saes, d_in, k, mode;
    /* JSAE: pair p joins SAE pair_in[p] -> pair_out[p] (SAE = group here) of layer p */
    int32_t n_pairs, path, jacobian_mode;
    int32_t pair_in[SAE_SET_MAX_GROUPS], pair_out[SAE_SET_MAX_GROUPS];
    float lambda[SAE_SET_MAX_GROUPS];
    /* best-validation selection: group g belongs to unit[g] (a group; a JSAE pair) */
    int32_t unit[SAE_SET_MAX_GROUPS], n_units;
    int32_t n_members[SAE_SET_MAX_GROUPS];
    int32_t sizes[SAE_SET_MAX_GROUPS][SAE_SET_MAX_MEMBERS];
    char hooks[SAE_SET_MAX_GROUPS][SAE_SET_MAX_MEMBERS][64];
    char dirs[SAE_SET_MAX_GROUPS][32];
    scalar_sae_group *groups[SAE_SET_MAX_GROUPS];
} sae_set;

/* Plan the groups of `placement` (ff, mlpblock, block) and `variant` (topk,
 * staircase, staircase-detach, noshare, jsae) for a model; prints a usage
 * message and returns CLI_USAGE when a name or combination is unknown.
 * `lambdas` (jsae): one value, or one per layer, comma-separated; `jmode`
 * "sum" or "mean". */
int sae_set_plan(sae_set *set, const scalar_model_config *mc, const char *placement,
                 const char *variant, int32_t k, int32_t expansion, const char *lambdas,
                 const char *jmode, const char *cmd);
/* Add the set's JSAE pairs to a trainer. */
int sae_set_add_pairs(const sae_set *set, scalar_sae_trainer *t, const char *cmd);
/* Fresh groups (SPEC.md's initialisation; group g seeded seed + g). */
int sae_set_create_groups(sae_set *set, scalar_ctx *ctx, uint64_t seed, const char *cmd);
/* Groups from a checkpoint folder's group.G/ (current weights). */
int sae_set_load_groups(sae_set *set, scalar_ctx *ctx, const char *dir, const char *cmd);
/* Save group g's weights to `path` in its kind's layout. */
scalar_status sae_set_save_group(const sae_set *set, int32_t g, const char *path);
/* Add "groups": [{dir, kind, mode, hooks, sizes}] to `o`; -1 on failure. */
int sae_set_describe(const sae_set *set, cJSON *o);
void sae_set_free(sae_set *set);

/* The best SAEs of a run folder, in run.json's order (group members as
 * views; group[i] is the run.json group of SAE i). */
#define SAE_LOADED_MAX (SAE_SET_MAX_GROUPS * SAE_SET_MAX_MEMBERS)
typedef struct sae_loaded {
    int32_t n;
    scalar_sae *saes[SAE_LOADED_MAX];
    int32_t group[SAE_LOADED_MAX];
    scalar_sae_group *groups[SAE_SET_MAX_GROUPS];
} sae_loaded;
/* Load them (l zeroed first by the caller); prints the error. */
int sae_load_best(sae_loaded *l, scalar_ctx *ctx, const char *out, const cJSON *run,
                  const char *cmd);
void sae_loaded_free(sae_loaded *l);

/* Metrics of the best SAEs of run folder `out` (its run.json names the
 * groups) on the validation split: each SAE spliced alone and all at once.
 * Writes out/results.json and prints the table to stdout. */
int sae_metrics_report(scalar_ctx *ctx, const scalar_model *m, const scalar_dataset *ds,
                       const char *out, int64_t seq, int64_t max_windows, const char *cmd);

#endif
