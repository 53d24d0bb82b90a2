/*
 * backend_bf16.c — the "cpu-bf16" backend: convolutions and the classifier take their inputs
 * rounded to bf16 and sum in fp32 (conv_bf16.c, linear_bf16.c; PyTorch's bf16 autocast
 * contract), at the level rn_cpu_bf16_level() picks (AMX, AVX512_BF16 or portable C, lowered
 * by RN_ISA). Every other op (batch norm, ReLU, residual add, their fusions, pools, the
 * shortcut) is the fp32 kernel the "cpu" backend runs. Activations stay fp32 between layers.
 */
#include "bf16.h"
#include "cpu.h" /* rn_cpu_maxpool_* */

const rn_bf16_kernels *rn_bf16_kernels_for(rn_bf16_level level) {
    if (level > rn_cpu_bf16_supported()) level = rn_cpu_bf16_supported();
#if defined(__x86_64__)
    if (level >= RN_BF16_AMX) return &rn_bf16_kernels_amx;
    if (level >= RN_BF16_AVX512BF16) return &rn_bf16_kernels_avx512bf16;
#endif
    return &rn_bf16_kernels_portable;
}

static size_t conv_scratch(const rn_conv_desc *d, int nthreads) {
    return rn_cpu_bf16_conv2d_scratch_floats(d, nthreads);
}
static void conv_forward(float *out, const float *in, const float *w, const float *bias,
                         const rn_conv_desc *d, float *scratch, int nthreads) {
    rn_cpu_bf16_conv2d_forward(out, in, w, bias, d, false, rn_cpu_bf16_level(), scratch, nthreads);
}
static void conv_forward_relu(float *out, const float *in, const float *w, const float *bias,
                              const rn_conv_desc *d, float *scratch, int nthreads) {
    rn_cpu_bf16_conv2d_forward(out, in, w, bias, d, true, rn_cpu_bf16_level(), scratch, nthreads);
}
static void conv_backward(float *din, float *dw, float *dbias, const float *dout,
                          const float *in, const float *w, const rn_conv_desc *d, float *scratch,
                          int nthreads) {
    rn_cpu_bf16_conv2d_backward(din, dw, dbias, dout, in, w, d, rn_cpu_bf16_level(), scratch, nthreads);
}
static void linear_forward(float *out, const float *in, const float *w, const float *bias, int N,
                           int I, int O) {
    rn_cpu_bf16_linear_forward(out, in, w, bias, N, I, O, rn_cpu_bf16_level());
}
static void linear_backward(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, int N, int I, int O) {
    rn_cpu_bf16_linear_backward(din, dw, dbias, dout, in, w, N, I, O, rn_cpu_bf16_level());
}

const rn_backend rn_backend_cpu_bf16 = {
    .name = "cpu-bf16",
    .conv2d_scratch_floats = conv_scratch,
    .conv2d_forward = conv_forward,
    .conv2d_backward = conv_backward,
    .batchnorm_forward_train = rn_batchnorm_forward_train,
    .batchnorm_forward_eval = rn_batchnorm_forward_eval,
    .batchnorm_backward = rn_batchnorm_backward,
    .relu_forward = rn_relu_forward,
    .relu_backward = rn_relu_backward,
    .add_forward = rn_add_forward,
    .add_backward = rn_add_backward,
    .shortcut_a_forward = rn_shortcut_a_forward,
    .shortcut_a_backward = rn_shortcut_a_backward,
    .maxpool_forward = rn_cpu_maxpool_forward,
    .maxpool_backward = rn_cpu_maxpool_backward,
    .avgpool_forward = rn_avgpool_forward,
    .avgpool_backward = rn_avgpool_backward,
    .linear_forward = linear_forward,
    .linear_backward = linear_backward,
    .conv2d_forward_relu = conv_forward_relu,
    .batchnorm_relu_forward_train = rn_batchnorm_relu_forward_train,
    .batchnorm_relu_forward_eval = rn_batchnorm_relu_forward_eval,
    .batchnorm_relu_backward = rn_batchnorm_relu_backward,
    .add_relu_forward = rn_add_relu_forward,
    .add_relu_backward = rn_add_relu_backward,
};
