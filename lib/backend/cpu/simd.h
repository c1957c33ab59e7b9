/*
 * simd.h - float vectors (GNU vector extensions) for the cpu kernels
 * whose loops hold selects or square roots: exp, GELU, softmax, AdamW.
 *
 * Why not `#pragma omp simd`: the library builds with -O2 and GCC's default
 * -ftrapping-math, under which a float compare-and-select (a clamp, a NaN
 * test) keeps a loop from vectorising at all.  Vector-extension code states
 * the lanes itself, so the compiler has nothing to prove.  GCC and clang
 * both take this syntax.
 *
 * Everything here is lane-wise or reduces in a fixed order, so results never
 * depend on how a caller splits rows between threads.
 */
#ifndef SCALAR_BACKEND_CPU_SIMD_H
#define SCALAR_BACKEND_CPU_SIMD_H

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h> /* vf_splat, vf_sqrt, vf_fma */
#endif

/* The widest vector the build targets natively: 8 lanes with AVX, else the
 * 4 of x86-64's baseline SSE2 (a wider type would be split in two and, passed
 * by value without AVX, trips GCC's -Wpsabi). */
#if defined(__AVX__)
#define VF_BYTES 32
#else
#define VF_BYTES 16
#endif
#define VF_LANES (VF_BYTES / 4)

typedef float scalar__vf __attribute__((vector_size(VF_BYTES)));
typedef int32_t scalar__vi __attribute__((vector_size(VF_BYTES)));

static inline scalar__vf vf_splat(float c)
{
#if defined(__AVX__)
    return (scalar__vf)_mm256_set1_ps(c); /* one vbroadcastss */
#else
    return (scalar__vf){0} + c; /* a scalar operand is broadcast */
#endif
}

/* Unaligned load and store (memcpy compiles to one or two movups). */
static inline scalar__vf vf_load(const float *p)
{
    scalar__vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vf_store(float *p, scalar__vf v)
{
    memcpy(p, &v, sizeof v);
}

/* The first n (< VF_LANES) lanes from p, the rest `fill`: row tails go
 * through the same vector code as full blocks, so a tail gives bit-identical
 * results. */
static inline scalar__vf vf_load_part(const float *p, int64_t n, float fill)
{
    float t[VF_LANES];
    for (int64_t i = 0; i < VF_LANES; i++)
        t[i] = i < n ? p[i] : fill;
    return vf_load(t);
}

static inline void vf_store_part(float *p, scalar__vf v, int64_t n)
{
    float t[VF_LANES];
    vf_store(t, v);
    for (int64_t i = 0; i < n; i++)
        p[i] = t[i];
}

/* a * b + c, fused (one rounding) where the build targets FMA, else two
 * operations.  Only for kernels whose contract allows either: those that
 * must match cpu-ref bit for bit use plain * and +. */
static inline scalar__vf vf_fma(scalar__vf a, scalar__vf b, scalar__vf c)
{
#if defined(__FMA__) && defined(__AVX__)
    return (scalar__vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* mask ? a : b, lane-wise; mask lanes are 0 or -1 (a vector comparison). */
static inline scalar__vf vf_select(scalar__vi mask, scalar__vf a, scalar__vf b)
{
    return (scalar__vf)((mask & (scalar__vi)a) | (~mask & (scalar__vi)b));
}

/* Clamp to [lo, hi]; NaN lanes stay NaN (their compares are false). */
static inline scalar__vf vf_clamp(scalar__vf x, float lo, float hi)
{
    x = vf_select(x < vf_splat(lo), vf_splat(lo), x);
    return vf_select(x > vf_splat(hi), vf_splat(hi), x);
}

/* Clamp to [lo, hi] with NaN lanes sent to lo (compares with NaN are false). */
static inline scalar__vf vf_clamp_finite(scalar__vf x, float lo, float hi)
{
    x = vf_select(x > vf_splat(lo), x, vf_splat(lo));
    return vf_select(x < vf_splat(hi), x, vf_splat(hi));
}

/* Horizontal sum, lanes in order. */
static inline float vf_hsum(scalar__vf v)
{
    float t[VF_LANES], sum = 0.0f;
    vf_store(t, v);
    for (int i = 0; i < VF_LANES; i++)
        sum += t[i];
    return sum;
}

/* Largest lane, ignoring NaN lanes (-inf if all are NaN). */
static inline float vf_hmax(scalar__vf v)
{
    float t[VF_LANES], m = -INFINITY;
    vf_store(t, v);
    for (int i = 0; i < VF_LANES; i++)
        m = t[i] > m ? t[i] : m;
    return m;
}

static inline int vf_any(scalar__vi mask)
{
    int32_t t[VF_LANES];
    memcpy(t, &mask, sizeof t);
    int32_t any = 0;
    for (int i = 0; i < VF_LANES; i++)
        any |= t[i];
    return any != 0;
}

/* Bit i set where lane i of the mask is set (lanes are 0 or -1). */
static inline uint32_t vf_mask_bits(scalar__vi mask)
{
#if defined(__AVX__)
    return (uint32_t)_mm256_movemask_ps((__m256)mask);
#elif defined(__SSE2__)
    return (uint32_t)_mm_movemask_ps((__m128)mask);
#else
    int32_t t[VF_LANES];
    uint32_t bits = 0;
    memcpy(t, &mask, sizeof t);
    for (int i = 0; i < VF_LANES; i++)
        bits |= (uint32_t)(t[i] != 0) << i;
    return bits;
#endif
}

/* Lane-wise square root, correctly rounded like sqrtf.  Why not sqrtf in an
 * `omp simd` loop: with the default -fmath-errno GCC guards each sqrtf with
 * a branch to the errno-setting libm call, and no loop holding it vectorises. */
static inline scalar__vf vf_sqrt(scalar__vf x)
{
#if defined(__AVX__)
    return (scalar__vf)_mm256_sqrt_ps((__m256)x);
#elif defined(__SSE2__)
    return (scalar__vf)_mm_sqrt_ps((__m128)x);
#else
    float t[VF_LANES];
    vf_store(t, x);
    for (int i = 0; i < VF_LANES; i++)
        t[i] = sqrtf(t[i]);
    return vf_load(t);
#endif
}

#define VF_EXP_LO (-87.3f) /* below: exp underflows past FLT_MIN, return 0 */
#define VF_EXP_HI 88.3f    /* above: return +inf (true overflow starts at 88.72) */

/*
 * exp(x) for x in [VF_EXP_LO, VF_EXP_HI], Cephes' single-precision algorithm:
 * x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n*ln2 is exact), a
 * degree-6 polynomial for e^r, then 2^n put straight into the exponent bits.
 * Relative error <= 2 ulp.  The steps fuse where the build has FMA (vf_fma):
 * its callers (softmax, GELU, cross-entropy) are tolerance-checked, not
 * bit-exact, and any one build gives the same bits on every thread.  The wrappers below add only the range handling
 * their callers need: each select costs as much as a polynomial term.
 */
static inline scalar__vf vf_exp_core(scalar__vf x)
{
    /* round(x / ln2) by the 1.5 * 2^23 trick (round to nearest, ties even) */
    scalar__vf n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    scalar__vf r = vf_fma(n, vf_splat(-0.693359375f), x);
    r = vf_fma(n, vf_splat(2.12194440e-4f), r);
    scalar__vf p = vf_splat(1.9875691500e-4f);
    p = vf_fma(p, r, vf_splat(1.3981999507e-3f));
    p = vf_fma(p, r, vf_splat(8.3334519073e-3f));
    p = vf_fma(p, r, vf_splat(4.1665795894e-2f));
    p = vf_fma(p, r, vf_splat(1.6666665459e-1f));
    p = vf_fma(p, r, vf_splat(5.0000001201e-1f));
    scalar__vf e = vf_fma(p * r, r, r) + 1.0f;
    scalar__vi n_int = __builtin_convertvector(n, scalar__vi); /* in [-126, 127] */
    return e * (scalar__vf)((n_int + 127) << 23);
}

/* exp(x) for x <= VF_EXP_HI, not NaN: below VF_EXP_LO (-inf included) 0. */
static inline scalar__vf vf_exp_upto_hi(scalar__vf x)
{
    scalar__vf y = vf_exp_core(vf_clamp_finite(x, VF_EXP_LO, VF_EXP_HI));
    return vf_select(x > vf_splat(VF_EXP_LO), y, vf_splat(0.0f));
}

/* exp(x) for every x: 0 below VF_EXP_LO, +inf above VF_EXP_HI, NaN for NaN. */
static inline scalar__vf vf_exp(scalar__vf x)
{
    scalar__vf y = vf_exp_upto_hi(x);
    y = vf_select(x > vf_splat(VF_EXP_HI), vf_splat(INFINITY), y);
    return vf_select(x == x, y, x);
}

#endif /* SCALAR_BACKEND_CPU_SIMD_H */
