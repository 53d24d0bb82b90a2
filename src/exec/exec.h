/*
 * exec.h — the inside of the executor seam (the public side is rn_exec_* in resnet.h): the
 * table of operations each device implements, and the two implementations.
 *
 * Everything that is the same on every device (the schedule, the data order, logging,
 * checkpoints, combining gradients across processes through the hook) lives above the seam,
 * once; what differs (how a step runs) lives below it.
 */
#ifndef RN_EXEC_H
#define RN_EXEC_H

#include "core/internal.h"
#include "model/model.h"

typedef struct rn_exec_ops {
    void (*close)(rn_exec *e);
    rn_status (*forward)(rn_exec *e, const float *x, int n, rn_mode mode, float *logits);
    rn_status (*evaluate)(rn_exec *e, const rn_dataset *d, const rn_norm *norm,
                          rn_eval_result *r);
    rn_status (*train_init)(rn_exec *e, const rn_dataset *train, const rn_norm *norm,
                            const float *lrs, int64_t n_steps, int64_t step);
    rn_status (*train_set_order)(rn_exec *e, const int *order);
    rn_status (*train_step)(rn_exec *e);
    /* NULL where the device cannot take a batch from the host (rn_exec_train_step_batch). */
    rn_status (*train_step_batch)(rn_exec *e, const float *x, const int *labels);
    rn_status (*train_metrics)(rn_exec *e, double *loss_sum, int64_t *correct);
    rn_status (*sync_to_host)(rn_exec *e);
    rn_status (*sync_to_device)(rn_exec *e);
    rn_status (*grads_to_host)(rn_exec *e);
    void (*profile)(rn_exec *e, bool on);
    rn_status (*profile_print)(rn_exec *e, FILE *f);
    double (*peak_gflops)(rn_exec *e, const char **what);
} rn_exec_ops;

/* What every executor has; each implementation embeds it first and adds its own state. */
struct rn_exec {
    const rn_exec_ops *ops;
    rn_model *m;
    int max_batch;
    rn_exec_train_opts topts;  /* from rn_exec_train_init */
    float *momentum;           /* host copy of the momentum block (n_params floats) */
    rn_grad_hook hook;
    void *hook_user;
    rn_data_progress eval_progress; /* rn_exec_set_eval_progress */
    void *eval_progress_user;
    rn_grads_ready_hook ready;  /* during the backward pass (the host calls it; the GPU may) */
    void *ready_user;
    char describe[256];
};

/* The implementations' constructors (exec_host.c, exec_gpu.c): each fills a fresh executor
 * whose common fields rn_exec_open has set, or fails with a message. */
rn_status rn_exec_open_host(rn_exec **out, rn_model *m, const rn_exec_opts *o, int max_batch);
rn_status rn_exec_open_gpu(rn_exec **out, rn_model *m, const rn_exec_opts *o, int cuda_index,
                           int max_batch);

/* For the implementations: allocates an executor of `size` bytes (its own struct, rn_exec
 * first) with the common fields set and a zeroed momentum block. */
rn_status rn_exec_alloc(rn_exec **out, size_t size, const rn_exec_ops *ops, rn_model *m,
                        int max_batch);

#endif
