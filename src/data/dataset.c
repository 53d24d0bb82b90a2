/*
 * dataset.c — the data set API that does not depend on a format: rn_dataset_load's dispatch on
 * the spec prefix (to the loaders, which build on set.c), per-channel statistics and the seeded
 * train/validation split.
 */
#include "core/draws.h"
#include "data/data.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define KNOWN_SPECS "cifar10:DIR, cifar100:DIR, cifar100-coarse:DIR, mnist:DIR, folder:ROOT, packed:DIR"

rn_status rn_dataset_load(rn_dataset *train, rn_dataset *test, const char *spec,
                          const rn_data_opts *opts) {
    return rn_dataset_load_progress(train, test, spec, opts, NULL, NULL);
}

rn_status rn_dataset_load_progress(rn_dataset *train, rn_dataset *test, const char *spec,
                                   const rn_data_opts *opts, rn_data_progress progress,
                                   void *user) {
    memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!spec) return rn_fail(RN_ERR_BAD_ARG, "no data set given (expected one of " KNOWN_SPECS ")");
    const char *colon = strchr(spec, ':');
    size_t plen = colon ? (size_t)(colon - spec) : 0;
    const char *dir = colon ? colon + 1 : "";
    int rh = opts ? opts->resize_h : 0, rw = opts ? opts->resize_w : 0;
    if (rh < 0 || rw < 0 || (rh > 0) != (rw > 0) || rh > 65536 || rw > 65536)
        return rn_fail(RN_ERR_BAD_ARG, "resize %dx%d: expected both sizes in [1, 65536] or both 0",
                       rh, rw);
#define IS(name) (plen == strlen(name) && !strncmp(spec, name, plen))
    if (!colon || !(IS("cifar10") || IS("cifar100") || IS("cifar100-coarse") || IS("mnist") ||
                    IS("folder") || IS("packed")))
        return rn_fail(RN_ERR_BAD_ARG, "unknown data set '%s' (expected one of " KNOWN_SPECS ")",
                       RN_SHOW(spec));
    if (!*dir)
        return rn_fail(RN_ERR_BAD_ARG, "data set '%s': no folder after the ':'", RN_SHOW(spec));
    rn_status s;
    if (IS("cifar10")) s = rn_data_load_cifar10(train, test, dir);
    else if (IS("cifar100")) s = rn_data_load_cifar100(train, test, dir, false);
    else if (IS("cifar100-coarse")) s = rn_data_load_cifar100(train, test, dir, true);
    else if (IS("mnist")) s = rn_data_load_mnist(train, test, dir);
    else if (IS("packed")) s = rn_data_load_packed(train, test, dir);
    else s = rn_data_load_folder(train, test, dir, opts, progress, user);
#undef IS
    if (s == RN_OK && rh > 0) {
        s = rn_data_resize_set(train, rh, rw);
        if (s == RN_OK && test) s = rn_data_resize_set(test, rh, rw);
    }
    if (s != RN_OK) {
        rn_dataset_free(train);
        if (test) rn_dataset_free(test);
    }
    return s;
}

/* The smallest std rn_dataset_norm returns: one grey level of 8-bit pixels. A channel whose
 * pixels are all equal has std 0, and dividing by it makes every input NaN (torchvision's
 * Normalize refuses it with an error). rn_dataset_norm has no status to return, and such a
 * channel carries no information, so its std is raised to this floor instead: the channel
 * then normalizes to 0 for the training pixels and stays within +-255 for any other pixel. */
#define RN_NORM_MIN_STD (1.0 / 255.0)

rn_norm rn_dataset_norm(const rn_dataset *d) {
    rn_norm nm;
    memset(&nm, 0, sizeof nm);
    int c = RN_MIN(d->c, 4);
    nm.channels = c;
    for (int ch = 0; ch < 4; ch++) nm.std[ch] = 1.0f;
    size_t plane = (size_t)d->h * d->w;
    if (d->n <= 0 || plane == 0) return nm;
    for (int ch = 0; ch < c; ch++) {
        /* Exact integer sums: at most 2^32 * 255^2 per 2^32 pixels, far inside 64 bits. */
        uint64_t sum = 0, sum2 = 0;
        #pragma omp parallel for schedule(static) reduction(+ : sum, sum2)
        for (int i = 0; i < d->n; i++) {
            const uint8_t *p = d->images + ((size_t)i * d->c + ch) * plane;  // (h, w)
            uint64_t s1 = 0, s2 = 0;
            for (size_t k = 0; k < plane; k++) {
                s1 += p[k];
                s2 += (uint32_t)p[k] * p[k];
            }
            sum += s1;
            sum2 += s2;
        }
        double count = (double)d->n * (double)plane;
        double mean = (double)sum / count;
        double var = (double)sum2 / count - mean * mean;
        nm.mean[ch] = (float)(mean / 255.0);
        nm.std[ch] = (float)RN_MAX(sqrt(var > 0 ? var : 0) / 255.0, RN_NORM_MIN_STD);
    }
    return nm;
}

rn_status rn_dataset_split(rn_dataset *train, rn_dataset *val, int n_val, uint64_t seed) {
    if (n_val < 0 || n_val > train->n)
        return rn_fail(RN_ERR_BAD_ARG, "validation size %d: expected 0..%d (the training images)",
                       n_val, train->n);
    int n = train->n;
    size_t img = (size_t)train->c * train->h * train->w;
    int *perm = malloc((size_t)(n > 0 ? n : 1) * sizeof *perm);
    uint8_t *in_val = calloc((size_t)(n > 0 ? n : 1), 1);
    rn_dataset v;
    rn_status s = RN_OK;
    if (!perm || !in_val) {
        s = rn_fail(RN_ERR_NOMEM, "cannot allocate the split of %d images", n);
        goto done;
    }
    s = rn_data_alloc(&v, "the validation split", n_val, train->c, train->h, train->w, train->num_classes);
    if (s) goto done;
    v.class_names = rn_data_copy_names(train->class_names, train->num_classes);
    if (!v.class_names) {
        rn_dataset_free(&v);
        s = rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
        goto done;
    }
    /* The first n_val entries of the split order go to validation. */
    rn_draw_split_order(perm, n, seed);
    for (int i = 0; i < n_val; i++) in_val[perm[i]] = 1;
    int nv = 0, nt = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *src = train->images + (size_t)i * img;
        if (in_val[i]) {
            memcpy(v.images + (size_t)nv * img, src, img);
            v.labels[nv++] = train->labels[i];
        } else {
            if (nt != i) memmove(train->images + (size_t)nt * img, src, img);
            train->labels[nt++] = train->labels[i];
        }
    }
    train->n = nt;
    *val = v;
done:
    free(perm);
    free(in_val);
    return s;
}
