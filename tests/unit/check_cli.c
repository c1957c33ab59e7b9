/*
 * check_cli.c - the `scalar` program, run as a child process.
 *
 * The binary is $SCALAR_CLI (the Makefile sets it); stdout and stderr go to
 * scratch files and are read back with the exit status.  Files the commands
 * read are written here with the library's own writer.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <scalar/scalar.h>

#include "suites.h"

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t cap = 4096, len = 0, got;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static const char *cli_path(void)
{
    const char *cli = getenv("SCALAR_CLI");
    ck_assert_msg(cli && *cli, "SCALAR_CLI is not set (run through `make unit`)");
    return cli;
}

/* Runs `scalar args...` (args NULL-terminated). */
cli_result run_cli(const char *const *args)
{
    const char *argv[64];
    int n = 0;
    argv[n++] = cli_path();
    while (args[n - 1] && n < 63) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    char out_path[1024], err_path[1024];
    snprintf(out_path, sizeof out_path, "%s", test_tmp_path("cli.stdout"));
    snprintf(err_path, sizeof err_path, "%s", test_tmp_path("cli.stderr"));
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    cli_result r;
    r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    return r;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

#define assert_contains(hay, needle) \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in:\n%s", (needle), (hay))

/* ---- fixtures: files the commands read ------------------------------ */

static const float weight[3][4] = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10, 11, 12}};
static const int32_t ids[5] = {1, 2, 3, 4, 5};
static const uint16_t half_one = 0x3C00; /* 1.0 as float16 */

static void write_safetensors(const char *path)
{
    scalar_ctx *ctx;
    scalar_safetensors_writer *w;
    const int64_t wshape[2] = {3, 4}, ishape[1] = {5};
    ck_assert_int_eq(scalar_ctx_create(&ctx, NULL), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_create(&w, ctx), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "embed.weight", SCALAR_DTYPE_F32, wshape, 2,
                                                   weight, sizeof weight),
                     SCALAR_OK);
    ck_assert_int_eq(
        scalar_safetensors_writer_add(w, "ids", SCALAR_DTYPE_I32, ishape, 1, ids, sizeof ids),
        SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "scale", SCALAR_DTYPE_F16, NULL, 0,
                                                   &half_one, sizeof half_one),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "format", "pt"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    scalar_ctx_free(ctx);
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

/* A version-1 .npy of int32 [2, 3]: magic, header padded to 128 bytes, data. */
static void write_npy(const char *path)
{
    enum { HEAD = 128 };
    unsigned char buf[HEAD + 6 * 4];
    const char *dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }";
    memset(buf, ' ', sizeof buf);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = HEAD - 10; /* header length, little-endian uint16 */
    buf[9] = 0;
    memcpy(buf + 10, dict, strlen(dict));
    buf[HEAD - 1] = '\n';
    for (int32_t i = 0; i < 6; i++)
        memcpy(buf + HEAD + 4 * i, &i, 4); /* little-endian hosts */
    write_bytes(path, buf, sizeof buf);
}

/* The message the library itself gives for opening @p path. */
static const char *library_open_error(const char *path)
{
    static char msg[1024];
    scalar_ctx *ctx;
    scalar_safetensors *st;
    ck_assert_int_eq(scalar_ctx_create(&ctx, NULL), SCALAR_OK);
    ck_assert_int_lt(scalar_safetensors_open(&st, ctx, path), 0);
    snprintf(msg, sizeof msg, "scalar: inspect: %s", scalar_last_error());
    scalar_ctx_free(ctx);
    return msg;
}

/* ---- global options and help ------------------------------------------ */

START_TEST(test_cli_help_lists_commands)
{
    cli_result r = run_cli((const char *[]){"--help", NULL});
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "usage: scalar");
    assert_contains(r.out, "info");
    assert_contains(r.out, "inspect");
    assert_contains(r.out, "selftest");
    assert_contains(r.out, "--threads");
    ck_assert_str_eq(r.err, "");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_version_matches_library)
{
    char want[64];
    snprintf(want, sizeof want, "scalar %s", scalar_version_string());
    cli_result r = run_cli((const char *[]){"--version", NULL});
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(strncmp(r.out, want, strlen(want)) == 0, "got %s", r.out);
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_unknown_command_is_usage_error)
{
    cli_result r = run_cli((const char *[]){"frobnicate", NULL});
    ck_assert_int_eq(r.status, 2);
    assert_contains(r.err, "unknown command 'frobnicate'");
    assert_contains(r.err, "usage: scalar");
    ck_assert_str_eq(r.out, "");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_usage_errors_exit_2)
{
    const char *const *cases[] = {
        (const char *[]){NULL},
        (const char *[]){"--threads", "many", "info", NULL},
        (const char *[]){"--bogus", "info", NULL},
        (const char *[]){"inspect", NULL},
        (const char *[]){"inspect", "--yaml", "x.safetensors", NULL},
        (const char *[]){"info", "extra", NULL},
        (const char *[]){"help", "nosuch", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli(cases[i]);
        ck_assert_msg(r.status == 2, "case %zu: exit %d, stderr %s", i, r.status, r.err);
        assert_contains(r.err, "usage: scalar");
        cli_result_free(&r);
    }
}
END_TEST

START_TEST(test_cli_help_for_each_command)
{
    const char *names[] = {"info", "inspect", "selftest"};
    for (size_t i = 0; i < 3; i++) {
        cli_result a = run_cli((const char *[]){"help", names[i], NULL});
        cli_result b = run_cli((const char *[]){names[i], "--help", NULL});
        ck_assert_int_eq(a.status, 0);
        ck_assert_int_eq(b.status, 0);
        assert_contains(a.out, names[i]);
        ck_assert_str_eq(a.out, b.out);
        cli_result_free(&a);
        cli_result_free(&b);
    }
}
END_TEST

/* ---- info --------------------------------------------------------------- */

START_TEST(test_cli_info_names_backend_and_blis)
{
    cli_result r = run_cli((const char *[]){"--threads", "1", "info", NULL});
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, scalar_version_string());
    assert_contains(r.out, "backend:   cpu\n");
    assert_contains(r.out, "BLIS");
    assert_contains(r.out, "* cpu\n");
    assert_contains(r.out, "  cpu-ref\n");
    assert_contains(r.out, "threads:   1\n");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_info_marks_chosen_backend)
{
    cli_result r = run_cli((const char *[]){"--backend", "cpu-ref", "--seed", "0x10", "info", NULL});
    ck_assert_int_eq(r.status, 0);
    assert_contains(r.out, "backend:   cpu-ref\n");
    assert_contains(r.out, "* cpu-ref\n");
    assert_contains(r.out, "seed:      0x10\n");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_unknown_backend_fails)
{
    cli_result r = run_cli((const char *[]){"--backend", "nosuch", "info", NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, "scalar: info: ");
    assert_contains(r.err, "no backend named");
    ck_assert_str_eq(r.out, "");
    cli_result_free(&r);
}
END_TEST

/* ---- inspect ------------------------------------------------------------ */

START_TEST(test_cli_inspect_safetensors_lists_tensors)
{
    const char *path = test_tmp_path("inspect.safetensors");
    write_safetensors(path);
    cli_result r = run_cli((const char *[]){"inspect", path, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "format:    safetensors");
    assert_contains(r.out, "embed.weight");
    assert_contains(r.out, "[3, 4]");
    assert_contains(r.out, "F32");
    assert_contains(r.out, "ids");
    assert_contains(r.out, "I32");
    assert_contains(r.out, "[5]");
    assert_contains(r.out, "F16");
    assert_contains(r.out, "[]");
    assert_contains(r.out, "format = pt");
    assert_contains(r.out, "3 tensors, 18 elements, 70 bytes");
    cli_result_free(&r);
}
END_TEST

static const cJSON *json_tensor(const cJSON *root, int i)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    ck_assert(cJSON_IsArray(arr));
    const cJSON *t = cJSON_GetArrayItem(arr, i);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void assert_json_shape(const cJSON *obj, int n, const int *want)
{
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    ck_assert(cJSON_IsArray(shape));
    ck_assert_int_eq(cJSON_GetArraySize(shape), n);
    for (int d = 0; d < n; d++)
        ck_assert_int_eq(cJSON_GetArrayItem(shape, d)->valueint, want[d]);
}

START_TEST(test_cli_inspect_json_parses)
{
    const char *path = test_tmp_path("json.safetensors");
    write_safetensors(path);
    cli_result r = run_cli((const char *[]){"inspect", "--json", path, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    cJSON *root = cJSON_Parse(r.out);
    ck_assert_msg(root != NULL, "not JSON: %s", r.out);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "format")->valuestring, "safetensors");
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "tensors")), 3);
    const cJSON *t0 = json_tensor(root, 0);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(t0, "name")->valuestring, "embed.weight");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(t0, "dtype")->valuestring, "F32");
    assert_json_shape(t0, 2, (const int[]){3, 4});
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(t0, "nbytes")->valueint, 48);
    assert_json_shape(json_tensor(root, 1), 1, (const int[]){5});
    assert_json_shape(json_tensor(root, 2), 0, NULL);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "metadata");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(meta, "format")->valuestring, "pt");
    const cJSON *total = cJSON_GetObjectItemCaseSensitive(root, "total");
    ck_assert_int_eq(cJSON_GetObjectItemCaseSensitive(total, "numel")->valueint, 18);
    cJSON_Delete(root);
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_inspect_missing_file_fails)
{
    const char *path = test_tmp_path("no-such-file.safetensors");
    cli_result r = run_cli((const char *[]){"inspect", path, NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, library_open_error(path));
    assert_contains(r.err, "no-such-file.safetensors");
    ck_assert_str_eq(r.out, "");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_inspect_corrupt_file_fails)
{
    const char *path = test_tmp_path("corrupt.safetensors");
    const unsigned char bytes[] = {0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                   '{',  '"',  'a',  '"',  ':',  '[',  '1'};
    write_bytes(path, bytes, sizeof bytes);
    cli_result r = run_cli((const char *[]){"inspect", "--json", path, NULL});
    ck_assert_int_eq(r.status, 1);
    assert_contains(r.err, library_open_error(path));
    ck_assert_str_eq(r.out, "");
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_inspect_npy_by_content)
{
    /* No .npy extension: the magic decides. */
    const char *path = test_tmp_path("ids.bin");
    write_npy(path);
    cli_result r = run_cli((const char *[]){"inspect", path, NULL});
    ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
    assert_contains(r.out, "format:    npy");
    assert_contains(r.out, "dtype:     I32");
    assert_contains(r.out, "shape:     [2, 3]");
    assert_contains(r.out, "bytes:     24");
    cli_result_free(&r);

    r = run_cli((const char *[]){"inspect", "--json", path, NULL});
    ck_assert_int_eq(r.status, 0);
    cJSON *root = cJSON_Parse(r.out);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "format")->valuestring, "npy");
    assert_json_shape(root, 2, (const int[]){2, 3});
    cJSON_Delete(root);
    cli_result_free(&r);
}
END_TEST

/* ---- selftest ----------------------------------------------------------- */

START_TEST(test_cli_selftest_passes)
{
    cli_result r = run_cli((const char *[]){"--threads", "2", "selftest", NULL});
    ck_assert_msg(r.status == 0, "exit %d:\n%s\n%s", r.status, r.out, r.err);
    const char *ops[] = {"sgemm", "gelu_forward", "layernorm_forward", "softmax_rows",
                         "topk_rows", "safetensors"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        assert_contains(r.out, ops[i]);
    assert_contains(r.out, "pass\n");
    assert_contains(r.out, "all 6 checks passed");
    ck_assert_ptr_null(strstr(r.out, "FAIL"));
    cli_result_free(&r);
}
END_TEST

START_TEST(test_cli_selftest_keep_is_deterministic)
{
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s", test_tmp_path("keep-a.safetensors"));
    snprintf(b, sizeof b, "%s", test_tmp_path("keep-b.safetensors"));
    cli_result r1 = run_cli((const char *[]){"--seed", "42", "selftest", "--keep", a, NULL});
    cli_result r2 = run_cli((const char *[]){"--seed", "42", "selftest", "--keep", b, NULL});
    ck_assert_msg(r1.status == 0 && r2.status == 0, "%s\n%s", r1.err, r2.err);
    struct stat sa, sb;
    ck_assert_int_eq(stat(a, &sa), 0);
    ck_assert_int_eq(stat(b, &sb), 0);
    ck_assert_int_eq(sa.st_size, sb.st_size);
    cli_result_free(&r1);
    cli_result_free(&r2);

    r1 = run_cli((const char *[]){"inspect", a, NULL});
    ck_assert_int_eq(r1.status, 0);
    assert_contains(r1.out, "sgemm.a");
    assert_contains(r1.out, "topk.indices");
    assert_contains(r1.out, "seed = 42");
    cli_result_free(&r1);
    char *ba = slurp(a), *bb = slurp(b);
    ck_assert_int_eq(memcmp(ba, bb, (size_t)sa.st_size), 0);
    free(ba);
    free(bb);
}
END_TEST

Suite *scalar_cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cli_help_lists_commands);
    tcase_add_test(tc, test_cli_version_matches_library);
    tcase_add_test(tc, test_cli_unknown_command_is_usage_error);
    tcase_add_test(tc, test_cli_usage_errors_exit_2);
    tcase_add_test(tc, test_cli_help_for_each_command);
    tcase_add_test(tc, test_cli_info_names_backend_and_blis);
    tcase_add_test(tc, test_cli_info_marks_chosen_backend);
    tcase_add_test(tc, test_cli_unknown_backend_fails);
    tcase_add_test(tc, test_cli_inspect_safetensors_lists_tensors);
    tcase_add_test(tc, test_cli_inspect_json_parses);
    tcase_add_test(tc, test_cli_inspect_missing_file_fails);
    tcase_add_test(tc, test_cli_inspect_corrupt_file_fails);
    tcase_add_test(tc, test_cli_inspect_npy_by_content);
    tcase_add_test(tc, test_cli_selftest_passes);
    tcase_add_test(tc, test_cli_selftest_keep_is_deterministic);
    suite_add_tcase(s, tc);
    return s;
}
