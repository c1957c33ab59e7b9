/*
 * dtype.c - element types: names, sizes, and conversion to float32.
 *
 * Sources may be unaligned (a tensor after a 1-byte tensor in a safetensors
 * file), so every element is loaded with memcpy.  The host is little-endian
 * (checked at compile time), like every file format we read.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "io_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libscalar reads little-endian files on little-endian hosts only"
#endif

static const struct {
    const char *name;
    size_t size;
} dtypes[SCALAR_DTYPE_COUNT] = {
    [SCALAR_DTYPE_F32] = {"F32", 4},     [SCALAR_DTYPE_F16] = {"F16", 2},
    [SCALAR_DTYPE_BF16] = {"BF16", 2},   [SCALAR_DTYPE_I32] = {"I32", 4},
    [SCALAR_DTYPE_I64] = {"I64", 8},     [SCALAR_DTYPE_U16] = {"U16", 2},
    [SCALAR_DTYPE_F64] = {"F64", 8},     [SCALAR_DTYPE_I8] = {"I8", 1},
    [SCALAR_DTYPE_U8] = {"U8", 1},       [SCALAR_DTYPE_I16] = {"I16", 2},
    [SCALAR_DTYPE_U32] = {"U32", 4},     [SCALAR_DTYPE_U64] = {"U64", 8},
    [SCALAR_DTYPE_BOOL] = {"BOOL", 1},   [SCALAR_DTYPE_F8_E4M3] = {"F8_E4M3", 1},
    [SCALAR_DTYPE_F8_E5M2] = {"F8_E5M2", 1},
};

const char *scalar_dtype_name(int32_t dtype)
{
    return dtype >= 0 && dtype < SCALAR_DTYPE_COUNT ? dtypes[dtype].name : NULL;
}

size_t scalar_dtype_size(int32_t dtype)
{
    return dtype >= 0 && dtype < SCALAR_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

int32_t scalar_max_dims(void)
{
    return SCALAR_MAX_DIMS;
}

int32_t scalar__dtype_from_name(const char *name)
{
    for (int32_t d = 0; d < SCALAR_DTYPE_COUNT; d++)
        if (strcmp(dtypes[d].name, name) == 0)
            return d;
    return -1;
}

int scalar__shape_numel(uint64_t *out, const int64_t *shape, int32_t ndim)
{
    uint64_t n = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0 || scalar__mul_overflow(n, (uint64_t)shape[i], &n) ||
            n > (UINT64_C(1) << 62))
            return -1;
    }
    *out = n;
    return 0;
}

float scalar__f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else {
        /* Zero or subnormal: mant * 2^-24 is exact in float32. */
        float f = ldexpf((float)mant, -24);
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

float scalar__bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

/* double -> float: out-of-range values saturate to +-inf (a plain cast is
 * undefined behaviour there). */
static float d2f(double v)
{
    if (v > FLT_MAX)
        return INFINITY;
    if (v < -FLT_MAX)
        return -INFINITY;
    return (float)v;
}

#define CONVERT(T, expr)                            \
    for (uint64_t i = 0; i < n; i++) {              \
        T v;                                        \
        memcpy(&v, src + i * sizeof(T), sizeof(T)); \
        dst[i] = (float)(expr);                     \
    }                                               \
    break

scalar_status scalar__convert_to_f32(float *dst, const unsigned char *src, int32_t dtype,
                                     uint64_t n)
{
    switch (dtype) {
    case SCALAR_DTYPE_F32: if (n) memcpy(dst, src, n * 4); break;
    case SCALAR_DTYPE_F16: CONVERT(uint16_t, scalar__f16_to_f32(v));
    case SCALAR_DTYPE_BF16: CONVERT(uint16_t, scalar__bf16_to_f32(v));
    case SCALAR_DTYPE_F64: CONVERT(double, d2f(v));
    case SCALAR_DTYPE_I8: CONVERT(int8_t, v);
    case SCALAR_DTYPE_U8: CONVERT(uint8_t, v);
    case SCALAR_DTYPE_I16: CONVERT(int16_t, v);
    case SCALAR_DTYPE_U16: CONVERT(uint16_t, v);
    case SCALAR_DTYPE_I32: CONVERT(int32_t, v);
    case SCALAR_DTYPE_U32: CONVERT(uint32_t, v);
    case SCALAR_DTYPE_I64: CONVERT(int64_t, v);
    case SCALAR_DTYPE_U64: CONVERT(uint64_t, v);
    case SCALAR_DTYPE_BOOL: CONVERT(uint8_t, v != 0);
    default:
        return scalar__error_set(SCALAR_E_UNSUPPORTED, "conversion of %s to F32 is not supported",
                                 scalar_dtype_name(dtype) ? scalar_dtype_name(dtype) : "?");
    }
    return SCALAR_OK;
}
