/*
 * batchnorm.c — 2-D batch normalization with PyTorch's semantics (BatchNorm2d, CPU).
 *
 * Training normalizes with the batch mean and the biased variance and moves the running
 * statistics toward the batch mean and the unbiased variance; eval normalizes with the running
 * statistics. Statistics are accumulated in double, as PyTorch does on the CPU. Channels are
 * independent, so they are split over threads and every result is the same for any nthreads.
 */
#include "ops/ops.h"

#include <math.h>

/* out = x*alpha + shift per channel, with alpha = gamma*invstd and shift = beta - mean*alpha
 * (PyTorch's form). */
static void normalize_channel(float *out, const float *in, double mean, double invstd,
                              float gamma, float beta, const rn_bn_desc *d, int c) {
    const float alpha = (float)(invstd * gamma);
    const float shift = (float)(beta - mean * invstd * gamma);
    for (int n = 0; n < d->N; n++) {
        const float *x = in + ((size_t)n * d->C + c) * d->HW;
        float *y = out + ((size_t)n * d->C + c) * d->HW;
        for (int i = 0; i < d->HW; i++) y[i] = x[i] * alpha + shift;
    }
}

void rn_batchnorm_forward_train(float *out, float *save_mean, float *save_invstd,
                                float *running_mean, float *running_var, const float *in,
                                const float *gamma, const float *beta, const rn_bn_desc *d,
                                int nthreads) {
    const double m = (double)d->N * d->HW; /* values per channel */
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        double sum = 0;
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            for (int i = 0; i < d->HW; i++) sum += x[i];
        }
        const double mean = sum / m;
        double ss = 0; /* sum of squared deviations, second pass */
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            for (int i = 0; i < d->HW; i++) ss += (x[i] - mean) * (x[i] - mean);
        }
        const double invstd = 1.0 / sqrt(ss / m + d->eps);
        save_mean[c] = (float)mean;
        save_invstd[c] = (float)invstd;
        /* PyTorch refuses to train on one value per channel; use the biased variance there
         * rather than dividing by zero. */
        const double unbiased = m > 1 ? ss / (m - 1) : ss / m;
        running_mean[c] = (float)(d->momentum * mean + (1.0 - d->momentum) * running_mean[c]);
        running_var[c] = (float)(d->momentum * unbiased + (1.0 - d->momentum) * running_var[c]);
        normalize_channel(out, in, mean, invstd, gamma[c], beta[c], d, c);
    }
}

void rn_batchnorm_forward_eval(float *out, float *save_mean, float *save_invstd, const float *in,
                               const float *gamma, const float *beta, const float *running_mean,
                               const float *running_var, const rn_bn_desc *d, int nthreads) {
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        const double invstd = 1.0 / sqrt((double)running_var[c] + d->eps);
        save_mean[c] = running_mean[c];
        save_invstd[c] = (float)invstd;
        normalize_channel(out, in, running_mean[c], invstd, gamma[c], beta[c], d, c);
    }
}

void rn_batchnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                           const float *in, const float *save_mean, const float *save_invstd,
                           const float *gamma, const rn_bn_desc *d, bool train, int nthreads) {
    const double m = (double)d->N * d->HW;
#pragma omp parallel for num_threads(nthreads < 1 ? 1 : nthreads) schedule(static)
    for (int c = 0; c < d->C; c++) {
        const double mean = save_mean[c], invstd = save_invstd[c];
        double sum = 0, dot = 0; /* sum(dout), sum(dout * (x - mean)) */
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            const float *g = dout + ((size_t)n * d->C + c) * d->HW;
            for (int i = 0; i < d->HW; i++) {
                sum += g[i];
                dot += g[i] * (x[i] - mean);
            }
        }
        if (dgamma) dgamma[c] += (float)(dot * invstd);
        if (dbeta) dbeta[c] += (float)sum;
        if (!din) continue;
        const double scale = invstd * gamma[c];
        /* Train: din = (dout - mean(dout) - xhat * mean(dout*xhat)) * gamma * invstd. */
        const double gmean = train ? sum / m : 0.0;
        const double k = train ? dot * invstd * invstd / m : 0.0;
        for (int n = 0; n < d->N; n++) {
            const float *x = in + ((size_t)n * d->C + c) * d->HW;
            const float *g = dout + ((size_t)n * d->C + c) * d->HW;
            float *dx = din + ((size_t)n * d->C + c) * d->HW;
            for (int i = 0; i < d->HW; i++)
                dx[i] += (float)((g[i] - gmean - (x[i] - mean) * k) * scale);
        }
    }
}
