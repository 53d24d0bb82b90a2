/*
 * train.h — the pieces of the training loop above the executor seam: the learning-rate
 * schedule and the run's config.json.
 */
#ifndef RN_TRAIN_H
#define RN_TRAIN_H

#include "core/internal.h"
#include "model/model.h"

/* The learning rate of optimizer step `step` (0-based) of a run of `total` steps; multistep
 * milestones must be in steps (rn_schedule_resolve). */
double rn_schedule_lr(const rn_train_config *c, int64_t step, int64_t total);

/* Turns c's multistep milestones into steps of a run of total steps, steps_per_epoch each
 * epoch (milestones past the end become the end, where they never fire). */
void rn_schedule_resolve(rn_train_config *c, int64_t total, int steps_per_epoch);

/* Writes every setting to path as JSON (config.json of a run). */
rn_status rn_train_config_save(const rn_train_config *c, const char *path);

#endif
