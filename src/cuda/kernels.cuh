/*
 * kernels.cuh — the GPU kernels besides cuDNN's convolutions and cuBLAS's matrix products.
 *
 * Activations are NHWC (channels innermost), of element type T: float, or bf16 under
 * --precision bf16. Backward kernels write an input gradient when their node is the first to
 * reach it in the backward pass and accumulate (+=, flag acc) otherwise, so no gradient slot
 * needs clearing; parameter gradients are written. BN statistics, parameters and their
 * gradients are always fp32; BN sums are taken in double.
 */
#ifndef RN_CUDA_KERNELS_CUH
#define RN_CUDA_KERNELS_CUH

#include "common.cuh"

/* ---- elementwise -------------------------------------------------------------------------- */

template <typename T> __global__ void k_relu_fwd(T *out, const T *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = to_f(in[i]);
        out[i] = from_f<T>(v > 0.f ? v : 0.f);
    }
}
/* din (acc: +=) dout where out > 0. */
template <typename T>
__global__ void k_relu_bwd(T *din, int acc, const T *dout, const T *out, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = to_f(out[i]) > 0.f ? to_f(dout[i]) : 0.f;
        din[i] = from_f<T>(acc ? to_f(din[i]) + g : g);
    }
}
template <typename T> __global__ void k_add_fwd(T *out, const T *a, const T *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}
/* da (acc_a: +=) dout and db (acc_b: +=) dout. */
template <typename T>
__global__ void k_add_bwd(T *da, int acc_a, T *db, int acc_b, const T *dout, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = to_f(dout[i]);
        da[i] = from_f<T>(acc_a ? to_f(da[i]) + g : g);
        db[i] = from_f<T>(acc_b ? to_f(db[i]) + g : g);
    }
}
template <typename A, typename B> __global__ void k_cast(B *out, const A *in, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_f<B>(to_f(in[i]));
}
/* Sum of squares of n elements, added to *acc (double). */
template <typename T> __global__ void k_sumsq(double *acc, const T *x, size_t n) {
    __shared__ float part[32];
    float s = 0.f;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = to_f(x[i]);
        s += v * v;
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += part[w];
        atomicAdd(acc, t);
    }
}

/* ---- batch normalization (NHWC: channel = index % C, M = N*H*W rows, C % 4 == 0) ---------- */

/* Four consecutive elements as floats (16 bytes of fp32, 8 of bf16). */
__device__ __forceinline__ void load4(const float *p, float v[4]) {
    float4 t = *(const float4 *)p;
    v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
}
__device__ __forceinline__ void load4(const bf16 *p, float v[4]) {
    uint2 t = *(const uint2 *)p;
    float2 a = __bfloat1622float2(*(const __nv_bfloat162 *)&t.x);
    float2 b = __bfloat1622float2(*(const __nv_bfloat162 *)&t.y);
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}
__device__ __forceinline__ void store4(float *p, const float v[4]) {
    *(float4 *)p = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store4(bf16 *p, const float v[4]) {
    __nv_bfloat162 a = __floats2bfloat162_rn(v[0], v[1]), b = __floats2bfloat162_rn(v[2], v[3]);
    uint2 t;
    t.x = *(const unsigned *)&a;
    t.y = *(const unsigned *)&b;
    *(uint2 *)p = t;
}

/* Per-channel column sums: blockDim.x threads across the row (4 channels each, at most 128
 * channels per block row), blockDim.y = 256 / blockDim.x row lanes, grid (C / (4 *
 * blockDim.x), P), about 8 rows per thread. */
struct bn_grid {
    dim3 block, grid;
    int P;
};
static inline bn_grid bn_grid_for(int C, size_t M) {
    int cw = C / 4 < 32 ? C / 4 : 32;
    int lanes = 256 / cw;
    size_t P = (M + (size_t)lanes * 8 - 1) / ((size_t)lanes * 8);
    if (P > 1024) P = 1024;
    if (P < 1) P = 1;
    bn_grid g;
    g.block = dim3(cw, lanes);
    g.grid = dim3(C / 4 / cw, (unsigned)P);
    g.P = (int)P;
    return g;
}
#define BN_SHARED (2 * 256 * 4 * sizeof(double))

/* The gradient reaching a BN output when a ReLU follows it in place: gy where the ReLU's
 * output y is positive. */
__device__ __forceinline__ float masked(float gy, float y) { return y > 0.f ? gy : 0.f; }

/* Partial sums over this block's rows, in double, to part[p][c] and part[P + p][c] (part
 * holds 2*P*C doubles).
 *   mode 0 (forward statistics): a = x, sums of a and a^2.
 *   mode 1 (backward): g = dy, or masked(gy, y) when y is given; sums of g and g * xhat,
 *   xhat = (x - mean) * invstd from stat. With dres (the residual's gradient of a fused
 *   BN + add + ReLU) it also writes (acc_res: adds) g there. */
template <typename T>
__global__ void k_bn_part(double *part, int mode, const T *x, const T *dy, const T *y,
                          T *dres, int acc_res, const float *stat, int C, size_t M) {
    extern __shared__ double shd[];
    const int c0 = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
    double s[4] = {0, 0, 0, 0}, q[4] = {0, 0, 0, 0};
    float mean[4] = {0, 0, 0, 0}, inv[4] = {0, 0, 0, 0};
    if (mode == 1)
        for (int k = 0; k < 4; k++) mean[k] = stat[c0 + k], inv[k] = stat[C + c0 + k];
    for (size_t r = blockIdx.y * (size_t)blockDim.y + threadIdx.y; r < M;
         r += (size_t)gridDim.y * blockDim.y) {
        const size_t i = r * C + c0;
        float a[4];
        load4(x + i, a);
        if (mode == 0) {
            for (int k = 0; k < 4; k++) s[k] += a[k], q[k] += (double)a[k] * a[k];
        } else {
            float g[4];
            load4(dy + i, g);
            if (y) {
                float yy[4];
                load4(y + i, yy);
                for (int k = 0; k < 4; k++) g[k] = masked(g[k], yy[k]);
                if (dres) {
                    if (acc_res) {
                        float old[4];
                        load4(dres + i, old);
                        for (int k = 0; k < 4; k++) old[k] += g[k];
                        store4(dres + i, old);
                    } else {
                        store4(dres + i, g);
                    }
                }
            }
            for (int k = 0; k < 4; k++)
                s[k] += g[k], q[k] += (double)g[k] * ((a[k] - mean[k]) * inv[k]);
        }
    }
    const int t = threadIdx.y * blockDim.x + threadIdx.x, nt = blockDim.x * blockDim.y;
    for (int k = 0; k < 4; k++) {
        shd[4 * t + k] = s[k];
        shd[4 * (nt + t) + k] = q[k];
    }
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int ly = 1; ly < (int)blockDim.y; ly++) {
            const int u = ly * blockDim.x + threadIdx.x;
            for (int k = 0; k < 4; k++) s[k] += shd[4 * u + k], q[k] += shd[4 * (nt + u) + k];
        }
        for (int k = 0; k < 4; k++) {
            part[(size_t)blockIdx.y * C + c0 + k] = s[k];
            part[(size_t)(gridDim.y + blockIdx.y) * C + c0 + k] = q[k];
        }
    }
}

/* Sums the P partials of channel c (block (32, 8), grid ceil(C / 32)); thread (x, 0) gets
 * the totals. */
__device__ __forceinline__ bool bn_total(const double *part, int P, int C, double *s,
                                         double *q) {
    __shared__ double sh[2][8][32];
    const int c = blockIdx.x * 32 + threadIdx.x;
    double a = 0, b = 0;
    if (c < C)
        for (int p = threadIdx.y; p < P; p += 8) {
            a += part[(size_t)p * C + c];
            b += part[(size_t)(P + p) * C + c];
        }
    sh[0][threadIdx.y][threadIdx.x] = a;
    sh[1][threadIdx.y][threadIdx.x] = b;
    __syncthreads();
    if (threadIdx.y != 0 || c >= C) return false;
    for (int y = 1; y < 8; y++) a += sh[0][y][threadIdx.x], b += sh[1][y][threadIdx.x];
    *s = a;
    *q = b;
    return true;
}

/* Training-mode statistics from the partial sums: the batch mean and 1/sqrt(var + eps) into
 * stat[0..C) and stat[C..2C), the per-channel scale and shift of the normalization into
 * stat[2C..3C) and stat[3C..4C); running statistics updated (unbiased variance). */
static __global__ void k_bn_stats_final(float *stat, float *run_mean, float *run_var,
                                        const double *part, int P, const float *gamma,
                                        const float *beta, int C, size_t M, float eps,
                                        float momentum) {
    double s, ss;
    if (!bn_total(part, P, C, &s, &ss)) return;
    const int c = blockIdx.x * 32 + threadIdx.x;
    double mean = s / (double)M, var = ss / (double)M - mean * mean;
    if (var < 0) var = 0;
    float invstd = (float)(1.0 / sqrt(var + (double)eps));
    stat[c] = (float)mean;
    stat[C + c] = invstd;
    float scale = gamma[c] * invstd;
    stat[2 * C + c] = scale;
    stat[3 * C + c] = beta[c] - (float)mean * scale;
    double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
    run_mean[c] = (1.f - momentum) * run_mean[c] + momentum * (float)mean;
    run_var[c] = (1.f - momentum) * run_var[c] + momentum * (float)unbiased;
}

/* Eval mode: the same four per-channel arrays from the running statistics. */
static __global__ void k_bn_eval_stats(float *stat, const float *run_mean, const float *run_var,
                                       const float *gamma, const float *beta, int C, float eps) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float invstd = 1.f / sqrtf(run_var[c] + eps);
    stat[c] = run_mean[c];
    stat[C + c] = invstd;
    float scale = gamma[c] * invstd;
    stat[2 * C + c] = scale;
    stat[3 * C + c] = beta[c] - run_mean[c] * scale;
}

/* out = x * scale[c] + shift[c], plus res when given, then max(., 0) when relu: a BN alone,
 * BN + ReLU, or BN + residual add + ReLU in one pass. */
template <typename T>
__global__ void k_bn_apply(T *out, const T *x, const T *res, int relu, const float *stat, int C,
                           size_t n) {
    const float *scale = stat + 2 * C, *shift = stat + 3 * C;
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n / 4;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = 4 * j;
        const int c = (int)(i % C);
        float v[4], r[4];
        load4(x + i, v);
        if (res) load4(res + i, r);
        for (int k = 0; k < 4; k++) {
            v[k] = v[k] * scale[c + k] + shift[c + k];
            if (res) v[k] += r[k];
            if (relu) v[k] = v[k] > 0.f ? v[k] : 0.f;
        }
        store4(out + i, v);
    }
}

/* dgamma = sum g*xhat, dbeta = sum g (written) and coef[c], coef[C+c], coef[2C+c] such that
 * din = coef0 * g + coef1 * (x - mean) + coef2: the batch-statistics formula in training mode,
 * din = gamma * invstd * g in eval mode. */
static __global__ void k_bn_bwd_final(float *dgamma, float *dbeta, float *coef,
                                      const double *part, int P, const float *stat,
                                      const float *gamma, int C, size_t M, int train) {
    double s, sx;
    if (!bn_total(part, P, C, &s, &sx)) return;
    const int c = blockIdx.x * 32 + threadIdx.x;
    dgamma[c] = (float)sx;
    dbeta[c] = (float)s;
    const double invstd = stat[C + c], k = (double)gamma[c] * invstd;
    coef[c] = (float)k;
    coef[C + c] = train ? (float)(-k * invstd * sx / (double)M) : 0.f;
    coef[2 * C + c] = train ? (float)(-k * s / (double)M) : 0.f;
}

/* din (acc: +=) coef0 * g + coef1 * (x - mean) + coef2, g = dy or masked(dy, y). */
template <typename T>
__global__ void k_bn_bwd_apply(T *din, int acc, const T *dy, const T *y, const T *x,
                               const float *coef, const float *stat, int C, size_t n) {
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n / 4;
         j += (size_t)gridDim.x * blockDim.x) {
        const size_t i = 4 * j;
        const int c = (int)(i % C);
        float g[4], a[4], o[4];
        load4(dy + i, g);
        load4(x + i, a);
        if (y) {
            float yy[4];
            load4(y + i, yy);
            for (int k = 0; k < 4; k++) g[k] = masked(g[k], yy[k]);
        }
        if (acc) load4(din + i, o);
        for (int k = 0; k < 4; k++) {
            float v = coef[c + k] * g[k] + coef[C + c + k] * (a[k] - stat[c + k]) +
                      coef[2 * C + c + k];
            o[k] = acc ? o[k] + v : v;
        }
        store4(din + i, o);
    }
}

/* ---- shortcut option A, pools (NHWC) ------------------------------------------------------- */

/* out (N, Ho, Wo, K): the input subsampled by stride, channels zero-padded to K
 * ((K - C) / 2 zero channels before). */
template <typename T>
static __global__ void k_shortcut_a_fwd(T *out, const T *in, int N, int C, int H, int W, int K,
                                 int stride, int Ho, int Wo) {
    const size_t n = (size_t)N * Ho * Wo * K;
    const int lo = (K - C) / 2;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int k = (int)(i % K);
        size_t p = i / K;
        int x = (int)(p % Wo), y = (int)(p / Wo % Ho), b = (int)(p / ((size_t)Wo * Ho));
        int c = k - lo;
        out[i] = (c >= 0 && c < C)
                     ? in[(((size_t)b * H + (size_t)y * stride) * W + (size_t)x * stride) * C + c]
                     : from_f<T>(0.f);
    }
}
/* Gathers per input element: din (acc: +=) the gradient of the output it was copied to, or 0
 * for the elements the subsampling dropped. */
template <typename T>
static __global__ void k_shortcut_a_bwd(T *din, int acc, const T *dout, int N, int C, int H,
                                        int W, int K, int stride, int Ho, int Wo) {
    const size_t n = (size_t)N * H * W * C;
    const int lo = (K - C) / 2;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t p = i / C;
        int x = (int)(p % W), y = (int)(p / W % H), b = (int)(p / ((size_t)W * H));
        float g = 0.f;
        if (y % stride == 0 && x % stride == 0)
            g = to_f(dout[(((size_t)b * Ho + y / stride) * Wo + x / stride) * K + lo + c]);
        din[i] = from_f<T>(acc ? to_f(din[i]) + g : g);
    }
}

/* The index (y * W + x) of the first maximum of one pooling window, -1 if it is all padding. */
template <typename T>
__device__ int window_argmax(const T *in, int b, int c, int C, int H, int W, int oy, int ox,
                             int k, int stride, int pad, float *best) {
    int arg = -1;
    float m = -INFINITY;
    for (int dy = 0; dy < k; dy++) {
        int y = oy * stride - pad + dy;
        if (y < 0 || y >= H) continue;
        for (int dx = 0; dx < k; dx++) {
            int x = ox * stride - pad + dx;
            if (x < 0 || x >= W) continue;
            float v = to_f(in[(((size_t)b * H + y) * W + x) * C + c]);
            if (arg < 0 || v > m) {
                m = v;
                arg = y * W + x;
            }
        }
    }
    *best = m;
    return arg;
}
template <typename T>
static __global__ void k_maxpool_fwd(T *out, const T *in, int N, int C, int H, int W, int k,
                              int stride, int pad, int Ho, int Wo) {
    const size_t n = (size_t)N * Ho * Wo * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t p = i / C;
        int x = (int)(p % Wo), y = (int)(p / Wo % Ho), b = (int)(p / ((size_t)Wo * Ho));
        float m;
        window_argmax(in, b, c, C, H, W, y, x, k, stride, pad, &m);
        out[i] = from_f<T>(m);
    }
}
/* Gathers, per input element, the gradients of the windows whose maximum it is (no atomics,
 * so the result does not depend on scheduling). */
template <typename T>
static __global__ void k_maxpool_bwd(T *din, int acc, const T *dout, const T *in, int N, int C,
                                     int H, int W, int k, int stride, int pad, int Ho, int Wo) {
    const size_t n = (size_t)N * H * W * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t p = i / C;
        int x = (int)(p % W), y = (int)(p / W % H), b = (int)(p / ((size_t)W * H));
        int oy0 = (y + pad - k + stride) / stride, oy1 = (y + pad) / stride;
        int ox0 = (x + pad - k + stride) / stride, ox1 = (x + pad) / stride;
        if (y + pad - k + 1 < 0) oy0 = 0;
        if (x + pad - k + 1 < 0) ox0 = 0;
        float g = 0.f;
        for (int oy = oy0; oy <= oy1 && oy < Ho; oy++)
            for (int ox = ox0; ox <= ox1 && ox < Wo; ox++) {
                float m;
                if (window_argmax(in, b, c, C, H, W, oy, ox, k, stride, pad, &m) == y * W + x)
                    g += to_f(dout[(((size_t)b * Ho + oy) * Wo + ox) * C + c]);
            }
        din[i] = from_f<T>(acc ? to_f(din[i]) + g : g);
    }
}

/* out (N, C) fp32 = mean over HW of in (N, HW, C). */
template <typename T>
static __global__ void k_avgpool_fwd(float *out, const T *in, int N, int C, int HW) {
    const size_t n = (size_t)N * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t b = i / C;
        float s = 0.f;
        for (int p = 0; p < HW; p++) s += to_f(in[(b * HW + p) * C + c]);
        out[i] = s / (float)HW;
    }
}
template <typename T>
static __global__ void k_avgpool_bwd(T *din, int acc, const float *dout, int N, int C, int HW) {
    const size_t n = (size_t)N * HW * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t b = i / ((size_t)HW * C);
        float g = dout[b * C + c] / (float)HW;
        din[i] = from_f<T>(acc ? to_f(din[i]) + g : g);
    }
}

/* ---- classifier helpers, loss -------------------------------------------------------------- */

/* out (N, O) = bias broadcast (the matrix product then adds with beta = 1). */
static __global__ void k_bias_fill(float *out, const float *bias, int N, int O) {
    const size_t n = (size_t)N * O;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias ? bias[i % O] : 0.f;
}
/* dbias[o] = sum over n of dout[n][o] (written). */
static __global__ void k_bias_grad(float *dbias, const float *dout, int N, int O) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= O) return;
    float s = 0.f;
    for (int i = 0; i < N; i++) s += dout[(size_t)i * O + o];
    dbias[o] = s;
}

/* Softmax cross-entropy of row i (one warp per row), PyTorch's CrossEntropyLoss with label
 * smoothing eps: per row (1-eps)*nll + eps*mean_k(-log p_k). When dlogits is not NULL it gets
 * (p - target) / N. Adds the row's loss to *loss_sum and 1 to *correct when the first maximum
 * is the label. With rank5/confusion (evaluation) also counts top-5 hits (ties to the lower
 * index, as rn_evaluate) and confusion[label][pred]. A row without an ordered maximum (every
 * logit NaN) counts as wrong and stays out of the confusion matrix, as in rn_evaluate; so does
 * a NaN label logit for top-5. Rows >= n are skipped. */
static __global__ void k_softmax_xent(float *dlogits, const float *logits, const int *labels, int n,
                               int N, int K, float eps, double *loss_sum,
                               unsigned long long *correct, unsigned long long *top5,
                               unsigned long long *confusion) {
    const int lane = threadIdx.x & 31;
    const int i = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (i >= n) return;
    const float *z = logits + (size_t)i * K;
    const int y = labels[i];
    float m = -INFINITY;
    int arg = K;
    for (int k = lane; k < K; k += 32)
        if (z[k] > m) {
            m = z[k];
            arg = k;
        }
    for (int o = 16; o > 0; o >>= 1) {
        float m2 = __shfl_down_sync(0xffffffffu, m, o);
        int a2 = __shfl_down_sync(0xffffffffu, arg, o);
        if (m2 > m || (m2 == m && a2 < arg)) {
            m = m2;
            arg = a2;
        }
    }
    m = __shfl_sync(0xffffffffu, m, 0);
    arg = __shfl_sync(0xffffffffu, arg, 0);
    double se = 0, sz = 0;
    int above = 0;
    const float zy = z[y];
    for (int k = lane; k < K; k += 32) {
        se += exp((double)z[k] - m);
        sz += z[k];
        above += z[k] > zy || (z[k] == zy && k < y);
    }
    for (int o = 16; o > 0; o >>= 1) {
        se += __shfl_down_sync(0xffffffffu, se, o);
        sz += __shfl_down_sync(0xffffffffu, sz, o);
        above += __shfl_down_sync(0xffffffffu, above, o);
    }
    se = __shfl_sync(0xffffffffu, se, 0);
    const double lse = m + log(se);
    if (dlogits) {
        const float off = eps / (float)K;
        for (int k = lane; k < K; k += 32) {
            float p = (float)exp((double)z[k] - lse);
            float target = k == y ? (1.f - eps) + off : off;
            dlogits[(size_t)i * K + k] = (p - target) / (float)N;
        }
    }
    if (lane == 0) {
        double nll = lse - zy, smooth = lse - sz / K;
        atomicAdd(loss_sum, (1.0 - eps) * nll + eps * smooth);
        const bool ranked = arg < K; /* arg stays K when no logit compares greater than -inf */
        if (ranked && arg == y) atomicAdd(correct, 1ull);
        if (top5 && ranked && !isnan(zy) && above < 5) atomicAdd(top5, 1ull);
        if (confusion && ranked) atomicAdd(&confusion[(size_t)y * K + arg], 1ull);
    }
}

/* ---- SGD (torch.optim.SGD, dampening 0) over the whole parameter block --------------------- */

/* lr = lrs[*step]; decay[i] says whether weight decay applies to parameter i; low (may be
 * NULL) receives a bf16 copy of the updated weights. */
static __global__ void k_sgd(float *w, float *v, const float *g, const uint8_t *decay, bf16 *low,
                      size_t n, const float *lrs, int64_t n_lrs, const int64_t *step,
                      float momentum, float wd, int nesterov) {
    const int64_t s = *step;
    const float lr = lrs[s < n_lrs ? s : n_lrs - 1];
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float d = g[i], wi = w[i];
        if (decay[i] && wd != 0.f) d += wd * wi;
        if (momentum != 0.f) {
            float vi = momentum * v[i] + d;
            v[i] = vi;
            d = nesterov ? d + momentum * vi : vi;
        }
        wi -= lr * d;
        w[i] = wi;
        if (low) low[i] = __float2bfloat16(wi);
    }
}
static __global__ void k_step_advance(int64_t *step) { *step += 1; }

#endif
