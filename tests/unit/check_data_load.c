/*
 * check_data_load.c - datasets from files: text, .npy (uint16, int32), .bin,
 * the format by extension or by option, several files concatenated, every
 * malformed input, Tiny Shakespeare's split, and allocation failures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check_data.h"

static unsigned char buf[4096];

/* Writes a version-1 .npy of `descr` with `shape` (a tuple's text) to `name`. */
static const char *write_npy(const char *name, const char *descr, const char *shape,
                             const void *data, size_t nbytes)
{
    char dict[160];
    const char *path = test_tmp_path(name);
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
             shape);
    io_write_file(path, buf, io_npy_build(buf, sizeof buf, 1, dict, data, nbytes));
    return path;
}

static const char *write_text(const char *name, const char *text)
{
    const char *path = test_tmp_path(name);
    io_write_file(path, text, strlen(text));
    return path;
}

/* Little-endian uint16 ids as a .bin body. */
static const char *write_u16(const char *name, const uint16_t *ids, size_t n)
{
    unsigned char b[64];
    ck_assert_uint_le(2 * n, sizeof b);
    for (size_t i = 0; i < n; i++) {
        b[2 * i] = (unsigned char)(ids[i] & 0xFF);
        b[2 * i + 1] = (unsigned char)(ids[i] >> 8);
    }
    const char *path = test_tmp_path(name);
    io_write_file(path, b, 2 * n);
    return path;
}

static scalar_dataset_options opts(int32_t format, int32_t vocab)
{
    scalar_dataset_options o;
    scalar_dataset_options_init(&o, sizeof o);
    o.split_multiple = 1;
    o.format = format;
    o.vocab = vocab;
    return o;
}

/* All tokens of `ds` equal `want[n]`, and its vocabulary is `vocab`. */
static void assert_tokens(const scalar_dataset *ds, const int32_t *want, int64_t n, int32_t vocab)
{
    int32_t got[64], v = -1;
    ck_assert_int_le(n, 64);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_ALL), n);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_ALL, 0, n, got), SCALAR_OK);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "token %lld: %d, expected %d", (long long)i, got[i],
                      want[i]);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &v), SCALAR_OK);
    ck_assert_int_eq(v, vocab);
}

/* Load `path` with `o`, expect `status` and `msg` in the message, *out NULL. */
static void load_fails(const char *path, const scalar_dataset_options *o, scalar_status status,
                       const char *msg)
{
    scalar_dataset *ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_load(&ds, io_ctx, path, o), status, msg);
    ck_assert_ptr_null(ds);
}

/* ---- formats ---- */

START_TEST(test_load_text_by_extension)
{
    static const int32_t want[6] = {'T', 'o', ' ', '?', 'b', '\n'};
    scalar_dataset *ds = NULL;
    const char *paths[] = {write_text("plain.txt", "To \xe2" "b\n"),
                           write_text("noext", "To \xe2" "b\n"),
                           write_text("dotted.dir.x", "To \xe2" "b\n")};
    for (size_t i = 0; i < 3; i++) {
        scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 0);
        DATA_OK(scalar_dataset_load(&ds, io_ctx, paths[i], &o), ds);
        assert_tokens(ds, want, 6, 128);
        ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 5); /* floor(6 * 0.9) */
        scalar_dataset_free(ds);
    }
    DATA_OK(scalar_dataset_load(&ds, io_ctx, paths[0], NULL), ds); /* defaults */
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 0);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_VAL), 6);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_load_npy_uint16_and_int32)
{
    static const uint16_t u2[4] = {50256, 0, 7, 65535};
    static const int32_t i4[3] = {5, 70000, 0};
    static const int32_t want_u2[4] = {50256, 0, 7, 65535}, want_i4[3] = {5, 70000, 0};
    scalar_dataset *ds = NULL;
    scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 0);
    DATA_OK(scalar_dataset_load(&ds, io_ctx, write_npy("u2.npy", "<u2", "(4,)", u2, sizeof u2),
                                &o),
            ds);
    assert_tokens(ds, want_u2, 4, 65536);
    scalar_dataset_free(ds);
    DATA_OK(scalar_dataset_load(&ds, io_ctx, write_npy("i4.npy", "<i4", "(3,)", i4, sizeof i4),
                                &o),
            ds);
    assert_tokens(ds, want_i4, 3, 70001);
    scalar_dataset_free(ds);
    o.vocab = 100000;
    DATA_OK(scalar_dataset_load(&ds, io_ctx, test_tmp_path("i4.npy"), &o), ds);
    assert_tokens(ds, want_i4, 3, 100000);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_load_bin_uint16_little_endian)
{
    static const uint16_t ids[4] = {1, 258, 65535, 0};
    static const int32_t want[4] = {1, 258, 65535, 0};
    scalar_dataset *ds = NULL;
    scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 0);
    const char *path = write_u16("ids.bin", ids, 4);
    unsigned char raw[8];
    ck_assert_uint_eq(io_read_file(path, raw, sizeof raw), 8);
    ck_assert_uint_eq(raw[2], 2); /* 258 = 0x0102, low byte first */
    ck_assert_uint_eq(raw[3], 1);
    DATA_OK(scalar_dataset_load(&ds, io_ctx, path, &o), ds);
    assert_tokens(ds, want, 4, 65536);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_load_format_option_overrides_extension)
{
    static const uint16_t ids[2] = {300, 2};
    static const int32_t want_bin[2] = {300, 2}, want_bytes[4] = {0x2C, 1, 2, 0};
    static const int32_t i4[2] = {9, 8}, want_npy[2] = {9, 8};
    scalar_dataset *ds = NULL;
    scalar_dataset_options o = opts(SCALAR_DATA_BIN_U16, 0);
    DATA_OK(scalar_dataset_load(&ds, io_ctx, write_u16("ids.dat", ids, 2), &o), ds);
    assert_tokens(ds, want_bin, 2, 301);
    scalar_dataset_free(ds);
    o = opts(SCALAR_DATA_TEXT, 0); /* a .bin read as bytes: 0x2C 0x01 0x02 0x00 */
    DATA_OK(scalar_dataset_load(&ds, io_ctx, write_u16("text.bin", ids, 2), &o), ds);
    assert_tokens(ds, want_bytes, 4, 128);
    scalar_dataset_free(ds);
    o = opts(SCALAR_DATA_NPY, 0);
    DATA_OK(scalar_dataset_load(&ds, io_ctx, write_npy("ids.txt", "<i4", "(2,)", i4, sizeof i4),
                                &o),
            ds);
    assert_tokens(ds, want_npy, 2, 10);
    scalar_dataset_free(ds);
}
END_TEST

START_TEST(test_load_files_concatenates_in_order)
{
    static const uint16_t u2[1] = {300};
    static const int32_t i4[2] = {5, 6};
    static const int32_t want[5] = {'a', 'b', 300, 5, 6}, want_rev[5] = {5, 6, 300, 'a', 'b'};
    const char *paths[3] = {write_text("cat-a.txt", "ab"), write_u16("cat-b.bin", u2, 1),
                            write_npy("cat-c.npy", "<i4", "(2,)", i4, sizeof i4)};
    const char *rev[3] = {paths[2], paths[1], paths[0]};
    scalar_dataset *ds = NULL;
    scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 0);
    o.val_fraction = 0.4;
    DATA_OK(scalar_dataset_load_files(&ds, io_ctx, paths, 3, &o), ds);
    assert_tokens(ds, want, 5, 301);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 3); /* the split is over the whole */
    scalar_dataset_free(ds);
    DATA_OK(scalar_dataset_load_files(&ds, io_ctx, rev, 3, &o), ds);
    assert_tokens(ds, want_rev, 5, 301);
    scalar_dataset_free(ds);
    /* Small ids plus text: the vocabulary is at least the tokenizer's. */
    const char *two[2] = {paths[2], paths[0]};
    const int32_t want_two[4] = {5, 6, 'a', 'b'};
    DATA_OK(scalar_dataset_load_files(&ds, io_ctx, two, 2, &o), ds);
    assert_tokens(ds, want_two, 4, 128);
    scalar_dataset_free(ds);
    /* One file through load_files is load. */
    DATA_OK(scalar_dataset_load_files(&ds, io_ctx, paths, 1, &o), ds);
    assert_tokens(ds, want, 2, 128);
    scalar_dataset_free(ds);
}
END_TEST

/* ---- bad input ---- */

START_TEST(test_load_missing_file_names_path_and_reason)
{
    char reason[256];
    snprintf(reason, sizeof reason, ": %s", strerror(ENOENT));
    const char *kinds[3] = {"missing.txt", "missing.npy", "missing.bin"};
    for (int i = 0; i < 3; i++) {
        const char *path = test_tmp_path(kinds[i]);
        load_fails(path, NULL, SCALAR_E_IO, path);
        ck_assert_ptr_nonnull(strstr(scalar_last_error(), reason));
        ck_assert_ptr_nonnull(strstr(scalar_last_error(), "scalar_dataset_load: "));
    }
    /* Among several files, the missing one is named. */
    const char *paths[2] = {write_text("present.txt", "abc"), test_tmp_path("absent.txt")};
    scalar_dataset *ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 2, NULL), SCALAR_E_IO,
              "scalar_dataset_load_files: ");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), paths[1]));
    ck_assert_ptr_null(ds);
    /* A folder is not a token file. */
    load_fails(test_tmp_path(""), NULL, SCALAR_E_IO, "not a regular file");
}
END_TEST

START_TEST(test_load_empty_files_are_format_errors)
{
    static const int32_t none[1] = {0};
    load_fails(write_text("empty.txt", ""), NULL, SCALAR_E_FORMAT, "the text file holds no tokens");
    load_fails(write_text("empty.bin", ""), NULL, SCALAR_E_FORMAT, "the bin file holds no tokens");
    load_fails(write_npy("empty.npy", "<i4", "(0,)", none, 0), NULL, SCALAR_E_FORMAT,
               "the npy file holds no tokens");
    const char *paths[2] = {write_text("nonempty.txt", "abc"), test_tmp_path("empty.txt")};
    scalar_dataset *ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 2, NULL), SCALAR_E_FORMAT,
              "empty.txt: the text file holds no tokens");
}
END_TEST

START_TEST(test_load_npy_wrong_dtype_or_rank)
{
    static const float f4[3] = {1, 2, 3};
    static const double f8[3] = {1, 2, 3};
    static const int32_t i4[6] = {1, 2, 3, 4, 5, 6};
    load_fails(write_npy("f4.npy", "<f4", "(3,)", f4, sizeof f4), NULL, SCALAR_E_FORMAT,
               "token ids must be uint16 or int32, not F32");
    load_fails(write_npy("f8.npy", "<f8", "(3,)", f8, sizeof f8), NULL, SCALAR_E_FORMAT,
               "token ids must be a 1-D uint16 or int32 array");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "<f8")); /* the reader's reason, kept */
    load_fails(write_npy("i4x2.npy", "<i4", "(2, 3)", i4, sizeof i4), NULL, SCALAR_E_FORMAT,
               "token ids must be a 1-D array, not 2-D");
    load_fails(write_npy("i4x0.npy", "<i4", "()", i4, 4), NULL, SCALAR_E_FORMAT, "not 0-D");
    const char *path = test_tmp_path("badmagic.npy");
    io_write_file(path, "\x93NUMPX\x01\x00....", 12);
    load_fails(path, NULL, SCALAR_E_FORMAT, "magic");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "scalar_dataset_load: "));
}
END_TEST

START_TEST(test_load_bin_odd_length)
{
    load_fails(write_text("odd.bin", "abc"), NULL, SCALAR_E_FORMAT,
               "odd.bin: a .bin file of uint16 ids has an even length, not 3 bytes");
}
END_TEST

START_TEST(test_load_negative_npy_id)
{
    static const int32_t i4[3] = {1, -4, 2};
    const char *path = write_npy("neg.npy", "<i4", "(3,)", i4, sizeof i4);
    load_fails(path, NULL, SCALAR_E_FORMAT, "id -4 at index 1 is negative");
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), path));
}
END_TEST

START_TEST(test_load_ids_beyond_vocab)
{
    static const uint16_t ids[3] = {1, 2, 70};
    static const int32_t i4[2] = {0, 49};
    scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 50);
    load_fails(write_u16("big.bin", ids, 3), &o, SCALAR_E_FORMAT,
               "big.bin: id 70 at index 2 is not below the vocabulary size 50");
    load_fails(write_npy("big.npy", "<u2", "(3,)", ids, sizeof ids), &o, SCALAR_E_FORMAT,
               "id 70 at index 2");
    o.vocab = 100;
    load_fails(write_text("big.txt", "a z"), &o, SCALAR_E_FORMAT,
               "big.txt: id 122 at index 2 is not below the vocabulary size 100");
    /* The index counts within the file named, not the concatenation. */
    const char *paths[2] = {write_npy("ok.npy", "<i4", "(2,)", i4, sizeof i4),
                            test_tmp_path("big.bin")};
    o.vocab = 50;
    scalar_dataset *ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 2, &o), SCALAR_E_FORMAT,
              "big.bin: id 70 at index 2");
    ck_assert_ptr_null(ds);
}
END_TEST

START_TEST(test_load_rejects_bad_arguments)
{
    const char *path = write_text("args.txt", "abcdef");
    const char *paths[2] = {path, NULL};
    scalar_dataset *ds = (scalar_dataset *)&ds;
    IO_EXPECT(scalar_dataset_load(&ds, NULL, path, NULL), SCALAR_E_INVALID_ARG, "NULL");
    ck_assert_ptr_null(ds);
    IO_EXPECT(scalar_dataset_load(&ds, io_ctx, NULL, NULL), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_load(NULL, io_ctx, path, NULL), SCALAR_E_INVALID_ARG, "NULL");
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, NULL, 1, NULL), SCALAR_E_INVALID_ARG,
              "NULL");
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 0, NULL), SCALAR_E_INVALID_ARG,
              "n_paths is 0");
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 2, NULL), SCALAR_E_INVALID_ARG,
              "paths[1] is NULL");
    IO_EXPECT(scalar_dataset_load_files(&ds, NULL, paths, 1, NULL), SCALAR_E_INVALID_ARG, "NULL");
    scalar_dataset_options o = opts(SCALAR_DATA_AUTO, 0);
    o.val_fraction = 1.0;
    IO_EXPECT(scalar_dataset_load(&ds, io_ctx, path, &o), SCALAR_E_INVALID_ARG, "val_fraction");
    o = opts(SCALAR_DATA_AUTO, 0);
    o.split_multiple = 0;
    IO_EXPECT(scalar_dataset_load_files(&ds, io_ctx, paths, 1, &o), SCALAR_E_INVALID_ARG,
              "scalar_dataset_load_files: split_multiple=0");
    o = opts(9, 0);
    IO_EXPECT(scalar_dataset_load(&ds, io_ctx, path, &o), SCALAR_E_INVALID_ARG, "format=9");
    ck_assert_ptr_null(ds);
}
END_TEST

/* ---- Tiny Shakespeare (SPEC 1) ---- */

START_TEST(test_load_tiny_shakespeare_split)
{
    const char *dir = getenv("SCALAR_SHARED_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/tinyshakespeare.txt", dir && *dir ? dir : "../shared/data");
    if (access(path, R_OK) != 0) {
        printf("check_data: skipping the Tiny Shakespeare split test: %s is not readable "
               "(set SCALAR_SHARED_DATA)\n", path);
        return;
    }
    scalar_dataset *ds = NULL;
    int32_t first[14], vocab, x[128 * 128], y[128 * 128];
    char text[15];
    DATA_OK(scalar_dataset_load(&ds, io_ctx, path, NULL), ds);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_ALL), 1115394);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_TRAIN), 1003776);
    ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_VAL), 111618);
    ck_assert_int_eq(scalar_dataset_vocab_size(ds, &vocab), SCALAR_OK);
    ck_assert_int_eq(vocab, 128);
    ck_assert_int_eq(scalar_dataset_tokens(ds, SCALAR_SPLIT_TRAIN, 0, 14, first), SCALAR_OK);
    ck_assert_int_eq(scalar_ascii_decode(first, 14, text, sizeof text), SCALAR_OK);
    ck_assert_str_eq(text, "First Citizen:");
    /* The training batch of SPEC 1 (128 x 128) reads from the start. */
    int64_t cursor = 0;
    ck_assert_int_eq(scalar_dataset_batch(ds, SCALAR_SPLIT_TRAIN, &cursor, 128, 128, x, y),
                     SCALAR_OK);
    ck_assert_mem_eq(x, first, sizeof first);
    ck_assert_int_eq(y[0], 'i');
    ck_assert_int_eq(cursor, 128 * 128);
    scalar_dataset_free(ds);
}
END_TEST

/* ---- allocation failures ---- */

START_TEST(test_load_files_survives_every_allocation_failure)
{
    static const uint16_t u2[3] = {1, 2, 3};
    const char *paths[2] = {write_text("alloc.txt", "hello"),
                            write_npy("alloc.npy", "<u2", "(3,)", u2, sizeof u2)};
    long n;
    for (n = 1; n < 100; n++) {
        io_counting c;
        scalar_ctx *ctx = NULL;
        scalar_dataset *ds = (scalar_dataset *)&ds;
        memset(&c, 0, sizeof c);
        ck_assert_int_eq(io_ctx_with(&ctx, &c), SCALAR_OK);
        c.fail_at = c.n_alloc + n;
        scalar_last_error_clear();
        scalar_status s = scalar_dataset_load_files(&ds, ctx, paths, 2, NULL);
        if (s == SCALAR_OK) {
            ck_assert_int_eq(data_n(ds, SCALAR_SPLIT_ALL), 8);
            scalar_dataset_free(ds);
        } else {
            ck_assert_msg(s == SCALAR_E_NOMEM, "failing allocation %ld: got %d (%s)", n, (int)s,
                          scalar_last_error());
            ck_assert_ptr_null(ds);
            ck_assert_ptr_nonnull(strstr(scalar_last_error(), "out of memory"));
        }
        scalar_ctx_free(ctx);
        ck_assert_msg(c.live_bytes == 0, "failing allocation %ld: %zu bytes left", n,
                      c.live_bytes);
        if (s == SCALAR_OK)
            break;
    }
    ck_assert_int_gt(n, 3);
    ck_assert_int_lt(n, 100);
}
END_TEST

void data_add_load_tests(Suite *s)
{
    TCase *tc = io_tcase("load");
    tcase_add_test(tc, test_load_text_by_extension);
    tcase_add_test(tc, test_load_npy_uint16_and_int32);
    tcase_add_test(tc, test_load_bin_uint16_little_endian);
    tcase_add_test(tc, test_load_format_option_overrides_extension);
    tcase_add_test(tc, test_load_files_concatenates_in_order);
    tcase_add_test(tc, test_load_missing_file_names_path_and_reason);
    tcase_add_test(tc, test_load_empty_files_are_format_errors);
    tcase_add_test(tc, test_load_npy_wrong_dtype_or_rank);
    tcase_add_test(tc, test_load_bin_odd_length);
    tcase_add_test(tc, test_load_negative_npy_id);
    tcase_add_test(tc, test_load_ids_beyond_vocab);
    tcase_add_test(tc, test_load_rejects_bad_arguments);
    tcase_add_test(tc, test_load_tiny_shakespeare_split);
    tcase_add_test(tc, test_load_files_survives_every_allocation_failure);
    suite_add_tcase(s, tc);
}
