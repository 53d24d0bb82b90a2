/*
 * linear_bf16.c — the bf16 classifier (fully connected layer): forward and backward as GEMMs
 * over bf16 pairs, run by the tiles of bf16.h. The table's linear entries take no scratch, so
 * operands are packed in chunks of 64 pairs into buffers on the stack (14 KB), one tile at a
 * time; the layer is small next to the convolutions.
 */
#include "bf16.h"

#define MR RN_BF16_MR
#define NB RN_BF16_NB
#define KC 64 /* pairs per packed chunk */

/* A strided matrix: element (i, j) at p[i*si + j*sj]. */
typedef struct {
    const float *p;
    long si, sj;
} view;

static float at(view v, int i, int j) { return v.p[(long)i * v.si + (long)j * v.sj]; }

/* C (M,N) (+)= bf16(A) (M,L) x bf16(B) (L,N), rows of C ldc floats apart. */
static void gemm(float *C, long ldc, int M, int N, int L, view A, view B, bool accumulate,
                 const rn_bf16_kernels *kn) {
    uint32_t ap[KC * MR], bp[KC * NB];
    const int LP = (L + 1) / 2;
    for (int m0 = 0; m0 < M; m0 += MR)
        for (int n0 = 0; n0 < N; n0 += NB) {
            const int mr = M - m0 < MR ? M - m0 : MR, nc = N - n0 < NB ? N - n0 : NB;
            const int nv = (nc + 15) / 16;
            for (int k0 = 0; k0 < LP; k0 += KC) {
                const int kp = LP - k0 < KC ? LP - k0 : KC;
                for (int k = 0; k < kp; k++) {
                    const int l = 2 * (k0 + k);
                    const bool two = l + 1 < L;
                    for (int m = 0; m < MR; m++)
                        ap[k * MR + m] = m < mr ? rn_bf16_pair(at(A, m0 + m, l), two ? at(A, m0 + m, l + 1) : 0.0f) : 0;
                    for (int n = 0; n < 16 * nv; n++)
                        bp[k * 16 * nv + n] = n < nc ? rn_bf16_pair(at(B, l, n0 + n), two ? at(B, l + 1, n0 + n) : 0.0f) : 0;
                }
                rn_bf16_tile_args t = {
                    .c = C + (long)m0 * ldc + n0, .ldc = ldc, .a = ap, .b = bp, .b_stride = 16 * nv,
                    .kp = kp, .nv = nv, .ncols = nc, .mr = mr, .accumulate = accumulate || k0 > 0,
                };
                kn->tile(&t);
            }
        }
}

void rn_cpu_bf16_linear_forward(float *out, const float *in, const float *w, const float *bias,
                                int N, int I, int O, rn_bf16_level level) {
    if (N <= 0 || O <= 0) return;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) out[(size_t)n * O + o] = bias ? bias[o] : 0.0f;
    if (I <= 0) return;
    /* out (N,O) += in (N,I) x w^T (I,O) */
    gemm(out, O, N, O, I, (view){in, I, 1}, (view){w, 1, I}, true, rn_bf16_kernels_for(level));
}

void rn_cpu_bf16_linear_backward(float *din, float *dw, float *dbias, const float *dout,
                                 const float *in, const float *w, int N, int I, int O,
                                 rn_bf16_level level) {
    const rn_bf16_kernels *kn = rn_bf16_kernels_for(level);
    if (dbias)
        for (int o = 0; o < O; o++) {
            float s = 0.0f;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o];
            dbias[o] += s;
        }
    if (N <= 0 || I <= 0 || O <= 0) return;
    /* din (N,I) += dout (N,O) x w (O,I) */
    if (din) gemm(din, I, N, I, O, (view){dout, O, 1}, (view){w, I, 1}, true, kn);
    /* dw (O,I) += dout^T (O,N) x in (N,I) */
    if (dw) gemm(dw, I, O, I, N, (view){dout, 1, O}, (view){in, I, 1}, true, kn);
}
