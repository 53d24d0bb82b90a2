/*
 * gpu.h — the CUDA backend's entry points, behind the GPU executor (src/exec/exec_gpu.c). In
 * builds without CUDA (src/cuda/none.c) every call fails with RN_ERR_DEVICE and says so.
 *
 * An rn_gpu holds a copy of one model on one GPU: parameters (fp32, conv weights stored
 * K,R,S,C for the NHWC activations used there), BN buffers, gradients, momentum, activations
 * for max_batch images, cuDNN convolutions and own kernels for everything else. The host model
 * stays the reference copy for files: rn_gpu_upload / rn_gpu_download move the state between
 * the two, so checkpoints are the same safetensors files on either device.
 *
 * Training (rn_gpu_train_*) keeps the whole training set on the GPU as uint8, builds each
 * batch there (the draws of src/core/draws.h, as the host does), and replays one captured CUDA
 * graph per step: batch, forward, loss, backward, SGD update (two graphs, split at the
 * gradients, when a gradient hook is set). The host waits only when it reads metrics
 * (rn_gpu_train_metrics) or state.
 */
#ifndef RN_CUDA_GPU_H
#define RN_CUDA_GPU_H

#include "resnet.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rn_gpu rn_gpu;

/* How many CUDA GPUs this machine has. *n = 0 with RN_OK only when there is no GPU or no NVIDIA
 * driver at all (the one case GPU tests may skip); RN_ERR_DEVICE for anything else that keeps
 * the GPUs from being counted, such as a driver too old for this build's CUDA runtime (the
 * message names the driver needed: R580 or newer for CUDA 13). */
rn_status rn_gpu_count(int *n);

/* Puts model m (its current parameters and buffers) on GPU `device`, reserved for batches of
 * up to max_batch images. m must outlive the rn_gpu. RN_ERR_DEVICE when there is no such GPU,
 * no driver, too little memory or a model the GPU path does not support. */
rn_status rn_gpu_open(rn_gpu **out, int device, rn_model *m, int max_batch, rn_precision p);
void rn_gpu_close(rn_gpu *g);
/* "NVIDIA H100 80GB HBM3 (cuda:0, sm_90, 80 GB, driver 13.0, cuDNN 91900)". */
const char *rn_gpu_describe(const rn_gpu *g);

/* How many BNs run fused with their ReLU (*bn_relu) and with the residual add and ReLU after
 * them (*bn_add_relu), so that tests can show they reach every fusion. */
void rn_gpu_fusions(const rn_gpu *g, int *bn_relu, int *bn_add_relu);

/* Host model -> GPU: parameters and BN buffers, and the momentum block (velocity, in the
 * host's layout, as many floats as parameters; NULL: zeros). */
rn_status rn_gpu_upload(rn_gpu *g, const float *velocity);
/* GPU -> host model: parameters, BN buffers, BN counters (plus the training steps run on the
 * GPU since the upload) and, when velocity is not NULL, the momentum block. Waits for the GPU. */
rn_status rn_gpu_download(rn_gpu *g, float *velocity);

/* One forward pass of n <= max_batch images x (n, C, H, W) from host memory; logits (n, K)
 * into host memory. Train mode needs n == max_batch and updates the BN running statistics on
 * the GPU. */
rn_status rn_gpu_forward(rn_gpu *g, const float *x, int n, rn_mode mode, float *logits);
/* The backward pass of the last forward pass, from dlogits (n, K) in host memory. Then
 * rn_gpu_download_grads copies the parameter gradients into the host model's gradient block
 * (rn_model_grads, PyTorch layout), the block input gradient norms into the host model (see
 * rn_model_block_input_grad_norm), and, if input_grad is not NULL, the gradient with respect
 * to the input (n, C, H, W). */
rn_status rn_gpu_backward(rn_gpu *g, const float *dlogits);
rn_status rn_gpu_download_grads(rn_gpu *g, float *input_grad);

/* Evaluates the model (eval mode) on a data set as rn_evaluate does, on the GPU, in batches
 * of max_batch images. The set is copied to the GPU on first use and kept there (up to two
 * sets, keyed by their image pointer and count). */
rn_status rn_gpu_evaluate(rn_gpu *g, const rn_dataset *d, const rn_norm *norm,
                          rn_eval_result *r);

typedef rn_exec_train_opts rn_gpu_train_opts;

/* Prepares GPU training: copies the training set's images and labels to the GPU, and the
 * learning rate of every step (lrs[0..n_steps-1]); captures the training step as a CUDA graph.
 * The next step run is `step`. */
rn_status rn_gpu_train_init(rn_gpu *g, const rn_dataset *train, const rn_norm *norm,
                            const rn_gpu_train_opts *o, const float *lrs, int64_t n_steps,
                            int64_t step);
/* The data order of the current epoch (train->n indices); call it before an epoch's first
 * step. Step s uses order[(s % steps_per_epoch) * batch ...], steps_per_epoch = n / batch. */
rn_status rn_gpu_train_set_order(rn_gpu *g, const int *order);
/* Whether the training step runs from captured CUDA graphs (true), or launch by launch
 * because capturing failed (the same work and results, slower). */
bool rn_gpu_train_captured(const rn_gpu *g);
/* For tests of that fallback: makes the next capture (rn_gpu_train_init) fail in the middle of
 * the backward pass, after a weight gradient has been started on the side stream. */
void rn_gpu_fail_next_capture(rn_gpu *g);
/* Queues `count` training steps (graph launches); returns without waiting. */
rn_status rn_gpu_train_steps(rn_gpu *g, int count);
/* Waits for the queued steps and returns the sum of their losses and the number of correctly
 * classified training images since the last call (which resets both). */
rn_status rn_gpu_train_metrics(rn_gpu *g, double *loss_sum, int64_t *correct);
/* Runs one training step op by op (not from the graph), timing each layer with CUDA events,
 * and prints the time per op kind, forward and backward, to f. */
rn_status rn_gpu_profile(rn_gpu *g, FILE *f);

/* The gradient hook of rn_exec_set_grad_hook, called between backward and update with the
 * GPU's gradient block in device memory; set it before rn_gpu_train_init. */
void rn_gpu_train_set_grad_hook(rn_gpu *g, rn_grad_hook hook, void *user);

#ifdef __cplusplus
}
#endif

#endif
