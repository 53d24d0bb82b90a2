/*
 * conv_tiles_avx2.c — AVX2+FMA register tiles of the blocked convolution (see conv_tiles.h
 * for what a tile computes). A 16-channel block is two ymm registers, and there are 16 ymm
 * registers, so tiles are small: P pixels x KB blocks x 2 halves <= 12 accumulators.
 */
#include "conv_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

INLINE TGT void otile1(const rn_otile_args *a, float *out, const float *in, const float *w,
                       const int P, const int KB, const int SI, const int SO) {
    __m256 acc[12];
    if (a->accumulate) {
#pragma GCC unroll 12
        for (int p = 0; p < P; p++)
#pragma GCC unroll 2
            for (int j = 0; j < KB; j++)
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++)
                    acc[(p * KB + j) * 2 + h] = _mm256_loadu_ps(out + j * a->out_kb + p * SO * 16 + h * 8);
    } else {
#pragma GCC unroll 2
        for (int j = 0; j < KB; j++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256 b = a->bias ? _mm256_loadu_ps(a->bias + j * 16 + h * 8) : _mm256_setzero_ps();
#pragma GCC unroll 12
                for (int p = 0; p < P; p++) acc[(p * KB + j) * 2 + h] = b;
            }
    }
    const long w_kb = a->w_kb;
    for (int cb = 0; cb < a->ncb; cb++) {
        const int cn = cb == a->ncb - 1 ? a->cn_last : 16;
        const float *inb = in + cb * a->in_cb;
        const float *wb = w + cb * a->w_cb;
        for (int t = 0; t < a->ntaps; t++) {
            const float *ip = inb + a->tap_in[t];
            const float *wp = wb + a->tap_w[t];
            for (int c = 0; c < cn; c++) {
                __m256 wv[4];
#pragma GCC unroll 2
                for (int j = 0; j < KB; j++) {
                    wv[2 * j] = _mm256_loadu_ps(wp + j * w_kb);
                    wv[2 * j + 1] = _mm256_loadu_ps(wp + j * w_kb + 8);
                }
#pragma GCC unroll 12
                for (int p = 0; p < P; p++) {
                    __m256 x = _mm256_broadcast_ss(ip + p * SI * 16);
#pragma GCC unroll 4
                    for (int i = 0; i < 2 * KB; i++)
                        acc[p * KB * 2 + i] = _mm256_fmadd_ps(wv[i], x, acc[p * KB * 2 + i]);
                }
                ip++;
                wp += 16;
            }
        }
    }
#pragma GCC unroll 12
    for (int p = 0; p < P; p++)
#pragma GCC unroll 2
        for (int j = 0; j < KB; j++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                _mm256_storeu_ps(out + j * a->out_kb + p * SO * 16 + h * 8, acc[(p * KB + j) * 2 + h]);
}

INLINE TGT void otile(const rn_otile_args *a, const int P, const int KB, const int SI,
                      const int SO) {
    float *out = a->out;
    const float *in = a->in, *w = a->w;
    for (int b = 0; b < (a->nbatch > 1 ? a->nbatch : 1); b++) {
        otile1(a, out, in, w, P, KB, SI, SO);
        out += a->out_bs;
        in += a->in_bs;
        w += a->w_bs;
    }
}

INLINE TGT void wtile(const rn_wtile_args *a, const int T, const int KC) {
    __m256 acc[12];
#pragma GCC unroll 12
    for (int i = 0; i < 2 * T * KC; i++) acc[i] = _mm256_setzero_ps();
    const long step = (long)a->si * 16;
    for (int n = 0; n < (a->nimg > 1 ? a->nimg : 1); n++)
    for (int ho = 0; ho < a->Ho; ho++) {
        const float *ip = a->in + n * a->in_img + ho * a->si * a->in_row;
        const float *dp = a->dout + n * a->dout_img + ho * a->dout_row;
        for (int wo = 0; wo < a->Wo; wo++) {
            __m256 x[6];
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) {
                x[2 * t] = _mm256_loadu_ps(ip + t * 16);
                x[2 * t + 1] = _mm256_loadu_ps(ip + t * 16 + 8);
            }
#pragma GCC unroll 2
            for (int k = 0; k < KC; k++) {
                __m256 g = _mm256_broadcast_ss(dp + k);
#pragma GCC unroll 6
                for (int i = 0; i < 2 * T; i++)
                    acc[k * 2 * T + i] = _mm256_fmadd_ps(x[i], g, acc[k * 2 * T + i]);
            }
            ip += step;
            dp += 16;
        }
    }
#pragma GCC unroll 3
    for (int t = 0; t < T; t++)
#pragma GCC unroll 2
        for (int k = 0; k < KC; k++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                float *d = a->dw + t * a->dw_tap + k * 16 + h * 8;
                _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), acc[k * 2 * T + 2 * t + h]));
            }
}

#define OT(P, KB, SI, SO)                                                                  \
    static TGT void otile_##P##_##KB##_##SI##SO(const rn_otile_args *a) { otile(a, P, KB, SI, SO); }
#define OT3(P, KB) OT(P, KB, 1, 1) OT(P, KB, 2, 1) OT(P, KB, 1, 2)
#define OTILE_SHAPES(X) X(1, 1) X(2, 1) X(3, 1) X(4, 1) X(5, 1) X(6, 1) X(1, 2) X(2, 2) X(3, 2)
OTILE_SHAPES(OT3)

rn_otile_fn rn_otile_avx2(int P, int KB, int SI, int SO) {
#define PICK(P_, KB_)                                                                      \
    if (P == P_ && KB == KB_) {                                                            \
        if (SI == 1 && SO == 1) return otile_##P_##_##KB_##_11;                            \
        if (SI == 2 && SO == 1) return otile_##P_##_##KB_##_21;                            \
        if (SI == 1 && SO == 2) return otile_##P_##_##KB_##_12;                            \
        return NULL;                                                                       \
    }
    OTILE_SHAPES(PICK)
#undef PICK
    return NULL;
}

#define WT(T, KC) static TGT void wtile_##T##_##KC(const rn_wtile_args *a) { wtile(a, T, KC); }
#define WTILE_SHAPES(X) X(1, 2) X(2, 2) X(3, 2)
WTILE_SHAPES(WT)

rn_wtile_fn rn_wtile_avx2(int T, int KC) {
#define PICK(T_, KC_) if (T == T_ && KC == KC_) return wtile_##T_##_##KC_;
    WTILE_SHAPES(PICK)
#undef PICK
    return NULL;
}

#endif
