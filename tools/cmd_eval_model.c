/*
 * cmd_eval_model.c - `scalar eval-model --model DIR`: validation loss.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_cli.h"

#define CMD "eval-model"

static int run(const cli_global *g, int argc, char **argv)
{
    const char *model_dir = NULL, *corpus = NULL, *split_name = "val";
    int64_t batch = 32, windows = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(o))
            return cli_print_help(&cli_cmd_eval_model);
        if (!v)
            return cli_usage_error(&cli_cmd_eval_model, "%s needs a value or is unknown", o);
        i++;
        if (strcmp(o, "--model") == 0)
            model_dir = v;
        else if (strcmp(o, "--corpus") == 0)
            corpus = v;
        else if (strcmp(o, "--split") == 0)
            split_name = v;
        else if (strcmp(o, "--batch") == 0) {
            if (cli_parse_i64(v, 1, 1 << 20, &batch))
                return cli_usage_error(&cli_cmd_eval_model, "bad value for --batch: %s", v);
        } else if (strcmp(o, "--windows") == 0) {
            if (cli_parse_i64(v, 0, INT64_MAX, &windows))
                return cli_usage_error(&cli_cmd_eval_model, "bad value for --windows: %s", v);
        } else
            return cli_usage_error(&cli_cmd_eval_model, "unknown option %s", o);
    }
    int32_t split;
    if (strcmp(split_name, "val") == 0)
        split = SCALAR_SPLIT_VAL;
    else if (strcmp(split_name, "train") == 0)
        split = SCALAR_SPLIT_TRAIN;
    else
        return cli_usage_error(&cli_cmd_eval_model, "--split is val or train, not %s", split_name);
    if (!model_dir)
        return cli_usage_error(&cli_cmd_eval_model, "--model DIR is required");
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_model_workspace *ws = NULL;
    scalar_dataset *ds = NULL;
    int rc = cli_ctx_create(&ctx, g, CMD);
    if (rc != CLI_OK)
        return rc;
    scalar_model_config c;
    scalar_model_config_init(&c, sizeof c);
    double loss = 0.0;
    if (scalar_model_load(&m, ctx, model_dir) != SCALAR_OK ||
        scalar_model_get_config(m, &c) != SCALAR_OK ||
        scalar_model_workspace_create(&ws, m, batch, c.block_size, 0) != SCALAR_OK) {
        rc = cli_fail(CMD);
    } else if ((rc = cli_corpus_load(&ds, ctx, corpus, CMD)) == CLI_OK) {
        if (cli_eval_loss(m, ws, ds, split, batch, c.block_size, windows, &loss) != SCALAR_OK)
            rc = cli_fail(CMD);
        else
            printf("%s loss %.4f nats/token (%.4f bits/token)\n", split_name, loss,
                   loss / log(2.0));
    }
    scalar_dataset_free(ds);
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_eval_model = {
    .name = "eval-model",
    .args = "--model DIR [--corpus FILE] [--split val|train] [--batch B] [--windows N]",
    .summary = "a model's loss on a corpus split",
    .help = "The loss is the mean cross-entropy over non-overlapping windows of block_size\n"
            "tokens (window j predicts tokens j*T+1 .. j*T+T), the same measure train-model\n"
            "logs as val_loss.\n"
            "\n"
            "options:\n"
            "  --model DIR      a model folder\n"
            "  --corpus FILE    text, .npy or .bin ids (default: the fortunes corpus)\n"
            "  --split NAME     val (default: the last 10%) or train\n"
            "  --batch B        windows per forward (32)\n"
            "  --windows N      evaluate only the first N windows (0: all)\n"
            "\n"
            "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
