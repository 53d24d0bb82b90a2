/*
 * graph.c — building a model: appending nodes, values and state tensors, then allocating the
 * parameter blocks and initializing them the way the PyTorch code each family comes from does.
 */
#include "core/rng.h"
#include "model.h"

#include <math.h>
#include <string.h>

/* Grows a dynamic array to hold one more element; false on OOM. */
static bool grow(void **arr, int *cap, int n, size_t elem) {
    if (n < *cap) return true;
    int nc = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return false;
    *arr = p;
    *cap = nc;
    return true;
}

rn_model *rn_graph_new(const char *name, const rn_model_opts *opts, rn_family family) {
    rn_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    snprintf(m->name, sizeof m->name, "%s", name);
    m->opts = *opts;
    m->family = family;
    m->track_block_grads = true;
    if (!grow((void **)&m->values, &m->cap_values, 0, sizeof(rn_value))) {
        free(m);
        return NULL;
    }
    m->values[0] = (rn_value){.c = opts->in_channels, .h = opts->in_height, .w = opts->in_width};
    m->n_values = 1;
    return m;
}

static int new_value(rn_model *m, int c, int h, int w) {
    if (!grow((void **)&m->values, &m->cap_values, m->n_values, sizeof(rn_value))) return -1;
    m->values[m->n_values] = (rn_value){.c = c, .h = h, .w = w};
    return m->n_values++;
}

static rn_node *new_node(rn_model *m, rn_node_kind kind, const char *name, int in) {
    if (in < 0) return NULL; /* an earlier builder failed */
    if (!grow((void **)&m->nodes, &m->cap_nodes, m->n_nodes, sizeof(rn_node))) return NULL;
    rn_node *nd = &m->nodes[m->n_nodes++];
    memset(nd, 0, sizeof *nd);
    nd->kind = kind;
    snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
    nd->in = in;
    nd->in2 = -1;
    nd->weight = nd->bias = nd->running_mean = nd->running_var = nd->counter = -1;
    return nd;
}

/* Appends a state tensor "<module>.<suffix>"; returns its id or -1. */
static int new_tensor(rn_model *m, const char *module, const char *suffix, rn_tensor_kind kind,
                      rn_init_kind init, int ndim, const int *shape) {
    if (!grow((void **)&m->tensors, &m->cap_tensors, m->n_tensors, sizeof(rn_tensor_entry)))
        return -1;
    rn_tensor_entry *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name_buf, sizeof t->name_buf, "%s.%s", module, suffix);
    t->info.kind = kind;
    t->init = init;
    t->info.ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->info.shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    t->info.numel = numel;
    switch (kind) {
    case RN_TENSOR_PARAM: t->off = m->n_params; m->n_params += numel; break;
    case RN_TENSOR_BUFFER: t->off = m->n_buffers; m->n_buffers += numel; break;
    case RN_TENSOR_COUNTER: t->off = m->n_counters; m->n_counters += 1; break;
    }
    return m->n_tensors++;
}

int rn_graph_conv(rn_model *m, const char *name, int in, int K, int R, int stride, int pad,
                  bool bias) {
    rn_node *nd = new_node(m, RN_NODE_CONV, name, in);
    if (!nd) return -1;
    rn_value v = m->values[in];
    rn_conv_desc *d = &nd->d.conv;
    *d = (rn_conv_desc){.N = 1, .C = v.c, .H = v.h, .W = v.w, .K = K, .R = R, .S = R,
                        .stride = stride, .pad = pad};
    d->Ho = (v.h + 2 * pad - R) / stride + 1;
    d->Wo = (v.w + 2 * pad - R) / stride + 1;
    snprintf(nd->op, sizeof nd->op, "conv%dx%d/%d", R, R, stride);
    int wshape[4] = {K, v.c, R, R};
    nd->weight = new_tensor(m, name, "weight", RN_TENSOR_PARAM, RN_INIT_CONV_WEIGHT, 4, wshape);
    if (nd->weight < 0) return -1;
    m->tensors[nd->weight].fan_in = v.c * R * R;
    m->tensors[nd->weight].fan_out = K * R * R;
    nd->params = (int64_t)K * v.c * R * R;
    if (bias) {
        nd->bias = new_tensor(m, name, "bias", RN_TENSOR_PARAM, RN_INIT_CONV_BIAS, 1, &K);
        if (nd->bias < 0) return -1;
        m->tensors[nd->bias].fan_in = v.c * R * R;
        m->tensors[nd->bias].info.is_bn_or_bias = true;
        nd->params += K;
    }
    nd->macs = (int64_t)K * v.c * R * R * d->Ho * d->Wo;
    return nd->out = new_value(m, K, d->Ho, d->Wo);
}

int rn_graph_bn(rn_model *m, const char *name, int in) {
    rn_node *nd = new_node(m, RN_NODE_BN, name, in);
    if (!nd) return -1;
    rn_value v = m->values[in];
    nd->d.bn = (rn_bn_desc){.N = 1, .C = v.c, .HW = v.h * v.w, .eps = 1e-5f, .momentum = 0.1f};
    snprintf(nd->op, sizeof nd->op, "bn");
    nd->weight = new_tensor(m, name, "weight", RN_TENSOR_PARAM, RN_INIT_ONES, 1, &v.c);
    nd->bias = new_tensor(m, name, "bias", RN_TENSOR_PARAM, RN_INIT_ZEROS, 1, &v.c);
    nd->running_mean =
        new_tensor(m, name, "running_mean", RN_TENSOR_BUFFER, RN_INIT_ZEROS, 1, &v.c);
    nd->running_var = new_tensor(m, name, "running_var", RN_TENSOR_BUFFER, RN_INIT_ONES, 1, &v.c);
    nd->counter =
        new_tensor(m, name, "num_batches_tracked", RN_TENSOR_COUNTER, RN_INIT_ZEROS, 0, NULL);
    if (nd->weight < 0 || nd->bias < 0 || nd->running_mean < 0 || nd->running_var < 0 ||
        nd->counter < 0)
        return -1;
    m->tensors[nd->weight].info.is_bn_or_bias = true;
    m->tensors[nd->bias].info.is_bn_or_bias = true;
    nd->stats_off = m->n_stats;
    m->n_stats += 2 * (size_t)v.c;
    nd->params = 2 * (int64_t)v.c;
    return nd->out = new_value(m, v.c, v.h, v.w);
}

int rn_graph_relu(rn_model *m, int in) {
    rn_node *nd = new_node(m, RN_NODE_RELU, "", in);
    if (!nd) return -1;
    snprintf(nd->op, sizeof nd->op, "relu");
    rn_value v = m->values[in];
    return nd->out = new_value(m, v.c, v.h, v.w);
}

int rn_graph_add(rn_model *m, int a, int b) {
    if (b < 0) return -1;
    rn_node *nd = new_node(m, RN_NODE_ADD, "", a);
    if (!nd) return -1;
    nd->in2 = b;
    snprintf(nd->op, sizeof nd->op, "add");
    rn_value v = m->values[a];
    return nd->out = new_value(m, v.c, v.h, v.w);
}

int rn_graph_shortcut_a(rn_model *m, int in, int K, int stride) {
    rn_node *nd = new_node(m, RN_NODE_SHORTCUT_A, "", in);
    if (!nd) return -1;
    rn_value v = m->values[in];
    rn_shortcut_a_desc *d = &nd->d.sa;
    *d = (rn_shortcut_a_desc){.N = 1, .C = v.c, .H = v.h, .W = v.w, .K = K, .stride = stride,
                              .Ho = (v.h + stride - 1) / stride, .Wo = (v.w + stride - 1) / stride};
    snprintf(nd->op, sizeof nd->op, "shortcutA/%d", stride);
    return nd->out = new_value(m, K, d->Ho, d->Wo);
}

int rn_graph_maxpool(rn_model *m, int in, int k, int stride, int pad) {
    rn_node *nd = new_node(m, RN_NODE_MAXPOOL, "", in);
    if (!nd) return -1;
    rn_value v = m->values[in];
    rn_pool_desc *d = &nd->d.pool;
    *d = (rn_pool_desc){.N = 1, .C = v.c, .H = v.h, .W = v.w, .k = k, .stride = stride,
                        .pad = pad, .Ho = (v.h + 2 * pad - k) / stride + 1,
                        .Wo = (v.w + 2 * pad - k) / stride + 1};
    snprintf(nd->op, sizeof nd->op, "maxpool%dx%d/%d", k, k, stride);
    return nd->out = new_value(m, v.c, d->Ho, d->Wo);
}

int rn_graph_avgpool(rn_model *m, int in) {
    rn_node *nd = new_node(m, RN_NODE_AVGPOOL, "", in);
    if (!nd) return -1;
    snprintf(nd->op, sizeof nd->op, "avgpool");
    return nd->out = new_value(m, m->values[in].c, 1, 1);
}

int rn_graph_linear(rn_model *m, const char *name, int in, int O) {
    rn_node *nd = new_node(m, RN_NODE_LINEAR, name, in);
    if (!nd) return -1;
    rn_value v = m->values[in];
    int I = v.c * v.h * v.w;
    nd->d.lin.I = I;
    nd->d.lin.O = O;
    snprintf(nd->op, sizeof nd->op, "linear");
    int wshape[2] = {O, I};
    nd->weight = new_tensor(m, name, "weight", RN_TENSOR_PARAM, RN_INIT_LINEAR_WEIGHT, 2, wshape);
    nd->bias = new_tensor(m, name, "bias", RN_TENSOR_PARAM, RN_INIT_LINEAR_BIAS, 1, &O);
    if (nd->weight < 0 || nd->bias < 0) return -1;
    m->tensors[nd->weight].fan_in = m->tensors[nd->bias].fan_in = I;
    m->tensors[nd->weight].fan_out = O;
    m->tensors[nd->bias].info.is_bn_or_bias = true;
    nd->params = (int64_t)O * I + O;
    nd->macs = (int64_t)O * I;
    return nd->out = new_value(m, O, 1, 1);
}

bool rn_graph_mark_block(rn_model *m, const char *name, int input) {
    if (input < 0 ||
        !grow((void **)&m->blocks, &m->cap_blocks, m->n_blocks, sizeof(struct rn_block)))
        return false;
    struct rn_block *b = &m->blocks[m->n_blocks++];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->input = input;
    return true;
}

/* Initializes one tensor as its family's PyTorch code does:
 *  - CIFAR option A (akamaster): kaiming_normal_ (fan_in, gain sqrt 2) for conv and linear
 *    weights, PyTorch's default uniform(+-1/sqrt(fan_in)) for the linear bias;
 *  - CIFAR option B (kuangliu): PyTorch's defaults, uniform(+-1/sqrt(fan_in)) for every conv
 *    and linear weight and bias (kaiming_uniform with a = sqrt 5);
 *  - ImageNet (torchvision): kaiming_normal_ (fan_out, relu) for convs, defaults for fc;
 *  - BN everywhere: weight 1, bias 0, running mean 0, running var 1. */
static void init_tensor(const rn_model *m, rn_tensor_entry *t, rn_rng *rng) {
    if (t->info.kind == RN_TENSOR_COUNTER) {
        *t->info.counter = 0;
        return;
    }
    float *x = t->info.data;
    size_t n = t->info.numel;
    double std = 0; /* > 0: normal(0, std); else uniform(+-bound) */
    if (t->init == RN_INIT_CONV_WEIGHT && m->family == RN_FAMILY_CIFAR_A)
        std = sqrt(2.0 / t->fan_in);
    else if (t->init == RN_INIT_CONV_WEIGHT && m->family == RN_FAMILY_IMAGENET)
        std = sqrt(2.0 / t->fan_out);
    else if (t->init == RN_INIT_LINEAR_WEIGHT && m->family == RN_FAMILY_CIFAR_A)
        std = sqrt(2.0 / t->fan_in);
    switch (t->init) {
    case RN_INIT_ZEROS:
    case RN_INIT_ONES:
        for (size_t i = 0; i < n; i++) x[i] = t->init == RN_INIT_ONES ? 1.0f : 0.0f;
        break;
    default:
        if (std > 0) {
            for (size_t i = 0; i < n; i++) x[i] = (float)(std * rn_rng_normal(rng));
        } else {
            double bound = 1.0 / sqrt((double)t->fan_in);
            for (size_t i = 0; i < n; i++)
                x[i] = (float)(bound * (2.0 * rn_rng_uniform(rng) - 1.0));
        }
    }
}

rn_status rn_graph_finish(rn_model *m, uint64_t seed) {
    m->params = rn_calloc(m->n_params * sizeof(float));
    /* Untouched until a backward pass or rn_model_zero_grad: inference never pays for it. */
    m->grads = rn_alloc_pages(m->n_params * sizeof(float));
    m->buffers = rn_calloc(m->n_buffers * sizeof(float));
    m->counters = rn_calloc(m->n_counters * sizeof(int64_t));
    if (!m->params || !m->grads || !m->buffers || !m->counters)
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu parameters", m->name, m->n_params);
    rn_rng rng;
    rn_rng_seed(&rng, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        rn_tensor_entry *t = &m->tensors[i];
        t->info.name = t->name_buf;
        switch (t->info.kind) {
        case RN_TENSOR_PARAM:
            t->info.data = m->params + t->off;
            t->info.grad = m->grads + t->off;
            break;
        case RN_TENSOR_BUFFER: t->info.data = m->buffers + t->off; break;
        case RN_TENSOR_COUNTER: t->info.counter = m->counters + t->off; break;
        }
        init_tensor(m, t, &rng);
    }
    rn_graph_analyze(m);
    return RN_OK;
}
