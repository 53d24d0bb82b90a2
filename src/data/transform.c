/*
 * transform.c — from a decoded RGB image to a normalized model input, as torchvision does on
 * PIL images: crop a region, resize it with PIL's antialiased BILINEAR filter (the weights of
 * resize.c; a horizontal pass rounded to uint8, then a vertical one), optionally mirror, then
 * ToTensor + Normalize through a lookup table. Training uses a RandomResizedCrop region resized
 * to S x S; evaluation resizes the whole image and keeps the center S x S window, computing
 * only that window (every output pixel depends only on its own filter window, so this equals
 * resizing everything and cropping afterwards).
 */
#include "data/decode.h"
#include "data/resize.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2) /* as resize.c */

void rn_normalizer_init(rn_normalizer *n, const float mean[3], const float std[3]) {
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) n->lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
}

void rn_transform_scratch_free(rn_transform_scratch *t) {
    free(t->rows);
    free(t->acc);
    memset(t, 0, sizeof *t);
}

static inline uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

void rn_eval_geometry(int ih, int iw, int resize, int crop, int *rh, int *rw, int *oy, int *ox) {
    int shorter = iw <= ih ? iw : ih, longer = iw <= ih ? ih : iw;
    int other = (int)((double)resize * longer / shorter);
    *rw = iw <= ih ? resize : other;
    *rh = iw <= ih ? other : resize;
    /* Python's int(round(d / 2.0)): halves go to the even neighbour. */
    int dy = *rh - crop, dx = *rw - crop;
    *oy = (int)nearbyint(dy / 2.0);
    *ox = (int)nearbyint(dx / 2.0);
}

rn_status rn_transform_region(float *out, const uint8_t *rgb, int ih, int iw, rn_crop_box box,
                              int rh, int rw, int oy, int ox, int oh, int ow,
                              const rn_normalizer *norm, rn_transform_scratch *t) {
    if (box.top < 0 || box.left < 0 || box.h < 1 || box.w < 1 || box.top + box.h > ih ||
        box.left + box.w > iw || oy < 0 || ox < 0 || oy + oh > rh || ox + ow > rw)
        return rn_fail(RN_ERR_BAD_ARG, "crop %dx%d at (%d, %d) of a %dx%d image resized to %dx%d, "
                       "window %dx%d at (%d, %d): out of bounds", box.h, box.w, box.top, box.left,
                       ih, iw, rh, rw, oh, ow, oy, ox);
    rn_resizer r;
    rn_status s = rn_resizer_init(&r, box.h, box.w, rh, rw);
    if (s) return s;
    /* The input rows the window's output rows read. */
    int y_lo = r.y.start[oy], y_hi = 0;
    for (int y = oy; y < oy + oh; y++) y_hi = RN_MAX(y_hi, r.y.start[y] + r.y.count[y]);
    int rows = y_hi - y_lo;
    size_t need = (size_t)3 * rows * ow;
    if (need > t->cap || ow > t->acc_cap) {
        uint8_t *p = need > t->cap ? realloc(t->rows, need) : t->rows;
        if (p) t->rows = p;
        int32_t *q = ow > t->acc_cap ? realloc(t->acc, (size_t)ow * sizeof *q) : t->acc;
        if (q) t->acc = q;
        if (!p || !q) {
            rn_resizer_free(&r);
            return rn_fail(RN_ERR_NOMEM, "cannot allocate %zu bytes of resize scratch", need);
        }
        t->cap = RN_MAX(t->cap, need);
        t->acc_cap = RN_MAX(t->acc_cap, ow);
    }
    /* Horizontal pass: mid (3, rows, ow) from rgb's rows y_lo.., columns of the region. */
    uint8_t *mid = t->rows;
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = rgb + ((size_t)(box.top + y_lo + y) * iw + box.left) * 3;
        for (int x = 0; x < ow; x++) {
            const int32_t *w = r.x.weight + (size_t)(ox + x) * r.x.taps;
            const uint8_t *p = src + (size_t)r.x.start[ox + x] * 3;
            int n = r.x.count[ox + x];
            int32_t a0 = 1 << (PRECISION_BITS - 1), a1 = a0, a2 = a0;
            for (int k = 0; k < n; k++) {
                a0 += p[3 * k] * w[k];
                a1 += p[3 * k + 1] * w[k];
                a2 += p[3 * k + 2] * w[k];
            }
            mid[((size_t)0 * rows + y) * ow + x] = clip8(a0);
            mid[((size_t)1 * rows + y) * ow + x] = clip8(a1);
            mid[((size_t)2 * rows + y) * ow + x] = clip8(a2);
        }
    }
    /* Vertical pass, flip and normalization: out (3, oh, ow), a row of sums at a time (rows
     * of mid are contiguous, so the inner loop vectorizes). */
    int32_t *acc = t->acc;
    for (int c = 0; c < 3; c++) {
        const float *lut = norm->lut[c];
        for (int y = 0; y < oh; y++) {
            const int32_t *w = r.y.weight + (size_t)(oy + y) * r.y.taps;
            const uint8_t *col = mid + ((size_t)c * rows + (r.y.start[oy + y] - y_lo)) * ow;
            int n = r.y.count[oy + y];
            for (int x = 0; x < ow; x++) acc[x] = 1 << (PRECISION_BITS - 1);
            for (int k = 0; k < n; k++) {
                const uint8_t *row = col + (size_t)k * ow;
                int32_t wk = w[k];
                for (int x = 0; x < ow; x++) acc[x] += row[x] * wk;
            }
            float *o = out + ((size_t)c * oh + y) * ow;
            if (box.flip)
                for (int x = 0; x < ow; x++) o[ow - 1 - x] = lut[clip8(acc[x])];
            else
                for (int x = 0; x < ow; x++) o[x] = lut[clip8(acc[x])];
        }
    }
    rn_resizer_free(&r);
    return RN_OK;
}
