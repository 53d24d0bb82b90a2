/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&s) >> 40) / (double)(1ull << 24);
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double tu_max_rel_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        if (d != d) return d; /* a NaN is the answer: it fails every check */
        if (d > m) m = d;
    }
    return m;
}

double tu_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return d;
        if (d > m) m = d;
    }
    return m;
}

const char *tu_data_dir(void) {
    static char dir[PATH_MAX];
    if (!dir[0]) {
        const char *src = __FILE__; /* .../tests/testutil.c */
        char buf[PATH_MAX];
        snprintf(buf, sizeof buf, "%s", src);
        char *slash = strrchr(buf, '/');
        if (slash) *slash = 0; else snprintf(buf, sizeof buf, "tests");
        char abs[PATH_MAX];
        if (!realpath(buf, abs)) snprintf(abs, sizeof abs, "%s", buf);
        snprintf(dir, sizeof dir, "%s/data", abs);
    }
    return dir;
}

const char *tu_tmpdir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/rn_test_XXXXXX");
        if (!mkdtemp(dir)) snprintf(dir, sizeof dir, "/tmp");
    }
    return dir;
}
