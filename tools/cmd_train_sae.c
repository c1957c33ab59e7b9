/*
 * cmd_train_sae.c - `scalar train-sae`: train every SAE of one placement
 * (SPEC.md section 2) on a frozen model's activations, with a progress line,
 * per-group best-validation selection, atomic checkpoints, a bit-for-bit
 * --resume, and the metrics of the best SAEs at the end.
 *
 * OUT/
 *   run.json          settings and the groups: {"dir", "kind": "sae"|"group", hooks, sizes}
 *   sae.G/ | group.G/ the best weights of group G: a one-member group as a SAELens
 *                     folder, a Staircase group in the group layout
 *   log.csv           step,train_loss,val_loss,dead,lr,tokens_per_s,elapsed_s (losses
 *                     summed over SAEs; dead: latents no training token activated
 *                     since the previous validation, summed over SAEs)
 *   results.json      per SAE: hook, d_sae, best step, L0, FVU, MSE, dead, CE, KL;
 *                     and the compound splice of all of them
 *   checkpoint.json + ckpt-N/ (group.G/ current weights, optimizer.safetensors, state.json)
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_cli.h"
#include "run_dir.h"
#include "sae_cli.h"

#define CMD "train-sae"
#define PATH_LEN CLI_PATH_LEN
#define MAX_GROUPS 64

typedef struct sae_args {
    const char *model, *corpus, *out, *resume, *placement, *variant, *lambda, *jmode;
    int64_t k, expansion, steps, schedule_steps, warmup, batch, seq, val_every, ckpt_every;
    int64_t val_windows, metrics_windows;
    float lr, min_lr;
    uint64_t seed;
    int steps_given, renorm;
} sae_args;

typedef struct sae_state {
    int64_t step, cursor;
    double elapsed;
    double best_val[MAX_GROUPS];
    int64_t best_step[MAX_GROUPS];
} sae_state;

static void defaults(sae_args *a)
{
    memset(a, 0, sizeof *a);
    a->k = 10;
    a->expansion = 8;
    a->steps = 7500;
    a->warmup = 750;
    a->batch = 128;
    a->seq = 128;
    a->val_every = 250;
    a->ckpt_every = 500;
    a->lr = 1e-3f;
    a->min_lr = 1e-4f;
    a->lambda = "1e-3";
    a->jmode = "sum";
}

/* --quick: the demo size. */
static void quick(sae_args *a)
{
    a->steps = 400;
    a->warmup = 40;
    a->batch = 32;
    a->val_every = 100;
    a->ckpt_every = 200;
    a->val_windows = 128;
    a->metrics_windows = 128;
}

static int parse_args(sae_args *a, int argc, char **argv)
{
    defaults(a);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0)
            quick(a);
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--quick") == 0)
            continue;
        if (strcmp(o, "--renorm-decoder") == 0) {
            a->renorm = 1;
            continue;
        }
        if (strcmp(o, "--steps") == 0)
            a->steps_given = 1;
        if (!v)
            return cli_usage_error(&cli_cmd_train_sae, "%s needs a value or is unknown", o);
        CLI_STR_OPT(&cli_cmd_train_sae, "--model", model)
        CLI_STR_OPT(&cli_cmd_train_sae, "--corpus", corpus)
        CLI_STR_OPT(&cli_cmd_train_sae, "--out", out)
        CLI_STR_OPT(&cli_cmd_train_sae, "--resume", resume)
        CLI_STR_OPT(&cli_cmd_train_sae, "--placement", placement)
        CLI_STR_OPT(&cli_cmd_train_sae, "--variant", variant)
        CLI_STR_OPT(&cli_cmd_train_sae, "--lambda", lambda)
        CLI_STR_OPT(&cli_cmd_train_sae, "--jacobian-mode", jmode)
        CLI_INT_OPT(&cli_cmd_train_sae, "--k", k, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_sae, "--expansion", expansion, 1, 1 << 10)
        CLI_INT_OPT(&cli_cmd_train_sae, "--steps", steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--schedule-steps", schedule_steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--warmup", warmup, 0, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--batch", batch, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_sae, "--seq", seq, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_sae, "--val-every", val_every, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--val-windows", val_windows, 0, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--metrics-windows", metrics_windows, 0, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_sae, "--checkpoint-every", ckpt_every, 1, INT64_C(1) << 40)
        CLI_F_OPT(&cli_cmd_train_sae, "--lr", lr)
        CLI_F_OPT(&cli_cmd_train_sae, "--min-lr", min_lr)
        return cli_usage_error(&cli_cmd_train_sae, "unknown option %s", o);
    }
    if (a->resume && a->out && strcmp(a->resume, a->out) != 0)
        return cli_usage_error(&cli_cmd_train_sae, "--resume DIR continues in DIR; drop --out");
    if (a->resume) {
        a->out = a->resume;
        return CLI_OK; /* the rest comes from DIR/run.json */
    }
    if (!a->out || !a->model || !a->placement || !a->variant)
        return cli_usage_error(&cli_cmd_train_sae, "--model, --placement, --variant and --out "
                               "are required");
    if (strcmp(a->variant, "jsae") == 0 && !a->steps_given)
        a->steps = 20000; /* SPEC.md: JSAE pairs train 20,000 steps */
    if (!a->schedule_steps)
        a->schedule_steps = a->steps;
    return CLI_OK;
}

/* ---- run.json ---- */

static cJSON *args_json(const sae_args *a)
{
    cJSON *o = cJSON_CreateObject();
    char seed[24];
    if (!o)
        return NULL;
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)a->seed);
    cJSON_AddStringToObject(o, "command", CMD);
    cJSON_AddStringToObject(o, "model", a->model);
    cJSON_AddStringToObject(o, "corpus", a->corpus ? a->corpus : "(fortunes)");
    cJSON_AddStringToObject(o, "placement", a->placement);
    cJSON_AddStringToObject(o, "variant", a->variant);
    cJSON_AddNumberToObject(o, "k", (double)a->k);
    cJSON_AddNumberToObject(o, "expansion", (double)a->expansion);
    cJSON_AddNumberToObject(o, "steps", (double)a->steps);
    cJSON_AddNumberToObject(o, "schedule_steps", (double)a->schedule_steps);
    cJSON_AddNumberToObject(o, "warmup", (double)a->warmup);
    cJSON_AddNumberToObject(o, "lr", (double)a->lr);
    cJSON_AddNumberToObject(o, "min_lr", (double)a->min_lr);
    cJSON_AddNumberToObject(o, "batch", (double)a->batch);
    cJSON_AddNumberToObject(o, "seq", (double)a->seq);
    cJSON_AddNumberToObject(o, "val_every", (double)a->val_every);
    cJSON_AddNumberToObject(o, "val_windows", (double)a->val_windows);
    cJSON_AddNumberToObject(o, "metrics_windows", (double)a->metrics_windows);
    cJSON_AddNumberToObject(o, "checkpoint_every", (double)a->ckpt_every);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddStringToObject(o, "lambda", a->lambda);
    cJSON_AddStringToObject(o, "jacobian_mode", a->jmode);
    cJSON_AddBoolToObject(o, "renorm_decoder", a->renorm);
    return o;
}

static int write_json(const char *dir, const char *name, cJSON *o)
{
    char path[PATH_LEN];
    char *text = o ? cJSON_Print(o) : NULL;
    int rc = text && cli_join(path, dir, name) == 0 ? cli_write_atomic(path, text) : -1;
    cJSON_free(text);
    if (rc)
        fprintf(stderr, "scalar: " CMD ": cannot write %s/%s\n", dir, name);
    return rc;
}

static cJSON *read_json(const char *dir, const char *name)
{
    char path[PATH_LEN];
    char *text = cli_join(path, dir, name) == 0 ? cli_read_file(path) : NULL;
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!o)
        fprintf(stderr, "scalar: " CMD ": cannot read %s/%s\n", dir, name);
    return o;
}

static double num(const cJSON *o, const char *key, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        *ok = 0;
        return 0;
    }
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        *ok = 0;
        return "";
    }
    return v->valuestring;
}

/* The settings of a run being resumed (strings point into `o`, kept alive). */
static int args_from_json(sae_args *a, const cJSON *o)
{
    int ok = 1;
    int64_t steps = a->steps;
    a->model = str(o, "model", &ok);
    const char *corpus = str(o, "corpus", &ok);
    a->corpus = strcmp(corpus, "(fortunes)") ? corpus : NULL;
    a->placement = str(o, "placement", &ok);
    a->variant = str(o, "variant", &ok);
    a->k = (int64_t)num(o, "k", &ok);
    a->expansion = (int64_t)num(o, "expansion", &ok);
    a->steps = a->steps_given ? steps : (int64_t)num(o, "steps", &ok);
    a->schedule_steps = (int64_t)num(o, "schedule_steps", &ok);
    a->warmup = (int64_t)num(o, "warmup", &ok);
    a->lr = (float)num(o, "lr", &ok);
    a->min_lr = (float)num(o, "min_lr", &ok);
    a->batch = (int64_t)num(o, "batch", &ok);
    a->seq = (int64_t)num(o, "seq", &ok);
    a->val_every = (int64_t)num(o, "val_every", &ok);
    a->val_windows = (int64_t)num(o, "val_windows", &ok);
    a->metrics_windows = (int64_t)num(o, "metrics_windows", &ok);
    a->ckpt_every = (int64_t)num(o, "checkpoint_every", &ok);
    a->seed = strtoull(str(o, "seed", &ok), NULL, 10);
    a->lambda = str(o, "lambda", &ok);
    a->jmode = str(o, "jacobian_mode", &ok);
    a->renorm = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "renorm_decoder"));
    if (!ok || a->batch < 1 || a->seq < 1 || a->val_every < 1 || a->ckpt_every < 1) {
        fprintf(stderr, "scalar: " CMD ": run.json is missing a field or has a bad value\n");
        return -1;
    }
    return 0;
}

/* ---- checkpoints ---- */

static int save_state(const char *dir, const sae_state *s, int32_t n_groups)
{
    cJSON *o = cJSON_CreateObject(), *bv = cJSON_CreateArray(), *bs = cJSON_CreateArray();
    int rc = -1;
    if (o && bv && bs) {
        cJSON_AddNumberToObject(o, "step", (double)s->step);
        cJSON_AddNumberToObject(o, "cursor", (double)s->cursor);
        cJSON_AddNumberToObject(o, "elapsed_s", s->elapsed);
        for (int32_t g = 0; g < n_groups; g++) {
            cJSON_AddItemToArray(bv, isfinite(s->best_val[g]) ? cJSON_CreateNumber(s->best_val[g])
                                                              : cJSON_CreateNull());
            cJSON_AddItemToArray(bs, cJSON_CreateNumber((double)s->best_step[g]));
        }
        cJSON_AddItemToObject(o, "best_val", bv);
        cJSON_AddItemToObject(o, "best_step", bs);
        bv = bs = NULL;
        rc = write_json(dir, "state.json", o);
    }
    cJSON_Delete(bv);
    cJSON_Delete(bs);
    cJSON_Delete(o);
    return rc;
}

static int load_state(const char *dir, sae_state *s, int32_t n_groups)
{
    cJSON *o = read_json(dir, "state.json");
    if (!o)
        return -1;
    int ok = 1;
    s->step = (int64_t)num(o, "step", &ok);
    s->cursor = (int64_t)num(o, "cursor", &ok);
    s->elapsed = num(o, "elapsed_s", &ok);
    const cJSON *bv = cJSON_GetObjectItemCaseSensitive(o, "best_val");
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(o, "best_step");
    ok = ok && cJSON_GetArraySize(bv) == n_groups && cJSON_GetArraySize(bs) == n_groups;
    for (int32_t g = 0; ok && g < n_groups; g++) {
        const cJSON *v = cJSON_GetArrayItem(bv, g), *st = cJSON_GetArrayItem(bs, g);
        s->best_val[g] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        s->best_step[g] = cJSON_IsNumber(st) ? (int64_t)st->valuedouble : 0;
    }
    cJSON_Delete(o);
    if (!ok || s->step < 0 || s->cursor < 0) {
        fprintf(stderr, "scalar: " CMD ": %s/state.json is missing a field or has a bad value\n",
                dir);
        return -1;
    }
    return 0;
}

static int checkpoint(const char *out, const sae_set *set, scalar_sae_trainer *t,
                      const sae_state *s)
{
    char name[64], dir[PATH_LEN], path[PATH_LEN], sub[32];
    snprintf(name, sizeof name, "ckpt-%06lld", (long long)s->step);
    if (cli_join(dir, out, name))
        return -1;
    cli_remove_dir(dir); /* a leftover of a killed run at this very step */
    if (cli_make_dirs(dir) != 0)
        return fprintf(stderr, "scalar: " CMD ": cannot create %s\n", dir), -1;
    for (int32_t g = 0; g < set->n_groups; g++) {
        snprintf(sub, sizeof sub, "group.%d", (int)g);
        if (cli_join(path, dir, sub) || scalar_sae_group_save(set->groups[g], path) != SCALAR_OK)
            return cli_fail(CMD), -1;
    }
    if (cli_join(path, dir, "optimizer.safetensors") || scalar_sae_trainer_save(t, path) != SCALAR_OK)
        return cli_fail(CMD), -1;
    if (save_state(dir, s, set->n_units))
        return -1;
    return cli_commit_checkpoint(out, name, CMD);
}

/* ---- training ---- */

/* Mean validation loss per SAE over the split's windows. */
static scalar_status val_losses(scalar_sae_trainer *t, const scalar_dataset *ds, int64_t B,
                                int64_t T, int64_t max_windows, int32_t n_saes, double *out,
                                int32_t n_pairs, double *pens)
{
    int64_t n_tok = 0;
    scalar_status st = scalar_dataset_n_tokens(ds, SCALAR_SPLIT_VAL, &n_tok);
    int64_t n_win = n_tok > 0 ? n_tok / T : 0;
    if (max_windows > 0 && n_win > max_windows)
        n_win = max_windows;
    if (st == SCALAR_OK && n_win < 1)
        return scalar_last_error_set(SCALAR_E_SHAPE, "the validation split is shorter than one "
                                     "window");
    int32_t *ids = malloc((size_t)(B * T) * sizeof *ids);
    float *l = malloc((size_t)(n_saes + n_pairs + 1) * sizeof *l), *pl = l + n_saes;
    if (!ids || !l) {
        free(ids), free(l);
        return scalar_last_error_set(SCALAR_E_NOMEM, "out of memory");
    }
    for (int32_t i = 0; i < n_saes; i++)
        out[i] = 0.0;
    for (int32_t p = 0; p < n_pairs; p++)
        pens[p] = 0.0;
    for (int64_t w0 = 0; st == SCALAR_OK && w0 < n_win; w0 += B) {
        int64_t b = n_win - w0 < B ? n_win - w0 : B;
        st = scalar_dataset_tokens(ds, SCALAR_SPLIT_VAL, w0 * T, b * T, ids);
        if (st == SCALAR_OK)
            st = scalar_sae_trainer_evaluate(t, ids, b, T, l);
        for (int32_t i = 0; st == SCALAR_OK && i < n_saes; i++)
            out[i] += (double)l[i] * (double)b / (double)n_win;
        if (st == SCALAR_OK && n_pairs)
            st = scalar_sae_trainer_jacobian_penalties(t, pl);
        for (int32_t p = 0; st == SCALAR_OK && p < n_pairs; p++)
            pens[p] += (double)pl[p] * (double)b / (double)n_win;
    }
    free(ids), free(l);
    return st;
}

static void progress(const sae_state *s, const sae_args *a, double loss, double val,
                     double tok_s, double elapsed)
{
    char eta[32], el[32];
    double left = tok_s > 0 ? (double)(a->steps - s->step) * (double)(a->batch * a->seq) / tok_s
                            : 0;
    cli_format_duration(eta, sizeof eta, left);
    cli_format_duration(el, sizeof el, elapsed);
    fprintf(stderr, "\rstep %lld/%lld  loss %.4f  val %.4f  %.1fk tok/s  %s  ETA %s   ",
            (long long)s->step, (long long)a->steps, loss, val, tok_s / 1000.0, el, eta);
    fflush(stderr);
}

/* A new best for group g: save it to OUT/<its dir>. */
static int save_best(const char *out, const sae_set *set, int32_t g)
{
    char path[PATH_LEN];
    if (cli_join(path, out, set->dirs[g]))
        return -1;
    return sae_set_save_group(set, g, path) == SCALAR_OK ? 0 : (cli_fail(CMD), -1);
}

static int train(const sae_args *a, sae_state *s, const scalar_model *m, sae_set *set,
                 const scalar_dataset *ds)
{
    scalar_sae_trainer_options o;
    scalar_sae_trainer *t = NULL;
    int rc = CLI_FAIL;
    char path[PATH_LEN];
    scalar_sae_trainer_options_init(&o, sizeof o);
    o.warmup_steps = a->warmup;
    o.max_steps = a->schedule_steps;
    o.lr = a->lr;
    o.min_lr = a->min_lr;
    o.renorm_decoder = a->renorm;
    int64_t n_tok = a->batch * a->seq;
    int32_t n_saes = set->n_saes;
    int32_t *x = malloc((size_t)n_tok * sizeof *x), *y = malloc((size_t)n_tok * sizeof *y);
    float *losses = malloc((size_t)n_saes * sizeof *losses);
    int64_t *dead = malloc((size_t)n_saes * sizeof *dead);
    double *val = malloc((size_t)n_saes * sizeof *val), pens[SAE_SET_MAX_GROUPS];
    float pen_step[SAE_SET_MAX_GROUPS];
    FILE *log = NULL;
    if (!x || !y || !losses || !val || !dead) {
        fprintf(stderr, "scalar: " CMD ": out of memory\n");
        goto out;
    }
    if (scalar_sae_trainer_create(&t, m, set->groups, set->n_groups, n_tok, &o) != SCALAR_OK) {
        rc = cli_fail(CMD);
        goto out;
    }
    if (sae_set_add_pairs(set, t, CMD) != CLI_OK)
        goto out;
    if (s->step > 0) {
        char dir[PATH_LEN];
        if (cli_current_checkpoint(a->out, dir) || cli_join(path, dir, "optimizer.safetensors") ||
            scalar_sae_trainer_load(t, path) != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
    }
    log = cli_open_log(a->out, "step,train_loss,val_loss,dead,lr,tokens_per_s,elapsed_s\n",
                       s->step);
    if (!log) {
        fprintf(stderr, "scalar: " CMD ": cannot write %s/log.csv: %s\n", a->out, strerror(errno));
        goto out;
    }
    int show = cli_progress_enabled();
    double t0 = cli_now(), last_val = NAN;
    int64_t first_step = s->step;
    while (s->step < a->steps) {
        float lr = scalar_sae_trainer_lr(t, s->step);
        if (scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &s->cursor, a->batch, a->seq, x, y) !=
                SCALAR_OK ||
            scalar_sae_trainer_step(t, x, a->batch, a->seq, losses, NULL) != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
        s->step++;
        double loss = 0.0, vsum = NAN;
        for (int32_t i = 0; i < n_saes; i++)
            loss += losses[i];
        if (set->n_pairs && scalar_sae_trainer_jacobian_penalties(t, pen_step) == SCALAR_OK)
            for (int32_t p = 0; p < set->n_pairs; p++)
                loss += pen_step[p]; /* the trained objective: MSEs and penalties */
        double now = cli_now(), elapsed = s->elapsed + (now - t0);
        double tok_s = (double)(s->step - first_step) * (double)n_tok / (now - t0);
        if (s->step % a->val_every == 0 || s->step == a->steps) {
            if (val_losses(t, ds, a->batch, a->seq, a->val_windows, n_saes, val, set->n_pairs,
                           pens) != SCALAR_OK) {
                rc = cli_fail(CMD);
                goto out;
            }
            /* per selection unit: a Staircase group, a JSAE pair (with its penalty) */
            double unit_val[SAE_SET_MAX_GROUPS] = {0};
            for (int32_t g = 0, i = 0; g < set->n_groups; g++)
                for (int32_t j = 0; j < scalar_sae_group_n_members(set->groups[g]); j++, i++)
                    unit_val[set->unit[g]] += val[i];
            for (int32_t p = 0; p < set->n_pairs; p++)
                unit_val[set->unit[set->pair_in[p]]] += pens[p];
            vsum = 0.0;
            for (int32_t u = 0; u < set->n_units; u++) {
                vsum += unit_val[u];
                if (unit_val[u] >= s->best_val[u])
                    continue; /* NaN best_val (none yet) falls through */
                s->best_val[u] = unit_val[u];
                s->best_step[u] = s->step;
                for (int32_t g = 0; g < set->n_groups; g++)
                    if (set->unit[g] == u && save_best(a->out, set, g))
                        goto out;
            }
            last_val = vsum;
        }
        if (isnan(vsum)) {
            fprintf(log, "%lld,%.6f,,,%.8g,%.1f,%.2f\n", (long long)s->step, loss, (double)lr,
                    tok_s, elapsed);
        } else {
            /* latents no training token activated since the last validation */
            int64_t n_dead = 0;
            scalar_sae_trainer_dead_latents(t, dead, 1);
            for (int32_t i = 0; i < n_saes; i++)
                n_dead += dead[i];
            fprintf(log, "%lld,%.6f,%.6f,%lld,%.8g,%.1f,%.2f\n", (long long)s->step, loss, vsum,
                    (long long)n_dead, (double)lr, tok_s, elapsed);
        }
        if (show)
            progress(s, a, loss, last_val, tok_s, elapsed);
        if (s->step % a->ckpt_every == 0 || s->step == a->steps) {
            fflush(log);
            sae_state c = *s;
            c.elapsed = elapsed;
            if (checkpoint(a->out, set, t, &c))
                goto out;
        }
    }
    if (show)
        fputc('\n', stderr);
    char el[32];
    cli_format_duration(el, sizeof el, s->elapsed + (cli_now() - t0));
    printf("trained %d SAEs (%s, %s) for %lld steps in %s; best weights in %s\n", (int)n_saes,
           a->placement, a->variant, (long long)s->step, el, a->out);
    rc = CLI_OK;
out:
    if (log)
        fclose(log);
    free(x), free(y), free(losses), free(val), free(dead);
    scalar_sae_trainer_free(t);
    return rc;
}

/* ---- the command ---- */

static int run(const cli_global *g, int argc, char **argv)
{
    sae_args a;
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i]))
            return cli_print_help(&cli_cmd_train_sae);
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_OK)
        return rc;
    scalar_ctx *ctx = NULL;
    scalar_dataset *ds = NULL;
    scalar_model *m = NULL;
    cJSON *saved = NULL;
    sae_set set;
    memset(&set, 0, sizeof set);
    sae_state s;
    memset(&s, 0, sizeof s);
    for (int i = 0; i < MAX_GROUPS; i++)
        s.best_val[i] = NAN;
    a.seed = g->have_seed ? g->seed : 0;
    if ((rc = cli_ctx_create(&ctx, g, CMD)) != CLI_OK)
        return rc;
    rc = CLI_FAIL;
    char dir[PATH_LEN];
    if (a.resume) {
        if (cli_current_checkpoint(a.out, dir)) {
            fprintf(stderr, "scalar: " CMD ": %s has no checkpoint.json to resume from\n", a.out);
            goto out;
        }
        if (!(saved = read_json(a.out, "run.json")) || args_from_json(&a, saved))
            goto out;
    } else if (cli_make_dirs(a.out) != 0) {
        fprintf(stderr, "scalar: " CMD ": cannot create %s: %s\n", a.out, strerror(errno));
        goto out;
    }
    if (scalar_model_load(&m, ctx, a.model) != SCALAR_OK) {
        rc = cli_fail(CMD);
        goto out;
    }
    scalar_model_config mc;
    scalar_model_config_init(&mc, sizeof mc);
    scalar_model_get_config(m, &mc);
    if (sae_set_plan(&set, &mc, a.placement, a.variant, (int32_t)a.k, (int32_t)a.expansion,
                     a.lambda, a.jmode, CMD) != CLI_OK) {
        rc = CLI_USAGE;
        goto out;
    }
    if (set.n_groups > MAX_GROUPS) {
        fprintf(stderr, "scalar: " CMD ": more than %d groups\n", MAX_GROUPS);
        goto out;
    }
    if (a.resume) {
        if (load_state(dir, &s, set.n_units) || sae_set_load_groups(&set, ctx, dir, CMD) != CLI_OK)
            goto out;
    } else {
        cJSON *o = args_json(&a);
        if (!o || sae_set_create_groups(&set, ctx, a.seed, CMD) != CLI_OK ||
            sae_set_describe(&set, o) != 0 || write_json(a.out, "run.json", o)) {
            cJSON_Delete(o);
            goto out;
        }
        cJSON_Delete(o);
    }
    if ((rc = cli_corpus_load(&ds, ctx, a.corpus, CMD)) != CLI_OK)
        goto out;
    rc = train(&a, &s, m, &set, ds);
    if (rc == CLI_OK)
        rc = sae_metrics_report(ctx, m, ds, a.out, a.seq, a.metrics_windows, CMD);
out:
    sae_set_free(&set);
    cJSON_Delete(saved);
    scalar_dataset_free(ds);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_train_sae = {
    .name = "train-sae",
    .args = "--model DIR --placement ff|mlpblock|block --variant topk|staircase|"
            "staircase-detach|noshare|jsae --out DIR [options] | --resume DIR [--steps N]",
    .summary = "train the SAEs of one placement on a frozen model",
    .help =
        "Trains every SAE of a placement at once on the model's activations of the\n"
        "corpus (SPEC.md section 2): loss = squared error summed over d_in, mean over\n"
        "tokens, summed over SAEs; Adam (0.9, 0.95), linear warmup then cosine to\n"
        "--min-lr; one global gradient-norm clip 1.0; validation on the corpus' last\n"
        "10%; the best weights kept per group (a Staircase group as a whole).\n"
        "\n"
        "placements (L = n_layer, n = --expansion x n_embd latents):\n"
        "  ff        per layer mlp_in -> mlp_out (2L SAEs)\n"
        "  mlpblock  per layer resid_mid -> resid_post (2L SAEs)\n"
        "  block     resid_pre 0 .. L-1 and resid_post L-1 (L+1 SAEs)\n"
        "variants:\n"
        "  topk              independent TopK SAEs of n latents\n"
        "  staircase         one shared dictionary per layer pair (ff, mlpblock: n, 2n)\n"
        "                    or for the whole chain (block: n, 2n, ..., (L+1)n); every\n"
        "                    SAE's gradient reaches its whole prefix (the paper's)\n"
        "  staircase-detach  the same, SAE j trains only its own latents\n"
        "  noshare           independent TopK SAEs with the staircase sizes (the control)\n"
        "  jsae              (ff, mlpblock) per layer a TopK pair trained with the Jacobian\n"
        "                    sparsity penalty lambda * sum |J| / k^2 between the pair's kept\n"
        "                    latents through the MLP (ff) or the whole FF block (mlpblock);\n"
        "                    20,000 steps by default, the pair's best weights kept together\n"
        "\n"
        "options:\n"
        "  --model DIR           the frozen model (train-model's output)\n"
        "  --corpus FILE         its corpus (default: Debian's fortunes, as train-model)\n"
        "  --out DIR             where everything goes (created)\n"
        "  --k N                 latents kept per token (10)\n"
        "  --expansion N         latents per model dimension of the smallest SAE (8)\n"
        "  --steps N             steps of --batch x --seq tokens (7500)\n"
        "  --schedule-steps N    step where the cosine ends (default: --steps)\n"
        "  --warmup N            warmup steps (750)\n"
        "  --lr X --min-lr X     peak and final learning rate (1e-3, 1e-4)\n"
        "  --batch B --seq T     sequences per step and their length (128, 128)\n"
        "  --val-every N         validation period (250)\n"
        "  --val-windows N       cap on validation windows (0: the whole split)\n"
        "  --metrics-windows N   cap on the windows of the final metrics (0: all)\n"
        "  --checkpoint-every N  checkpoint period (500)\n"
        "  --lambda X[,X...]     jsae: the penalty weight, one or one per layer (1e-3; the\n"
        "                        paper's picks for the toy model: 1.8e-3,1.2e-3,3.3e-3,2.2e-3)\n"
        "  --jacobian-mode M     jsae: sum (the reference's: summed over the batch, so lambda\n"
        "                        depends on its size) or mean (per token; lambda x tokens)\n"
        "  --renorm-decoder      rescale decoder rows to unit norm after every step (off,\n"
        "                        as in the reference)\n"
        "  --quick               demo size: 400 steps of 32 x 128, capped validation\n"
        "  --resume DIR          continue the run in DIR from its last checkpoint, bit\n"
        "                        for bit (settings from DIR/run.json; --steps may extend)\n"
        "The global --seed S seeds the initialisation (group g gets seed S + g).\n"
        "\n"
        "output: DIR/run.json, DIR/sae.G/ (SAELens folders) or DIR/group.G/ (Staircase\n"
        "groups) with the best weights, log.csv (at validation steps also the dead\n"
        "latents: none of the training tokens since the last validation activated\n"
        "them), results.json (per SAE: L0, FVU, MSE,\n"
        "dead latents, CE increase and KL spliced alone, and all spliced at once) and\n"
        "the table of them on stdout; checkpoint.json + ckpt-N/.  A progress line is\n"
        "drawn on stderr when it is a terminal.\n"
        "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
