/*
 * ops.h — the reference kernels: every layer's forward and backward pass in portable C.
 *
 * These are the numbers every faster backend is tested against. Conventions:
 *  - outputs first, then inputs, then the shape descriptor; a shape comment beside each pointer;
 *  - backward passes ACCUMULATE (+=) into din / dweight / dbias, so residual adds and shared
 *    inputs need no special case; any of those pointers may be NULL to skip that gradient;
 *  - kernels that need scratch memory take it from the caller, sized by a *_scratch_floats
 *    query for the given thread count (no allocation inside a kernel);
 *  - `nthreads` is how many OpenMP threads a kernel may use; results for a fixed nthreads are
 *    bit-for-bit deterministic.
 */
#ifndef RN_OPS_H
#define RN_OPS_H

#include <stdbool.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "resnet.h" /* rn_status */

/* ---- GEMM: C (M,N) = alpha * op(A) (M,K) x op(B) (K,N) + beta * C, row-major ---------------- */
void rn_sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The naive triple loop, kept as the reference for rn_sgemm's tests. */
void rn_sgemm_naive(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A,
                    int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* ---- conv2d --------------------------------------------------------------------------------- */
typedef struct {
    int N, C, H, W;    /* input */
    int K, R, S;       /* output channels, kernel height, kernel width */
    int stride, pad;   /* same in both directions */
    int Ho, Wo;        /* output size: (H + 2*pad - R)/stride + 1, likewise for W */
} rn_conv_desc;

/* Fills Ho and Wo from the other fields. */
void rn_conv_desc_finish(rn_conv_desc *d);
size_t rn_conv2d_scratch_floats(const rn_conv_desc *d, int nthreads);

/* out (N,K,Ho,Wo) = in (N,C,H,W) conv w (K,C,R,S) + bias (K) (bias may be NULL). Writes out. */
void rn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                       const rn_conv_desc *d, float *scratch, int nthreads);
/* din (N,C,H,W), dw (K,C,R,S), dbias (K) += from dout (N,K,Ho,Wo). */
void rn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, const rn_conv_desc *d, float *scratch, int nthreads);

/* ---- batchnorm2d (PyTorch semantics) ------------------------------------------------------- */
/* Synchronized BatchNorm: training-mode statistics over a batch that several processes share,
 * each holding N of its images. Between computing its per-channel sums and using them, a
 * kernel hands them to sum, which adds n doubles in place over the processes (every process
 * calls it at the same point with the same n): in the forward pass the sums of x with the
 * count, then the sums of squared deviations from the global mean; in the backward pass the
 * sums of dy and dy * (x - mean) with the count. dgamma and dbeta stay this process's own (the
 * gradient average combines them). The kernels return nothing: status keeps sum's first
 * failure, for the caller to check after the pass. */
typedef struct rn_bn_sync {
    rn_status (*sum)(void *user, double *buf, size_t n);
    void *user;
    double *buf;      /* 2 * C + 1 doubles for the widest BN */
    rn_status status; /* RN_OK until sum fails */
} rn_bn_sync;

typedef struct {
    int N, C, HW;
    float eps;      /* 1e-5 */
    float momentum; /* 0.1: running = (1-momentum)*running + momentum*batch */
    rn_bn_sync *sync; /* training mode: statistics over every process's images (NULL: this
                       * batch's alone) */
} rn_bn_desc;

/* Training mode: normalizes with the batch mean and biased variance; updates running_mean and
 * running_var (unbiased variance, factor N*HW/(N*HW-1)); saves the batch mean and
 * 1/sqrt(var+eps) per channel for the backward pass. out (N,C,HW), in (N,C,HW), gamma/beta (C),
 * save_mean/save_invstd (C) written, running_mean/running_var (C) updated. */
void rn_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *in,
                                const float *gamma, const float *beta, const rn_bn_desc *d,
                                int nthreads);
/* Eval mode: normalizes with the running statistics; also writes save_mean = running_mean and
 * save_invstd = 1/sqrt(running_var+eps) so the backward pass reads the same cache. */
void rn_batchnorm_forward_eval(float *out, float *save_mean, float *save_invstd, const float *in,
                               const float *gamma, const float *beta, const float *running_mean,
                               const float *running_var, const rn_bn_desc *d, int nthreads);
/* din (N,C,HW), dgamma/dbeta (C) +=. train selects the batch-statistics formula (mean and
 * variance depend on the input) or the eval one (constants). */
void rn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *save_mean, const float *save_invstd,
                           const float *gamma, const rn_bn_desc *d, bool train, int nthreads);

/* BN per channel as the affine map its kernels apply, y = x*alpha + shift, with
 * alpha = gamma*invstd and shift = beta - mean*gamma*invstd (PyTorch's form), computed in
 * double and rounded once; in eval mode invstd = 1/sqrt(running_var + eps). Inference uses the
 * same two to fold a BN into the convolution before it. */
static inline double rn_bn_eval_invstd(float running_var, float eps) {
    return 1.0 / sqrt((double)running_var + eps);
}
static inline void rn_bn_affine(double mean, double invstd, float gamma, float beta,
                                float *alpha, float *shift) {
    *alpha = (float)(invstd * gamma);
    *shift = (float)(beta - mean * invstd * gamma);
}

/* BN fused with the ReLU that reads its output (in place). Forward: out = max(BN(in), 0).
 * Backward: dout and out are the ReLU's output gradient and output; the gradient reaching the
 * BN is dout where out > 0, else 0 (out NULL: no ReLU, BN's own backward). din is added to
 * (accumulate) or written (saves clearing it first); dgamma, dbeta are added to. Same results
 * as BN then ReLU, up to the grouping of sums. */
void rn_batchnorm_relu_forward_train(float *out, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var, const float *in,
                                     const float *gamma, const float *beta, const rn_bn_desc *d,
                                     int nthreads);
void rn_batchnorm_relu_forward_eval(float *out, float *save_mean, float *save_invstd,
                                    const float *in, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var,
                                    const rn_bn_desc *d, int nthreads);
void rn_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *out, const float *in, const float *save_mean,
                                const float *save_invstd, const float *gamma,
                                const rn_bn_desc *d, bool train, bool accumulate,
                                int nthreads);

/* ---- elementwise ------------------------------------------------------------------------- */
/* relu_forward may run in place (out == in), add_forward with out == a. */
void rn_relu_forward(float *out, const float *in, size_t n);             /* out = max(in, 0) */
void rn_relu_backward(float *din, const float *dout, const float *out, size_t n); /* += dout*(out>0) */
void rn_add_forward(float *out, const float *a, const float *b, size_t n);        /* out = a + b */
void rn_add_backward(float *da, float *db, const float *dout, size_t n);          /* da,db += dout */
/* The residual add fused with the ReLU after it: out = max(a + b, 0) (out == a allowed);
 * da, db += (or, without accumulate_a/_b, =) dout where out > 0, else 0; either may be NULL.
 * Equal slices per thread. */
void rn_add_relu_forward(float *out, const float *a, const float *b, size_t n, int nthreads);
void rn_add_relu_backward(float *da, float *db, const float *dout, const float *out, size_t n,
                          bool accumulate_a, bool accumulate_b, int nthreads);

/* ---- shortcut option A: x[:, :, ::2, ::2] zero-padded in channels (He et al. CIFAR nets) ---- */
typedef struct {
    int N, C, H, W; /* input */
    int K;          /* output channels, >= C; (K-C)/2 zero channels before, the rest after */
    int stride;     /* 1 or 2 */
    int Ho, Wo;     /* (H + stride - 1)/stride */
} rn_shortcut_a_desc;
void rn_shortcut_a_forward(float *out, const float *in, const rn_shortcut_a_desc *d);
void rn_shortcut_a_backward(float *din, const float *dout, const rn_shortcut_a_desc *d);

/* ---- pooling ------------------------------------------------------------------------------ */
typedef struct {
    int N, C, H, W;
    int k, stride, pad;
    int Ho, Wo; /* (H + 2*pad - k)/stride + 1 */
} rn_pool_desc;
/* Max pool; padding counts as -inf; ties go to the first maximum in scan order (PyTorch's). */
void rn_maxpool_forward(float *out, const float *in, const rn_pool_desc *d);
void rn_maxpool_backward(float *din, const float *dout, const float *in, const rn_pool_desc *d);
/* Index into in (H, W) of the maximum of output (oy, ox)'s window, or -1 if the window lies
 * wholly in the padding. Padding counts as -inf; the first maximum in scan order wins and a
 * NaN wins over any number, as in PyTorch's CPU kernel. */
int rn_maxpool_window_argmax(const float *x, const rn_pool_desc *d, int oy, int ox);
/* Global average pool: out (N,C) = mean over H*W of in (N,C,HW). */
void rn_avgpool_forward(float *out, const float *in, int N, int C, int HW);
void rn_avgpool_backward(float *din, const float *dout, int N, int C, int HW);

/* ---- linear ------------------------------------------------------------------------------- */
/* out (N,O) = in (N,I) x w(O,I)^T + bias (O). Writes out. */
void rn_linear_forward(float *out, const float *in, const float *w, const float *bias, int N,
                       int I, int O);
void rn_linear_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, int N, int I, int O);

#endif
