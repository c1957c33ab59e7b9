/*
 * eval_cli.c - the SCALAR evaluation of a train-sae run folder (eval_cli.h):
 * per layer, the pair along the path, its attribution on the first
 * attr_seqs windows of the validation split and its curve on the first
 * eval_seqs; results.json, scalar.csv, curves.csv and curves.svg.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_cli.h"
#include "model_cli.h"
#include "run_dir.h"
#include "sae_cli.h"
#include "strbuf.h"
#include "svg_plot.h"

static const char *const path_names[SCALAR_PATH_COUNT] = {"ff", "mlpblock", "block"};
static const char *const path_titles[SCALAR_PATH_COUNT] = {"FF layer", "FF block",
                                                           "transformer block"};
static const char *const score_names[SCALAR_SCORE_COUNT] = {
    "s_abs", "s_abs_err", "s_rel", "s_rel_err", "full_s_abs", "full_s_abs_err", "full_kl",
    "n_edges", "attr_tokens", "eval_tokens"};

void eval_opts_init(eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->path = -1;
    o->attribution = SCALAR_ATTR_GRADIENT_PATH;
    o->steps = 5;
    o->bootstrap = 1000;
    o->batch = 8;
    o->seq = 128;
    o->attr_seqs = 24 * 24;
    o->eval_seqs = 50;
}

int32_t eval_path_parse(const char *s)
{
    for (int32_t p = 0; s && p < SCALAR_PATH_COUNT; p++)
        if (strcmp(s, path_names[p]) == 0)
            return p;
    return -1;
}

const char *eval_path_name(int32_t path)
{
    return path >= 0 && path < SCALAR_PATH_COUNT ? path_names[path] : "?";
}

const char *eval_mode_name(uint32_t quirks)
{
    return quirks == 0 ? "clean" : quirks == SCALAR_QUIRKS_PARITY ? "parity" : "custom";
}

/* The SAE of `l` reading (layer, kind); resid_pre(L+1) is resid_post(L). */
static scalar_sae *find_sae(const sae_loaded *l, int32_t layer, int32_t kind, char *hook)
{
    for (int32_t i = 0; i < l->n; i++) {
        scalar_sae_config c;
        int32_t sl, sk;
        scalar_sae_config_init(&c, sizeof c);
        if (scalar_sae_get_config(l->saes[i], &c) != SCALAR_OK || !c.hook_name ||
            scalar_model_hook_parse(c.hook_name, &sl, &sk) != SCALAR_OK)
            continue;
        int same = sl == layer && sk == kind;
        same |= kind == SCALAR_HOOK_RESID_PRE && sk == SCALAR_HOOK_RESID_POST && sl == layer - 1;
        same |= kind == SCALAR_HOOK_RESID_POST && sk == SCALAR_HOOK_RESID_PRE && sl == layer + 1;
        if (same) {
            snprintf(hook, 64, "%s", c.hook_name);
            return l->saes[i];
        }
    }
    return NULL;
}

static void path_kinds(int32_t path, int32_t *u, int32_t *d)
{
    static const int32_t ku[] = {SCALAR_HOOK_MLP_IN, SCALAR_HOOK_RESID_MID, SCALAR_HOOK_RESID_PRE};
    static const int32_t kd[] = {SCALAR_HOOK_MLP_OUT, SCALAR_HOOK_RESID_POST,
                                 SCALAR_HOOK_RESID_POST};
    *u = ku[path];
    *d = kd[path];
}

/* Windows 0 .. n-1 of seq tokens of the validation split. */
static int32_t *val_windows(const scalar_dataset *ds, int64_t *n, int64_t seq, const char *cmd)
{
    int64_t n_tok = 0;
    if (scalar_dataset_n_tokens(ds, SCALAR_SPLIT_VAL, &n_tok) != SCALAR_OK) {
        cli_fail(cmd);
        return NULL;
    }
    if (*n > n_tok / seq)
        *n = n_tok / seq;
    if (*n < 1) {
        fprintf(stderr, "scalar: %s: the validation split (%lld tokens) is shorter than one "
                        "window of %lld\n", cmd, (long long)n_tok, (long long)seq);
        return NULL;
    }
    int32_t *ids = malloc((size_t)(*n * seq) * sizeof *ids);
    if (!ids || scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, 0, *n * seq, ids) != SCALAR_OK) {
        free(ids);
        fprintf(stderr, "scalar: %s: cannot read the validation split\n", cmd);
        return NULL;
    }
    return ids;
}

static int eval_pair(scalar_evaluator *ev, eval_layer *e, const int32_t *attr, int64_t n_attr,
                     const int32_t *evl, int64_t n_eval, int64_t seq, int show, const char *cmd)
{
    double t0 = cli_now();
    for (int64_t s0 = 0; s0 < n_attr; s0 += 24) {
        int64_t ns = n_attr - s0 < 24 ? n_attr - s0 : 24;
        if (show)
            fprintf(stderr, "\r  layer %d: attribution %lld/%lld sequences", (int)e->layer,
                    (long long)s0, (long long)n_attr);
        if (scalar_evaluator_attribute(ev, attr + s0 * seq, ns, seq) != SCALAR_OK)
            return cli_fail(cmd);
    }
    e->seconds_attr = cli_now() - t0;
    if (show)
        fprintf(stderr, "\r  layer %d: attribution done (%.1f s); subcircuit curve on %lld "
                        "sequences...", (int)e->layer, e->seconds_attr, (long long)n_eval);
    t0 = cli_now();
    if (scalar_evaluator_curve(ev, evl, n_eval, seq, NULL, 0) != SCALAR_OK)
        return cli_fail(cmd);
    e->seconds_curve = cli_now() - t0;
    if (show)
        fprintf(stderr, "\r\033[K");
    int64_t G = scalar_evaluator_n_points(ev);
    e->n_points = G;
    e->edges = malloc((size_t)G * sizeof *e->edges);
    for (int c = 0; c < 2; c++) {
        e->mean[c] = malloc((size_t)G * sizeof(double));
        e->lo[c] = malloc((size_t)G * sizeof(double));
        e->hi[c] = malloc((size_t)G * sizeof(double));
        if (!e->edges || !e->mean[c] || !e->lo[c] || !e->hi[c]) {
            fprintf(stderr, "scalar: %s: out of memory\n", cmd);
            return CLI_FAIL;
        }
        if (scalar_evaluator_read_curve(ev, c, e->edges, e->mean[c], e->lo[c], e->hi[c],
                                        (size_t)G) != SCALAR_OK)
            return cli_fail(cmd);
    }
    if (scalar_evaluator_scores(ev, e->scores, SCALAR_SCORE_COUNT) != SCALAR_OK)
        return cli_fail(cmd);
    return CLI_OK;
}

int eval_run_folder(scalar_ctx *ctx, scalar_model *m, const scalar_dataset *ds, const char *dir,
                    const eval_opts *o, eval_result *r, const char *cmd)
{
    char path[CLI_PATH_LEN];
    memset(r, 0, sizeof *r);
    char *text = cli_join(path, dir, "run.json") == 0 ? cli_read_file(path) : NULL;
    cJSON *run = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!run) {
        fprintf(stderr, "scalar: %s: cannot read %s/run.json (a train-sae output folder)\n", cmd,
                dir);
        return CLI_FAIL;
    }
    sae_loaded l;
    memset(&l, 0, sizeof l);
    int rc = sae_load_best(&l, ctx, dir, run, cmd);
    cJSON_Delete(run);
    scalar_model_config mc;
    scalar_model_config_init(&mc, sizeof mc);
    scalar_model_get_config(m, &mc);
    int64_t n_attr = o->attr_seqs, n_eval = o->eval_seqs;
    int32_t *attr = rc == CLI_OK ? val_windows(ds, &n_attr, o->seq, cmd) : NULL;
    int32_t *evl = attr ? val_windows(ds, &n_eval, o->seq, cmd) : NULL;
    if (!evl)
        rc = CLI_FAIL;
    scalar_evaluator_options eo;
    scalar_evaluator_options_init(&eo, sizeof eo);
    eo.quirks = o->quirks;
    eo.attribution = o->attribution;
    eo.steps = o->steps;
    eo.bootstrap = o->bootstrap;
    eo.seed = o->seed;
    eo.batch = o->batch;
    int32_t ku, kd;
    path_kinds(o->path, &ku, &kd);
    int show = cli_progress_enabled();
    for (int32_t L = 0; rc == CLI_OK && L < mc.n_layer; L++) {
        int wanted = o->n_layers == 0;
        for (int32_t q = 0; q < o->n_layers; q++)
            wanted |= o->layers[q] == L;
        if (!wanted)
            continue;
        eval_layer *e = &r->layer[r->n];
        memset(e, 0, sizeof *e);
        e->layer = L;
        scalar_sae *U = find_sae(&l, L, ku, e->hook_u), *D = find_sae(&l, L, kd, e->hook_d);
        if (!U || !D) {
            if (o->n_layers == 0)
                continue; /* a run without this layer's pair */
            fprintf(stderr, "scalar: %s: %s has no %s pair at layer %d\n", cmd, dir,
                    eval_path_name(o->path), (int)L);
            rc = CLI_FAIL;
            break;
        }
        scalar_sae_config c;
        scalar_sae_config_init(&c, sizeof c);
        scalar_sae_get_config(U, &c);
        e->F_U = c.d_sae;
        scalar_sae_get_config(D, &c);
        e->F_D = c.d_sae;
        r->n++;
        scalar_evaluator *ev = NULL;
        if (scalar_evaluator_create(&ev, m, U, D, o->path, L, &eo) != SCALAR_OK)
            rc = cli_fail(cmd);
        else
            rc = eval_pair(ev, e, attr, n_attr, evl, n_eval, o->seq, show, cmd);
        scalar_evaluator_free(ev);
    }
    if (rc == CLI_OK && r->n == 0) {
        fprintf(stderr, "scalar: %s: %s has no %s pair (its SAEs read other hooks)\n", cmd, dir,
                eval_path_name(o->path));
        rc = CLI_FAIL;
    }
    free(attr);
    free(evl);
    sae_loaded_free(&l);
    return rc;
}

void eval_result_free(eval_result *r)
{
    for (int32_t i = 0; i < r->n; i++) {
        eval_layer *e = &r->layer[i];
        free(e->edges);
        for (int c = 0; c < 2; c++) {
            free(e->mean[c]);
            free(e->lo[c]);
            free(e->hi[c]);
        }
    }
    r->n = 0;
}

static void add_num(cJSON *o, const char *name, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, name, v);
    else
        cJSON_AddNullToObject(o, name);
}

static cJSON *num_array(const double *v, int64_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (int64_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

cJSON *eval_result_json(const eval_result *r, const eval_opts *o, const char *dir)
{
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddStringToObject(j, "saes", dir);
    cJSON_AddStringToObject(j, "path", eval_path_name(o->path));
    cJSON_AddStringToObject(j, "mode", eval_mode_name(o->quirks));
    cJSON_AddNumberToObject(j, "quirks", (double)o->quirks);
    cJSON_AddStringToObject(j, "attribution",
                            o->attribution == SCALAR_ATTR_JACOBIAN ? "jacobian" : "gradient_path");
    cJSON_AddNumberToObject(j, "steps", o->steps);
    cJSON_AddNumberToObject(j, "bootstrap", o->bootstrap);
    cJSON_AddNumberToObject(j, "seed", (double)o->seed);
    cJSON_AddNumberToObject(j, "seq", (double)o->seq);
    cJSON_AddNumberToObject(j, "attr_seqs", (double)o->attr_seqs);
    cJSON_AddNumberToObject(j, "eval_seqs", (double)o->eval_seqs);
    cJSON *layers = cJSON_AddArrayToObject(j, "layers");
    for (int32_t i = 0; layers && i < r->n; i++) {
        const eval_layer *e = &r->layer[i];
        cJSON *x = cJSON_CreateObject();
        if (!x || !cJSON_AddItemToArray(layers, x)) {
            cJSON_Delete(x);
            break;
        }
        cJSON_AddNumberToObject(x, "layer", e->layer);
        cJSON_AddStringToObject(x, "upstream", e->hook_u);
        cJSON_AddStringToObject(x, "downstream", e->hook_d);
        cJSON_AddNumberToObject(x, "F_U", e->F_U);
        cJSON_AddNumberToObject(x, "F_D", e->F_D);
        for (int s = 0; s < SCALAR_SCORE_COUNT; s++)
            add_num(x, score_names[s], e->scores[s]);
        add_num(x, "s_rel_x_2_18", e->scores[SCALAR_SCORE_S_REL] * 262144.0);
        add_num(x, "s_rel_err_x_2_18", e->scores[SCALAR_SCORE_S_REL_ERR] * 262144.0);
        cJSON_AddNumberToObject(x, "seconds_attribution", e->seconds_attr);
        cJSON_AddNumberToObject(x, "seconds_curve", e->seconds_curve);
        double *edges = malloc((size_t)e->n_points * sizeof *edges);
        for (int64_t g = 0; edges && g < e->n_points; g++)
            edges[g] = (double)e->edges[g];
        cJSON *cu = cJSON_AddObjectToObject(x, "curve");
        if (cu && edges) {
            cJSON_AddItemToObject(cu, "edges", num_array(edges, e->n_points));
            cJSON_AddItemToObject(cu, "kl", num_array(e->mean[0], e->n_points));
            cJSON_AddItemToObject(cu, "kl_lo", num_array(e->lo[0], e->n_points));
            cJSON_AddItemToObject(cu, "kl_hi", num_array(e->hi[0], e->n_points));
            cJSON_AddItemToObject(cu, "kl_full", num_array(e->mean[1], e->n_points));
            cJSON_AddItemToObject(cu, "kl_full_lo", num_array(e->lo[1], e->n_points));
            cJSON_AddItemToObject(cu, "kl_full_hi", num_array(e->hi[1], e->n_points));
        }
        free(edges);
    }
    return j;
}

/* Write b's text to out/name atomically, then empty b. */
static int write_text(const char *out, const char *name, strbuf *b, const char *cmd)
{
    char path[CLI_PATH_LEN];
    int rc = CLI_OK;
    if (b->oom || !b->p || cli_join(path, out, name) || cli_write_atomic(path, b->p)) {
        fprintf(stderr, "scalar: %s: cannot write %s/%s\n", cmd, out, name);
        rc = CLI_FAIL;
    }
    sb_free(b);
    return rc;
}

int eval_write_outputs(const char *out, const eval_result *r, const eval_opts *o,
                       const char *dir, const char *label, const char *cmd)
{
    char path[CLI_PATH_LEN];
    if (cli_make_dirs(out) != 0) {
        fprintf(stderr, "scalar: %s: cannot create %s\n", cmd, out);
        return CLI_FAIL;
    }
    cJSON *j = eval_result_json(r, o, dir);
    char *json = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    int rc = CLI_OK;
    if (!json || cli_join(path, out, "results.json") || cli_write_atomic(path, json)) {
        fprintf(stderr, "scalar: %s: cannot write %s/results.json\n", cmd, out);
        rc = CLI_FAIL;
    }
    cJSON_free(json);
    strbuf b = {0};
    sb_printf(&b, "label,path,mode,layer,F_U,F_D,s_abs,s_abs_err,s_rel_x_2_18,"
                  "s_rel_err_x_2_18,full_s_abs,full_s_abs_err,full_kl\n");
    for (int32_t i = 0; i < r->n; i++) {
        const eval_layer *e = &r->layer[i];
        const double *s = e->scores;
        sb_printf(&b, "%s,%s,%s,%d,%d,%d,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", label,
                  eval_path_name(o->path), eval_mode_name(o->quirks), (int)e->layer,
                  (int)e->F_U, (int)e->F_D, s[SCALAR_SCORE_S_ABS], s[SCALAR_SCORE_S_ABS_ERR],
                  s[SCALAR_SCORE_S_REL] * 262144.0, s[SCALAR_SCORE_S_REL_ERR] * 262144.0,
                  s[SCALAR_SCORE_FULL_S_ABS], s[SCALAR_SCORE_FULL_S_ABS_ERR],
                  s[SCALAR_SCORE_FULL_KL]);
    }
    if (rc == CLI_OK)
        rc = write_text(out, "scalar.csv", &b, cmd);
    sb_printf(&b, "label,layer,edges,kl,kl_lo,kl_hi,kl_full,kl_full_lo,kl_full_hi\n");
    for (int32_t i = 0; i < r->n; i++) {
        const eval_layer *e = &r->layer[i];
        for (int64_t g = 0; g < e->n_points; g++)
            sb_printf(&b, "%s,%d,%lld,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g\n", label, (int)e->layer,
                      (long long)e->edges[g], e->mean[0][g], e->lo[0][g], e->hi[0][g],
                      e->mean[1][g], e->lo[1][g], e->hi[1][g]);
    }
    if (rc == CLI_OK)
        rc = write_text(out, "curves.csv", &b, cmd);
    sb_free(&b);
    /* one line per layer: KL against kept edges, with its interval */
    svg_series series[EVAL_MAX_LAYERS];
    char names[EVAL_MAX_LAYERS][32];
    double *x[EVAL_MAX_LAYERS] = {0};
    for (int32_t i = 0; i < r->n; i++) {
        const eval_layer *e = &r->layer[i];
        x[i] = malloc((size_t)e->n_points * sizeof(double));
        for (int64_t g = 0; x[i] && g < e->n_points; g++)
            x[i][g] = (double)e->edges[g];
        snprintf(names[i], sizeof names[i], "layer %d", (int)e->layer);
        series[i] = (svg_series){names[i], x[i], e->mean[0],
                                 o->bootstrap > 0 ? e->lo[0] : NULL,
                                 o->bootstrap > 0 ? e->hi[0] : NULL, x[i] ? e->n_points : 0};
    }
    char title[160];
    snprintf(title, sizeof title, "SCALAR, %s, %s (%s mode)", path_titles[o->path], label,
             eval_mode_name(o->quirks));
    svg_plot plot = {title, "edges kept (N)", "KL(clean || subcircuit), nats", 1, 0, 0, 0};
    if (rc == CLI_OK && (cli_join(path, out, "curves.svg") ||
                         svg_plot_write(path, &plot, series, (int)r->n) != 0)) {
        fprintf(stderr, "scalar: %s: cannot write %s/curves.svg\n", cmd, out);
        rc = CLI_FAIL;
    }
    for (int32_t i = 0; i < r->n; i++)
        free(x[i]);
    return rc;
}

void eval_print_table(const eval_result *r, const eval_opts *o, const char *label)
{
    printf("SCALAR, %s, %s, %s mode (%lld x %lld attribution tokens, %lld x %lld curve "
           "tokens)\n",
           path_titles[o->path], label, eval_mode_name(o->quirks), (long long)o->attr_seqs,
           (long long)o->seq, (long long)o->eval_seqs, (long long)o->seq);
    printf("%-5s %6s %6s %22s %22s %10s %8s\n", "layer", "F_U", "F_D", "S_abs (KL x edges)",
           "S_rel x 2^18", "full KL", "time");
    for (int32_t i = 0; i < r->n; i++) {
        const eval_layer *e = &r->layer[i];
        const double *s = e->scores;
        char a[32], b[32], t[16];
        snprintf(a, sizeof a, "%.4g +/- %.2g", s[SCALAR_SCORE_S_ABS], s[SCALAR_SCORE_S_ABS_ERR]);
        snprintf(b, sizeof b, "%.4g +/- %.2g", s[SCALAR_SCORE_S_REL] * 262144.0,
                 s[SCALAR_SCORE_S_REL_ERR] * 262144.0);
        cli_format_duration(t, sizeof t, e->seconds_attr + e->seconds_curve);
        printf("%-5d %6d %6d %22s %22s %10.4f %8s\n", (int)e->layer, (int)e->F_U, (int)e->F_D,
               a, b, s[SCALAR_SCORE_FULL_KL], t);
    }
}
