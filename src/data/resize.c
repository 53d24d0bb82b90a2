/*
 * resize.c — bilinear resizing of planar uint8 images for the data sets, bit for bit as PIL's
 * Image.resize(size, Image.BILINEAR) does it (and so as torchvision's Resize on PIL images):
 * a separable triangle filter sampled at pixel centers, widened by the shrink factor when
 * shrinking (so it averages instead of aliasing), its window cut at the borders and its
 * weights renormalized, then turned into 22-bit fixed point. A horizontal pass writes rounded
 * bytes, a vertical pass reads them; a pass is skipped when its size does not change.
 * The weights depend only on the sizes, so a whole set is resized with one table.
 * rn_data_image_planes brings a decoded image here: folder: data sets and predict share it.
 */
#include "data/resize.h"

#include <math.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static rn_status axis_init(rn_resize_axis *a, int in, int out) {
    double scale = (double)in / out;
    double fscale = scale > 1.0 ? scale : 1.0; /* the filter widens only when shrinking */
    double support = 1.0 * fscale;             /* the triangle filter's radius is 1 */
    double inv = 1.0 / fscale;
    int taps = (int)ceil(support) * 2 + 1;
    a->taps = taps;
    a->start = malloc((size_t)out * sizeof *a->start);
    a->count = malloc((size_t)out * sizeof *a->count);
    a->weight = calloc((size_t)out * taps, sizeof *a->weight);
    double *k = malloc((size_t)taps * sizeof *k);
    if (!a->start || !a->count || !a->weight || !k) {
        free(k);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate resize weights for %d -> %d", in, out);
    }
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in) hi = in;
        int n = RN_MIN(hi - lo, taps);
        double total = 0;
        for (int i = 0; i < n; i++) {
            double x = fabs((i + lo - center + 0.5) * inv);
            k[i] = x < 1.0 ? 1.0 - x : 0.0;
            total += k[i];
        }
        int32_t *w = a->weight + (size_t)o * taps;
        for (int i = 0; i < n; i++) {
            double v = total != 0.0 ? k[i] / total : k[i];
            w[i] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS)
                                   : 0.5 + v * (1 << PRECISION_BITS));
        }
        a->start[o] = lo;
        a->count[o] = n;
    }
    free(k);
    return RN_OK;
}

static void axis_free(rn_resize_axis *a) {
    free(a->start);
    free(a->count);
    free(a->weight);
    memset(a, 0, sizeof *a);
}

rn_status rn_resizer_init(rn_resizer *r, int sh, int sw, int dh, int dw) {
    memset(r, 0, sizeof *r);
    if (sh < 1 || sw < 1 || dh < 1 || dw < 1)
        return rn_fail(RN_ERR_BAD_ARG, "cannot resize %dx%d to %dx%d", sh, sw, dh, dw);
    r->sh = sh;
    r->sw = sw;
    r->dh = dh;
    r->dw = dw;
    rn_status s = axis_init(&r->x, sw, dw);
    if (!s) s = axis_init(&r->y, sh, dh);
    if (s) rn_resizer_free(r);
    return s;
}

void rn_resizer_free(rn_resizer *r) {
    axis_free(&r->x);
    axis_free(&r->y);
}

static inline uint8_t clip8(int32_t v) {
    if (v >= (1 << PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PRECISION_BITS);
}

void rn_resizer_run(const rn_resizer *r, uint8_t *dst, const uint8_t *src, int c, uint8_t *tmp) {
    int sh = r->sh, sw = r->sw, dh = r->dh, dw = r->dw;
    bool horizontal = sw != dw, vertical = sh != dh;
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *in = src + (size_t)ch * sh * sw;  // (sh, sw)
        uint8_t *out = dst + (size_t)ch * dh * dw;       // (dh, dw)
        if (!horizontal && !vertical) {
            memcpy(out, in, (size_t)sh * sw);
            continue;
        }
        /* Rows: mid (sh, dw), straight into out when there is no vertical pass. */
        const uint8_t *mid = in;
        if (horizontal) {
            uint8_t *m = vertical ? tmp : out;
            for (int y = 0; y < sh; y++)
                for (int x = 0; x < dw; x++) {
                    const int32_t *w = r->x.weight + (size_t)x * r->x.taps;
                    const uint8_t *p = in + (size_t)y * sw + r->x.start[x];
                    int32_t acc = 1 << (PRECISION_BITS - 1);
                    for (int k = 0; k < r->x.count[x]; k++) acc += p[k] * w[k];
                    m[(size_t)y * dw + x] = clip8(acc);
                }
            mid = m;
        }
        /* Columns: out (dh, dw). */
        if (vertical)
            for (int y = 0; y < dh; y++) {
                const int32_t *w = r->y.weight + (size_t)y * r->y.taps;
                const uint8_t *t = mid + (size_t)r->y.start[y] * dw;
                int n = r->y.count[y];
                for (int x = 0; x < dw; x++) {
                    int32_t acc = 1 << (PRECISION_BITS - 1);
                    for (int k = 0; k < n; k++) acc += t[(size_t)k * dw + x] * w[k];
                    out[(size_t)y * dw + x] = clip8(acc);
                }
            }
    }
}

rn_status rn_data_resize_planes(uint8_t *dst, int dh, int dw, const uint8_t *src, int sh, int sw,
                                int c) {
    rn_resizer r;
    rn_status s = rn_resizer_init(&r, sh, sw, dh, dw);
    if (s) return s;
    uint8_t *tmp = malloc((size_t)sh * dw);
    if (!tmp) {
        rn_resizer_free(&r);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate %zu bytes to resize an image",
                       (size_t)sh * dw);
    }
    rn_resizer_run(&r, dst, src, c, tmp);
    free(tmp);
    rn_resizer_free(&r);
    return RN_OK;
}

rn_status rn_data_resize_set(rn_dataset *d, int h, int w) {
    if (d->h == h && d->w == w) return RN_OK;
    size_t in_img = (size_t)d->c * d->h * d->w, out_img = (size_t)d->c * h * w;
    rn_resizer r;
    rn_status s = rn_resizer_init(&r, d->h, d->w, h, w);
    if (s) return s;
    uint8_t *out = rn_alloc((size_t)d->n * out_img);
    if (!out) {
        rn_resizer_free(&r);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate %zu bytes to resize %d images",
                       (size_t)d->n * out_img, d->n);
    }
    int failed = 0;
    #pragma omp parallel reduction(| : failed)
    {
        uint8_t *tmp = malloc((size_t)d->h * w);
        failed = !tmp;
        #pragma omp for schedule(static)
        for (int i = 0; i < d->n; i++)
            if (tmp) rn_resizer_run(&r, out + i * out_img, d->images + i * in_img, d->c, tmp);
        free(tmp);
    }
    rn_resizer_free(&r);
    if (failed) {
        rn_free(out);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate scratch to resize %dx%d images", d->h, d->w);
    }
    rn_free(d->images);
    d->images = out;
    d->h = h;
    d->w = w;
    return RN_OK;
}

rn_status rn_data_image_planes(uint8_t *dst, int h, int w, const rn_image *img) {
    int c = img->channels;
    size_t plane = (size_t)img->width * img->height;
    bool same = img->width == w && img->height == h;
    uint8_t *planar = same ? dst : malloc(plane * c);  // (c, img->height, img->width)
    if (!planar)
        return rn_fail(RN_ERR_NOMEM, "cannot allocate %zu bytes to resize an image", plane * c);
    for (int ch = 0; ch < c; ch++)  // (h, w, c) -> (c, h, w)
        for (size_t p = 0; p < plane; p++) planar[ch * plane + p] = img->pixels[p * c + ch];
    if (same) return RN_OK;
    rn_status s = rn_data_resize_planes(dst, h, w, planar, img->height, img->width, c);
    free(planar);
    return s;
}
