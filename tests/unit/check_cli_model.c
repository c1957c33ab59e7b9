/*
 * check_cli_model.c - the model commands: train-model (progress quiet off a
 * terminal, log, best model, checkpoints, resume bit for bit after SIGKILL),
 * eval-model, generate; train-sae (staircase and topk runs, results, resume
 * bit for bit) and sae-metrics.  Models here are tiny (--init from a model the test
 * makes) so every run takes a second or two.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "suites.h"

#define OK(expr) ck_assert_msg((expr) == SCALAR_OK, "%s: %s", #expr, scalar_last_error())
#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

/* A corpus of ~6000 characters with structure a model can learn. */
static const char *write_corpus(void)
{
    const char *path = test_tmp_path("corpus.txt");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 300; i++)
        fprintf(f, "the cat sat on mat %d. ", i % 7);
    fclose(f);
    return path;
}

/* A tiny ASCII model (vocab 128, context 16) saved to `dir`. */
static void write_tiny_model(const char *dir)
{
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_model_config c;
    OK(scalar_ctx_create(&ctx, NULL));
    scalar_model_config_init(&c, sizeof c);
    c.n_layer = 2;
    c.n_head = 2;
    c.n_embd = 16;
    c.block_size = 16;
    OK(scalar_model_create(&m, ctx, &c));
    OK(scalar_model_save(m, dir));
    scalar_model_free(m);
    scalar_ctx_free(ctx);
}

static int file_exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

#define TRAIN_ARGS(out, init, corpus, steps)                                                       \
    "--threads", "1", "train-model", "--out", out, "--init", init, "--corpus", corpus, "--steps",  \
        steps, "--batch", "4", "--seq", "16", "--warmup", "5", "--lr", "0.01", "--min-lr",         \
        "0.001", "--val-every", "10", "--checkpoint-every", "20"

START_TEST(test_train_model_runs)
{
    const char *corpus = write_corpus();
    char init[1024], out[1024], path[1100];
    snprintf(init, sizeof init, "%s", test_tmp_path("tm_init"));
    snprintf(out, sizeof out, "%s", test_tmp_path("tm/out/nested")); /* parents made too */
    write_tiny_model(init);
    cli_result r = run_cli((const char *[]){TRAIN_ARGS(out, init, corpus, "60"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 60 steps");
    ck_assert_msg(strstr(r.err, "\rstep") == NULL, "progress drawn off a terminal: %s", r.err);
    cli_result_free(&r);
    snprintf(path, sizeof path, "%s/log.csv", out);
    size_t n;
    char *log = (char *)read_all(path, &n);
    log[n] = '\0';
    assert_contains(log, "step,train_loss,val_loss,lr,tokens_per_s,elapsed_s\n");
    assert_contains(log, "\n60,");
    /* the loss fell: first row against the last */
    float first = 0, last = 0;
    ck_assert_int_eq(sscanf(strchr(log, '\n') + 1, "%*d,%f", &first), 1);
    char *tail = log + n - 2;
    while (tail > log && *tail != '\n')
        tail--;
    ck_assert_int_eq(sscanf(tail + 1, "%*d,%f", &last), 1);
    ck_assert_msg(last < 0.6f * first, "loss %g -> %g", (double)first, (double)last);
    free(log);
    snprintf(path, sizeof path, "%s/model.safetensors", out);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/init/model.safetensors", out);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/ckpt-000060/optimizer.safetensors", out);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/ckpt-000040", out);
    ck_assert_msg(!file_exists(path), "old checkpoint kept");
    /* eval-model and generate on the result */
    r = run_cli((const char *[]){"eval-model", "--model", out, "--corpus", corpus, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "val loss ");
    cli_result_free(&r);
    r = run_cli((const char *[]){"generate", "--model", out, "--prompt", "the ", "--tokens", "30",
                                 "--sample-seed", "5", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_uint_eq(strlen(r.out), 4 + 30 + 1);
    cli_result r2 = run_cli((const char *[]){"generate", "--model", out, "--prompt", "the ",
                                             "--tokens", "30", "--sample-seed", "5", NULL});
    ck_assert_str_eq(r.out, r2.out);
    cli_result_free(&r);
    cli_result_free(&r2);
}
END_TEST

/* Kill a run with SIGKILL after its first checkpoint, resume it, and compare
 * the final checkpoint with an uninterrupted run's, byte for byte. */
START_TEST(test_train_model_resume_after_kill)
{
    const char *corpus = write_corpus();
    char init[1024], a[1024], b[1024], pa[1100], pb[1100], ck[1100];
    snprintf(init, sizeof init, "%s", test_tmp_path("rk_init"));
    snprintf(a, sizeof a, "%s", test_tmp_path("rk_a"));
    snprintf(b, sizeof b, "%s", test_tmp_path("rk_b"));
    write_tiny_model(init);
    cli_result r = run_cli((const char *[]){TRAIN_ARGS(a, init, corpus, "400"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);

    const char *cli = getenv("SCALAR_CLI");
    const char *argv[] = {cli, TRAIN_ARGS(b, init, corpus, "400"), NULL};
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    snprintf(ck, sizeof ck, "%s/checkpoint.json", b);
    struct timespec pause = {0, 200000};
    int killed = 0;
    for (int i = 0; i < 200000 && !killed; i++) {
        if (file_exists(ck)) {
            kill(pid, SIGKILL);
            killed = 1;
        } else {
            nanosleep(&pause, NULL);
        }
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert_msg(killed && WIFSIGNALED(ws), "the run ended before it could be killed");
    r = run_cli((const char *[]){"--threads", "1", "train-model", "--resume", b, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 400 steps");
    cli_result_free(&r);
    const char *files[] = {"ckpt-000400/model.safetensors", "ckpt-000400/optimizer.safetensors"};
    for (int i = 0; i < 2; i++) {
        size_t na, nb;
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(da, db, na) == 0, "%s differs after kill + resume", files[i]);
        free(da);
        free(db);
    }
}
END_TEST

/* The first 20 steps of a 40-step schedule, then --resume --steps 40: the same
 * bytes as one 40-step run. */
START_TEST(test_train_model_extend)
{
    const char *corpus = write_corpus();
    char init[1024], a[1024], b[1024], pa[1100], pb[1100];
    snprintf(init, sizeof init, "%s", test_tmp_path("ex_init"));
    snprintf(a, sizeof a, "%s", test_tmp_path("ex_a"));
    snprintf(b, sizeof b, "%s", test_tmp_path("ex_b"));
    write_tiny_model(init);
    cli_result r = run_cli((const char *[]){TRAIN_ARGS(a, init, corpus, "40"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    r = run_cli((const char *[]){TRAIN_ARGS(b, init, corpus, "20"), "--schedule-steps", "40", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 20 steps");
    cli_result_free(&r);
    r = run_cli((const char *[]){"--threads", "1", "train-model", "--resume", b, "--steps", "40",
                                 NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 40 steps");
    cli_result_free(&r);
    size_t na, nb;
    snprintf(pa, sizeof pa, "%s/ckpt-000040/model.safetensors", a);
    snprintf(pb, sizeof pb, "%s/ckpt-000040/model.safetensors", b);
    unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(da, db, na) == 0, "an extended run differs from a whole one");
    free(da);
    free(db);
}
END_TEST

START_TEST(test_model_commands_reject)
{
    cli_result r = run_cli((const char *[]){"train-model", "--steps", "10", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "--out DIR is required");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-model", "--out", test_tmp_path("x"), "--steps", "ten",
                                 NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "bad value for --steps: ten");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-model", "--resume", test_tmp_path("nothing_here"), NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "no checkpoint.json");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-model", "--out", test_tmp_path("y"), "--config", "huge",
                                 NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "known: toy, gpt2");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-model", "--out", test_tmp_path("z"), "--corpus",
                                 test_tmp_path("missing.txt"), NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "missing.txt");
    cli_result_free(&r);
    r = run_cli((const char *[]){"generate", "--model", test_tmp_path("nomodel"), NULL});
    ck_assert_int_eq(r.status, 1);
    cli_result_free(&r);
    r = run_cli((const char *[]){"eval-model", "--model", "m", "--split", "test", NULL});
    ck_assert_int_eq(r.status, 2);
    cli_result_free(&r);
    r = run_cli((const char *[]){"help", "train-model", NULL});
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "tinyshakespeare");
    cli_result_free(&r);
}
END_TEST

/* ---- train-sae, sae-metrics ---- */

#define SAE_ARGS(out, model, corpus, placement, variant, steps)                                    \
    "--threads", "1", "train-sae", "--out", out, "--model", model, "--corpus", corpus,             \
        "--placement", placement, "--variant", variant, "--steps", steps, "--batch", "4",          \
        "--seq", "16", "--k", "4", "--expansion", "2", "--warmup", "5", "--lr", "0.01",          \
        "--min-lr", "0.001", "--val-every", "10", "--checkpoint-every", "20"

/* The first number after `"key": ` in text, or NAN. */
static double json_number(const char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(text, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Staircase on the block placement of a 2-layer model: 3 SAEs in one group
 * (32, 64, 96 latents); the loss falls; the best group loads back; the
 * metrics table and results.json have every SAE. */
START_TEST(test_train_sae_staircase_block)
{
    const char *corpus = write_corpus();
    char model[1024], out[1024], path[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("ts_model"));
    snprintf(out, sizeof out, "%s", test_tmp_path("ts_out"));
    write_tiny_model(model);
    cli_result r = run_cli(
        (const char *[]){SAE_ARGS(out, model, corpus, "block", "staircase", "60"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 3 SAEs (block, staircase) for 60 steps");
    assert_contains(r.out, "blocks.1.hook_resid_post");
    assert_contains(r.out, "all 3 spliced at once: CE +");
    ck_assert_msg(strstr(r.err, "\rstep") == NULL, "progress drawn off a terminal: %s", r.err);
    cli_result_free(&r);
    size_t n;
    snprintf(path, sizeof path, "%s/log.csv", out);
    char *log = (char *)read_all(path, &n);
    log[n] = '\0';
    float first = 0, last = 0;
    ck_assert_int_eq(sscanf(strchr(log, '\n') + 1, "%*d,%f", &first), 1);
    char *tail = log + n - 2;
    while (tail > log && *tail != '\n')
        tail--;
    ck_assert_int_eq(sscanf(tail + 1, "%*d,%f", &last), 1);
    ck_assert_msg(last < 0.7f * first, "SAE loss %g -> %g", (double)first, (double)last);
    free(log);
    scalar_ctx *ctx = NULL;
    scalar_sae_group *g = NULL;
    OK(scalar_ctx_create(&ctx, NULL));
    snprintf(path, sizeof path, "%s/group.0", out);
    OK(scalar_sae_group_load(&g, ctx, path));
    ck_assert_int_eq(scalar_sae_group_n_members(g), 3);
    scalar_sae_group_free(g);
    scalar_ctx_free(ctx);
    snprintf(path, sizeof path, "%s/results.json", out);
    char *res = (char *)read_all(path, &n);
    res[n] = '\0';
    assert_contains(res, "\"hook\":\t\"blocks.0.hook_resid_pre\"");
    assert_contains(res, "\"d_sae\":\t96");
    double fvu = json_number(res, "fvu"), ce = json_number(res, "ce_increase");
    ck_assert_msg(fvu > 0 && fvu < 1.5 && isfinite(ce), "fvu %g, ce_increase %g", fvu, ce);
    free(res);
    snprintf(path, sizeof path, "%s/ckpt-000060/optimizer.safetensors", out);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/ckpt-000040", out);
    ck_assert_msg(!file_exists(path), "old checkpoint kept");
}
END_TEST

/* TopK on the ff placement: SAELens folders; sae-metrics recomputes the same
 * numbers from the saved SAEs. */
START_TEST(test_train_sae_topk_then_sae_metrics)
{
    const char *corpus = write_corpus();
    char model[1024], out[1024], path[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("tk_model"));
    snprintf(out, sizeof out, "%s", test_tmp_path("tk_out"));
    write_tiny_model(model);
    cli_result r =
        run_cli((const char *[]){SAE_ARGS(out, model, corpus, "ff", "topk", "20"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 4 SAEs (ff, topk)");
    char *table = strdup(strstr(r.out, "SAE "));
    cli_result_free(&r);
    scalar_ctx *ctx = NULL;
    OK(scalar_ctx_create(&ctx, NULL));
    for (int i = 0; i < 4; i++) {
        scalar_sae *sae = NULL;
        scalar_sae_config c;
        snprintf(path, sizeof path, "%s/sae.%d", out, i);
        OK(scalar_sae_load(&sae, ctx, path));
        scalar_sae_config_init(&c, sizeof c);
        OK(scalar_sae_get_config(sae, &c));
        ck_assert_int_eq(c.d_sae, 32);
        ck_assert_str_eq(c.hook_name, i % 2 ? (i == 1 ? "blocks.0.hook_mlp_out"
                                                      : "blocks.1.hook_mlp_out")
                                            : (i == 0 ? "blocks.0.hook_mlp_in"
                                                      : "blocks.1.hook_mlp_in"));
        scalar_sae_free(sae);
    }
    scalar_ctx_free(ctx);
    r = run_cli((const char *[]){"--threads", "1", "sae-metrics", out, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_str_eq(strstr(r.out, "SAE "), table);
    cli_result_free(&r);
    free(table);
}
END_TEST

/* 20 steps of a 40-step schedule, then --resume --steps 40: the bytes of one
 * 40-step run (weights and optimizer state). */
START_TEST(test_train_sae_resume_is_bit_identical)
{
    const char *corpus = write_corpus();
    char model[1024], a[1024], b[1024], pa[1100], pb[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("rs_model"));
    snprintf(a, sizeof a, "%s", test_tmp_path("rs_a"));
    snprintf(b, sizeof b, "%s", test_tmp_path("rs_b"));
    write_tiny_model(model);
    cli_result r = run_cli(
        (const char *[]){SAE_ARGS(a, model, corpus, "mlpblock", "staircase-detach", "40"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    r = run_cli((const char *[]){SAE_ARGS(b, model, corpus, "mlpblock", "staircase-detach", "20"),
                                 "--schedule-steps", "40", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    r = run_cli((const char *[]){"--threads", "1", "train-sae", "--resume", b, "--steps", "40",
                                 NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "for 40 steps");
    cli_result_free(&r);
    const char *files[] = {"ckpt-000040/group.0/sae_weights.safetensors",
                           "ckpt-000040/group.1/sae_weights.safetensors",
                           "ckpt-000040/optimizer.safetensors"};
    for (int i = 0; i < 3; i++) {
        size_t na, nb;
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(da, db, na) == 0, "%s differs after a resume", files[i]);
        free(da);
        free(db);
    }
}
END_TEST

/* JSAE on the FF layer: 2 pairs, the penalty in the logged loss, the pairs in
 * run.json; a resumed run is bit-identical. */
START_TEST(test_train_sae_jsae_and_resume)
{
    const char *corpus = write_corpus();
    char model[1024], a[1024], b[1024], pa[1100], pb[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("js_model"));
    snprintf(a, sizeof a, "%s", test_tmp_path("js_a"));
    snprintf(b, sizeof b, "%s", test_tmp_path("js_b"));
    write_tiny_model(model);
    cli_result r = run_cli((const char *[]){SAE_ARGS(a, model, corpus, "ff", "jsae", "40"),
                                            "--lambda", "0.05,0.02", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "trained 4 SAEs (ff, jsae) for 40 steps");
    cli_result_free(&r);
    size_t n;
    snprintf(pa, sizeof pa, "%s/run.json", a);
    char *run = (char *)read_all(pa, &n);
    run[n] = '\0';
    assert_contains(run, "\"jacobian_pairs\"");
    assert_contains(run, "\"path\":\t\"ff_layer\"");
    assert_contains(run, "\"lambda\":\t\"0.05,0.02\"");
    const char *pairs = strstr(run, "jacobian_pairs");
    ck_assert(fabs(json_number(pairs, "lambda") - 0.05) < 1e-6); /* pair 0; pair 1 has 0.02 */
    ck_assert(fabs(json_number(strstr(pairs, "\"layer\":\t1"), "lambda") - 0.02) < 1e-6);
    free(run);
    r = run_cli((const char *[]){SAE_ARGS(b, model, corpus, "ff", "jsae", "20"), "--lambda",
                                 "0.05,0.02", "--schedule-steps", "40", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    r = run_cli((const char *[]){"--threads", "1", "train-sae", "--resume", b, "--steps", "40",
                                 NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    const char *files[] = {"ckpt-000040/group.0/sae_weights.safetensors",
                           "ckpt-000040/group.3/sae_weights.safetensors",
                           "ckpt-000040/optimizer.safetensors"};
    for (int i = 0; i < 3; i++) {
        size_t na, nb;
        snprintf(pa, sizeof pa, "%s/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, files[i]);
        unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
        ck_assert_uint_eq(na, nb);
        ck_assert_msg(memcmp(da, db, na) == 0, "%s differs after a resume", files[i]);
        free(da);
        free(db);
    }
    /* the placement check and a bad lambda list */
    r = run_cli((const char *[]){"train-sae", "--out", test_tmp_path("js_bad"), "--model", model,
                                 "--placement", "block", "--variant", "jsae", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "pairs the ff or mlpblock placement");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-sae", "--out", test_tmp_path("js_bad2"), "--model", model,
                                 "--placement", "ff", "--variant", "jsae", "--lambda", "1,2,3",
                                 NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "one per layer");
    cli_result_free(&r);
}
END_TEST

/* --renorm-decoder: after training, every decoder row has unit norm (without
 * it, SPEC's Kaiming-uniform rows of 16 entries in +-sqrt(6/16) have norms
 * near 1.4). */
START_TEST(test_train_sae_renorm_decoder)
{
    const char *corpus = write_corpus();
    char model[1024], out[1024], path[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("rn_model"));
    snprintf(out, sizeof out, "%s", test_tmp_path("rn_out"));
    write_tiny_model(model);
    cli_result r = run_cli((const char *[]){SAE_ARGS(out, model, corpus, "ff", "topk", "5"),
                                            "--renorm-decoder", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    scalar_ctx *ctx = NULL;
    scalar_sae *sae = NULL;
    OK(scalar_ctx_create(&ctx, NULL));
    snprintf(path, sizeof path, "%s/sae.1", out);
    OK(scalar_sae_load(&sae, ctx, path));
    float W[32 * 16];
    OK(scalar_sae_param_read(sae, "W_dec", W, 32 * 16));
    for (int row = 0; row < 32; row++) {
        double ss = 0.0;
        for (int c = 0; c < 16; c++)
            ss += (double)W[row * 16 + c] * W[row * 16 + c];
        ck_assert_msg(fabs(sqrt(ss) - 1.0) < 1e-5, "row %d has norm %g", row, sqrt(ss));
    }
    scalar_sae_free(sae);
    scalar_ctx_free(ctx);
}
END_TEST

START_TEST(test_sae_commands_reject)
{
    char m[1024];
    snprintf(m, sizeof m, "%s", test_tmp_path("rj_model")); /* test_tmp_path rotates buffers */
    write_tiny_model(m);
    cli_result r = run_cli((const char *[]){"train-sae", "--out", test_tmp_path("rj"), NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "are required");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-sae", "--out", test_tmp_path("rj"), "--model", m,
                                 "--placement", "ff", "--variant", "jsae", "--jacobian-mode",
                                 "max", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "--jacobian-mode max");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-sae", "--out", test_tmp_path("rj"), "--model", m,
                                 "--placement", "attn", "--variant", "topk", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "unknown --placement attn");
    cli_result_free(&r);
    r = run_cli((const char *[]){"train-sae", "--resume", test_tmp_path("rj_none"), NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "no checkpoint.json");
    cli_result_free(&r);
    r = run_cli((const char *[]){"sae-metrics", test_tmp_path("rj_none"), NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "run.json");
    cli_result_free(&r);
    r = run_cli((const char *[]){"help", "train-sae", NULL});
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "staircase-detach");
    cli_result_free(&r);
}
END_TEST

/* ---- eval, paper ---- */

static char *read_text(const char *dir, const char *name)
{
    char path[2600];
    size_t n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *t = (char *)read_all(path, &n);
    t[n] = '\0';
    return t;
}

/* scalar eval of a topk ff run: the table, results.json (mode named), the
 * CSVs and the SVG, in both modes; refusals. */
START_TEST(test_eval_command)
{
    char corpus[1024]; /* test_tmp_path's buffers rotate: keep a copy */
    snprintf(corpus, sizeof corpus, "%s", write_corpus());
    char model[1024], out[1024], ev[1100];
    snprintf(model, sizeof model, "%s", test_tmp_path("ev_model"));
    snprintf(out, sizeof out, "%s", test_tmp_path("ev_out"));
    write_tiny_model(model);
    cli_result r =
        run_cli((const char *[]){SAE_ARGS(out, model, corpus, "ff", "topk", "20"), NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cli_result_free(&r);
    r = run_cli((const char *[]){"--threads", "1", "eval", "--saes", out, "--seq", "16",
                                 "--attr-seqs", "6", "--eval-seqs", "3", "--bootstrap", "50",
                                 NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "SCALAR, FF layer, topk, clean mode (6 x 16 attribution tokens");
    assert_contains(r.out, "\n0         32     32");
    assert_contains(r.out, "\n1         32     32");
    ck_assert_msg(strstr(r.err, "attribution") == NULL, "progress drawn off a terminal: %s",
                  r.err);
    cli_result_free(&r);
    snprintf(ev, sizeof ev, "%s/eval-ff-clean", out);
    char *res = read_text(ev, "results.json");
    assert_contains(res, "\"mode\":\t\"clean\"");
    assert_contains(res, "\"upstream\":\t\"blocks.1.hook_mlp_in\"");
    double s_abs = json_number(res, "s_abs"), s_rel = json_number(res, "s_rel");
    ck_assert_msg(s_abs > 0 && fabs(s_rel - s_abs / 1024.0) < 1e-9 * s_abs, "s_abs %g s_rel %g",
                  s_abs, s_rel);
    free(res);
    char *csv = read_text(ev, "scalar.csv");
    int lines = 0;
    for (char *p = csv; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 3);
    assert_contains(csv, "topk,ff,clean,0,32,32,");
    free(csv);
    char *svg = read_text(ev, "curves.svg");
    ck_assert_msg(strncmp(svg, "<svg", 4) == 0 || strstr(svg, "<svg") != NULL, "no svg");
    assert_contains(svg, "layer 1");
    free(svg);
    /* parity mode: 35 grid points, its own folder */
    r = run_cli((const char *[]){"--threads", "1", "eval", "--saes", out, "--seq", "16",
                                 "--attr-seqs", "4", "--eval-seqs", "2", "--bootstrap", "0",
                                 "--mode", "parity", "--layers", "1", NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "parity mode");
    ck_assert_ptr_null(strstr(r.out, "\n0         32"));
    cli_result_free(&r);
    snprintf(ev, sizeof ev, "%s/eval-ff-parity", out);
    char *cur = read_text(ev, "curves.csv");
    lines = 0;
    for (char *p = cur; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 1 + 35);
    assert_contains(cur, "topk,1,262144,");
    free(cur);
    /* refusals */
    r = run_cli((const char *[]){"eval", "--saes", out, "--path", "bogus", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "--path must be ff, mlpblock or block");
    cli_result_free(&r);
    r = run_cli((const char *[]){"eval", NULL});
    ck_assert_int_eq(r.status, 2);
    cli_result_free(&r);
    r = run_cli((const char *[]){"eval", "--saes", test_tmp_path("ev_none"), NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "run.json");
    cli_result_free(&r);
    r = run_cli((const char *[]){"eval", "--saes", out, "--path", "block", "--seq", "16", NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "no block pair");
    cli_result_free(&r);
}
END_TEST

/* scalar paper on a tiny model: every stage, the report with the paper's
 * numbers beside ours; a second run resumes (skips every stage); a stage
 * dropped from stages.json runs again. */
START_TEST(test_paper_command)
{
    char corpus[1024]; /* test_tmp_path's buffers rotate: keep a copy */
    snprintf(corpus, sizeof corpus, "%s", write_corpus());
    char model[1024], out[1024], path[1200];
    snprintf(model, sizeof model, "%s", test_tmp_path("pp_model"));
    snprintf(out, sizeof out, "%s", test_tmp_path("pp_out"));
    write_tiny_model(model);
    const char *args[] = {"--threads", "1", "paper", "--model", model, "--corpus", corpus,
                          "--out", out, "--quick", "--sae-steps", "6", "--jsae-steps", "6",
                          "--seq", "16", "--batch", "4", "--attr-seqs", "3", "--eval-seqs", "2",
                          "--bootstrap", "20", NULL};
    cli_result r = run_cli(args);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "# SCALAR, reproduced with libscalar");
    assert_contains(r.out, "| mlpblock, staircase, relative | ");
    assert_contains(r.out, "| 77.78 | "); /* the paper's FF block L0 relative reduction */
    assert_contains(r.out, "## parity mode");
    assert_contains(r.out, "## clean mode");
    assert_contains(r.out, "| eval seed-0/block-noshare clean | ");
    cli_result_free(&r);
    char *md = read_text(out, "paper.md");
    char *csv = read_text(out, "tables.csv");
    assert_contains(csv, "parity,reduction_rel,mlpblock,staircase,0,");
    assert_contains(csv, "clean,s_abs_display_units,block,noshare,1,");
    free(csv);
    snprintf(path, sizeof path, "%s/plots/mlpblock-L0-parity.svg", out);
    ck_assert(file_exists(path));
    snprintf(path, sizeof path, "%s/seed-0/ff-jsae/eval-ff-clean/results.json", out);
    ck_assert(file_exists(path));
    /* resume: nothing runs again, the same tables */
    r = run_cli(args);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    ck_assert_msg(strstr(r.err, "stage ") == NULL, "a done stage ran again: %s", r.err);
    char *md2 = read_text(out, "paper.md");
    ck_assert_str_eq(md, md2);
    free(md2);
    free(md);
    cli_result_free(&r);
    /* drop one evaluation from stages.json: only it runs */
    char *st = read_text(out, "stages.json");
    char *e = strstr(st, "\"eval seed-0/block-topk parity\"");
    ck_assert_ptr_nonnull(e);
    memcpy(e + 1, "Xval", 4);
    snprintf(path, sizeof path, "%s/stages.json", out);
    FILE *f = fopen(path, "w");
    fputs(st, f);
    fclose(f);
    free(st);
    r = run_cli(args);
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.err, "stage eval seed-0/block-topk parity");
    ck_assert_ptr_null(strstr(r.err, "stage train"));
    cli_result_free(&r);
    r = run_cli((const char *[]){"paper", "--seeds", "2", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "--out DIR is required");
    cli_result_free(&r);
}
END_TEST

Suite *scalar_cli_model_suite(void)
{
    Suite *s = suite_create("cli-model");
    TCase *tc = tcase_create("cli-model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_train_model_runs);
    tcase_add_test(tc, test_train_model_resume_after_kill);
    tcase_add_test(tc, test_train_model_extend);
    tcase_add_test(tc, test_model_commands_reject);
    tcase_add_test(tc, test_train_sae_staircase_block);
    tcase_add_test(tc, test_train_sae_topk_then_sae_metrics);
    tcase_add_test(tc, test_train_sae_resume_is_bit_identical);
    tcase_add_test(tc, test_train_sae_jsae_and_resume);
    tcase_add_test(tc, test_train_sae_renorm_decoder);
    tcase_add_test(tc, test_sae_commands_reject);
    tcase_add_test(tc, test_eval_command);
    tcase_add_test(tc, test_paper_command);
    suite_add_tcase(s, tc);
    return s;
}
