/*
 * model.h — the model's internal representation: a list of nodes (one op each) in execution
 * order over numbered values (activations), plus the table of state tensors.
 *
 * Value 0 is the model input. Every node writes one new value. Parameters, their gradients and
 * BN buffers each live in one contiguous block; a tensor entry holds offsets into them.
 * The zoo (zoo.c) builds the named models with the rn_graph_* builders below.
 */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include "ops/backend.h"
#include "core/internal.h"

typedef enum {
    RN_NODE_CONV,
    RN_NODE_BN,
    RN_NODE_RELU,
    RN_NODE_ADD,
    RN_NODE_SHORTCUT_A,
    RN_NODE_MAXPOOL,
    RN_NODE_AVGPOOL,
    RN_NODE_LINEAR,
} rn_node_kind;

typedef struct {
    rn_node_kind kind;
    char name[64];      /* PyTorch module path, e.g. "layer1.0.conv1"; "" for param-free ops */
    char op[24];        /* for the layer table: "conv3x3/1", "bn", ... */
    int in, in2, out;   /* value ids; in2 only for ADD */
    int weight, bias;   /* tensor ids or -1 */
    int running_mean, running_var, counter; /* BN tensor ids */
    size_t stats_off;   /* BN: offset of save_mean/save_invstd (2*C floats) in the stats block */
    union {             /* N is filled per pass */
        rn_conv_desc conv;
        rn_bn_desc bn;
        rn_shortcut_a_desc sa;
        rn_pool_desc pool;
        struct { int I, O; } lin;
    } d;
    int64_t params, macs;
    bool bn_next;       /* CONV: node i+1 is a BN that alone reads its output (rn_graph_analyze);
                         * inference may fold that BN into this convolution */
    size_t grads_from;  /* once this node's backward pass has run, the gradients from this
                         * offset to the end of the block are final: every parameter there
                         * belongs to this node or a later one (rn_graph_analyze) */
} rn_node;

/* A value's shape and its place in the graph (rn_graph_analyze); where it is stored is the
 * business of each executor's memory plan (rn_plan). */
typedef struct {
    int c, h, w;
    int producer;    /* node that writes it (-1 for the input) */
    int block;       /* the block this value enters, or -1 */
    int readers;     /* nodes that read it */
    int grad_first;  /* node whose backward pass first writes its gradient (its last consumer;
                      * n_nodes for the output) */
} rn_value;

/* Floats of one image of value v. */
static inline size_t rn_value_floats(const rn_value *v) { return (size_t)v->c * v->h * v->w; }

/* A memory plan for batches of up to max_batch images (rn_plan_memory): where each value's
 * activation and gradient live in two arenas, and which BN/add + ReLU pairs run fused. It
 * belongs to the executor that asked for it; the model itself holds none of it. */
typedef struct {
    int max_batch;
    size_t act_floats, grad_floats; /* arena sizes */
    size_t *off;       /* per value: activation offset (shared by in-place ops) */
    size_t *goff;      /* per value: offset of its gradient slot */
    bool *relu_fused;  /* per node: a BN or add that also applies node i+1, the in-place ReLU of
                        * its output, which is then skipped */
    bool inference;    /* forward passes in eval or inference mode only: activations share
                        * slots by lifetime, no gradients (goff all 0, grad_floats 0) */
} rn_plan;

/* How a tensor starts out (see init_tensor in graph.c). */
typedef enum {
    RN_INIT_ZEROS,
    RN_INIT_ONES,
    RN_INIT_CONV_WEIGHT,
    RN_INIT_CONV_BIAS,
    RN_INIT_LINEAR_WEIGHT,
    RN_INIT_LINEAR_BIAS,
} rn_init_kind;

/* A tensor entry: the public info plus where its storage is. */
typedef struct {
    rn_tensor_info info;
    char name_buf[96];
    size_t off;     /* into params (PARAM), buffers (BUFFER) or counters (COUNTER) */
    rn_init_kind init;
    int fan_in, fan_out;
} rn_tensor_entry;

typedef enum { RN_FAMILY_CIFAR_A, RN_FAMILY_CIFAR_B, RN_FAMILY_IMAGENET } rn_family;

struct rn_model {
    char name[32];
    rn_model_opts opts;
    rn_family family;

    rn_node *nodes;
    int n_nodes, cap_nodes;
    rn_value *values;
    int n_values, cap_values;
    rn_tensor_entry *tensors;
    int n_tensors, cap_tensors;
    /* Residual (or plain) blocks: the value entering each, for gradient-flow statistics. */
    struct rn_block { char name[32]; int input; } *blocks;
    int n_blocks, cap_blocks;

    size_t n_params, n_buffers, n_counters, n_stats;
    float *params, *grads, *buffers;
    int64_t *counters;

    /* Workspace from rn_model_reserve: the host's plan and the buffers it sizes. */
    int max_batch;
    const rn_backend *ws_backend;
    int ws_threads;
    rn_plan plan;
    float *acts, *dacts;
    float *din;           /* input gradient (max_batch, C, H, W) */
    float *stats;         /* BN save_mean / save_invstd */
    float *scratch;
    size_t scratch_floats;
    float *fold;          /* RN_MODE_INFER: a convolution's weights and bias with its BN folded in */

    double *block_gnorm;  /* per block: gradient norm at its input, from the last backward */
    bool track_block_grads; /* compute block_gnorm (rn_model_track_block_grads; default on) */

    /* rn_model_profile: seconds per node and direction (0 forward, 1 backward), or NULL. */
    double (*prof)[2];
    int prof_passes[2];

    /* The last forward pass, for backward. */
    const float *last_x;
    int last_n;
    rn_mode last_mode;
    bool forward_done;
};

/* Graph builders: each appends a node and returns its output value id (or -1 on OOM). */
rn_model *rn_graph_new(const char *name, const rn_model_opts *opts, rn_family family);
int rn_graph_conv(rn_model *m, const char *name, int in, int K, int R, int stride, int pad,
                  bool bias);
int rn_graph_bn(rn_model *m, const char *name, int in);
int rn_graph_relu(rn_model *m, int in);
int rn_graph_add(rn_model *m, int a, int b);
int rn_graph_shortcut_a(rn_model *m, int in, int K, int stride);
int rn_graph_maxpool(rn_model *m, int in, int k, int stride, int pad);
int rn_graph_avgpool(rn_model *m, int in);
int rn_graph_linear(rn_model *m, const char *name, int in, int O);
/* The residual blocks (zoo.c), named "<prefix>.conv1" etc.: BasicBlock (expansion 1) and
 * Bottleneck (expansion 4, stride on the 3x3). plain drops the shortcut. The shortcut kind
 * follows the model's family: option A for CIFAR-A, 1x1 conv + BN otherwise. */
int rn_graph_basic_block(rn_model *m, const char *prefix, int in, int planes, int stride,
                         bool plain);
int rn_graph_bottleneck(rn_model *m, const char *prefix, int in, int planes, int stride,
                        bool plain);
/* Records that a block named `name` starts at value `input` (called by the block builders). */
bool rn_graph_mark_block(rn_model *m, const char *name, int input);
/* Allocates the parameter, gradient and buffer blocks once the graph is complete and
 * initializes them like the PyTorch code the family comes from. */
rn_status rn_graph_finish(rn_model *m, uint64_t seed);

/* Weights files with extras: rn_model_save plus extra tensors and metadata (checkpoints). */
rn_status rn_model_save_ext(const rn_model *m, const char *path, const rn_norm *norm,
                            const rn_st_tensor *extra, int n_extra, const char *const *keys,
                            const char *const *vals, int n_meta);
/* Loads the model's tensors from an open file; tensors whose name starts with
 * ignore_prefix (may be NULL) are allowed besides the model's. */
rn_status rn_model_load_st(rn_model *m, const rn_safetensors *st, const char *path,
                           const char *ignore_prefix, rn_norm *norm);

/* Fills the graph facts of values and nodes (producer, block, readers, grad_first, bn_next,
 * grads_from) once the graph is complete and its tensors are placed (plan.c; rn_graph_finish
 * calls it). */
void rn_graph_analyze(rn_model *m);

/* rn_model_reserve of the kind the model has: an inference workspace stays one (evaluation
 * reserves so, for whatever workspace its caller made). */
rn_status rn_model_reserve_keep(rn_model *m, rn_ctx *ctx, int max_batch);

/* Plans memory for max_batch images (plan.c): activation offsets, with ReLU and the residual
 * add working in place where their input has no other reader, and gradient slots shared by
 * values whose gradients are never alive at the same time. Where `fusions` (may be NULL) has a
 * fused BN + ReLU or add + ReLU kernel, marks the pairs it will run as one: the ReLU's output
 * gradient then lives until the BN's or add's backward pass, which reads it in place of its own
 * output's. With `inference`, a plan for forward passes in eval or inference mode only (no
 * gradients; activations share memory once nothing reads them). RN_ERR_NOMEM if the plan's
 * tables cannot be allocated (*p is then empty). */
rn_status rn_plan_memory(rn_plan *p, const rn_model *m, int max_batch,
                         const rn_backend *fusions, bool inference);
void rn_plan_free(rn_plan *p);

/* rn_model_backward that calls ready (when not NULL) after each node that leaves more of the
 * gradient block final, with from = that node's grads_from (see rn_grads_ready_hook). A
 * failing hook ends the pass with its status. */
rn_status rn_model_backward_ready(rn_model *m, rn_ctx *ctx, const float *dlogits,
                                  rn_grads_ready_hook ready, void *user);

/* Builds the named model's graph (zoo.c). */
rn_status rn_zoo_build(rn_model **out, const char *name, const rn_model_opts *opts);

#endif
