/*
 * cmd_train_model.c - `scalar train-model`: train the toy GPT-2 on a corpus,
 * with a progress line, periodic validation, the best-validation model, atomic
 * checkpoints and a bit-for-bit --resume.
 *
 * OUT/
 *   config.json, model.safetensors   the model with the best validation loss
 *   log.csv                          step,train_loss,val_loss,lr,tokens_per_s,elapsed_s
 *   checkpoint.json                  {"dir": "ckpt-000500"}: the latest complete checkpoint
 *   ckpt-000500/                     model, optimizer.safetensors, state.json
 * A checkpoint folder is complete before checkpoint.json (written atomically)
 * names it; older folders are removed afterwards.  A kill at any moment leaves
 * either the old or the new checkpoint, never half of one.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_cli.h"
#include "run_dir.h"

#define CMD "train-model"
#define PATH_LEN CLI_PATH_LEN

typedef struct train_args {
    const char *corpus, *config, *out, *resume, *init;
    int64_t steps, schedule_steps, batch, seq, grad_accum, warmup, val_every, ckpt_every;
    int64_t val_windows;
    float lr, min_lr;
    int quick;
    int steps_given; /* --steps on the command line (a resume may extend a run) */
} train_args;

typedef struct run_state {
    int64_t step, cursor, best_step;
    double best_val;
    double elapsed; /* seconds of training before this process */
} run_state;

static void defaults(train_args *a)
{
    memset(a, 0, sizeof *a);
    a->config = "toy";
    a->steps = 10000;
    a->batch = 128;
    a->seq = 128;
    a->grad_accum = 1;
    a->warmup = 1000;
    a->val_every = 250;
    a->ckpt_every = 500;
    a->lr = 1e-3f;
    a->min_lr = 1e-5f;
}

/* --quick: the demo size, a few minutes on 2 cores. */
static void quick(train_args *a)
{
    a->steps = 600;
    a->batch = 32;
    a->warmup = 60;
    a->val_every = 100;
    a->ckpt_every = 200;
    a->val_windows = 256;
    a->lr = 2e-3f;
    a->min_lr = 1e-4f;
}

static int parse_args(train_args *a, int argc, char **argv)
{
    defaults(a);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            quick(a);
            a->quick = 1;
        }
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--quick") == 0)
            continue;
        if (strcmp(o, "--steps") == 0)
            a->steps_given = 1;
        if (!v)
            return cli_usage_error(&cli_cmd_train_model, "%s needs a value or is unknown", o);
        CLI_STR_OPT(&cli_cmd_train_model, "--corpus", corpus)
        CLI_STR_OPT(&cli_cmd_train_model, "--config", config)
        CLI_STR_OPT(&cli_cmd_train_model, "--out", out)
        CLI_STR_OPT(&cli_cmd_train_model, "--resume", resume)
        CLI_STR_OPT(&cli_cmd_train_model, "--init", init)
        CLI_INT_OPT(&cli_cmd_train_model, "--steps", steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_model, "--schedule-steps", schedule_steps, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_model, "--batch", batch, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_model, "--seq", seq, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_model, "--grad-accum", grad_accum, 1, 1 << 20)
        CLI_INT_OPT(&cli_cmd_train_model, "--warmup", warmup, 0, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_model, "--val-every", val_every, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_model, "--checkpoint-every", ckpt_every, 1, INT64_C(1) << 40)
        CLI_INT_OPT(&cli_cmd_train_model, "--val-windows", val_windows, 0, INT64_C(1) << 40)
        CLI_F_OPT(&cli_cmd_train_model, "--lr", lr)
        CLI_F_OPT(&cli_cmd_train_model, "--min-lr", min_lr)
        return cli_usage_error(&cli_cmd_train_model, "unknown option %s", o);
    }
    if (!a->schedule_steps)
        a->schedule_steps = a->steps;
    if (a->resume && a->out && strcmp(a->resume, a->out) != 0)
        return cli_usage_error(&cli_cmd_train_model, "--resume DIR continues in DIR; drop --out");
    if (a->resume)
        a->out = a->resume;
    if (!a->out)
        return cli_usage_error(&cli_cmd_train_model, "--out DIR is required");
    return CLI_OK;
}

static int save_state(const char *dir, const run_state *s, const train_args *a)
{
    cJSON *o = cJSON_CreateObject();
    char path[PATH_LEN];
    if (!o)
        return -1;
    cJSON_AddNumberToObject(o, "step", (double)s->step);
    cJSON_AddNumberToObject(o, "cursor", (double)s->cursor);
    cJSON_AddNumberToObject(o, "best_step", (double)s->best_step);
    if (isfinite(s->best_val))
        cJSON_AddNumberToObject(o, "best_val", s->best_val);
    cJSON_AddNumberToObject(o, "elapsed_s", s->elapsed);
    cJSON_AddNumberToObject(o, "steps", (double)a->steps);
    cJSON_AddNumberToObject(o, "schedule_steps", (double)a->schedule_steps);
    cJSON_AddNumberToObject(o, "batch", (double)a->batch);
    cJSON_AddNumberToObject(o, "seq", (double)a->seq);
    cJSON_AddNumberToObject(o, "grad_accum", (double)a->grad_accum);
    cJSON_AddNumberToObject(o, "warmup", (double)a->warmup);
    cJSON_AddNumberToObject(o, "lr", (double)a->lr);
    cJSON_AddNumberToObject(o, "min_lr", (double)a->min_lr);
    cJSON_AddNumberToObject(o, "val_every", (double)a->val_every);
    cJSON_AddNumberToObject(o, "val_windows", (double)a->val_windows);
    cJSON_AddStringToObject(o, "corpus", a->corpus ? a->corpus : "(fortunes)");
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    int rc = text && cli_join(path, dir, "state.json") == 0 ? cli_write_atomic(path, text) : -1;
    cJSON_free(text);
    return rc;
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

/* Read state.json of a checkpoint; the run's settings come from it too. */
static int load_state(const char *dir, run_state *s, train_args *a)
{
    char path[PATH_LEN];
    if (cli_join(path, dir, "state.json"))
        return -1;
    char *text = cli_read_file(path);
    cJSON *o = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!o) {
        fprintf(stderr, "scalar: " CMD ": cannot read %s\n", path);
        return -1;
    }
    int ok = 1;
    s->step = (int64_t)num(o, "step", &ok);
    s->cursor = (int64_t)num(o, "cursor", &ok);
    s->best_step = (int64_t)num(o, "best_step", &ok);
    int has_best = 1;
    s->best_val = num(o, "best_val", &has_best);
    if (!has_best)
        s->best_val = NAN;
    static char corpus[PATH_LEN];
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "corpus");
    if (!a->corpus && cJSON_IsString(c) && strcmp(c->valuestring, "(fortunes)") != 0) {
        snprintf(corpus, sizeof corpus, "%s", c->valuestring);
        a->corpus = corpus;
    }
    s->elapsed = num(o, "elapsed_s", &ok);
    int64_t saved_steps = (int64_t)num(o, "steps", &ok);
    if (!a->steps_given)
        a->steps = saved_steps;
    a->schedule_steps = (int64_t)num(o, "schedule_steps", &ok);
    a->batch = (int64_t)num(o, "batch", &ok);
    a->seq = (int64_t)num(o, "seq", &ok);
    a->grad_accum = (int64_t)num(o, "grad_accum", &ok);
    a->warmup = (int64_t)num(o, "warmup", &ok);
    a->lr = (float)num(o, "lr", &ok);
    a->min_lr = (float)num(o, "min_lr", &ok);
    a->val_every = (int64_t)num(o, "val_every", &ok);
    a->val_windows = (int64_t)num(o, "val_windows", &ok);
    cJSON_Delete(o);
    if (!ok || s->step < 0 || s->cursor < 0 || a->batch < 1 || a->seq < 1 || a->grad_accum < 1 ||
        a->val_every < 1) {
        fprintf(stderr, "scalar: " CMD ": %s is missing a field or has a bad value\n", path);
        return -1;
    }
    return 0;
}

static int checkpoint(const char *out, scalar_model *m, scalar_model_trainer *t,
                      const run_state *s, const train_args *a)
{
    char name[64], dir[PATH_LEN], path[PATH_LEN];
    snprintf(name, sizeof name, "ckpt-%06lld", (long long)s->step);
    if (cli_join(dir, out, name))
        return -1;
    cli_remove_dir(dir); /* a leftover of a killed run at this very step */
    if (scalar_model_save(m, dir) != SCALAR_OK || cli_join(path, dir, "optimizer.safetensors") ||
        scalar_model_trainer_save(t, path) != SCALAR_OK)
        return cli_fail(CMD), -1;
    if (save_state(dir, s, a))
        return fprintf(stderr, "scalar: " CMD ": cannot write %s/state.json\n", dir), -1;
    return cli_commit_checkpoint(out, name, CMD);
}

static void progress(const run_state *s, const train_args *a, float loss, double val,
                     double tok_s, double elapsed)
{
    char eta[32], el[32];
    double left = tok_s > 0 ? (double)(a->steps - s->step) * (double)(a->batch * a->seq *
                              a->grad_accum) / tok_s : 0;
    cli_format_duration(eta, sizeof eta, left);
    cli_format_duration(el, sizeof el, elapsed);
    fprintf(stderr, "\rstep %lld/%lld  loss %.4f  val %.4f  %.1fk tok/s  %s  ETA %s   ",
            (long long)s->step, (long long)a->steps, (double)loss, val, tok_s / 1000.0, el, eta);
    fflush(stderr);
}

static int train(scalar_ctx *ctx, train_args *a, run_state *s, scalar_model *m,
                 const scalar_dataset *ds)
{
    scalar_model_trainer_options o;
    scalar_model_trainer *t = NULL;
    scalar_model_workspace *eval_ws = NULL;
    int rc = CLI_FAIL;
    char path[PATH_LEN];
    scalar_model_trainer_options_init(&o, sizeof o);
    o.batch = a->batch;
    o.seq = a->seq;
    o.grad_accum = a->grad_accum;
    o.warmup_steps = a->warmup;
    o.max_steps = a->schedule_steps;
    o.lr = a->lr;
    o.min_lr = a->min_lr;
    int64_t n_tok = a->grad_accum * a->batch * a->seq;
    int32_t *x = malloc((size_t)n_tok * sizeof *x), *y = malloc((size_t)n_tok * sizeof *y);
    FILE *log = NULL;
    if (!x || !y) {
        fprintf(stderr, "scalar: " CMD ": out of memory\n");
        goto out;
    }
    if (scalar_model_trainer_create(&t, m, &o) != SCALAR_OK ||
        scalar_model_workspace_create(&eval_ws, m, a->batch, a->seq, 0) != SCALAR_OK) {
        rc = cli_fail(CMD);
        goto out;
    }
    if (s->step > 0) {
        char dir[PATH_LEN];
        if (cli_current_checkpoint(a->out, dir) || cli_join(path, dir, "optimizer.safetensors") ||
            scalar_model_trainer_load(t, path) != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
    }
    log = cli_open_log(a->out, "step,train_loss,val_loss,lr,tokens_per_s,elapsed_s\n", s->step);
    if (!log) {
        fprintf(stderr, "scalar: " CMD ": cannot write %s/log.csv: %s\n", a->out, strerror(errno));
        goto out;
    }
    int show = cli_progress_enabled();
    double t0 = cli_now(), last_val = s->best_val;
    int64_t first_step = s->step;
    while (s->step < a->steps) {
        for (int64_t i = 0; i < a->grad_accum; i++)
            if (scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &s->cursor, a->batch, a->seq,
                                     x + i * a->batch * a->seq,
                                     y + i * a->batch * a->seq) != SCALAR_OK) {
                rc = cli_fail(CMD);
                goto out;
            }
        float loss = 0.0f, lr = scalar_model_trainer_lr(t, s->step);
        if (scalar_model_trainer_step(t, x, y, &loss, NULL) != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
        s->step++;
        double now = cli_now(), elapsed = s->elapsed + (now - t0);
        double tok_s = (double)(s->step - first_step) * (double)n_tok / (now - t0);
        double val = NAN;
        if (s->step % a->val_every == 0 || s->step == a->steps) {
            if (cli_eval_loss(m, eval_ws, ds, SCALAR_SPLIT_VAL, a->batch, a->seq, a->val_windows,
                              &val) != SCALAR_OK) {
                rc = cli_fail(CMD);
                goto out;
            }
            last_val = val;
            if (!(val >= s->best_val)) { /* also when best_val is NaN (none yet) */
                s->best_val = val;
                s->best_step = s->step;
                if (scalar_model_save(m, a->out) != SCALAR_OK) {
                    rc = cli_fail(CMD);
                    goto out;
                }
            }
        }
        if (isnan(val))
            fprintf(log, "%lld,%.6f,,%.8g,%.1f,%.2f\n", (long long)s->step, (double)loss,
                    (double)lr, tok_s, elapsed);
        else
            fprintf(log, "%lld,%.6f,%.6f,%.8g,%.1f,%.2f\n", (long long)s->step, (double)loss,
                    val, (double)lr, tok_s, elapsed);
        if (show)
            progress(s, a, loss, last_val, tok_s, elapsed);
        if (s->step % a->ckpt_every == 0 || s->step == a->steps) {
            fflush(log);
            run_state c = *s;
            c.elapsed = elapsed;
            if (checkpoint(a->out, m, t, &c, a))
                goto out;
        }
    }
    if (show)
        fputc('\n', stderr);
    double total = s->elapsed + (cli_now() - t0);
    char el[32];
    cli_format_duration(el, sizeof el, total);
    printf("trained %lld steps in %s; best val loss %.4f nats/token at step %lld; model in %s\n",
           (long long)s->step, el, s->best_val, (long long)s->best_step, a->out);
    rc = CLI_OK;
out:
    if (log)
        fclose(log);
    free(x);
    free(y);
    scalar_model_workspace_free(eval_ws);
    scalar_model_trainer_free(t);
    (void)ctx;
    return rc;
}

static int run(const cli_global *g, int argc, char **argv)
{
    train_args a;
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i]))
            return cli_print_help(&cli_cmd_train_model);
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_OK)
        return rc;
    scalar_ctx *ctx = NULL;
    scalar_dataset *ds = NULL;
    scalar_model *m = NULL;
    run_state s = {0, 0, 0, NAN, 0};
    if ((rc = cli_ctx_create(&ctx, g, CMD)) != CLI_OK)
        return rc;
    if (a.resume) {
        char dir[PATH_LEN];
        if (cli_current_checkpoint(a.out, dir)) {
            fprintf(stderr, "scalar: " CMD ": %s has no checkpoint.json to resume from\n", a.out);
            rc = CLI_FAIL;
            goto out;
        }
        if (load_state(dir, &s, &a)) {
            rc = CLI_FAIL;
            goto out;
        }
        if (scalar_model_load(&m, ctx, dir) != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
    } else {
        if (cli_make_dirs(a.out) != 0) {
            fprintf(stderr, "scalar: " CMD ": cannot create %s: %s\n", a.out, strerror(errno));
            rc = CLI_FAIL;
            goto out;
        }
        scalar_status st;
        if (a.init) {
            st = scalar_model_load(&m, ctx, a.init);
        } else {
            scalar_model_config c;
            scalar_model_config_init(&c, sizeof c);
            st = scalar_model_config_preset(&c, a.config);
            if (st == SCALAR_OK)
                st = scalar_model_create(&m, ctx, &c);
        }
        char init_dir[PATH_LEN];
        if (st == SCALAR_OK && cli_join(init_dir, a.out, "init") == 0)
            st = scalar_model_save(m, init_dir); /* the starting point, for reference runs */
        if (st != SCALAR_OK) {
            rc = cli_fail(CMD);
            goto out;
        }
    }
    if ((rc = cli_corpus_load(&ds, ctx, a.corpus, CMD)) != CLI_OK)
        goto out;
    rc = train(ctx, &a, &s, m, ds);
out:
    scalar_dataset_free(ds);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_train_model = {
    .name = "train-model",
    .args = "--out DIR [--corpus FILE] [--config toy|gpt2] [--quick] [options] | --resume DIR "
            "[--steps N]",
    .summary = "train a GPT-2-style model on a text corpus",
    .help =
        "Trains with SPEC.md's recipe: AdamW (0.9, 0.95), weight decay 0.1 on matrices,\n"
        "linear warmup then cosine to --min-lr, global gradient-norm clip 1.0, the\n"
        "sequential loader over the first 90% of the corpus (rounded down to 256\n"
        "tokens), validation on the rest.  Without --corpus the corpus is the English\n"
        "text of Debian's fortunes package (`make deps` installs it), files in sorted\n"
        "order.  For Tiny Shakespeare: --corpus ../shared/data/tinyshakespeare.txt.\n"
        "\n"
        "options:\n"
        "  --out DIR             where everything goes (created)\n"
        "  --corpus FILE         text (ASCII tokenizer), .npy or .bin token ids\n"
        "  --config NAME         toy (default, 216,448 parameters) or gpt2\n"
        "  --init DIR            start from a saved model instead of a fresh one\n"
        "  --quick               demo size: 600 steps of 32 x 128, a few minutes on 2 cores\n"
        "  --steps N             optimizer steps (10000)\n"
        "  --schedule-steps N    step where the cosine reaches --min-lr (default: --steps);\n"
        "                        --steps 1000 --schedule-steps 10000 runs the first 1000\n"
        "                        steps of the full recipe\n"
        "  --batch B --seq T     sequences per micro-batch and their length (128, 128)\n"
        "  --grad-accum N        micro-batches per step (1)\n"
        "  --lr X --min-lr X     peak and final learning rate (1e-3, 1e-5)\n"
        "  --warmup N            warmup steps (1000)\n"
        "  --val-every N         validation period in steps (250)\n"
        "  --val-windows N       cap on validation windows of T tokens (0: the whole split)\n"
        "  --checkpoint-every N  checkpoint period in steps (500)\n"
        "  --resume DIR          continue the run in DIR from its last checkpoint, bit\n"
        "                        for bit (settings and corpus path come from the\n"
        "                        checkpoint; --steps N may extend the run)\n"
        "\n"
        "output: DIR/config.json + model.safetensors (best validation loss), log.csv,\n"
        "DIR/init/ (the model before step 1), checkpoint.json + ckpt-N/.  A progress\n"
        "line (step, loss, val, tokens/s, ETA)\n"
        "is drawn on stderr when it is a terminal.\n"
        "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
