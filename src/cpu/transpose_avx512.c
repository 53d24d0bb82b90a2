/*
 * transpose_avx512.c — moving 16 channels between the NCHW layout (a row of pixels per
 * channel) and NCHW16c (16 channels per pixel) with 16x16 in-register transposes; what the
 * blocked kernels use at an NCHW boundary.
 */
#include "conv_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f")))

/* r[i] = column i of the 16x16 matrix whose rows were r[0..15]. 64 shuffles. */
static inline __attribute__((always_inline)) TGT void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4i+j]: lanes hold rows 4i..4i+3 of columns j, j+4, j+8, j+12 */
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int j = 0; j < 4; j++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
        r[j] = _mm512_shuffle_f32x4(v0, v2, 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(v0, v2, 0xdd);
        r[j + 4] = _mm512_shuffle_f32x4(v1, v3, 0x88);
        r[j + 12] = _mm512_shuffle_f32x4(v1, v3, 0xdd);
    }
}

/* dst[p*16 + c] = src[c*cstride + p] for p < n; lanes c >= cn are written as zero. */
TGT void rn_rows_to_blocked_avx512(float *dst, const float *src, long cstride, int cn, int n) {
    for (int p0 = 0; p0 < n; p0 += 16) {
        const int m = n - p0 < 16 ? n - p0 : 16;
        const __mmask16 k = (__mmask16)((1u << m) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int c = 0; c < 16; c++)
            r[c] = c < cn ? _mm512_maskz_loadu_ps(k, src + c * cstride + p0) : _mm512_setzero_ps();
        transpose16(r);
        for (int p = 0; p < m; p++) _mm512_storeu_ps(dst + (size_t)(p0 + p) * 16, r[p]);
    }
}

/* dst[c*cstride + p] (+)= src[p*16 + c] for c < cn, p < n. */
TGT void rn_blocked_to_rows_avx512(float *dst, long cstride, const float *src, int cn, int n,
                                   bool accumulate) {
    for (int p0 = 0; p0 < n; p0 += 16) {
        const int m = n - p0 < 16 ? n - p0 : 16;
        const __mmask16 k = (__mmask16)((1u << m) - 1);
        __m512 r[16];
#pragma GCC unroll 16
        for (int p = 0; p < 16; p++)
            r[p] = p < m ? _mm512_loadu_ps(src + (size_t)(p0 + p) * 16) : _mm512_setzero_ps();
        transpose16(r);
        for (int c = 0; c < cn; c++) {
            float *d = dst + c * cstride + p0;
            __m512 v = accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(k, d), r[c]) : r[c];
            _mm512_mask_storeu_ps(d, k, v);
        }
    }
}
#endif
