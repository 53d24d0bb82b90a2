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
 * The tile transforms (wino_tile.inc) are written once against a 16-lane vector interface
 * and included here once per instruction-set level: AVX-512 (one zmm), AVX2+FMA (two ymm)
 * and portable C (a struct of 16 floats).
 */
#include "wino.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- portable ---------------------------------------------------------------------------- */
typedef struct {
    float v[16];
} vf_portable;
INLINE vf_portable p_ld(const float *p) { vf_portable r; for (int l = 0; l < 16; l++) r.v[l] = p[l]; return r; }
INLINE void p_st(float *p, vf_portable a) { for (int l = 0; l < 16; l++) p[l] = a.v[l]; }
INLINE vf_portable p_add(vf_portable a, vf_portable b) { for (int l = 0; l < 16; l++) a.v[l] += b.v[l]; return a; }
INLINE vf_portable p_sub(vf_portable a, vf_portable b) { for (int l = 0; l < 16; l++) a.v[l] -= b.v[l]; return a; }
INLINE vf_portable p_fma(vf_portable a, vf_portable b, vf_portable c) {
    for (int l = 0; l < 16; l++) c.v[l] += a.v[l] * b.v[l];
    return c;
}
INLINE vf_portable p_set1(float x) { vf_portable r; for (int l = 0; l < 16; l++) r.v[l] = x; return r; }
#define VF vf_portable
#define VLD p_ld
#define VST p_st
#define VADD p_add
#define VSUB p_sub
#define VFMA p_fma
#define VSET1 p_set1
#define TGT
#define NAME(f) f##_portable
#include "wino_tile.inc"
#undef VF
#undef VLD
#undef VST
#undef VADD
#undef VSUB
#undef VFMA
#undef VSET1
#undef TGT
#undef NAME

#if defined(__x86_64__)
#include <immintrin.h>

/* ---- AVX2 + FMA: a block is two ymm -------------------------------------------------------- */
#define TGT __attribute__((target("avx2,fma")))
typedef struct {
    __m256 lo, hi;
} vf_avx2;
INLINE TGT vf_avx2 a2_ld(const float *p) { return (vf_avx2){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
INLINE TGT void a2_st(float *p, vf_avx2 a) { _mm256_storeu_ps(p, a.lo); _mm256_storeu_ps(p + 8, a.hi); }
INLINE TGT vf_avx2 a2_add(vf_avx2 a, vf_avx2 b) { return (vf_avx2){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
INLINE TGT vf_avx2 a2_sub(vf_avx2 a, vf_avx2 b) { return (vf_avx2){_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
INLINE TGT vf_avx2 a2_fma(vf_avx2 a, vf_avx2 b, vf_avx2 c) {
    return (vf_avx2){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
INLINE TGT vf_avx2 a2_set1(float x) { return (vf_avx2){_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
#define VF vf_avx2
#define VLD a2_ld
#define VST a2_st
#define VADD a2_add
#define VSUB a2_sub
#define VFMA a2_fma
#define VSET1 a2_set1
#define NAME(f) f##_avx2
#include "wino_tile.inc"
#undef VF
#undef VLD
#undef VST
#undef VADD
#undef VSUB
#undef VFMA
#undef VSET1
#undef TGT
#undef NAME

/* ---- AVX-512: a block is one zmm ---------------------------------------------------------- */
#define TGT __attribute__((target("avx512f,fma")))
#define VF __m512
#define VLD _mm512_loadu_ps
#define VST _mm512_storeu_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VFMA _mm512_fmadd_ps
#define VSET1 _mm512_set1_ps
#define NAME(f) f##_avx512
#include "wino_tile.inc"
#undef VF
#undef VLD
#undef VST
#undef VADD
#undef VSUB
#undef VFMA
#undef VSET1
#undef TGT
#undef NAME
#endif

static const rn_wino_ops ops_portable = {input_portable, output_portable, grad_portable};
#if defined(__x86_64__)
static const rn_wino_ops ops_avx2 = {input_avx2, output_avx2, grad_avx2};
static const rn_wino_ops ops_avx512 = {input_avx512, output_avx512, grad_avx512};
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
