/*
 * gemm.c — single-precision matrix multiply, the work horse of conv2d and linear.
 *
 * rn_sgemm computes C = alpha * op(A) x op(B) + beta * C on row-major matrices. rn_sgemm_naive
 * is the plain triple loop kept as the reference for rn_sgemm's tests.
 */
#include "ops/ops.h"

#include <stddef.h>

/* Element (i, j) of op(X), X row-major with leading dimension ld. */
#define OP(X, trans, ld, i, j) ((trans) ? (X)[(size_t)(j) * (ld) + (i)] : (X)[(size_t)(i) * (ld) + (j)])

void rn_sgemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int p = 0; p < K; p++)
                acc += (double)OP(A, trans_a, lda, i, p) * OP(B, trans_b, ldb, p, j);
            float *c = &C[(size_t)i * ldc + j];
            *c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
        }
}

void rn_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = &C[(size_t)i * ldc];
        if (beta == 0.0f)
            for (int j = 0; j < N; j++) c[j] = 0.0f;
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
        for (int p = 0; p < K; p++) {
            float a = alpha * OP(A, trans_a, lda, i, p);
            if (trans_b)
                for (int j = 0; j < N; j++) c[j] += a * B[(size_t)j * ldb + p];
            else {
                const float *b = &B[(size_t)p * ldb];
                for (int j = 0; j < N; j++) c[j] += a * b[j];
            }
        }
    }
}
