/*
 * wino_transforms.c — the F(4x4, 3x3) Winograd transforms (see wino.h), with the
 * interpolation points 0, +-1, +-2, infinity:
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = | 1/4     0     0  |   A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6 -1/6  -1/6  |         | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6  1/6  -1/6  |         | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |       | 1/24  1/12  1/6  |         | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |       | 1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |       | 0     0     1    |
 *
 * The tile transforms work on 16-lane channel vectors. They are written once as loops over
 * the 16 lanes and compiled three times (portable, AVX2+FMA, AVX-512) through target
 * attributes, so the compiler's vectorizer turns each lane loop into one zmm or two ymm ops.
 */
#include "wino.h"

#include <math.h>

#define L 16
#define INLINE static inline __attribute__((always_inline))

/* MADD(a, b, c) = a*b + c: fused where the target has FMA (the portable build must not call
 * the slow libm fmaf). */
#define MADD_FMA(a, b, c) fmaf(a, b, c)
#define MADD_PLAIN(a, b, c) ((a) * (b) + (c))

/* B^T x for 6 vectors x[i*xs]; result to r[i*rs]. */
#define BT6(MADD, r, rs, x, xs)                                                            \
    for (int l = 0; l < L; l++) {                                                          \
        float x0 = x[0 * (xs) + l], x1 = x[1 * (xs) + l], x2 = x[2 * (xs) + l];             \
        float x3 = x[3 * (xs) + l], x4 = x[4 * (xs) + l], x5 = x[5 * (xs) + l];             \
        float t0 = MADD(-4.0f, x2, x4), t1 = MADD(-4.0f, x1, x3);                           \
        float t2 = x4 - x2, t3 = 2.0f * (x3 - x1);                                          \
        r[0 * (rs) + l] = MADD(4.0f, x0, MADD(-5.0f, x2, x4));                              \
        r[1 * (rs) + l] = t0 + t1;                                                          \
        r[2 * (rs) + l] = t0 - t1;                                                          \
        r[3 * (rs) + l] = t2 + t3;                                                          \
        r[4 * (rs) + l] = t2 - t3;                                                          \
        r[5 * (rs) + l] = MADD(4.0f, x1, MADD(-5.0f, x3, x5));                              \
    }

/* A^T m for 6 vectors; 4 results. */
#define AT6(MADD, r, rs, m, ms)                                                            \
    for (int l = 0; l < L; l++) {                                                          \
        float m0 = m[0 * (ms) + l], m1 = m[1 * (ms) + l], m2 = m[2 * (ms) + l];             \
        float m3 = m[3 * (ms) + l], m4 = m[4 * (ms) + l], m5 = m[5 * (ms) + l];             \
        float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;                           \
        r[0 * (rs) + l] = m0 + a + c;                                                       \
        r[1 * (rs) + l] = MADD(2.0f, d, b);                                                 \
        r[2 * (rs) + l] = MADD(4.0f, c, a);                                                 \
        r[3 * (rs) + l] = MADD(8.0f, d, b) + m5;                                            \
    }

/* A y for 4 vectors; 6 results. */
#define A4(MADD, r, rs, y, ys)                                                             \
    for (int l = 0; l < L; l++) {                                                          \
        float y0 = y[0 * (ys) + l], y1 = y[1 * (ys) + l], y2 = y[2 * (ys) + l], y3 = y[3 * (ys) + l]; \
        float a = y0 + y2, b = y1 + y3, c = MADD(4.0f, y2, y0), d = MADD(8.0f, y3, 2.0f * y1); \
        r[0 * (rs) + l] = y0;                                                               \
        r[1 * (rs) + l] = a + b;                                                            \
        r[2 * (rs) + l] = a - b;                                                            \
        r[3 * (rs) + l] = c + d;                                                            \
        r[4 * (rs) + l] = c - d;                                                            \
        r[5 * (rs) + l] = y3;                                                               \
    }

#define DEFINE_OPS(SUFFIX, TGT, MADD)                                                      \
    static TGT void input_##SUFFIX(float *restrict V, long xs, const float *restrict src,   \
                                   long row) {                                             \
        float t[36 * L];                                                                   \
        for (int j = 0; j < 6; j++) { /* columns: t[i][j] = (B^T d)[i][j] */                \
            const float *x = src + j * L;                                                  \
            float *r = t + j * L;                                                          \
            BT6(MADD, r, 6 * L, x, row)                                                    \
        }                                                                                  \
        for (int i = 0; i < 6; i++) { /* rows: V[i][j] = (t B)[i][j] */                     \
            const float *x = t + i * 6 * L;                                                \
            float *r = V + i * 6 * xs;                                                     \
            BT6(MADD, r, xs, x, L)                                                         \
        }                                                                                  \
    }                                                                                      \
    static TGT void output_##SUFFIX(float *restrict dst, long row, const float *restrict M, \
                                    long xs, int nr, int nc, const float *restrict bias,   \
                                    bool accumulate) {                                     \
        float t[24 * L], y[16 * L];                                                        \
        for (int j = 0; j < 6; j++) { /* columns: t[i][j] = (A^T M)[i][j], i < 4 */         \
            const float *m = M + j * xs;                                                   \
            float *r = t + j * L;                                                          \
            AT6(MADD, r, 6 * L, m, 6 * xs)                                                 \
        }                                                                                  \
        for (int i = 0; i < 4; i++) { /* rows: y[i][j] = (t A)[i][j], j < 4 */              \
            const float *m = t + i * 6 * L;                                                \
            float *r = y + i * 4 * L;                                                      \
            AT6(MADD, r, L, m, L)                                                          \
        }                                                                                  \
        for (int i = 0; i < nr; i++)                                                       \
            for (int j = 0; j < nc; j++) {                                                 \
                float *o = dst + i * row + j * L;                                          \
                const float *v = y + (i * 4 + j) * L;                                      \
                if (accumulate)                                                            \
                    for (int l = 0; l < L; l++) o[l] += v[l];                              \
                else if (bias)                                                             \
                    for (int l = 0; l < L; l++) o[l] = v[l] + bias[l];                     \
                else                                                                       \
                    for (int l = 0; l < L; l++) o[l] = v[l];                               \
            }                                                                              \
    }                                                                                      \
    static TGT void grad_##SUFFIX(float *restrict D, long xs, const float *restrict src,    \
                                  long row) {                                              \
        float t[24 * L];                                                                   \
        for (int j = 0; j < 4; j++) { /* columns: t[i][j] = (A y)[i][j], i < 6 */           \
            const float *y = src + j * L;                                                  \
            float *r = t + j * L;                                                          \
            A4(MADD, r, 4 * L, y, row)                                                     \
        }                                                                                  \
        for (int i = 0; i < 6; i++) { /* rows: D[i][j] = (t A^T)[i][j] */                   \
            const float *y = t + i * 4 * L;                                                \
            float *r = D + i * 6 * xs;                                                     \
            A4(MADD, r, xs, y, L)                                                          \
        }                                                                                  \
    }                                                                                      \
    static const rn_wino_ops ops_##SUFFIX = {input_##SUFFIX, output_##SUFFIX, grad_##SUFFIX};

DEFINE_OPS(portable, , MADD_PLAIN)
#if defined(__x86_64__)
DEFINE_OPS(avx2, __attribute__((target("avx2,fma"))), MADD_FMA)
DEFINE_OPS(avx512, __attribute__((target("avx512f,fma,prefer-vector-width=512"))), MADD_FMA)
#endif

const rn_wino_ops *rn_wino_ops_get(rn_isa isa) {
#if defined(__x86_64__)
    if (isa == RN_ISA_AVX512) return &ops_avx512;
    if (isa == RN_ISA_AVX2) return &ops_avx2;
#endif
    return &ops_portable;
}

static const double G[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

void rn_wino_filter(float u[36], const float g[9]) {
    double t[6][3];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) u[i * 6 + j] = (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
}

void rn_wino_filter_grad(float g[9], const float du[36]) {
    double t[3][6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int k = 0; k < 6; k++) s += G[k][i] * du[k * 6 + j];
            t[i][j] = s;
        }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 6; k++) s += t[i][k] * G[k][j];
            g[i * 3 + j] += (float)s;
        }
}
