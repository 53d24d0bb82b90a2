/*
 * testutil.c — see testutil.h.
 */
#include "testutil.h"

#include <limits.h>
#include <stdbool.h>
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
    static char dir[PATH_MAX + 8];
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

/* ---- reference tensors ------------------------------------------------------------------ */

static const rn_st_tensor *st_get(const rn_safetensors *st, const char *name) {
    const rn_st_tensor *t = rn_safetensors_find(st, name);
    if (!t) fail_msg("reference tensor %s is missing", name);
    return t;
}

float *tu_st_floats(const rn_safetensors *st, const char *name, size_t *numel) {
    const rn_st_tensor *t = st_get(st, name);
    if (t->dtype != RN_DTYPE_F32) fail_msg("%s: dtype %s, expected F32", name, rn_dtype_name(t->dtype));
    size_t n = t->nbytes / sizeof(float);
    float *x = malloc(n ? n * sizeof(float) : 1);
    assert_non_null(x);
    memcpy(x, t->data, n * sizeof(float)); /* the file's bytes need not be aligned */
    if (numel) *numel = n;
    return x;
}

int *tu_st_ints(const rn_safetensors *st, const char *name, size_t *numel) {
    const rn_st_tensor *t = st_get(st, name);
    if (t->dtype != RN_DTYPE_I64) fail_msg("%s: dtype %s, expected I64", name, rn_dtype_name(t->dtype));
    size_t n = t->nbytes / sizeof(int64_t);
    int *x = malloc(n ? n * sizeof(int) : 1);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + i * sizeof v, sizeof v);
        x[i] = (int)v;
    }
    if (numel) *numel = n;
    return x;
}

double tu_st_scalar(const rn_safetensors *st, const char *name) {
    const rn_st_tensor *t = st_get(st, name);
    if (t->nbytes != rn_dtype_size(t->dtype)) fail_msg("%s: not a single value", name);
    switch (t->dtype) {
    case RN_DTYPE_F32: { float v; memcpy(&v, t->data, sizeof v); return v; }
    case RN_DTYPE_F64: { double v; memcpy(&v, t->data, sizeof v); return v; }
    case RN_DTYPE_I64: { int64_t v; memcpy(&v, t->data, sizeof v); return (double)v; }
    default: fail_msg("%s: dtype %s, expected F32, F64 or I64", name, rn_dtype_name(t->dtype));
    }
    return 0;
}

void tu_st_expect_shape(const rn_safetensors *st, const char *name, int ndim, const int *shape) {
    const rn_st_tensor *t = st_get(st, name);
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) fail_msg("%s: shape in the file differs from the one the test expects", name);
}

/* ---- parity checks ---------------------------------------------------------------------- */

double tu_grad_err(const float *a, const float *ref, size_t n) {
    double maxref = 0;
    for (size_t i = 0; i < n; i++) maxref = fmax(maxref, fabs((double)ref[i]));
    double d = tu_max_abs_diff(a, ref, n);
    return d != d ? d : d / (1e-3 + maxref);
}

double tu_check_fwd(const char *what, const float *a, const float *ref, size_t n) {
    double e = tu_max_rel_diff(a, ref, n);
    printf("    %-40s max |a-b|/(1+|ref|)        = %.3g\n", what, e);
    if (!(e <= TU_FWD_TOL)) fail_msg("%s: %.3g exceeds %.0e", what, e, TU_FWD_TOL);
    return e;
}

double tu_check_grad(const char *what, const float *a, const float *ref, size_t n) {
    double e = tu_grad_err(a, ref, n);
    printf("    %-40s max |a-b|/(1e-3+max|ref|)  = %.3g\n", what, e);
    if (!(e <= TU_GRAD_TOL)) fail_msg("%s: %.3g exceeds %.0e", what, e, TU_GRAD_TOL);
    return e;
}

/* ---- hash fill -------------------------------------------------------------------------- */

double tu_hash_uniform(int t, size_t i) {
    uint64_t x = ((uint64_t)(uint32_t)t * 0x9E3779B1ull + (uint64_t)i * 0x85EBCA77ull +
                  0x165667B1ull) & 0xFFFFFFFFull;
    x ^= x >> 15;
    x = (x * 0x2C1B3C6Dull) & 0xFFFFFFFFull;
    x ^= x >> 12;
    x = (x * 0x297A2D39ull) & 0xFFFFFFFFull;
    x ^= x >> 15;
    return (double)x / 4294967296.0;
}

void tu_fill_hash(float *x, size_t n, int t, tu_hash_kind kind, size_t fan_in) {
    for (size_t i = 0; i < n; i++) {
        double u = tu_hash_uniform(t, i), v = 0;
        switch (kind) {
        case TU_HASH_WEIGHT: v = (2.0 * u - 1.0) / sqrt((double)fan_in); break;
        case TU_HASH_BIAS: v = 0.2 * (2.0 * u - 1.0); break;
        case TU_HASH_BN_WEIGHT: v = 0.5 + u; break;
        case TU_HASH_RUNNING_MEAN: v = 0.1 * (2.0 * u - 1.0); break;
        case TU_HASH_RUNNING_VAR: v = 0.5 + u; break;
        }
        x[i] = (float)v;
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

void tu_fill_hash_model(rn_model *m) {
    int nt = rn_model_num_tensors(m);
    for (int t = 0; t < nt; t++) {
        const rn_tensor_info *ti = rn_model_tensor(m, t);
        if (ti->kind == RN_TENSOR_COUNTER) {
            *ti->counter = 0;
            continue;
        }
        tu_hash_kind kind = TU_HASH_WEIGHT;
        if (ends_with(ti->name, "running_mean")) kind = TU_HASH_RUNNING_MEAN;
        else if (ends_with(ti->name, "running_var")) kind = TU_HASH_RUNNING_VAR;
        else if (ends_with(ti->name, "bias")) kind = TU_HASH_BIAS;
        else if (ends_with(ti->name, "weight") && ti->ndim == 1) kind = TU_HASH_BN_WEIGHT;
        else if (ends_with(ti->name, "weight")) kind = TU_HASH_WEIGHT;
        else fail_msg("hash fill: no rule for tensor %s", ti->name);
        size_t fan_in = ti->ndim > 0 && ti->shape[0] > 0 ? ti->numel / (size_t)ti->shape[0] : 1;
        tu_fill_hash(ti->data, ti->numel, t, kind, fan_in);
    }
}
