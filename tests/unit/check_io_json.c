/*
 * check_io_json.c - the internal JSON config reader (lib/io/json.h): what it
 * accepts, what it refuses (UTF-8, root type, duplicates, trailing data,
 * size), and the typed getters with dotted paths, defaults and ranges.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check_io.h"
#include "io/json.h"

static const char cfg[] =
    "{\"architecture\": \"topk\", \"d_in\": 768, \"d_sae\": 24576, \"k\": 32, \"lr\": 4e-4,\n"
    " \"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\",\n"
    " \"activation_fn_kwargs\": {\"k\": 32},\n"
    " \"metadata\": {\"hook_name\": \"blocks.8.hook_resid_pre\", \"hook_layer\": 8,\n"
    "              \"deep\": {\"x\": {\"y\": -3}}},\n"
    " \"neg\": -5, \"big\": 9007199254740992, \"bigger\": 18014398509481984,\n"
    " \"frac\": 1.5, \"huge\": 1e999, \"str_num\": \"12\", \"t\": true, \"f\": false,\n"
    " \"empty\": \"\", \"list\": [1, 2], \"obj\": {}, \"zero\": -0.0, \"exp\": 1E+2}\n";

static void parse_ok(scalar__json *j, const char *text, size_t n, const char *source)
{
    scalar_last_error_clear();
    scalar_status s = scalar__json_parse(j, text, n, source);
    ck_assert_msg(s == SCALAR_OK, "parse: got %d (%s)", (int)s, scalar_last_error());
    ck_assert_ptr_nonnull(j->root);
}

static void parse_fails(const char *text, size_t n, scalar_status want, const char *msg,
                        const char *what)
{
    scalar__json j;
    memset(&j, 0xA5, sizeof j);
    scalar_last_error_clear();
    scalar_status s = scalar__json_parse(&j, text, n, "test.json");
    ck_assert_msg(s == want, "%s: got %d, expected %d (message: \"%s\")", what, (int)s, (int)want,
                  scalar_last_error());
    ck_assert_msg(j.root == NULL, "%s: root not NULL after a failure", what);
    ck_assert_msg(strstr(scalar_last_error(), msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
                  what, scalar_last_error(), msg);
    ck_assert_msg(strstr(scalar_last_error(), "test.json") != NULL,
                  "%s: message \"%s\" lacks the source", what, scalar_last_error());
    scalar__json_free(&j); /* safe after a failure */
}

#define FAILS(lit, want, msg) parse_fails(lit, sizeof(lit) - 1, want, msg, #lit)

START_TEST(test_json_getters_read_values_by_dotted_path)
{
    scalar__json j;
    int64_t i;
    double d;
    const char *s;
    int b;
    parse_ok(&j, cfg, strlen(cfg), "cfg.json");
    ck_assert_int_eq(scalar__json_string(&s, &j, "metadata.hook_name", 1, NULL), SCALAR_OK);
    ck_assert_str_eq(s, "blocks.8.hook_resid_pre");
    ck_assert_int_eq(scalar__json_string(&s, &j, "architecture", 1, NULL), SCALAR_OK);
    ck_assert_str_eq(s, "topk");
    ck_assert_int_eq(scalar__json_string(&s, &j, "empty", 1, "x"), SCALAR_OK);
    ck_assert_str_eq(s, "");
    ck_assert_int_eq(scalar__json_int(&i, &j, "activation_fn_kwargs.k", 1, 0, 1, 1000), SCALAR_OK);
    ck_assert_int_eq(i, 32);
    ck_assert_int_eq(scalar__json_int(&i, &j, "metadata.deep.x.y", 1, 0, -10, 10), SCALAR_OK);
    ck_assert_int_eq(i, -3);
    ck_assert_int_eq(scalar__json_int(&i, &j, "d_in", 1, 0, 768, 768), SCALAR_OK); /* bounds */
    ck_assert_int_eq(i, 768);
    ck_assert_int_eq(scalar__json_int(&i, &j, "big", 1, 0, INT64_MIN, INT64_MAX), SCALAR_OK);
    ck_assert_int_eq(i, INT64_C(9007199254740992));
    ck_assert_int_eq(scalar__json_int(&i, &j, "exp", 1, 0, 0, 1000), SCALAR_OK);
    ck_assert_int_eq(i, 100);
    ck_assert_int_eq(scalar__json_int(&i, &j, "zero", 1, 5, -1, 1), SCALAR_OK);
    ck_assert_int_eq(i, 0);
    ck_assert_int_eq(scalar__json_double(&d, &j, "lr", 1, 0), SCALAR_OK);
    ck_assert_double_eq(d, 4e-4);
    ck_assert_int_eq(scalar__json_double(&d, &j, "k", 1, 0), SCALAR_OK); /* ints are numbers */
    ck_assert_double_eq(d, 32.0);
    ck_assert_int_eq(scalar__json_bool(&b, &j, "apply_b_dec_to_input", 1, 0), SCALAR_OK);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(scalar__json_bool(&b, &j, "f", 1, 1), SCALAR_OK);
    ck_assert_int_eq(b, 0);

    const cJSON *node = scalar__json_find(&j, "metadata.hook_layer");
    ck_assert_ptr_nonnull(node);
    ck_assert(cJSON_IsNumber(node));
    ck_assert_ptr_null(scalar__json_find(&j, "metadata.hook_name.x"));
    ck_assert_ptr_null(scalar__json_find(&j, "metadata.nope"));
    ck_assert_ptr_null(scalar__json_find(&j, "nope.hook_name"));
    ck_assert_ptr_null(scalar__json_find(NULL, "k"));
    scalar__json_free(&j);
    ck_assert_ptr_null(j.root);
    scalar__json_free(&j); /* twice is harmless */
}
END_TEST

START_TEST(test_json_missing_keys_required_and_optional)
{
    scalar__json j;
    int64_t i = 0;
    double d = 0;
    const char *s = NULL;
    int b = 0;
    parse_ok(&j, cfg, strlen(cfg), "cfg.json");
    IO_EXPECT(scalar__json_int(&i, &j, "d_model", 1, 0, 0, 10), SCALAR_E_FORMAT, "\"d_model\"");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "cfg.json"));
    IO_EXPECT(scalar__json_string(&s, &j, "metadata.model_name", 1, NULL), SCALAR_E_FORMAT,
              "metadata.model_name");
    IO_EXPECT(scalar__json_double(&d, &j, "l1_coefficient", 1, 0), SCALAR_E_FORMAT,
              "l1_coefficient");
    IO_EXPECT(scalar__json_bool(&b, &j, "d_in.x", 1, 0), SCALAR_E_FORMAT, "d_in.x");

    ck_assert_int_eq(scalar__json_int(&i, &j, "d_model", 0, 7, 0, 10), SCALAR_OK);
    ck_assert_int_eq(i, 7);
    ck_assert_int_eq(scalar__json_double(&d, &j, "metadata.scale", 0, 0.25), SCALAR_OK);
    ck_assert_double_eq(d, 0.25);
    ck_assert_int_eq(scalar__json_string(&s, &j, "activation_fn_kwargs.kind", 0, "dflt"),
                     SCALAR_OK);
    ck_assert_str_eq(s, "dflt");
    ck_assert_int_eq(scalar__json_bool(&b, &j, "nope", 0, 1), SCALAR_OK);
    ck_assert_int_eq(b, 1);
    scalar__json_free(&j);
}
END_TEST

START_TEST(test_json_getters_reject_wrong_types_and_ranges)
{
    scalar__json j;
    int64_t i;
    double d;
    const char *s;
    int b;
    parse_ok(&j, cfg, strlen(cfg), "cfg.json");
    IO_EXPECT(scalar__json_int(&i, &j, "architecture", 1, 0, 0, 10), SCALAR_E_FORMAT,
              "\"architecture\"");
    IO_EXPECT(scalar__json_int(&i, &j, "str_num", 0, 0, 0, 100), SCALAR_E_FORMAT, "str_num");
    IO_EXPECT(scalar__json_int(&i, &j, "t", 0, 0, 0, 10), SCALAR_E_FORMAT, "\"t\"");
    IO_EXPECT(scalar__json_int(&i, &j, "frac", 1, 0, 0, 10), SCALAR_E_FORMAT, "frac");
    IO_EXPECT(scalar__json_int(&i, &j, "bigger", 1, 0, INT64_MIN, INT64_MAX), SCALAR_E_FORMAT,
              "bigger");
    IO_EXPECT(scalar__json_int(&i, &j, "huge", 1, 0, INT64_MIN, INT64_MAX), SCALAR_E_FORMAT,
              "huge");
    IO_EXPECT(scalar__json_int(&i, &j, "metadata", 1, 0, 0, 10), SCALAR_E_FORMAT, "metadata");
    IO_EXPECT(scalar__json_int(&i, &j, "d_sae", 1, 0, 1, 1000), SCALAR_E_FORMAT, "d_sae");
    IO_EXPECT(scalar__json_int(&i, &j, "neg", 1, 0, 0, 1000), SCALAR_E_FORMAT, "neg");
    IO_EXPECT(scalar__json_int(&i, &j, "d_in", 1, 0, 769, 1000), SCALAR_E_FORMAT, "d_in");
    IO_EXPECT(scalar__json_int(&i, &j, "d_in", 1, 0, 0, 767), SCALAR_E_FORMAT, "d_in");
    ck_assert_int_eq(scalar__json_int(&i, &j, "neg", 1, 0, -10, 10), SCALAR_OK);
    ck_assert_int_eq(i, -5);

    IO_EXPECT(scalar__json_double(&d, &j, "architecture", 1, 0), SCALAR_E_FORMAT, "architecture");
    IO_EXPECT(scalar__json_double(&d, &j, "t", 0, 0), SCALAR_E_FORMAT, "\"t\"");
    IO_EXPECT(scalar__json_double(&d, &j, "list", 0, 0), SCALAR_E_FORMAT, "list");
    IO_EXPECT(scalar__json_double(&d, &j, "huge", 1, 0), SCALAR_E_FORMAT, "huge");

    IO_EXPECT(scalar__json_string(&s, &j, "k", 1, NULL), SCALAR_E_FORMAT, "\"k\"");
    IO_EXPECT(scalar__json_string(&s, &j, "obj", 0, "x"), SCALAR_E_FORMAT, "obj");
    IO_EXPECT(scalar__json_string(&s, &j, "t", 0, "x"), SCALAR_E_FORMAT, "\"t\"");

    IO_EXPECT(scalar__json_bool(&b, &j, "k", 1, 0), SCALAR_E_FORMAT, "\"k\"");
    IO_EXPECT(scalar__json_bool(&b, &j, "normalize_activations", 0, 0), SCALAR_E_FORMAT,
              "normalize_activations");
    IO_EXPECT(scalar__json_bool(&b, &j, "list", 0, 0), SCALAR_E_FORMAT, "list");
    scalar__json_free(&j);
}
END_TEST

START_TEST(test_json_rejects_root_not_object)
{
    FAILS("[1, 2]", SCALAR_E_FORMAT, "object");
    FAILS("\"text\"", SCALAR_E_FORMAT, "object");
    FAILS("42", SCALAR_E_FORMAT, "object");
    FAILS("null", SCALAR_E_FORMAT, "object");
    FAILS("true", SCALAR_E_FORMAT, "object");
    FAILS("[{\"a\": 1}]", SCALAR_E_FORMAT, "object");
}
END_TEST

START_TEST(test_json_rejects_duplicate_keys)
{
    FAILS("{\"a\": 1, \"b\": 2, \"a\": 3}", SCALAR_E_FORMAT, "duplicate");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "\"a\""));
    FAILS("{\"metadata\": {\"hook_name\": \"x\", \"hook_name\": \"y\"}}", SCALAR_E_FORMAT,
          "duplicate");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "hook_name"));
    FAILS("{\"a\": {\"b\": {\"c\": {\"d\": 1, \"d\": 1}}}}", SCALAR_E_FORMAT, "duplicate");
    FAILS("{\"list\": [1, {\"y\": 1, \"y\": 2}]}", SCALAR_E_FORMAT, "duplicate");
    FAILS("{\"\": 1, \"\": 2}", SCALAR_E_FORMAT, "duplicate");

    /* Same key in different objects, or differing in case, is fine. */
    scalar__json j;
    const char ok[] =
        "{\"a\": {\"x\": 1}, \"b\": {\"x\": 2}, \"X\": 3, \"x\": 4, \"l\": [{\"x\": 5}]}";
    parse_ok(&j, ok, sizeof ok - 1, "ok.json");
    int64_t v;
    ck_assert_int_eq(scalar__json_int(&v, &j, "b.x", 1, 0, 0, 10), SCALAR_OK);
    ck_assert_int_eq(v, 2);
    ck_assert_int_eq(scalar__json_int(&v, &j, "X", 1, 0, 0, 10), SCALAR_OK);
    ck_assert_int_eq(v, 3);
    scalar__json_free(&j);
}
END_TEST

START_TEST(test_json_rejects_invalid_utf8)
{
    FAILS("{\"k\": \"\xC0\xAF\"}", SCALAR_E_FORMAT, "UTF-8");         /* overlong '/' */
    FAILS("{\"k\": \"\xED\xA0\x80\"}", SCALAR_E_FORMAT, "UTF-8");     /* surrogate D800 */
    FAILS("{\"k\": \"\xF4\x90\x80\x80\"}", SCALAR_E_FORMAT, "UTF-8"); /* U+110000 */
    FAILS("{\"\xC0\xAF\": 1}", SCALAR_E_FORMAT, "UTF-8");             /* in a key */
    FAILS("{\"k\": \"\x80\"}", SCALAR_E_FORMAT, "UTF-8");             /* lone continuation */
    FAILS("{\"k\": \"\xFF\"}", SCALAR_E_FORMAT, "UTF-8");
    FAILS("{\"k\": 1} \xE2\x82", SCALAR_E_FORMAT, "UTF-8"); /* truncated at the end */
}
END_TEST

START_TEST(test_utf8_valid_direct)
{
    static const char *const valid[] = {
        "",
        "plain ASCII",
        "caf\xC3\xA9",                    /* U+00E9 */
        "\xE2\x82\xAC",                   /* U+20AC */
        "\xF0\x9D\x84\x9E",               /* U+1D11E */
        "\xF4\x8F\xBF\xBF",               /* U+10FFFF */
        "\xED\x9F\xBF\xEE\x80\x80",       /* U+D7FF, U+E000 around the surrogates */
        "\xEF\xBF\xBF\xC2\x80\xDF\xBF",   /* U+FFFF, U+0080, U+07FF */
        "\xE0\xA0\x80\xF0\x90\x80\x80",   /* U+0800, U+10000: shortest forms */
        "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E",
    };
    static const char *const invalid[] = {
        "\xC0\xAF", "\xC1\xBF", "\xE0\x80\xAF", "\xE0\x9F\xBF", "\xF0\x80\x80\xAF",
        "\xF0\x8F\xBF\xBF", "\xED\xA0\x80", "\xED\xBF\xBF", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
        "\xF8\x88\x80\x80\x80", "\xFE", "\xFF", "\x80", "\xBF", "\xC3", "\xE2\x82", "\xF0\x9D\x84",
        "\xC3\x28", "\xE2\x28\xA1", "a\xC3\xA9\xE9z",
    };
    for (size_t k = 0; k < sizeof valid / sizeof valid[0]; k++)
        ck_assert_msg(scalar__utf8_valid((const unsigned char *)valid[k], strlen(valid[k])) == 1,
                      "valid[%zu] refused", k);
    for (size_t k = 0; k < sizeof invalid / sizeof invalid[0]; k++)
        ck_assert_msg(
            scalar__utf8_valid((const unsigned char *)invalid[k], strlen(invalid[k])) == 0,
            "invalid[%zu] accepted", k);
    /* Only n bytes count: a valid prefix of an invalid buffer is valid, and a
     * NUL byte is a valid character. */
    ck_assert_int_eq(scalar__utf8_valid((const unsigned char *)"ab\xFF", 2), 1);
    ck_assert_int_eq(scalar__utf8_valid((const unsigned char *)"\xC3\xA9\xFF", 2), 1);
    ck_assert_int_eq(scalar__utf8_valid((const unsigned char *)"\xE2\x82\xAC", 2), 0);
    ck_assert_int_eq(scalar__utf8_valid((const unsigned char *)"a\0b", 3), 1);
}
END_TEST

START_TEST(test_json_rejects_malformed_text)
{
    FAILS("", SCALAR_E_FORMAT, "JSON");
    FAILS("   ", SCALAR_E_FORMAT, "JSON");
    FAILS("{", SCALAR_E_FORMAT, "JSON");
    FAILS("{\"a\": }", SCALAR_E_FORMAT, "JSON");
    FAILS("{'a': 1}", SCALAR_E_FORMAT, "JSON");
    FAILS("{\"a\": 1,}", SCALAR_E_FORMAT, "JSON");
    FAILS("{\"a\" 1}", SCALAR_E_FORMAT, "JSON");
    FAILS("{\"a\": tru}", SCALAR_E_FORMAT, "JSON");
    FAILS("{\"a\": \"unterminated}", SCALAR_E_FORMAT, "JSON");
    FAILS("{} x", SCALAR_E_FORMAT, "trailing");
    FAILS("{}{}", SCALAR_E_FORMAT, "trailing");
    FAILS("{},", SCALAR_E_FORMAT, "trailing");
    FAILS("{}\0", SCALAR_E_FORMAT, "trailing");
    FAILS("{\"a\": 1}\n// comment", SCALAR_E_FORMAT, "trailing");
}
END_TEST

START_TEST(test_json_reads_only_n_bytes)
{
    scalar__json j;
    int64_t v;
    const char text[] = "{\"a\": 1}garbage that is not looked at";
    parse_ok(&j, text, 8, "n.json");
    ck_assert_int_eq(scalar__json_int(&v, &j, "a", 1, 0, 0, 10), SCALAR_OK);
    ck_assert_int_eq(v, 1);
    scalar__json_free(&j);
    parse_ok(&j, "{}\n\t\r  ", 7, "ws.json"); /* trailing whitespace is fine */
    scalar__json_free(&j);
    parse_fails(text, 7, SCALAR_E_FORMAT, "JSON", "cut before the closing brace");
}
END_TEST

/* Deep nesting: refused or accepted, never a crash (cJSON caps the depth). */
START_TEST(test_json_deep_nesting)
{
    static char text[2 * 5000 + 16];
    const int depths[] = {100, 5000};
    for (int k = 0; k < 2; k++) {
        int depth = depths[k];
        size_t n = 0;
        text[n++] = '{';
        memcpy(text + n, "\"a\":", 4);
        n += 4;
        for (int d = 0; d < depth; d++)
            text[n++] = '[';
        for (int d = 0; d < depth; d++)
            text[n++] = ']';
        text[n++] = '}';
        scalar__json j;
        scalar_status s = scalar__json_parse(&j, text, n, "deep.json");
        if (depth == 100) {
            ck_assert_int_eq(s, SCALAR_OK);
            scalar__json_free(&j);
        } else {
            ck_assert_int_eq(s, SCALAR_E_FORMAT);
            ck_assert_ptr_null(j.root);
        }
    }
}
END_TEST

/* Over SCALAR_JSON_MAX_BYTES: refused from the length alone.  The mapping of
 * /dev/zero is never touched, so no memory is spent. */
START_TEST(test_json_rejects_input_over_max_bytes)
{
    size_t n = (size_t)SCALAR_JSON_MAX_BYTES + 1;
    int zfd = open("/dev/zero", O_RDONLY);
    ck_assert_int_ge(zfd, 0);
    void *big = mmap(NULL, n, PROT_READ, MAP_PRIVATE, zfd, 0);
    close(zfd);
    ck_assert(big != MAP_FAILED);
    scalar__json j;
    IO_EXPECT(scalar__json_parse(&j, big, n, "big.json"), SCALAR_E_INVALID_ARG, "big.json");
    ck_assert_ptr_null(j.root);
    munmap(big, n);

    /* And from a file: a sparse file one byte over the cap. */
    const char *path = test_tmp_path("big.json");
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (off_t)n), 0);
    close(fd);
    IO_EXPECT(scalar__json_load(&j, path), SCALAR_E_INVALID_ARG, path);
    ck_assert_ptr_null(j.root);
    unlink(path);
}
END_TEST

START_TEST(test_json_load_files)
{
    scalar__json j;
    const char *s;
    int64_t v;
    const char *path = test_tmp_path("cfg.json");
    io_write_file(path, cfg, strlen(cfg));
    ck_assert_int_eq(scalar__json_load(&j, path), SCALAR_OK);
    ck_assert_int_eq(scalar__json_string(&s, &j, "metadata.hook_name", 1, NULL), SCALAR_OK);
    ck_assert_str_eq(s, "blocks.8.hook_resid_pre");
    /* Messages name the file. */
    IO_EXPECT(scalar__json_int(&v, &j, "n_layer", 1, 0, 1, 100), SCALAR_E_FORMAT, path);
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "n_layer"));
    scalar__json_free(&j);

    const char *missing = test_tmp_path("no-such-cfg.json");
    IO_EXPECT(scalar__json_load(&j, missing), SCALAR_E_IO, missing);
    ck_assert_ptr_null(j.root);

    const char *empty = test_tmp_path("empty.json");
    io_write_file(empty, "", 0);
    IO_EXPECT(scalar__json_load(&j, empty), SCALAR_E_FORMAT, empty);
    ck_assert_ptr_null(j.root);

    const char *dup = test_tmp_path("dup.json");
    io_write_file(dup, "{\"n\": 1, \"n\": 2}", 16);
    IO_EXPECT(scalar__json_load(&j, dup), SCALAR_E_FORMAT, "duplicate");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), dup));
    ck_assert_ptr_null(j.root);
}
END_TEST

void io_add_json_tests(Suite *s)
{
    TCase *tc = io_tcase("json");
    tcase_add_test(tc, test_json_getters_read_values_by_dotted_path);
    tcase_add_test(tc, test_json_missing_keys_required_and_optional);
    tcase_add_test(tc, test_json_getters_reject_wrong_types_and_ranges);
    tcase_add_test(tc, test_json_rejects_root_not_object);
    tcase_add_test(tc, test_json_rejects_duplicate_keys);
    tcase_add_test(tc, test_json_rejects_invalid_utf8);
    tcase_add_test(tc, test_utf8_valid_direct);
    tcase_add_test(tc, test_json_rejects_malformed_text);
    tcase_add_test(tc, test_json_reads_only_n_bytes);
    tcase_add_test(tc, test_json_deep_nesting);
    tcase_add_test(tc, test_json_rejects_input_over_max_bytes);
    tcase_add_test(tc, test_json_load_files);
    suite_add_tcase(s, tc);
}
