/*
 * pool.c — max pooling (the ImageNet stem's 3x3/2) and global average pooling (the head).
 */
#include "ops/ops.h"

#include <math.h>

int rn_maxpool_window_argmax(const float *x, const rn_pool_desc *d, int oy, int ox) {
    int best = -1;
    float max = -INFINITY;
    for (int r = 0; r < d->k; r++) {
        int iy = oy * d->stride - d->pad + r;
        if (iy < 0 || iy >= d->H) continue;
        for (int s = 0; s < d->k; s++) {
            int ix = ox * d->stride - d->pad + s;
            if (ix < 0 || ix >= d->W) continue;
            float v = x[iy * d->W + ix];
            if (best < 0 || v > max || isnan(v)) {
                best = iy * d->W + ix;
                max = v;
                if (isnan(v)) return best;
            }
        }
    }
    return best;
}

/* out (N,C,Ho,Wo) from in (N,C,H,W). */
void rn_maxpool_forward(float *out, const float *in, const rn_pool_desc *d) {
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *x = in + nc * d->H * d->W;
        float *y = out + nc * d->Ho * d->Wo;
        for (int oy = 0; oy < d->Ho; oy++)
            for (int ox = 0; ox < d->Wo; ox++) {
                int i = rn_maxpool_window_argmax(x, d, oy, ox);
                y[oy * d->Wo + ox] = i < 0 ? -INFINITY : x[i];
            }
    }
}

/* din (N,C,H,W) += dout (N,C,Ho,Wo) routed to each window's maximum, recomputed from in. */
void rn_maxpool_backward(float *din, const float *dout, const float *in, const rn_pool_desc *d) {
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *x = in + nc * d->H * d->W;
        const float *g = dout + nc * d->Ho * d->Wo;
        float *dx = din + nc * d->H * d->W;
        for (int oy = 0; oy < d->Ho; oy++)
            for (int ox = 0; ox < d->Wo; ox++) {
                int i = rn_maxpool_window_argmax(x, d, oy, ox);
                if (i >= 0) dx[i] += g[oy * d->Wo + ox];
            }
    }
}

/* out (N,C) = mean over HW of in (N,C,HW). */
void rn_avgpool_forward(float *out, const float *in, int N, int C, int HW) {
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const float *x = in + nc * HW;
        double s = 0;
        for (int i = 0; i < HW; i++) s += x[i];
        out[nc] = (float)(s / HW);
    }
}

/* din (N,C,HW) += dout (N,C) / HW. */
void rn_avgpool_backward(float *din, const float *dout, int N, int C, int HW) {
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const float g = dout[nc] / (float)HW;
        float *dx = din + nc * HW;
        for (int i = 0; i < HW; i++) dx[i] += g;
    }
}
