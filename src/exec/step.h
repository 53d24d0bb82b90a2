/*
 * step.h — the pieces of a step that run on the host: batch assembly with augmentation, the SGD
 * update and the data check. The host executor (exec_host.c) runs its steps with them, and the
 * GPU's kernels are tested against them.
 */
#ifndef RN_EXEC_STEP_H
#define RN_EXEC_STEP_H

#include "core/internal.h"
#include "model/model.h"

/* One SGD step with PyTorch's semantics (torch.optim.SGD, dampening 0):
 *   g = grad + wd * w;  v = momentum * v + g;  g = nesterov ? g + momentum * v : v;
 *   w -= lr * g
 * over every PARAM tensor of the model; tensors with is_bn_or_bias get no weight decay when
 * wd_skip_bn. velocity (n_params) is the momentum block, zero before the first step. */
void rn_sgd_step(rn_model *m, float *velocity, float lr, float momentum, float wd, bool nesterov,
                 bool wd_skip_bn);

/* Assembles a training or evaluation batch: images idx[0..n) of d, normalized into
 * x (n, c, h, w), labels into labels (n). With augment, image i of step `step` is padded by 4
 * zero pixels, cropped back at a random offset and flipped with probability 1/2, drawn from a
 * generator seeded by (seed, step, i), so the result does not depend on the thread count. */
void rn_batch_fill(float *x, int *labels, const rn_dataset *d, const int *idx, int n,
                   const rn_norm *norm, bool augment, uint64_t seed, int64_t step,
                   int nthreads);

/* rn_batch_fill for a slice of a larger batch: image i of the slice gets the draws of
 * position first + i of the step's batch (a process's share of a global batch). */
void rn_batch_fill_slice(float *x, int *labels, const rn_dataset *d, const int *idx, int n,
                         int first, const rn_norm *norm, bool augment, uint64_t seed,
                         int64_t step, int nthreads);

/* The running sums of an evaluation (rn_evaluate's, and a streamed set's batch by batch). */
typedef struct {
    double loss;         /* sum of the images' cross-entropies */
    int64_t top1, top5;  /* images whose class is the first / among the first five */
} rn_eval_sums;

/* Adds a batch of n images to an evaluation: logits (n, K) and labels (n), K = r->num_classes,
 * into sums and r->confusion (allocated, K x K); probs (n, K) is scratch. */
void rn_eval_add(rn_eval_result *r, rn_eval_sums *sums, float *probs, const float *logits,
                 const int *labels, int n);

/* r's accuracies and mean loss from the sums over its r->n images; RN_ERR_NUMERIC when the
 * loss is not finite. */
rn_status rn_eval_finish(rn_eval_result *r, const rn_eval_sums *sums);

/* RN_ERR_SHAPE with a message unless the set's images have the model's input shape and its
 * classes fit the model's outputs. */
rn_status rn_check_data_fits(const rn_model *m, const rn_dataset *d);

/* rn_evaluate, calling progress (unless NULL) with the images done so far after each batch. */
rn_status rn_evaluate_progress(rn_model *m, rn_ctx *ctx, const rn_dataset *d,
                               const rn_norm *norm, int batch, rn_data_progress progress,
                               void *user, rn_eval_result *r);

#endif
