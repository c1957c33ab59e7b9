/*
 * cmd_eval.c - `scalar eval --saes DIR`: the SCALAR interaction sparsity of
 * every SAE pair of a train-sae run folder along a path (SPEC.md section 3):
 * the per-layer table, results.json, scalar.csv, curves.csv, curves.svg.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_cli.h"
#include "model_cli.h"
#include "run_dir.h"

#define CMD "eval"

typedef struct eval_args {
    const char *saes, *model, *corpus, *path, *mode, *out, *layers, *attribution, *label;
    int64_t steps, bootstrap, seed, attr_seqs, eval_seqs, seq, batch;
} eval_args;

static int parse_layers(eval_opts *o, const char *text)
{
    const char *p = text;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= EVAL_MAX_LAYERS || o->n_layers >= EVAL_MAX_LAYERS)
            return -1;
        o->layers[o->n_layers++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return -1;
    }
    return o->n_layers > 0 ? 0 : -1;
}

static int parse_args(eval_args *a, int argc, char **argv)
{
    const cli_command *cmd = &cli_cmd_eval;
    memset(a, 0, sizeof *a);
    a->steps = 5;
    a->bootstrap = 1000;
    a->attr_seqs = 576;
    a->eval_seqs = 50;
    a->seq = 128;
    a->batch = 8;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(o))
            return cli_print_help(cmd) == CLI_OK ? -1 : CLI_FAIL;
        if (!v)
            return cli_usage_error(cmd, "%s needs a value or is unknown", o);
        CLI_STR_OPT(cmd, "--saes", saes)
        CLI_STR_OPT(cmd, "--model", model)
        CLI_STR_OPT(cmd, "--corpus", corpus)
        CLI_STR_OPT(cmd, "--path", path)
        CLI_STR_OPT(cmd, "--mode", mode)
        CLI_STR_OPT(cmd, "--out", out)
        CLI_STR_OPT(cmd, "--layers", layers)
        CLI_STR_OPT(cmd, "--attribution", attribution)
        CLI_STR_OPT(cmd, "--label", label)
        CLI_INT_OPT(cmd, "--steps", steps, 1, 1000)
        CLI_INT_OPT(cmd, "--bootstrap", bootstrap, 0, 1000000)
        CLI_INT_OPT(cmd, "--seed", seed, 0, INT64_MAX)
        CLI_INT_OPT(cmd, "--attr-seqs", attr_seqs, 1, INT64_C(1) << 30)
        CLI_INT_OPT(cmd, "--eval-seqs", eval_seqs, 1, INT64_C(1) << 30)
        CLI_INT_OPT(cmd, "--seq", seq, 1, 1 << 20)
        CLI_INT_OPT(cmd, "--batch", batch, 1, 4096)
        return cli_usage_error(cmd, "unknown option %s", o);
    }
    if (!a->saes)
        return cli_usage_error(cmd, "--saes DIR (a train-sae output folder) is required");
    return CLI_OK;
}

/* Fill the options from the arguments and the run folder's run.json. */
static int make_opts(eval_opts *o, eval_args *a, cJSON *run)
{
    const cli_command *cmd = &cli_cmd_eval;
    eval_opts_init(o);
    const cJSON *jp = cJSON_GetObjectItemCaseSensitive(run, "placement");
    if (!a->path && cJSON_IsString(jp))
        a->path = jp->valuestring;
    o->path = eval_path_parse(a->path);
    if (o->path < 0)
        return cli_usage_error(cmd, "--path must be ff, mlpblock or block%s",
                               a->path ? "" : " (run.json names no placement)");
    if (a->mode && strcmp(a->mode, "clean") && strcmp(a->mode, "parity"))
        return cli_usage_error(cmd, "--mode must be clean or parity, not %s", a->mode);
    o->quirks = a->mode && strcmp(a->mode, "parity") == 0 ? SCALAR_QUIRKS_PARITY : 0;
    if (a->attribution && strcmp(a->attribution, "gradient") && strcmp(a->attribution, "jacobian"))
        return cli_usage_error(cmd, "--attribution must be gradient or jacobian");
    o->attribution = a->attribution && strcmp(a->attribution, "jacobian") == 0
                         ? SCALAR_ATTR_JACOBIAN : SCALAR_ATTR_GRADIENT_PATH;
    o->steps = (int32_t)a->steps;
    o->bootstrap = (int32_t)a->bootstrap;
    o->seed = (uint64_t)a->seed;
    o->attr_seqs = a->attr_seqs;
    o->eval_seqs = a->eval_seqs;
    o->seq = a->seq;
    o->batch = (int32_t)a->batch;
    if (a->layers && parse_layers(o, a->layers) != 0)
        return cli_usage_error(cmd, "bad value for --layers: %s (like 0,2,3)", a->layers);
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(run, "model");
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(run, "corpus");
    const cJSON *jv = cJSON_GetObjectItemCaseSensitive(run, "variant");
    if (!a->model && cJSON_IsString(jm))
        a->model = jm->valuestring;
    if (!a->corpus && cJSON_IsString(jc) && strcmp(jc->valuestring, "(fortunes)") != 0)
        a->corpus = jc->valuestring;
    if (!a->label)
        a->label = cJSON_IsString(jv) ? jv->valuestring : "saes";
    return CLI_OK;
}

static int run(const cli_global *g, int argc, char **argv)
{
    eval_args a;
    int rc = parse_args(&a, argc, argv);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    char path[CLI_PATH_LEN], out[CLI_PATH_LEN];
    char *text = cli_join(path, a.saes, "run.json") == 0 ? cli_read_file(path) : NULL;
    cJSON *run_json = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!run_json) {
        fprintf(stderr, "scalar: " CMD ": cannot read %s/run.json (a train-sae output folder)\n",
                a.saes);
        return CLI_FAIL;
    }
    eval_opts o;
    rc = make_opts(&o, &a, run_json);
    if (rc == CLI_OK && !a.out) {
        char name[64];
        snprintf(name, sizeof name, "eval-%s-%s", eval_path_name(o.path),
                 eval_mode_name(o.quirks));
        if (cli_join(out, a.saes, name))
            rc = cli_usage_error(&cli_cmd_eval, "the run folder's path is too long");
        a.out = out;
    }
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_dataset *ds = NULL;
    eval_result r;
    memset(&r, 0, sizeof r);
    if (rc == CLI_OK)
        rc = cli_ctx_create(&ctx, g, CMD);
    if (rc == CLI_OK && (!a.model || scalar_model_load(&m, ctx, a.model) != SCALAR_OK))
        rc = a.model ? cli_fail(CMD)
                     : (fprintf(stderr, "scalar: " CMD ": no model: pass --model DIR\n"), CLI_FAIL);
    if (rc == CLI_OK)
        rc = cli_corpus_load(&ds, ctx, a.corpus, CMD);
    if (rc == CLI_OK)
        rc = eval_run_folder(ctx, m, ds, a.saes, &o, &r, CMD);
    if (rc == CLI_OK)
        rc = eval_write_outputs(a.out, &r, &o, a.saes, a.label, CMD);
    if (rc == CLI_OK) {
        eval_print_table(&r, &o, a.label);
        printf("results: %s/{results.json,scalar.csv,curves.csv,curves.svg}\n", a.out);
    }
    eval_result_free(&r);
    scalar_dataset_free(ds);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    cJSON_Delete(run_json);
    return rc;
}

const cli_command cli_cmd_eval = {
    .name = "eval",
    .args = "--saes DIR [--path ff|mlpblock|block] [--mode clean|parity] [options]",
    .summary = "SCALAR interaction sparsity of a train-sae run's SAE pairs",
    .help =
        "For every layer, the SAE pair of DIR along the path (FF layer: mlp_in ->\n"
        "mlp_out; FF block: resid_mid -> resid_post; transformer block: resid_pre ->\n"
        "resid_post): edge scores on the first --attr-seqs windows of the validation\n"
        "split, then the KL of the top-N-edge subcircuits on the first --eval-seqs\n"
        "windows, and the area under that curve (S_abs, S_rel) with bootstrap\n"
        "intervals (SPEC.md section 3; docs/evaluator.md).\n"
        "\n"
        "options (defaults: SPEC.md's settings, the rest from DIR/run.json):\n"
        "  --saes DIR          a train-sae output folder (required)\n"
        "  --model DIR         the model the SAEs read\n"
        "  --corpus FILE       the corpus\n"
        "  --path P            ff, mlpblock or block (default: the run's placement)\n"
        "  --mode M            clean (default) or parity (the reference's quirks)\n"
        "  --attribution A     gradient (default, --steps points) or jacobian\n"
        "  --steps S           points on the gradient path (5)\n"
        "  --layers L,L        only these layers\n"
        "  --attr-seqs N       attribution windows (576 = 24 x 24)\n"
        "  --eval-seqs N       curve windows (50)\n"
        "  --seq T             tokens per window (128)\n"
        "  --bootstrap R       resamples of the interval (1000; 0: none)\n"
        "  --seed S            bootstrap seed (0)\n"
        "  --batch B           sequences per chunk of work (8)\n"
        "  --label NAME        the variant's name in tables and plots (run.json's)\n"
        "  --out DIR           where results go (DIR/eval-PATH-MODE)\n"
        "\n"
        "output: the table on stdout; results.json (every number and setting),\n"
        "scalar.csv, curves.csv and curves.svg in the output folder.\n"
        "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
