/*
 * conv2d.c — 2-D convolution (cross-correlation, as PyTorch's Conv2d) by im2col + rn_sgemm.
 *
 * Each image is one GEMM: out (K, Ho*Wo) = w (K, C*R*S) x col (C*R*S, Ho*Wo). A 1x1, stride-1,
 * unpadded convolution needs no im2col: the image itself is the column matrix. Images are split
 * statically over `nthreads` slots; slot t owns a column buffer and partial sums for dw and dbias
 * in the caller's scratch, and the partials are added into dw/dbias in slot order, so results are
 * bit-identical from run to run for a fixed nthreads.
 */
#include "ops/ops.h"

#include <string.h>

/* Let GCC vectorize the copy and scatter loops below at -O2 too (its -O2 cost model only takes
 * loops that need no remainder code). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("vect-cost-model=dynamic")
#endif

void rn_conv_desc_finish(rn_conv_desc *d) {
    d->Ho = (d->H + 2 * d->pad - d->R) / d->stride + 1;
    d->Wo = (d->W + 2 * d->pad - d->S) / d->stride + 1;
}

static bool is_pointwise(const rn_conv_desc *d) {
    return d->R == 1 && d->S == 1 && d->stride == 1 && d->pad == 0;
}

/* Floats of one slot's scratch: the column buffer, then dw and dbias partial sums. */
static size_t col_floats(const rn_conv_desc *d) {
    return is_pointwise(d) ? 0 : (size_t)d->C * d->R * d->S * d->Ho * d->Wo;
}
static size_t slot_floats(const rn_conv_desc *d) {
    return col_floats(d) + (size_t)d->K * d->C * d->R * d->S + (size_t)d->K;
}

size_t rn_conv2d_scratch_floats(const rn_conv_desc *d, int nthreads) {
    return slot_floats(d) * (size_t)(nthreads < 1 ? 1 : nthreads);
}

/* First output index o in [0, n) with o*stride + off >= 0, and one past the last with
 * o*stride + off < size: the outputs whose input tap lies inside the image. */
static void tap_range(int off, int stride, int size, int n, int *lo, int *hi) {
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = size - off <= 0 ? 0 : (size - off + stride - 1) / stride;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
    if (*hi < *lo) *hi = *lo;
}

/* col (C*R*S, Ho*Wo) from one image im (C, H, W); taps outside the image are 0. */
static void im2col(float *restrict col, const float *restrict im, const rn_conv_desc *d) {
    const int Ho = d->Ho, Wo = d->Wo, st = d->stride;
    for (int c = 0; c < d->C; c++)
        for (int r = 0; r < d->R; r++)
            for (int s = 0; s < d->S; s++) {
                float *row = col + ((size_t)(c * d->R + r) * d->S + s) * Ho * Wo;
                int ylo, yhi, xlo, xhi;
                tap_range(r - d->pad, st, d->H, Ho, &ylo, &yhi);
                tap_range(s - d->pad, st, d->W, Wo, &xlo, &xhi);
                for (int oy = 0; oy < Ho; oy++) {
                    float *o = row + (size_t)oy * Wo;
                    if (oy < ylo || oy >= yhi) {
                        memset(o, 0, sizeof(float) * Wo);
                        continue;
                    }
                    const float *src = im + ((size_t)c * d->H + oy * st + r - d->pad) * d->W;
                    for (int ox = 0; ox < xlo; ox++) o[ox] = 0.0f;
                    if (st == 1)
                        memcpy(o + xlo, src + xlo + s - d->pad, sizeof(float) * (xhi - xlo));
                    else
                        for (int ox = xlo; ox < xhi; ox++) o[ox] = src[ox * st + s - d->pad];
                    for (int ox = xhi; ox < Wo; ox++) o[ox] = 0.0f;
                }
            }
}

/* im (C, H, W) += col (C*R*S, Ho*Wo) scattered back to the taps it came from. */
static void col2im_add(float *restrict im, const float *restrict col, const rn_conv_desc *d) {
    const int Ho = d->Ho, Wo = d->Wo, st = d->stride;
    for (int c = 0; c < d->C; c++)
        for (int r = 0; r < d->R; r++)
            for (int s = 0; s < d->S; s++) {
                const float *row = col + ((size_t)(c * d->R + r) * d->S + s) * Ho * Wo;
                int ylo, yhi, xlo, xhi;
                tap_range(r - d->pad, st, d->H, Ho, &ylo, &yhi);
                tap_range(s - d->pad, st, d->W, Wo, &xlo, &xhi);
                for (int oy = ylo; oy < yhi; oy++) {
                    const float *o = row + (size_t)oy * Wo;
                    float *dst = im + ((size_t)c * d->H + oy * st + r - d->pad) * d->W;
                    if (st == 1) {
                        float *restrict row_in = dst + s - d->pad;
                        for (int ox = xlo; ox < xhi; ox++) row_in[ox] += o[ox];
                    } else
                        for (int ox = xlo; ox < xhi; ox++) dst[ox * st + s - d->pad] += o[ox];
                }
            }
}

void rn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                       const rn_conv_desc *d, float *scratch, int nthreads) {
    const int T = nthreads < 1 ? 1 : nthreads;
    const int P = d->Ho * d->Wo, CRS = d->C * d->R * d->S;
    const size_t in_sz = (size_t)d->C * d->H * d->W, out_sz = (size_t)d->K * P;
#pragma omp parallel for num_threads(T) schedule(static)
    for (int t = 0; t < T; t++) {
        float *col = scratch + slot_floats(d) * t;
        int n0 = (int)((long)d->N * t / T), n1 = (int)((long)d->N * (t + 1) / T);
        for (int n = n0; n < n1; n++) {
            const float *x = in + in_sz * n; // (C, H, W)
            float *y = out + out_sz * n;     // (K, Ho*Wo)
            if (!is_pointwise(d)) {
                im2col(col, x, d);
                x = col;
            }
            rn_sgemm(false, false, d->K, P, CRS, 1.0f, w, CRS, x, P, 0.0f, y, P);
            if (bias)
                for (int k = 0; k < d->K; k++)
                    for (int p = 0; p < P; p++) y[(size_t)k * P + p] += bias[k];
        }
    }
}

void rn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, const rn_conv_desc *d, float *scratch, int nthreads) {
    const int T = nthreads < 1 ? 1 : nthreads;
    const int P = d->Ho * d->Wo, CRS = d->C * d->R * d->S;
    const size_t in_sz = (size_t)d->C * d->H * d->W, out_sz = (size_t)d->K * P;
    const size_t wn = (size_t)d->K * CRS;
#pragma omp parallel for num_threads(T) schedule(static)
    for (int t = 0; t < T; t++) {
        float *col = scratch + slot_floats(d) * t;
        float *pdw = col + col_floats(d); // (K, C*R*S) this slot's share of dw
        float *pdb = pdw + wn;            // (K) this slot's share of dbias
        if (dw) memset(pdw, 0, sizeof(float) * wn);
        if (dbias) memset(pdb, 0, sizeof(float) * d->K);
        int n0 = (int)((long)d->N * t / T), n1 = (int)((long)d->N * (t + 1) / T);
        for (int n = n0; n < n1; n++) {
            const float *g = dout + out_sz * n; // (K, Ho*Wo)
            if (dbias)
                for (int k = 0; k < d->K; k++) {
                    double s = 0;
                    for (int p = 0; p < P; p++) s += g[(size_t)k * P + p];
                    pdb[k] += (float)s;
                }
            if (is_pointwise(d)) {
                if (dw) rn_sgemm(false, true, d->K, CRS, P, 1.0f, g, P, in + in_sz * n, P, 1.0f,
                                 pdw, CRS);
                if (din) rn_sgemm(true, false, CRS, P, d->K, 1.0f, w, CRS, g, P, 1.0f,
                                  din + in_sz * n, P);
                continue;
            }
            if (dw) {
                im2col(col, in + in_sz * n, d);
                rn_sgemm(false, true, d->K, CRS, P, 1.0f, g, P, col, P, 1.0f, pdw, CRS);
            }
            if (din) {
                rn_sgemm(true, false, CRS, P, d->K, 1.0f, w, CRS, g, P, 0.0f, col, P);
                col2im_add(din + in_sz * n, col, d);
            }
        }
    }
    /* Reduce the slots' partial sums in slot order (deterministic for a fixed nthreads). */
    if (dw) {
#pragma omp parallel for num_threads(T) schedule(static)
        for (size_t i = 0; i < wn; i++) {
            float s = 0.0f;
            for (int t = 0; t < T; t++) s += scratch[slot_floats(d) * t + col_floats(d) + i];
            dw[i] += s;
        }
    }
    if (dbias)
        for (int k = 0; k < d->K; k++) {
            float s = 0.0f;
            for (int t = 0; t < T; t++) s += scratch[slot_floats(d) * t + col_floats(d) + wn + k];
            dbias[k] += s;
        }
}
