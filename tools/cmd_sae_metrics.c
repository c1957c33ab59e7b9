/*
 * cmd_sae_metrics.c - `scalar sae-metrics DIR`: the metrics of a train-sae
 * run's best SAEs (L0, FVU, MSE, dead latents, CE increase and KL, each SAE
 * spliced alone and all at once) on the validation split; DIR/results.json.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_cli.h"
#include "run_dir.h"
#include "sae_cli.h"

#define CMD "sae-metrics"

static int run(const cli_global *g, int argc, char **argv)
{
    const char *dir = NULL, *model = NULL, *corpus = NULL;
    int64_t seq = 0, windows = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(o))
            return cli_print_help(&cli_cmd_sae_metrics);
        if (o[0] != '-') {
            if (dir)
                return cli_usage_error(&cli_cmd_sae_metrics, "one run folder, not %s too", o);
            dir = o;
            continue;
        }
        if (!v)
            return cli_usage_error(&cli_cmd_sae_metrics, "%s needs a value or is unknown", o);
        i++;
        if (strcmp(o, "--model") == 0)
            model = v;
        else if (strcmp(o, "--corpus") == 0)
            corpus = v;
        else if (strcmp(o, "--seq") == 0) {
            if (cli_parse_i64(v, 1, 1 << 20, &seq))
                return cli_usage_error(&cli_cmd_sae_metrics, "bad value for --seq: %s", v);
        } else if (strcmp(o, "--windows") == 0) {
            if (cli_parse_i64(v, 0, INT64_C(1) << 40, &windows))
                return cli_usage_error(&cli_cmd_sae_metrics, "bad value for --windows: %s", v);
        } else
            return cli_usage_error(&cli_cmd_sae_metrics, "unknown option %s", o);
    }
    if (!dir)
        return cli_usage_error(&cli_cmd_sae_metrics, "the run folder is required");
    char path[CLI_PATH_LEN];
    char *text = cli_join(path, dir, "run.json") == 0 ? cli_read_file(path) : NULL;
    cJSON *run_json = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!run_json) {
        fprintf(stderr, "scalar: " CMD ": cannot read %s/run.json (a train-sae output folder)\n",
                dir);
        return CLI_FAIL;
    }
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(run_json, "model");
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(run_json, "corpus");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(run_json, "seq");
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(run_json, "metrics_windows");
    if (!model && cJSON_IsString(jm))
        model = jm->valuestring;
    if (!corpus && cJSON_IsString(jc) && strcmp(jc->valuestring, "(fortunes)") != 0)
        corpus = jc->valuestring;
    if (!seq)
        seq = cJSON_IsNumber(js) ? (int64_t)js->valuedouble : 128;
    if (windows < 0)
        windows = cJSON_IsNumber(jw) ? (int64_t)jw->valuedouble : 0;
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_dataset *ds = NULL;
    int rc = cli_ctx_create(&ctx, g, CMD);
    if (rc == CLI_OK && (!model || scalar_model_load(&m, ctx, model) != SCALAR_OK))
        rc = model ? cli_fail(CMD) : (fprintf(stderr, "scalar: " CMD ": no model: pass "
                                                      "--model DIR\n"), CLI_FAIL);
    if (rc == CLI_OK)
        rc = cli_corpus_load(&ds, ctx, corpus, CMD);
    if (rc == CLI_OK)
        rc = sae_metrics_report(ctx, m, ds, dir, seq, windows, CMD);
    scalar_dataset_free(ds);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    cJSON_Delete(run_json);
    return rc;
}

const cli_command cli_cmd_sae_metrics = {
    .name = "sae-metrics",
    .args = "DIR [--model DIR] [--corpus FILE] [--seq T] [--windows N]",
    .summary = "metrics of a train-sae run's SAEs: L0, FVU, dead, CE increase, KL",
    .help =
        "Evaluates the best SAEs of a train-sae output folder on the validation split\n"
        "(the last 10% of the corpus) in windows of T tokens: per SAE L0, FVU, MSE,\n"
        "dead latents, and the cross-entropy increase and KL to the clean model with\n"
        "its reconstruction spliced in; then all SAEs spliced at once.\n"
        "\n"
        "options (defaults from DIR/run.json):\n"
        "  --model DIR     the model the SAEs read\n"
        "  --corpus FILE   the corpus\n"
        "  --seq T         tokens per window\n"
        "  --windows N     cap on the windows (0: the whole split)\n"
        "\n"
        "output: the table on stdout, DIR/results.json.\n"
        "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
