/*
 * backend_cpu.c — the "cpu" backend: the fast CPU kernels behind the rn_backend table, with
 * the library's NCHW tensors at the boundary. Convolutions run the blocked kernels of
 * conv.c / conv_wino.c (each image is converted to and from NCHW16c inside the kernel, in
 * cache); the other ops are the reference kernels until their fast versions land.
 *
 * Environment: RN_ISA=avx512|avx2|portable lowers the instruction-set level;
 * RN_CONV_ALGO=auto|direct|winograd picks the convolution algorithm (auto: Winograd F(4x4,3x3)
 * for 3x3 stride-1 convolutions with 16 to 256 channels, where it is both faster and
 * accurate to about 1e-5 of the output scale; direct elsewhere).
 */
#include "core/backend.h"
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

rn_conv_algo rn_cpu_conv_algo_env(void) {
    const char *env = getenv("RN_CONV_ALGO");
    if (env && strcmp(env, "direct") == 0) return RN_CONV_DIRECT;
    if (env && strcmp(env, "winograd") == 0) return RN_CONV_WINOGRAD;
    return RN_CONV_AUTO;
}

static rn_cpu_conv_cfg nchw_cfg(int nthreads) {
    rn_cpu_conv_cfg c = {.act = RN_LAYOUT_NCHW, .isa = rn_cpu_isa_detect(), .nthreads = nthreads,
                         .algo = rn_cpu_conv_algo_env()};
    return c;
}

static size_t cpu_conv2d_scratch_floats(const rn_conv_desc *d, int nthreads) {
    rn_cpu_conv_cfg c = nchw_cfg(nthreads);
    return rn_cpu_conv2d_scratch_floats(d, &c);
}

static void cpu_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                               const rn_conv_desc *d, float *scratch, int nthreads) {
    rn_cpu_conv_cfg c = nchw_cfg(nthreads);
    rn_cpu_conv2d_forward(out, in, w, bias, d, &c, scratch);
}

static void cpu_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                                const float *in, const float *w, const rn_conv_desc *d,
                                float *scratch, int nthreads) {
    rn_cpu_conv_cfg c = nchw_cfg(nthreads);
    rn_cpu_conv2d_backward(din, dw, dbias, dout, in, w, d, &c, scratch);
}

const rn_backend rn_backend_cpu = {
    .name = "cpu",
    .conv2d_scratch_floats = cpu_conv2d_scratch_floats,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .batchnorm_forward_train = rn_batchnorm_forward_train,
    .batchnorm_forward_eval = rn_batchnorm_forward_eval,
    .batchnorm_backward = rn_batchnorm_backward,
    .relu_forward = rn_relu_forward,
    .relu_backward = rn_relu_backward,
    .add_forward = rn_add_forward,
    .add_backward = rn_add_backward,
    .shortcut_a_forward = rn_shortcut_a_forward,
    .shortcut_a_backward = rn_shortcut_a_backward,
    .maxpool_forward = rn_maxpool_forward,
    .maxpool_backward = rn_maxpool_backward,
    .avgpool_forward = rn_avgpool_forward,
    .avgpool_backward = rn_avgpool_backward,
    .linear_forward = rn_linear_forward,
    .linear_backward = rn_linear_backward,
};
