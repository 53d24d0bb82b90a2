/*
 * gpu.cuh — the rn_gpu object shared by net.cu (state, forward and backward passes,
 * evaluation) and train.cu (the data set on the GPU and the graph-captured training step).
 */
#ifndef RN_CUDA_GPU_CUH
#define RN_CUDA_GPU_CUH

#include "common.cuh"

#include "cuda/gpu.h"

extern "C" {
#include "model/model.h"
#include "exec/step.h"
#include "train/train.h"
}

/* One convolution node's cuDNN setup: descriptors and the algorithms found fastest. */
typedef struct {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t fwd, bwd_data, bwd_filter; /* each with its algo's math type */
    cudnnConvolutionFwdAlgo_t fwd_algo;
    cudnnConvolutionBwdDataAlgo_t data_algo;
    cudnnConvolutionBwdFilterAlgo_t filter_algo;
} gpu_conv;

/* A data set on the GPU: images (n, C, H, W) uint8 as on the host, labels (n). */
typedef struct {
    const uint8_t *host_images; /* the key: which host set this is */
    int n;
    uint8_t *images;
    int *labels;
} gpu_set;

struct rn_gpu {
    rn_model *m;
    int device, max_batch;
    rn_precision precision;
    bool use_bf16;    /* activations in bf16 */
    size_t elem;      /* bytes per activation element */
    char describe[256];

    cudaStream_t stream;
    cudnnHandle_t cudnn;
    /* Weight gradients run on a second stream beside the backward pass (RN_GPU_STREAMS=1
     * turns that off): each conv's filter gradient starts when its output gradient is ready,
     * and the main stream waits for it only before it overwrites that gradient's slot, and
     * before the SGD update. */
    bool side;
    cudaStream_t stream2;
    cudnnHandle_t cudnn2;
    void *ws2;
    cudaEvent_t *ev_ready, *ev_done; /* per node */
    int *pending;            /* per node: its weight gradient is not yet waited for */
    cublasHandle_t cublas;
    void *cublas_ws;

    /* State, in GPU layout (conv weights K,R,S,C), as many floats as the host blocks. */
    float *params, *grads, *velocity, *buffers;
    bf16 *params_low, *grads_low; /* bf16 copies for the convolutions (bf16 only) */
    uint8_t *decay;               /* per parameter: weight decay applies (training) */
    int64_t train_forwards;       /* BN counter increments not yet downloaded */

    /* Activations and gradient slots (element type T), laid out by the host plan. */
    void *acts, *dacts;
    void *x, *din;           /* value 0 and its gradient: max_batch images */
    rn_plan plan;            /* the GPU's memory plan for max_batch images */
    size_t *voff, *vgoff;    /* = plan.off, plan.goff */
    float **fp32_act;        /* per value: an fp32 buffer (avgpool and linear outputs), or NULL */
    float **fp32_grad;
    float *stat;             /* per BN node: 4*C floats at stat_off[node] */
    size_t *stat_off;
    double *bn_part;         /* BN partial sums (see bn_grid_for) */
    int *fuse;               /* per node: FUSE_* of net.cu */
    float *bn_coef;          /* 3 * max C */
    gpu_conv *conv;          /* per node (used for CONV nodes) */
    void *ws;
    size_t ws_bytes;
    double *block_sumsq;     /* per block (+1 for the input) */
    bool want_input_grad;
    bool block_norms;

    float *x_stage;          /* on the GPU: a batch as the host holds it (max_batch, C, H, W)
                              * fp32, converted to and from x / din */
    float *logits;           /* (max_batch, K) fp32 = fp32_act of the last value */
    int *labels_dev;         /* (max_batch) */
    float *dlogits_dev;      /* = fp32_grad of the last value */
    double *loss_sum;        /* [0] training (per interval), [1] evaluation */
    unsigned long long *counts; /* [0] training's correct count; evaluation's correct, top-5
                                 * and K*K confusion counts from [1] */

    /* Profiling (rn_gpu_profile): an event at each node boundary (n_nodes + 1 each) while set;
     * prof_bwd_base keeps the backward array for reading the times afterwards. */
    cudaEvent_t *prof_fwd, *prof_bwd;
    cudaEvent_t *prof_bwd_base;

    bool forward_done;
    rn_mode last_mode;
    int last_n;

    gpu_set sets[2];         /* evaluation sets (train.cu keeps its own) */
    int next_set;

    /* Training (train.cu). */
    gpu_set train;
    rn_norm train_norm;
    rn_gpu_train_opts topts;
    float *lrs;
    int64_t n_steps, *step_dev;
    int *order;
    int4 *aug;               /* per batch image: source index, dy, dx, flip */
    cudaGraph_t graph;          /* the whole step; without a hook */
    cudaGraphExec_t graph_exec;
    cudaGraph_t graph_update;   /* with a hook: graph runs up to the gradients, this the rest */
    cudaGraphExec_t graph_update_exec;
    rn_grad_hook hook;
    void *hook_user;
    bool train_ready;
    bool captured;              /* the step runs from the graphs (see rn_gpu_train_captured) */
    bool capturing;             /* while a capture is enqueued */
    bool fail_capture;          /* rn_gpu_fail_next_capture */
};

/* net.cu, for train.cu: one forward / backward pass over the batch already in g->x (and, for
 * training, the labels in g->labels_dev), enqueued on g->stream without waiting. */
rn_status gpu_forward_pass(rn_gpu *g, rn_mode mode);
rn_status gpu_backward_pass(rn_gpu *g);
/* Copies a host data set to the GPU, on g->stream, and waits for the copy. */
rn_status gpu_set_upload(rn_gpu *g, gpu_set *s, const rn_dataset *d);
void gpu_set_free(gpu_set *s);
/* Fills g->x with images [first, first + n) of a GPU set, normalized, not augmented; the
 * rest of the batch with zeros; labels into g->labels_dev. */
rn_status gpu_fill_eval_batch(rn_gpu *g, const gpu_set *s, int first,
                              int n, const rn_norm *norm);
void gpu_train_free(rn_gpu *g);
/* After a failed capture: forgets the side stream's pending weight gradients and replaces its
 * events, which were recorded only as nodes of the discarded graph, so that no later wait
 * refers to them; turns the side stream off when the capture left it unusable. */
rn_status gpu_side_reset(rn_gpu *g);

#endif
