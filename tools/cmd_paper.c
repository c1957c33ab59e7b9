/*
 * cmd_paper.c - `scalar paper`: SPEC.md section 5's tables from one command.
 *
 * Stages, each recorded in OUT/stages.json when done (with its wall time):
 *   model                      train-model (or --model DIR: reused)
 *   S/P-V                      train-sae, seed S, placement P, variant V
 *   S/P-V/eval-MODE            scalar eval of that run (both modes)
 * then the tables (OUT/tables.csv, OUT/paper.md) and the plots (OUT/plots/).
 * An interrupted run resumes: done stages are skipped, a training stage with
 * a checkpoint continues from it (train-model / train-sae --resume), an
 * evaluation without results runs again.
 *
 * Runs: FF layer TopK and JSAE (SPEC's per-layer lambdas), FF block and
 * transformer block TopK, Staircase (share and detach) and noshare.  The model
 * is trained once (seed 0 of the context) and shared by every seed; seed S
 * seeds the SAEs' initialisation (S * 1000 + group).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval_cli.h"
#include "model_cli.h"
#include "run_dir.h"
#include "strbuf.h"
#include "svg_plot.h"

#define CMD "paper"
#define MAX_SEEDS 16
#define N_LAYERS 4

typedef struct run_spec {
    const char *placement, *variant;
} run_spec;

static const run_spec runs[] = {
    {"ff", "topk"},           {"ff", "jsae"},
    {"mlpblock", "topk"},     {"mlpblock", "staircase"},
    {"mlpblock", "staircase-detach"}, {"mlpblock", "noshare"},
    {"block", "topk"},        {"block", "staircase"},
    {"block", "staircase-detach"}, {"block", "noshare"},
};
#define N_RUNS ((int)(sizeof runs / sizeof runs[0]))
static const char *const modes[2] = {"parity", "clean"};

/* SPEC.md section 5, the paper's numbers. */
typedef struct paper_row {
    const char *placement, *variant, *kind; /* kind: "abs" or "rel" */
    double layer[N_LAYERS], printed, printed_err, consistent;
} paper_row;
static const paper_row paper_reductions[] = {
    {"ff", "jsae", "abs", {-602.15, 24.50, 9.55, -14.07}, 8.54, 0.38, 1.07},
    {"mlpblock", "staircase", "abs", {55.46, -1.53, -7.41, -10.33}, 19.24, 0.71, 3.14},
    {"mlpblock", "staircase", "rel", {77.78, 49.24, 46.50, 45.11}, 59.67, 1.83, 51.73},
    {"block", "staircase", "abs", {6.95, -64.50, -107.42, -125.53}, -29.46, 0.91, -63.82},
    {"block", "staircase", "rel", {53.48, 72.60, 82.79, 88.83}, 63.15, 1.35, 72.02},
};
typedef struct paper_abs {
    const char *placement, *variant;
    double layer[N_LAYERS]; /* units: L0, L1 x 1e4; L2, L3 x 1e5 */
} paper_abs;
static const paper_abs paper_scores[] = {
    {"ff", "topk", {0.0977, 5.55, 1.57, 1.35}},     {"ff", "jsae", {0.686, 4.19, 1.42, 1.54}},
    {"mlpblock", "topk", {10.8, 13.1, 2.43, 1.84}}, {"mlpblock", "staircase", {4.81, 13.3, 2.61, 2.03}},
    {"block", "topk", {37.4, 26.2, 3.37, 1.88}},    {"block", "staircase", {34.8, 43.1, 6.99, 4.24}},
};

typedef struct paper_args {
    const char *corpus, *out, *model, *modes;
    int64_t seeds, attr_seqs, eval_seqs, bootstrap, sae_steps, jsae_steps, seq, batch;
    int quick;
    int32_t n_layer; /* of the model, once loaded */
} paper_args;

/* ---- stage bookkeeping ---- */

typedef struct stages {
    char path[CLI_PATH_LEN];
    cJSON *json; /* {"name": {"seconds": s}} */
} stages;

static int stages_load(stages *s, const char *out)
{
    if (cli_join(s->path, out, "stages.json"))
        return -1;
    char *text = cli_read_file(s->path);
    s->json = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!s->json)
        s->json = cJSON_CreateObject();
    return s->json ? 0 : -1;
}

static int stage_done(const stages *s, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(s->json, name) != NULL;
}

static int stage_finish(stages *s, const char *name, double seconds)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return -1;
    cJSON_AddNumberToObject(o, "seconds", seconds);
    cJSON_DeleteItemFromObjectCaseSensitive(s->json, name);
    cJSON_AddItemToObject(s->json, name, o);
    char *text = cJSON_Print(s->json);
    int rc = text && cli_write_atomic(s->path, text) == 0 ? 0 : -1;
    cJSON_free(text);
    return rc;
}

static double stage_seconds(const stages *s, const char *name)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(s->json, name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "seconds");
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int file_exists(const char *dir, const char *name)
{
    char path[CLI_PATH_LEN];
    struct stat st;
    return cli_join(path, dir, name) == 0 && stat(path, &st) == 0;
}

/* Run another command in-process with argv (NULL-terminated). */
static int run_command(const cli_command *c, const cli_global *g, const char **args)
{
    int argc = 0;
    char *argv[48];
    argv[argc++] = (char *)c->name;
    while (args[argc - 1] && argc < 47) {
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    argv[argc] = NULL;
    return c->run(g, argc, argv);
}

/* ---- stages ---- */

/* A training stage: command `c` into `dir`, seeded and timed: --resume from
 * the folder's checkpoint if it has one, else --out dir, the `extra`
 * options (NULL-terminated), and --quick / --corpus as the paper run has them. */
static int stage_run(stages *s, const cli_command *c, const cli_global *g, const paper_args *a,
                     uint64_t seed, const char *dir, const char *const *extra, const char *name)
{
    if (stage_done(s, name))
        return CLI_OK;
    fprintf(stderr, "scalar: " CMD ": stage %s -> %s\n", name, dir);
    double t0 = cli_now();
    const char *args[40];
    int n = 0;
    if (file_exists(dir, "checkpoint.json")) {
        args[n++] = "--resume";
        args[n++] = dir;
    } else {
        args[n++] = "--out";
        args[n++] = dir;
        for (; extra && *extra && n < 34; extra++)
            args[n++] = *extra;
        if (a->quick)
            args[n++] = "--quick";
        if (a->corpus) {
            args[n++] = "--corpus";
            args[n++] = a->corpus;
        }
    }
    args[n] = NULL;
    cli_global gg = *g;
    gg.have_seed = 1;
    gg.seed = seed;
    int rc = run_command(c, &gg, args);
    if (rc == CLI_OK && stage_finish(s, name, cli_now() - t0) != 0)
        rc = CLI_FAIL;
    return rc;
}

static int stage_model(stages *s, const cli_global *g, const paper_args *a, const char *dir)
{
    return stage_run(s, &cli_cmd_train_model, g, a, g->have_seed ? g->seed : 0, dir, NULL,
                     "model");
}

static int stage_train(stages *s, const cli_global *g, const paper_args *a, const char *model,
                       int64_t seed, const run_spec *r, const char *dir, const char *name)
{
    const char *extra[20];
    char steps[32], seq[32], batch[32];
    int n = 0;
    int jsae = strcmp(r->variant, "jsae") == 0;
    int64_t st = jsae ? a->jsae_steps : a->sae_steps;
    extra[n++] = "--model";
    extra[n++] = model;
    extra[n++] = "--placement";
    extra[n++] = r->placement;
    extra[n++] = "--variant";
    extra[n++] = r->variant;
    if (st > 0) {
        snprintf(steps, sizeof steps, "%lld", (long long)st);
        extra[n++] = "--steps";
        extra[n++] = steps;
    }
    if (jsae) { /* SPEC's lambda per layer (the toy model's four; else layer 0's) */
        extra[n++] = "--lambda";
        extra[n++] = a->n_layer == 4 ? "1.8e-3,1.2e-3,3.3e-3,2.2e-3" : "1.8e-3";
    }
    if (a->seq > 0) {
        snprintf(seq, sizeof seq, "%lld", (long long)a->seq);
        extra[n++] = "--seq";
        extra[n++] = seq;
    }
    if (a->batch > 0) {
        snprintf(batch, sizeof batch, "%lld", (long long)a->batch);
        extra[n++] = "--batch";
        extra[n++] = batch;
    }
    extra[n] = NULL;
    return stage_run(s, &cli_cmd_train_sae, g, a, (uint64_t)seed * 1000u, dir, extra, name);
}

static int stage_eval(stages *s, scalar_ctx *ctx, scalar_model *m, const scalar_dataset *ds,
                      const paper_args *a, const run_spec *r, int mode, const char *dir,
                      const char *name)
{
    if (stage_done(s, name))
        return CLI_OK;
    fprintf(stderr, "scalar: " CMD ": stage %s\n", name);
    double t0 = cli_now();
    eval_opts o;
    eval_opts_init(&o);
    o.path = eval_path_parse(r->placement);
    o.quirks = mode == 0 ? SCALAR_QUIRKS_PARITY : 0;
    o.attr_seqs = a->attr_seqs;
    o.eval_seqs = a->eval_seqs;
    o.bootstrap = (int32_t)a->bootstrap;
    if (a->seq > 0)
        o.seq = a->seq;
    char out[CLI_PATH_LEN], sub[64];
    snprintf(sub, sizeof sub, "eval-%s-%s", r->placement, modes[mode]);
    if (cli_join(out, dir, sub))
        return CLI_FAIL;
    eval_result res;
    int rc = eval_run_folder(ctx, m, ds, dir, &o, &res, CMD);
    if (rc == CLI_OK)
        rc = eval_write_outputs(out, &res, &o, dir, r->variant, CMD);
    if (rc == CLI_OK)
        eval_print_table(&res, &o, r->variant);
    eval_result_free(&res);
    if (rc == CLI_OK && stage_finish(s, name, cli_now() - t0) != 0)
        rc = CLI_FAIL;
    return rc;
}

/* ---- tables ---- */

/* S_abs and S_rel * 2^18 per layer of one evaluation (NaN where missing). */
typedef struct scores {
    double abs[N_LAYERS], rel[N_LAYERS];
    int ok;
} scores;

static void read_scores(scores *sc, const char *dir, const run_spec *r, int mode)
{
    char sub[64], path[CLI_PATH_LEN];
    for (int l = 0; l < N_LAYERS; l++)
        sc->abs[l] = sc->rel[l] = NAN;
    sc->ok = 0;
    snprintf(sub, sizeof sub, "eval-%s-%s/results.json", r->placement, modes[mode]);
    char *text = cli_join(path, dir, sub) == 0 ? cli_read_file(path) : NULL;
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers"), *e;
    cJSON_ArrayForEach(e, layers)
    {
        const cJSON *L = cJSON_GetObjectItemCaseSensitive(e, "layer");
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(e, "s_abs");
        const cJSON *sr = cJSON_GetObjectItemCaseSensitive(e, "s_rel_x_2_18");
        if (!cJSON_IsNumber(L) || L->valueint < 0 || L->valueint >= N_LAYERS)
            continue;
        sc->abs[L->valueint] = cJSON_IsNumber(sa) ? sa->valuedouble : NAN;
        sc->rel[L->valueint] = cJSON_IsNumber(sr) ? sr->valuedouble : NAN;
        sc->ok = 1;
    }
    cJSON_Delete(j);
}

static void mean_se(const double *v, int n, double *mean, double *se)
{
    double s = 0.0, s2 = 0.0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            k++;
        }
    *mean = k ? s / k : NAN;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i]))
            s2 += (v[i] - *mean) * (v[i] - *mean);
    *se = k > 1 ? sqrt(s2 / (k - 1) / k) : NAN;
}

static int run_index(const char *placement, const char *variant)
{
    for (int i = 0; i < N_RUNS; i++)
        if (!strcmp(runs[i].placement, placement) && !strcmp(runs[i].variant, variant))
            return i;
    return -1;
}

/* Paper's display unit of a layer's absolute score. */
static double unit(int l)
{
    return l < 2 ? 1e4 : 1e5;
}

static void fmt_pm(char *buf, size_t size, double m, double se)
{
    if (!isfinite(m))
        snprintf(buf, size, "n/a");
    else if (isfinite(se))
        snprintf(buf, size, "%.2f +/- %.2f", m, se);
    else
        snprintf(buf, size, "%.2f", m);
}

/* One reduction row (variant against TopK) of one mode, over seeds. */
static void reduction_row(strbuf *md, strbuf *csv, scores sc[][N_RUNS], int n_seeds, int mode,
                          const char *placement, const char *variant, int rel,
                          const paper_row *paper)
{
    int it = run_index(placement, "topk"), ix = run_index(placement, variant);
    double red[N_LAYERS][MAX_SEEDS], agg_c[MAX_SEEDS], agg_p[MAX_SEEDS];
    for (int s = 0; s < n_seeds; s++) {
        double st = 0, sx = 0, pt = 0, px = 0;
        for (int l = 0; l < N_LAYERS; l++) {
            double t = rel ? sc[s][it].rel[l] : sc[s][it].abs[l];
            double x = rel ? sc[s][ix].rel[l] : sc[s][ix].abs[l];
            red[l][s] = 100.0 * (t - x) / t;
            st += t;
            sx += x;
            pt += t / unit(l);
            px += x / unit(l);
        }
        agg_c[s] = 100.0 * (st - sx) / st;
        agg_p[s] = 100.0 * (pt - px) / pt;
    }
    char cell[N_LAYERS][48], ac[48], ap[48];
    double m, se;
    sb_printf(md, "| %s, %s, %s | ", placement, variant, rel ? "relative" : "absolute");
    for (int l = 0; l < N_LAYERS; l++) {
        mean_se(red[l], n_seeds, &m, &se);
        fmt_pm(cell[l], sizeof cell[l], m, se);
        sb_printf(md, "%s | ", cell[l]);
        if (paper)
            sb_printf(md, "%.2f | ", paper->layer[l]);
        else
            sb_printf(md, " | ");
        if (paper)
            sb_printf(csv, "%s,reduction_%s,%s,%s,%d,%.6g,%.6g,%.6g\n", modes[mode],
               rel ? "rel" : "abs", placement, variant, l, m, se, paper->layer[l]);
        else
            sb_printf(csv, "%s,reduction_%s,%s,%s,%d,%.6g,%.6g,\n", modes[mode], rel ? "rel" : "abs",
               placement, variant, l, m, se);
    }
    mean_se(agg_p, n_seeds, &m, &se);
    fmt_pm(ap, sizeof ap, m, se);
    sb_printf(csv, "%s,reduction_%s,%s,%s,aggregate_as_printed,%.6g,%.6g,\n", modes[mode],
       rel ? "rel" : "abs", placement, variant, m, se);
    mean_se(agg_c, n_seeds, &m, &se);
    fmt_pm(ac, sizeof ac, m, se);
    sb_printf(csv, "%s,reduction_%s,%s,%s,aggregate_consistent,%.6g,%.6g,\n", modes[mode],
       rel ? "rel" : "abs", placement, variant, m, se);
    if (paper)
        sb_printf(md, "%s | %.2f +/- %.2f | %s | %.2f |\n", ap, paper->printed, paper->printed_err, ac,
           paper->consistent);
    else
        sb_printf(md, "%s | | %s | |\n", ap, ac);
}

static const paper_row *find_paper_row(const char *placement, const char *variant, int rel)
{
    for (size_t i = 0; i < sizeof paper_reductions / sizeof paper_reductions[0]; i++) {
        const paper_row *p = &paper_reductions[i];
        if (!strcmp(p->placement, placement) && !strcmp(p->variant, variant) &&
            !strcmp(p->kind, rel ? "rel" : "abs"))
            return p;
    }
    return NULL;
}

static void tables(strbuf *md, strbuf *csv, scores sc[][N_RUNS], int n_seeds, int mode)
{
    sb_printf(md, "\n## %s mode\n\nPer-layer reductions (%%) against TopK, mean +/- standard error "
           "across %d seed(s); the paper's number after each of ours.\n\n",
       modes[mode], n_seeds);
    sb_printf(md, "| placement, variant | L0 | paper | L1 | paper | L2 | paper | L3 | paper | "
           "aggregate as printed | paper | aggregate, consistent units | paper |\n");
    sb_printf(md, "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    static const struct {
        const char *placement, *variant;
        int rel;
    } rows[] = {{"ff", "jsae", 0},
                {"mlpblock", "staircase", 0},         {"mlpblock", "staircase", 1},
                {"block", "staircase", 0},            {"block", "staircase", 1},
                {"mlpblock", "staircase-detach", 0},  {"mlpblock", "staircase-detach", 1},
                {"mlpblock", "noshare", 0},           {"mlpblock", "noshare", 1},
                {"block", "staircase-detach", 0},     {"block", "staircase-detach", 1},
                {"block", "noshare", 0},              {"block", "noshare", 1}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const paper_row *p = find_paper_row(rows[i].placement, rows[i].variant, rows[i].rel);
        reduction_row(md, csv, sc, n_seeds, mode, rows[i].placement, rows[i].variant,
                      rows[i].rel, p);
    }
    sb_printf(md, "\nAbsolute SCALAR scores (units: L0, L1 x 1e4; L2, L3 x 1e5; KL nats x edges), "
           "mean +/- standard error; the paper's after each.\n\n");
    sb_printf(md, "| placement | variant | L0 | paper | L1 | paper | L2 | paper | L3 | paper |\n");
    sb_printf(md, "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int r = 0; r < N_RUNS; r++) {
        const paper_abs *p = NULL;
        for (size_t i = 0; i < sizeof paper_scores / sizeof paper_scores[0]; i++)
            if (!strcmp(paper_scores[i].placement, runs[r].placement) &&
                !strcmp(paper_scores[i].variant, runs[r].variant))
                p = &paper_scores[i];
        sb_printf(md, "| %s | %s | ", runs[r].placement, runs[r].variant);
        for (int l = 0; l < N_LAYERS; l++) {
            double v[MAX_SEEDS], m, se;
            char cell[48];
            for (int s = 0; s < n_seeds; s++)
                v[s] = sc[s][r].abs[l] / unit(l);
            mean_se(v, n_seeds, &m, &se);
            if (isfinite(m) && isfinite(se))
                snprintf(cell, sizeof cell, "%.3g +/- %.2g", m, se);
            else if (isfinite(m))
                snprintf(cell, sizeof cell, "%.3g", m);
            else
                snprintf(cell, sizeof cell, "n/a");
            sb_printf(md, "%s | ", cell);
            if (p)
                sb_printf(md, "%.3g | ", p->layer[l]);
            else
                sb_printf(md, " | ");
            if (p)
                sb_printf(csv, "%s,s_abs_display_units,%s,%s,%d,%.6g,%.6g,%.6g\n", modes[mode],
                   runs[r].placement, runs[r].variant, l, m, se, p->layer[l]);
            else
                sb_printf(csv, "%s,s_abs_display_units,%s,%s,%d,%.6g,%.6g,\n", modes[mode],
                   runs[r].placement, runs[r].variant, l, m, se);
        }
        sb_printf(md, "\n");
    }
}

/* KL curves of every variant of a placement at one layer (seed 0, one mode). */
static int plots(const char *out, const char *seed0, int mode)
{
    char dir[CLI_PATH_LEN], path[CLI_PATH_LEN];
    if (cli_join(dir, out, "plots") || cli_make_dirs(dir) != 0)
        return -1;
    static const char *const placements[] = {"ff", "mlpblock", "block"};
    for (int pi = 0; pi < 3; pi++)
        for (int l = 0; l < N_LAYERS; l++) {
            svg_series ser[N_RUNS];
            double *bufs[N_RUNS][4];
            int ns = 0;
            memset(bufs, 0, sizeof bufs);
            for (int r = 0; r < N_RUNS; r++) {
                if (strcmp(runs[r].placement, placements[pi]))
                    continue;
                char sub[160];
                snprintf(sub, sizeof sub, "%s-%s/eval-%s-%s/results.json", runs[r].placement,
                         runs[r].variant, runs[r].placement, modes[mode]);
                char *text = cli_join(path, seed0, sub) == 0 ? cli_read_file(path) : NULL;
                cJSON *j = text ? cJSON_Parse(text) : NULL;
                free(text);
                const cJSON *e, *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
                cJSON_ArrayForEach(e, layers)
                {
                    const cJSON *L = cJSON_GetObjectItemCaseSensitive(e, "layer");
                    const cJSON *cu = cJSON_GetObjectItemCaseSensitive(e, "curve");
                    if (!cJSON_IsNumber(L) || L->valueint != l || !cu)
                        continue;
                    static const char *const keys[4] = {"edges", "kl", "kl_lo", "kl_hi"};
                    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cu, "edges"));
                    for (int k = 0; k < 4; k++) {
                        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(cu, keys[k]), *v;
                        bufs[ns][k] = malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
                        int q = 0;
                        cJSON_ArrayForEach(v, arr)
                        {
                            if (bufs[ns][k] && q < n)
                                bufs[ns][k][q++] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
                        }
                    }
                    ser[ns] = (svg_series){runs[r].variant, bufs[ns][0], bufs[ns][1],
                                           bufs[ns][2], bufs[ns][3], n};
                    if (bufs[ns][0] && bufs[ns][1] && bufs[ns][2] && bufs[ns][3])
                        ns++;
                }
                cJSON_Delete(j);
            }
            char title[128], name[64];
            snprintf(title, sizeof title, "%s, layer %d (%s mode, seed 0)", placements[pi], l,
                     modes[mode]);
            snprintf(name, sizeof name, "%s-L%d-%s.svg", placements[pi], l, modes[mode]);
            svg_plot p = {title, "edges kept (N)", "KL(clean || subcircuit), nats", 1, 0, 0, 0};
            if (ns > 0 && cli_join(path, dir, name) == 0)
                svg_plot_write(path, &p, ser, ns);
            for (int q = 0; q < N_RUNS; q++)
                for (int k = 0; k < 4; k++)
                    free(bufs[q][k]);
        }
    return 0;
}

static int report(const char *out, const stages *st, const paper_args *a, int n_seeds)
{
    static scores sc[2][MAX_SEEDS][N_RUNS];
    char seed_dir[CLI_PATH_LEN], name[64], path[CLI_PATH_LEN];
    strbuf md = {0}, csv = {0};
    sb_printf(&md, "# SCALAR, reproduced with libscalar\n\n");
    sb_printf(&md, "`scalar paper` on %s, %d seed(s), %s sizes. Definitions: SPEC.md section 3 and "
            "docs/evaluator.md; parity mode reproduces the reference's quirks, clean mode "
            "fixes them. The model is shared by every seed; seeds vary the SAEs.\n",
       a->corpus ? a->corpus : "the default corpus", n_seeds,
       a->quick ? "quick (demo)" : "SPEC.md's");
    sb_printf(&csv, "mode,table,placement,variant,layer,mean,se,paper\n");
    for (int mode = 0; mode < 2; mode++) {
        int wanted = !a->modes || strstr(a->modes, modes[mode]);
        if (!wanted)
            continue;
        for (int s = 0; s < n_seeds; s++) {
            snprintf(name, sizeof name, "seed-%d", s);
            cli_join(seed_dir, out, name);
            for (int r = 0; r < N_RUNS; r++) {
                char run_dir[CLI_PATH_LEN], sub[64];
                snprintf(sub, sizeof sub, "%s-%s", runs[r].placement, runs[r].variant);
                cli_join(run_dir, seed_dir, sub);
                read_scores(&sc[mode][s][r], run_dir, &runs[r], mode);
            }
        }
        tables(&md, &csv, sc[mode], n_seeds, mode);
        snprintf(name, sizeof name, "seed-0");
        cli_join(seed_dir, out, name);
        plots(out, seed_dir, mode);
        sb_printf(&md, "\nPlots: `plots/PLACEMENT-LLAYER-%s.svg` (seed 0, every variant, 95%% "
                "bootstrap bands).\n", modes[mode]);
    }
    sb_printf(&md, "\n## Wall time per stage\n\n| stage | seconds |\n|---|---|\n");
    const cJSON *e;
    cJSON_ArrayForEach(e, st->json)
    {
        sb_printf(&md, "| %s | %.0f |\n", e->string, stage_seconds(st, e->string));
    }
    int rc = CLI_OK;
    if (md.oom || csv.oom || !md.p || !csv.p || cli_join(path, out, "paper.md") || cli_write_atomic(path, md.p) ||
        cli_join(path, out, "tables.csv") || cli_write_atomic(path, csv.p)) {
        fprintf(stderr, "scalar: " CMD ": cannot write %s/paper.md or tables.csv\n", out);
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK)
        fputs(md.p, stdout);
    sb_free(&md);
    sb_free(&csv);
    return rc;
}

static int parse_args(paper_args *a, int argc, char **argv)
{
    const cli_command *cmd = &cli_cmd_paper;
    memset(a, 0, sizeof *a);
    a->seeds = 3;
    a->attr_seqs = 576;
    a->eval_seqs = 50;
    a->bootstrap = 1000;
    a->jsae_steps = 20000;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(o))
            return cli_print_help(cmd) == CLI_OK ? -1 : CLI_FAIL;
        if (strcmp(o, "--quick") == 0) {
            a->quick = 1;
            a->seeds = 1;
            a->attr_seqs = 48;
            a->eval_seqs = 4;
            a->bootstrap = 200;
            a->sae_steps = 200;
            a->jsae_steps = 200;
            continue;
        }
        if (!v)
            return cli_usage_error(cmd, "%s needs a value or is unknown", o);
        CLI_STR_OPT(cmd, "--corpus", corpus)
        CLI_STR_OPT(cmd, "--out", out)
        CLI_STR_OPT(cmd, "--model", model)
        CLI_STR_OPT(cmd, "--modes", modes)
        CLI_INT_OPT(cmd, "--seeds", seeds, 1, MAX_SEEDS)
        CLI_INT_OPT(cmd, "--attr-seqs", attr_seqs, 1, INT64_C(1) << 30)
        CLI_INT_OPT(cmd, "--eval-seqs", eval_seqs, 1, INT64_C(1) << 30)
        CLI_INT_OPT(cmd, "--bootstrap", bootstrap, 0, 1000000)
        CLI_INT_OPT(cmd, "--sae-steps", sae_steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(cmd, "--jsae-steps", jsae_steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(cmd, "--seq", seq, 1, 1 << 20)
        CLI_INT_OPT(cmd, "--batch", batch, 1, 1 << 20)
        return cli_usage_error(cmd, "unknown option %s", o);
    }
    if (!a->out)
        return cli_usage_error(cmd, "--out DIR is required");
    if (a->modes && strcmp(a->modes, "parity") && strcmp(a->modes, "clean") &&
        strcmp(a->modes, "parity,clean") && strcmp(a->modes, "clean,parity"))
        return cli_usage_error(cmd, "--modes must be parity, clean or parity,clean");
    return CLI_OK;
}

static int run(const cli_global *g, int argc, char **argv)
{
    paper_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_make_dirs(a.out) != 0) {
        fprintf(stderr, "scalar: " CMD ": cannot create %s\n", a.out);
        return CLI_FAIL;
    }
    stages st;
    if (stages_load(&st, a.out) != 0) {
        fprintf(stderr, "scalar: " CMD ": cannot read %s/stages.json\n", a.out);
        return CLI_FAIL;
    }
    char model_dir[CLI_PATH_LEN];
    if (a.model)
        snprintf(model_dir, sizeof model_dir, "%s", a.model);
    else if (cli_join(model_dir, a.out, "model"))
        rc = CLI_FAIL;
    if (rc == CLI_OK && !a.model)
        rc = stage_model(&st, g, &a, model_dir);
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_dataset *ds = NULL;
    if (rc == CLI_OK)
        rc = cli_ctx_create(&ctx, g, CMD);
    if (rc == CLI_OK && scalar_model_load(&m, ctx, model_dir) != SCALAR_OK)
        rc = cli_fail(CMD);
    if (rc == CLI_OK)
        rc = cli_corpus_load(&ds, ctx, a.corpus, CMD);
    if (rc == CLI_OK) {
        scalar_model_config mc;
        scalar_model_config_init(&mc, sizeof mc);
        scalar_model_get_config(m, &mc);
        a.n_layer = mc.n_layer;
    }
    for (int64_t s = 0; rc == CLI_OK && s < a.seeds; s++)
        for (int r = 0; rc == CLI_OK && r < N_RUNS; r++) {
            char dir[CLI_PATH_LEN], sub[96], name[128];
            snprintf(sub, sizeof sub, "seed-%lld/%s-%s", (long long)s, runs[r].placement,
                     runs[r].variant);
            if (cli_join(dir, a.out, sub)) {
                rc = CLI_FAIL;
                break;
            }
            snprintf(name, sizeof name, "train %s", sub);
            rc = stage_train(&st, g, &a, model_dir, s, &runs[r], dir, name);
            for (int mode = 0; rc == CLI_OK && mode < 2; mode++) {
                if (a.modes && !strstr(a.modes, modes[mode]))
                    continue;
                snprintf(name, sizeof name, "eval %s %s", sub, modes[mode]);
                rc = stage_eval(&st, ctx, m, ds, &a, &runs[r], mode, dir, name);
            }
        }
    if (rc == CLI_OK)
        rc = report(a.out, &st, &a, (int)a.seeds);
    scalar_dataset_free(ds);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    cJSON_Delete(st.json);
    return rc;
}

const cli_command cli_cmd_paper = {
    .name = "paper",
    .args = "--out DIR [--corpus FILE] [--seeds N] [--quick] [options]",
    .summary = "the SCALAR paper's tables: train, evaluate, compare (resumable)",
    .help =
        "Trains the toy model (once) and, for every seed, the SAEs of SPEC.md: FF layer\n"
        "TopK and JSAE (lambda 1.8e-3, 1.2e-3, 3.3e-3, 2.2e-3 for layers 0-3), FF block\n"
        "and transformer block TopK, Staircase (share, detach) and noshare; evaluates\n"
        "every pair in parity and clean mode (scalar eval); writes SPEC.md section 5's\n"
        "tables with mean +/- standard error across seeds beside the paper's numbers.\n"
        "Interrupted runs resume where they stopped (OUT/stages.json).\n"
        "\n"
        "options:\n"
        "  --out DIR          where everything goes (required)\n"
        "  --corpus FILE      the corpus (default: Debian's fortunes; the paper's is\n"
        "                     ../shared/data/tinyshakespeare.txt)\n"
        "  --seeds N          SAE seeds (3)\n"
        "  --model DIR        reuse a trained model instead of training one\n"
        "  --quick            demo sizes: one seed, quick model, 200-step SAE runs, 48\n"
        "                     attribution and 4 curve windows, 200 bootstrap resamples\n"
        "  --modes M          parity, clean or parity,clean (default both)\n"
        "  --sae-steps N      steps of every train-sae run (default: train-sae's)\n"
        "  --jsae-steps N     steps of the JSAE runs (20000; --quick: 200)\n"
        "  --attr-seqs N --eval-seqs N --bootstrap R   as in scalar eval\n"
        "  --seq T --batch B  window length and batch of the SAE runs and evaluations\n"
        "                     (default: train-sae's and eval's, 128)\n"
        "\n"
        "output: OUT/paper.md (the report, also on stdout), OUT/tables.csv, OUT/plots/,\n"
        "OUT/model/, OUT/seed-S/PLACEMENT-VARIANT/ (train-sae runs with their\n"
        "eval-PLACEMENT-MODE/ results), OUT/stages.json (wall time per stage).\n"
        "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
