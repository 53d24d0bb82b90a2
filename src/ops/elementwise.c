/*
 * elementwise.c — ReLU and the residual add, forward and backward.
 */
#include "ops/ops.h"

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
