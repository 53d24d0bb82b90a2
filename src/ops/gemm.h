/*
 * gemm.h — rn_sgemm on a chosen micro-kernel, so tests and benchmarks reach every instruction
 * set the library carries, not only the one rn_sgemm picks on this machine.
 */
#ifndef RN_GEMM_H
#define RN_GEMM_H

#include <stdbool.h>

/* The names rn_sgemm_with accepts, widest first ("avx512", "avx2" on x86-64; "generic"
 * everywhere), NULL-terminated. */
extern const char *const rn_sgemm_kernels[];

/* rn_sgemm on the named micro-kernel; returns false (computing nothing) if this build or this
 * CPU lacks it. */
bool rn_sgemm_with(const char *kernel, bool trans_a, bool trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);

#endif
