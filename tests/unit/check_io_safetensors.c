/*
 * check_io_safetensors.c - the safetensors reader: every malformed header it
 * must refuse (status and message), the edge cases it must accept, getters on
 * NULL handles and bad indices, files on disk, and the context reference.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_io.h"

static _Alignas(64) unsigned char buf[16384];

/* open_memory must fail with SCALAR_E_FORMAT, *out NULL, and `msg` in the message. */
static void expect_reject(const unsigned char *b, size_t n, const char *msg, const char *what)
{
    scalar_safetensors *st = (scalar_safetensors *)&st; /* must be reset to NULL */
    scalar_last_error_clear();
    scalar_status s = scalar_safetensors_open_memory(&st, io_ctx, b, n);
    ck_assert_msg(s == SCALAR_E_FORMAT, "%s: got %d, expected SCALAR_E_FORMAT (message: \"%s\")",
                  what, (int)s, scalar_last_error());
    ck_assert_msg(st == NULL, "%s: *out not NULL after a failure", what);
    ck_assert_msg(strstr(scalar_last_error(), msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
                  what, scalar_last_error(), msg);
}

static scalar_safetensors *open_ok(const unsigned char *b, size_t n)
{
    scalar_safetensors *st = NULL;
    scalar_last_error_clear();
    scalar_status s = scalar_safetensors_open_memory(&st, io_ctx, b, n);
    ck_assert_msg(s == SCALAR_OK, "open_memory: got %d (%s)", (int)s, scalar_last_error());
    ck_assert_ptr_nonnull(st);
    return st;
}

/* ---- the 8-byte length ---- */

START_TEST(test_safetensors_rejects_file_shorter_than_8_bytes)
{
    memset(buf, 0, 8);
    for (size_t n = 0; n < 8; n++)
        expect_reject(buf, n, "too short", "short file");
}
END_TEST

START_TEST(test_safetensors_rejects_header_length_over_100000000)
{
    const uint64_t lens[] = {100000001u, UINT64_C(1) << 32, UINT64_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = io_st_raw(buf, sizeof buf, lens[i], "{}      ", NULL, 0);
        expect_reject(buf, n, "exceeds 100000000", "huge header length");
    }
    /* 100,000,000 itself is within the cap; here it runs past the file instead. */
    size_t n = io_st_raw(buf, sizeof buf, 100000000u, "{}      ", NULL, 0);
    expect_reject(buf, n, "100000000", "header length at the cap");
    ck_assert_ptr_null(strstr(scalar_last_error(), "exceeds 100000000"));
}
END_TEST

START_TEST(test_safetensors_rejects_header_length_beyond_file)
{
    size_t n = io_st_raw(buf, sizeof buf, 9, "{}      ", NULL, 0);
    expect_reject(buf, n, "header length 9", "header one byte past the end");
    n = io_st_raw(buf, sizeof buf, 0, "", NULL, 0);
    expect_reject(buf, n, "<memory>", "empty header");
}
END_TEST

START_TEST(test_safetensors_rejects_nul_padding)
{
    size_t n = io_st_raw(buf, sizeof buf, 8, "{}", NULL, 0);
    memset(buf + 10, 0, 6);
    expect_reject(buf, n + 6, "trailing", "header padded with NUL bytes");
}
END_TEST

/* ---- the header, one malformation per row ---- */

#define T(body) "{\"dtype\":\"F32\",\"shape\":" body "}"
#define W4 T("[1],\"data_offsets\":[0,4]") /* a valid 4-byte F32 entry */

static const struct {
    const char *what, *header, *msg;
    size_t ndata;
} bad[] = {
    {"non-UTF-8 name", "{\"a\xff\":" W4 "}", "UTF-8", 4},
    {"overlong UTF-8 in metadata", "{\"__metadata__\":{\"k\":\"\xC0\xAF\"}}", "UTF-8", 0},
    {"surrogate in UTF-8", "{\"\xED\xA0\x80\":" W4 "}", "UTF-8", 4},
    {"not JSON", "{\"a\":}", "JSON", 0},
    {"unclosed object", "{\"a\":" W4, "JSON", 4},
    {"single quotes", "{'a':1}", "JSON", 0},
    {"trailing garbage", "{} x", "trailing", 0},
    {"top level array", "[1,2]", "'{'", 0},
    {"top level string", "\"{}\"", "'{'", 0},
    {"top level number", "12345678", "'{'", 0},
    {"duplicate tensor", "{\"a\":" W4 ",\"a\":" T("[1],\"data_offsets\":[4,8]") "}",
     "duplicate", 8},
    {"duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate", 0},
    {"entry not an object", "{\"a\":5}", "\"a\"", 0},
    {"entry an array", "{\"a\":[1]}", "\"a\"", 0},
    {"dtype missing", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "dtype", 4},
    {"dtype a number", "{\"a\":{\"dtype\":0,\"shape\":[1],\"data_offsets\":[0,4]}}", "dtype", 4},
    {"dtype unknown", "{\"a\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     "dtype", 4},
    {"dtype lower case", "{\"a\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     "dtype", 4},
    {"dtype empty", "{\"a\":{\"dtype\":\"\",\"shape\":[1],\"data_offsets\":[0,4]}}", "dtype", 4},
    {"shape missing", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "shape", 4},
    {"shape a string", "{\"a\":" T("\"1\",\"data_offsets\":[0,4]") "}", "shape", 4},
    {"shape an object", "{\"a\":" T("{},\"data_offsets\":[0,4]") "}", "shape", 4},
    {"rank 9", "{\"a\":" T("[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]") "}", "rank 9", 4},
    {"negative dim", "{\"a\":" T("[2,-1],\"data_offsets\":[0,0]") "}", "shape", 0},
    {"fractional dim", "{\"a\":" T("[1.5],\"data_offsets\":[0,4]") "}", "shape", 4},
    {"dim a string", "{\"a\":" T("[\"1\"],\"data_offsets\":[0,4]") "}", "shape", 4},
    {"dim a bool", "{\"a\":" T("[true],\"data_offsets\":[0,4]") "}", "shape", 4},
    {"dim 1e20", "{\"a\":" T("[1e20],\"data_offsets\":[0,4]") "}", "shape", 4},
    {"element count overflows",
     "{\"a\":" T("[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]") "}", "\"a\"", 4},
    {"data_offsets missing", "{\"a\":" T("[1]") "}", "data_offsets", 4},
    {"data_offsets one value", "{\"a\":" T("[1],\"data_offsets\":[4]") "}", "data_offsets", 4},
    {"data_offsets three values", "{\"a\":" T("[1],\"data_offsets\":[0,4,8]") "}",
     "data_offsets", 4},
    {"data_offsets strings", "{\"a\":" T("[1],\"data_offsets\":[\"0\",\"4\"]") "}",
     "data_offsets", 4},
    {"data_offsets an object", "{\"a\":" T("[1],\"data_offsets\":{}") "}", "data_offsets", 4},
    {"data_offsets negative", "{\"a\":" T("[0],\"data_offsets\":[-4,-4]") "}", "data_offsets",
     0},
    {"data_offsets fractional", "{\"a\":" T("[1],\"data_offsets\":[0,4.5]") "}",
     "data_offsets", 4},
    {"begin after end", "{\"a\":" T("[1],\"data_offsets\":[8,4]") "}", "data_offsets", 8},
    {"too few bytes for the shape", "{\"w\":" T("[2],\"data_offsets\":[0,4]") "}", "\"w\"", 4},
    {"too many bytes for the shape", "{\"w\":" T("[1],\"data_offsets\":[0,8]") "}", "\"w\"", 8},
    {"F16 counted as 4 bytes",
     "{\"w\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,12]}}", "\"w\"", 12},
    {"overlapping ranges",
     "{\"a\":" T("[2],\"data_offsets\":[0,8]") ",\"b\":" T("[2],\"data_offsets\":[4,12]") "}",
     "overlap", 12},
    {"identical ranges", "{\"a\":" W4 ",\"b\":" W4 "}", "overlap", 4},
    {"gap between ranges",
     "{\"a\":" W4 ",\"b\":" T("[1],\"data_offsets\":[8,12]") "}", "gap", 12},
    {"first range not at 0", "{\"a\":" T("[1],\"data_offsets\":[4,8]") "}", "gap", 8},
    {"trailing bytes", "{\"a\":" W4 "}", "trailing", 8},
    {"trailing bytes, no tensors", "{}", "trailing", 4},
    {"truncated data", "{\"a\":" T("[2],\"data_offsets\":[0,8]") "}", "truncated", 4},
    {"truncated, no data at all", "{\"a\":" W4 "}", "truncated", 0},
    {"metadata value a number", "{\"__metadata__\":{\"k\":1}}", "__metadata__", 0},
    {"metadata value null", "{\"__metadata__\":{\"k\":null}}", "__metadata__", 0},
    {"metadata value an object", "{\"__metadata__\":{\"k\":{}}}", "__metadata__", 0},
    {"metadata value a list", "{\"__metadata__\":{\"a\":\"x\",\"k\":[\"v\"]}}", "__metadata__",
     0},
    {"metadata a string", "{\"__metadata__\":\"format=pt\"}", "__metadata__", 0},
    {"metadata an array", "{\"__metadata__\":[]}", "__metadata__", 0},
};

START_TEST(test_safetensors_rejects_malformed_header)
{
    static unsigned char zeros[16];
    size_t n = io_st_raw(buf, sizeof buf, strlen(bad[_i].header), bad[_i].header, zeros,
                         bad[_i].ndata);
    expect_reject(buf, n, bad[_i].msg, bad[_i].what);
}
END_TEST

/* Messages name the function and the file, as core.h promises. */
START_TEST(test_safetensors_messages_name_function_and_path)
{
    static unsigned char zeros[16];
    const char *path = test_tmp_path("bad-header.safetensors");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = io_st_raw(buf, sizeof buf, strlen(bad[i].header), bad[i].header, zeros,
                             bad[i].ndata);
        io_write_file(path, buf, n);
        scalar_safetensors *st = NULL;
        scalar_last_error_clear();
        ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_E_FORMAT);
        ck_assert_msg(strstr(scalar_last_error(), path) != NULL, "%s: \"%s\" lacks the path",
                      bad[i].what, scalar_last_error());
        ck_assert_msg(strstr(scalar_last_error(), "scalar_safetensors_open") != NULL,
                      "%s: \"%s\" lacks the function name", bad[i].what, scalar_last_error());
    }
}
END_TEST

/* ---- valid edge cases ---- */

START_TEST(test_safetensors_accepts_zero_tensors)
{
    const char *headers[] = {"{}", "{}      ", "{ }", "{\"__metadata__\":{}}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        size_t n = io_st_raw(buf, sizeof buf, strlen(headers[i]), headers[i], NULL, 0);
        scalar_safetensors *st = open_ok(buf, n);
        ck_assert_uint_eq(scalar_safetensors_count(st), 0);
        ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 0);
        ck_assert_ptr_null(scalar_safetensors_name(st, 0));
        scalar_safetensors_free(st);
    }
}
END_TEST

START_TEST(test_safetensors_accepts_scalar_and_zero_size_tensors)
{
    const float v = 3.25f;
    const io_tensor t[] = {
        {"empty", "F32", 2, {0, 3}, NULL, 0},
        {"scalar", "F32", 0, {0}, &v, 4},
        {"huge_but_empty", "I64", 2, {INT64_C(1) << 32, 0}, NULL, 0},
    };
    size_t n = io_st_build(buf, sizeof buf, t, 3, NULL);
    scalar_safetensors *st = open_ok(buf, n);
    size_t i;
    int64_t shape[SCALAR_MAX_DIMS] = {-7, -7};
    float out[2] = {0, -1};
    const void *view;
    size_t nbytes = 99;

    ck_assert_uint_eq(scalar_safetensors_count(st), 3);
    ck_assert_int_eq(scalar_safetensors_find(&i, st, "scalar"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_ndim(st, i), 0);
    ck_assert_uint_eq(scalar_safetensors_numel(st, i), 1);
    ck_assert_int_eq(scalar_safetensors_shape(shape, 0, st, i), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 1, st, i), SCALAR_OK);
    ck_assert_float_eq(out[0], 3.25f);

    ck_assert_int_eq(scalar_safetensors_find(&i, st, "empty"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_ndim(st, i), 2);
    ck_assert_uint_eq(scalar_safetensors_numel(st, i), 0);
    ck_assert_int_eq(scalar_safetensors_shape(shape, 2, st, i), SCALAR_OK);
    ck_assert_int_eq(shape[0], 0);
    ck_assert_int_eq(shape[1], 3);
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, i), SCALAR_OK);
    ck_assert_uint_eq(nbytes, 0);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 0, st, i), SCALAR_OK);
    ck_assert_float_eq(out[1], -1.0f); /* nothing written */

    ck_assert_int_eq(scalar_safetensors_find(&i, st, "huge_but_empty"), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_numel(st, i), 0);
    ck_assert_int_eq(scalar_safetensors_shape(shape, 2, st, i), SCALAR_OK);
    ck_assert_int_eq(shape[0], INT64_C(1) << 32);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_safetensors_accepts_rank_8)
{
    const unsigned char half_one[2] = {0x00, 0x3C};
    const io_tensor t = {"r8", "F16", 8, {1, 1, 1, 1, 1, 1, 1, 1}, half_one, 2};
    size_t n = io_st_build(buf, sizeof buf, &t, 1, NULL);
    scalar_safetensors *st = open_ok(buf, n);
    int64_t shape[SCALAR_MAX_DIMS];
    ck_assert_int_eq(scalar_safetensors_ndim(st, 0), SCALAR_MAX_DIMS);
    ck_assert_int_eq(scalar_safetensors_shape(shape, SCALAR_MAX_DIMS, st, 0), SCALAR_OK);
    ck_assert_int_eq(shape[7], 1);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_safetensors_accepts_padding_and_whitespace)
{
    const float v[2] = {1.5f, -2.0f};
    const char *headers[] = {
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}             ",
        "{\n  \"a\" : {\n    \"dtype\" : \"F32\",\n    \"shape\" : [ 2 ],\n"
        "    \"data_offsets\" : [ 0, 8 ]\n  }\n}\n\t\r ",
        "{\"a\":{\"data_offsets\":[0,8],\"shape\":[2],\"dtype\":\"F32\",\"extra\":[null]}} ",
    };
    for (size_t k = 0; k < sizeof headers / sizeof headers[0]; k++) {
        size_t n = io_st_raw(buf, sizeof buf, strlen(headers[k]), headers[k], v, sizeof v);
        scalar_safetensors *st = open_ok(buf, n);
        float out[2];
        ck_assert_uint_eq(scalar_safetensors_count(st), 1);
        ck_assert_str_eq(scalar_safetensors_name(st, 0), "a");
        ck_assert_int_eq(scalar_safetensors_read_f32(out, 2, st, 0), SCALAR_OK);
        ck_assert_float_eq(out[0], 1.5f);
        ck_assert_float_eq(out[1], -2.0f);
        scalar_safetensors_free(st);
    }
}
END_TEST

/* Listed b, metadata, c, a in the JSON; offsets say a, b, c. */
START_TEST(test_safetensors_names_come_in_offset_order)
{
    const char *h =
        "{\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[4,12]},"
        "\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xC3\xA9\"},"
        "\"c\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[12,15]},"
        "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    unsigned char data[15] = {0, 0, 0x80, 0x3F, 7, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3};
    size_t n = io_st_raw(buf, sizeof buf, strlen(h), h, data, sizeof data);
    scalar_safetensors *st = open_ok(buf, n);
    const char *want[] = {"a", "b", "c"};
    const int32_t want_dtype[] = {SCALAR_DTYPE_F32, SCALAR_DTYPE_I32, SCALAR_DTYPE_U8};
    float out[3];
    ck_assert_uint_eq(scalar_safetensors_count(st), 3);
    for (size_t i = 0; i < 3; i++) {
        size_t idx = 99;
        ck_assert_str_eq(scalar_safetensors_name(st, i), want[i]);
        ck_assert_int_eq(scalar_safetensors_dtype(st, i), want_dtype[i]);
        ck_assert_int_eq(scalar_safetensors_find(&idx, st, want[i]), SCALAR_OK);
        ck_assert_uint_eq(idx, i);
    }
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 1), SCALAR_OK);
    ck_assert_float_eq(out[0], 7.0f);
    ck_assert_float_eq(out[1], -1.0f);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 2), SCALAR_OK);
    ck_assert_float_eq(out[2], 3.0f);
    ck_assert_uint_eq(scalar_safetensors_metadata_count(st), 2);
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "format"), "pt");
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "note"), "caf\xC3\xA9");
    ck_assert_ptr_null(scalar_safetensors_metadata_get(st, "nope"));
    const char *k0 = scalar_safetensors_metadata_key(st, 0);
    const char *k1 = scalar_safetensors_metadata_key(st, 1);
    ck_assert_ptr_nonnull(k0);
    ck_assert_ptr_nonnull(k1);
    ck_assert_str_ne(k0, k1);
    ck_assert_ptr_null(scalar_safetensors_metadata_key(st, 2));
    scalar_safetensors_free(st);
}
END_TEST

/* ---- getters ---- */

START_TEST(test_safetensors_getters_on_null_handle)
{
    int64_t shape[4];
    const void *view = NULL;
    size_t nbytes = 0, idx = 0;
    float out[4];
    ck_assert_uint_eq(scalar_safetensors_count(NULL), 0);
    ck_assert_ptr_null(scalar_safetensors_name(NULL, 0));
    ck_assert_int_eq(scalar_safetensors_dtype(NULL, 0), -1);
    ck_assert_int_eq(scalar_safetensors_ndim(NULL, 0), -1);
    ck_assert_uint_eq(scalar_safetensors_numel(NULL, 0), 0);
    IO_EXPECT(scalar_safetensors_shape(shape, 4, NULL, 0), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_shape");
    IO_EXPECT(scalar_safetensors_data(&view, &nbytes, NULL, 0), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_data");
    IO_EXPECT(scalar_safetensors_read_f32(out, 4, NULL, 0), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_read_f32");
    IO_EXPECT(scalar_safetensors_find(&idx, NULL, "a"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_find");
    ck_assert_uint_eq(scalar_safetensors_metadata_count(NULL), 0);
    ck_assert_ptr_null(scalar_safetensors_metadata_key(NULL, 0));
    ck_assert_ptr_null(scalar_safetensors_metadata_get(NULL, "format"));
    scalar_safetensors_free(NULL);
}
END_TEST

START_TEST(test_safetensors_getters_out_of_range)
{
    const int32_t v[3] = {1, 2, 3};
    const io_tensor t = {"w", "I32", 1, {3}, v, sizeof v};
    size_t n = io_st_build(buf, sizeof buf, &t, 1, "{\"k\":\"v\"}");
    scalar_safetensors *st = open_ok(buf, n);
    int64_t shape[4];
    const void *view = NULL;
    size_t nbytes = 0, idx = 77;
    float out[4];
    const size_t bad_index[] = {1, 2, SIZE_MAX};
    for (size_t k = 0; k < 3; k++) {
        size_t i = bad_index[k];
        ck_assert_ptr_null(scalar_safetensors_name(st, i));
        ck_assert_int_eq(scalar_safetensors_dtype(st, i), -1);
        ck_assert_int_eq(scalar_safetensors_ndim(st, i), -1);
        ck_assert_uint_eq(scalar_safetensors_numel(st, i), 0);
        IO_EXPECT(scalar_safetensors_shape(shape, 4, st, i), SCALAR_E_INVALID_ARG, "index");
        IO_EXPECT(scalar_safetensors_data(&view, &nbytes, st, i), SCALAR_E_INVALID_ARG, "index");
        IO_EXPECT(scalar_safetensors_read_f32(out, 4, st, i), SCALAR_E_INVALID_ARG, "index");
        ck_assert_ptr_null(scalar_safetensors_metadata_key(st, i));
    }
    IO_EXPECT(scalar_safetensors_find(&idx, st, "nosuch.weight"), SCALAR_E_NOT_FOUND,
              "nosuch.weight");
    ck_assert_uint_eq(idx, 77);
    IO_EXPECT(scalar_safetensors_find(&idx, st, "W"), SCALAR_E_NOT_FOUND, "\"W\"");
    IO_EXPECT(scalar_safetensors_find(&idx, st, NULL), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_find");
    IO_EXPECT(scalar_safetensors_find(NULL, st, "w"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_find");
    IO_EXPECT(scalar_safetensors_shape(shape, 0, st, 0), SCALAR_E_BUFSIZE, "capacity");
    IO_EXPECT(scalar_safetensors_data(NULL, &nbytes, st, 0), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_data");
    IO_EXPECT(scalar_safetensors_read_f32(out, 2, st, 0), SCALAR_E_BUFSIZE, "capacity");
    ck_assert_int_eq(scalar_safetensors_shape(shape, 1, st, 0), SCALAR_OK);
    ck_assert_int_eq(shape[0], 3);
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, 0), SCALAR_OK);
    ck_assert_uint_eq(nbytes, 12);
    ck_assert_mem_eq(view, v, 12);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_safetensors_open_rejects_null_arguments)
{
    scalar_safetensors *st = (scalar_safetensors *)&st;
    IO_EXPECT(scalar_safetensors_open(NULL, io_ctx, "x"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_open");
    IO_EXPECT(scalar_safetensors_open(&st, NULL, "x"), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_open");
    ck_assert_ptr_null(st);
    st = (scalar_safetensors *)&st;
    IO_EXPECT(scalar_safetensors_open(&st, io_ctx, NULL), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_open");
    ck_assert_ptr_null(st);
    st = (scalar_safetensors *)&st;
    IO_EXPECT(scalar_safetensors_open_memory(&st, NULL, "{}", 2), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_open_memory");
    ck_assert_ptr_null(st);
    IO_EXPECT(scalar_safetensors_open_memory(NULL, io_ctx, "{}", 2), SCALAR_E_INVALID_ARG,
              "scalar_safetensors_open_memory");
}
END_TEST

START_TEST(test_dtype_names_and_sizes)
{
    static const struct {
        int32_t dtype;
        const char *name;
        size_t size;
    } want[] = {
        {SCALAR_DTYPE_F32, "F32", 4},   {SCALAR_DTYPE_F16, "F16", 2},
        {SCALAR_DTYPE_BF16, "BF16", 2}, {SCALAR_DTYPE_I32, "I32", 4},
        {SCALAR_DTYPE_I64, "I64", 8},   {SCALAR_DTYPE_U16, "U16", 2},
        {SCALAR_DTYPE_F64, "F64", 8},   {SCALAR_DTYPE_I8, "I8", 1},
        {SCALAR_DTYPE_U8, "U8", 1},     {SCALAR_DTYPE_I16, "I16", 2},
        {SCALAR_DTYPE_U32, "U32", 4},   {SCALAR_DTYPE_U64, "U64", 8},
        {SCALAR_DTYPE_BOOL, "BOOL", 1}, {SCALAR_DTYPE_F8_E4M3, "F8_E4M3", 1},
        {SCALAR_DTYPE_F8_E5M2, "F8_E5M2", 1},
    };
    ck_assert_int_eq(sizeof want / sizeof want[0], SCALAR_DTYPE_COUNT);
    for (size_t i = 0; i < SCALAR_DTYPE_COUNT; i++) {
        ck_assert_int_eq(want[i].dtype, (int32_t)i); /* values frozen */
        ck_assert_str_eq(scalar_dtype_name(want[i].dtype), want[i].name);
        ck_assert_uint_eq(scalar_dtype_size(want[i].dtype), want[i].size);
    }
    ck_assert_ptr_null(scalar_dtype_name(-1));
    ck_assert_ptr_null(scalar_dtype_name(SCALAR_DTYPE_COUNT));
    ck_assert_uint_eq(scalar_dtype_size(-1), 0);
    ck_assert_uint_eq(scalar_dtype_size(SCALAR_DTYPE_COUNT), 0);
    ck_assert_int_eq(scalar_max_dims(), SCALAR_MAX_DIMS);
    ck_assert_int_eq(SCALAR_MAX_DIMS, 8);
}
END_TEST

/* ---- files ---- */

START_TEST(test_safetensors_open_missing_file_names_path)
{
    scalar_safetensors *st = (scalar_safetensors *)&st;
    const char *path = test_tmp_path("no-such-dir/missing.safetensors");
    IO_EXPECT(scalar_safetensors_open(&st, io_ctx, path), SCALAR_E_IO, path);
    ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_safetensors_open_empty_file_is_format_error)
{
    scalar_safetensors *st = (scalar_safetensors *)&st;
    const char *path = test_tmp_path("empty.safetensors");
    io_write_file(path, "", 0);
    IO_EXPECT(scalar_safetensors_open(&st, io_ctx, path), SCALAR_E_FORMAT, path);
    ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_safetensors_open_directory_is_io_error)
{
    scalar_safetensors *st = (scalar_safetensors *)&st;
    const char *path = test_tmp_path("a-directory.safetensors");
    mkdir(path, 0755);
    IO_EXPECT(scalar_safetensors_open(&st, io_ctx, path), SCALAR_E_IO, path);
    ck_assert_ptr_null(st);
}
END_TEST

/* The file is mapped: views stay valid after the name is unlinked. */
START_TEST(test_safetensors_open_file_maps_data)
{
    const float w[4] = {1, 2, 3, 4};
    const int64_t ids[2] = {-1, INT64_C(1) << 40};
    const io_tensor t[] = {{"w", "F32", 2, {2, 2}, w, sizeof w},
                           {"ids", "I64", 1, {2}, ids, sizeof ids}};
    const char *path = test_tmp_path("mapped.safetensors");
    size_t n = io_st_build(buf, sizeof buf, t, 2, "{\"format\":\"pt\"}");
    io_write_file(path, buf, n);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open(&st, io_ctx, path), SCALAR_OK);
    ck_assert_int_eq(unlink(path), 0);
    const void *view;
    size_t nbytes;
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, 1), SCALAR_OK);
    ck_assert_uint_eq(nbytes, sizeof ids);
    ck_assert_mem_eq(view, ids, sizeof ids);
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "format"), "pt");
    scalar_safetensors_free(st);
}
END_TEST

/* ---- ownership and sharing ---- */

START_TEST(test_safetensors_handle_outlives_ctx_free)
{
    const float w[3] = {0.5f, 1.5f, -8.0f};
    const io_tensor t = {"w", "F32", 1, {3}, w, sizeof w};
    size_t n = io_st_build(buf, sizeof buf, &t, 1, "{\"k\":\"v\"}");
    scalar_safetensors *st = open_ok(buf, n);
    scalar_ctx_free(io_ctx); /* the caller lets go first */
    io_ctx = NULL;
    ck_assert_uint_gt(io_count.live_bytes, 0);
    float out[3];
    size_t idx;
    ck_assert_int_eq(scalar_safetensors_find(&idx, st, "w"), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, idx), SCALAR_OK);
    ck_assert_float_eq(out[2], -8.0f);
    ck_assert_str_eq(scalar_safetensors_metadata_get(st, "k"), "v");
    scalar_safetensors_free(st); /* the teardown checks that this freed everything */
    ck_assert_uint_eq(io_count.live_bytes, 0);
}
END_TEST

typedef struct {
    const scalar_safetensors *st;
    int ok;
} reader_arg;

static void *read_many(void *p)
{
    reader_arg *a = p;
    float out[256];
    a->ok = 1;
    for (int r = 0; r < 200 && a->ok; r++) {
        size_t idx;
        a->ok = scalar_safetensors_find(&idx, a->st, "w") == SCALAR_OK &&
                scalar_safetensors_read_f32(out, 256, a->st, idx) == SCALAR_OK;
        for (int k = 0; k < 256 && a->ok; k++)
            a->ok = out[k] == (float)k;
    }
    return NULL;
}

START_TEST(test_safetensors_handle_shared_across_threads)
{
    uint16_t h[256];
    for (int k = 0; k < 256; k++) { /* k as bfloat16: exact for these integers */
        float f = (float)k;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        h[k] = (uint16_t)(bits >> 16);
    }
    const io_tensor t = {"w", "BF16", 2, {16, 16}, h, sizeof h};
    size_t n = io_st_build(buf, sizeof buf, &t, 1, NULL);
    scalar_safetensors *st = open_ok(buf, n);
    pthread_t th[4];
    reader_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i].st = st;
        ck_assert_int_eq(pthread_create(&th[i], NULL, read_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert(args[i].ok);
    }
    scalar_safetensors_free(st);
}
END_TEST

void io_add_safetensors_tests(Suite *s)
{
    TCase *tc = io_tcase("safetensors_reject");
    tcase_add_test(tc, test_safetensors_rejects_file_shorter_than_8_bytes);
    tcase_add_test(tc, test_safetensors_rejects_header_length_over_100000000);
    tcase_add_test(tc, test_safetensors_rejects_header_length_beyond_file);
    tcase_add_test(tc, test_safetensors_rejects_nul_padding);
    tcase_add_loop_test(tc, test_safetensors_rejects_malformed_header, 0,
                        (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_safetensors_messages_name_function_and_path);
    suite_add_tcase(s, tc);

    tc = io_tcase("safetensors_accept");
    tcase_add_test(tc, test_safetensors_accepts_zero_tensors);
    tcase_add_test(tc, test_safetensors_accepts_scalar_and_zero_size_tensors);
    tcase_add_test(tc, test_safetensors_accepts_rank_8);
    tcase_add_test(tc, test_safetensors_accepts_padding_and_whitespace);
    tcase_add_test(tc, test_safetensors_names_come_in_offset_order);
    suite_add_tcase(s, tc);

    tc = io_tcase("safetensors_getters");
    tcase_add_test(tc, test_safetensors_getters_on_null_handle);
    tcase_add_test(tc, test_safetensors_getters_out_of_range);
    tcase_add_test(tc, test_safetensors_open_rejects_null_arguments);
    tcase_add_test(tc, test_dtype_names_and_sizes);
    suite_add_tcase(s, tc);

    tc = io_tcase("safetensors_files");
    tcase_add_test(tc, test_safetensors_open_missing_file_names_path);
    tcase_add_test(tc, test_safetensors_open_empty_file_is_format_error);
    tcase_add_test(tc, test_safetensors_open_directory_is_io_error);
    tcase_add_test(tc, test_safetensors_open_file_maps_data);
    tcase_add_test(tc, test_safetensors_handle_outlives_ctx_free);
    tcase_add_test(tc, test_safetensors_handle_shared_across_threads);
    suite_add_tcase(s, tc);
}
