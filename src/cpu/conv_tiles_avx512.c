/*
 * conv_tiles_avx512.c — AVX-512 register tiles of the blocked convolution (see
 * conv_tiles.h for what a tile computes).
 *
 * Output tile: P pixels x KB channel blocks = P*KB zmm accumulators (P*KB + KB + 1 <= 32
 * registers, or GCC spills), KB zmm for the weights of one input channel, and one broadcast input value per
 * pixel: each input channel costs KB weight loads, P broadcasts and P*KB FMAs.
 * Weight-gradient tile: T taps x KC output channels = T*KC accumulators over 16 input
 * channels; each output pixel costs T vector loads, KC broadcasts and T*KC FMAs.
 *
 * The shapes are compile-time constants of one always-inline body, so GCC unrolls the pixel
 * and block loops completely and keeps every accumulator in a register.
 */
#include "conv_tiles.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))

INLINE TGT void otile1(const rn_otile_args *a, float *out, const float *in, const float *w,
                       const int P, const int KB, const int SI, const int SO, const int RT) {
    const long ir = a->in_row, orow = a->out_row;
    __m512 acc[28];
    if (a->accumulate) {
#pragma GCC unroll 4
        for (int r = 0; r < RT; r++)
#pragma GCC unroll 28
            for (int p = 0; p < P; p++)
#pragma GCC unroll 4
                for (int j = 0; j < KB; j++)
                    acc[(r * P + p) * KB + j] = _mm512_loadu_ps(out + r * orow + j * a->out_kb + p * SO * 16);
    } else {
#pragma GCC unroll 4
        for (int j = 0; j < KB; j++) {
            __m512 b = a->bias ? _mm512_loadu_ps(a->bias + j * 16) : _mm512_setzero_ps();
#pragma GCC unroll 28
            for (int p = 0; p < P * RT; p++) acc[p * KB + j] = b;
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
                __m512 wv[4];
#pragma GCC unroll 4
                for (int j = 0; j < KB; j++) wv[j] = _mm512_loadu_ps(wp + j * w_kb);
#pragma GCC unroll 4
                for (int r = 0; r < RT; r++)
#pragma GCC unroll 28
                    for (int p = 0; p < P; p++) {
                        __m512 x = _mm512_set1_ps(ip[r * ir + p * SI * 16]);
#pragma GCC unroll 4
                        for (int j = 0; j < KB; j++)
                            acc[(r * P + p) * KB + j] = _mm512_fmadd_ps(wv[j], x, acc[(r * P + p) * KB + j]);
                    }
                ip++;
                wp += 16;
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < RT; r++)
#pragma GCC unroll 28
        for (int p = 0; p < P; p++)
#pragma GCC unroll 4
            for (int j = 0; j < KB; j++)
                _mm512_storeu_ps(out + r * orow + j * a->out_kb + p * SO * 16, acc[(r * P + p) * KB + j]);
}

INLINE TGT void otile(const rn_otile_args *a, const int P, const int KB, const int SI,
                      const int SO, const int RT) {
    float *out = a->out;
    const float *in = a->in, *w = a->w;
    for (int b = 0; b < (a->nbatch > 1 ? a->nbatch : 1); b++) {
        otile1(a, out, in, w, P, KB, SI, SO, RT);
        out += a->out_bs;
        in += a->in_bs;
        w += a->w_bs;
    }
}

INLINE TGT void wtile(const rn_wtile_args *a, const int T, const int KC) {
    __m512 acc[24];
#pragma GCC unroll 24
    for (int i = 0; i < T * KC; i++) acc[i] = _mm512_setzero_ps();
    const long step = (long)a->si * 16;
    for (int n = 0; n < (a->nimg > 1 ? a->nimg : 1); n++)
    for (int ho = 0; ho < a->Ho; ho++) {
        const float *ip = a->in + n * a->in_img + ho * a->si * a->in_row;
        const float *dp = a->dout + n * a->dout_img + ho * a->dout_row;
        for (int wo = 0; wo < a->Wo; wo++) {
            __m512 x[3];
#pragma GCC unroll 3
            for (int t = 0; t < T; t++) x[t] = _mm512_loadu_ps(ip + t * 16);
#pragma GCC unroll 16
            for (int k = 0; k < KC; k++) {
                __m512 g = _mm512_set1_ps(dp[k]);
#pragma GCC unroll 3
                for (int t = 0; t < T; t++) acc[t * KC + k] = _mm512_fmadd_ps(x[t], g, acc[t * KC + k]);
            }
            ip += step;
            dp += 16;
        }
    }
#pragma GCC unroll 3
    for (int t = 0; t < T; t++)
#pragma GCC unroll 16
        for (int k = 0; k < KC; k++) {
            float *d = a->dw + t * a->dw_tap + k * 16;
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), acc[t * KC + k]));
        }
}

INLINE TGT void ktile(const rn_ktile_args *a, const int T, const int CC) {
    __m512 acc[27];
#pragma GCC unroll 27
    for (int i = 0; i < T * CC; i++) acc[i] = _mm512_setzero_ps();
    int off[9];
#pragma GCC unroll 9
    for (int t = 0; t < T; t++) off[t] = a->tap_in[t];
    const long step = (long)a->si * 16;
    for (int n = 0; n < (a->nimg > 1 ? a->nimg : 1); n++)
        for (int ho = 0; ho < a->Ho; ho++) {
            const float *ip = a->in + n * a->in_img + ho * a->si * a->in_row;
            const float *dp = a->dout + n * a->dout_img + ho * a->dout_row;
            for (int wo = 0; wo < a->Wo; wo++) {
                const __m512 g = _mm512_loadu_ps(dp);
#pragma GCC unroll 9
                for (int t = 0; t < T; t++)
#pragma GCC unroll 3
                    for (int c = 0; c < CC; c++)
                        acc[t * CC + c] = _mm512_fmadd_ps(g, _mm512_set1_ps(ip[off[t] + c]), acc[t * CC + c]);
                ip += step;
                dp += 16;
            }
        }
#pragma GCC unroll 9
    for (int t = 0; t < T; t++)
#pragma GCC unroll 3
        for (int c = 0; c < CC; c++) {
            float v[16];
            _mm512_storeu_ps(v, acc[t * CC + c]);
            for (int k = 0; k < 16; k++) a->dw[t * 256 + k * 16 + c] += v[k];
        }
}

/* The same for a 3x3 kernel: the taps are 3 rows x 3 pixels, addressed from 3 row pointers
 * with constant offsets (no table of 9 offsets to keep in registers). */
INLINE TGT void ktile33(const rn_ktile_args *a, const int CC) {
    __m512 acc[27];
#pragma GCC unroll 27
    for (int i = 0; i < 9 * CC; i++) acc[i] = _mm512_setzero_ps();
    const long step = (long)a->si * 16;
    for (int n = 0; n < (a->nimg > 1 ? a->nimg : 1); n++)
        for (int ho = 0; ho < a->Ho; ho++) {
            const float *ip = a->in + n * a->in_img + ho * a->si * a->in_row;
            const float *dp = a->dout + n * a->dout_img + ho * a->dout_row;
            const long row = a->in_row;
            for (int wo = 0; wo < a->Wo; wo++) {
                const __m512 g = _mm512_loadu_ps(dp);
#pragma GCC unroll 3
                for (int r = 0; r < 3; r++) {
                    const float *rp = ip + r * row;
#pragma GCC unroll 3
                    for (int q = 0; q < 3; q++)
#pragma GCC unroll 3
                        for (int c = 0; c < CC; c++)
                            acc[(r * 3 + q) * CC + c] = _mm512_fmadd_ps(g, _mm512_set1_ps(rp[q * 16 + c]), acc[(r * 3 + q) * CC + c]);
                }
                ip += step;
                dp += 16;
            }
        }
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++)
#pragma GCC unroll 3
        for (int c = 0; c < CC; c++) {
            float v[16];
            _mm512_storeu_ps(v, acc[t * CC + c]);
            for (int k = 0; k < 16; k++) a->dw[t * 256 + k * 16 + c] += v[k];
        }
}
static TGT void ktile33_1(const rn_ktile_args *a) { ktile33(a, 1); }
static TGT void ktile33_2(const rn_ktile_args *a) { ktile33(a, 2); }
static TGT void ktile33_3(const rn_ktile_args *a) { ktile33(a, 3); }

rn_ktile_fn rn_ktile33_avx512(int CC) {
    return CC == 1 ? ktile33_1 : CC == 2 ? ktile33_2 : CC == 3 ? ktile33_3 : NULL;
}

#define KT(T, CC) static TGT void ktile_##T##_##CC(const rn_ktile_args *a) { ktile(a, T, CC); }
#define KT3(T) KT(T, 1) KT(T, 2) KT(T, 3)
KT3(1) KT3(2) KT3(3) KT3(4) KT3(5) KT3(6) KT3(7) KT3(8) KT3(9)

rn_ktile_fn rn_ktile_avx512(int T, int CC) {
    static const rn_ktile_fn fns[9][3] = {
        {ktile_1_1, ktile_1_2, ktile_1_3}, {ktile_2_1, ktile_2_2, ktile_2_3},
        {ktile_3_1, ktile_3_2, ktile_3_3}, {ktile_4_1, ktile_4_2, ktile_4_3},
        {ktile_5_1, ktile_5_2, ktile_5_3}, {ktile_6_1, ktile_6_2, ktile_6_3},
        {ktile_7_1, ktile_7_2, ktile_7_3}, {ktile_8_1, ktile_8_2, ktile_8_3},
        {ktile_9_1, ktile_9_2, ktile_9_3},
    };
    return T >= 1 && T <= 9 && CC >= 1 && CC <= 3 ? fns[T - 1][CC - 1] : NULL;
}

/* One function per tile shape and stride pair. */
#define OT(P, KB, SI, SO)                                                                  \
    static TGT void otile_##P##_##KB##_##SI##SO(const rn_otile_args *a) { otile(a, P, KB, SI, SO, 1); }
#define OT3(P, KB) OT(P, KB, 1, 1) OT(P, KB, 2, 1) OT(P, KB, 1, 2)
#define OTILE_SHAPES(X)                                                                    \
    X(1, 1) X(2, 1) X(3, 1) X(4, 1) X(5, 1) X(6, 1) X(7, 1) X(8, 1) X(12, 1) X(14, 1)      \
    X(16, 1) X(24, 1) X(28, 1)                                                             \
    X(1, 2) X(2, 2) X(3, 2) X(4, 2) X(5, 2) X(6, 2) X(7, 2) X(8, 2) X(12, 2) X(14, 2)      \
    X(1, 4) X(2, 4) X(3, 4) X(4, 4) X(5, 4) X(6, 4)
OTILE_SHAPES(OT3)

rn_otile_fn rn_otile_avx512(int P, int KB, int SI, int SO) {
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

/* Multi-row tiles: P pixels x RT rows x KB blocks. */
#define OTR(P, KB, RT, SI, SO)                                                             \
    static TGT void otr_##P##_##KB##_##RT##_##SI##SO(const rn_otile_args *a) { otile(a, P, KB, SI, SO, RT); }
#define OTR3(P, KB, RT) OTR(P, KB, RT, 1, 1) OTR(P, KB, RT, 2, 1) OTR(P, KB, RT, 1, 2)
#define OTR_SHAPES(X)                                                                      \
    X(1, 1, 2) X(1, 1, 3) X(1, 1, 4) X(2, 1, 2) X(2, 1, 3) X(2, 1, 4) X(3, 1, 2) X(3, 1, 3)  \
    X(3, 1, 4) X(4, 1, 2) X(4, 1, 3) X(4, 1, 4) X(5, 1, 2) X(5, 1, 3) X(5, 1, 4) X(6, 1, 2)  \
    X(6, 1, 3) X(6, 1, 4) X(7, 1, 2) X(7, 1, 3) X(8, 1, 2) X(8, 1, 3)                      \
    X(1, 2, 2) X(1, 2, 3) X(1, 2, 4) X(2, 2, 2) X(2, 2, 3) X(2, 2, 4) X(3, 2, 2) X(3, 2, 3)  \
    X(3, 2, 4) X(4, 2, 2) X(4, 2, 3) X(5, 2, 2) X(6, 2, 2)
OTR_SHAPES(OTR3)

rn_otile_fn rn_otile_rows_avx512(int P, int KB, int RT, int SI, int SO) {
#define PICK(P_, KB_, RT_)                                                                 \
    if (P == P_ && KB == KB_ && RT == RT_) {                                               \
        if (SI == 1 && SO == 1) return otr_##P_##_##KB_##_##RT_##_11;                      \
        if (SI == 2 && SO == 1) return otr_##P_##_##KB_##_##RT_##_21;                      \
        if (SI == 1 && SO == 2) return otr_##P_##_##KB_##_##RT_##_12;                      \
        return NULL;                                                                       \
    }
    OTR_SHAPES(PICK)
#undef PICK
    return NULL;
}

#define WT(T, KC) static TGT void wtile_##T##_##KC(const rn_wtile_args *a) { wtile(a, T, KC); }
#define WTILE_SHAPES(X) X(1, 8) X(2, 8) X(3, 8) X(1, 16)
WTILE_SHAPES(WT)

rn_wtile_fn rn_wtile_avx512(int T, int KC) {
#define PICK(T_, KC_) if (T == T_ && KC == KC_) return wtile_##T_##_##KC_;
    WTILE_SHAPES(PICK)
#undef PICK
    return NULL;
}

#endif
