/*
 * draws.h — every random draw of the data pipeline, in one place: the augmentation of a training
 * image, the order of an epoch and the train/validation split. The host batcher (src/train),
 * the data split (src/data) and the GPU (src/cuda/train.cu) all call these, so each device
 * sees the same images in the same order with the same crops and flips for a given seed.
 */
#ifndef RN_DRAWS_H
#define RN_DRAWS_H

#include "xoshiro.h"

#include <stdbool.h>

/* The paper's augmentation of image i (0-based position in the batch) of training step `step`:
 * a crop offset dy, dx in [-pad, pad] each (uniform) of the image padded by `pad` zeros, and a
 * horizontal flip with probability 1/2, from xoshiro256** seeded by (seed, step, i). */
static inline RN_HOST_DEVICE void rn_draw_crop_flip(uint64_t seed, int64_t step, int i, int pad,
                                                    int *dy, int *dx, int *flip) {
    uint64_t r[4];
    rn_xoshiro_seed(r, seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(step + 1)) ^
                           (0xD1B54A32D192ED03ull * (uint64_t)(i + 1)));
    *dy = (int)rn_xoshiro_below(r, (uint64_t)(2 * pad + 1)) - pad;
    *dx = (int)rn_xoshiro_below(r, (uint64_t)(2 * pad + 1)) - pad;
    *flip = (int)rn_xoshiro_below(r, 2);
}

/* Uniform integer in [0, n), n > 0, from the splitmix64 sequence at *state, without modulo
 * bias (rejection of the incomplete last range). */
static inline RN_HOST_DEVICE uint64_t rn_splitmix_below(uint64_t *state, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = rn_splitmix64(state);
    while (r >= limit);
    return r % n;
}

/* The data order of epoch `epoch`: perm[0..n) = 0..n-1, shuffled (when shuffle) by a uniform
 * Fisher-Yates from xoshiro256** seeded by (seed, epoch). */
void rn_draw_epoch_order(int *perm, int n, uint64_t seed, int epoch, bool shuffle);

/* The permutation behind the validation split (rn_dataset_split takes its first n_val
 * entries): perm[0..n) = 0..n-1 shuffled by a uniform Fisher-Yates from the splitmix64
 * sequence of `seed`. */
void rn_draw_split_order(int *perm, int n, uint64_t seed);

/* A crop box in a width x height image: rows [top, top+h), columns [left, left+w), and
 * whether to mirror it horizontally afterwards. */
typedef struct {
    int top, left, h, w;
    int flip;
} rn_crop_box;

/* torchvision's RandomResizedCrop(scale=(scale_lo, scale_hi), ratio=(ratio_lo, ratio_hi)) box
 * for image `index` of epoch `epoch`, plus RandomHorizontalFlip(0.5), from xoshiro256** seeded
 * by (seed, epoch, index). The rule is torchvision's get_params: up to 10 tries of an area
 * fraction uniform in [scale_lo, scale_hi) and a log aspect ratio uniform in
 * [log ratio_lo, log ratio_hi), w = round(sqrt(area * ratio)), h = round(sqrt(area / ratio))
 * (round half to even, as Python); the first that fits gets a uniform position. If none fits,
 * the center crop of the whole image clamped to the ratio range. */
rn_crop_box rn_draw_resized_crop(uint64_t seed, int epoch, int64_t index, int width, int height,
                                 double scale_lo, double scale_hi, double ratio_lo,
                                 double ratio_hi);

#endif
