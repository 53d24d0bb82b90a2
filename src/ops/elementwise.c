/*
 * elementwise.c — ReLU and the residual add, forward and backward; and the add fused with the
 * ReLU after it (one pass over memory instead of two, split over threads).
 */
#include "ops/ops.h"

#include <omp.h>

#include "core/internal.h"

/* NaN (and -0) pass through, as in PyTorch: a diverged network must not come out looking
 * finite. */
void rn_relu_forward(float *out, const float *in, size_t n) {
#pragma omp simd /* out == in is allowed: each element is read before it is written */
    for (size_t i = 0; i < n; i++) out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

/* The gradient passes where the output is positive (so also when relu ran in place). */
void rn_relu_backward(float *restrict din, const float *restrict dout,
                      const float *restrict out, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float g = dout[i]; /* loaded unconditionally so the select vectorizes */
        din[i] += out[i] > 0.0f ? g : 0.0f;
    }
}

void rn_add_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp simd /* out == a is allowed */
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void rn_add_backward(float *da, float *db, const float *dout, size_t n) {
    if (da)
#pragma omp simd
        for (size_t i = 0; i < n; i++) da[i] += dout[i];
    if (db)
#pragma omp simd
        for (size_t i = 0; i < n; i++) db[i] += dout[i];
}

/* Elements [lo, hi) of thread t's equal share of n, in 16-float (cache-line) units. */
static void share(size_t n, int t, int nt, size_t *lo, size_t *hi) {
    size_t lines = (n + 15) / 16;
    *lo = RN_MIN(n, lines * (size_t)t / (size_t)nt * 16);
    *hi = RN_MIN(n, lines * (size_t)(t + 1) / (size_t)nt * 16);
}

void rn_add_relu_forward(float *out, const float *a, const float *b, size_t n,
                             int nthreads) {
    int nt = nthreads < 1 ? 1 : nthreads;
#pragma omp parallel num_threads(nt)
    {
        size_t lo, hi;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
#pragma omp simd /* out == a is allowed */
        for (size_t i = lo; i < hi; i++) {
            float v = a[i] + b[i];
            out[i] = v < 0.0f ? 0.0f : v;
        }
    }
}

void rn_add_relu_backward(float *da, float *db, const float *dout, const float *out, size_t n,
                          bool accumulate_a, bool accumulate_b, int nthreads) {
    int nt = nthreads < 1 ? 1 : nthreads;
#pragma omp parallel num_threads(nt)
    {
        size_t lo, hi;
        share(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        float *dst[2] = {da, db};
        bool acc[2] = {accumulate_a, accumulate_b};
        for (int k = 0; k < 2; k++) {
            float *dx = dst[k];
            if (!dx) continue;
            if (acc[k]) {
#pragma omp simd
                for (size_t i = lo; i < hi; i++) {
                    float g = dout[i]; /* loaded unconditionally so the select vectorizes */
                    dx[i] += out[i] > 0.0f ? g : 0.0f;
                }
            } else {
#pragma omp simd
                for (size_t i = lo; i < hi; i++) {
                    float g = dout[i];
                    dx[i] = out[i] > 0.0f ? g : 0.0f;
                }
            }
        }
    }
}
