/*
 * schedule.c — learning-rate schedules: constant, multistep, cosine, one-cycle, and warm-up;
 * and the resolution of multistep milestones given in epochs or percent to steps.
 */
#include "train.h"

#include <math.h>

double rn_schedule_lr(const rn_train_config *c, int64_t step, int64_t total) {
    double lr = c->lr;
    double t = total > 0 ? (double)step / (double)total : 0;
    switch (c->schedule) {
    case RN_SCHED_CONSTANT: break;
    case RN_SCHED_MULTISTEP:
        for (int i = 0; i < c->n_milestones; i++)
            if (step >= c->milestones[i]) lr *= c->gamma;
        break;
    case RN_SCHED_COSINE: lr = c->lr * 0.5 * (1 + cos(M_PI * t)); break;
    case RN_SCHED_ONECYCLE: {
        /* torch.optim.lr_scheduler.OneCycleLR's defaults (pct_start 0.3, div_factor 25,
         * final_div_factor 1e4, cosine annealing), step for step: from lr/25 at step 0 up to
         * lr at step 0.3*total - 1, then down to lr/25/1e4 at the last step, total - 1. The
         * momentum is not cycled. */
        const double start = c->lr / 25, end = start / 1e4;
        const double up = 0.3 * (double)total - 1, last = (double)total - 1;
        double s = (double)step;
        if (s <= up) {
            double p = up > 0 ? s / up : 1;
            lr = c->lr + (start - c->lr) * 0.5 * (1 + cos(M_PI * p));
        } else {
            double p = last > up ? (s - up) / (last - up) : 1;
            lr = end + (c->lr - end) * 0.5 * (1 + cos(M_PI * p));
        }
        break;
    }
    }
    if (step < c->warmup)
        lr *= c->warmup_factor > 0 ? c->warmup_factor : (double)(step + 1) / (double)c->warmup;
    return lr;
}

/* Milestone ms (in c's unit) as a step. One at or past the run's end never fires, so it
 * becomes the end: the products below then stay within the run's length and cannot overflow
 * (total is at most 1e5 epochs of at most 2^31 steps). */
static int64_t milestone_step(const rn_train_config *c, int64_t ms, int64_t total,
                              int steps_per_epoch) {
    switch (c->milestone_unit) {
    case RN_UNIT_EPOCHS:
        return ms >= total / steps_per_epoch + 1 ? total : ms * steps_per_epoch;
    case RN_UNIT_PERCENT: return ms >= 100 ? total : ms * total / 100;
    default: return RN_MIN(ms, total);
    }
}

void rn_schedule_resolve(rn_train_config *c, int64_t total, int steps_per_epoch) {
    for (int i = 0; i < c->n_milestones; i++)
        c->milestones[i] = milestone_step(c, c->milestones[i], total, steps_per_epoch);
    c->milestone_unit = RN_UNIT_STEPS;
}
