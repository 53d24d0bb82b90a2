/*
 * linear.c — the fully connected layer (PyTorch's nn.Linear): out = in x w^T + bias.
 */
#include "ops/ops.h"

/* out (N,O) = in (N,I) x w (O,I)^T + bias (O); bias may be NULL. */
void rn_linear_forward(float *out, const float *in, const float *w, const float *bias, int N,
                       int I, int O) {
    rn_sgemm(false, true, N, O, I, 1.0f, in, I, w, I, 0.0f, out, O);
    if (bias)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++) out[(size_t)n * O + o] += bias[o];
}

/* din (N,I), dw (O,I), dbias (O) += from dout (N,O); any of them may be NULL. */
void rn_linear_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                        const float *w, int N, int I, int O) {
    if (din) rn_sgemm(false, false, N, I, O, 1.0f, dout, O, w, I, 1.0f, din, I);
    if (dw) rn_sgemm(true, false, O, I, N, 1.0f, dout, O, in, I, 1.0f, dw, I);
    if (dbias)
        for (int o = 0; o < O; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * O + o];
            dbias[o] += (float)s;
        }
}
