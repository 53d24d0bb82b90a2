/*
 * onnx.c — rn_model_export_onnx: the model graph (model.h) in evaluation mode as an ONNX file,
 * written with the wire-format writer of protobuf.h (why not protobuf-c: see there).
 *
 * One ONNX node per graph node, in execution order, each value named after the node that writes
 * it (its PyTorch module path, or "<op>_<index>" for parameter-free ops); the model input is
 * "input" and the output "logits". Initializers carry PyTorch's state_dict names.
 *   CONV        Conv (with --fold-bn and a BN right after it that alone reads its output: the
 *               BN folded into its weights and bias, and the BN node dropped)
 *   BN          BatchNormalization (running statistics; evaluation mode)
 *   RELU, ADD   Relu, Add
 *   SHORTCUT_A  Slice (every stride-th row and column) then Pad (zero channels before and after)
 *   MAXPOOL     MaxPool;  AVGPOOL: GlobalAveragePool;  LINEAR: Flatten then Gemm (transB = 1)
 * The input normalization is not a node: it is recorded in metadata_props ("mean", "std",
 * "normalization"), so the graph computes exactly what the PyTorch module does.
 *
 * Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, NodeProto, ...).
 */
#include "core/internal.h"
#include "io/protobuf.h"
#include "model/model.h"
#include "ops/ops.h"

#include <math.h>
#include <string.h>

/* onnx.proto field numbers, by message. */
enum { MODEL_IR_VERSION = 1, MODEL_PRODUCER_NAME = 2, MODEL_PRODUCER_VERSION = 3,
       MODEL_DOC = 6, MODEL_GRAPH = 7, MODEL_OPSET = 8, MODEL_METADATA = 14 };
enum { OPSET_DOMAIN = 1, OPSET_VERSION = 2 };
enum { ENTRY_KEY = 1, ENTRY_VALUE = 2 };
enum { GRAPH_NODE = 1, GRAPH_NAME = 2, GRAPH_INITIALIZER = 5, GRAPH_DOC = 10, GRAPH_INPUT = 11,
       GRAPH_OUTPUT = 12 };
enum { NODE_INPUT = 1, NODE_OUTPUT = 2, NODE_NAME = 3, NODE_OP_TYPE = 4, NODE_ATTRIBUTE = 5,
       NODE_DOC = 6 };
enum { ATTR_NAME = 1, ATTR_F = 2, ATTR_I = 3, ATTR_INTS = 8, ATTR_TYPE = 20 };
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_INTS = 7 };
enum { TENSOR_DIMS = 1, TENSOR_DATA_TYPE = 2, TENSOR_NAME = 8, TENSOR_RAW_DATA = 9 };
enum { DTYPE_FLOAT = 1, DTYPE_INT64 = 7 };
enum { VALUE_NAME = 1, VALUE_TYPE = 2, VALUE_DOC = 3 };
enum { TYPE_TENSOR = 1, TENSOR_TYPE_ELEM = 1, TENSOR_TYPE_SHAPE = 2, SHAPE_DIM = 1,
       DIM_VALUE = 1, DIM_PARAM = 2 };

#define ONNX_OPSET_MIN 11
#define ONNX_OPSET_MAX 21
#define ONNX_OPSET_DEFAULT 13
#define NAME_MAX_LEN 96

/* The IR version that goes with an opset (onnx.helper.VERSION_TABLE). */
static int ir_version(int opset) {
    return opset <= 11 ? 6 : opset <= 14 ? 7 : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

typedef struct {
    const rn_model *m;
    rn_pb_writer *w;
    int output;    /* the value that is the model's output */
    int *producer; /* per value: the node that writes it (the planner's is set only on reserve) */
} exporter;

static const float *param(const rn_model *m, int t) {
    return t < 0 ? NULL : m->params + m->tensors[t].off;
}
static const float *buffer(const rn_model *m, int t) { return m->buffers + m->tensors[t].off; }
static const char *tensor_name(const rn_model *m, int t) { return m->tensors[t].name_buf; }

/* The ONNX name of value v. */
static void value_name(const exporter *e, int v, char out[NAME_MAX_LEN]) {
    if (v == 0) {
        snprintf(out, NAME_MAX_LEN, "input");
    } else if (v == e->output) {
        snprintf(out, NAME_MAX_LEN, "logits");
    } else {
        int p = e->producer[v];
        const rn_node *nd = &e->m->nodes[p];
        if (nd->name[0]) snprintf(out, NAME_MAX_LEN, "%s", nd->name);
        else snprintf(out, NAME_MAX_LEN, "%.*s_%d", (int)strcspn(nd->op, "0123456789/"), nd->op, p);
    }
}

/* ---- protobuf pieces ---------------------------------------------------------------------- */

static void entry(rn_pb_writer *w, int field, const char *key, const char *value) {
    size_t mk = rn_pb_begin(w, field);
    rn_pb_string(w, ENTRY_KEY, key);
    rn_pb_string(w, ENTRY_VALUE, value);
    rn_pb_end(w, mk);
}

static void attr_int(rn_pb_writer *w, const char *name, int64_t v) {
    size_t mk = rn_pb_begin(w, NODE_ATTRIBUTE);
    rn_pb_string(w, ATTR_NAME, name);
    rn_pb_varint(w, ATTR_TYPE, ATTR_TYPE_INT);
    rn_pb_int64(w, ATTR_I, v);
    rn_pb_end(w, mk);
}

static void attr_float(rn_pb_writer *w, const char *name, float v) {
    size_t mk = rn_pb_begin(w, NODE_ATTRIBUTE);
    rn_pb_string(w, ATTR_NAME, name);
    rn_pb_varint(w, ATTR_TYPE, ATTR_TYPE_FLOAT);
    rn_pb_float(w, ATTR_F, v);
    rn_pb_end(w, mk);
}

/* An INTS attribute of n values, all equal to v (kernel_shape, strides, pads). */
static void attr_ints_same(rn_pb_writer *w, const char *name, int64_t v, int n) {
    size_t mk = rn_pb_begin(w, NODE_ATTRIBUTE);
    rn_pb_string(w, ATTR_NAME, name);
    rn_pb_varint(w, ATTR_TYPE, ATTR_TYPE_INTS);
    for (int i = 0; i < n; i++) rn_pb_int64(w, ATTR_INTS, v);
    rn_pb_end(w, mk);
}

/* Starts a NodeProto: inputs (NULL-terminated; "" for an omitted optional input), one output,
 * its name and op type. The caller adds attributes, then rn_pb_end(w, returned mark). */
static size_t node_begin(rn_pb_writer *w, const char *op_type, const char *name,
                         const char *const *inputs, const char *output) {
    size_t mk = rn_pb_begin(w, GRAPH_NODE);
    for (int i = 0; inputs[i]; i++) rn_pb_string(w, NODE_INPUT, inputs[i]);
    rn_pb_string(w, NODE_OUTPUT, output);
    rn_pb_string(w, NODE_NAME, name);
    rn_pb_string(w, NODE_OP_TYPE, op_type);
    return mk;
}

/* A float initializer (dims[0..ndim-1]) from host floats. */
static void init_floats(rn_pb_writer *w, const char *name, const int *dims, int ndim,
                        const float *data) {
    size_t numel = 1, mk = rn_pb_begin(w, GRAPH_INITIALIZER);
    for (int i = 0; i < ndim; i++) {
        rn_pb_int64(w, TENSOR_DIMS, dims[i]);
        numel *= (size_t)dims[i];
    }
    rn_pb_varint(w, TENSOR_DATA_TYPE, DTYPE_FLOAT);
    rn_pb_string(w, TENSOR_NAME, name);
    rn_pb_floats_le(w, TENSOR_RAW_DATA, data, numel);
    rn_pb_end(w, mk);
}

/* A 1-D int64 initializer. */
static void init_int64s(rn_pb_writer *w, const char *name, const int64_t *v, int n) {
    size_t mk = rn_pb_begin(w, GRAPH_INITIALIZER);
    rn_pb_int64(w, TENSOR_DIMS, n);
    rn_pb_varint(w, TENSOR_DATA_TYPE, DTYPE_INT64);
    rn_pb_string(w, TENSOR_NAME, name);
    uint8_t raw[8 * 8];
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 8; b++) raw[8 * i + b] = (uint8_t)((uint64_t)v[i] >> (8 * b));
    rn_pb_bytes(w, TENSOR_RAW_DATA, raw, 8 * (size_t)n);
    rn_pb_end(w, mk);
}

/* An initializer holding the state tensor t as it is. */
static void init_tensor(const exporter *e, int t) {
    const rn_tensor_info *ti = &e->m->tensors[t].info;
    const float *data = ti->kind == RN_TENSOR_PARAM ? param(e->m, t) : buffer(e->m, t);
    init_floats(e->w, tensor_name(e->m, t), ti->shape, ti->ndim, data);
}

/* A graph input or output: float tensor (batch, c[, h, w]); batch 0 is the dynamic "N". */
static void value_info(rn_pb_writer *w, int field, const char *name, int batch, const int *dims,
                       int ndim, const char *doc) {
    size_t mv = rn_pb_begin(w, field);
    rn_pb_string(w, VALUE_NAME, name);
    size_t mt = rn_pb_begin(w, VALUE_TYPE);
    size_t mtt = rn_pb_begin(w, TYPE_TENSOR);
    rn_pb_varint(w, TENSOR_TYPE_ELEM, DTYPE_FLOAT);
    size_t ms = rn_pb_begin(w, TENSOR_TYPE_SHAPE);
    for (int i = -1; i < ndim; i++) {
        size_t md = rn_pb_begin(w, SHAPE_DIM);
        if (i < 0 && batch == 0) rn_pb_string(w, DIM_PARAM, "N");
        else rn_pb_int64(w, DIM_VALUE, i < 0 ? batch : dims[i]);
        rn_pb_end(w, md);
    }
    rn_pb_end(w, ms);
    rn_pb_end(w, mtt);
    rn_pb_end(w, mt);
    if (doc) rn_pb_string(w, VALUE_DOC, doc);
    rn_pb_end(w, mv);
}

/* ---- nodes -------------------------------------------------------------------------------- */

/* Whether conv node i is followed by a BN that alone reads its output (so it can be folded). */
static bool bn_follows(const rn_model *m, int i) {
    if (i + 1 >= m->n_nodes || m->nodes[i + 1].kind != RN_NODE_BN) return false;
    int v = m->nodes[i].out;
    if (m->nodes[i + 1].in != v) return false;
    for (int j = 0; j < m->n_nodes; j++)
        if (j != i + 1 && (m->nodes[j].in == v || m->nodes[j].in2 == v)) return false;
    return true;
}

/* Conv node i, with the BN node i + 1 folded in when fold is set. */
static rn_status emit_conv(const exporter *e, int i, bool fold) {
    const rn_model *m = e->m;
    const rn_node *cv = &m->nodes[i], *bn = fold ? &m->nodes[i + 1] : NULL;
    const rn_conv_desc *d = &cv->d.conv;
    char in[NAME_MAX_LEN], out[NAME_MAX_LEN], wname[NAME_MAX_LEN + 8], bname[NAME_MAX_LEN + 8];
    value_name(e, cv->in, in);
    value_name(e, fold ? bn->out : cv->out, out);
    snprintf(wname, sizeof wname, "%s.weight", cv->name);
    snprintf(bname, sizeof bname, "%s.bias", cv->name);
    bool has_bias = fold || cv->bias >= 0;
    const char *inputs[] = {in, wname, has_bias ? bname : NULL, NULL};
    size_t mk = node_begin(e->w, "Conv", cv->name, inputs, out);
    attr_ints_same(e->w, "kernel_shape", d->R, 2);
    attr_ints_same(e->w, "strides", d->stride, 2);
    attr_ints_same(e->w, "pads", d->pad, 4);
    attr_ints_same(e->w, "dilations", 1, 2);
    attr_int(e->w, "group", 1);
    if (fold) {
        char doc[2 * NAME_MAX_LEN];
        snprintf(doc, sizeof doc, "%s with %s folded in", cv->name, bn->name);
        rn_pb_string(e->w, NODE_DOC, doc);
    }
    rn_pb_end(e->w, mk);
    const int wdims[4] = {d->K, d->C, d->R, d->S};
    if (!fold) {
        init_tensor(e, cv->weight);
        if (cv->bias >= 0) init_tensor(e, cv->bias);
        return RN_OK;
    }
    /* w'[k] = w[k] * alpha[k], b'[k] = b[k] * alpha[k] + shift[k], as inference folds them. */
    const size_t per_k = (size_t)d->C * d->R * d->S;
    float *w2 = malloc(((size_t)d->K * per_k + d->K) * sizeof(float));
    if (!w2) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the folded weights", cv->name);
    float *b2 = w2 + (size_t)d->K * per_k;
    const float *w = param(m, cv->weight), *b = param(m, cv->bias);
    const float *gamma = param(m, bn->weight), *beta = param(m, bn->bias);
    const float *mean = buffer(m, bn->running_mean), *var = buffer(m, bn->running_var);
    for (int k = 0; k < d->K; k++) {
        float alpha, shift;
        rn_bn_affine(mean[k], rn_bn_eval_invstd(var[k], bn->d.bn.eps), gamma[k], beta[k], &alpha,
                     &shift);
        for (size_t j = 0; j < per_k; j++) w2[k * per_k + j] = w[k * per_k + j] * alpha;
        b2[k] = b ? b[k] * alpha + shift : shift;
    }
    init_floats(e->w, wname, wdims, 4, w2);
    init_floats(e->w, bname, &d->K, 1, b2);
    free(w2);
    return RN_OK;
}

/* The option-A shortcut of node i: Slice with steps (stride, stride) over H and W, then Pad
 * with (K-C)/2 zero channels before and the rest after. */
static void emit_shortcut_a(const exporter *e, int i) {
    const rn_node *nd = &e->m->nodes[i];
    const rn_shortcut_a_desc *d = &nd->d.sa;
    char in[NAME_MAX_LEN], out[NAME_MAX_LEN], sliced[NAME_MAX_LEN + 8];
    char starts[NAME_MAX_LEN + 8], ends[NAME_MAX_LEN + 8], axes[NAME_MAX_LEN + 8];
    char steps[NAME_MAX_LEN + 8], pads[NAME_MAX_LEN + 8], name[NAME_MAX_LEN + 8];
    value_name(e, nd->in, in);
    value_name(e, nd->out, out);
    snprintf(sliced, sizeof sliced, "%s.slice", out);
    snprintf(starts, sizeof starts, "%s.starts", out);
    snprintf(ends, sizeof ends, "%s.ends", out);
    snprintf(axes, sizeof axes, "%s.axes", out);
    snprintf(steps, sizeof steps, "%s.steps", out);
    snprintf(pads, sizeof pads, "%s.pads", out);

    const int64_t v_starts[2] = {0, 0}, v_ends[2] = {d->H, d->W}, v_axes[2] = {2, 3};
    const int64_t v_steps[2] = {d->stride, d->stride};
    const int64_t before = (d->K - d->C) / 2, after = d->K - d->C - before;
    const int64_t v_pads[8] = {0, before, 0, 0, 0, after, 0, 0};
    init_int64s(e->w, starts, v_starts, 2);
    init_int64s(e->w, ends, v_ends, 2);
    init_int64s(e->w, axes, v_axes, 2);
    init_int64s(e->w, steps, v_steps, 2);
    init_int64s(e->w, pads, v_pads, 8);

    const char *slice_in[] = {in, starts, ends, axes, steps, NULL};
    snprintf(name, sizeof name, "%s.slice", out);
    rn_pb_end(e->w, node_begin(e->w, "Slice", name, slice_in, sliced));
    const char *pad_in[] = {sliced, pads, NULL};
    size_t mk = node_begin(e->w, "Pad", out, pad_in, out);
    rn_pb_string(e->w, NODE_DOC, "option-A shortcut: zero channels before and after");
    rn_pb_end(e->w, mk);
}

/* Every other node kind. */
static void emit_node(const exporter *e, int i) {
    const rn_node *nd = &e->m->nodes[i];
    char in[NAME_MAX_LEN], in2[NAME_MAX_LEN], out[NAME_MAX_LEN];
    value_name(e, nd->in, in);
    value_name(e, nd->out, out);
    const char *name = nd->name[0] ? nd->name : out;
    rn_pb_writer *w = e->w;
    switch (nd->kind) {
    case RN_NODE_BN: {
        const char *inputs[] = {in,
                                tensor_name(e->m, nd->weight),
                                tensor_name(e->m, nd->bias),
                                tensor_name(e->m, nd->running_mean),
                                tensor_name(e->m, nd->running_var),
                                NULL};
        size_t mk = node_begin(w, "BatchNormalization", name, inputs, out);
        attr_float(w, "epsilon", nd->d.bn.eps);
        attr_float(w, "momentum", 1.0f - nd->d.bn.momentum); /* ONNX's is PyTorch's 1 - m */
        rn_pb_end(w, mk);
        init_tensor(e, nd->weight);
        init_tensor(e, nd->bias);
        init_tensor(e, nd->running_mean);
        init_tensor(e, nd->running_var);
        break;
    }
    case RN_NODE_RELU: {
        const char *inputs[] = {in, NULL};
        rn_pb_end(w, node_begin(w, "Relu", name, inputs, out));
        break;
    }
    case RN_NODE_ADD: {
        value_name(e, nd->in2, in2);
        const char *inputs[] = {in, in2, NULL};
        rn_pb_end(w, node_begin(w, "Add", name, inputs, out));
        break;
    }
    case RN_NODE_MAXPOOL: {
        const char *inputs[] = {in, NULL};
        size_t mk = node_begin(w, "MaxPool", name, inputs, out);
        attr_ints_same(w, "kernel_shape", nd->d.pool.k, 2);
        attr_ints_same(w, "strides", nd->d.pool.stride, 2);
        attr_ints_same(w, "pads", nd->d.pool.pad, 4);
        rn_pb_end(w, mk);
        break;
    }
    case RN_NODE_AVGPOOL: {
        const char *inputs[] = {in, NULL};
        rn_pb_end(w, node_begin(w, "GlobalAveragePool", name, inputs, out));
        break;
    }
    case RN_NODE_LINEAR: {
        char flat[NAME_MAX_LEN + 8], flat_name[NAME_MAX_LEN + 8];
        snprintf(flat, sizeof flat, "%s.input", nd->name);
        snprintf(flat_name, sizeof flat_name, "%s.flatten", nd->name);
        const char *f_in[] = {in, NULL};
        size_t mk = node_begin(w, "Flatten", flat_name, f_in, flat);
        attr_int(w, "axis", 1);
        rn_pb_end(w, mk);
        const char *g_in[] = {flat, tensor_name(e->m, nd->weight), tensor_name(e->m, nd->bias),
                              NULL};
        mk = node_begin(w, "Gemm", name, g_in, out);
        attr_int(w, "transB", 1);
        rn_pb_end(w, mk);
        init_tensor(e, nd->weight);
        init_tensor(e, nd->bias);
        break;
    }
    default: break; /* CONV and SHORTCUT_A have their own functions */
    }
}

/* ---- the model ---------------------------------------------------------------------------- */

static rn_status check_args(const rn_model *m, const rn_norm *norm, const rn_onnx_opts *o) {
    if (o->opset < ONNX_OPSET_MIN || o->opset > ONNX_OPSET_MAX)
        return rn_fail(RN_ERR_BAD_ARG, "ONNX opset %d is not supported (expected %d to %d)",
                       o->opset, ONNX_OPSET_MIN, ONNX_OPSET_MAX);
    if (o->batch < 0 || o->batch > 1000000)
        return rn_fail(RN_ERR_BAD_ARG, "ONNX export: batch %d (expected 1 to 1000000, or 0 for "
                       "a dynamic batch)", o->batch);
    if (!norm || norm->channels != m->opts.in_channels)
        return rn_fail(RN_ERR_BAD_ARG, "%s: the normalization has %d channels, the model %d",
                       m->name, norm ? norm->channels : 0, m->opts.in_channels);
    for (int t = 0; t < m->n_tensors; t++) {
        const rn_tensor_info *ti = &m->tensors[t].info;
        if (ti->kind == RN_TENSOR_COUNTER) continue;
        const float *x = ti->kind == RN_TENSOR_PARAM ? param(m, t) : buffer(m, t);
        for (size_t j = 0; j < ti->numel; j++)
            if (!isfinite(x[j]))
                return rn_fail(RN_ERR_NUMERIC, "%s: tensor %s holds a NaN or Inf at index %zu",
                               m->name, m->tensors[t].name_buf, j);
    }
    return RN_OK;
}

/* "a,b,c" with enough digits to give back the same floats. */
static void join_floats(char *out, size_t size, const float *v, int n) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%.9g", i ? "," : "", v[i]);
}

static void write_metadata(rn_pb_writer *w, const rn_model *m, const rn_norm *norm, bool fold) {
    char buf[256];
    entry(w, MODEL_METADATA, "model", m->name);
    snprintf(buf, sizeof buf, "%d", m->opts.in_channels);
    entry(w, MODEL_METADATA, "in_channels", buf);
    snprintf(buf, sizeof buf, "%d", m->opts.in_height);
    entry(w, MODEL_METADATA, "in_height", buf);
    snprintf(buf, sizeof buf, "%d", m->opts.in_width);
    entry(w, MODEL_METADATA, "in_width", buf);
    snprintf(buf, sizeof buf, "%d", m->opts.num_classes);
    entry(w, MODEL_METADATA, "num_classes", buf);
    join_floats(buf, sizeof buf, norm->mean, norm->channels);
    entry(w, MODEL_METADATA, "mean", buf);
    join_floats(buf, sizeof buf, norm->std, norm->channels);
    entry(w, MODEL_METADATA, "std", buf);
    entry(w, MODEL_METADATA, "normalization",
          "input[n][c] = (pixel / 255 - mean[c]) / std[c], pixels in [0, 255], channels in "
          "RGB order (gray for 1 channel), NCHW; not part of the graph");
    entry(w, MODEL_METADATA, "batch_norm", fold ? "folded into the convolutions"
                                                : "BatchNormalization nodes");
}

rn_status rn_model_export_onnx(const rn_model *m, const char *path, const rn_norm *norm,
                               const rn_onnx_opts *opts) {
    rn_onnx_opts o = opts ? *opts : (rn_onnx_opts){0};
    if (!o.opset) o.opset = ONNX_OPSET_DEFAULT;
    rn_status s = check_args(m, norm, &o);
    if (s != RN_OK) return s;

    rn_pb_writer w = {0};
    exporter e = {.m = m, .w = &w, .output = m->nodes[m->n_nodes - 1].out};
    if (!(e.producer = malloc((size_t)m->n_values * sizeof(int))))
        return rn_fail(RN_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < m->n_nodes; i++) e.producer[m->nodes[i].out] = i;
    rn_pb_int64(&w, MODEL_IR_VERSION, ir_version(o.opset));
    rn_pb_string(&w, MODEL_PRODUCER_NAME, "resnet.c");
    rn_pb_string(&w, MODEL_PRODUCER_VERSION, RN_VERSION_STRING);
    size_t mk = rn_pb_begin(&w, MODEL_OPSET);
    rn_pb_string(&w, OPSET_DOMAIN, "");
    rn_pb_int64(&w, OPSET_VERSION, o.opset);
    rn_pb_end(&w, mk);
    char doc[512];
    snprintf(doc, sizeof doc, "%s in evaluation mode: input (N, %d, %d, %d), logits (N, %d)",
             m->name, m->opts.in_channels, m->opts.in_height, m->opts.in_width,
             m->opts.num_classes);
    rn_pb_string(&w, MODEL_DOC, doc);
    write_metadata(&w, m, norm, o.fold_bn);

    size_t mg = rn_pb_begin(&w, MODEL_GRAPH);
    rn_pb_string(&w, GRAPH_NAME, m->name);
    for (int i = 0; i < m->n_nodes && s == RN_OK; i++) {
        const rn_node *nd = &m->nodes[i];
        if (nd->kind == RN_NODE_CONV) {
            bool fold = o.fold_bn && bn_follows(m, i);
            s = emit_conv(&e, i, fold);
            i += fold; /* the BN is inside the convolution now */
        } else if (nd->kind == RN_NODE_SHORTCUT_A) {
            emit_shortcut_a(&e, i);
        } else {
            emit_node(&e, i);
        }
    }
    char in_doc[512], mean[128], std[128];
    join_floats(mean, sizeof mean, norm->mean, norm->channels);
    join_floats(std, sizeof std, norm->std, norm->channels);
    snprintf(in_doc, sizeof in_doc, "images (N, C, H, W), each channel (pixel / 255 - mean) / std "
             "with mean %s and std %s", mean, std);
    const int in_dims[3] = {m->opts.in_channels, m->opts.in_height, m->opts.in_width};
    value_info(&w, GRAPH_INPUT, "input", o.batch, in_dims, 3, in_doc);
    value_info(&w, GRAPH_OUTPUT, "logits", o.batch, &m->opts.num_classes, 1,
               "unnormalized class scores (softmax gives probabilities)");
    rn_pb_end(&w, mg);

    if (s == RN_OK && w.failed)
        s = rn_fail(RN_ERR_NOMEM, "%s: out of memory building the ONNX file", path);
    if (s == RN_OK) {
        const void *parts[1] = {w.buf};
        size_t sizes[1] = {w.len};
        s = rn_write_file_atomic(path, parts, sizes, 1);
    }
    rn_pb_free(&w);
    free(e.producer);
    return s;
}
