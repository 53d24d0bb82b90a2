/*
 * net.cu — a model on a GPU: opening the device, the state and its transfers to and from the
 * host model, the forward and backward passes (cuDNN convolutions, cuBLAS classifier, the
 * kernels of kernels.cuh), and evaluation.
 */
#include "gpu.cuh"
#include "kernels.cuh"

#include <math.h>
#include <string.h>

#define THREADS 256

static size_t value_elems(const rn_model *m, int v) {
    const rn_value *x = &m->values[v];
    return (size_t)x->c * x->h * x->w;
}
/* Activations and gradient slots of value v (the input and its gradient for v == 0). Values
 * produced by the average pool and the classifier are fp32 in every precision. */
static void *act(rn_gpu *g, int v) {
    if (v == 0) return g->x;
    if (g->fp32_act[v]) return g->fp32_act[v];
    return (char *)g->acts + g->voff[v] * g->elem;
}
static void *grad(rn_gpu *g, int v) {
    if (v == 0) return g->din;
    if (g->fp32_grad[v]) return g->fp32_grad[v];
    return (char *)g->dacts + g->vgoff[v] * g->elem;
}
static float *P(rn_gpu *g, int t) { return t < 0 ? NULL : g->params + g->m->tensors[t].off; }
static float *G(rn_gpu *g, int t) { return t < 0 ? NULL : g->grads + g->m->tensors[t].off; }


/* ---- opening ------------------------------------------------------------------------------ */

static rn_status device_error(const char *what, cudaError_t e) {
    return rn_fail(RN_ERR_DEVICE, "%s: %s", what, cudaGetErrorString(e));
}

static rn_status setup_conv(rn_gpu *g, const rn_node *nd, gpu_conv *c) {
    const rn_conv_desc *d = &nd->d.conv;
    const int N = g->max_batch;
    const cudnnDataType_t dt = g->use_bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    const cudnnMathType_t math = g->precision == RN_PRECISION_FP32 ? CUDNN_FMA_MATH
                                 : g->use_bf16                         ? CUDNN_TENSOR_OP_MATH
                                                                   : CUDNN_DEFAULT_MATH;
    CUDNN_TRY(cudnnCreateTensorDescriptor(&c->x));
    CUDNN_TRY(cudnnCreateTensorDescriptor(&c->y));
    CUDNN_TRY(cudnnCreateFilterDescriptor(&c->w));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(c->x, CUDNN_TENSOR_NHWC, dt, N, d->C, d->H, d->W));
    CUDNN_TRY(cudnnSetTensor4dDescriptor(c->y, CUDNN_TENSOR_NHWC, dt, N, d->K, d->Ho, d->Wo));
    CUDNN_TRY(cudnnSetFilter4dDescriptor(c->w, dt, CUDNN_TENSOR_NHWC, d->K, d->C, d->R, d->S));
    cudnnConvolutionDescriptor_t *descs[3] = {&c->fwd, &c->bwd_data, &c->bwd_filter};
    for (int i = 0; i < 3; i++) {
        CUDNN_TRY(cudnnCreateConvolutionDescriptor(descs[i]));
        CUDNN_TRY(cudnnSetConvolution2dDescriptor(*descs[i], d->pad, d->pad, d->stride,
                                                  d->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                                  CUDNN_DATA_FLOAT));
        CUDNN_TRY(cudnnSetConvolutionMathType(*descs[i], math));
    }
    const size_t ws_limit = (size_t)1 << 30;
    int count;
    /* Each search times every algorithm on this GPU and returns them fastest first; the first
     * that ran and fits the workspace limit wins, with the math type it was timed with. */
    {
        cudnnConvolutionFwdAlgoPerf_t perf[16];
        CUDNN_TRY(cudnnFindConvolutionForwardAlgorithm(g->cudnn, c->x, c->w, c->fwd, c->y, 16,
                                                       &count, perf));
        int k = 0;
        while (k < count && (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > ws_limit))
            k++;
        if (k == count)
            return rn_fail(RN_ERR_DEVICE, "%s: cuDNN has no forward algorithm for this convolution",
                           nd->name);
        c->fwd_algo = perf[k].algo;
        CUDNN_TRY(cudnnSetConvolutionMathType(c->fwd, perf[k].mathType));
        g->ws_bytes = RN_MAX(g->ws_bytes, perf[k].memory);
    }
    {
        cudnnConvolutionBwdDataAlgoPerf_t perf[16];
        CUDNN_TRY(cudnnFindConvolutionBackwardDataAlgorithm(g->cudnn, c->w, c->y, c->bwd_data,
                                                            c->x, 16, &count, perf));
        int k = 0;
        while (k < count && (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > ws_limit))
            k++;
        if (k == count)
            return rn_fail(RN_ERR_DEVICE,
                           "%s: cuDNN has no backward-data algorithm for this convolution",
                           nd->name);
        c->data_algo = perf[k].algo;
        CUDNN_TRY(cudnnSetConvolutionMathType(c->bwd_data, perf[k].mathType));
        g->ws_bytes = RN_MAX(g->ws_bytes, perf[k].memory);
    }
    {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[16];
        CUDNN_TRY(cudnnFindConvolutionBackwardFilterAlgorithm(g->cudnn, c->x, c->y, c->bwd_filter,
                                                              c->w, 16, &count, perf));
        int k = 0;
        while (k < count && (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > ws_limit))
            k++;
        if (k == count)
            return rn_fail(RN_ERR_DEVICE,
                           "%s: cuDNN has no backward-filter algorithm for this convolution",
                           nd->name);
        c->filter_algo = perf[k].algo;
        CUDNN_TRY(cudnnSetConvolutionMathType(c->bwd_filter, perf[k].mathType));
        g->ws_bytes = RN_MAX(g->ws_bytes, perf[k].memory);
    }
    return RN_OK;
}

/* cudaMalloc with a message that names what did not fit. */
static rn_status dev_alloc(void **p, size_t bytes, const char *what) {
    cudaError_t e = cudaMalloc(p, RN_MAX(bytes, (size_t)16));
    if (e != cudaSuccess)
        return rn_fail(RN_ERR_DEVICE, "cannot allocate %zu MB on the GPU for %s: %s",
                       bytes >> 20, what, cudaGetErrorString(e));
    return RN_OK;
}
#define ALLOC(p, bytes, what) RN_TRY(dev_alloc((void **)&(p), (bytes), (what)))

static void plan_fusions(rn_gpu *g);

/* The NVIDIA driver branch that first supports CUDA `major` (NVIDIA's compatibility table). */
static int driver_branch_for(int major) {
    return major >= 13 ? 580 : major == 12 ? 525 : major == 11 ? 450 : 0;
}

extern "C" rn_status rn_gpu_count(int *n) {
    *n = 0;
    int drv = 0;
    /* The version is 0, and the call succeeds, when no driver is installed. */
    if (cudaDriverGetVersion(&drv) != cudaSuccess || drv == 0) {
        cudaGetLastError();
        return RN_OK;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorNoDevice) {
        cudaGetLastError();
        return RN_OK;
    }
    if (e == cudaErrorInsufficientDriver) {
        /* The runtime is linked statically (Makefile): a CUDA 13 build needs a driver for
         * CUDA 13 whichever way it is linked; a build with an older toolkit runs on older
         * drivers. */
        const int need = CUDART_VERSION / 1000;
        return rn_fail(RN_ERR_DEVICE,
                       "the NVIDIA driver supports CUDA %d.%d, but this resnet was built with "
                       "CUDA %d.%d and needs a driver for CUDA %d.0 or newer (R%d or newer): "
                       "update the driver, or rebuild with an older toolkit (make CUDA=1 "
                       "CUDA_HOME=...)",
                       drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000,
                       CUDART_VERSION % 1000 / 10, need, driver_branch_for(need));
    }
    if (e != cudaSuccess) return device_error("cannot count the CUDA GPUs (cudaGetDeviceCount)", e);
    *n = count;
    return RN_OK;
}

static rn_status open_impl(rn_gpu *g) {
    rn_model *m = g->m;
    int n_dev = 0;
    RN_TRY(rn_gpu_count(&n_dev));
    if (n_dev == 0)
        return rn_fail(RN_ERR_DEVICE, "cuda:%d: this machine has no CUDA GPU (or no NVIDIA "
                                      "driver)", g->device);
    if (g->device >= n_dev)
        return rn_fail(RN_ERR_DEVICE, "cuda:%d: this machine has %d CUDA GPU%s", g->device,
                       n_dev, n_dev == 1 ? "" : "s");
    CU_TRY(cudaSetDevice(g->device));
    cudaDeviceProp prop;
    CU_TRY(cudaGetDeviceProperties(&prop, g->device));
    int drv = 0;
    cudaDriverGetVersion(&drv);
    snprintf(g->describe, sizeof g->describe,
             "%.120s (cuda:%d, sm_%d%d, %.0f GB, driver CUDA %d.%d, cuDNN %zu, %s)", prop.name,
             g->device, prop.major, prop.minor, prop.totalGlobalMem / 1e9, drv / 1000,
             drv % 1000 / 10, cudnnGetVersion(), rn_precision_name(g->precision));
    if (g->use_bf16 && prop.major < 8)
        return rn_fail(RN_ERR_DEVICE, "%s: bf16 needs compute capability 8.0 or newer",
                       prop.name);
    CU_TRY(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking));
    CUDNN_TRY(cudnnCreate(&g->cudnn));
    CUDNN_TRY(cudnnSetStream(g->cudnn, g->stream));
    CUBLAS_TRY(cublasCreate(&g->cublas));
    CUBLAS_TRY(cublasSetStream(g->cublas, g->stream));
    const size_t cublas_ws = (size_t)32 << 20;
    ALLOC(g->cublas_ws, cublas_ws, "cuBLAS");
    CUBLAS_TRY(cublasSetWorkspace(g->cublas, g->cublas_ws, cublas_ws));
    CUBLAS_TRY(cublasSetMathMode(g->cublas, g->precision == RN_PRECISION_FP32
                                                ? CUBLAS_DEFAULT_MATH
                                                : CUBLAS_TF32_TENSOR_OP_MATH));

    /* The GPU's own memory plan for max_batch images (its fusions are its own, see FUSE_*). */
    RN_TRY(rn_plan_memory(&g->plan, m, g->max_batch, NULL, false));
    const size_t B = g->max_batch;
    /* What the GPU path supports: the zoo's graphs. */
    for (int i = 0; i < m->n_nodes; i++) {
        const rn_node *nd = &m->nodes[i];
        if (nd->kind == RN_NODE_CONV && nd->bias >= 0)
            return rn_fail(RN_ERR_DEVICE, "%s: convolutions with a bias are not supported on "
                                          "the GPU", nd->name);
        if (nd->kind == RN_NODE_LINEAR && m->nodes[m->values[nd->in].producer].kind !=
                                              RN_NODE_AVGPOOL)
            return rn_fail(RN_ERR_DEVICE, "%s: the GPU path expects the classifier after the "
                                          "average pool", nd->name);
    }
    if (m->nodes[m->n_nodes - 1].kind != RN_NODE_LINEAR)
        return rn_fail(RN_ERR_DEVICE, "%s: the GPU path expects a classifier last", m->name);

    ALLOC(g->acts, g->plan.act_floats * g->elem, "activations");
    ALLOC(g->dacts, g->plan.grad_floats * g->elem, "gradients");
    size_t in_elems = B * value_elems(m, 0);
    ALLOC(g->x, in_elems * g->elem, "the input batch");
    ALLOC(g->din, in_elems * g->elem, "the input gradient");
    ALLOC(g->x_stage, in_elems * sizeof(float), "the input staging buffer");
    g->fp32_act = (float **)calloc(m->n_values, sizeof(float *));
    g->fp32_grad = (float **)calloc(m->n_values, sizeof(float *));
    g->stat_off = (size_t *)calloc(m->n_nodes, sizeof(size_t));
    g->fuse = (int *)calloc(m->n_nodes, sizeof(int));
    if (!g->fuse) return rn_fail(RN_ERR_NOMEM, "cannot allocate the GPU model's tables");
    g->voff = g->plan.off;
    g->vgoff = g->plan.goff;
    g->conv = (gpu_conv *)calloc(m->n_nodes, sizeof(gpu_conv));
    if (!g->fp32_act || !g->fp32_grad || !g->stat_off || !g->conv)
        return rn_fail(RN_ERR_NOMEM, "cannot allocate the GPU model's tables");
    size_t stat_floats = 0, part_doubles = 1;
    int max_c = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        const rn_node *nd = &m->nodes[i];
        if (nd->kind == RN_NODE_AVGPOOL || nd->kind == RN_NODE_LINEAR) {
            size_t bytes = B * value_elems(m, nd->out) * sizeof(float);
            ALLOC(g->fp32_act[nd->out], bytes, "the classifier");
            ALLOC(g->fp32_grad[nd->out], bytes, "the classifier");
        }
        if (nd->kind == RN_NODE_BN) {
            const int C = nd->d.bn.C;
            if (C % 4 != 0 || (C / 4 > 32 && (C / 4) % 32 != 0))
                return rn_fail(RN_ERR_DEVICE, "%s: BN over %d channels is not supported on the "
                                              "GPU (a multiple of 4, of 128 above 128)",
                               nd->name, C);
            part_doubles = RN_MAX(part_doubles, 2 * (size_t)bn_grid_for(C, B * nd->d.bn.HW).P * C);
            g->stat_off[i] = stat_floats;
            stat_floats += 4 * (size_t)nd->d.bn.C;
            max_c = RN_MAX(max_c, nd->d.bn.C);
        }
    }
    ALLOC(g->stat, RN_MAX(stat_floats, (size_t)1) * sizeof(float), "BN statistics");
    ALLOC(g->bn_part, part_doubles * sizeof(double), "BN sums");
    plan_fusions(g);
    ALLOC(g->bn_coef, 3 * (size_t)max_c * sizeof(float), "BN sums");
    const int K = m->opts.num_classes;
    g->logits = g->fp32_act[m->nodes[m->n_nodes - 1].out];
    g->dlogits_dev = g->fp32_grad[m->nodes[m->n_nodes - 1].out];
    ALLOC(g->labels_dev, B * sizeof(int), "labels");
    ALLOC(g->loss_sum, 2 * sizeof(double), "metrics");
    ALLOC(g->counts, (3 + (size_t)K * K) * sizeof(unsigned long long), "metrics");
    ALLOC(g->block_sumsq, (m->n_blocks + 1) * sizeof(double), "gradient norms");

    ALLOC(g->params, m->n_params * sizeof(float), "parameters");
    ALLOC(g->grads, m->n_params * sizeof(float), "gradients");
    ALLOC(g->velocity, m->n_params * sizeof(float), "momentum");
    ALLOC(g->buffers, RN_MAX(m->n_buffers, (size_t)1) * sizeof(float), "BN buffers");
    ALLOC(g->decay, m->n_params, "weight decay flags");
    CU_TRY(cudaMemsetAsync(g->grads, 0, m->n_params * sizeof(float), g->stream));
    CU_TRY(cudaMemsetAsync(g->velocity, 0, m->n_params * sizeof(float), g->stream));
    if (g->use_bf16) {
        ALLOC(g->params_low, m->n_params * sizeof(bf16), "bf16 weights");
        ALLOC(g->grads_low, m->n_params * sizeof(bf16), "bf16 gradients");
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].kind == RN_NODE_CONV) RN_TRY(setup_conv(g, &m->nodes[i], &g->conv[i]));
    ALLOC(g->ws, g->ws_bytes, "the convolution workspace");
    const char *streams = getenv("RN_GPU_STREAMS");
    g->side = !(streams && !strcmp(streams, "1"));
    g->ev_ready = (cudaEvent_t *)calloc(m->n_nodes, sizeof(cudaEvent_t));
    g->ev_done = (cudaEvent_t *)calloc(m->n_nodes, sizeof(cudaEvent_t));
    g->pending = (int *)calloc(m->n_nodes, sizeof(int));
    if (!g->ev_ready || !g->ev_done || !g->pending)
        return rn_fail(RN_ERR_NOMEM, "cannot allocate the GPU model's tables");
    if (g->side) {
        CU_TRY(cudaStreamCreateWithFlags(&g->stream2, cudaStreamNonBlocking));
        CUDNN_TRY(cudnnCreate(&g->cudnn2));
        CUDNN_TRY(cudnnSetStream(g->cudnn2, g->stream2));
        ALLOC(g->ws2, g->ws_bytes, "the second convolution workspace");
        for (int i = 0; i < m->n_nodes; i++)
            if (m->nodes[i].kind == RN_NODE_CONV) {
                CU_TRY(cudaEventCreateWithFlags(&g->ev_ready[i], cudaEventDisableTiming));
                CU_TRY(cudaEventCreateWithFlags(&g->ev_done[i], cudaEventDisableTiming));
            }
    }
    CU_TRY(cudaStreamSynchronize(g->stream));
    return RN_OK;
}

extern "C" bool rn_cuda_built(void) { return true; }

extern "C" rn_status rn_gpu_open(rn_gpu **out, int device, rn_model *m, int max_batch,
                                 rn_precision p) {
    *out = NULL;
    if (max_batch < 1) return rn_fail(RN_ERR_BAD_ARG, "batch size %d must be at least 1", max_batch);
    rn_gpu *g = (rn_gpu *)calloc(1, sizeof *g);
    if (!g) return rn_fail(RN_ERR_NOMEM, "out of memory");
    g->m = m;
    g->device = device;
    g->max_batch = max_batch;
    g->precision = p;
    g->use_bf16 = p == RN_PRECISION_BF16;
    g->elem = g->use_bf16 ? sizeof(bf16) : sizeof(float);
    rn_status s = open_impl(g);
    if (s == RN_OK) s = rn_gpu_upload(g, NULL);
    if (s != RN_OK) {
        rn_gpu_close(g);
        return s;
    }
    *out = g;
    return RN_OK;
}

extern "C" void rn_gpu_close(rn_gpu *g) {
    if (!g) return;
    if (g->stream) cudaStreamSynchronize(g->stream);
    gpu_train_free(g);
    for (int i = 0; i < 2; i++) gpu_set_free(&g->sets[i]);
    const rn_model *m = g->m;
    if (g->conv)
        for (int i = 0; i < m->n_nodes; i++) {
            gpu_conv *c = &g->conv[i];
            if (c->x) cudnnDestroyTensorDescriptor(c->x);
            if (c->y) cudnnDestroyTensorDescriptor(c->y);
            if (c->w) cudnnDestroyFilterDescriptor(c->w);
            if (c->fwd) cudnnDestroyConvolutionDescriptor(c->fwd);
            if (c->bwd_data) cudnnDestroyConvolutionDescriptor(c->bwd_data);
            if (c->bwd_filter) cudnnDestroyConvolutionDescriptor(c->bwd_filter);
        }
    if (g->fp32_act)
        for (int v = 0; v < m->n_values; v++) {
            cudaFree(g->fp32_act[v]);
            cudaFree(g->fp32_grad[v]);
        }
    void *bufs[] = {g->acts, g->dacts, g->x, g->din, g->x_stage, g->stat, g->bn_part,
                    g->bn_coef, g->labels_dev, g->loss_sum, g->counts, g->block_sumsq,
                    g->params, g->grads, g->velocity, g->buffers, g->decay, g->params_low,
                    g->grads_low, g->ws, g->cublas_ws};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
    if (g->ev_ready)
        for (int i = 0; i < m->n_nodes; i++) {
            if (g->ev_ready[i]) cudaEventDestroy(g->ev_ready[i]);
            if (g->ev_done[i]) cudaEventDestroy(g->ev_done[i]);
        }
    free(g->ev_ready);
    free(g->ev_done);
    free(g->pending);
    if (g->cudnn2) cudnnDestroy(g->cudnn2);
    if (g->stream2) cudaStreamDestroy(g->stream2);
    cudaFree(g->ws2);
    if (g->cublas) cublasDestroy(g->cublas);
    if (g->cudnn) cudnnDestroy(g->cudnn);
    if (g->stream) cudaStreamDestroy(g->stream);
    free(g->fp32_act);
    free(g->fp32_grad);
    free(g->stat_off);
    free(g->fuse);
    rn_plan_free(&g->plan);
    free(g->conv);
    free(g);
}

extern "C" const char *rn_gpu_describe(const rn_gpu *g) { return g->describe; }

/* ---- state transfers ---------------------------------------------------------------------- */

/* Converts a host-layout parameter block (conv weights K,C,R,S) to the GPU layout (K,R,S,C),
 * or back when to_gpu is false. */
static void convert_layout(const rn_model *m, float *dst, const float *src, bool to_gpu) {
    memcpy(dst, src, m->n_params * sizeof(float));
    for (int i = 0; i < m->n_nodes; i++) {
        const rn_node *nd = &m->nodes[i];
        if (nd->kind != RN_NODE_CONV) continue;
        const rn_conv_desc *d = &nd->d.conv;
        const size_t off = m->tensors[nd->weight].off, RS = (size_t)d->R * d->S;
        for (int k = 0; k < d->K; k++)
            for (int c = 0; c < d->C; c++)
                for (size_t rs = 0; rs < RS; rs++) {
                    size_t host = (((size_t)k * d->C + c) * RS) + rs;
                    size_t dev = ((size_t)k * RS + rs) * d->C + c;
                    if (to_gpu) dst[off + dev] = src[off + host];
                    else dst[off + host] = src[off + dev];
                }
    }
}

/* Copies between host and GPU memory on the GPU's stream (every transfer and memset goes
 * there: the work runs on a non-blocking stream, which does not wait for the legacy default
 * stream that cudaMemcpy and cudaMemset use) and waits for the copy. */
static cudaError_t copy_sync(rn_gpu *g, void *dst, const void *src, size_t bytes,
                             cudaMemcpyKind kind) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, g->stream);
    return e == cudaSuccess ? cudaStreamSynchronize(g->stream) : e;
}

/* Copies a host parameter-shaped block to the GPU in the GPU layout. */
static rn_status upload_block(rn_gpu *g, float *dev, const float *host) {
    const rn_model *m = g->m;
    float *tmp = (float *)malloc(RN_MAX(m->n_params, (size_t)1) * sizeof(float));
    if (!tmp) return rn_fail(RN_ERR_NOMEM, "out of memory");
    convert_layout(m, tmp, host, true);
    cudaError_t e = copy_sync(g, dev, tmp, m->n_params * sizeof(float), cudaMemcpyHostToDevice);
    free(tmp);
    CU_TRY(e);
    return RN_OK;
}
static rn_status download_block(rn_gpu *g, float *host, const float *dev) {
    const rn_model *m = g->m;
    float *tmp = (float *)malloc(RN_MAX(m->n_params, (size_t)1) * sizeof(float));
    if (!tmp) return rn_fail(RN_ERR_NOMEM, "out of memory");
    cudaError_t e = copy_sync(g, tmp, dev, m->n_params * sizeof(float), cudaMemcpyDeviceToHost);
    if (e == cudaSuccess) convert_layout(m, host, tmp, false);
    free(tmp);
    CU_TRY(e);
    return RN_OK;
}

extern "C" rn_status rn_gpu_upload(rn_gpu *g, const float *velocity) {
    rn_model *m = g->m;
    CU_TRY(cudaStreamSynchronize(g->stream));
    RN_TRY(upload_block(g, g->params, m->params));
    if (velocity) RN_TRY(upload_block(g, g->velocity, velocity));
    else CU_TRY(cudaMemsetAsync(g->velocity, 0, m->n_params * sizeof(float), g->stream));
    if (m->n_buffers)
        CU_TRY(copy_sync(g, g->buffers, m->buffers, m->n_buffers * sizeof(float),
                         cudaMemcpyHostToDevice));
    if (g->use_bf16) {
        k_cast<float, bf16><<<grid_for(m->n_params, THREADS), THREADS, 0, g->stream>>>(
            g->params_low, g->params, m->n_params);
        LAUNCH_TRY();
    }
    CU_TRY(cudaStreamSynchronize(g->stream));
    g->train_forwards = 0;
    return RN_OK;
}

extern "C" rn_status rn_gpu_download(rn_gpu *g, float *velocity) {
    rn_model *m = g->m;
    CU_TRY(cudaStreamSynchronize(g->stream));
    RN_TRY(download_block(g, m->params, g->params));
    if (velocity) RN_TRY(download_block(g, velocity, g->velocity));
    if (m->n_buffers)
        CU_TRY(copy_sync(g, m->buffers, g->buffers, m->n_buffers * sizeof(float),
                         cudaMemcpyDeviceToHost));
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].kind == RN_NODE_BN)
            m->counters[m->tensors[m->nodes[i].counter].off] += g->train_forwards;
    g->train_forwards = 0;
    return RN_OK;
}

/* ---- the passes --------------------------------------------------------------------------- */

/* Fusions, found once per model: a BN whose output only an in-place ReLU reads runs as one
 * kernel with it (FUSE_RELU), and a BN followed by an in-place residual add and an in-place
 * ReLU (the end of a residual block) as one kernel with both (FUSE_ADD_RELU); the nodes
 * folded in are marked FOLDED and skipped. */
enum { FUSE_NONE = 0, FUSE_RELU = 1, FUSE_ADD_RELU = 2, FOLDED = -1 };

static void plan_fusions(rn_gpu *g) {
    const rn_model *m = g->m;
    for (int i = 0; i < m->n_nodes; i++) {
        const rn_node *bn = &m->nodes[i];
        if (bn->kind != RN_NODE_BN || g->fuse[i] == FOLDED) continue;
        const rn_node *a = i + 1 < m->n_nodes ? &m->nodes[i + 1] : NULL;
        const rn_node *b = i + 2 < m->n_nodes ? &m->nodes[i + 2] : NULL;
        bool in_place_a = a && a->in == bn->out && g->voff[a->out] == g->voff[bn->out];
        if (in_place_a && a->kind == RN_NODE_RELU) {
            g->fuse[i] = FUSE_RELU;
            g->fuse[i + 1] = FOLDED;
        } else if (in_place_a && a->kind == RN_NODE_ADD && a->in2 != bn->out && b &&
                   b->kind == RN_NODE_RELU && b->in == a->out &&
                   g->voff[b->out] == g->voff[a->out]) {
            g->fuse[i] = FUSE_ADD_RELU;
            g->fuse[i + 1] = g->fuse[i + 2] = FOLDED;
        }
    }
}

extern "C" void rn_gpu_fusions(const rn_gpu *g, int *bn_relu, int *bn_add_relu) {
    *bn_relu = *bn_add_relu = 0;
    for (int i = 0; i < g->m->n_nodes; i++) {
        *bn_relu += g->fuse[i] == FUSE_RELU;
        *bn_add_relu += g->fuse[i] == FUSE_ADD_RELU;
    }
}

/* The value a (possibly fused) node finally writes. */
static int final_out(const rn_gpu *g, int i) {
    const rn_model *m = g->m;
    return m->nodes[i + (g->fuse[i] > 0 ? g->fuse[i] : 0)].out;
}

template <typename T> static rn_status forward_t(rn_gpu *g, rn_mode mode) {
    rn_model *m = g->m;
    const int N = g->max_batch;
    const float one = 1.f, zero = 0.f;
    cudaStream_t st = g->stream;
    if (g->prof_fwd) CU_TRY(cudaEventRecord(g->prof_fwd[0], st));
    for (int i = 0; i < m->n_nodes; i++) {
        if (i > 0 && g->prof_fwd) CU_TRY(cudaEventRecord(g->prof_fwd[i], st));
        if (g->fuse[i] == FOLDED) continue;
        const rn_node *nd = &m->nodes[i];
        T *in = (T *)act(g, nd->in), *out = (T *)act(g, nd->out);
        const size_t n_out = (size_t)N * value_elems(m, nd->out);
        switch (nd->kind) {
        case RN_NODE_CONV: {
            const gpu_conv *c = &g->conv[i];
            const void *w = g->use_bf16
                                ? (const void *)(g->params_low + m->tensors[nd->weight].off)
                                : (const void *)P(g, nd->weight);
            CUDNN_TRY(cudnnConvolutionForward(g->cudnn, &one, c->x, in, c->w, w, c->fwd,
                                              c->fwd_algo, g->ws, g->ws_bytes, &zero, c->y,
                                              out));
            break;
        }
        case RN_NODE_BN: {
            const int C = nd->d.bn.C;
            const size_t M = (size_t)N * nd->d.bn.HW;
            float *stat = g->stat + g->stat_off[i];
            float *rm = g->buffers + m->tensors[nd->running_mean].off;
            float *rv = g->buffers + m->tensors[nd->running_var].off;
            if (mode == RN_MODE_TRAIN) {
                bn_grid bg = bn_grid_for(C, M);
                k_bn_part<T><<<bg.grid, bg.block, BN_SHARED, st>>>(g->bn_part, 0, in, NULL, NULL,
                                                                   NULL, 0, NULL, C, M);
                LAUNCH_TRY();
                k_bn_stats_final<<<(C + 31) / 32, dim3(32, 8), 0, st>>>(
                    stat, rm, rv, g->bn_part, bg.P, P(g, nd->weight), P(g, nd->bias), C, M,
                    nd->d.bn.eps, nd->d.bn.momentum);
            } else {
                k_bn_eval_stats<<<(C + 127) / 128, 128, 0, st>>>(
                    stat, rm, rv, P(g, nd->weight), P(g, nd->bias), C, nd->d.bn.eps);
            }
            LAUNCH_TRY();
            const T *res = g->fuse[i] == FUSE_ADD_RELU ? (const T *)act(g, m->nodes[i + 1].in2)
                                                       : NULL;
            k_bn_apply<T><<<grid_for(n_out / 4, THREADS), THREADS, 0, st>>>(
                out, in, res, g->fuse[i] != FUSE_NONE, stat, C, n_out);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_RELU:
            k_relu_fwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(out, in, n_out);
            LAUNCH_TRY();
            break;
        case RN_NODE_ADD:
            k_add_fwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(
                out, in, (const T *)act(g, nd->in2), n_out);
            LAUNCH_TRY();
            break;
        case RN_NODE_SHORTCUT_A: {
            const rn_shortcut_a_desc *d = &nd->d.sa;
            k_shortcut_a_fwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(
                out, in, N, d->C, d->H, d->W, d->K, d->stride, d->Ho, d->Wo);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_MAXPOOL: {
            const rn_pool_desc *d = &nd->d.pool;
            k_maxpool_fwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(
                out, in, N, d->C, d->H, d->W, d->k, d->stride, d->pad, d->Ho, d->Wo);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_AVGPOOL: {
            const rn_value *v = &m->values[nd->in];
            k_avgpool_fwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(
                (float *)act(g, nd->out), in, N, v->c, v->h * v->w);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_LINEAR: {
            const int I = nd->d.lin.I, O = nd->d.lin.O;
            float *o = (float *)act(g, nd->out);
            k_bias_fill<<<grid_for(n_out, THREADS), THREADS, 0, st>>>(o, P(g, nd->bias), N, O);
            LAUNCH_TRY();
            /* Row-major out (N, O) = in (N, I) . W (O, I)^T + bias, as column-major
             * out^T = W^T' . in^T. */
            CUBLAS_TRY(cublasSgemm(g->cublas, CUBLAS_OP_T, CUBLAS_OP_N, O, N, I, &one,
                                   P(g, nd->weight), I, (const float *)act(g, nd->in), I, &one,
                                   o, O));
            break;
        }
        }
    }
    if (g->prof_fwd) CU_TRY(cudaEventRecord(g->prof_fwd[m->n_nodes], st));
    return RN_OK;
}

rn_status gpu_forward_pass(rn_gpu *g, rn_mode mode) {
    return g->use_bf16 ? forward_t<bf16>(g, mode) : forward_t<float>(g, mode);
}

rn_status gpu_side_reset(rn_gpu *g) {
    const rn_model *m = g->m;
    if (!g->side) return RN_OK;
    memset(g->pending, 0, m->n_nodes * sizeof(int));
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    cudaError_t e = cudaStreamIsCapturing(g->stream2, &cs);
    if (e != cudaSuccess || cs != cudaStreamCaptureStatusNone) {
        cudaGetLastError();
        g->side = false; /* one stream from now on: slower, the same results */
        return RN_OK;
    }
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].kind == RN_NODE_CONV) {
            cudaEventDestroy(g->ev_ready[i]);
            cudaEventDestroy(g->ev_done[i]);
            g->ev_ready[i] = g->ev_done[i] = NULL;
            CU_TRY(cudaEventCreateWithFlags(&g->ev_ready[i], cudaEventDisableTiming));
            CU_TRY(cudaEventCreateWithFlags(&g->ev_done[i], cudaEventDisableTiming));
        }
    return RN_OK;
}

/* Before the main stream writes the gradient slot of value v: waits for the side stream's
 * weight gradients that still read a gradient in that slot (all of them when v < 0). */
static rn_status wait_side(rn_gpu *g, int v) {
    const rn_model *m = g->m;
    if (!g->side) return RN_OK;
    for (int j = 0; j < m->n_nodes; j++)
        if (g->pending[j] && (v < 0 || (!g->fp32_grad[v] && !g->fp32_grad[m->nodes[j].out] &&
                                        g->vgoff[m->nodes[j].out] == g->vgoff[v]))) {
            CU_TRY(cudaStreamWaitEvent(g->stream, g->ev_done[j], 0));
            g->pending[j] = 0;
        }
    return RN_OK;
}

template <typename T> static rn_status backward_t(rn_gpu *g) {
    rn_model *m = g->m;
    const int N = g->max_batch;
    const float one = 1.f, zero = 0.f;
    const bool train = g->last_mode == RN_MODE_TRAIN;
    cudaStream_t st = g->stream;
    if (g->block_norms)
        CU_TRY(cudaMemsetAsync(g->block_sumsq, 0, (m->n_blocks + 1) * sizeof(double), st));
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        if (g->prof_bwd) CU_TRY(cudaEventRecord(g->prof_bwd[i + 1], st));
        if (g->fuse[i] == FOLDED) continue;
        const rn_node *nd = &m->nodes[i];
        const int fout = final_out(g, i);
        const size_t n_fout = (size_t)N * value_elems(m, fout);
        const int blk = m->values[fout].block;
        if (g->block_norms && blk >= 0) {
            k_sumsq<T><<<grid_for(n_fout, THREADS), THREADS, 0, st>>>(
                g->block_sumsq + blk, (const T *)grad(g, fout), n_fout);
            LAUNCH_TRY();
        }
        /* A node writes an input's gradient when it is the first to reach it (its last
         * reader in the forward pass), else adds to it. */
        const int acc = m->values[nd->in].grad_first != i;
        RN_TRY(wait_side(g, nd->in));
        if (nd->kind == RN_NODE_ADD) RN_TRY(wait_side(g, nd->in2));
        if (g->fuse[i] == FUSE_ADD_RELU) RN_TRY(wait_side(g, m->nodes[i + 1].in2));
        T *in = (T *)act(g, nd->in), *out = (T *)act(g, nd->out);
        T *dout = (T *)grad(g, nd->out), *din = (T *)grad(g, nd->in);
        const size_t n_in = (size_t)N * value_elems(m, nd->in);
        const size_t n_out = (size_t)N * value_elems(m, nd->out);
        switch (nd->kind) {
        case RN_NODE_CONV: {
            const gpu_conv *c = &g->conv[i];
            const size_t woff = m->tensors[nd->weight].off;
            const void *w = g->use_bf16 ? (const void *)(g->params_low + woff)
                                        : (const void *)(g->params + woff);
            if (nd->in != 0 || g->want_input_grad)
                CUDNN_TRY(cudnnConvolutionBackwardData(g->cudnn, &one, c->w, w, c->y, dout,
                                                       c->bwd_data, c->data_algo, g->ws,
                                                       g->ws_bytes, acc ? &one : &zero, c->x,
                                                       din));
            void *dw = g->use_bf16 ? (void *)(g->grads_low + woff) : (void *)(g->grads + woff);
            cudaStream_t ws = st;
            if (g->side) { /* the weight gradient beside the main stream */
                CU_TRY(cudaEventRecord(g->ev_ready[i], st));
                CU_TRY(cudaStreamWaitEvent(g->stream2, g->ev_ready[i], 0));
                ws = g->stream2;
            }
            CUDNN_TRY(cudnnConvolutionBackwardFilter(
                g->side ? g->cudnn2 : g->cudnn, &one, c->x, in, c->y, dout, c->bwd_filter,
                c->filter_algo, g->side ? g->ws2 : g->ws, g->ws_bytes, &zero, c->w, dw));
            if (g->use_bf16) {
                size_t nw = m->tensors[nd->weight].info.numel;
                k_cast<bf16, float><<<grid_for(nw, THREADS), THREADS, 0, ws>>>(
                    g->grads + woff, g->grads_low + woff, nw);
                LAUNCH_TRY();
            }
            if (g->side) {
                CU_TRY(cudaEventRecord(g->ev_done[i], g->stream2));
                g->pending[i] = 1;
            }
            if (g->capturing && g->fail_capture) {
                g->fail_capture = false;
                return rn_fail(RN_ERR_DEVICE, "%s: a capture failure asked for by a test "
                                              "(rn_gpu_fail_next_capture)", nd->name);
            }
            break;
        }
        case RN_NODE_BN: {
            const int C = nd->d.bn.C;
            const size_t M = (size_t)N * nd->d.bn.HW;
            const float *stat = g->stat + g->stat_off[i];
            /* With a fused ReLU the incoming gradient is the ReLU output's, masked by it. */
            const T *dy = (const T *)grad(g, fout);
            const T *y = g->fuse[i] != FUSE_NONE ? (const T *)act(g, fout) : NULL;
            T *dres = NULL;
            int acc_res = 0;
            if (g->fuse[i] == FUSE_ADD_RELU) {
                const rn_node *add = &m->nodes[i + 1];
                dres = (T *)grad(g, add->in2);
                acc_res = m->values[add->in2].grad_first != i + 1;
            }
            bn_grid bg = bn_grid_for(C, M);
            k_bn_part<T><<<bg.grid, bg.block, BN_SHARED, st>>>(g->bn_part, 1, in, dy, y, dres,
                                                               acc_res, stat, C, M);
            LAUNCH_TRY();
            k_bn_bwd_final<<<(C + 31) / 32, dim3(32, 8), 0, st>>>(
                G(g, nd->weight), G(g, nd->bias), g->bn_coef, g->bn_part, bg.P, stat,
                P(g, nd->weight), C, M, train);
            LAUNCH_TRY();
            k_bn_bwd_apply<T><<<grid_for(n_in / 4, THREADS), THREADS, 0, st>>>(
                din, acc, dy, y, in, g->bn_coef, stat, C, n_in);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_RELU:
            k_relu_bwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(din, acc, dout, out,
                                                                         n_out);
            LAUNCH_TRY();
            break;
        case RN_NODE_ADD: {
            const int acc_b = m->values[nd->in2].grad_first != i;
            k_add_bwd<T><<<grid_for(n_out, THREADS), THREADS, 0, st>>>(
                din, acc, (T *)grad(g, nd->in2), acc_b, dout, n_out);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_SHORTCUT_A: {
            const rn_shortcut_a_desc *d = &nd->d.sa;
            k_shortcut_a_bwd<T><<<grid_for(n_in, THREADS), THREADS, 0, st>>>(
                din, acc, dout, N, d->C, d->H, d->W, d->K, d->stride, d->Ho, d->Wo);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_MAXPOOL: {
            const rn_pool_desc *d = &nd->d.pool;
            k_maxpool_bwd<T><<<grid_for(n_in, THREADS), THREADS, 0, st>>>(
                din, acc, dout, in, N, d->C, d->H, d->W, d->k, d->stride, d->pad, d->Ho, d->Wo);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_AVGPOOL: {
            const rn_value *v = &m->values[nd->in];
            k_avgpool_bwd<T><<<grid_for(n_in, THREADS), THREADS, 0, st>>>(
                din, acc, (const float *)grad(g, nd->out), N, v->c, v->h * v->w);
            LAUNCH_TRY();
            break;
        }
        case RN_NODE_LINEAR: {
            const int I = nd->d.lin.I, O = nd->d.lin.O;
            const float *fin = (const float *)act(g, nd->in), *fdout = (const float *)grad(g, nd->out);
            /* dW (O, I) = dout^T . in; din (N, I) (+)= dout . W (row-major). */
            CUBLAS_TRY(cublasSgemm(g->cublas, CUBLAS_OP_N, CUBLAS_OP_T, I, O, N, &one, fin, I,
                                   fdout, O, &zero, G(g, nd->weight), I));
            if (nd->bias >= 0) {
                k_bias_grad<<<(O + 127) / 128, 128, 0, st>>>(G(g, nd->bias), fdout, N, O);
                LAUNCH_TRY();
            }
            CUBLAS_TRY(cublasSgemm(g->cublas, CUBLAS_OP_N, CUBLAS_OP_N, I, N, O, &one,
                                   P(g, nd->weight), I, fdout, O, acc ? &one : &zero,
                                   (float *)grad(g, nd->in), I));
            break;
        }
        }
    }
    RN_TRY(wait_side(g, -1)); /* every weight gradient, before anything reads them */
    if (g->prof_bwd) CU_TRY(cudaEventRecord(g->prof_bwd[0], st));
    if (g->block_norms && m->values[0].block >= 0 && g->want_input_grad) {
        size_t n = (size_t)N * value_elems(m, 0);
        k_sumsq<T><<<grid_for(n, THREADS), THREADS, 0, st>>>(
            g->block_sumsq + m->values[0].block, (const T *)g->din, n);
        LAUNCH_TRY();
    }
    return RN_OK;
}

rn_status gpu_backward_pass(rn_gpu *g) {
    return g->use_bf16 ? backward_t<bf16>(g) : backward_t<float>(g);
}

/* (n, C, H, W) fp32 <-> (n, H, W, C) of type T. */
template <typename A, typename B>
__global__ void k_nchw_to_nhwc(B *out, const A *in, int n, int C, int HW) {
    const size_t total = (size_t)n * C * HW;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t p = i / C;
        size_t hw = p % HW, b = p / HW;
        out[i] = from_f<B>(to_f(in[(b * C + c) * HW + hw]));
    }
}
template <typename A, typename B>
__global__ void k_nhwc_to_nchw(B *out, const A *in, int n, int C, int HW) {
    const size_t total = (size_t)n * C * HW;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t hw = i % HW, c = i / HW % C, b = i / ((size_t)HW * C);
        out[i] = from_f<B>(to_f(in[(b * HW + hw) * C + c]));
    }
}

extern "C" rn_status rn_gpu_forward(rn_gpu *g, const float *x, int n, rn_mode mode,
                                    float *logits) {
    rn_model *m = g->m;
    const int N = g->max_batch, K = m->opts.num_classes;
    if (n < 1 || n > N)
        return rn_fail(RN_ERR_BAD_ARG, "batch of %d images, the GPU model is reserved for 1 to %d",
                       n, N);
    if (mode == RN_MODE_TRAIN && n != N)
        return rn_fail(RN_ERR_BAD_ARG, "a training-mode pass on the GPU takes exactly %d images, "
                                       "not %d", N, n);
    const rn_value *v0 = &m->values[0];
    const size_t per = value_elems(m, 0);
    CU_TRY(cudaMemcpyAsync(g->x_stage, x, n * per * sizeof(float), cudaMemcpyHostToDevice,
                           g->stream));
    if (n < N)
        CU_TRY(cudaMemsetAsync(g->x_stage + n * per, 0, (N - n) * per * sizeof(float), g->stream));
    if (g->use_bf16)
        k_nchw_to_nhwc<float, bf16><<<grid_for(N * per, THREADS), THREADS, 0, g->stream>>>(
            (bf16 *)g->x, g->x_stage, N, v0->c, v0->h * v0->w);
    else
        k_nchw_to_nhwc<float, float><<<grid_for(N * per, THREADS), THREADS, 0, g->stream>>>(
            (float *)g->x, g->x_stage, N, v0->c, v0->h * v0->w);
    LAUNCH_TRY();
    g->last_mode = mode;
    RN_TRY(gpu_forward_pass(g, mode));
    if (mode == RN_MODE_TRAIN) g->train_forwards++;
    CU_TRY(cudaMemcpyAsync(logits, g->logits, (size_t)n * K * sizeof(float),
                           cudaMemcpyDeviceToHost, g->stream));
    CU_TRY(cudaStreamSynchronize(g->stream));
    g->forward_done = true;
    g->last_n = n;
    return RN_OK;
}

extern "C" rn_status rn_gpu_backward(rn_gpu *g, const float *dlogits) {
    if (!g->forward_done)
        return rn_fail(RN_ERR_BAD_ARG, "GPU backward pass without a forward pass before it");
    const int N = g->max_batch, K = g->m->opts.num_classes, n = g->last_n;
    CU_TRY(cudaMemcpyAsync(g->dlogits_dev, dlogits, (size_t)n * K * sizeof(float),
                           cudaMemcpyHostToDevice, g->stream));
    if (n < N)
        CU_TRY(cudaMemsetAsync(g->dlogits_dev + (size_t)n * K, 0, (size_t)(N - n) * K * sizeof(float),
                               g->stream));
    bool want = g->want_input_grad, norms = g->block_norms;
    g->want_input_grad = g->block_norms = true;
    rn_status s = gpu_backward_pass(g);
    g->want_input_grad = want;
    g->block_norms = norms;
    if (s == RN_OK) CU_TRY(cudaStreamSynchronize(g->stream));
    return s;
}

extern "C" rn_status rn_gpu_download_grads(rn_gpu *g, float *input_grad) {
    rn_model *m = g->m;
    CU_TRY(cudaStreamSynchronize(g->stream));
    RN_TRY(download_block(g, m->grads, g->grads));
    if (!m->block_gnorm) m->block_gnorm = (double *)calloc(RN_MAX(m->n_blocks, 1), sizeof(double));
    if (m->block_gnorm && m->n_blocks > 0) {
        double *ss = (double *)malloc(m->n_blocks * sizeof(double));
        if (!ss) return rn_fail(RN_ERR_NOMEM, "out of memory");
        cudaError_t e = copy_sync(g, ss, g->block_sumsq, m->n_blocks * sizeof(double),
                                  cudaMemcpyDeviceToHost);
        for (int b = 0; e == cudaSuccess && b < m->n_blocks; b++) m->block_gnorm[b] = sqrt(ss[b]);
        free(ss);
        CU_TRY(e);
    }
    if (input_grad) {
        const rn_value *v0 = &m->values[0];
        const size_t per = value_elems(m, 0);
        if (g->use_bf16)
            k_nhwc_to_nchw<bf16, float><<<grid_for(g->last_n * per, THREADS), THREADS, 0,
                                         g->stream>>>(g->x_stage, (const bf16 *)g->din,
                                                      g->last_n, v0->c, v0->h * v0->w);
        else
            k_nhwc_to_nchw<float, float><<<grid_for(g->last_n * per, THREADS), THREADS, 0,
                                          g->stream>>>(g->x_stage, (const float *)g->din,
                                                       g->last_n, v0->c, v0->h * v0->w);
        LAUNCH_TRY();
        CU_TRY(cudaMemcpyAsync(input_grad, g->x_stage, g->last_n * per * sizeof(float),
                               cudaMemcpyDeviceToHost, g->stream));
        CU_TRY(cudaStreamSynchronize(g->stream));
    }
    return RN_OK;
}

/* ---- evaluation --------------------------------------------------------------------------- */

extern "C" rn_status rn_gpu_evaluate(rn_gpu *g, const rn_dataset *d, const rn_norm *norm,
                                     rn_eval_result *r) {
    rn_model *m = g->m;
    memset(r, 0, sizeof *r);
    const int K = m->opts.num_classes, N = g->max_batch;
    RN_TRY(rn_check_data_fits(m, d));
    gpu_set *s = NULL;
    for (int i = 0; i < 2; i++)
        if (g->sets[i].images && g->sets[i].host_images == d->images && g->sets[i].n == d->n)
            s = &g->sets[i];
    if (!s) {
        s = &g->sets[g->next_set];
        g->next_set ^= 1;
        gpu_set_free(s);
        RN_TRY(gpu_set_upload(g, s, d));
    }
    double *loss_dev = g->loss_sum + 1;          /* [0] and counts[0] are training's */
    unsigned long long *counts_dev = g->counts + 1;
    CU_TRY(cudaMemsetAsync(loss_dev, 0, sizeof(double), g->stream));
    CU_TRY(cudaMemsetAsync(counts_dev, 0, (2 + (size_t)K * K) * sizeof(unsigned long long),
                           g->stream));
    g->last_mode = RN_MODE_EVAL;
    for (int first = 0; first < d->n; first += N) {
        int n = RN_MIN(N, d->n - first);
        RN_TRY(gpu_fill_eval_batch(g, s, first, n, norm));
        RN_TRY(gpu_forward_pass(g, RN_MODE_EVAL));
        k_softmax_xent<<<(n + 7) / 8, 256, 0, g->stream>>>(NULL, g->logits, g->labels_dev, n, n,
                                                           K, 0.f, loss_dev, counts_dev,
                                                           counts_dev + 1, counts_dev + 2);
        LAUNCH_TRY();
    }
    double loss;
    unsigned long long *counts = (unsigned long long *)malloc((2 + (size_t)K * K) * 8);
    r->confusion = (int64_t *)calloc((size_t)K * K, sizeof(int64_t));
    if (!counts || !r->confusion) {
        free(counts);
        rn_eval_result_free(r);
        return rn_fail(RN_ERR_NOMEM, "out of memory");
    }
    cudaError_t e = cudaMemcpyAsync(&loss, loss_dev, sizeof loss, cudaMemcpyDeviceToHost,
                                    g->stream);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(counts, counts_dev, (2 + (size_t)K * K) * 8, cudaMemcpyDeviceToHost,
                            g->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(g->stream);
    if (e != cudaSuccess) {
        free(counts);
        rn_eval_result_free(r);
        return device_error("reading the evaluation results", e);
    }
    r->n = d->n;
    r->num_classes = K;
    r->top1 = d->n ? (double)counts[0] / d->n : 0;
    r->top5 = d->n ? (double)counts[1] / d->n : 0;
    r->loss = d->n ? loss / d->n : 0;
    for (size_t i = 0; i < (size_t)K * K; i++) r->confusion[i] = (int64_t)counts[2 + i];
    free(counts);
    if (!isfinite(r->loss)) {
        rn_eval_result_free(r);
        return rn_fail(RN_ERR_NUMERIC, "evaluation loss is not finite");
    }
    return RN_OK;
}
