/*
 * train.h — the training pieces behind rn_train_run: the SGD update, the learning-rate
 * schedule, batch assembly with augmentation, and checkpoints.
 */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include "core/internal.h"
#include "model/model.h"

/* One SGD step with PyTorch's semantics (torch.optim.SGD, dampening 0):
 *   g = grad + wd * w;  v = momentum * v + g;  g = nesterov ? g + momentum * v : v;
 *   w -= lr * g
 * over every PARAM tensor of the model; tensors with is_bn_or_bias get no weight decay when
 * wd_skip_bn. velocity (n_params) is the momentum block, zero before the first step. */
void rn_sgd_step(rn_model *m, float *velocity, float lr, float momentum, float wd, bool nesterov,
                 bool wd_skip_bn);

/* The learning rate of optimizer step `step` (0-based) of a run of `total` steps. */
double rn_schedule_lr(const rn_train_config *c, int64_t step, int64_t total);

/* Assembles a training or evaluation batch: images idx[0..n) of d, normalized into
 * x (n, c, h, w), labels into labels (n). With augment, image i of step `step` is padded by 4
 * zero pixels, cropped back at a random offset and flipped with probability 1/2, drawn from a
 * generator seeded by (seed, step, i), so the result does not depend on the thread count. */
void rn_batch_fill(float *x, int *labels, const rn_dataset *d, const int *idx, int n,
                   const rn_norm *norm, bool augment, uint64_t seed, int64_t step,
                   int nthreads);

/* Writes every setting to path as JSON (config.json of a run). */
rn_status rn_train_config_save(const rn_train_config *c, const char *path);

/* RN_ERR_SHAPE with a message unless the set's images have the model's input shape and its
 * classes fit the model's outputs. */
rn_status rn_check_data_fits(const rn_model *m, const rn_dataset *d);

#endif
