/*
 * bench_gemm.c — times rn_sgemm on the GEMM shapes of ResNet-20's convolutions (one thread) and
 * the reference conv2d forward/backward on its layers for a batch of 128. GEMM rates use this
 * thread's CPU time and are printed next to the FMA peak measured in the same run; conv rates
 * are per core-second of process CPU time (wall times are printed too).
 *
 *   make && cc -O2 -fopenmp -Iinclude -Isrc bench/bench_gemm.c build/libresnet.a -lm \
 *       -o build/bench_gemm && build/bench_gemm
 */
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Wall time for the threaded conv runs; this thread's CPU time for the one-thread GEMMs, so
 * that time lost to other processes on a shared machine is not counted. */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static double process_cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* The fp32 FMA peak of one core measured now: 16 independent chains of vector FMAs. */
typedef float vf16 __attribute__((vector_size(64)));
#if defined(__x86_64__)
__attribute__((target("avx512f,fma")))
#endif
__attribute__((noinline, optimize("fp-contract=fast"))) static double fma_peak(void) {
    vf16 acc[16], x = {0}, y = {0};
    x += 0.9999f, y += 0.0001f;
    for (int i = 0; i < 16; i++) acc[i] = (vf16){0} + (float)i;
    const long n = 50000000;
    double t0 = cpu_now();
    for (long k = 0; k < n; k++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = acc[i] * x + y;
    double t = cpu_now() - t0;
    volatile float sink = 0;
    for (int i = 0; i < 16; i++) sink += acc[i][0];
    return n * 16 * 16 * 2 / t * 1e-9;
}

static float *rnd(size_t n) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    return x;
}

static void bench_gemm(bool ta, bool tb, int M, int N, int K) {
    float *A = rnd((size_t)M * K), *B = rnd((size_t)K * N), *C = rnd((size_t)M * N);
    double flop = 2.0 * M * N * K, best = 1e30;
    int reps = (int)(2e9 / flop) + 1;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = cpu_now();
        for (int r = 0; r < reps; r++)
            rn_sgemm(ta, tb, M, N, K, 1.0f, A, ta ? M : K, B, tb ? K : N, 0.0f, C, N);
        double t = (cpu_now() - t0) / reps;
        if (t < best) best = t;
    }
    printf("sgemm %c%c M=%4d N=%5d K=%4d: %6.1f GFLOP/s\n", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N,
           K, flop / best * 1e-9);
    free(A), free(B), free(C);
}

static void bench_conv(int N, int C, int H, int K, int R, int stride, int nthreads) {
    rn_conv_desc d = {.N = N, .C = C, .H = H, .W = H, .K = K, .R = R, .S = R, .stride = stride,
                      .pad = R / 2};
    rn_conv_desc_finish(&d);
    size_t nin = (size_t)N * C * H * H, nw = (size_t)K * C * R * R,
           nout = (size_t)N * K * d.Ho * d.Wo;
    float *in = rnd(nin), *w = rnd(nw), *out = rnd(nout), *din = rnd(nin), *dw = rnd(nw);
    float *scratch = malloc(sizeof(float) * rn_conv2d_scratch_floats(&d, nthreads));
    double flop = 2.0 * nout * C * R * R, tf = 1e30, tb = 1e30, cf = 1e30, cb = 1e30;
    for (int trial = 0; trial < 3; trial++) {
        double t0 = now(), c0 = process_cpu_now();
        rn_conv2d_forward(out, in, w, NULL, &d, scratch, nthreads);
        double t1 = now(), c1 = process_cpu_now();
        rn_conv2d_backward(din, dw, NULL, out, in, w, &d, scratch, nthreads);
        double t2 = now(), c2 = process_cpu_now();
        if (t1 - t0 < tf) tf = t1 - t0;
        if (t2 - t1 < tb) tb = t2 - t1;
        if (c1 - c0 < cf) cf = c1 - c0;
        if (c2 - c1 < cb) cb = c2 - c1;
    }
    printf("conv N=%d %2dx%2dx%2d -> K=%2d %dx%d/%d, %d thr: fwd %6.2f ms (%6.2f cpu-ms, %5.1f "
           "GFLOP/s per core) bwd %6.2f ms (%6.2f cpu-ms, %5.1f GFLOP/s per core)\n",
           N, C, H, H, K, R, R, stride, nthreads, tf * 1e3, cf * 1e3, flop / cf * 1e-9,
           tb * 1e3, cb * 1e3, 2 * flop / cb * 1e-9);
    free(in), free(w), free(out), free(din), free(dw), free(scratch);
}

int main(void) {
    printf("fp32 FMA peak of one core (AVX-512), measured now: %.1f GFLOP/s\n", fma_peak());
    /* conv as GEMM: forward (K, CRS) x (CRS, HW); dW: (K, HW) x (HW, CRS)^T; dcol: W^T x dout */
    bench_gemm(false, false, 64, 1024, 576);
    bench_gemm(false, false, 16, 1024, 144);
    bench_gemm(false, false, 32, 256, 288);
    bench_gemm(false, false, 64, 64, 576);
    bench_gemm(false, true, 64, 576, 1024);
    bench_gemm(true, false, 576, 1024, 64);
    bench_gemm(false, false, 512, 512, 512);
    bench_gemm(true, true, 256, 256, 256);
    for (int t = 1; t <= 2; t++) {
        bench_conv(128, 16, 32, 16, 3, 1, t);
        bench_conv(128, 32, 16, 32, 3, 1, t);
        bench_conv(128, 64, 8, 64, 3, 1, t);
        bench_conv(128, 16, 32, 32, 3, 2, t);
    }
    return 0;
}
