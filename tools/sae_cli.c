/*
 * sae_cli.c - the SAE set of a placement and variant, its folders, and the
 * metrics report (see sae_cli.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_dir.h"
#include "sae_cli.h"

/* Hook j of the placement's chain of layer `layer` (ff, mlpblock: 2 per layer). */
static void hook(char *buf, int32_t layer, int32_t kind)
{
    scalar_model_hook_name(buf, 64, layer, kind);
}

/* --lambda: one value for every layer, or one per layer. */
static int parse_lambdas(sae_set *set, const char *text, int32_t L, const char *cmd)
{
    const char *p = text;
    int32_t count = 0;
    while (count < SAE_SET_MAX_GROUPS) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !(v >= 0.0) || v > 1e6)
            break;
        set->lambda[count++] = (float)v;
        if (*end == '\0') {
            if (count == 1)
                for (int32_t l = 1; l < L; l++)
                    set->lambda[l] = set->lambda[0];
            if (count == 1 || count == L)
                return CLI_OK;
            break;
        }
        if (*end != ',')
            break;
        p = end + 1;
    }
    fprintf(stderr, "scalar: %s: --lambda %s: one number >= 0, or %d comma-separated (one per "
            "layer)\n", cmd, text, (int)L);
    return CLI_USAGE;
}

int sae_set_plan(sae_set *set, const scalar_model_config *mc, const char *placement,
                 const char *variant, int32_t k, int32_t expansion, const char *lambdas,
                 const char *jmode, const char *cmd)
{
    memset(set, 0, sizeof *set);
    int32_t L = mc->n_layer, n = expansion * mc->n_embd;
    int staircase = strcmp(variant, "staircase") == 0, detach = !strcmp(variant, "staircase-detach");
    int noshare = strcmp(variant, "noshare") == 0, topk = strcmp(variant, "topk") == 0;
    int jsae = strcmp(variant, "jsae") == 0;
    if (!staircase && !detach && !noshare && !topk && !jsae) {
        fprintf(stderr, "scalar: %s: unknown --variant %s (topk, staircase, staircase-detach, "
                "noshare, jsae)\n", cmd, variant);
        return CLI_USAGE;
    }
    if (jsae && strcmp(placement, "ff") != 0 && strcmp(placement, "mlpblock") != 0) {
        fprintf(stderr, "scalar: %s: --variant jsae pairs the ff or mlpblock placement, not "
                "%s\n", cmd, placement);
        return CLI_USAGE;
    }
    if (jsae) {
        if (strcmp(jmode, "sum") != 0 && strcmp(jmode, "mean") != 0) {
            fprintf(stderr, "scalar: %s: --jacobian-mode %s (sum or mean)\n", cmd, jmode);
            return CLI_USAGE;
        }
        if (parse_lambdas(set, lambdas, L, cmd) != CLI_OK)
            return CLI_USAGE;
        set->path = placement[0] == 'f' ? SCALAR_JSAE_FF_LAYER : SCALAR_JSAE_FF_BLOCK;
        set->jacobian_mode = jmode[0] == 's' ? SCALAR_JSAE_SUM : SCALAR_JSAE_MEAN;
    }
    /* chains: the hooks whose SAEs share a dictionary under Staircase */
    int32_t n_chains, chain_len;
    char chain[SAE_SET_MAX_GROUPS][SAE_SET_MAX_MEMBERS][64];
    if (strcmp(placement, "ff") == 0 || strcmp(placement, "mlpblock") == 0) {
        int ff = placement[0] == 'f';
        n_chains = L, chain_len = 2;
        for (int32_t l = 0; l < L; l++) {
            hook(chain[l][0], l, ff ? SCALAR_HOOK_MLP_IN : SCALAR_HOOK_RESID_MID);
            hook(chain[l][1], l, ff ? SCALAR_HOOK_MLP_OUT : SCALAR_HOOK_RESID_POST);
        }
    } else if (strcmp(placement, "block") == 0) {
        n_chains = 1, chain_len = L + 1;
        if (chain_len > SAE_SET_MAX_MEMBERS) {
            fprintf(stderr, "scalar: %s: the block placement supports %d layers at most\n", cmd,
                    SAE_SET_MAX_MEMBERS - 1);
            return CLI_USAGE;
        }
        for (int32_t l = 0; l < L; l++)
            hook(chain[0][l], l, SCALAR_HOOK_RESID_PRE);
        hook(chain[0][L], L - 1, SCALAR_HOOK_RESID_POST);
    } else {
        fprintf(stderr, "scalar: %s: unknown --placement %s (ff, mlpblock, block)\n", cmd,
                placement);
        return CLI_USAGE;
    }
    set->d_in = mc->n_embd;
    set->k = k;
    set->mode = detach ? SCALAR_SAE_GROUP_DETACH : SCALAR_SAE_GROUP_SHARE;
    for (int32_t c = 0; c < n_chains; c++)
        for (int32_t j = 0; j < chain_len; j++) {
            int32_t size = topk || jsae ? n : n * (j + 1);
            if (staircase || detach) {
                int32_t g = c;
                set->n_members[g] = chain_len;
                set->sizes[g][j] = size;
                memcpy(set->hooks[g][j], chain[c][j], 64);
                set->n_groups = n_chains;
            } else {
                int32_t g = set->n_groups++;
                set->n_members[g] = 1;
                set->sizes[g][0] = size;
                memcpy(set->hooks[g][0], chain[c][j], 64);
            }
        }
    for (int32_t g = 0; g < set->n_groups; g++) {
        snprintf(set->dirs[g], sizeof set->dirs[g], "%s.%d", set->n_members[g] == 1 ? "sae" : "group",
                 (int)g);
        set->n_saes += set->n_members[g];
        set->unit[g] = jsae ? g / 2 : g; /* a JSAE pair is kept as a whole */
    }
    set->n_units = jsae ? set->n_groups / 2 : set->n_groups;
    if (jsae) {
        set->n_pairs = L;
        for (int32_t l = 0; l < L; l++)
            set->pair_in[l] = 2 * l, set->pair_out[l] = 2 * l + 1;
    }
    return CLI_OK;
}

int sae_set_add_pairs(const sae_set *set, scalar_sae_trainer *t, const char *cmd)
{
    for (int32_t p = 0; p < set->n_pairs; p++)
        if (scalar_sae_trainer_add_jacobian(t, set->pair_in[p], set->pair_out[p], set->path, p,
                                            set->lambda[p], set->jacobian_mode) != SCALAR_OK)
            return cli_fail(cmd);
    return CLI_OK;
}

int sae_set_create_groups(sae_set *set, scalar_ctx *ctx, uint64_t seed, const char *cmd)
{
    for (int32_t g = 0; g < set->n_groups; g++) {
        scalar_sae_config base;
        const char *hooks[SAE_SET_MAX_MEMBERS];
        scalar_sae_config_init(&base, sizeof base);
        base.d_in = set->d_in;
        base.k = set->k;
        base.d_sae = set->sizes[g][set->n_members[g] - 1];
        base.seed = seed + (uint64_t)g;
        for (int32_t j = 0; j < set->n_members[g]; j++)
            hooks[j] = set->hooks[g][j];
        if (scalar_sae_group_create(&set->groups[g], ctx, &base, set->n_members[g], set->sizes[g],
                                    hooks, set->mode) != SCALAR_OK)
            return cli_fail(cmd);
    }
    return CLI_OK;
}

int sae_set_load_groups(sae_set *set, scalar_ctx *ctx, const char *dir, const char *cmd)
{
    char path[CLI_PATH_LEN], sub[32];
    for (int32_t g = 0; g < set->n_groups; g++) {
        snprintf(sub, sizeof sub, "group.%d", (int)g);
        if (cli_join(path, dir, sub) || scalar_sae_group_load(&set->groups[g], ctx, path) != SCALAR_OK)
            return cli_fail(cmd);
        if (scalar_sae_group_n_members(set->groups[g]) != set->n_members[g]) {
            fprintf(stderr, "scalar: %s: %s does not match run.json's plan\n", cmd, path);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

scalar_status sae_set_save_group(const sae_set *set, int32_t g, const char *path)
{
    if (set->n_members[g] > 1)
        return scalar_sae_group_save(set->groups[g], path);
    scalar_sae *m = NULL;
    scalar_status st = scalar_sae_group_get_sae(&m, set->groups[g], 0);
    if (st == SCALAR_OK)
        st = scalar_sae_save(m, path);
    scalar_sae_free(m);
    return st;
}

int sae_set_describe(const sae_set *set, cJSON *o)
{
    cJSON *groups = cJSON_AddArrayToObject(o, "groups");
    if (!groups)
        return -1;
    for (int32_t g = 0; g < set->n_groups; g++) {
        cJSON *e = cJSON_CreateObject(), *hooks = cJSON_CreateArray(), *sizes = cJSON_CreateArray();
        if (!e || !hooks || !sizes || !cJSON_AddItemToArray(groups, e)) {
            cJSON_Delete(e), cJSON_Delete(hooks), cJSON_Delete(sizes);
            return -1;
        }
        cJSON_AddStringToObject(e, "dir", set->dirs[g]);
        cJSON_AddStringToObject(e, "kind", set->n_members[g] > 1 ? "group" : "sae");
        cJSON_AddStringToObject(e, "mode", set->mode == SCALAR_SAE_GROUP_DETACH ? "detach"
                                                                                : "share");
        for (int32_t j = 0; j < set->n_members[g]; j++) {
            cJSON_AddItemToArray(hooks, cJSON_CreateString(set->hooks[g][j]));
            cJSON_AddItemToArray(sizes, cJSON_CreateNumber(set->sizes[g][j]));
        }
        cJSON_AddItemToObject(e, "hooks", hooks);
        cJSON_AddItemToObject(e, "sizes", sizes);
    }
    if (set->n_pairs) {
        cJSON *pairs = cJSON_AddArrayToObject(o, "jacobian_pairs");
        for (int32_t p = 0; pairs && p < set->n_pairs; p++) {
            cJSON *e = cJSON_CreateObject();
            if (!e || !cJSON_AddItemToArray(pairs, e)) {
                cJSON_Delete(e);
                return -1;
            }
            cJSON_AddNumberToObject(e, "sae_in", set->pair_in[p]);
            cJSON_AddNumberToObject(e, "sae_out", set->pair_out[p]);
            cJSON_AddNumberToObject(e, "layer", p);
            cJSON_AddNumberToObject(e, "lambda", (double)set->lambda[p]);
            cJSON_AddStringToObject(e, "path", set->path == SCALAR_JSAE_FF_LAYER ? "ff_layer"
                                                                                 : "ff_block");
            cJSON_AddStringToObject(e, "mode", set->jacobian_mode == SCALAR_JSAE_SUM ? "sum"
                                                                                     : "mean");
        }
    }
    return 0;
}

void sae_set_free(sae_set *set)
{
    for (int32_t g = 0; g < set->n_groups; g++)
        scalar_sae_group_free(set->groups[g]);
    memset(set->groups, 0, sizeof set->groups);
}

/* ---- the metrics report ---- */

#define MAX_SAES SAE_LOADED_MAX
typedef sae_loaded loaded;

int sae_load_best(sae_loaded *l, scalar_ctx *ctx, const char *out, const cJSON *run,
                  const char *cmd)
{
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(run, "groups");
    char path[CLI_PATH_LEN];
    int n_groups = cJSON_GetArraySize(groups);
    if (!cJSON_IsArray(groups) || n_groups < 1 || n_groups > SAE_SET_MAX_GROUPS) {
        fprintf(stderr, "scalar: %s: %s/run.json has no \"groups\"\n", cmd, out);
        return CLI_FAIL;
    }
    for (int g = 0; g < n_groups; g++) {
        const cJSON *e = cJSON_GetArrayItem(groups, g);
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(e, "dir");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
        if (!cJSON_IsString(dir) || !cJSON_IsString(kind) || strchr(dir->valuestring, '/') ||
            cli_join(path, out, dir->valuestring)) {
            fprintf(stderr, "scalar: %s: %s/run.json: groups[%d] is malformed\n", cmd, out, g);
            return CLI_FAIL;
        }
        if (strcmp(kind->valuestring, "sae") == 0) {
            if (scalar_sae_load(&l->saes[l->n], ctx, path) != SCALAR_OK)
                return cli_fail(cmd);
            l->group[l->n++] = g;
            continue;
        }
        if (scalar_sae_group_load(&l->groups[g], ctx, path) != SCALAR_OK)
            return cli_fail(cmd);
        for (int32_t j = 0; j < scalar_sae_group_n_members(l->groups[g]); j++) {
            if (l->n >= MAX_SAES || scalar_sae_group_get_sae(&l->saes[l->n], l->groups[g], j))
                return cli_fail(cmd);
            l->group[l->n++] = g;
        }
    }
    return CLI_OK;
}

void sae_loaded_free(sae_loaded *l)
{
    for (int32_t i = 0; i < l->n; i++)
        scalar_sae_free(l->saes[i]);
    for (int g = 0; g < SAE_SET_MAX_GROUPS; g++)
        scalar_sae_group_free(l->groups[g]);
}

static const char *const metric_names[SCALAR_SAE_METRIC_COUNT] = {
    "l0", "fvu", "mse", "dead", "ce_clean", "ce_spliced", "ce_increase", "kl"};

static void add_metric(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *results_json(const loaded *l, const cJSON *run, const double *each,
                           const double *all, int64_t seq, int64_t max_windows)
{
    cJSON *o = cJSON_CreateObject(), *arr;
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "run", cJSON_Duplicate(run, 1));
    cJSON_AddStringToObject(o, "split", "val");
    cJSON_AddNumberToObject(o, "seq", (double)seq);
    cJSON_AddNumberToObject(o, "max_windows", (double)max_windows);
    arr = cJSON_AddArrayToObject(o, "saes");
    for (int32_t i = 0; arr && i < l->n; i++) {
        scalar_sae_config c;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            break;
        }
        scalar_sae_config_init(&c, sizeof c);
        scalar_sae_get_config(l->saes[i], &c);
        cJSON_AddStringToObject(e, "hook", c.hook_name ? c.hook_name : "");
        cJSON_AddNumberToObject(e, "d_sae", c.d_sae);
        cJSON_AddNumberToObject(e, "k", c.k);
        cJSON_AddNumberToObject(e, "group", l->group[i]);
        for (int m = 0; m < SCALAR_SAE_METRIC_COUNT; m++)
            add_metric(e, metric_names[m], each[i * SCALAR_SAE_METRIC_COUNT + m]);
    }
    cJSON *a = cJSON_AddObjectToObject(o, "all_spliced");
    for (int m = SCALAR_SAE_METRIC_CE_CLEAN; a && m < SCALAR_SAE_METRIC_COUNT; m++)
        add_metric(a, metric_names[m], all[m]);
    return o;
}

static void print_table(const loaded *l, const double *each, const double *all)
{
    printf("%-3s %-26s %6s %6s %8s %5s %9s %8s\n", "SAE", "hook", "d_sae", "L0", "FVU", "dead",
           "CE +", "KL");
    for (int32_t i = 0; i < l->n; i++) {
        scalar_sae_config c;
        const double *r = each + i * SCALAR_SAE_METRIC_COUNT;
        scalar_sae_config_init(&c, sizeof c);
        scalar_sae_get_config(l->saes[i], &c);
        printf("%-3d %-26s %6d %6.2f %8.4f %5.0f %9.4f %8.4f\n", (int)i,
               c.hook_name ? c.hook_name : "-", (int)c.d_sae, r[SCALAR_SAE_METRIC_L0],
               r[SCALAR_SAE_METRIC_FVU], r[SCALAR_SAE_METRIC_DEAD],
               r[SCALAR_SAE_METRIC_CE_INCREASE], r[SCALAR_SAE_METRIC_KL]);
    }
    printf("all %d spliced at once: CE +%.4f, KL %.4f (clean CE %.4f nats/token)\n", (int)l->n,
           all[SCALAR_SAE_METRIC_CE_INCREASE], all[SCALAR_SAE_METRIC_KL],
           all[SCALAR_SAE_METRIC_CE_CLEAN]);
}

int sae_metrics_report(scalar_ctx *ctx, const scalar_model *m, const scalar_dataset *ds,
                       const char *out, int64_t seq, int64_t max_windows, const char *cmd)
{
    char path[CLI_PATH_LEN];
    char *text = cli_join(path, out, "run.json") == 0 ? cli_read_file(path) : NULL;
    cJSON *run = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!run) {
        fprintf(stderr, "scalar: %s: cannot read %s/run.json\n", cmd, out);
        return CLI_FAIL;
    }
    loaded l;
    memset(&l, 0, sizeof l);
    double *each = NULL, all[SCALAR_SAE_METRIC_COUNT];
    int rc = sae_load_best(&l, ctx, out, run, cmd);
    if (rc == CLI_OK && !(each = malloc((size_t)l.n * SCALAR_SAE_METRIC_COUNT * sizeof *each))) {
        fprintf(stderr, "scalar: %s: out of memory\n", cmd);
        rc = CLI_FAIL;
    }
    scalar_model_config mc;
    scalar_model_config_init(&mc, sizeof mc);
    scalar_model_get_config(m, &mc);
    /* windows per forward: two [B, seq, vocab] float buffers of <= 64 MiB each */
    int64_t batch = (INT64_C(1) << 24) / (seq * (int64_t)mc.vocab_size);
    batch = batch < 1 ? 1 : batch > 64 ? 64 : batch;
    if (rc == CLI_OK &&
        scalar_sae_metrics(m, ds, SCALAR_SPLIT_VAL, (const scalar_sae *const *)l.saes, l.n, batch,
                           seq, max_windows, each, all) != SCALAR_OK)
        rc = cli_fail(cmd);
    cJSON *res = rc == CLI_OK ? results_json(&l, run, each, all, seq, max_windows) : NULL;
    if (rc == CLI_OK) {
        char *json = res ? cJSON_Print(res) : NULL;
        if (!json || cli_join(path, out, "results.json") || cli_write_atomic(path, json)) {
            fprintf(stderr, "scalar: %s: cannot write %s/results.json\n", cmd, out);
            rc = CLI_FAIL;
        }
        cJSON_free(json);
    }
    if (rc == CLI_OK)
        print_table(&l, each, all);
    cJSON_Delete(res);
    cJSON_Delete(run);
    free(each);
    sae_loaded_free(&l);
    return rc;
}
