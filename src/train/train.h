/*
 * train.h — the pieces of the training loop above the executor seam: the learning-rate
 * schedule and the run's config.json.
 */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include "core/internal.h"
#include "model/model.h"

/* The learning rate of optimizer step `step` (0-based) of a run of `total` steps. */
double rn_schedule_lr(const rn_train_config *c, int64_t step, int64_t total);

/* Writes every setting to path as JSON (config.json of a run). */
rn_status rn_train_config_save(const rn_train_config *c, const char *path);

#endif
