/*
 * cli.h - what the `scalar` program's command files share.
 *
 * Exit codes: 0 success, 1 a failed operation (message from
 * scalar_last_error() on stderr), 2 a usage error (a usage line on stderr).
 * Results go to stdout only; diagnostics to stderr only.
 */
#ifndef SCALAR_TOOLS_CLI_H
#define SCALAR_TOOLS_CLI_H

#include <stdint.h>

#include <scalar/scalar.h>

#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2

/* Global options, parsed before the command name. */
typedef struct cli_global {
    const char *backend; /* --backend NAME; NULL: the library default */
    uint64_t seed;       /* --seed N, valid when have_seed */
    int32_t n_threads;   /* --threads N; 0: the OpenMP default */
    int have_seed;
} cli_global;

/* One command: `scalar NAME [args]`; argv[0] is the command name. */
typedef struct cli_command {
    const char *name;
    const char *args;    /* the usage line after the name, e.g. "[--json] FILE" */
    const char *summary; /* one line for `scalar help` */
    const char *help;    /* the rest of `scalar help NAME`: options, output, exit codes */
    int (*run)(const cli_global *global, int argc, char **argv);
} cli_command;

extern const cli_command cli_cmd_info;
extern const cli_command cli_cmd_inspect;
extern const cli_command cli_cmd_selftest;
extern const cli_command cli_cmd_train_model;
extern const cli_command cli_cmd_generate;
extern const cli_command cli_cmd_eval_model;
extern const cli_command cli_cmd_train_sae;
extern const cli_command cli_cmd_sae_metrics;
extern const cli_command cli_cmd_eval;
extern const cli_command cli_cmd_paper;

/* Print `scalar: <cmd>: <scalar_last_error()>` to stderr; returns CLI_FAIL. */
int cli_fail(const char *cmd);

/* Print `scalar: <cmd>: <message>` and the command's usage line to stderr;
 * returns CLI_USAGE. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Print `scalar help NAME` text to stdout; returns CLI_OK. */
int cli_print_help(const cli_command *cmd);

/* 1 if argv[i] is -h or --help. */
int cli_is_help(const char *arg);

/* Create the context the global options describe; on failure prints the
 * library's message for @p cmd and returns CLI_FAIL. */
int cli_ctx_create(scalar_ctx **out, const cli_global *global, const char *cmd);

#endif /* SCALAR_TOOLS_CLI_H */
