/*
 * test_draws.c — the random draws of the data pipeline (src/core/draws.h) are the right ones:
 * the augmentation's crop offsets cover exactly -pad..pad on both axes, uniformly and
 * independently, and its flips come up half the time; epoch orders and the validation split
 * are uniform permutations, and each epoch has its own order; each draw equals the value
 * recorded for a fixed seed (so a change of what a seed means shows up here). The same is then
 * checked end to end: the crops and flips found in rn_batch_fill's output (each pixel of a
 * synthetic image says where it came from) and the images rn_dataset_split holds out.
 *
 * Statistical checks. Each distribution check computes a chi-square (or a binomial z) from a
 * fixed seed and fails when its p-value is below ALPHA = 1e-6: a correct generator fails one
 * check with probability 1e-6 per seed tried, and since the seeds are fixed the result is the
 * same on every run. The sample sizes are chosen so that each fault this file guards against
 * (a crop range one short, flips at 1/4, a Sattolo cycle instead of Fisher-Yates, the epoch
 * left out of the seed) is off by dozens of standard deviations.
 */
#include "testutil.h"

#include "core/draws.h"
#include "data/data.h"
#include "exec/step.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 1e-6
#define PAD 4
#define SIDE (2 * PAD + 1) /* crop offsets per axis */

/* ---- statistics ------------------------------------------------------------------------ */

/* Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above;
 * Numerical Recipes' gammq), accurate to ~1e-14 relative for the sizes used here. */
static double gamma_q(double a, double x) {
    if (x <= 0) return 1.0;
    double lg = lgamma(a);
    if (x < a + 1) {
        double ap = a, sum = 1.0 / a, del = sum;
        for (int n = 0; n < 10000 && fabs(del) > fabs(sum) * 1e-16; n++) {
            ap += 1;
            del *= x / ap;
            sum += del;
        }
        return 1.0 - sum * exp(-x + a * log(x) - lg);
    }
    double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
    for (int i = 1; i < 10000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < 1e-300) d = 1e-300;
        c = b + an / c;
        if (fabs(c) < 1e-300) c = 1e-300;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-16) break;
    }
    return exp(-x + a * log(x) - lg) * h;
}

/* P(X >= x) for X chi-square with `dof` degrees of freedom. */
static double chi2_sf(double x, int dof) { return gamma_q(dof / 2.0, x / 2.0); }

/* p-value of the chi-square test that counts[0..k) (summing to total) come from k equally
 * likely cells; prints it beside `what`. */
static double chi2_uniform(const char *what, const long *counts, int k) {
    long total = 0;
    for (int i = 0; i < k; i++) total += counts[i];
    double e = (double)total / k, x = 0;
    for (int i = 0; i < k; i++) x += (counts[i] - e) * (counts[i] - e) / e;
    double p = chi2_sf(x, k - 1);
    print_message("    %s: chi-square %.1f on %d dof, p = %.3g (fails below %g)\n", what, x, k - 1,
                  p, ALPHA);
    return p;
}

/* |z| of `hits` successes out of n trials of probability p. */
static double binomial_z(long hits, long n, double p) {
    return fabs(hits - n * p) / sqrt(n * p * (1 - p));
}

/* The two-sided z bound of a false-alarm rate `alpha` spread over `tests` tests (Bonferroni). */
static double z_bound(double alpha, int tests) {
    double lo = 0, hi = 40; /* erfc(z / sqrt 2) = alpha / tests, by bisection */
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (erfc(mid / sqrt(2.0)) > alpha / tests) lo = mid;
        else hi = mid;
    }
    return hi;
}

/* The helpers themselves, on closed forms: chi-square with 2 dof has P(X >= x) = exp(-x/2),
 * with 4 dof exp(-x/2) (1 + x/2); erfc(4.891638 / sqrt 2) = 1e-6. */
static void test_statistics_helpers(void **state) {
    (void)state;
    for (double x = 0.5; x < 80; x *= 1.7) {
        assert_true(fabs(chi2_sf(x, 2) - exp(-x / 2)) <= 1e-12 * exp(-x / 2) + 1e-300);
        double want = exp(-x / 2) * (1 + x / 2);
        assert_true(fabs(chi2_sf(x, 4) - want) <= 1e-12 * want + 1e-300);
    }
    assert_true(fabs(z_bound(1e-6, 1) - 4.891638) < 1e-5);
    long flat[4] = {100, 100, 100, 100}, skew[4] = {400, 0, 0, 0};
    assert_true(chi2_uniform("flat counts", flat, 4) > 0.999);
    assert_true(chi2_uniform("all in one cell", skew, 4) < 1e-100);
}

/* ---- permutations ---------------------------------------------------------------------- */

/* Fails unless perm[0..n) holds each of 0..n-1 once. */
static void assert_permutation(const int *perm, int n) {
    char *seen = calloc((size_t)n, 1);
    assert_non_null(seen);
    for (int i = 0; i < n; i++) {
        assert_true(perm[i] >= 0 && perm[i] < n);
        assert_int_equal(seen[perm[i]], 0);
        seen[perm[i]] = 1;
    }
    free(seen);
}

/* The index of a permutation of 0..3 among the 24 (Lehmer code). */
static int perm4_index(const int *p) {
    int code = 0;
    for (int i = 0; i < 4; i++) {
        int smaller = 0;
        for (int j = i + 1; j < 4; j++) smaller += p[j] < p[i];
        code = code * (4 - i) + smaller;
    }
    return code;
}

static void assert_ints_equal(const char *what, const int *got, const int *want, int n) {
    char line[512];
    int at = 0;
    for (int i = 0; i < n && at < 480; i++) at += snprintf(line + at, sizeof line - at, " %d", got[i]);
    print_message("    %s:%s\n", what, line);
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) fail_msg("%s: entry %d is %d, recorded %d", what, i, got[i], want[i]);
}

/* ---- crop and flip --------------------------------------------------------------------- */

/* 200 steps of batch 128 from seed 42: every offset -4..4 on each axis, uniform on each axis
 * and jointly (dy and dx independent), flips at 1/2; pad 2 and pad 0 keep to their range. */
static void test_crop_flip_distribution(void **state) {
    (void)state;
    enum { STEPS = 200, BATCH = 128 };
    long cy[SIDE] = {0}, cx[SIDE] = {0}, joint[SIDE * SIDE] = {0}, flips = 0, n = 0;
    long flip_by_dy[SIDE] = {0};
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < BATCH; i++) {
            int dy, dx, flip;
            rn_draw_crop_flip(42, s, i, PAD, &dy, &dx, &flip);
            if (dy < -PAD || dy > PAD || dx < -PAD || dx > PAD || (flip != 0 && flip != 1))
                fail_msg("step %d image %d: dy %d dx %d flip %d out of range", s, i, dy, dx, flip);
            cy[dy + PAD]++;
            cx[dx + PAD]++;
            joint[(dy + PAD) * SIDE + dx + PAD]++;
            flips += flip;
            flip_by_dy[dy + PAD] += flip;
            n++;
        }
    for (int v = 0; v < SIDE; v++)
        if (cy[v] == 0 || cx[v] == 0) fail_msg("offset %d never drawn (dy %ld, dx %ld times)",
                                               v - PAD, cy[v], cx[v]);
    assert_true(chi2_uniform("dy over -4..4", cy, SIDE) > ALPHA);
    assert_true(chi2_uniform("dx over -4..4", cx, SIDE) > ALPHA);
    assert_true(chi2_uniform("(dy, dx) over the 81 pairs", joint, SIDE * SIDE) > ALPHA);
    double z = binomial_z(flips, n, 0.5), zb = z_bound(ALPHA, 1);
    print_message("    flips: %ld of %ld (%.4f), z = %.2f (fails above %.2f)\n", flips, n,
                  (double)flips / n, z, zb);
    assert_true(z < zb);
    /* The flip does not depend on the vertical offset. */
    for (int v = 0; v < SIDE; v++) assert_true(binomial_z(flip_by_dy[v], cy[v], 0.5) < z_bound(ALPHA, SIDE));
    /* Other pads. */
    long c2[5] = {0};
    for (int i = 0; i < 5000; i++) {
        int dy, dx, flip;
        rn_draw_crop_flip(7, i / 50, i % 50, 2, &dy, &dx, &flip);
        assert_true(dy >= -2 && dy <= 2 && dx >= -2 && dx <= 2);
        c2[dy + 2]++;
        rn_draw_crop_flip(7, i / 50, i % 50, 0, &dy, &dx, &flip);
        assert_true(dy == 0 && dx == 0);
    }
    assert_true(chi2_uniform("dy over -2..2 (pad 2)", c2, 5) > ALPHA);
}

/* Images of a batch and consecutive steps draw independently: the same (dy, dx, flip) for image
 * i at steps s and s+1, or for images i and i+1 of one step, at the rate 1/162 of chance. */
static void test_crop_flip_independent(void **state) {
    (void)state;
    enum { STEPS = 200, BATCH = 128, KINDS = SIDE * SIDE * 2 };
    long same_step = 0, same_image = 0, pairs_step = 0, pairs_image = 0;
    int prev[BATCH];
    for (int s = 0; s < STEPS; s++)
        for (int i = 0; i < BATCH; i++) {
            int dy, dx, flip;
            rn_draw_crop_flip(42, s, i, PAD, &dy, &dx, &flip);
            int code = ((dy + PAD) * SIDE + dx + PAD) * 2 + flip;
            if (s > 0) {
                same_step += prev[i] == code;
                pairs_step++;
            }
            if (i > 0) {
                same_image += prev[i - 1] == code;
                pairs_image++;
            }
            prev[i] = code; /* prev[i - 1] is already this step's image i - 1 */
        }
    double zs = binomial_z(same_step, pairs_step, 1.0 / KINDS);
    double zi = binomial_z(same_image, pairs_image, 1.0 / KINDS), zb = z_bound(ALPHA, 2);
    print_message("    same draw for one image at consecutive steps: %ld of %ld (z %.2f); for "
                  "neighbouring images: %ld of %ld (z %.2f); chance 1/%d, fails above z %.2f\n",
                  same_step, pairs_step, zs, same_image, pairs_image, zi, KINDS, zb);
    assert_true(zs < zb);
    assert_true(zi < zb);
}

/* The draws of seed 42 (and one of seed 7) as recorded: (dy, dx, flip) of images 0..3 of steps
 * 0, 1 and 10^9. */
static void test_crop_flip_golden(void **state) {
    (void)state;
    static const int64_t steps[3] = {0, 1, 1000000000};
    static const int want[3][4][3] = {
        {{1, 2, 1}, {2, 3, 0}, {3, -3, 0}, {-2, -3, 1}},
        {{3, -1, 0}, {-1, -1, 0}, {0, -4, 0}, {1, -2, 0}},
        {{2, 3, 0}, {1, 1, 0}, {3, 3, 1}, {-3, 3, 1}},
    };
    for (int k = 0; k < 3; k++) {
        int got[4][3];
        for (int i = 0; i < 4; i++) rn_draw_crop_flip(42, steps[k], i, PAD, &got[i][0], &got[i][1], &got[i][2]);
        char what[64];
        snprintf(what, sizeof what, "seed 42 step %lld (dy dx flip)", (long long)steps[k]);
        assert_ints_equal(what, &got[0][0], &want[k][0][0], 12);
    }
    int got[3];
    static const int want7[3] = {-4, -4, 1};
    rn_draw_crop_flip(7, 5, 100, PAD, &got[0], &got[1], &got[2]);
    assert_ints_equal("seed 7 step 5 image 100", got, want7, 3);
}

/* ---- epoch order ----------------------------------------------------------------------- */

/* Each epoch a permutation of its own; the data set's order without shuffling. */
static void test_epoch_order(void **state) {
    (void)state;
    int perm[50], other[50];
    rn_draw_epoch_order(perm, 50, 42, 3, false);
    for (int i = 0; i < 50; i++) assert_int_equal(perm[i], i);
    /* Twenty epochs of 50 images: permutations, each different from every other. */
    static int orders[20][50];
    for (int e = 0; e < 20; e++) {
        rn_draw_epoch_order(orders[e], 50, 42, e, true);
        assert_permutation(orders[e], 50);
        for (int f = 0; f < e; f++)
            if (memcmp(orders[e], orders[f], sizeof orders[e]) == 0)
                fail_msg("epochs %d and %d have the same order", f, e);
    }
    /* Another seed, another order. */
    rn_draw_epoch_order(perm, 50, 42, 0, true);
    rn_draw_epoch_order(other, 50, 43, 0, true);
    assert_true(memcmp(perm, other, sizeof perm) != 0);
}

/* The recorded orders of 10 images, seed 42, epochs 0, 1 and 2. */
static void test_epoch_order_golden(void **state) {
    (void)state;
    static const int want[3][10] = {
        {8, 2, 3, 6, 5, 4, 7, 0, 9, 1},
        {3, 8, 4, 5, 9, 7, 2, 6, 0, 1},
        {1, 6, 0, 3, 9, 5, 8, 7, 4, 2},
    };
    for (int e = 0; e < 3; e++) {
        int perm[10];
        char what[64];
        snprintf(what, sizeof what, "epoch %d of seed 42", e);
        rn_draw_epoch_order(perm, 10, 42, e, true);
        assert_ints_equal(what, perm, want[e], 10);
    }
}

/* All 24 orders of 4 images equally likely: over 24,000 seeds (epoch 0), and over 24,000
 * epochs of one seed. */
static void test_epoch_order_uniform(void **state) {
    (void)state;
    long by_seed[24] = {0}, by_epoch[24] = {0};
    int p[4];
    for (int k = 0; k < 24000; k++) {
        rn_draw_epoch_order(p, 4, (uint64_t)k, 0, true);
        by_seed[perm4_index(p)]++;
        rn_draw_epoch_order(p, 4, 42, k, true);
        by_epoch[perm4_index(p)]++;
    }
    assert_true(chi2_uniform("orders of 4 images over 24000 seeds", by_seed, 24) > ALPHA);
    assert_true(chi2_uniform("orders of 4 images over 24000 epochs", by_epoch, 24) > ALPHA);
}

/* ---- the validation split -------------------------------------------------------------- */

/* Split orders are permutations, all 24 orders of 4 images equally likely over 24,000 seeds. */
static void test_split_order(void **state) {
    (void)state;
    static int big[1000];
    rn_draw_split_order(big, 1000, 5);
    assert_permutation(big, 1000);
    long counts[24] = {0};
    for (int k = 0; k < 24000; k++) {
        int p[4];
        rn_draw_split_order(p, 4, (uint64_t)k);
        counts[perm4_index(p)]++;
    }
    assert_true(chi2_uniform("split orders of 4 images over 24000 seeds", counts, 24) > ALPHA);
}

/* The recorded split orders of 10 images, seeds 42 and 0. */
static void test_split_order_golden(void **state) {
    (void)state;
    int perm[10];
    static const int want42[10] = {0, 9, 5, 8, 6, 4, 7, 2, 1, 3};
    static const int want0[10] = {6, 3, 2, 9, 8, 1, 4, 7, 0, 5};
    rn_draw_split_order(perm, 10, 42);
    assert_ints_equal("split order of 10, seed 42", perm, want42, 10);
    rn_draw_split_order(perm, 10, 0);
    assert_ints_equal("split order of 10, seed 0", perm, want0, 10);
}

/* n images whose first pixel and label are their index (1 channel, 2x2). */
static void index_set(rn_dataset *d, int n) {
    TU_OK(rn_data_alloc(d, NULL, n, 1, 2, 2, n));
    TU_OK(rn_data_default_names(d));
    for (int i = 0; i < n; i++) {
        d->labels[i] = i;
        memset(d->images + 4 * i, 0, 4);
        d->images[4 * i] = (uint8_t)i;
    }
}

/* rn_dataset_split end to end: over 20,000 seeds each of 10 images is held out (3 of 10) 30%
 * of the time. */
static void test_split_held_out(void **state) {
    (void)state;
    enum { N = 10, NVAL = 3, SEEDS = 20000 };
    long counts[N] = {0};
    for (int s = 0; s < SEEDS; s++) {
        rn_dataset tr, va;
        index_set(&tr, N);
        TU_OK(rn_dataset_split(&tr, &va, NVAL, (uint64_t)s));
        assert_int_equal(va.n, NVAL);
        for (int i = 0; i < va.n; i++) counts[va.labels[i]]++;
        rn_dataset_free(&tr);
        rn_dataset_free(&va);
    }
    double zb = z_bound(ALPHA, N), worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, binomial_z(counts[i], SEEDS, (double)NVAL / N));
    print_message("    held out over %d seeds: image 0 %ld, image 9 %ld times (expected %d); worst "
                  "z %.2f (fails above %.2f)\n", SEEDS, counts[0], counts[N - 1], SEEDS * NVAL / N,
                  worst, zb);
    assert_true(worst < zb);
}

/* The images seed 42 holds out, as recorded (the first three of its split order, in the data
 * set's order). */
static void test_split_held_out_golden(void **state) {
    (void)state;
    enum { N = 10, NVAL = 3 };
    rn_dataset tr, va;
    index_set(&tr, N);
    TU_OK(rn_dataset_split(&tr, &va, NVAL, 42));
    int got[NVAL];
    for (int i = 0; i < NVAL; i++) {
        assert_int_equal(va.images[4 * i], va.labels[i]);
        got[i] = va.labels[i];
    }
    static const int want[NVAL] = {0, 5, 9};
    assert_ints_equal("held out by seed 42", got, want, NVAL);
    rn_dataset_free(&tr);
    rn_dataset_free(&va);
}

/* ---- rn_batch_fill end to end ---------------------------------------------------------- */

enum { BC = 2, BH = 6, BW = 7, BPIX = BC * BH * BW, BIMAGES = 3 };

/* Pixel (c, y, x) of image k holds 1 + k*BPIX + (c*BH + y)*BW + x: every value says where it
 * came from (0 is never used). */
static void where_set(rn_dataset *d) {
    TU_OK(rn_data_alloc(d, NULL, BIMAGES, BC, BH, BW, 5));
    for (int k = 0; k < BIMAGES; k++) {
        d->labels[k] = 4 - k;
        for (int p = 0; p < BPIX; p++) d->images[k * BPIX + p] = (uint8_t)(1 + k * BPIX + p);
    }
}

/* Whether out (BC,BH,BW) is image `src` of d, zero-padded by PAD, cropped at (dy, dx) and then
 * flipped horizontally when flip, normalized by nm (torchvision's RandomCrop(padding=4) then
 * RandomHorizontalFlip, then Normalize). */
static bool is_augmented(const float *out, const rn_dataset *d, int src, const rn_norm *nm,
                         int dy, int dx, int flip) {
    for (int c = 0; c < BC; c++)
        for (int y = 0; y < BH; y++)
            for (int x = 0; x < BW; x++) {
                int sy = y + dy, sx = (flip ? BW - 1 - x : x) + dx;
                float v = 0;
                if (sy >= 0 && sy < BH && sx >= 0 && sx < BW)
                    v = d->images[src * BPIX + (c * BH + sy) * BW + sx] / 255.0f;
                float want = (v - nm->mean[c]) / nm->std[c];
                if (fabsf(out[(c * BH + y) * BW + x] - want) > 1e-5f) return false;
            }
    return true;
}

/* The (dy, dx, flip) that turns image src into out: the first pixel that is not padding gives
 * dy and, for each flip, dx; exactly one of the two candidates must reproduce out. */
static bool recover(const float *out, const rn_dataset *d, int src, const rn_norm *nm, int *dy,
                    int *dx, int *flip) {
    for (int y = 0; y < BH; y++)
        for (int x = 0; x < BW; x++) {
            int v = (int)lrintf((out[y * BW + x] * nm->std[0] + nm->mean[0]) * 255.0f);
            if (v == 0) continue;
            int p = v - 1 - src * BPIX; /* channel 0 */
            if (p < 0 || p >= BH * BW) return false;
            int sy = p / BW, sx = p % BW, found = 0;
            for (int f = 0; f < 2; f++) {
                int cdx = sx - (f ? BW - 1 - x : x);
                if (is_augmented(out, d, src, nm, sy - y, cdx, f)) {
                    *dy = sy - y, *dx = cdx, *flip = f;
                    found++;
                }
            }
            return found == 1;
        }
    return false;
}

/* rn_batch_fill's output, read back: each image is its source under exactly the crop and flip
 * rn_draw_crop_flip gives for (seed, step, position), with padding at the normalized zero, the
 * right label, the same on 1 and 2 threads; over 25,600 images the offsets found cover -4..4
 * uniformly and half are flipped. Without augmentation each image is its source. */
static void test_batch_fill_augmentation(void **state) {
    (void)state;
    enum { B = 512, STEPS = 50 };
    rn_dataset d;
    where_set(&d);
    rn_norm nm = {.channels = BC, .mean = {0.1f, 0.3f}, .std = {0.5f, 0.25f}};
    int idx[B], labels[B], labels2[B];
    for (int i = 0; i < B; i++) idx[i] = (i * 7) % BIMAGES;
    float *x = malloc(sizeof(float) * B * BPIX), *x2 = malloc(sizeof(float) * B * BPIX);
    assert_non_null(x);
    assert_non_null(x2);
    long cy[SIDE] = {0}, cx[SIDE] = {0}, flips = 0, n = 0;
    for (int s = 0; s < STEPS; s++) {
        rn_batch_fill(x, labels, &d, idx, B, &nm, true, 42, s, 1);
        if (s < 2) {
            rn_batch_fill(x2, labels2, &d, idx, B, &nm, true, 42, s, 2);
            assert_memory_equal(x, x2, sizeof(float) * B * BPIX);
        }
        for (int i = 0; i < B; i++) {
            const float *img = x + (size_t)i * BPIX;
            int dy = 0, dx = 0, flip = 0, wy, wx, wflip;
            assert_int_equal(labels[i], d.labels[idx[i]]);
            if (!recover(img, &d, idx[i], &nm, &dy, &dx, &flip))
                fail_msg("step %d image %d: not a crop and flip of image %d", s, i, idx[i]);
            rn_draw_crop_flip(42, s, i, PAD, &wy, &wx, &wflip);
            if (dy != wy || dx != wx || flip != wflip)
                fail_msg("step %d image %d: cropped at (%d, %d) flip %d, drawn (%d, %d) flip %d", s,
                         i, dy, dx, flip, wy, wx, wflip);
            cy[dy + PAD]++;
            cx[dx + PAD]++;
            flips += flip;
            n++;
        }
    }
    for (int v = 0; v < SIDE; v++) assert_true(cy[v] > 0 && cx[v] > 0);
    assert_true(chi2_uniform("rn_batch_fill's vertical offsets", cy, SIDE) > ALPHA);
    assert_true(chi2_uniform("rn_batch_fill's horizontal offsets", cx, SIDE) > ALPHA);
    double z = binomial_z(flips, n, 0.5);
    print_message("    rn_batch_fill's flips: %ld of %ld, z = %.2f\n", flips, n, z);
    assert_true(z < z_bound(ALPHA, 1));
    /* No augmentation: the images as they are, at any step. */
    rn_batch_fill(x, labels, &d, idx, B, &nm, false, 42, 17, 2);
    for (int i = 0; i < B; i++) assert_true(is_augmented(x + (size_t)i * BPIX, &d, idx[i], &nm, 0, 0, 0));
    free(x);
    free(x2);
    rn_dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statistics_helpers),
        cmocka_unit_test(test_crop_flip_distribution),
        cmocka_unit_test(test_crop_flip_independent),
        cmocka_unit_test(test_crop_flip_golden),
        cmocka_unit_test(test_epoch_order),
        cmocka_unit_test(test_epoch_order_uniform),
        cmocka_unit_test(test_epoch_order_golden),
        cmocka_unit_test(test_split_order),
        cmocka_unit_test(test_split_order_golden),
        cmocka_unit_test(test_split_held_out),
        cmocka_unit_test(test_split_held_out_golden),
        cmocka_unit_test(test_batch_fill_augmentation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
