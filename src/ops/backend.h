/*
 * backend.h — the table of kernels a backend provides, and the execution context (a backend
 * and a thread count). The registry that finds a backend by name sits above the kernels'
 * directories (src/exec/registry.c).
 *
 * The model code calls kernels only through this table, so a faster CPU backend or a CUDA
 * backend replaces them without touching the model. Every entry has the contract of the
 * reference kernel of the same name in src/ops/ops.h; the reference backend is always built
 * and is what the others are tested against.
 *
 * In place: the model calls relu_forward with out == in and add_forward with out == a (see
 * src/model/plan.c); every backend must allow that.
 */
#ifndef RN_BACKEND_H
#define RN_BACKEND_H

#include "ops.h"
#include "resnet.h"

typedef struct rn_backend {
    const char *name;
    size_t (*conv2d_scratch_floats)(const rn_conv_desc *d, int nthreads);
    void (*conv2d_forward)(float *out, const float *in, const float *w, const float *bias,
                           const rn_conv_desc *d, float *scratch, int nthreads);
    void (*conv2d_backward)(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, const rn_conv_desc *d,
                            float *scratch, int nthreads);
    void (*batchnorm_forward_train)(float *out, float *save_mean, float *save_invstd,
                                    float *running_mean, float *running_var, const float *in,
                                    const float *gamma, const float *beta, const rn_bn_desc *d,
                                    int nthreads);
    void (*batchnorm_forward_eval)(float *out, float *save_mean, float *save_invstd,
                                   const float *in, const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var,
                                   const rn_bn_desc *d, int nthreads);
    void (*batchnorm_backward)(float *din, float *dgamma, float *dbeta, const float *dout,
                               const float *in, const float *save_mean, const float *save_invstd,
                               const float *gamma, const rn_bn_desc *d, bool train, int nthreads);
    void (*relu_forward)(float *out, const float *in, size_t n);
    void (*relu_backward)(float *din, const float *dout, const float *out, size_t n);
    void (*add_forward)(float *out, const float *a, const float *b, size_t n);
    void (*add_backward)(float *da, float *db, const float *dout, size_t n);
    void (*shortcut_a_forward)(float *out, const float *in, const rn_shortcut_a_desc *d);
    void (*shortcut_a_backward)(float *din, const float *dout, const rn_shortcut_a_desc *d);
    void (*maxpool_forward)(float *out, const float *in, const rn_pool_desc *d, int nthreads);
    void (*maxpool_backward)(float *din, const float *dout, const float *in,
                             const rn_pool_desc *d, int nthreads);
    void (*avgpool_forward)(float *out, const float *in, int N, int C, int HW);
    void (*avgpool_backward)(float *din, const float *dout, int N, int C, int HW);
    void (*linear_forward)(float *out, const float *in, const float *w, const float *bias, int N,
                           int I, int O);
    void (*linear_backward)(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, int N, int I, int O);

    /* Optional: out = max(conv + bias, 0). With it, inference (RN_MODE_INFER) folds each BN
     * into the convolution before it and runs BN's ReLU in the convolution's epilogue. */
    void (*conv2d_forward_relu)(float *out, const float *in, const float *w, const float *bias,
                                const rn_conv_desc *d, float *scratch, int nthreads);

    /* Optional fusions of a BN or residual add with the ReLU that reads its output (in place);
     * NULL where a backend has none, and the model then runs the two ops one by one. The
     * backward entries take the ReLU's output gradient and output (dout, out) and pass the
     * gradient where out > 0; they write input gradients that start there (accumulate false)
     * instead of adding to a cleared slot. batchnorm_relu_backward with out NULL is BN's own
     * backward; the model uses it so for every BN. Contracts: rn_batchnorm_relu_*,
     * rn_add_relu_* in src/ops/ops.h. */
    void (*batchnorm_relu_forward_train)(float *out, float *save_mean, float *save_invstd,
                                         float *running_mean, float *running_var,
                                         const float *in, const float *gamma, const float *beta,
                                         const rn_bn_desc *d, int nthreads);
    void (*batchnorm_relu_forward_eval)(float *out, float *save_mean, float *save_invstd,
                                        const float *in, const float *gamma, const float *beta,
                                        const float *running_mean, const float *running_var,
                                        const rn_bn_desc *d, int nthreads);
    void (*batchnorm_relu_backward)(float *din, float *dgamma, float *dbeta, const float *dout,
                                    const float *out, const float *in, const float *save_mean,
                                    const float *save_invstd, const float *gamma,
                                    const rn_bn_desc *d, bool train, bool accumulate,
                                    int nthreads);
    void (*add_relu_forward)(float *out, const float *a, const float *b, size_t n, int nthreads);
    void (*add_relu_backward)(float *da, float *db, const float *dout, const float *out,
                              size_t n, bool accumulate_a, bool accumulate_b, int nthreads);
} rn_backend;

/* The portable C kernels of src/ops (backend_reference.c). */
extern const rn_backend rn_backend_reference;

/* NULL if no backend of that name is built (src/exec/registry.c). */
const rn_backend *rn_backend_find(const char *name);

struct rn_ctx {
    const rn_backend *backend;
    int nthreads;
    rn_bn_sync *bn_sync; /* training-mode BN statistics over several processes (synchronized
                          * BN; set by the executor for its steps), or NULL */
};

#endif
