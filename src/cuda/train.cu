/*
 * train.cu — training on the GPU: the data set held there as uint8, each batch built there
 * (the CPU's augmentation draws, bit for bit), and the whole step — batch, forward, loss,
 * backward, SGD update, step counter — captured once as a CUDA graph and replayed.
 */
#include "gpu.cuh"
#include "core/draws.h"
#include "kernels.cuh"

#include <string.h>

#define THREADS 256

rn_status gpu_set_upload(rn_gpu *g, gpu_set *s, const rn_dataset *d) {
    const size_t bytes = (size_t)d->n * d->c * d->h * d->w;
    cudaError_t e = cudaMalloc((void **)&s->images, RN_MAX(bytes, (size_t)1));
    if (e == cudaSuccess) e = cudaMalloc((void **)&s->labels, RN_MAX((size_t)d->n, (size_t)1) * 4);
    if (e != cudaSuccess) {
        gpu_set_free(s);
        return rn_fail(RN_ERR_DEVICE, "cannot hold a data set of %d images (%zu MB) on the GPU: %s",
                       d->n, bytes >> 20, cudaGetErrorString(e));
    }
    CU_TRY(cudaMemcpyAsync(s->images, d->images, bytes, cudaMemcpyHostToDevice, g->stream));
    CU_TRY(cudaMemcpyAsync(s->labels, d->labels, (size_t)d->n * 4, cudaMemcpyHostToDevice,
                           g->stream));
    CU_TRY(cudaStreamSynchronize(g->stream));
    s->host_images = d->images;
    s->n = d->n;
    return RN_OK;
}

void gpu_set_free(gpu_set *s) {
    cudaFree(s->images);
    cudaFree(s->labels);
    memset(s, 0, sizeof *s);
}

/* ---- batches ------------------------------------------------------------------------------ */

/* Per training image i of step *step: its source (order[(step % spe) * B + i]), label and
 * crop/flip draws, as rn_batch_fill draws them. */
__global__ void k_train_aug(int4 *aug, int *labels, const int *order, const int *set_labels,
                            const int64_t *step, int spe, int B, uint64_t seed, int augment) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B) return;
    const int64_t s = *step;
    const int idx = order[(size_t)(s % spe) * B + i];
    int dy = 0, dx = 0, flip = 0;
    if (augment) rn_draw_crop_flip(seed, s, i, 4, &dy, &dx, &flip); /* as on the host */
    aug[i] = make_int4(idx, dy, dx, flip);
    labels[i] = set_labels[idx];
}

/* Evaluation batches: images first .. first + n - 1, unchanged. */
__global__ void k_eval_aug(int4 *aug, int *labels, const int *set_labels, int first, int n,
                           int B) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B) return;
    aug[i] = make_int4(i < n ? first + i : -1, 0, 0, 0);
    labels[i] = i < n ? set_labels[first + i] : 0;
}

struct norm4 {
    float mean[4], std[4];
};

/* x (B, H, W, C) of type T from uint8 images (C, H, W): shifted by (dy, dx) with zero padding,
 * optionally mirrored, then (pixel / 255 - mean) / std, the same float operations as
 * rn_batch_fill. Images with source -1 become zeros. */
template <typename T>
__global__ void k_fill_batch(T *x, const uint8_t *images, const int4 *aug, int B, int C, int H,
                             int W, norm4 nm) {
    const size_t n = (size_t)B * H * W * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t p = i / C;
        int xx = (int)(p % W), y = (int)(p / W % H), b = (int)(p / ((size_t)W * H));
        int4 a = aug[b];
        float v;
        if (a.x < 0) {
            v = 0.f;
        } else {
            const float mean = nm.mean[c], std = nm.std[c];
            int sy = y + a.y, sx = (a.w ? W - 1 - xx : xx) + a.z;
            if (sy < 0 || sy >= H || sx < 0 || sx >= W)
                v = (0.0f - mean) / std;
            else
                v = ((float)images[(((size_t)a.x * C + c) * H + sy) * W + sx] / 255.0f - mean) / std;
        }
        x[i] = from_f<T>(v);
    }
}

static norm4 norm_of(const rn_norm *norm, int C) {
    norm4 nm;
    for (int c = 0; c < 4; c++) {
        nm.mean[c] = c < C ? norm->mean[c] : 0.f;
        nm.std[c] = c < C ? norm->std[c] : 1.f;
    }
    return nm;
}

static rn_status ensure_aug(rn_gpu *g) {
    if (g->aug) return RN_OK;
    CU_TRY(cudaMalloc((void **)&g->aug, g->max_batch * sizeof(int4)));
    return RN_OK;
}

/* The images of g->aug from set s into g->x (the model's input shape). */
static rn_status fill_batch(rn_gpu *g, const gpu_set *s, const rn_norm *norm) {
    const rn_model_opts *o = &g->m->opts;
    const int C = o->in_channels, H = o->in_height, W = o->in_width;
    const norm4 nm = norm_of(norm, C);
    const size_t n = (size_t)g->max_batch * C * H * W;
    if (g->use_bf16)
        k_fill_batch<bf16><<<grid_for(n, THREADS), THREADS, 0, g->stream>>>(
            (bf16 *)g->x, s->images, g->aug, g->max_batch, C, H, W, nm);
    else
        k_fill_batch<float><<<grid_for(n, THREADS), THREADS, 0, g->stream>>>(
            (float *)g->x, s->images, g->aug, g->max_batch, C, H, W, nm);
    LAUNCH_TRY();
    return RN_OK;
}

rn_status gpu_fill_eval_batch(rn_gpu *g, const gpu_set *s, int first,
                              int n, const rn_norm *norm) {
    RN_TRY(ensure_aug(g));
    k_eval_aug<<<(g->max_batch + 127) / 128, 128, 0, g->stream>>>(g->aug, g->labels_dev,
                                                                 s->labels, first, n,
                                                                 g->max_batch);
    LAUNCH_TRY();
    return fill_batch(g, s, norm);
}

/* ---- the training step -------------------------------------------------------------------- */

/* A step up to final gradients (batch, forward, loss, backward), enqueued on g->stream. */
static rn_status enqueue_grads(rn_gpu *g) {
    rn_model *m = g->m;
    const rn_gpu_train_opts *o = &g->topts;
    const int B = g->max_batch, K = m->opts.num_classes;
    const int spe = g->train.n / B;
    k_train_aug<<<(B + 127) / 128, 128, 0, g->stream>>>(g->aug, g->labels_dev, g->order,
                                                       g->train.labels, g->step_dev, spe, B,
                                                       o->seed, o->augment);
    LAUNCH_TRY();
    RN_TRY(fill_batch(g, &g->train, &g->train_norm));
    g->last_mode = RN_MODE_TRAIN;
    RN_TRY(gpu_forward_pass(g, RN_MODE_TRAIN));
    k_softmax_xent<<<(B + 7) / 8, 256, 0, g->stream>>>(g->dlogits_dev, g->logits, g->labels_dev,
                                                       B, B, K, o->label_smoothing, g->loss_sum,
                                                       g->counts, NULL, NULL);
    LAUNCH_TRY();
    return gpu_backward_pass(g);
}

/* The rest of a step: the SGD update, then the step counter. */
static rn_status enqueue_update(rn_gpu *g) {
    rn_model *m = g->m;
    const rn_gpu_train_opts *o = &g->topts;
    k_sgd<<<grid_for(m->n_params, THREADS), THREADS, 0, g->stream>>>(
        g->params, g->velocity, g->grads, g->decay, g->use_bf16 ? g->params_low : NULL, m->n_params,
        g->lrs, g->n_steps, g->step_dev, o->momentum, o->wd, o->nesterov);
    LAUNCH_TRY();
    k_step_advance<<<1, 1, 0, g->stream>>>(g->step_dev);
    LAUNCH_TRY();
    return RN_OK;
}

/* Everything one step does. */
static rn_status enqueue_step(rn_gpu *g) {
    RN_TRY(enqueue_grads(g));
    return enqueue_update(g);
}

/* Captures what enqueue enqueues on g->stream as an instantiated graph; *exec stays NULL (and
 * the steps run launch by launch, slower, same results) when capture fails. An error only
 * when the state left by a failed capture cannot be cleaned up. */
static rn_status capture(rn_gpu *g, rn_status (*enqueue)(rn_gpu *), cudaGraph_t *graph,
                         cudaGraphExec_t *exec) {
    *graph = NULL;
    *exec = NULL;
    cudaError_t e = cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal);
    g->capturing = e == cudaSuccess;
    rn_status s = e == cudaSuccess ? enqueue(g) : RN_OK;
    g->capturing = false;
    cudaGraph_t captured = NULL;
    /* Ended also after a failed enqueue, so that the stream leaves capture mode. */
    if (e == cudaSuccess) e = cudaStreamEndCapture(g->stream, &captured);
    if (s == RN_OK && e == cudaSuccess && captured) {
        *graph = captured;
        e = cudaGraphInstantiate(exec, captured, 0);
    }
    if (s != RN_OK || e != cudaSuccess) {
        if (*exec) cudaGraphExecDestroy(*exec);
        if (captured) cudaGraphDestroy(captured);
        *graph = NULL;
        *exec = NULL;
        cudaGetLastError();
        fprintf(stderr, "resnet: the training step could not be captured as a CUDA graph (%s); "
                        "running it launch by launch\n",
                s != RN_OK ? rn_error_message() : cudaGetErrorString(e));
        /* The launches from now on must not wait for events recorded in the discarded graph. */
        return gpu_side_reset(g);
    }
    return RN_OK;
}

void gpu_train_free(rn_gpu *g) {
    if (g->graph_exec) cudaGraphExecDestroy(g->graph_exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    if (g->graph_update_exec) cudaGraphExecDestroy(g->graph_update_exec);
    if (g->graph_update) cudaGraphDestroy(g->graph_update);
    g->graph_exec = g->graph_update_exec = NULL;
    g->graph = g->graph_update = NULL;
    gpu_set_free(&g->train);
    cudaFree(g->lrs);
    cudaFree(g->step_dev);
    cudaFree(g->order);
    cudaFree(g->aug);
    g->lrs = NULL;
    g->step_dev = NULL;
    g->order = NULL;
    g->aug = NULL;
    g->train_ready = false;
}

extern "C" rn_status rn_gpu_train_init(rn_gpu *g, const rn_dataset *train, const rn_norm *norm,
                                       const rn_gpu_train_opts *o, const float *lrs,
                                       int64_t n_steps, int64_t step) {
    rn_model *m = g->m;
    if (o->batch != g->max_batch)
        return rn_fail(RN_ERR_BAD_ARG, "GPU training batch %d, the GPU model holds %d",
                       o->batch, g->max_batch);
    if (train->n < o->batch)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d is larger than the %d training images",
                       o->batch, train->n);
    RN_TRY(rn_check_data_fits(m, train));
    if (step < 0 || step > n_steps)
        return rn_fail(RN_ERR_BAD_ARG, "step %lld of %lld", (long long)step, (long long)n_steps);
    gpu_train_free(g);
    g->topts = *o;
    g->train_norm = *norm;
    RN_TRY(gpu_set_upload(g, &g->train, train));
    RN_TRY(ensure_aug(g));
    CU_TRY(cudaMalloc((void **)&g->lrs, RN_MAX(n_steps, (int64_t)1) * sizeof(float)));
    CU_TRY(cudaMalloc((void **)&g->step_dev, sizeof(int64_t)));
    CU_TRY(cudaMalloc((void **)&g->order, (size_t)train->n * sizeof(int)));
    /* Every copy and memset on g->stream (see copy_sync in net.cu); the host buffers are
     * kept until the stream is synchronized below. */
    CU_TRY(cudaMemcpyAsync(g->lrs, lrs, n_steps * sizeof(float), cudaMemcpyHostToDevice,
                           g->stream));
    CU_TRY(cudaMemcpyAsync(g->step_dev, &step, sizeof step, cudaMemcpyHostToDevice, g->stream));
    g->n_steps = n_steps;
    /* Weight decay flags, as rn_sgd_step decides them. */
    uint8_t *decay = (uint8_t *)malloc(RN_MAX(m->n_params, (size_t)1));
    if (!decay) return rn_fail(RN_ERR_NOMEM, "out of memory");
    memset(decay, 1, m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const rn_tensor_entry *e = &m->tensors[t];
        if (e->info.kind == RN_TENSOR_PARAM && o->wd_skip_bn && e->info.is_bn_or_bias)
            memset(decay + e->off, 0, e->info.numel);
    }
    cudaError_t err = cudaMemcpyAsync(g->decay, decay, m->n_params, cudaMemcpyHostToDevice,
                                      g->stream);
    if (err == cudaSuccess) err = cudaMemsetAsync(g->loss_sum, 0, sizeof(double), g->stream);
    if (err == cudaSuccess)
        err = cudaMemsetAsync(g->counts, 0, 2 * sizeof(unsigned long long), g->stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(g->stream);
    free(decay);
    CU_TRY(err);
    g->want_input_grad = false;
    g->block_norms = o->block_norms;

    /* Capture one step, or with a hook the two halves around it. */
    if (g->hook) {
        RN_TRY(capture(g, enqueue_grads, &g->graph, &g->graph_exec));
        RN_TRY(capture(g, enqueue_update, &g->graph_update, &g->graph_update_exec));
    } else {
        RN_TRY(capture(g, enqueue_step, &g->graph, &g->graph_exec));
    }
    g->fail_capture = false;
    g->captured = g->graph_exec && (!g->hook || g->graph_update_exec);
    g->train_ready = true;
    return RN_OK;
}

extern "C" void rn_gpu_train_set_grad_hook(rn_gpu *g, rn_grad_hook hook, void *user) {
    g->hook = hook;
    g->hook_user = user;
}

extern "C" bool rn_gpu_train_captured(const rn_gpu *g) { return g->train_ready && g->captured; }
extern "C" void rn_gpu_fail_next_capture(rn_gpu *g) { g->fail_capture = true; }

extern "C" rn_status rn_gpu_train_set_order(rn_gpu *g, const int *order) {
    if (!g->train_ready) return rn_fail(RN_ERR_BAD_ARG, "GPU training was not initialized");
    CU_TRY(cudaMemcpyAsync(g->order, order, (size_t)g->train.n * sizeof(int),
                           cudaMemcpyHostToDevice, g->stream));
    return RN_OK;
}

extern "C" rn_status rn_gpu_train_steps(rn_gpu *g, int count) {
    if (!g->train_ready) return rn_fail(RN_ERR_BAD_ARG, "GPU training was not initialized");
    for (int i = 0; i < count; i++) {
        if (!g->hook) {
            if (g->graph_exec) CU_TRY(cudaGraphLaunch(g->graph_exec, g->stream));
            else RN_TRY(enqueue_step(g));
            continue;
        }
        if (g->graph_exec) CU_TRY(cudaGraphLaunch(g->graph_exec, g->stream));
        else RN_TRY(enqueue_grads(g));
        CU_TRY(cudaStreamSynchronize(g->stream));
        RN_TRY(g->hook(g->hook_user, g->grads, g->m->n_params, true));
        if (g->graph_update_exec) CU_TRY(cudaGraphLaunch(g->graph_update_exec, g->stream));
        else RN_TRY(enqueue_update(g));
    }
    g->train_forwards += count;
    return RN_OK;
}

extern "C" rn_status rn_gpu_train_metrics(rn_gpu *g, double *loss_sum, int64_t *correct) {
    double l = 0;
    unsigned long long c = 0;
    CU_TRY(cudaMemcpyAsync(&l, g->loss_sum, sizeof l, cudaMemcpyDeviceToHost, g->stream));
    CU_TRY(cudaMemcpyAsync(&c, g->counts, sizeof c, cudaMemcpyDeviceToHost, g->stream));
    CU_TRY(cudaMemsetAsync(g->loss_sum, 0, sizeof(double), g->stream));
    CU_TRY(cudaMemsetAsync(g->counts, 0, sizeof(unsigned long long), g->stream));
    CU_TRY(cudaStreamSynchronize(g->stream));
    *loss_sum = l / g->max_batch;
    *correct = (int64_t)c;
    return RN_OK;
}

/* ---- profile ------------------------------------------------------------------------------ */

static const char *kind_name(rn_node_kind k) {
    static const char *const names[] = {"conv", "bn", "relu", "add", "shortcut_a", "maxpool",
                                        "avgpool", "linear"};
    return names[k];
}

extern "C" rn_status rn_gpu_profile(rn_gpu *g, FILE *f) {
    if (!g->train_ready) return rn_fail(RN_ERR_BAD_ARG, "GPU training was not initialized");
    rn_model *m = g->m;
    const int n = m->n_nodes;
    cudaEvent_t ev[2 * 512 + 4];
    if (n > 512) return rn_fail(RN_ERR_BAD_ARG, "too many layers to profile");
    for (int i = 0; i < 2 * n + 4; i++) CU_TRY(cudaEventCreate(&ev[i]));
    g->prof_fwd = ev;
    g->prof_bwd = g->prof_bwd_base = ev + n + 1;
    cudaEvent_t t0 = ev[2 * n + 2], t1 = ev[2 * n + 3];
    CU_TRY(cudaEventRecord(t0, g->stream));
    rn_status s = enqueue_step(g);
    g->prof_fwd = g->prof_bwd = NULL;
    if (s != RN_OK) return s;
    CU_TRY(cudaEventRecord(t1, g->stream));
    CU_TRY(cudaStreamSynchronize(g->stream));
    g->train_forwards++;
    float fwd[8] = {0}, bwd[8] = {0}, total;
    int count[8] = {0};
    fprintf(f, "convolutions (ms):\n");
    for (int i = 0; i < n; i++) {
        const rn_node *nd = &m->nodes[i];
        rn_node_kind k = nd->kind;
        float fm, bm;
        /* Forward: from node i's event to the next; backward (run from the last node down):
         * from node i's event to node i-1's. */
        CU_TRY(cudaEventElapsedTime(&fm, ev[i], ev[i + 1]));
        CU_TRY(cudaEventElapsedTime(&bm, g->prof_bwd_base[i + 1], g->prof_bwd_base[i]));
        fwd[k] += fm;
        bwd[k] += bm;
        count[k]++;
        if (k == RN_NODE_CONV)
            fprintf(f, "  %-22s %4d -> %4d  %3dx%-3d %dx%d/%d  fwd %.3f  bwd %.3f\n", nd->name,
                    nd->d.conv.C, nd->d.conv.K, nd->d.conv.H, nd->d.conv.W, nd->d.conv.R,
                    nd->d.conv.S, nd->d.conv.stride, fm, bm);
    }
    CU_TRY(cudaEventElapsedTime(&total, t0, t1));
    float sum = 0;
    fprintf(f, "one training step launched op by op (no graph), by op kind (a BN fused with "
               "its ReLU and residual add counts them):\n");
    fprintf(f, "  %-11s %5s %10s %10s\n", "op", "count", "fwd ms", "bwd ms");
    for (int k = 0; k < 8; k++) {
        if (!count[k]) continue;
        fprintf(f, "  %-11s %5d %10.3f %10.3f\n", kind_name((rn_node_kind)k), count[k], fwd[k],
                bwd[k]);
        sum += fwd[k] + bwd[k];
    }
    fprintf(f, "  layers %.3f ms; whole step %.3f ms (batch, loss, SGD and gaps: %.3f ms)\n", sum,
            total, total - sum);
    for (int i = 0; i < 2 * n + 4; i++) cudaEventDestroy(ev[i]);
    return RN_OK;
}
