/*
 * backend_reference.c — the "reference" backend: the portable C kernels of src/ops, one op at
 * a time, no fusions. Always built; every other backend is tested against it.
 */
#include "backend.h"

/* The reference pool kernels run on one thread. */
static void maxpool_forward(float *out, const float *in, const rn_pool_desc *d, int nthreads) {
    rn_maxpool_forward(out, in, d);
}
static void maxpool_backward(float *din, const float *dout, const float *in,
                             const rn_pool_desc *d, int nthreads) {
    rn_maxpool_backward(din, dout, in, d);
}

const rn_backend rn_backend_reference = {
    .name = "reference",
    .conv2d_scratch_floats = rn_conv2d_scratch_floats,
    .conv2d_forward = rn_conv2d_forward,
    .conv2d_backward = rn_conv2d_backward,
    .batchnorm_forward_train = rn_batchnorm_forward_train,
    .batchnorm_forward_eval = rn_batchnorm_forward_eval,
    .batchnorm_backward = rn_batchnorm_backward,
    .relu_forward = rn_relu_forward,
    .relu_backward = rn_relu_backward,
    .add_forward = rn_add_forward,
    .add_backward = rn_add_backward,
    .shortcut_a_forward = rn_shortcut_a_forward,
    .shortcut_a_backward = rn_shortcut_a_backward,
    .maxpool_forward = maxpool_forward,
    .maxpool_backward = maxpool_backward,
    .avgpool_forward = rn_avgpool_forward,
    .avgpool_backward = rn_avgpool_backward,
    .linear_forward = rn_linear_forward,
    .linear_backward = rn_linear_backward,
};
