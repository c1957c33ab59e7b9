/*
 * check_io_writer.c - the safetensors writer: bit-identical round trips of
 * every dtype, metadata, order, header padding, argument checks, and atomic
 * failures (no temporary file left, the old target untouched).
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_io.h"

static unsigned char filebuf[65536];

static scalar_safetensors_writer *new_writer(void)
{
    scalar_safetensors_writer *w = NULL;
    ck_assert_int_eq(scalar_safetensors_writer_create(&w, io_ctx), SCALAR_OK);
    ck_assert_ptr_nonnull(w);
    return w;
}

static uint64_t header_length(const char *path, size_t *file_size)
{
    size_t n = io_read_file(path, filebuf, sizeof filebuf);
    ck_assert_msg(n != (size_t)-1 && n >= 8, "cannot read %s", path);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | filebuf[i];
    if (file_size)
        *file_size = n;
    return h;
}

START_TEST(test_writer_round_trips_every_dtype_bit_identical)
{
    static unsigned char data[SCALAR_DTYPE_COUNT][96];
    static const int64_t shapes[4][3] = {{12}, {3, 4}, {2, 3, 2}, {0}};
    static const int32_t ranks[4] = {1, 2, 3, 1};
    scalar_safetensors_writer *w = new_writer();
    char names[SCALAR_DTYPE_COUNT][32];
    const char *path = test_tmp_path("every-dtype.safetensors");

    for (int32_t d = 0; d < SCALAR_DTYPE_COUNT; d++) {
        size_t size = scalar_dtype_size(d), nbytes = (d % 4 == 3 ? 0 : 12) * size;
        for (size_t k = 0; k < sizeof data[d]; k++) /* every bit pattern, NaNs included */
            data[d][k] = (unsigned char)(k * 37 + (size_t)d * 11 + 5);
        snprintf(names[d], sizeof names[d], "tensor.%s", scalar_dtype_name(d));
        ck_assert_int_eq(scalar_safetensors_writer_add(w, names[d], d, shapes[d % 4], ranks[d % 4],
                                                       data[d], nbytes),
                         SCALAR_OK);
    }
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);

    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), SCALAR_DTYPE_COUNT);
    for (int32_t d = 0; d < SCALAR_DTYPE_COUNT; d++) {
        int64_t shape[SCALAR_MAX_DIMS];
        const void *view;
        size_t nbytes;
        ck_assert_str_eq(scalar_safetensors_name(st, (size_t)d), names[d]);
        ck_assert_int_eq(scalar_safetensors_dtype(st, (size_t)d), d);
        ck_assert_int_eq(scalar_safetensors_ndim(st, (size_t)d), ranks[d % 4]);
        ck_assert_int_eq(scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, (size_t)d),
                         SCALAR_OK);
        ck_assert_mem_eq(shape, shapes[d % 4], (size_t)ranks[d % 4] * sizeof(int64_t));
        ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, (size_t)d), SCALAR_OK);
        ck_assert_uint_eq(nbytes, (d % 4 == 3 ? 0 : 12) * scalar_dtype_size(d));
        ck_assert_uint_eq(scalar_safetensors_numel(st, (size_t)d), d % 4 == 3 ? 0 : 12);
        if (nbytes)
            ck_assert_mem_eq(view, data[d], nbytes);
    }
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_writer_round_trips_scalar_and_metadata)
{
    const double pi = 3.141592653589793;
    const char *tricky = "quote\" back\\slash nl\n tab\t caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9D\x84\x9E";
    scalar_safetensors_writer *w = new_writer();
    const char *path = test_tmp_path("meta.safetensors");
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "pi", SCALAR_DTYPE_F64, NULL, 0, &pi, 8),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "format", "np"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "note", tricky), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "empty", ""), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "format", "pt"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);

    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 3); /* "format" replaced, not added */
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "format"), "pt");
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "note"), tricky);
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "empty"), "");
    ck_assert_int_eq(scalar_safetensors_ndim(st, 0), 0);
    const void *view;
    size_t nbytes;
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, 0), SCALAR_OK);
    ck_assert_uint_eq(nbytes, 8);
    ck_assert_mem_eq(view, &pi, 8);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_writer_keeps_order_and_odd_names)
{
    const char *names[] = {"z.last_alphabetically", "a", "m\"quoted\\", "caf\xC3\xA9/\xE2\x9C\x93"};
    const int32_t v[4] = {10, 20, 30, 40};
    const int64_t one = 1;
    scalar_safetensors_writer *w = new_writer();
    const char *path = test_tmp_path("order.safetensors");
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(
            scalar_safetensors_writer_add(w, names[i], SCALAR_DTYPE_I32, &one, 1, &v[i], 4),
            SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), 4);
    ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 0);
    for (size_t i = 0; i < 4; i++) {
        float f;
        ck_assert_str_eq(scalar_safetensors_name(st, i), names[i]);
        ck_assert_int_eq(scalar_safetensors_read_f32(&f, 1, st, i), SCALAR_OK);
        ck_assert_float_eq(f, (float)v[i]);
    }
    scalar_safetensors_free(st);
}
END_TEST

/* Names of 1..16 characters hit every padding; the header length is always a
 * multiple of 8, the padding is spaces, and the data follows at once. */
START_TEST(test_writer_pads_header_to_multiple_of_8)
{
    const uint8_t byte = 0xAB;
    const char *path = test_tmp_path("padded.safetensors");
    for (int len = 1; len <= 16; len++) {
        char name[17];
        memset(name, 'n', (size_t)len);
        name[len] = '\0';
        scalar_safetensors_writer *w = new_writer();
        ck_assert_int_eq(scalar_safetensors_writer_add(w, name, SCALAR_DTYPE_U8, NULL, 0, &byte, 1),
                         SCALAR_OK);
        ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
        scalar_safetensors_writer_free(w);
        size_t size;
        uint64_t h = header_length(path, &size);
        ck_assert_uint_eq(h % 8, 0);
        ck_assert_uint_eq(size, 8 + h + 1);
        ck_assert_uint_eq(filebuf[8], '{');
        size_t end = 8 + (size_t)h;
        while (end > 8 && filebuf[end - 1] == ' ')
            end--;
        ck_assert_uint_eq(filebuf[end - 1], '}');
        ck_assert_uint_lt(8 + h - end, 8); /* at most 7 spaces */
        ck_assert_uint_eq(filebuf[size - 1], 0xAB);
    }
    /* An empty writer writes a valid file with no tensors. */
    scalar_safetensors_writer *w = new_writer();
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    ck_assert_uint_eq(header_length(path, NULL) % 8, 0);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), 0);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_writer_rejects_bad_tensors)
{
    const float v[4] = {0};
    const int64_t shape2[2] = {2, 2}, neg[2] = {-2, -2}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    scalar_safetensors_writer *w = new_writer();
    const char *path = test_tmp_path("rejects.safetensors");
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "ok", SCALAR_DTYPE_F32, shape2, 2, v, 16),
                     SCALAR_OK);
    IO_EXPECT(scalar_safetensors_writer_add(w, NULL, SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "name");
    IO_EXPECT(scalar_safetensors_writer_add(w, "", SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "name");
    IO_EXPECT(scalar_safetensors_writer_add(w, "__metadata__", SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "__metadata__");
    IO_EXPECT(scalar_safetensors_writer_add(w, "ok", SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "duplicate");
    IO_EXPECT(scalar_safetensors_writer_add(w, "bad\xC0\xAF", SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "UTF-8");
    IO_EXPECT(scalar_safetensors_writer_add(w, "r9", SCALAR_DTYPE_F32, nine, 9, v, 4),
              SCALAR_E_INVALID_ARG, "\"r9\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "rneg", SCALAR_DTYPE_F32, shape2, -1, v, 4),
              SCALAR_E_INVALID_ARG, "\"rneg\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "noshape", SCALAR_DTYPE_F32, NULL, 2, v, 16),
              SCALAR_E_INVALID_ARG, "\"noshape\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "neg", SCALAR_DTYPE_F32, neg, 2, v, 16),
              SCALAR_E_INVALID_ARG, "\"neg\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "dt", SCALAR_DTYPE_COUNT, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "\"dt\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "dt", -1, shape2, 2, v, 16), SCALAR_E_INVALID_ARG,
              "\"dt\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "short", SCALAR_DTYPE_F32, shape2, 2, v, 12),
              SCALAR_E_SHAPE, "\"short\"");
    IO_EXPECT(scalar_safetensors_writer_add(w, "long", SCALAR_DTYPE_F16, shape2, 2, v, 16),
              SCALAR_E_SHAPE, "\"long\"");
    IO_EXPECT(scalar_safetensors_writer_add(NULL, "x", SCALAR_DTYPE_F32, shape2, 2, v, 16),
              SCALAR_E_INVALID_ARG, "scalar_safetensors_writer_add");
    IO_EXPECT(scalar_safetensors_writer_set_metadata(w, NULL, "v"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_set_metadata");
    IO_EXPECT(scalar_safetensors_writer_set_metadata(w, "k", NULL), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_set_metadata");
    IO_EXPECT(scalar_safetensors_writer_set_metadata(NULL, "k", "v"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_set_metadata");
    IO_EXPECT(scalar_safetensors_writer_set_metadata(w, "k", "\xED\xA0\x80"),
              SCALAR_E_INVALID_ARG, "UTF-8");
    IO_EXPECT(scalar_safetensors_writer_write(w, NULL), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_write");
    IO_EXPECT(scalar_safetensors_writer_write(NULL, path), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_write");

    /* The refused calls left the writer as it was: one tensor, no metadata. */
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), 1);
    ck_assert_str_eq(scalar_safetensors_name(st, 0), "ok");
    ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 0);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_writer_create_rejects_null)
{
    scalar_safetensors_writer *w = (scalar_safetensors_writer *)&w;
    IO_EXPECT(scalar_safetensors_writer_create(&w, NULL), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_create");
    ck_assert_ptr_null(w);
    IO_EXPECT(scalar_safetensors_writer_create(NULL, io_ctx), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_writer_create");
    scalar_safetensors_writer_free(NULL);
}
END_TEST

/* A writer holding tensors "a" (F32 [2]) and "b" (U8 []) and one metadata key. */
static scalar_safetensors_writer *small_writer(void)
{
    static const float a[2] = {1.0f, 2.0f};
    static const uint8_t b = 3;
    static const int64_t two = 2;
    scalar_safetensors_writer *w = new_writer();
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "a", SCALAR_DTYPE_F32, &two, 1, a, 8),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_add(w, "b", SCALAR_DTYPE_U8, NULL, 0, &b, 1),
                     SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "k", "v"), SCALAR_OK);
    return w;
}

START_TEST(test_writer_write_to_missing_dir_is_io_error)
{
    scalar_safetensors_writer *w = small_writer();
    const char *dir = test_tmp_path("");
    const char *path = test_tmp_path("no-such-dir/out.safetensors");
    int before = io_count_tmp_files(dir);
    IO_EXPECT(scalar_safetensors_writer_write(w, path), SCALAR_E_IO, path);
    ck_assert_int_eq(io_count_tmp_files(dir), before);
    /* The writer may be written again, to a good path. */
    path = test_tmp_path("after-failure.safetensors");
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_count(st), 2);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_writer_write_over_directory_is_io_error)
{
    scalar_safetensors_writer *w = small_writer();
    char dir[1024], target[1200];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s", test_tmp_path("over-dir"));
    snprintf(target, sizeof target, "%s/target.safetensors", dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(mkdir(target, 0755), 0);
    IO_EXPECT(scalar_safetensors_writer_write(w, target), SCALAR_E_IO, target);
    ck_assert_int_eq(stat(target, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode)); /* still the directory it was */
    ck_assert_int_eq(io_count_tmp_files(dir), 0);
    scalar_safetensors_writer_free(w);
}
END_TEST

/* A write that fails half-way (the file size limit, which binds root too)
 * leaves the old file as it was and no temporary file. */
START_TEST(test_writer_failed_write_keeps_old_target)
{
    static unsigned char big[1 << 16];
    const int64_t n = sizeof big;
    char dir[1024], target[1200];
    snprintf(dir, sizeof dir, "%s", test_tmp_path("keep-old"));
    snprintf(target, sizeof target, "%s/model.safetensors", dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    io_write_file(target, "old contents", 12);

    scalar_safetensors_writer *w = new_writer();
    memset(big, 0x5A, sizeof big);
    ck_assert_int_eq(
        scalar_safetensors_writer_add(w, "big", SCALAR_DTYPE_U8, &n, 1, big, sizeof big),
        SCALAR_OK);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    scalar_last_error_clear();
    scalar_status s = scalar_safetensors_writer_write(w, target);
    setrlimit(RLIMIT_FSIZE, &old); /* restore before any assert writes a file */
    signal(SIGXFSZ, old_handler);
    ck_assert_msg(s == SCALAR_E_IO, "got %d (%s)", (int)s, scalar_last_error());
    ck_assert_ptr_nonnull(strstr(scalar_last_error(), "model.safetensors"));
    ck_assert_int_eq(io_count_tmp_files(dir), 0);
    char back[64] = {0};
    ck_assert_uint_eq(io_read_file(target, back, sizeof back), 12);
    ck_assert_str_eq(back, "old contents");

    /* Without the limit the same writer replaces the file. */
    ck_assert_int_eq(scalar_safetensors_writer_write(w, target), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    ck_assert_int_eq(io_count_tmp_files(dir), 0);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, target), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_numel(st, 0), sizeof big);
    scalar_safetensors_free(st);
}
END_TEST

/* Writing twice gives the same bytes; writing over a file replaces it. */
START_TEST(test_writer_write_is_repeatable)
{
    static unsigned char first[4096];
    scalar_safetensors_writer *w = small_writer();
    const char *p1 = test_tmp_path("twice-1.safetensors");
    const char *p2 = test_tmp_path("twice-2.safetensors");
    io_write_file(p2, "something else entirely", 23);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, p1), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, p2), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    size_t n1 = io_read_file(p1, first, sizeof first);
    size_t n2 = io_read_file(p2, filebuf, sizeof filebuf);
    ck_assert_uint_eq(n1, n2);
    ck_assert_mem_eq(first, filebuf, n1);
    ck_assert_int_eq(io_count_tmp_files(test_tmp_path("")), 0);
}
END_TEST

START_TEST(test_writer_outlives_ctx_free)
{
    scalar_safetensors_writer *w = small_writer();
    const char *path = test_tmp_path("writer-after-ctx.safetensors");
    scalar_ctx_free(io_ctx);
    io_ctx = NULL;
    ck_assert_int_eq(scalar_safetensors_writer_set_metadata(w, "k2", "v2"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_writer_write(w, path), SCALAR_OK);
    scalar_safetensors_writer_free(w);
    ck_assert_uint_eq(io_count.live_bytes, 0);
}
END_TEST

void io_add_writer_tests(Suite *s)
{
    TCase *tc = io_tcase("writer");
    tcase_add_test(tc, test_writer_round_trips_every_dtype_bit_identical);
    tcase_add_test(tc, test_writer_round_trips_scalar_and_metadata);
    tcase_add_test(tc, test_writer_keeps_order_and_odd_names);
    tcase_add_test(tc, test_writer_pads_header_to_multiple_of_8);
    tcase_add_test(tc, test_writer_rejects_bad_tensors);
    tcase_add_test(tc, test_writer_create_rejects_null);
    tcase_add_test(tc, test_writer_write_to_missing_dir_is_io_error);
    tcase_add_test(tc, test_writer_write_over_directory_is_io_error);
    tcase_add_test(tc, test_writer_failed_write_keeps_old_target);
    tcase_add_test(tc, test_writer_write_is_repeatable);
    tcase_add_test(tc, test_writer_outlives_ctx_free);
    suite_add_tcase(s, tc);
}
