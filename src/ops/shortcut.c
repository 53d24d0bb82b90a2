/*
 * shortcut.c — the parameter-free "option A" shortcut of He et al.'s CIFAR ResNets: the input
 * subsampled by `stride` and zero-padded in channels, (K-C)/2 zero channels before the copy
 * and the rest after (PyTorch: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))).
 */
#include "ops/ops.h"

#include <string.h>

/* out (N,K,Ho,Wo) from in (N,C,H,W). */
void rn_shortcut_a_forward(float *out, const float *in, const rn_shortcut_a_desc *d) {
    const int p = (d->K - d->C) / 2, plane = d->Ho * d->Wo;
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++) {
            float *y = out + ((size_t)n * d->K + k) * plane;
            int c = k - p;
            if (c < 0 || c >= d->C) {
                memset(y, 0, sizeof(float) * plane);
                continue;
            }
            const float *x = in + ((size_t)n * d->C + c) * d->H * d->W;
            for (int oy = 0; oy < d->Ho; oy++)
                for (int ox = 0; ox < d->Wo; ox++)
                    y[oy * d->Wo + ox] = x[(size_t)oy * d->stride * d->W + ox * d->stride];
        }
}

/* din (N,C,H,W) += dout (N,K,Ho,Wo) at the positions the forward pass copied. */
void rn_shortcut_a_backward(float *din, const float *dout, const rn_shortcut_a_desc *d) {
    const int p = (d->K - d->C) / 2, plane = d->Ho * d->Wo;
    for (int n = 0; n < d->N; n++)
        for (int c = 0; c < d->C; c++) {
            const float *g = dout + ((size_t)n * d->K + c + p) * plane;
            float *dx = din + ((size_t)n * d->C + c) * d->H * d->W;
            for (int oy = 0; oy < d->Ho; oy++)
                for (int ox = 0; ox < d->Wo; ox++)
                    dx[(size_t)oy * d->stride * d->W + ox * d->stride] += g[oy * d->Wo + ox];
        }
}
