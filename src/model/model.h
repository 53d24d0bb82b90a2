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

#include "core/backend.h"
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
} rn_node;

typedef struct {
    int c, h, w;
    size_t off; /* offset of this value in the activation (and activation-gradient) arena */
} rn_value;

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

    /* Workspace from rn_model_reserve. */
    int max_batch;
    const rn_backend *ws_backend;
    int ws_threads;
    size_t act_per_image; /* floats of every value but the input, one image */
    float *acts, *dacts;  /* (max_batch * act_per_image) each */
    float *din;           /* input gradient (max_batch, C, H, W) */
    float *stats;         /* BN save_mean / save_invstd */
    float *scratch;
    size_t scratch_floats;

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

/* Builds the named model's graph (zoo.c). */
rn_status rn_zoo_build(rn_model **out, const char *name, const rn_model_opts *opts);

#endif
