/*
 * bench_peak.h - this machine's fp32 FMA peak, measured, for the benches'
 * "% of peak" columns (shared by bench_sgemm.c and bench_model.c).
 *
 * Independent FMA chains held in registers (no memory traffic), one chain
 * set per thread, at the widest vector the CPU runs: AVX-512 where it has it
 * (the cpu backend's sgemm kernel uses it there), else AVX2.  Ten named
 * accumulators: FMA latency 4 x 2 pipes needs at least 8 in flight, and
 * names (not an array) keep them in registers.
 */
#ifndef SCALAR_BENCH_PEAK_H
#define SCALAR_BENCH_PEAK_H

#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double peak_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define PEAK_CHAINS(V, SET1, FMA, ADD, STORE, LANES)                                            \
    const V x = SET1(0.999999f), y = SET1(1e-7f);                                              \
    V a0 = SET1(0.f), a1 = SET1(1.f), a2 = SET1(2.f), a3 = SET1(3.f), a4 = SET1(4.f),          \
      a5 = SET1(5.f), a6 = SET1(6.f), a7 = SET1(7.f), a8 = SET1(8.f), a9 = SET1(9.f);          \
    for (long it = 0; it < iters; it++) {                                                      \
        a0 = FMA(a0, x, y), a1 = FMA(a1, x, y), a2 = FMA(a2, x, y), a3 = FMA(a3, x, y);        \
        a4 = FMA(a4, x, y), a5 = FMA(a5, x, y), a6 = FMA(a6, x, y), a7 = FMA(a7, x, y);        \
        a8 = FMA(a8, x, y), a9 = FMA(a9, x, y);                                                \
    }                                                                                          \
    V s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                   \
    s = ADD(s, ADD(a8, a9));                                                                   \
    float out[LANES];                                                                          \
    STORE(out, s);                                                                             \
    return out[0];

__attribute__((target("avx2,fma"))) static double peak_chains_avx2(long iters)
{
    PEAK_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
}

__attribute__((target("avx512f"))) static double peak_chains_avx512(long iters)
{
    PEAK_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
}

/* The vector the peak is measured with: "AVX-512" or "AVX2". */
static const char *peak_isa(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2";
}

/* GFLOP/s of n_threads threads of FMA chains, best of 3. */
static double measure_peak(int n_threads)
{
    const long iters = 20000000;
    int wide = peak_isa()[3] == '-';
    double best = 1e30, sink = 0.0;
    for (int r = 0; r < 3; r++) {
        double t0 = peak_now();
#pragma omp parallel num_threads(n_threads) reduction(+ : sink)
        sink += wide ? peak_chains_avx512(iters) : peak_chains_avx2(iters);
        double t = peak_now() - t0;
        best = t < best ? t : best;
    }
    if (sink == 42.0)
        puts("");
    return 2.0 * (wide ? 16 : 8) * 10 * (double)iters * n_threads / best * 1e-9;
}

#endif /* SCALAR_BENCH_PEAK_H */
