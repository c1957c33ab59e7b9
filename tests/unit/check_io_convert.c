/*
 * check_io_convert.c - scalar_safetensors_read_f32 from every stored type:
 * exact values at the edges (subnormals, infinities, NaN, integer extremes),
 * the float8 refusal, small capacities and unaligned tensors.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>

#include "check_io.h"

static _Alignas(64) unsigned char buf[8192];

/* Open one tensor `dtype` of `n` elements holding `raw`, read it as float32. */
static void read_one(float *out, const char *dtype, const void *raw, size_t n, size_t elem)
{
    const io_tensor t = {"t", dtype, 1, {(int64_t)n}, raw, n * elem};
    size_t size = io_st_build(buf, sizeof buf, &t, 1, NULL);
    scalar_safetensors *st = NULL;
    ck_assert_int_eq(scalar_safetensors_open_memory(&st, io_ctx, buf, size), SCALAR_OK);
    ck_assert_uint_eq(scalar_safetensors_numel(st, 0), n);
    for (size_t i = 0; i <= n; i++)
        out[i] = -12345.0f; /* out[n] must stay untouched */
    scalar_last_error_clear();
    ck_assert_msg(scalar_safetensors_read_f32(out, n + 1, st, 0) == SCALAR_OK, "%s: %s", dtype,
                  scalar_last_error());
    ck_assert_float_eq(out[n], -12345.0f);
    scalar_safetensors_free(st);
}

/* Bitwise equality, so -0.0 and +0.0 differ and NaN equals NaN. */
static void assert_same_float(float got, float want, const char *what, size_t i)
{
    if (isnan(want)) {
        ck_assert_msg(isnan(got), "%s[%zu]: got %a, expected NaN", what, i, (double)got);
        return;
    }
    uint32_t g, w;
    memcpy(&g, &got, 4);
    memcpy(&w, &want, 4);
    ck_assert_msg(g == w, "%s[%zu]: got %a (0x%08x), expected %a (0x%08x)", what, i, (double)got,
                  (unsigned)g, (double)want, (unsigned)w);
}

#define CHECK_ALL(what, got, want)                                    \
    for (size_t i_ = 0; i_ < sizeof(want) / sizeof((want)[0]); i_++) \
        assert_same_float((got)[i_], (want)[i_], what, i_)

START_TEST(test_read_f32_from_f16)
{
    const uint16_t h[] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                          0x8000, 0x7C00, 0xFC00, 0x7E00, 0x7C01, 0x3555};
    const float want[] = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 0x3FFp-24f, 0x1p-14f,
                          -0.0f, INFINITY, -INFINITY, NAN, NAN, 0x1.554p-2f};
    float out[16];
    read_one(out, "F16", h, 12, 2);
    CHECK_ALL("F16", out, want);
}
END_TEST

START_TEST(test_read_f32_from_bf16)
{
    const uint16_t b[] = {0x3F80, 0xBE20, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x4049, 0x8000};
    const float want[] = {1.0f, -0.15625f, INFINITY, -INFINITY, NAN, 0x1p-133f, 3.140625f, -0.0f};
    float out[16];
    read_one(out, "BF16", b, 8, 2);
    CHECK_ALL("BF16", out, want);
}
END_TEST

START_TEST(test_read_f32_from_f32_is_bit_exact)
{
    const uint32_t bits[] = {0x3F800000u, 0x80000000u, 0x7FC12345u, 0x00000001u, 0xFF800000u};
    float out[8];
    read_one(out, "F32", bits, 5, 4);
    ck_assert_mem_eq(out, bits, sizeof bits);
}
END_TEST

START_TEST(test_read_f32_from_f64)
{
    const double d[] = {0.1, -2.5, 1e300, -1e300, NAN, 1e-50, 16777217.0, -0.0};
    const float want[] = {0.1f, -2.5f, INFINITY, -INFINITY, NAN, 0.0f, 16777216.0f, -0.0f};
    float out[16];
    read_one(out, "F64", d, 8, 8);
    CHECK_ALL("F64", out, want);
}
END_TEST

START_TEST(test_read_f32_from_signed_integers)
{
    float out[16];
    const int32_t i32[] = {INT32_MIN, -1, 0, 16777217, INT32_MAX};
    const float w32[] = {-2147483648.0f, -1.0f, 0.0f, 16777216.0f, 2147483648.0f};
    read_one(out, "I32", i32, 5, 4);
    CHECK_ALL("I32", out, w32);

    const int64_t i64[] = {-5, INT64_C(1) << 40, INT64_MIN, INT64_MAX};
    const float w64[] = {-5.0f, 0x1p40f, -0x1p63f, 0x1p63f};
    read_one(out, "I64", i64, 4, 8);
    CHECK_ALL("I64", out, w64);

    const int8_t i8[] = {-128, -1, 127};
    const float w8[] = {-128.0f, -1.0f, 127.0f};
    read_one(out, "I8", i8, 3, 1);
    CHECK_ALL("I8", out, w8);

    const int16_t i16[] = {-32768, 32767};
    const float w16[] = {-32768.0f, 32767.0f};
    read_one(out, "I16", i16, 2, 2);
    CHECK_ALL("I16", out, w16);
}
END_TEST

START_TEST(test_read_f32_from_unsigned_integers_and_bool)
{
    float out[16];
    const uint16_t u16[] = {0, 1, 50256, 65535};
    const float w16[] = {0.0f, 1.0f, 50256.0f, 65535.0f};
    read_one(out, "U16", u16, 4, 2);
    CHECK_ALL("U16", out, w16);

    const uint8_t u8[] = {0, 1, 200, 255};
    const float w8[] = {0.0f, 1.0f, 200.0f, 255.0f};
    read_one(out, "U8", u8, 4, 1);
    CHECK_ALL("U8", out, w8);

    const uint8_t b[] = {0, 1, 1, 0};
    const float wb[] = {0.0f, 1.0f, 1.0f, 0.0f};
    read_one(out, "BOOL", b, 4, 1);
    CHECK_ALL("BOOL", out, wb);

    const uint32_t u32[] = {0, 4294967295u};
    const float w32[] = {0.0f, 4294967296.0f};
    read_one(out, "U32", u32, 2, 4);
    CHECK_ALL("U32", out, w32);

    const uint64_t u64[] = {7, UINT64_MAX};
    const float w64[] = {7.0f, 0x1p64f};
    read_one(out, "U64", u64, 2, 8);
    CHECK_ALL("U64", out, w64);
}
END_TEST

START_TEST(test_read_f32_refuses_float8)
{
    const unsigned char f8[2] = {0x38, 0x3C};
    const io_tensor t[] = {{"e4m3", "F8_E4M3", 1, {2}, f8, 2}, {"e5m2", "F8_E5M2", 1, {2}, f8, 2}};
    size_t n = io_st_build(buf, sizeof buf, t, 2, NULL);
    scalar_safetensors *st = NULL;
    float out[2];
    const void *view;
    size_t nbytes;
    ck_assert_int_eq(scalar_safetensors_open_memory(&st, io_ctx, buf, n), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_dtype(st, 0), SCALAR_DTYPE_F8_E4M3);
    ck_assert_int_eq(scalar_safetensors_dtype(st, 1), SCALAR_DTYPE_F8_E5M2);
    IO_EXPECT(scalar_safetensors_read_f32(out, 2, st, 0), SCALAR_E_UNSUPPORTED, "F8_E4M3");
    IO_EXPECT(scalar_safetensors_read_f32(out, 2, st, 1), SCALAR_E_UNSUPPORTED, "F8_E5M2");
    /* stored, not converted: the raw view is still there */
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, 1), SCALAR_OK);
    ck_assert_uint_eq(nbytes, 2);
    ck_assert_mem_eq(view, f8, 2);
    scalar_safetensors_free(st);
}
END_TEST

START_TEST(test_read_f32_capacity_too_small)
{
    const float v[4] = {1, 2, 3, 4};
    const io_tensor t = {"four", "F32", 2, {2, 2}, v, sizeof v};
    size_t n = io_st_build(buf, sizeof buf, &t, 1, NULL);
    scalar_safetensors *st = NULL;
    float out[4] = {9, 9, 9, 9};
    ck_assert_int_eq(scalar_safetensors_open_memory(&st, io_ctx, buf, n), SCALAR_OK);
    IO_EXPECT(scalar_safetensors_read_f32(out, 3, st, 0), SCALAR_E_BUFSIZE, "capacity");
    IO_EXPECT(scalar_safetensors_read_f32(out, 0, st, 0), SCALAR_E_BUFSIZE, "capacity");
    ck_assert_float_eq(out[0], 9.0f); /* nothing written */
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 4, st, 0), SCALAR_OK);
    ck_assert_float_eq(out[3], 4.0f);
    scalar_safetensors_free(st);
}
END_TEST

/* A 1-byte tensor first puts the next ones at odd offsets. */
START_TEST(test_read_f32_unaligned_tensors)
{
    const uint8_t flag = 7;
    const float f[3] = {1.25f, -3.5f, 1e-3f};
    const double d[2] = {-0.5, 1e10};
    const int64_t i[1] = {-123456789012};
    const uint16_t h[1] = {0xC100};
    const io_tensor t[] = {{"flag", "U8", 0, {0}, &flag, 1}, {"f", "F32", 1, {3}, f, sizeof f},
                           {"d", "F64", 1, {2}, d, sizeof d}, {"i", "I64", 1, {1}, i, sizeof i},
                           {"h", "F16", 1, {1}, h, sizeof h}};
    size_t n = io_st_build(buf, sizeof buf, t, 5, NULL);
    scalar_safetensors *st = NULL;
    const void *view;
    size_t nbytes;
    float out[3];
    ck_assert_int_eq(scalar_safetensors_open_memory(&st, io_ctx, buf, n), SCALAR_OK);
    ck_assert_int_eq(scalar_safetensors_data(&view, &nbytes, st, 1), SCALAR_OK);
    ck_assert_uint_eq((uintptr_t)view % 4, 1); /* really unaligned */
    ck_assert_mem_eq(view, f, sizeof f);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 1), SCALAR_OK);
    ck_assert_float_eq(out[0], 1.25f);
    ck_assert_float_eq(out[1], -3.5f);
    ck_assert_float_eq(out[2], 1e-3f);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 2), SCALAR_OK);
    ck_assert_float_eq(out[0], -0.5f);
    ck_assert_float_eq(out[1], 1e10f);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 3), SCALAR_OK);
    ck_assert_float_eq(out[0], (float)-123456789012.0);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 4), SCALAR_OK);
    ck_assert_float_eq(out[0], -2.5f);
    ck_assert_int_eq(scalar_safetensors_read_f32(out, 3, st, 0), SCALAR_OK);
    ck_assert_float_eq(out[0], 7.0f);
    scalar_safetensors_free(st);
}
END_TEST

void io_add_convert_tests(Suite *s)
{
    TCase *tc = io_tcase("read_f32");
    tcase_add_test(tc, test_read_f32_from_f16);
    tcase_add_test(tc, test_read_f32_from_bf16);
    tcase_add_test(tc, test_read_f32_from_f32_is_bit_exact);
    tcase_add_test(tc, test_read_f32_from_f64);
    tcase_add_test(tc, test_read_f32_from_signed_integers);
    tcase_add_test(tc, test_read_f32_from_unsigned_integers_and_bool);
    tcase_add_test(tc, test_read_f32_refuses_float8);
    tcase_add_test(tc, test_read_f32_capacity_too_small);
    tcase_add_test(tc, test_read_f32_unaligned_tensors);
    suite_add_tcase(s, tc);
}
