/*
 * conv_tiles_portable.c — the blocked convolution's tiles in plain C (see conv_tiles.h for
 * what a tile computes). Built on every architecture; the loops over the 16 channels of a
 * block are left to the compiler's vectorizer.
 */
#include "conv_tiles.h"

#define PMAX 8

static void otile1(const rn_otile_args *a, float *out, const float *in, const float *w, int P,
                   int SI, int SO) {
    float acc[PMAX][16];
    for (int p = 0; p < P; p++)
        for (int k = 0; k < 16; k++)
            acc[p][k] = a->accumulate ? out[p * SO * 16 + k] : a->bias ? a->bias[k] : 0.0f;
    for (int cb = 0; cb < a->ncb; cb++) {
        const int cn = cb == a->ncb - 1 ? a->cn_last : 16;
        for (int t = 0; t < a->ntaps; t++) {
            const float *ip = in + cb * a->in_cb + a->tap_in[t];
            const float *wp = w + cb * a->w_cb + a->tap_w[t];
            for (int c = 0; c < cn; c++)
                for (int p = 0; p < P; p++) {
                    const float x = ip[p * SI * 16 + c];
                    for (int k = 0; k < 16; k++) acc[p][k] += wp[c * 16 + k] * x;
                }
        }
    }
    for (int p = 0; p < P; p++)
        for (int k = 0; k < 16; k++) out[p * SO * 16 + k] = acc[p][k];
}

static void otile(const rn_otile_args *a, int P, int SI, int SO) {
    for (int b = 0; b < (a->nbatch > 1 ? a->nbatch : 1); b++)
        otile1(a, a->out + b * a->out_bs, a->in + b * a->in_bs, a->w + b * a->w_bs, P, SI, SO);
}

#define OT(P, SI, SO)                                                                      \
    static void otile_##P##_##SI##SO(const rn_otile_args *a) { otile(a, P, SI, SO); }
#define OT3(P) OT(P, 1, 1) OT(P, 2, 1) OT(P, 1, 2)
OT3(1) OT3(2) OT3(4) OT3(8)

rn_otile_fn rn_otile_portable(int P, int KB, int SI, int SO) {
    if (KB != 1) return NULL;
#define PICK(P_)                                                                           \
    if (P == P_) {                                                                         \
        if (SI == 1 && SO == 1) return otile_##P_##_11;                                    \
        if (SI == 2 && SO == 1) return otile_##P_##_21;                                    \
        if (SI == 1 && SO == 2) return otile_##P_##_12;                                    \
    }
    PICK(1) PICK(2) PICK(4) PICK(8)
#undef PICK
    return NULL;
}

static void wtile(const rn_wtile_args *a, int T, int KC) {
    float acc[3][16][16] = {{{0}}};
    for (int n = 0; n < (a->nimg > 1 ? a->nimg : 1); n++)
    for (int ho = 0; ho < a->Ho; ho++)
        for (int wo = 0; wo < a->Wo; wo++) {
            const float *ip = a->in + n * a->in_img + (long)ho * a->si * a->in_row + (long)wo * a->si * 16;
            const float *dp = a->dout + n * a->dout_img + ho * a->dout_row + (long)wo * 16;
            for (int t = 0; t < T; t++)
                for (int k = 0; k < KC; k++)
                    for (int c = 0; c < 16; c++) acc[t][k][c] += dp[k] * ip[t * 16 + c];
        }
    for (int t = 0; t < T; t++)
        for (int k = 0; k < KC; k++)
            for (int c = 0; c < 16; c++) a->dw[t * a->dw_tap + k * 16 + c] += acc[t][k][c];
}

static void wtile_1(const rn_wtile_args *a) { wtile(a, 1, 8); }
static void wtile_2(const rn_wtile_args *a) { wtile(a, 2, 8); }
static void wtile_3(const rn_wtile_args *a) { wtile(a, 3, 8); }

rn_wtile_fn rn_wtile_portable(int T, int KC) {
    if (KC != 8) return NULL;
    return T == 1 ? wtile_1 : T == 2 ? wtile_2 : T == 3 ? wtile_3 : NULL;
}
