/*
 * none.c — the GPU entry points of a build without CUDA (`make` without CUDA=1): each one
 * fails with RN_ERR_DEVICE and says how to get a build that has them.
 */
#include "core/internal.h"
#include "cuda/gpu.h"

static rn_status no_cuda(void) {
    return rn_fail(RN_ERR_DEVICE,
                   "this resnet was built without CUDA (rebuild with `make CUDA=1` on a "
                   "machine with the CUDA toolkit and cuDNN)");
}

bool rn_cuda_built(void) { return false; }
rn_status rn_gpu_count(int *n) {
    *n = 0;
    return RN_OK;
}
rn_status rn_gpu_open(rn_gpu **out, int device, rn_model *m, int max_batch, rn_precision p) {
    *out = NULL;
    return no_cuda();
}
void rn_gpu_close(rn_gpu *g) {}
const char *rn_gpu_describe(const rn_gpu *g) { return "no GPU"; }
void rn_gpu_fusions(const rn_gpu *g, int *bn_relu, int *bn_add_relu) {
    *bn_relu = *bn_add_relu = 0;
}
rn_status rn_gpu_upload(rn_gpu *g, const float *velocity) { return no_cuda(); }
rn_status rn_gpu_download(rn_gpu *g, float *velocity) { return no_cuda(); }
rn_status rn_gpu_forward(rn_gpu *g, const float *x, int n, rn_mode mode, float *logits) {
    return no_cuda();
}
rn_status rn_gpu_backward(rn_gpu *g, const float *dlogits) { return no_cuda(); }
rn_status rn_gpu_download_grads(rn_gpu *g, float *input_grad) { return no_cuda(); }
rn_status rn_gpu_evaluate(rn_gpu *g, const rn_dataset *d, const rn_norm *norm,
                          rn_eval_result *r) {
    return no_cuda();
}
rn_status rn_gpu_train_init(rn_gpu *g, const rn_dataset *train, const rn_norm *norm,
                            const rn_gpu_train_opts *o, const float *lrs, int64_t n_steps,
                            int64_t step) {
    return no_cuda();
}
void rn_gpu_train_set_grad_hook(rn_gpu *g, rn_grad_hook hook, void *user) {}
rn_status rn_gpu_train_set_order(rn_gpu *g, const int *order) { return no_cuda(); }
bool rn_gpu_train_captured(const rn_gpu *g) { return false; }
void rn_gpu_fail_next_capture(rn_gpu *g) {}
rn_status rn_gpu_train_steps(rn_gpu *g, int count) { return no_cuda(); }
rn_status rn_gpu_train_metrics(rn_gpu *g, double *loss_sum, int64_t *correct) {
    return no_cuda();
}
rn_status rn_gpu_profile(rn_gpu *g, FILE *f) { return no_cuda(); }
