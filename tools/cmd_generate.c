/*
 * cmd_generate.c - `scalar generate --model DIR`: sample text from a model
 * with the ASCII tokenizer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_cli.h"

#define CMD "generate"

static int run(const cli_global *g, int argc, char **argv)
{
    const char *model_dir = NULL, *prompt = "\n";
    int64_t n_new = 200, seed = 1;
    float temperature = 0.8f;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(o))
            return cli_print_help(&cli_cmd_generate);
        if (!v)
            return cli_usage_error(&cli_cmd_generate, "%s needs a value or is unknown", o);
        i++;
        if (strcmp(o, "--model") == 0)
            model_dir = v;
        else if (strcmp(o, "--prompt") == 0)
            prompt = v;
        else if (strcmp(o, "--tokens") == 0 ? cli_parse_i64(v, 0, 1 << 24, &n_new) : 0)
            return cli_usage_error(&cli_cmd_generate, "bad value for --tokens: %s", v);
        else if (strcmp(o, "--temperature") == 0 ? cli_parse_f32(v, 0.0f, 100.0f, &temperature)
                                                 : 0)
            return cli_usage_error(&cli_cmd_generate, "bad value for --temperature: %s", v);
        else if (strcmp(o, "--sample-seed") == 0 ? cli_parse_i64(v, 0, INT64_MAX, &seed) : 0)
            return cli_usage_error(&cli_cmd_generate, "bad value for --sample-seed: %s", v);
        else if (strcmp(o, "--tokens") && strcmp(o, "--temperature") && strcmp(o, "--sample-seed"))
            return cli_usage_error(&cli_cmd_generate, "unknown option %s", o);
    }
    if (!model_dir)
        return cli_usage_error(&cli_cmd_generate, "--model DIR is required");
    if (!*prompt)
        return cli_usage_error(&cli_cmd_generate, "--prompt must not be empty");
    scalar_ctx *ctx = NULL;
    scalar_model *m = NULL;
    scalar_model_workspace *ws = NULL;
    int rc = cli_ctx_create(&ctx, g, CMD);
    if (rc != CLI_OK)
        return rc;
    size_t n_prompt = strlen(prompt);
    int32_t *ids = malloc(n_prompt * sizeof *ids), *out = malloc((size_t)(n_new + 1) * sizeof *out);
    char *text = malloc((size_t)n_new + 1);
    scalar_model_config c;
    scalar_model_config_init(&c, sizeof c);
    rc = CLI_FAIL;
    if (!ids || !out || !text)
        fprintf(stderr, "scalar: " CMD ": out of memory\n");
    else if (scalar_model_load(&m, ctx, model_dir) != SCALAR_OK ||
             scalar_model_get_config(m, &c) != SCALAR_OK ||
             scalar_model_workspace_create(&ws, m, 1, c.block_size, 0) != SCALAR_OK ||
             scalar_ascii_encode(prompt, n_prompt, ids) != SCALAR_OK ||
             scalar_model_generate(m, ws, ids, (int64_t)n_prompt, n_new, temperature,
                                   (uint64_t)seed, out) != SCALAR_OK)
        rc = cli_fail(CMD);
    else if (c.vocab_size > scalar_ascii_vocab_size())
        fprintf(stderr, "scalar: " CMD ": the model's vocabulary (%d) is not the ASCII one; "
                        "generate prints text only for ASCII models\n", (int)c.vocab_size);
    else if (scalar_ascii_decode(out, (size_t)n_new, text, (size_t)n_new + 1) != SCALAR_OK)
        rc = cli_fail(CMD);
    else {
        printf("%s%s\n", prompt, text);
        rc = CLI_OK;
    }
    free(ids);
    free(out);
    free(text);
    scalar_model_workspace_free(ws);
    scalar_model_free(m);
    scalar_ctx_free(ctx);
    return rc;
}

const cli_command cli_cmd_generate = {
    .name = "generate",
    .args = "--model DIR [--prompt TEXT] [--tokens N] [--temperature X] [--sample-seed N]",
    .summary = "sample text from a model (ASCII vocabulary)",
    .help = "options:\n"
            "  --model DIR        a model folder (config.json + model.safetensors)\n"
            "  --prompt TEXT      the start of the text (default: a newline)\n"
            "  --tokens N         characters to generate (200)\n"
            "  --temperature X    softmax temperature, 0 = most likely (0.8)\n"
            "  --sample-seed N    sampling seed (1): the same seed gives the same text\n"
            "\n"
            "output: the prompt followed by the sample on stdout.\n"
            "exit status: 0 done, 1 failure, 2 usage error.",
    .run = run,
};
