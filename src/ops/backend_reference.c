/*
 * backend_reference.c — the "reference" backend: the portable C kernels of src/ops, one op at
 * a time, no fusions. Always built; every other backend is tested against it.
 */
#include "backend.h"

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
    .maxpool_forward = rn_maxpool_forward,
    .maxpool_backward = rn_maxpool_backward,
    .avgpool_forward = rn_avgpool_forward,
    .avgpool_backward = rn_avgpool_backward,
    .linear_forward = rn_linear_forward,
    .linear_backward = rn_linear_backward,
};
