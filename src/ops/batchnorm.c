/*
 * batchnorm.c — 2-D batch normalization with PyTorch's semantics (BatchNorm2d, CPU).
 *
 * Training normalizes with the batch mean and the biased variance and moves the running
 * statistics toward the batch mean and the unbiased variance; eval normalizes with the running
 * statistics. Each row of H*W values is summed in float vector lanes and the row sums are
 * accumulated in double, which keeps PyTorch's accuracy at vector speed. Channels are
 * independent, so they are split over threads and every result is the same for any nthreads.
 *
 * The _relu versions fuse the ReLU that reads BN's output: the forward pass writes
 * max(y, 0), the backward pass takes the ReLU's output gradient and output and passes the
 * gradient where that output is positive (what rn_relu_backward would have written), saving
 * the ReLU's own pass over memory in each direction.
 */
#include "ops/ops.h"

#include <math.h>

/* out = x*alpha + shift per channel (rn_bn_affine); with relu, max(that, 0). */
static void normalize_channel(float *out, const float *in, double mean, double invstd,
                              float gamma, float beta, const rn_bn_desc *d, int c, bool relu) {
    float alpha, shift;
    rn_bn_affine(mean, invstd, gamma, beta, &alpha, &shift);
    for (int n = 0; n < d->N; n++) {
        const float *x = in + ((size_t)n * d->C + c) * d->HW;
        float *y = out + ((size_t)n * d->C + c) * d->HW;
        if (relu) {
#pragma omp simd
            for (int i = 0; i < d->HW; i++) {
                float v = x[i] * alpha + shift;
                y[i] = v < 0.0f ? 0.0f : v;
            }
        } else {
#pragma omp simd
            for (int i = 0; i < d->HW; i++) y[i] = x[i] * alpha + shift;
        }
    }
}

static void forward_train(float *out, float *save_mean, float *save_invstd, float *running_mean,
                          float *running_var, const float *in, const float *gamma,
                          const float *beta, const rn_bn_desc *d, int nthreads, bool relu) {
    const double m = (double)d->N * d->HW; /* values per channel */
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        double sum = 0;
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            float row = 0;
#pragma omp simd reduction(+ : row)
            for (int i = 0; i < d->HW; i++) row += x[i];
            sum += row;
        }
        const double mean = sum / m;
        const float meanf = (float)mean;
        double ss = 0; /* sum of squared deviations, second pass */
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            float row = 0;
#pragma omp simd reduction(+ : row)
            for (int i = 0; i < d->HW; i++) row += (x[i] - meanf) * (x[i] - meanf);
            ss += row;
        }
        const double invstd = 1.0 / sqrt(ss / m + d->eps);
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        /* PyTorch refuses to train on one value per channel; use the biased variance there
         * rather than dividing by zero. */
        const double unbiased = m > 1 ? ss / (m - 1) : ss / m;
        running_mean[c] = (float)(d->momentum * mean + (1.0 - d->momentum) * running_mean[c]);
        running_var[c] = (float)(d->momentum * unbiased + (1.0 - d->momentum) * running_var[c]);
        normalize_channel(out, in, mean, invstd, gamma[c], beta[c], d, c, relu);
    }
}

static void forward_eval(float *out, float *save_mean, float *save_invstd, const float *in,
                         const float *gamma, const float *beta, const float *running_mean,
                         const float *running_var, const rn_bn_desc *d, int nthreads, bool relu) {
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        const double invstd = rn_bn_eval_invstd(running_var[c], d->eps);
        save_mean[c] = running_mean[c];
        save_invstd[c] = (float)invstd;
        normalize_channel(out, in, running_mean[c], invstd, gamma[c], beta[c], d, c, relu);
    }
}

/* One row's sum(gi) and sum(gi * (x - mean)), where gi is the gradient reaching the BN output:
 * dout, or with a fused ReLU's output y, dout where y > 0 and 0 elsewhere. Each case is its own
 * loop, so each vectorizes (a NULL test inside the loop would keep it scalar). */
static inline void row_sums(const float *x, const float *g, const float *y, float meanf, int HW,
                            float *rs_out, float *rd_out) {
    float rs = 0, rd = 0;
    if (y) {
#pragma omp simd reduction(+ : rs, rd)
        for (int i = 0; i < HW; i++) {
            float gv = g[i], gi = y[i] > 0.0f ? gv : 0.0f; /* loaded first: vectorizes */
            rs += gi;
            rd += gi * (x[i] - meanf);
        }
    } else {
#pragma omp simd reduction(+ : rs, rd)
        for (int i = 0; i < HW; i++) {
            rs += g[i];
            rd += g[i] * (x[i] - meanf);
        }
    }
    *rs_out = rs;
    *rd_out = rd;
}

/* One row of din = (gi - gmean - (x - mean) * k) * scale, added to dx or written over it. */
static inline void row_apply(float *dx, const float *x, const float *g, const float *y,
                             float meanf, float gmean, float k, float scale, int HW,
                             bool accumulate) {
    if (y && accumulate) {
#pragma omp simd
        for (int i = 0; i < HW; i++) {
            float gv = g[i], gi = y[i] > 0.0f ? gv : 0.0f;
            dx[i] += (gi - gmean - (x[i] - meanf) * k) * scale;
        }
    } else if (y) {
#pragma omp simd
        for (int i = 0; i < HW; i++) {
            float gv = g[i], gi = y[i] > 0.0f ? gv : 0.0f;
            dx[i] = (gi - gmean - (x[i] - meanf) * k) * scale;
        }
    } else if (accumulate) {
#pragma omp simd
        for (int i = 0; i < HW; i++) dx[i] += (g[i] - gmean - (x[i] - meanf) * k) * scale;
    } else {
#pragma omp simd
        for (int i = 0; i < HW; i++) dx[i] = (g[i] - gmean - (x[i] - meanf) * k) * scale;
    }
}

static void backward(float *din, float *dgamma, float *dbeta, const float *dout,
                     const float *relu_out, const float *in, const float *save_mean,
                     const float *save_invstd, const float *gamma, const rn_bn_desc *d,
                     bool train, bool accumulate, int nthreads) {
    const double m = (double)d->N * d->HW;
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        const float meanf = (float)mean;
        double sum = 0, dot = 0; /* sum(dout), sum(dout * (x - mean)) */
        for (int n = 0; n < d->N; n++) {
            size_t row = ((size_t)n * d->C + c) * d->HW;
            float rs, rd;
            row_sums(in + row, dout + row, relu_out ? relu_out + row : NULL, meanf, d->HW, &rs,
                     &rd);
            sum += rs;
            dot += rd;
        }
        if (dgamma) dgamma[c] += (float)(dot * invstd);
        if (dbeta) dbeta[c] += (float)sum;
        if (!din) continue;
        const double scale = invstd * gamma[c];
        /* Train: din = (dout - mean(dout) - xhat * mean(dout*xhat)) * gamma * invstd. */
        const float gmean = train ? (float)(sum / m) : 0.0f;
        const float k = train ? (float)(dot * invstd * invstd / m) : 0.0f;
        for (int n = 0; n < d->N; n++) {
            size_t row = ((size_t)n * d->C + c) * d->HW;
            row_apply(din + row, in + row, dout + row, relu_out ? relu_out + row : NULL, meanf,
                      gmean, k, (float)scale, d->HW, accumulate);
        }
    }
}

void rn_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *in,
                                const float *gamma, const float *beta, const rn_bn_desc *d,
                                int nthreads) {
    forward_train(out, save_mean, save_invstd, running_mean, running_var, in, gamma, beta, d,
                  nthreads, false);
}

void rn_batchnorm_forward_eval(float *out, float *save_mean, float *save_invstd, const float *in,
                               const float *gamma, const float *beta, const float *running_mean,
                               const float *running_var, const rn_bn_desc *d, int nthreads) {
    forward_eval(out, save_mean, save_invstd, in, gamma, beta, running_mean, running_var, d,
                 nthreads, false);
}

void rn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *save_mean, const float *save_invstd,
                           const float *gamma, const rn_bn_desc *d, bool train, int nthreads) {
    backward(din, dgamma, dbeta, dout, NULL, in, save_mean, save_invstd, gamma, d, train, true,
             nthreads);
}

void rn_batchnorm_relu_forward_train(float *out, float *save_mean, float *save_invstd,
                                     float *running_mean, float *running_var, const float *in,
                                     const float *gamma, const float *beta, const rn_bn_desc *d,
                                     int nthreads) {
    forward_train(out, save_mean, save_invstd, running_mean, running_var, in, gamma, beta, d,
                  nthreads, true);
}

void rn_batchnorm_relu_forward_eval(float *out, float *save_mean, float *save_invstd,
                                    const float *in, const float *gamma, const float *beta,
                                    const float *running_mean, const float *running_var,
                                    const rn_bn_desc *d, int nthreads) {
    forward_eval(out, save_mean, save_invstd, in, gamma, beta, running_mean, running_var, d,
                 nthreads, true);
}

void rn_batchnorm_relu_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                                const float *out, const float *in, const float *save_mean,
                                const float *save_invstd, const float *gamma,
                                const rn_bn_desc *d, bool train, bool accumulate,
                                int nthreads) {
    backward(din, dgamma, dbeta, dout, out, in, save_mean, save_invstd, gamma, d, train,
             accumulate, nthreads);
}
