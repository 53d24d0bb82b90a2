/*
 * gemm.c — single-precision matrix multiply, the work horse of conv2d and linear.
 *
 * rn_sgemm computes C = alpha * op(A) x op(B) + beta * C on row-major matrices, blocked for the
 * caches in the usual way (Goto/BLIS): a KC x NC block of op(B) and an MC x KC block of op(A)
 * are packed into micro-panels, and a register-tiled micro-kernel computes one MR x NR tile of C
 * at a time. The micro-kernel is plain C on GCC vector types; it is compiled once per
 * instruction set (AVX-512, AVX2+FMA, baseline) and picked at run time, so one binary runs on
 * any x86-64 and uses the widest units it finds. rn_sgemm_naive is the plain triple loop kept
 * as the reference for rn_sgemm's tests.
 *
 * Packing buffers are static thread-local arrays (about 640 KB per thread), so rn_sgemm
 * allocates nothing and may run on several threads at once.
 */
#include "core/internal.h"
#include "core/isa.h"
#include "ops/gemm.h"
#include "ops/ops.h"

#include <stddef.h>
#include <string.h>

/* acc += a * b in the micro-kernel must become one fused multiply-add (ISO C mode turns GCC's
 * contraction off by default), and the packing loops may be vectorized at -O2 too. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=fast", "vect-cost-model=dynamic")
#endif

/* Element (i, j) of op(X), X row-major with leading dimension ld. */
#define OP(X, trans, ld, i, j) \
    ((trans) ? (X)[(size_t)(j) * (ld) + (i)] : (X)[(size_t)(i) * (ld) + (j)])

void rn_sgemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int p = 0; p < K; p++)
                acc += (double)OP(A, trans_a, lda, i, p) * OP(B, trans_b, ldb, p, j);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

/* ---- micro-kernels -------------------------------------------------------------------------- */

#define KC 256     /* depth of a packed block: one A micro-panel + one B micro-panel fit in L1 */
#define MC_MAX 128 /* rows of op(A) per packed block (rounded down to a multiple of MR): L2 */
#define NC 512     /* columns of op(B) per packed block */
#define MR_MAX 8   /* the largest micro-tile of the kernels below */
#define NR_MAX 32

typedef float vf16 __attribute__((vector_size(64))); /* 16 floats: 1 zmm, 2 ymm or 4 xmm */

static _Thread_local float packed_a[MC_MAX * KC] __attribute__((aligned(64)));
static _Thread_local float packed_b[KC * NC] __attribute__((aligned(64)));

/* c (MR, NR) (leading dimension ldc) = alpha * a-panel x b-panel + beta * c, where the a-panel
 * holds kc columns of MR values and the b-panel kc rows of NR values, ldb apart. beta == 0 reads
 * no c. */
typedef void (*micro_kernel_fn)(int kc, const float *a, const float *b, int ldb, float *c,
                                int ldc, float alpha, float beta);

/* The micro-kernel for mr rows and nv 16-float vectors of columns (NR = 16*nv). Inlined into a
 * wrapper per instruction set, where mr and nv are constants and acc lives in registers. */
static inline __attribute__((always_inline)) void micro_kernel(int mr, int nv, int kc,
                                                               const float *a, const float *b,
                                                               int ldb, float *c, int ldc,
                                                               float alpha, float beta) {
    vf16 acc[MR_MAX][NR_MAX / 16];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) acc[i][v] = (vf16){0};
    for (int p = 0; p < kc; p++) {
        vf16 bv[NR_MAX / 16];
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) memcpy(&bv[v], b + (size_t)p * ldb + v * 16, sizeof(vf16));
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const float ai = a[p * mr + i];
#pragma GCC unroll 2
            for (int v = 0; v < nv; v++) acc[i][v] += ai * bv[v];
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 2
        for (int v = 0; v < nv; v++) {
            float *cp = c + (size_t)i * ldc + v * 16;
            vf16 r = alpha * acc[i][v];
            if (beta != 0.0f) {
                vf16 old;
                memcpy(&old, cp, sizeof old);
                r += beta * old;
            }
            memcpy(cp, &r, sizeof r);
        }
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512vl,fma"))) static void
kernel_avx512(int kc, const float *a, const float *b, int ldb, float *c, int ldc, float alpha,
              float beta) {
    micro_kernel(8, 2, kc, a, b, ldb, c, ldc, alpha, beta); /* 8 x 32: 16 of 32 zmm accumulate */
}
__attribute__((target("avx2,fma"))) static void
kernel_avx2(int kc, const float *a, const float *b, int ldb, float *c, int ldc, float alpha,
            float beta) {
    micro_kernel(6, 1, kc, a, b, ldb, c, ldc, alpha, beta); /* 6 x 16: 12 of 16 ymm accumulate */
}
#endif
static void kernel_generic(int kc, const float *a, const float *b, int ldb, float *c, int ldc,
                           float alpha, float beta) {
    micro_kernel(4, 1, kc, a, b, ldb, c, ldc, alpha, beta);
}

typedef struct {
    const char *name;
    int mr, nr;
    micro_kernel_fn kernel;
} gemm_arch;

/* Every micro-kernel built, widest first; `generic` runs anywhere. */
static const gemm_arch gemm_archs[] = {
#if defined(__x86_64__)
    {"avx512", 8, 32, kernel_avx512},
    {"avx2", 6, 16, kernel_avx2},
#endif
    {"generic", 4, 16, kernel_generic},
};

const char *const rn_sgemm_kernels[] = {
#if defined(__x86_64__)
    "avx512", "avx2",
#endif
    "generic", NULL};

/* Whether a micro-kernel may run: the CPU has its units and RN_ISA does not exclude them. */
static bool arch_supported(const gemm_arch *g) {
#if defined(__x86_64__)
    if (g->kernel == kernel_avx512) return rn_cpu_isa_detect() >= RN_ISA_AVX512;
    if (g->kernel == kernel_avx2) return rn_cpu_isa_detect() >= RN_ISA_AVX2;
#endif
    return g->kernel == kernel_generic;
}

/* ---- packing -------------------------------------------------------------------------------- */

/* Packs rows [i0, i0+mc) x columns [p0, p0+kc) of op(A) into panels of mr rows: panel r is
 * dst[r*kc*mr + p*mr + i]. Rows past mc are zero. */
static void pack_a(float *restrict dst, const float *restrict A, int lda, bool trans, int i0, int p0, int mc,
                   int kc, int mr) {
    for (int r = 0; r < mc; r += mr, dst += (size_t)kc * mr) {
        const int rows = RN_MIN(mr, mc - r);
        if (trans) {
            for (int p = 0; p < kc; p++) {
                const float *src = A + (size_t)(p0 + p) * lda + i0 + r;
                for (int i = 0; i < rows; i++) dst[p * mr + i] = src[i];
                for (int i = rows; i < mr; i++) dst[p * mr + i] = 0.0f;
            }
        } else {
            for (int i = 0; i < rows; i++) {
                const float *src = A + (size_t)(i0 + r + i) * lda + p0;
                for (int p = 0; p < kc; p++) dst[p * mr + i] = src[p];
            }
            for (int i = rows; i < mr; i++)
                for (int p = 0; p < kc; p++) dst[p * mr + i] = 0.0f;
        }
    }
}

/* Packs rows [p0, p0+kc) x columns [j0, j0+nc) of op(B) into panels of nr columns: panel q is
 * dst[q*kc*nr + p*nr + j]. Columns past nc are zero. */
static void pack_b(float *restrict dst, const float *restrict B, int ldb, bool trans, int p0, int j0, int nc,
                   int kc, int nr) {
    for (int q = 0; q < nc; q += nr, dst += (size_t)kc * nr) {
        const int cols = RN_MIN(nr, nc - q);
        if (trans) {
            for (int j = 0; j < cols; j++) {
                const float *src = B + (size_t)(j0 + q + j) * ldb + p0;
                for (int p = 0; p < kc; p++) dst[p * nr + j] = src[p];
            }
            for (int j = cols; j < nr; j++)
                for (int p = 0; p < kc; p++) dst[p * nr + j] = 0.0f;
        } else {
            const float *src = B + (size_t)p0 * ldb + j0 + q;
            if (cols == 32 && nr == 32) /* constant sizes: whole-vector copies */
                for (int p = 0; p < kc; p++) memcpy(dst + p * 32, src + (size_t)p * ldb, 128);
            else if (cols == 16 && nr == 16)
                for (int p = 0; p < kc; p++) memcpy(dst + p * 16, src + (size_t)p * ldb, 64);
            else
                for (int p = 0; p < kc; p++) {
                    for (int j = 0; j < cols; j++) dst[p * nr + j] = src[(size_t)p * ldb + j];
                    for (int j = cols; j < nr; j++) dst[p * nr + j] = 0.0f;
                }
        }
    }
}

/* ---- driver --------------------------------------------------------------------------------- */

/* C (M,N) = beta * C, not reading C when beta == 0. */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* The blocked product on one micro-kernel. */
static void sgemm_blocked(const gemm_arch *g, bool trans_a, bool trans_b, int M, int N, int K,
                          float alpha, const float *A, int lda, const float *B, int ldb,
                          float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const int mr = g->mr, nr = g->nr, mc_max = MC_MAX / mr * mr;
    /* A non-transposed B is read in place, panel by panel, when few row panels of A reuse each
     * B panel (one A block, and either few rows or B rows under 1 KB apart); otherwise packing
     * pays for itself, since panels of rows 1 KB or more apart conflict in the L1 cache. Edge
     * panels narrower than NR are always packed. */
    const bool direct_b = !trans_b && M <= mc_max && (M <= 4 * mr || ldb < 256);
    for (int jc = 0; jc < N; jc += NC) {
        const int nc = RN_MIN(NC, N - jc);
        const int nfull = direct_b ? nc / nr * nr : 0; /* panels read in place */
        for (int pc = 0; pc < K; pc += KC) {
            const int kc = RN_MIN(KC, K - pc);
            const float beta_k = pc == 0 ? beta : 1.0f; /* later blocks add to the first */
            if (nfull < nc)
                pack_b(packed_b + (size_t)nfull * kc, B, ldb, trans_b, pc, jc + nfull,
                       nc - nfull, kc, nr);
            for (int ic = 0; ic < M; ic += mc_max) {
                const int mc = RN_MIN(mc_max, M - ic);
                pack_a(packed_a, A, lda, trans_a, ic, pc, mc, kc, mr);
                for (int jr = 0; jr < nc; jr += nr) {
                    const int cols = RN_MIN(nr, nc - jr);
                    const float *b = packed_b + (size_t)jr * kc;
                    int ldbp = nr;
                    if (jr < nfull) b = B + (size_t)pc * ldb + jc + jr, ldbp = ldb;
                    for (int ir = 0; ir < mc; ir += mr) {
                        const int rows = RN_MIN(mr, mc - ir);
                        const float *a = packed_a + (size_t)ir * kc;
                        float *c = C + (size_t)(ic + ir) * ldc + jc + jr;
                        if (rows == mr && cols == nr) {
                            g->kernel(kc, a, b, ldbp, c, ldc, alpha, beta_k);
                            continue;
                        }
                        /* An edge tile: compute the full tile aside, keep the part inside C. */
                        float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
                        g->kernel(kc, a, b, ldbp, tile, nr, alpha, 0.0f);
                        for (int i = 0; i < rows; i++)
                            for (int j = 0; j < cols; j++) {
                                float *cij = c + (size_t)i * ldc + j;
                                const float t = tile[i * nr + j];
                                *cij = beta_k == 0.0f ? t : t + beta_k * *cij;
                            }
                    }
                }
            }
        }
    }
}

void rn_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    const gemm_arch *g = &gemm_archs[0];
    while (!arch_supported(g)) g++; /* the last, generic, always is */
    sgemm_blocked(g, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

bool rn_sgemm_with(const char *kernel, bool trans_a, bool trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc) {
    for (size_t i = 0; i < sizeof gemm_archs / sizeof gemm_archs[0]; i++)
        if (strcmp(gemm_archs[i].name, kernel) == 0) {
            if (!arch_supported(&gemm_archs[i])) return false;
            sgemm_blocked(&gemm_archs[i], trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb,
                          beta, C, ldc);
            return true;
        }
    return false;
}
