/*
 * cmd_info.c - `scalar info`: library version, the active backend and its
 * configuration, the registered backends, the element types.
 *
 * The layout is meant to stay stable: one `key: value` per line, lists
 * indented below their key.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <scalar/sys/backend.h>

#include "cli.h"

/* Names of the SCALAR_OP_* ids, in id order. */
static const char *const op_names[] = {
    "sgemm",        "bias_add",  "gelu_forward", "gelu_backward", "layernorm_forward",
    "layernorm_backward", "softmax_rows", "topk_rows", "gather_rows", "scatter_add_rows",
    "attention_forward", "attention_backward", "embedding_forward", "embedding_backward",
    "cross_entropy_forward", "cross_entropy_backward", "sum_rows", "add", "sumsq", "adamw",
    "sparse_decode", "sparse_dot", "sparse_outer_add", "jacobian_contract",
    "jacobian_contract_backward", "jacobian_rows",
};
/* Sized by its initialisers, so a missing name fails here (an array declared
 * [SCALAR_OP_COUNT] would silently hold NULLs). */
_Static_assert(sizeof op_names / sizeof op_names[0] == SCALAR_OP_COUNT, "one name per op");

static void print_backends(const char *active)
{
    size_t n = scalar_backend_count();
    printf("backends:  %zu registered (* active)\n", n);
    for (size_t i = 0; i < n; i++) {
        const char *name = scalar_backend_name(i);
        if (name)
            printf("  %c %s\n", active && strcmp(name, active) == 0 ? '*' : ' ', name);
    }
}

/* Which kernels the backend runs itself; the rest fall back to cpu-ref. */
static void print_kernels(const scalar_backend *be)
{
    int n_native = 0;
    printf("kernels:   native:");
    for (int32_t op = 0; op < SCALAR_OP_COUNT; op++)
        if (scalar_backend_supports(be, op)) {
            printf(" %s", op_names[op]);
            n_native++;
        }
    if (n_native == 0)
        printf(" none");
    printf("\n           cpu-ref fallback:");
    if (n_native == SCALAR_OP_COUNT)
        printf(" none");
    for (int32_t op = 0; op < SCALAR_OP_COUNT; op++)
        if (!scalar_backend_supports(be, op))
            printf(" %s", op_names[op]);
    printf("\n");
}

static void print_dtypes(void)
{
    printf("dtypes:   ");
    for (int32_t t = 0;; t++) {
        const char *name = scalar_dtype_name(t);
        if (!name)
            break;
        printf(" %s", name);
    }
    printf("\nmax dims:  %" PRId32 "\n", scalar_max_dims());
}

static int info_run(const cli_global *global, int argc, char **argv)
{
    scalar_ctx *ctx;
    if (argc > 1)
        return cli_usage_error(&cli_cmd_info, "unexpected argument '%s'", argv[1]);
    if (cli_ctx_create(&ctx, global, "info") != CLI_OK)
        return CLI_FAIL;
    const scalar_backend *be = scalar_ctx_backend(ctx);
    printf("libscalar: %s (ABI %" PRIu32 ", backend ABI %u)\n", scalar_version_string(),
           scalar_abi_version(), SCALAR_BACKEND_ABI_VERSION);
    printf("backend:   %s\n", scalar_ctx_backend_name(ctx));
    printf("config:    %s\n", scalar_backend_describe(be));
    printf("threads:   %" PRId32 "\n", scalar_ctx_n_threads(ctx));
    printf("seed:      0x%" PRIx64 "\n", scalar_ctx_seed(ctx));
    printf("memory:    %s\n", scalar_backend_is_host(be) ? "host" : "device");
    print_kernels(be);
    print_backends(scalar_ctx_backend_name(ctx));
    print_dtypes();
    scalar_ctx_free(ctx);
    return CLI_OK;
}

const cli_command cli_cmd_info = {
    .name = "info",
    .args = "",
    .summary = "show the library version, the backend and its configuration",
    .help = "Prints, one `key: value` per line: the libscalar version and ABI, the\n"
            "active backend (--backend) and its configuration (for cpu: the BLIS\n"
            "version, architecture, threading model and thread count), the thread\n"
            "count and seed of the context, which kernels the backend runs natively,\n"
            "every registered backend (* marks the active one), and the element types.\n"
            "\nexit status: 0 success, 1 the context could not be made (an unknown\n"
            "--backend, say), 2 usage error.\n",
    .run = info_run,
};
