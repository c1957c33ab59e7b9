/*
 * cpu_gemm_ukr.c - an AVX2/FMA sgemm microkernel for BLIS, used when BLIS
 * itself runs its portable "generic" kernels.
 *
 * Why: BLIS picks its kernels by CPU model at run time.  BLIS 0.9.0
 * (Debian 12) knows nothing newer than Zen 3 and Ice Lake-era Intel, and on
 * anything it does not recognise (AMD family 1Ah, Zen 5, for one) it falls
 * back to "generic": plain C microkernels at a third or less of the
 * machine's speed.  BLIS's answer to a missing kernel is to register one in
 * a context (docs/KernelsHowTo.md, bli_cntx_set_l3_nat_ukrs), keeping its
 * blocking, packing and threading; cpu.c does that with this kernel when the
 * build targets AVX2 + FMA and BLIS reports "generic".
 *
 * The kernel: C[m, n] = alpha A B + beta C for one MR x NR = 6 x 16 tile,
 * m <= 6, n <= 16 (BLIS 0.9 hands edge tiles to the kernel).  Packed A is
 * MR-wide columns (a[p * 6 + i]), packed B NR-wide rows (b[p * 16 + j]),
 * both zero-padded by BLIS to the full tile, so the k loop always reads full
 * vectors.  12 accumulators (6 rows x 2 vectors of 8) + 2 B vectors + 1
 * broadcast fill 15 of the 16 ymm registers.  C is read only when
 * beta != 0, so NaN in an output that is overwritten does not survive.
 */
#include "cpu.h"

#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>

#define UKR_MR 6
#define UKR_NR 16

/* acc (one row of the tile, 2 vectors) scaled and merged into C row i. */
static inline void merge_row(float *c, int64_t cs_c, int64_t n, __m256 lo, __m256 hi,
                             float beta)
{
    if (cs_c == 1 && n == UKR_NR) {
        if (beta != 0.0f) {
            __m256 vb = _mm256_set1_ps(beta);
            lo = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), lo);
            hi = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + 8), hi);
        }
        _mm256_storeu_ps(c, lo);
        _mm256_storeu_ps(c + 8, hi);
        return;
    }
    float t[UKR_NR];
    _mm256_storeu_ps(t, lo);
    _mm256_storeu_ps(t + 8, hi);
    for (int64_t j = 0; j < n; j++) {
        float *cj = c + j * cs_c;
        *cj = beta != 0.0f ? beta * *cj + t[j] : t[j];
    }
}

void scalar__cpu_sgemm_ukr_6x16(int64_t m, int64_t n, int64_t k, const float *alpha,
                                const float *a, const float *b, const float *beta, float *c,
                                int64_t rs_c, int64_t cs_c)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 ai;
        ai = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(ai, b0, c00);
        c01 = _mm256_fmadd_ps(ai, b1, c01);
        ai = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(ai, b0, c10);
        c11 = _mm256_fmadd_ps(ai, b1, c11);
        ai = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(ai, b0, c20);
        c21 = _mm256_fmadd_ps(ai, b1, c21);
        ai = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(ai, b0, c30);
        c31 = _mm256_fmadd_ps(ai, b1, c31);
        ai = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(ai, b0, c40);
        c41 = _mm256_fmadd_ps(ai, b1, c41);
        ai = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(ai, b0, c50);
        c51 = _mm256_fmadd_ps(ai, b1, c51);
        a += UKR_MR;
        b += UKR_NR;
    }
    __m256 va = _mm256_set1_ps(*alpha);
    __m256 rows[UKR_MR][2] = {
        {c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51},
    };
    for (int64_t i = 0; i < m; i++)
        merge_row(c + i * rs_c, cs_c, n, _mm256_mul_ps(va, rows[i][0]),
                  _mm256_mul_ps(va, rows[i][1]), *beta);
}

/* ---- AVX-512: 24 x 16, where the CPU has it (picked at run time) ----
 * One zmm of B per k step, 24 accumulators (one per row), A's elements as
 * embedded broadcasts of the FMAs: 24 FMAs and 25 loads per step, 26 of the
 * 32 zmm registers.  Edge tiles store through a lane mask. */
#define UKR512_MR 24
#define UKR512_NR 16

__attribute__((target("avx512f"))) void
scalar__cpu_sgemm_ukr_24x16(int64_t m, int64_t n, int64_t k, const float *alpha, const float *a,
                            const float *b, const float *beta, float *c, int64_t rs_c,
                            int64_t cs_c)
{
    __m512 acc[UKR512_MR];
    for (int i = 0; i < UKR512_MR; i++)
        acc[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m512 bp = _mm512_loadu_ps(b);
#if defined(__clang__)
#pragma unroll
#else
#pragma GCC unroll 24
#endif
        for (int i = 0; i < UKR512_MR; i++)
            acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), bp, acc[i]);
        a += UKR512_MR;
        b += UKR512_NR;
    }
    __m512 va = _mm512_set1_ps(*alpha), vb = _mm512_set1_ps(*beta);
    int full = n == UKR512_NR;
    __mmask16 mask = (__mmask16)((1u << n) - 1u);
    for (int64_t i = 0; i < m; i++) {
        __m512 r = _mm512_mul_ps(va, acc[i]);
        float *ci = c + i * rs_c;
        if (cs_c == 1) {
            if (*beta != 0.0f)
                r = _mm512_fmadd_ps(vb, full ? _mm512_loadu_ps(ci) : _mm512_maskz_loadu_ps(mask, ci),
                                    r);
            if (full)
                _mm512_storeu_ps(ci, r);
            else
                _mm512_mask_storeu_ps(ci, mask, r);
        } else {
            float t[UKR512_NR];
            _mm512_storeu_ps(t, r);
            for (int64_t j = 0; j < n; j++) {
                float *cj = ci + j * cs_c;
                *cj = *beta != 0.0f ? *beta * *cj + t[j] : t[j];
            }
        }
    }
}

int scalar__cpu_sgemm_ukr_available(void)
{
    return 1;
}

int scalar__cpu_sgemm_ukr512_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

#else /* no AVX2 + FMA in this build: BLIS keeps its own kernels */

void scalar__cpu_sgemm_ukr_6x16(int64_t m, int64_t n, int64_t k, const float *alpha,
                                const float *a, const float *b, const float *beta, float *c,
                                int64_t rs_c, int64_t cs_c)
{
    (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b, (void)beta, (void)c, (void)rs_c;
    (void)cs_c;
}

void scalar__cpu_sgemm_ukr_24x16(int64_t m, int64_t n, int64_t k, const float *alpha,
                                 const float *a, const float *b, const float *beta, float *c,
                                 int64_t rs_c, int64_t cs_c)
{
    (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)b, (void)beta, (void)c, (void)rs_c;
    (void)cs_c;
}

int scalar__cpu_sgemm_ukr_available(void)
{
    return 0;
}

int scalar__cpu_sgemm_ukr512_available(void)
{
    return 0;
}

#endif
