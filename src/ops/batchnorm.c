/*
 * batchnorm.c — 2-D batch normalization with PyTorch's semantics (BatchNorm2d, CPU).
 *
 * Training normalizes with the batch mean and the biased variance and moves the running
 * statistics toward the batch mean and the unbiased variance; eval normalizes with the running
 * statistics. Each row of H*W values is summed in float vector lanes and the row sums are
 * accumulated in double, which keeps PyTorch's accuracy at vector speed. Channels are
 * independent, so they are split over threads and every result is the same for any nthreads.
 *
 * With d->sync (synchronized BN) a training pass takes its statistics over every process's
 * images: the per-channel sums go to the processes' sum between computing and using them
 * (see rn_bn_sync in ops.h), so channels are done in phases instead of one at a time.
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

/* A channel's sum of x: each row summed in float lanes, the row sums in double. */
static double channel_sum(const float *in, const rn_bn_desc *d, int c) {
    double sum = 0;
    for (int n = 0; n < d->N; n++) {
        const float *x = in + ((size_t)n * d->C + c) * d->HW;
        float row = 0;
#pragma omp simd reduction(+ : row)
        for (int i = 0; i < d->HW; i++) row += x[i];
        sum += row;
    }
    return sum;
}

/* A channel's sum of squared deviations (x - meanf)^2, rows as in channel_sum. */
static double channel_sqdev(const float *in, const rn_bn_desc *d, int c, float meanf) {
    double ss = 0;
    for (int n = 0; n < d->N; n++) {
        const float *x = in + ((size_t)n * d->C + c) * d->HW;
        float row = 0;
#pragma omp simd reduction(+ : row)
        for (int i = 0; i < d->HW; i++) row += (x[i] - meanf) * (x[i] - meanf);
        ss += row;
    }
    return ss;
}

/* The rest of a training pass for channel c, given its batch mean and the sum of squared
 * deviations ss over m values: the saved and the running statistics, and the output. */
static void finish_channel(float *out, float *save_mean, float *save_invstd, float *running_mean,
                           float *running_var, const float *in, const float *gamma,
                           const float *beta, const rn_bn_desc *d, int c, bool relu,
                           double mean, double ss, double m) {
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

/* d->sync's sum of buf (n doubles) over the processes; its first failure kept. */
static void sync_sum(rn_bn_sync *s, double *buf, size_t n) {
    rn_status st = s->sum(s->user, buf, n);
    if (st != RN_OK && s->status == RN_OK) s->status = st;
}

static void forward_train(float *out, float *save_mean, float *save_invstd, float *running_mean,
                          float *running_var, const float *in, const float *gamma,
                          const float *beta, const rn_bn_desc *d, int nthreads, bool relu) {
    const int nt = nthreads < 1 ? 1 : nthreads;
    if (!d->sync) {
        const double m = (double)d->N * d->HW; /* values per channel */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int c = 0; c < d->C; c++) {
            const double mean = channel_sum(in, d, c) / m;
            const double ss = channel_sqdev(in, d, c, (float)mean); /* second pass */
            finish_channel(out, save_mean, save_invstd, running_mean, running_var, in, gamma,
                           beta, d, c, relu, mean, ss, m);
        }
        return;
    }
    /* Over every process's images: the sums and the count, then the squared deviations from
     * the global mean, each summed over the processes before it is used. */
    const int C = d->C;
    double *mean = d->sync->buf, *ss = mean + C + 1, *m = mean + C;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < C; c++) mean[c] = channel_sum(in, d, c);
    *m = (double)d->N * d->HW;
    sync_sum(d->sync, mean, (size_t)C + 1);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < C; c++) {
        mean[c] /= *m;
        ss[c] = channel_sqdev(in, d, c, (float)mean[c]);
    }
    sync_sum(d->sync, ss, (size_t)C);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < C; c++)
        finish_channel(out, save_mean, save_invstd, running_mean, running_var, in, gamma, beta,
                       d, c, relu, mean[c], ss[c], *m);
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

/* Channel c's sum(gi) and sum(gi * (x - mean)) (gi: see row_sums), rows summed in double. */
static void channel_grad_sums(const float *dout, const float *relu_out, const float *in,
                              const rn_bn_desc *d, int c, float meanf, double *sum,
                              double *dot) {
    *sum = *dot = 0;
    for (int n = 0; n < d->N; n++) {
        size_t row = ((size_t)n * d->C + c) * d->HW;
        float rs, rd;
        row_sums(in + row, dout + row, relu_out ? relu_out + row : NULL, meanf, d->HW, &rs, &rd);
        *sum += rs;
        *dot += rd;
    }
}

/* Channel c's din from the sums of its gradient over m values (see channel_grad_sums). */
static void channel_din(float *din, const float *dout, const float *relu_out, const float *in,
                        const float *save_mean, const float *save_invstd, const float *gamma,
                        const rn_bn_desc *d, int c, double sum, double dot, double m, bool train,
                        bool accumulate) {
    const double mean = save_mean[c], invstd = save_invstd[c];
    const double scale = invstd * gamma[c];
    /* Train: din = (dout - mean(dout) - xhat * mean(dout*xhat)) * gamma * invstd. */
    const float gmean = train ? (float)(sum / m) : 0.0f;
    const float k = train ? (float)(dot * invstd * invstd / m) : 0.0f;
    for (int n = 0; n < d->N; n++) {
        size_t row = ((size_t)n * d->C + c) * d->HW;
        row_apply(din + row, in + row, dout + row, relu_out ? relu_out + row : NULL,
                  (float)mean, gmean, k, (float)scale, d->HW, accumulate);
    }
}

static void backward(float *din, float *dgamma, float *dbeta, const float *dout,
                     const float *relu_out, const float *in, const float *save_mean,
                     const float *save_invstd, const float *gamma, const rn_bn_desc *d,
                     bool train, bool accumulate, int nthreads) {
    const int nt = nthreads < 1 ? 1 : nthreads, C = d->C;
    const double m = (double)d->N * d->HW;
    if (!(train && d->sync)) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int c = 0; c < C; c++) {
            double sum, dot; /* sum(dout), sum(dout * (x - mean)) */
            channel_grad_sums(dout, relu_out, in, d, c, save_mean[c], &sum, &dot);
            if (dgamma) dgamma[c] += (float)(dot * save_invstd[c]);
            if (dbeta) dbeta[c] += (float)sum;
            if (din)
                channel_din(din, dout, relu_out, in, save_mean, save_invstd, gamma, d, c, sum,
                            dot, m, train, accumulate);
        }
        return;
    }
    /* Over every process's images: dgamma and dbeta from this process's sums (the gradient
     * average adds them up), din from the sums and count summed over the processes. */
    double *sum = d->sync->buf, *dot = sum + C;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < C; c++) {
        channel_grad_sums(dout, relu_out, in, d, c, save_mean[c], &sum[c], &dot[c]);
        if (dgamma) dgamma[c] += (float)(dot[c] * save_invstd[c]);
        if (dbeta) dbeta[c] += (float)sum[c];
    }
    dot[C] = m;
    sync_sum(d->sync, sum, 2 * (size_t)C + 1);
    if (!din) return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int c = 0; c < C; c++)
        channel_din(din, dout, relu_out, in, save_mean, save_invstd, gamma, d, c, sum[c], dot[c],
                    dot[C], train, accumulate);
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
