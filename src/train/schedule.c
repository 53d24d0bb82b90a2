/*
 * schedule.c — learning-rate schedules: constant, multistep, cosine, one-cycle, and warm-up.
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
        /* torch.optim.lr_scheduler.OneCycleLR's defaults: from lr/25 up to lr over 30% of the
         * run, then down to lr/25/1e4, both with cosine annealing. */
        const double pct = 0.3, start = c->lr / 25, end = start / 1e4;
        double up = pct * (double)total;
        if (step < up) {
            double p = up > 0 ? (double)step / up : 1;
            lr = c->lr + (start - c->lr) * 0.5 * (1 + cos(M_PI * p));
        } else {
            double down = (double)total - up;
            double p = down > 0 ? ((double)step - up) / down : 1;
            lr = end + (c->lr - end) * 0.5 * (1 + cos(M_PI * p));
        }
        break;
    }
    }
    if (step < c->warmup)
        lr *= c->warmup_factor > 0 ? c->warmup_factor : (double)(step + 1) / (double)c->warmup;
    return lr;
}
