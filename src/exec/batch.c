/*
 * batch.c — turning uint8 images into a normalized float batch, with the paper's augmentation
 * (pad 4, random crop, random horizontal flip) drawn per image from a seeded generator.
 */
#include "core/draws.h"
#include "exec/step.h"

#include <string.h>

void rn_batch_fill(float *x, int *labels, const rn_dataset *d, const int *idx, int n,
                   const rn_norm *norm, bool augment, uint64_t seed, int64_t step,
                   int nthreads) {
    rn_batch_fill_slice(x, labels, d, idx, n, 0, norm, augment, seed, step, nthreads);
}

void rn_batch_fill_slice(float *x, int *labels, const rn_dataset *d, const int *idx, int n,
                         int first, const rn_norm *norm, bool augment, uint64_t seed,
                         int64_t step, int nthreads) {
    const int C = d->c, H = d->h, W = d->w;
    const size_t per = (size_t)C * H * W;
#pragma omp parallel for num_threads(nthreads) schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = d->images + (size_t)idx[i] * per;
        float *dst = x + (size_t)i * per;
        int dy = 0, dx = 0;
        int flip = 0;
        if (augment) rn_draw_crop_flip(seed, step, first + i, 4, &dy, &dx, &flip);
        for (int c = 0; c < C; c++) {
            const float mean = norm->mean[c], std = norm->std[c];
            const float zero = (0.0f - mean) / std; /* a padded pixel */
            for (int y = 0; y < H; y++) {
                int sy = y + dy;
                float *row = dst + ((size_t)c * H + y) * W;
                if (sy < 0 || sy >= H) {
                    for (int xx = 0; xx < W; xx++) row[xx] = zero;
                    continue;
                }
                const uint8_t *srow = src + ((size_t)c * H + sy) * W;
                for (int xx = 0; xx < W; xx++) {
                    int sx = (flip ? W - 1 - xx : xx) + dx;
                    row[xx] = (sx < 0 || sx >= W) ? zero : ((float)srow[sx] / 255.0f - mean) / std;
                }
            }
        }
        labels[i] = d->labels[idx[i]];
    }
}
