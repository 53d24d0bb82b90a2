/*
 * draws.c — the shuffles of draws.h (an epoch's data order and the validation split's) and the
 * RandomResizedCrop box of the streamed training images.
 */
#include "draws.h"

#include <math.h>

void rn_draw_epoch_order(int *perm, int n, uint64_t seed, int epoch, bool shuffle) {
    for (int i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    uint64_t r[4];
    rn_xoshiro_seed(r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_xoshiro_below(r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void rn_draw_split_order(int *perm, int n, uint64_t seed) {
    uint64_t state = seed;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_splitmix_below(&state, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Uniform double in [0, 1) from the top 53 bits. */
static double uniform01(uint64_t r[4]) { return (double)(rn_xoshiro_next(r) >> 11) * 0x1p-53; }

rn_crop_box rn_draw_resized_crop(uint64_t seed, int epoch, int64_t index, int width, int height,
                                 double scale_lo, double scale_hi, double ratio_lo,
                                 double ratio_hi) {
    uint64_t r[4];
    rn_xoshiro_seed(r, seed ^ (0xA0761D6478BD642Full * (uint64_t)(epoch + 1)) ^
                           (0xE7037ED1A0B428DBull * (uint64_t)(index + 1)));
    rn_crop_box b = {0, 0, height, width, 0};
    double area = (double)width * height;
    double log_lo = log(ratio_lo), log_hi = log(ratio_hi);
    bool found = false;
    for (int t = 0; t < 10 && !found; t++) {
        double target = area * (scale_lo + (scale_hi - scale_lo) * uniform01(r));
        double aspect = exp(log_lo + (log_hi - log_lo) * uniform01(r));
        int w = (int)nearbyint(sqrt(target * aspect)); /* ties to even, as Python's round */
        int h = (int)nearbyint(sqrt(target / aspect));
        if (0 < w && w <= width && 0 < h && h <= height) {
            b.top = (int)rn_xoshiro_below(r, (uint64_t)(height - h + 1));
            b.left = (int)rn_xoshiro_below(r, (uint64_t)(width - w + 1));
            b.h = h;
            b.w = w;
            found = true;
        }
    }
    if (!found) { /* the center crop, its aspect ratio clamped to [ratio_lo, ratio_hi] */
        double in_ratio = (double)width / height;
        int w = width, h = height;
        if (in_ratio < ratio_lo) h = (int)nearbyint(w / ratio_lo);
        else if (in_ratio > ratio_hi) w = (int)nearbyint(h * ratio_hi);
        b.h = h;
        b.w = w;
        b.top = (height - h) / 2;
        b.left = (width - w) / 2;
    }
    b.flip = (int)rn_xoshiro_below(r, 2);
    return b;
}
