/*
 * exec.c — the executor seam's public functions: open picks the device's implementation, the
 * rest forward to its table; what all devices share (momentum block, hook, options) is kept
 * here.
 */
#include "exec.h"
#include "step.h"

#include <string.h>

rn_status rn_exec_alloc(rn_exec **out, size_t size, const rn_exec_ops *ops, rn_model *m,
                        int max_batch) {
    *out = NULL;
    rn_exec *e = rn_calloc(size);
    size_t np;
    rn_model_params(m, &np);
    float *mom = rn_calloc(RN_MAX(np, 1) * sizeof(float));
    if (!e || !mom) {
        rn_free(e);
        rn_free(mom);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate an executor", rn_model_name(m));
    }
    e->ops = ops;
    e->m = m;
    e->max_batch = max_batch;
    e->momentum = mom;
    *out = e;
    return RN_OK;
}

rn_status rn_exec_open(rn_exec **out, rn_model *m, const rn_exec_opts *o, int max_batch) {
    *out = NULL;
    rn_exec_opts none = {0};
    if (!o) o = &none;
    if (max_batch < 1 || max_batch > 65536)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d (expected 1 to 65536)", max_batch);
    int cuda;
    rn_status s = rn_device_parse(o->device, &cuda);
    if (s != RN_OK) return s;
    return cuda < 0 ? rn_exec_open_host(out, m, o, max_batch)
                    : rn_exec_open_gpu(out, m, o, cuda, max_batch);
}

void rn_exec_close(rn_exec *e) {
    if (!e) return;
    float *mom = e->momentum;
    e->ops->close(e);
    rn_free(mom);
}

const char *rn_exec_describe(const rn_exec *e) { return e->describe; }
int rn_exec_max_batch(const rn_exec *e) { return e->max_batch; }

rn_status rn_exec_forward(rn_exec *e, const float *x, int n, rn_mode mode, float *logits) {
    if (n < 1 || n > e->max_batch)
        return rn_fail(RN_ERR_BAD_ARG, "%s: batch of %d images, reserved for 1 to %d",
                       rn_model_name(e->m), n, e->max_batch);
    if (mode == RN_MODE_TRAIN && n != e->max_batch)
        return rn_fail(RN_ERR_BAD_ARG, "%s: a training-mode pass takes exactly %d images, not %d",
                       rn_model_name(e->m), e->max_batch, n);
    return e->ops->forward(e, x, n, mode, logits);
}

rn_status rn_exec_evaluate(rn_exec *e, const rn_dataset *d, const rn_norm *norm,
                           rn_eval_result *r) {
    return e->ops->evaluate(e, d, norm, r);
}

void rn_exec_set_eval_progress(rn_exec *e, rn_data_progress progress, void *user) {
    e->eval_progress = progress;
    e->eval_progress_user = user;
}

void rn_exec_set_grad_hook(rn_exec *e, rn_grad_hook hook, void *user) {
    e->hook = hook;
    e->hook_user = user;
}

void rn_exec_set_grads_ready_hook(rn_exec *e, rn_grads_ready_hook hook, void *user) {
    e->ready = hook;
    e->ready_user = user;
}

rn_status rn_exec_train_init(rn_exec *e, const rn_dataset *train, const rn_norm *norm,
                             const rn_exec_train_opts *o, const float *lrs, int64_t n_steps,
                             int64_t step) {
    if (o->batch != e->max_batch)
        return rn_fail(RN_ERR_BAD_ARG, "training batch %d, the executor holds %d", o->batch,
                       e->max_batch);
    rn_exec_train_opts opts = *o;
    if (opts.global_batch == 0) opts.global_batch = opts.batch;
    if (opts.first < 0 || opts.first + opts.batch > opts.global_batch)
        return rn_fail(RN_ERR_BAD_ARG, "images [%d, %d) are not a slice of a batch of %d",
                       opts.first, opts.first + opts.batch, opts.global_batch);
    if (train->n < opts.global_batch)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d is larger than the %d training images",
                       opts.global_batch, train->n);
    if (step < 0 || step > n_steps)
        return rn_fail(RN_ERR_BAD_ARG, "step %lld of a run of %lld steps", (long long)step,
                       (long long)n_steps);
    rn_status s = rn_check_data_fits(e->m, train);
    if (s != RN_OK) return s;
    if (!train->images && !e->ops->train_step_batch)
        return rn_fail(RN_ERR_DEVICE, "%s: streamed training sets train on the CPU for now "
                       "(--device cpu)", e->describe);
    e->topts = opts;
    return e->ops->train_init(e, train, norm, lrs, n_steps, step);
}

rn_status rn_exec_train_set_order(rn_exec *e, const int *order) {
    return e->ops->train_set_order(e, order);
}
rn_status rn_exec_train_step(rn_exec *e) { return e->ops->train_step(e); }
rn_status rn_exec_train_step_batch(rn_exec *e, const float *x, const int *labels) {
    if (!e->ops->train_step_batch)
        return rn_fail(RN_ERR_DEVICE, "%s: streamed training sets train on the CPU for now "
                       "(--device cpu)", e->describe);
    return e->ops->train_step_batch(e, x, labels);
}
rn_status rn_exec_train_metrics(rn_exec *e, double *loss_sum, int64_t *correct) {
    return e->ops->train_metrics(e, loss_sum, correct);
}

float *rn_exec_momentum(rn_exec *e, size_t *count) {
    rn_model_params(e->m, count);
    return e->momentum;
}
rn_status rn_exec_sync_to_host(rn_exec *e) { return e->ops->sync_to_host(e); }
rn_status rn_exec_sync_to_device(rn_exec *e) { return e->ops->sync_to_device(e); }
rn_status rn_exec_grads_to_host(rn_exec *e) { return e->ops->grads_to_host(e); }
void rn_exec_profile(rn_exec *e, bool on) { e->ops->profile(e, on); }
rn_status rn_exec_profile_print(rn_exec *e, FILE *f) { return e->ops->profile_print(e, f); }
double rn_exec_peak_gflops(rn_exec *e, const char **what) {
    return e->ops->peak_gflops(e, what);
}
