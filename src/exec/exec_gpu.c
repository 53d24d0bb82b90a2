/*
 * exec_gpu.c — the GPU executor: the seam's operations on the CUDA backend (src/cuda, through
 * cuda/gpu.h). The GPU keeps its own copy of the state while it trains and replays one captured
 * CUDA graph per step; in builds without CUDA, opening fails with a message that says how to
 * get one.
 */
#include "cuda/gpu.h"
#include "exec.h"

#include <math.h>

typedef struct {
    rn_exec base;
    rn_gpu *gpu;
    bool training;
} gpu_exec;

static rn_gpu *G(rn_exec *e) { return ((gpu_exec *)e)->gpu; }

static void gpu_close(rn_exec *e) {
    rn_gpu_close(G(e));
    rn_free(e);
}

static rn_status gpu_forward(rn_exec *e, const float *x, int n, rn_mode mode, float *logits) {
    /* The GPU has no BN folding: inference is an eval-mode pass. */
    return rn_gpu_forward(G(e), x, n, mode == RN_MODE_INFER ? RN_MODE_EVAL : mode, logits);
}

static rn_status gpu_evaluate(rn_exec *e, const rn_dataset *d, const rn_norm *norm,
                              rn_eval_result *r) {
    /* The batches are queued at once: the progress is the end. */
    rn_status s = rn_gpu_evaluate(G(e), d, norm, r);
    if (s == RN_OK && e->eval_progress) e->eval_progress(d->n, d->n, e->eval_progress_user);
    return s;
}

static rn_status gpu_train_init(rn_exec *e, const rn_dataset *train, const rn_norm *norm,
                                const float *lrs, int64_t n_steps, int64_t step) {
    if (e->topts.global_batch != e->topts.batch)
        return rn_fail(RN_ERR_DEVICE, "training across processes runs on the CPU only (the "
                                      "GPU step takes whole batches)");
    if (e->topts.bn_sum)
        return rn_fail(RN_ERR_DEVICE, "--sync-bn (BatchNorm statistics across processes) runs "
                                      "on the CPU only");
    rn_gpu_train_set_grad_hook(G(e), e->hook, e->hook_user);
    rn_status s = rn_gpu_train_init(G(e), train, norm, &e->topts, lrs, n_steps, step);
    ((gpu_exec *)e)->training = s == RN_OK;
    return s;
}

static rn_status gpu_train_set_order(rn_exec *e, const int *order) {
    return rn_gpu_train_set_order(G(e), order);
}

static rn_status gpu_train_step(rn_exec *e) { return rn_gpu_train_steps(G(e), 1); }

static rn_status gpu_train_metrics(rn_exec *e, double *loss_sum, int64_t *correct) {
    rn_status s = rn_gpu_train_metrics(G(e), loss_sum, correct);
    if (s == RN_OK && !isfinite(*loss_sum))
        return rn_fail(RN_ERR_NUMERIC, "the loss of the last steps is %f", *loss_sum);
    return s;
}

static rn_status gpu_sync_to_host(rn_exec *e) { return rn_gpu_download(G(e), e->momentum); }
static rn_status gpu_sync_to_device(rn_exec *e) { return rn_gpu_upload(G(e), e->momentum); }
static rn_status gpu_grads_to_host(rn_exec *e) { return rn_gpu_download_grads(G(e), NULL); }

static void gpu_profile(rn_exec *e, bool on) {} /* the GPU times its own step when printing */

static rn_status gpu_profile_print(rn_exec *e, FILE *f) {
    return ((gpu_exec *)e)->training ? rn_gpu_profile(G(e), f) : RN_OK;
}

static double gpu_peak_gflops(rn_exec *e, const char **what) {
    *what = "unknown";
    return 0;
}

static const rn_exec_ops gpu_ops = {
    .close = gpu_close,
    .forward = gpu_forward,
    .evaluate = gpu_evaluate,
    .train_init = gpu_train_init,
    .train_set_order = gpu_train_set_order,
    .train_step = gpu_train_step,
    .train_metrics = gpu_train_metrics,
    .sync_to_host = gpu_sync_to_host,
    .sync_to_device = gpu_sync_to_device,
    .grads_to_host = gpu_grads_to_host,
    .profile = gpu_profile,
    .profile_print = gpu_profile_print,
    .peak_gflops = gpu_peak_gflops,
};

rn_status rn_exec_open_gpu(rn_exec **out, rn_model *m, const rn_exec_opts *o, int cuda_index,
                           int max_batch) {
    *out = NULL;
    rn_precision p;
    rn_status s = rn_precision_parse(o->precision, &p);
    if (s != RN_OK) return s;
    rn_gpu *g;
    if ((s = rn_gpu_open(&g, cuda_index, m, max_batch, p)) != RN_OK) return s;
    rn_exec *e;
    if ((s = rn_exec_alloc(&e, sizeof(gpu_exec), &gpu_ops, m, max_batch)) != RN_OK) {
        rn_gpu_close(g);
        return s;
    }
    ((gpu_exec *)e)->gpu = g;
    snprintf(e->describe, sizeof e->describe, "%s", rn_gpu_describe(g));
    *out = e;
    return RN_OK;
}
