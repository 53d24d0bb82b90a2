/*
 * peak.c — measures this machine's fp32 FMA peak: a short loop of independent fused
 * multiply-adds on the widest vectors the CPU has, on every thread at once. `resnet bench`
 * reports achieved GFLOP/s as a share of it.
 */
#include "internal.h"
#include "isa.h"

#include <omp.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* 12 independent accumulator chains, in named variables so they live in registers, hide the
 * FMA latency (4 cycles on 2 ports). */
#define RN_FMA12(F)                                                                         \
    a0 = F(a0, b, c), a1 = F(a1, b, c), a2 = F(a2, b, c), a3 = F(a3, b, c), a4 = F(a4, b, c), \
    a5 = F(a5, b, c), a6 = F(a6, b, c), a7 = F(a7, b, c), a8 = F(a8, b, c), a9 = F(a9, b, c), \
    a10 = F(a10, b, c), a11 = F(a11, b, c)

__attribute__((target("avx512f"))) static float fma_loop_avx512(long iters) {
    __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
           a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
           a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8),
           a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    for (long k = 0; k < iters; k++) RN_FMA12(_mm512_fmadd_ps);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_loop_avx2(long iters) {
    __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
           a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
           a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
           a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    for (long k = 0; k < iters; k++) RN_FMA12(_mm256_fmadd_ps);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}
#endif

static float fma_loop_portable(long iters) {
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 8; i++) a[i] = a[i] * 0.999999f + 1e-7f;
    return a[0] + a[7];
}

const char *rn_fma_peak_isa(void) {
#if defined(__x86_64__)
    return rn_cpu_isa_name(rn_cpu_isa_detect());
#else
    return rn_cpu_isa_name(RN_ISA_PORTABLE);
#endif
}

double rn_fma_peak_gflops(int nthreads, const char **isa) {
    int lanes = 8; /* floats updated per loop iteration */
    float (*loop)(long) = fma_loop_portable;
    *isa = rn_fma_peak_isa();
#if defined(__x86_64__)
    if (rn_cpu_isa_detect() == RN_ISA_AVX512) {
        loop = fma_loop_avx512;
        lanes = 16 * 12;
    } else if (rn_cpu_isa_detect() == RN_ISA_AVX2) {
        loop = fma_loop_avx2;
        lanes = 8 * 12;
    }
#endif
    const long iters = 20000000; /* ~0.1 s per repetition on AVX-512 */
    volatile float sink = 0;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(nthreads)
        {
            float r = loop(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = omp_get_wtime() - t0;
        double flops = 2.0 * lanes * (double)iters * nthreads;
        if (flops / dt > best) best = flops / dt;
    }
    (void)sink;
    return best / 1e9;
}
