/*
 * backend_cpu.c — the "cpu" and "cpu-winograd" backends: the fast CPU kernels behind the
 * rn_backend table, with the library's NCHW tensors at the boundary. Convolutions run the
 * channel-blocked kernels of conv.c / conv_wino.c (each image is converted to and from
 * blocks of 16 channels inside the kernel, in cache); the other ops are the reference kernels, with BN and the residual
 * add fused with the ReLU after them (rn_batchnorm_relu_*, rn_add_relu_*).
 *
 *   cpu           direct convolution only (its results differ from the reference's only in
 *                 summation order); the default
 *   cpu-winograd  Winograd F(4x4,3x3) for 3x3 stride-1 convolutions of 16 to 256 channels,
 *                 direct elsewhere: faster, with a larger rounding error (the transforms'
 *                 growth), which deep nets at initialization amplify. It is opt-in because its
 *                 results sit further from the reference's; the measurements (speed, error per
 *                 convolution and through whole nets) are in BENCHMARKS.md, "Winograd".
 *
 * RN_ISA=avx512|avx2|portable lowers the instruction-set level (read once).
 */
#include "ops/backend.h"
#include "cpu.h"

static rn_cpu_conv_cfg nchw_cfg(int nthreads, rn_conv_algo algo) {
    rn_cpu_conv_cfg c = {.isa = rn_cpu_isa_detect(), .nthreads = nthreads,
                         .algo = algo};
    return c;
}

#define CPU_CONV(SUFFIX, ALGO)                                                             \
    static size_t conv_scratch_##SUFFIX(const rn_conv_desc *d, int nthreads) {              \
        rn_cpu_conv_cfg c = nchw_cfg(nthreads, ALGO);                                      \
        return rn_cpu_conv2d_scratch_floats(d, &c);                                        \
    }                                                                                      \
    static void conv_forward_##SUFFIX(float *out, const float *in, const float *w,          \
                                      const float *bias, const rn_conv_desc *d,            \
                                      float *scratch, int nthreads) {                      \
        rn_cpu_conv_cfg c = nchw_cfg(nthreads, ALGO);                                      \
        rn_cpu_conv2d_forward(out, in, w, bias, d, &c, scratch);                           \
    }                                                                                      \
    static void conv_forward_relu_##SUFFIX(float *out, const float *in, const float *w,     \
                                           const float *bias, const rn_conv_desc *d,       \
                                           float *scratch, int nthreads) {                 \
        rn_cpu_conv_cfg c = nchw_cfg(nthreads, ALGO);                                      \
        c.relu = true;                                                                     \
        rn_cpu_conv2d_forward(out, in, w, bias, d, &c, scratch);                           \
    }                                                                                      \
    static void conv_backward_##SUFFIX(float *din, float *dw, float *dbias,                 \
                                       const float *dout, const float *in, const float *w,  \
                                       const rn_conv_desc *d, float *scratch, int nthreads) { \
        rn_cpu_conv_cfg c = nchw_cfg(nthreads, ALGO);                                      \
        rn_cpu_conv2d_backward(din, dw, dbias, dout, in, w, d, &c, scratch);               \
    }
CPU_CONV(auto, RN_CONV_AUTO)
CPU_CONV(direct, RN_CONV_DIRECT)

#define CPU_BACKEND(NAME, SUFFIX)                                                          \
    {                                                                                      \
        .name = NAME,                                                                      \
        .conv2d_scratch_floats = conv_scratch_##SUFFIX,                                    \
        .conv2d_forward = conv_forward_##SUFFIX,                                           \
        .conv2d_backward = conv_backward_##SUFFIX,                                         \
        .batchnorm_forward_train = rn_batchnorm_forward_train,                             \
        .batchnorm_forward_eval = rn_batchnorm_forward_eval,                               \
        .batchnorm_backward = rn_batchnorm_backward,                                       \
        .relu_forward = rn_relu_forward,                                                   \
        .relu_backward = rn_relu_backward,                                                 \
        .add_forward = rn_add_forward,                                                     \
        .add_backward = rn_add_backward,                                                   \
        .shortcut_a_forward = rn_shortcut_a_forward,                                       \
        .shortcut_a_backward = rn_shortcut_a_backward,                                     \
        .maxpool_forward = rn_cpu_maxpool_forward,                                         \
        .maxpool_backward = rn_cpu_maxpool_backward,                                       \
        .avgpool_forward = rn_avgpool_forward,                                             \
        .avgpool_backward = rn_avgpool_backward,                                           \
        .linear_forward = rn_linear_forward,                                               \
        .linear_backward = rn_linear_backward,                                             \
        .conv2d_forward_relu = conv_forward_relu_##SUFFIX,                                 \
        .batchnorm_relu_forward_train = rn_batchnorm_relu_forward_train,                   \
        .batchnorm_relu_forward_eval = rn_batchnorm_relu_forward_eval,                     \
        .batchnorm_relu_backward = rn_batchnorm_relu_backward,                             \
        .add_relu_forward = rn_add_relu_forward,                                           \
        .add_relu_backward = rn_add_relu_backward,                                         \
    }

const rn_backend rn_backend_cpu = CPU_BACKEND("cpu", direct);
const rn_backend rn_backend_cpu_winograd = CPU_BACKEND("cpu-winograd", auto);
