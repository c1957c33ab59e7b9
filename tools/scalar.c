/*
 * scalar.c - the `scalar` program: global options, command dispatch, help.
 *
 *   scalar [--threads N] [--backend NAME] [--seed N] <command> [args]
 *
 * Commands live in tools/cmd_*.c, one per file, each a ::cli_command.  The
 * program uses the public API only (scalar/scalar.h, scalar/sys/backend.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_command *const commands[] = {
    &cli_cmd_info,
    &cli_cmd_inspect,
    &cli_cmd_selftest,
    &cli_cmd_train_model,
    &cli_cmd_eval_model,
    &cli_cmd_generate,
    &cli_cmd_train_sae,
    &cli_cmd_sae_metrics,
    &cli_cmd_eval,
    &cli_cmd_paper,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char usage_line[] =
    "usage: scalar [--threads N] [--backend NAME] [--seed N] <command> [args]\n";

static void print_main_help(FILE *f)
{
    fprintf(f, "%s", usage_line);
    fprintf(f, "\nlibscalar %s: interaction sparsity between sparse-autoencoder features.\n",
            scalar_version_string());
    fprintf(f, "\nglobal options (before the command):\n"
               "  --threads N     worker threads for BLIS and OpenMP (0: the OpenMP default)\n"
               "  --backend NAME  compute backend (see `scalar info`; default cpu)\n"
               "  --seed N        seed of every random stream (decimal or 0x hex)\n"
               "  -h, --help      this text\n"
               "  --version       print the version and exit\n"
               "\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f, "  %-12s %s\n", "help", "show help for a command: scalar help COMMAND");
    fprintf(f, "\nexit status: 0 success, 1 failure, 2 usage error.\n");
}

int cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_fail(const char *cmd)
{
    const char *msg = scalar_last_error();
    fprintf(stderr, "scalar: %s: %s\n", cmd, msg && *msg ? msg : "failed");
    return CLI_FAIL;
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "scalar: %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: scalar %s %s\n", cmd->name, cmd->args);
    return CLI_USAGE;
}

int cli_print_help(const cli_command *cmd)
{
    printf("usage: scalar [global options] %s %s\n\n%s\n\n%s", cmd->name, cmd->args,
           cmd->summary, cmd->help);
    return CLI_OK;
}

int cli_ctx_create(scalar_ctx **out, const cli_global *global, const char *cmd)
{
    scalar_ctx_options opt;
    *out = NULL;
    if (scalar_ctx_options_init(&opt, sizeof opt) != SCALAR_OK)
        return cli_fail(cmd);
    opt.backend = global->backend;
    opt.n_threads = global->n_threads;
    if (global->have_seed)
        opt.seed = global->seed;
    if (scalar_ctx_create(out, &opt) != SCALAR_OK)
        return cli_fail(cmd);
    return CLI_OK;
}

static int main_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "scalar: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%sTry 'scalar help'.\n", usage_line);
    return CLI_USAGE;
}

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end || v > max)
        return 0;
    *out = v;
    return 1;
}

/* `--name VALUE` or `--name=VALUE`: returns VALUE and advances *i, or NULL. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *matched)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    *matched = 0;
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=') {
        *matched = 1;
        return a + n + 1;
    }
    if (a[n] != '\0')
        return NULL;
    *matched = 1;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* Parses the global option at argv[*i] (advancing *i past its value);
 * returns -1 to go on, or the exit code of a usage error. */
static int parse_global_one(cli_global *g, int argc, char **argv, int *i)
{
    int m;
    uint64_t v;
    const char *val;
    if ((val = option_value(argc, argv, i, "--threads", &m)) || m) {
        if (!parse_u64(val, 4096, &v))
            return main_usage_error("--threads needs a count from 0 to 4096, not '%s'",
                                    val ? val : "");
        g->n_threads = (int32_t)v;
    } else if ((val = option_value(argc, argv, i, "--backend", &m)) || m) {
        if (!val || !*val)
            return main_usage_error("--backend needs a name%s", "");
        g->backend = val;
    } else if ((val = option_value(argc, argv, i, "--seed", &m)) || m) {
        if (!parse_u64(val, UINT64_MAX, &v))
            return main_usage_error("--seed needs an unsigned integer, not '%s'",
                                    val ? val : "");
        g->seed = v;
        g->have_seed = 1;
    } else {
        return main_usage_error("unknown option '%s'", argv[*i]);
    }
    return -1;
}

static int run_help(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        printf("usage: scalar help [COMMAND]\n\nshow help for a command, or list the commands.\n");
        return CLI_OK;
    }
    const cli_command *cmd = find_command(argv[1]);
    if (!cmd)
        return main_usage_error("help: unknown command '%s'", argv[1]);
    return cli_print_help(cmd);
}

static int dispatch(const cli_global *g, int argc, char **argv)
{
    if (strcmp(argv[0], "help") == 0)
        return run_help(argc, argv);
    const cli_command *cmd = find_command(argv[0]);
    if (!cmd)
        return main_usage_error("unknown command '%s'", argv[0]);
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (cli_is_help(argv[i]))
            return cli_print_help(cmd);
    return cmd->run(g, argc, argv);
}

static int run_main(int argc, char **argv)
{
    cli_global g = {0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (cli_is_help(argv[i])) {
            print_main_help(stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("scalar %s (libscalar ABI %" PRIu32 ")\n", scalar_version_string(),
                   scalar_abi_version());
            return CLI_OK;
        }
        int rc = parse_global_one(&g, argc, argv, &i);
        if (rc >= 0)
            return rc;
    }
    if (i >= argc)
        return main_usage_error("no command given%s", "");
    return dispatch(&g, argc - i, argv + i);
}

int main(int argc, char **argv)
{
    int rc = run_main(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "scalar: cannot write the output: %s\n", strerror(errno));
        return CLI_FAIL;
    }
    return rc;
}
