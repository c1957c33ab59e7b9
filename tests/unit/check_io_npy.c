/*
 * check_io_npy.c - the .npy reader: versions 1.0, 2.0 and 3.0 of '<u2', '<i4'
 * and '<f4' in every shape, the header dict's variants, unsupported types and
 * orders, and every malformation it must refuse.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check_io.h"

static unsigned char buf[4096];

static scalar_npy *npy_ok(const unsigned char *b, size_t n)
{
    scalar_npy *npy = NULL;
    scalar_last_error_clear();
    scalar_status s = scalar_npy_open_memory(&npy, io_ctx, b, n);
    ck_assert_msg(s == SCALAR_OK, "npy_open_memory: got %d (%s)", (int)s, scalar_last_error());
    ck_assert_ptr_nonnull(npy);
    return npy;
}

static void npy_fails(const unsigned char *b, size_t n, scalar_status want, const char *msg,
                      const char *what)
{
    scalar_npy *npy = (scalar_npy *)&npy; /* must be reset to NULL */
    scalar_last_error_clear();
    scalar_status s = scalar_npy_open_memory(&npy, io_ctx, b, n);
    ck_assert_msg(s == want, "%s: got %d, expected %d (message: \"%s\")", what, (int)s, (int)want,
                  scalar_last_error());
    ck_assert_msg(npy == NULL, "%s: *out not NULL after a failure", what);
    ck_assert_msg(strstr(scalar_last_error(), msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
                  what, scalar_last_error(), msg);
}

/* ---- every version x dtype x shape ---- */

static const char *const descrs[3] = {"<u2", "<i4", "<f4"};
static const int32_t dtypes[3] = {SCALAR_DTYPE_U16, SCALAR_DTYPE_I32, SCALAR_DTYPE_F32};
static const struct {
    const char *text;
    int32_t ndim;
    int64_t shape[2];
    size_t numel;
} shapes[] = {
    {"(6,)", 1, {6}, 6}, {"(2, 3)", 2, {2, 3}, 6}, {"()", 0, {0}, 1},
    {"(0,)", 1, {0}, 0}, {"(0, 5)", 2, {0, 5}, 0}, {"(1, 1)", 2, {1, 1}, 1},
};

/* Six elements of each type, the int32 and float32 values they read as. */
static const uint16_t u2[6] = {0, 1, 65535, 50256, 7, 9};
static const int32_t i4[6] = {-7, 0, INT32_MAX, INT32_MIN, 5, 6};
static const float f4[6] = {1.5f, -2.25f, 0.0f, 1e-3f, 3.0f, 1e30f};

START_TEST(test_npy_reads_every_version_dtype_and_shape)
{
    int major = 1 + _i / 3, t = _i % 3;
    const void *data = t == 0 ? (const void *)u2 : t == 1 ? (const void *)i4 : (const void *)f4;
    size_t elem = t == 0 ? 2 : 4;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                 descrs[t], shapes[k].text);
        size_t n = io_npy_build(buf, sizeof buf, major, dict, data, shapes[k].numel * elem);
        scalar_npy *npy = npy_ok(buf, n);
        int64_t shape[SCALAR_MAX_DIMS];
        float f[8] = {0};
        int32_t i[8] = {0};
        ck_assert_int_eq(scalar_npy_dtype(npy), dtypes[t]);
        ck_assert_int_eq(scalar_npy_ndim(npy), shapes[k].ndim);
        ck_assert_uint_eq(scalar_npy_numel(npy), shapes[k].numel);
        ck_assert_int_eq(scalar_npy_shape(shape, SCALAR_MAX_DIMS, npy), SCALAR_OK);
        for (int d = 0; d < shapes[k].ndim; d++)
            ck_assert_int_eq(shape[d], shapes[k].shape[d]);
        ck_assert_int_eq(scalar_npy_read_f32(f, 8, npy), SCALAR_OK);
        if (t == 2) {
            IO_EXPECT(scalar_npy_read_i32(i, 8, npy), SCALAR_E_UNSUPPORTED, "float32");
        } else {
            ck_assert_int_eq(scalar_npy_read_i32(i, 8, npy), SCALAR_OK);
        }
        for (size_t e = 0; e < shapes[k].numel; e++) {
            float want = t == 0 ? (float)u2[e] : t == 1 ? (float)i4[e] : f4[e];
            ck_assert_float_eq(f[e], want);
            if (t != 2)
                ck_assert_int_eq(i[e], t == 0 ? (int32_t)u2[e] : i4[e]);
        }
        scalar_npy_free(npy);
    }
}
END_TEST

START_TEST(test_npy_accepts_header_variants)
{
    const char *dicts[] = {
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3)}",
        "{'shape': (2, 3), 'descr': '<i4', 'fortran_order': False}",
        "{'fortran_order': False, 'shape': (2, 3), 'descr': '<i4', }",
        "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2,3)}",
        "{'descr':'<i4','fortran_order':False,'shape':(2,3,),}",
        "{ 'descr' : '<i4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) , }",
    };
    for (size_t k = 0; k < sizeof dicts / sizeof dicts[0]; k++) {
        size_t n = io_npy_build(buf, sizeof buf, 1, dicts[k], i4, sizeof i4);
        scalar_npy *npy = npy_ok(buf, n);
        int64_t shape[2];
        int32_t out[6];
        ck_assert_int_eq(scalar_npy_shape(shape, 2, npy), SCALAR_OK);
        ck_assert_int_eq(shape[0], 2);
        ck_assert_int_eq(shape[1], 3);
        ck_assert_int_eq(scalar_npy_read_i32(out, 6, npy), SCALAR_OK);
        ck_assert_mem_eq(out, i4, sizeof i4);
        scalar_npy_free(npy);
    }
}
END_TEST

START_TEST(test_npy_fortran_order)
{
    size_t n = io_npy_build(buf, sizeof buf, 1,
                            "{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", f4,
                            sizeof f4);
    scalar_npy *npy = npy_ok(buf, n);
    float out[6];
    ck_assert_int_eq(scalar_npy_read_f32(out, 6, npy), SCALAR_OK);
    ck_assert_mem_eq(out, f4, sizeof f4);
    scalar_npy_free(npy);

    n = io_npy_build(buf, sizeof buf, 2,
                     "{'descr': '<u2', 'fortran_order': True, 'shape': (), }", u2, 2);
    npy = npy_ok(buf, n);
    ck_assert_int_eq(scalar_npy_ndim(npy), 0);
    scalar_npy_free(npy);

    n = io_npy_build(buf, sizeof buf, 1,
                     "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", f4, sizeof f4);
    npy_fails(buf, n, SCALAR_E_UNSUPPORTED, "Fortran", "Fortran order 2-D");
}
END_TEST

START_TEST(test_npy_unsupported_types)
{
    static const struct {
        const char *descr;
        size_t elem;
    } t[] = {{">f4", 4}, {">u2", 2}, {">i4", 4}, {"<f8", 8}, {"<i8", 8},
             {"<f2", 2}, {"|u1", 1}, {"|b1", 1}, {"<c8", 8}};
    static const unsigned char zeros[48];
    for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (6,), }",
                 t[k].descr);
        size_t n = io_npy_build(buf, sizeof buf, 1, dict, zeros, 6 * t[k].elem);
        npy_fails(buf, n, SCALAR_E_UNSUPPORTED, t[k].descr, t[k].descr);
    }
}
END_TEST

/* ---- malformed files, one per row ---- */

enum { P_NONE, P_MAGIC, P_VERSION4, P_VERSION0, P_MINOR1, P_HLEN, P_NO_NEWLINE };

#define GOOD "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }"

static const struct {
    const char *what, *dict, *msg;
    int major, patch;
    size_t ndata;
} bad[] = {
    {"bad magic", GOOD, "magic", 1, P_MAGIC, 12},
    {"version 4.0", GOOD, "version", 1, P_VERSION4, 12},
    {"version 0.0", GOOD, "version", 1, P_VERSION0, 12},
    {"version 1.1", GOOD, "version", 1, P_MINOR1, 12},
    {"header length beyond file", GOOD, "header length", 1, P_HLEN, 0},
    {"v2 header length beyond file", GOOD, "header length", 2, P_HLEN, 0},
    {"header without its newline", GOOD, "header", 1, P_NO_NEWLINE, 12},
    {"missing shape", "{'descr': '<i4', 'fortran_order': False, }", "header", 1, P_NONE, 12},
    {"missing descr", "{'fortran_order': False, 'shape': (3,), }", "header", 1, P_NONE, 12},
    {"missing fortran_order", "{'descr': '<i4', 'shape': (3,), }", "header", 1, P_NONE, 12},
    {"extra key", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), 'extra': 1, }", "key",
     1, P_NONE, 12},
    {"repeated key", "{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (3,)}",
     "key", 1, P_NONE, 12},
    {"not a dict", "['descr', '<i4']", "header", 1, P_NONE, 12},
    {"unclosed dict", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), ", "header", 1,
     P_NONE, 12},
    {"missing comma", "{'descr': '<i4' 'fortran_order': False, 'shape': (3,)}", "header", 1,
     P_NONE, 12},
    {"garbage after dict", GOOD " x", "header", 1, P_NONE, 12},
    {"unquoted key", "{descr: '<i4', 'fortran_order': False, 'shape': (3,)}", "header", 1, P_NONE,
     12},
    {"descr not a string", "{'descr': 4, 'fortran_order': False, 'shape': (3,)}", "descr", 1,
     P_NONE, 12},
    {"descr not a simple type", "{'descr': '<i44', 'fortran_order': False, 'shape': (3,)}",
     "descr", 1, P_NONE, 12},
    {"fortran_order not a bool", "{'descr': '<i4', 'fortran_order': 0, 'shape': (3,)}",
     "fortran_order", 1, P_NONE, 12},
    {"shape (3,,)", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,,), }", "shape", 1,
     P_NONE, 12},
    {"shape (,)", "{'descr': '<i4', 'fortran_order': False, 'shape': (,), }", "shape", 1, P_NONE,
     0},
    {"shape a list", "{'descr': '<i4', 'fortran_order': False, 'shape': [3], }", "shape", 1,
     P_NONE, 12},
    {"shape unclosed", "{'descr': '<i4', 'fortran_order': False, 'shape': (3, }", "shape", 1,
     P_NONE, 12},
    {"negative dim", "{'descr': '<i4', 'fortran_order': False, 'shape': (-3,), }", "shape", 1,
     P_NONE, 12},
    {"fractional dim", "{'descr': '<i4', 'fortran_order': False, 'shape': (3.0,), }", "shape", 1,
     P_NONE, 12},
    {"rank 9", "{'descr': '<i4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,3), }",
     "dimensions", 1, P_NONE, 12},
    {"shape overflows", "{'descr': '<i4', 'fortran_order': False, "
     "'shape': (100000000000000000, 100000000000000000), }", "overflow", 1, P_NONE, 12},
    {"data too short", GOOD, "bytes", 1, P_NONE, 8},
    {"data too long", GOOD, "bytes", 1, P_NONE, 16},
    {"no data", GOOD, "bytes", 3, P_NONE, 0},
};

START_TEST(test_npy_rejects_malformed)
{
    static const int32_t data[4] = {1, 2, 3, 4};
    size_t n = io_npy_build(buf, sizeof buf, bad[_i].major, bad[_i].dict, data, bad[_i].ndata);
    size_t pre = bad[_i].major == 1 ? 10 : 12;
    switch (bad[_i].patch) {
    case P_MAGIC: buf[1] = 'n'; break;
    case P_VERSION4: buf[6] = 4; break;
    case P_VERSION0: buf[6] = 0; break;
    case P_MINOR1: buf[7] = 1; break;
    case P_HLEN: buf[8] = (unsigned char)(buf[8] + 1); break; /* one byte past the end */
    case P_NO_NEWLINE: buf[pre + (buf[8] | (size_t)buf[9] << 8) - 1] = ' '; break;
    default: break;
    }
    npy_fails(buf, n, SCALAR_E_FORMAT, bad[_i].msg, bad[_i].what);
}
END_TEST

START_TEST(test_npy_rejects_short_files)
{
    size_t n = io_npy_build(buf, sizeof buf, 2, GOOD, i4, 12);
    ck_assert_uint_gt(n, 12);
    for (size_t k = 0; k < 12; k++)
        npy_fails(buf, k, SCALAR_E_FORMAT, "scalar_npy_open", "truncated preamble");
}
END_TEST

/* ---- getters, reads, files ---- */

START_TEST(test_npy_getters_and_reads)
{
    size_t n = io_npy_build(buf, sizeof buf, 1, GOOD, i4, 12);
    scalar_npy *npy = npy_ok(buf, n);
    int64_t shape[1];
    int32_t i[3];
    float f[3];
    IO_EXPECT(scalar_npy_shape(shape, 0, npy), SCALAR_E_BUFSIZE, "capacity");
    IO_EXPECT(scalar_npy_read_i32(i, 2, npy), SCALAR_E_BUFSIZE, "capacity");
    IO_EXPECT(scalar_npy_read_f32(f, 2, npy), SCALAR_E_BUFSIZE, "capacity");
    ck_assert_int_eq(scalar_npy_read_i32(i, 3, npy), SCALAR_OK);
    ck_assert_int_eq(i[2], INT32_MAX);
    ck_assert_int_eq(scalar_npy_read_f32(f, 3, npy), SCALAR_OK);
    ck_assert_float_eq(f[2], 2147483648.0f);
    scalar_npy_free(npy);

    ck_assert_int_eq(scalar_npy_dtype(NULL), -1);
    ck_assert_int_eq(scalar_npy_ndim(NULL), -1);
    ck_assert_uint_eq(scalar_npy_numel(NULL), 0);
    IO_EXPECT(scalar_npy_shape(shape, 1, NULL), SCALAR_E_INVALID_ARG, "scalar_npy_shape");
    IO_EXPECT(scalar_npy_read_i32(i, 3, NULL), SCALAR_E_INVALID_ARG, "scalar_npy_read_i32");
    IO_EXPECT(scalar_npy_read_f32(f, 3, NULL), SCALAR_E_INVALID_ARG, "scalar_npy_read_f32");
    scalar_npy_free(NULL);
}
END_TEST

START_TEST(test_npy_open_rejects_null_arguments)
{
    scalar_npy *npy = (scalar_npy *)&npy;
    IO_EXPECT(scalar_npy_open(&npy, NULL, "x.npy"), SCALAR_E_INVALID_ARG, "scalar_npy_open");
    ck_assert_ptr_null(npy);
    IO_EXPECT(scalar_npy_open(&npy, io_ctx, NULL), SCALAR_E_INVALID_ARG, "scalar_npy_open");
    IO_EXPECT(scalar_npy_open(NULL, io_ctx, "x.npy"), SCALAR_E_INVALID_ARG, "scalar_npy_open");
    npy = (scalar_npy *)&npy;
    IO_EXPECT(scalar_npy_open_memory(&npy, NULL, buf, 16), SCALAR_E_INVALID_ARG,
              "scalar_npy_open_memory");
    ck_assert_ptr_null(npy);
}
END_TEST

START_TEST(test_npy_open_files)
{
    const char *path = test_tmp_path("tokens.npy");
    size_t n = io_npy_build(buf, sizeof buf, 1,
                            "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", u2,
                            sizeof u2);
    io_write_file(path, buf, n);
    scalar_npy *npy = NULL;
    int32_t out[6];
    ck_assert_int_eq(scalar_npy_open(&npy, io_ctx, path), SCALAR_OK);
    ck_assert_int_eq(scalar_npy_read_i32(out, 6, npy), SCALAR_OK);
    ck_assert_int_eq(out[2], 65535); /* unsigned, not -1 */
    ck_assert_int_eq(out[3], 50256);

    /* The handle keeps the context alive. */
    scalar_ctx *ctx = io_ctx;
    io_ctx = NULL;
    scalar_ctx_free(ctx);
    ck_assert_int_eq(scalar_npy_read_i32(out, 6, npy), SCALAR_OK);
    ck_assert_int_eq(out[5], 9);
    scalar_npy_free(npy);
    ck_assert_uint_eq(io_count.live_bytes, 0);
}
END_TEST

START_TEST(test_npy_open_missing_and_empty_files)
{
    scalar_npy *npy = (scalar_npy *)&npy;
    const char *missing = test_tmp_path("missing.npy");
    IO_EXPECT(scalar_npy_open(&npy, io_ctx, missing), SCALAR_E_IO, missing);
    ck_assert_ptr_null(npy);
    const char *empty = test_tmp_path("empty.npy");
    io_write_file(empty, "", 0);
    npy = (scalar_npy *)&npy;
    IO_EXPECT(scalar_npy_open(&npy, io_ctx, empty), SCALAR_E_FORMAT, empty);
    ck_assert_ptr_null(npy);
}
END_TEST

void io_add_npy_tests(Suite *s)
{
    TCase *tc = io_tcase("npy");
    tcase_add_loop_test(tc, test_npy_reads_every_version_dtype_and_shape, 0, 9);
    tcase_add_test(tc, test_npy_accepts_header_variants);
    tcase_add_test(tc, test_npy_fortran_order);
    tcase_add_test(tc, test_npy_unsupported_types);
    tcase_add_loop_test(tc, test_npy_rejects_malformed, 0, (int)(sizeof bad / sizeof bad[0]));
    tcase_add_test(tc, test_npy_rejects_short_files);
    tcase_add_test(tc, test_npy_getters_and_reads);
    tcase_add_test(tc, test_npy_open_rejects_null_arguments);
    tcase_add_test(tc, test_npy_open_files);
    tcase_add_test(tc, test_npy_open_missing_and_empty_files);
    suite_add_tcase(s, tc);
}
