/*
 * model.c — a model's life after the zoo built it (zoo.c): accessors, the workspace, and the
 * forward and backward passes, which walk the node list and call the context's backend for every op.
 */
#include "model.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static void free_workspace(rn_model *m) {
    rn_plan_free(&m->plan);
    rn_free(m->acts);
    rn_free(m->dacts);
    rn_free(m->din);
    rn_free(m->stats);
    rn_free(m->scratch);
    rn_free(m->fold);
    m->fold = NULL;
    free(m->block_gnorm);
    m->block_gnorm = NULL;
    m->acts = m->dacts = m->din = m->stats = m->scratch = NULL;
    m->max_batch = 0;
    m->forward_done = false;
}

void rn_model_free(rn_model *m) {
    if (!m) return;
    free_workspace(m);
    rn_free(m->params);
    rn_free_pages(m->grads, m->n_params * sizeof(float));
    rn_free(m->buffers);
    rn_free(m->counters);
    free(m->nodes);
    free(m->values);
    free(m->tensors);
    free(m->blocks);
    free(m->prof);
    free(m);
}

const char *rn_model_name(const rn_model *m) { return m->name; }
rn_model_opts rn_model_get_opts(const rn_model *m) { return m->opts; }

int64_t rn_model_param_count(const rn_model *m) { return (int64_t)m->n_params; }

int64_t rn_model_macs(const rn_model *m) {
    int64_t s = 0;
    for (int i = 0; i < m->n_nodes; i++) s += m->nodes[i].macs;
    return s;
}

int rn_model_num_layers(const rn_model *m) { return m->n_nodes; }

rn_layer_info rn_model_layer(const rn_model *m, int i) {
    const rn_node *nd = &m->nodes[i];
    const rn_value *v = &m->values[nd->out];
    return (rn_layer_info){nd->name, nd->op, v->c, v->h, v->w, nd->params, nd->macs};
}

int rn_model_num_tensors(const rn_model *m) { return m->n_tensors; }
const rn_tensor_info *rn_model_tensor(const rn_model *m, int i) { return &m->tensors[i].info; }

const rn_tensor_info *rn_model_find_tensor(const rn_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name_buf, name)) return &m->tensors[i].info;
    return NULL;
}

float *rn_model_params(rn_model *m, size_t *count) {
    if (count) *count = m->n_params;
    return m->params;
}

float *rn_model_grads(rn_model *m, size_t *count) {
    if (count) *count = m->n_params;
    return m->grads;
}

float *rn_model_buffers(rn_model *m, size_t *count) {
    if (count) *count = m->n_buffers;
    return m->buffers;
}

void rn_model_zero_grad(rn_model *m) { memset(m->grads, 0, m->n_params * sizeof(float)); }

/* The workspace for batches of up to max_batch images; a training one unless `inference`. */
static rn_status reserve(rn_model *m, rn_ctx *ctx, int max_batch, bool inference) {
    if (max_batch < 1)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d must be at least 1", max_batch);
    if (m->acts && max_batch <= m->max_batch && m->ws_backend == ctx->backend &&
        m->ws_threads == ctx->nthreads && m->plan.inference == inference)
        return RN_OK;
    free_workspace(m);
    rn_status s = rn_plan_memory(&m->plan, m, max_batch, ctx->backend, inference);
    if (s != RN_OK) return s;
    size_t scratch = 0, fold = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].kind == RN_NODE_CONV) {
            rn_conv_desc d = m->nodes[i].d.conv;
            d.N = max_batch;
            scratch = RN_MAX(scratch, ctx->backend->conv2d_scratch_floats(&d, ctx->nthreads));
            if (m->nodes[i].bn_next && ctx->backend->conv2d_forward_relu)
                fold = RN_MAX(fold, (size_t)d.K * d.C * d.R * d.S + d.K);
        }
    m->acts = rn_alloc(m->plan.act_floats * sizeof(float));
    m->dacts = rn_alloc(RN_MAX(m->plan.grad_floats, 1) * sizeof(float));
    m->din = rn_alloc((inference ? 1 : (size_t)max_batch * rn_value_floats(&m->values[0])) *
                      sizeof(float));
    m->stats = rn_alloc(RN_MAX(m->n_stats, 1) * sizeof(float));
    m->scratch = rn_alloc(RN_MAX(scratch, 1) * sizeof(float));
    m->fold = fold ? rn_alloc(fold * sizeof(float)) : NULL;
    m->block_gnorm = calloc((size_t)RN_MAX(m->n_blocks, 1), sizeof(double));
    if (!m->acts || !m->dacts || !m->din || !m->stats || !m->scratch || !m->block_gnorm ||
        (fold && !m->fold)) {
        size_t mb = (m->plan.act_floats + m->plan.grad_floats) * sizeof(float) >> 20;
        free_workspace(m);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu MB of activations for batch %d",
                       m->name, mb, max_batch);
    }
    m->scratch_floats = scratch;
    m->max_batch = max_batch;
    m->ws_backend = ctx->backend;
    m->ws_threads = ctx->nthreads;
    return RN_OK;
}

rn_status rn_model_reserve(rn_model *m, rn_ctx *ctx, int max_batch) {
    return reserve(m, ctx, max_batch, false);
}

rn_status rn_model_reserve_inference(rn_model *m, rn_ctx *ctx, int max_batch) {
    return reserve(m, ctx, max_batch, true);
}

rn_status rn_model_reserve_keep(rn_model *m, rn_ctx *ctx, int max_batch) {
    return reserve(m, ctx, max_batch, m->acts && m->plan.inference);
}

/* The activation of value v (the caller's input for v == 0). */
static const float *act(const rn_model *m, int v) {
    return v == 0 ? m->last_x : m->acts + m->plan.off[v];
}
static float *act_w(rn_model *m, int v) { return m->acts + m->plan.off[v]; }
/* The gradient of value v (the input gradient for v == 0). */
static float *dact(rn_model *m, int v) { return v == 0 ? m->din : m->dacts + m->plan.goff[v]; }

static double l2norm(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return sqrt(s);
}

static float *P(rn_model *m, int t) { return t < 0 ? NULL : m->params + m->tensors[t].off; }
static float *G(rn_model *m, int t) { return t < 0 ? NULL : m->grads + m->tensors[t].off; }
static float *B(rn_model *m, int t) { return m->buffers + m->tensors[t].off; }

/* Inference: convolution node i and the BN after it (and that BN's fused ReLU) as one
 * convolution with the BN folded into its weights and bias, w'[k] = w[k] * alpha[k] and
 * b'[k] = b[k] * alpha[k] + shift[k], with BN eval's own alpha and shift (rn_bn_affine).
 * Returns the number of nodes it ran (2 or 3). */
static int forward_folded(rn_model *m, const rn_backend *be, int i, const float *in, int n,
                          int nt) {
    const rn_node *cv = &m->nodes[i], *bn = &m->nodes[i + 1];
    rn_conv_desc d = cv->d.conv;
    d.N = n;
    const size_t per_k = (size_t)d.C * d.R * d.S;
    float *w2 = m->fold, *b2 = m->fold + (size_t)d.K * per_k;
    const float *w = P(m, cv->weight), *b = P(m, cv->bias);
    const float *gamma = P(m, bn->weight), *beta = P(m, bn->bias);
    const float *mean = B(m, bn->running_mean), *var = B(m, bn->running_var);
    for (int k = 0; k < d.K; k++) {
        float alpha, shift;
        rn_bn_affine(mean[k], rn_bn_eval_invstd(var[k], bn->d.bn.eps), gamma[k], beta[k], &alpha,
                     &shift);
        for (size_t j = 0; j < per_k; j++) w2[k * per_k + j] = w[k * per_k + j] * alpha;
        b2[k] = b ? b[k] * alpha + shift : shift;
    }
    const bool relu = m->plan.relu_fused[i + 1];
    float *out = act_w(m, bn->out); /* the ReLU's too: it runs in place */
    (relu ? be->conv2d_forward_relu : be->conv2d_forward)(out, in, w2, b2, &d, m->scratch, nt);
    return relu ? 3 : 2;
}

rn_status rn_model_forward(rn_model *m, rn_ctx *ctx, const float *x, int n, rn_mode mode,
                           const float **logits) {
    if (!m->acts || m->ws_backend != ctx->backend || m->ws_threads != ctx->nthreads)
        return rn_fail(RN_ERR_BAD_ARG,
                       "%s: rn_model_reserve was not called for this context", m->name);
    if (n < 1 || n > m->max_batch)
        return rn_fail(RN_ERR_BAD_ARG, "%s: batch of %d images, reserved for 1 to %d", m->name,
                       n, m->max_batch);
    if (mode == RN_MODE_TRAIN && m->plan.inference)
        return rn_fail(RN_ERR_BAD_ARG, "%s: training pass in a workspace reserved for inference "
                       "(rn_model_reserve_inference); call rn_model_reserve", m->name);
    const rn_backend *be = ctx->backend;
    int nt = ctx->nthreads;
    m->last_x = x;
    m->last_n = n;
    m->last_mode = mode;
    for (int i = 0; i < m->n_nodes; i++) {
        double t0 = m->prof ? omp_get_wtime() : 0;
        rn_node *nd = &m->nodes[i];
        const bool fused = m->plan.relu_fused[i];
        const float *in = act(m, nd->in);
        float *out = act_w(m, nd->out);
        if (mode == RN_MODE_INFER && nd->bn_next && m->fold) {
            int ran = forward_folded(m, be, i, in, n, nt);
            if (m->prof) m->prof[i][0] += omp_get_wtime() - t0;
            i += ran - 1;
            continue;
        }
        switch (nd->kind) {
        case RN_NODE_CONV: {
            rn_conv_desc d = nd->d.conv;
            d.N = n;
            be->conv2d_forward(out, in, P(m, nd->weight), P(m, nd->bias), &d, m->scratch, nt);
            break;
        }
        case RN_NODE_BN: {
            rn_bn_desc d = nd->d.bn;
            d.N = n;
            float *mean = m->stats + nd->stats_off, *invstd = mean + d.C;
            if (mode == RN_MODE_TRAIN) {
                d.sync = ctx->bn_sync;
                (fused ? be->batchnorm_relu_forward_train : be->batchnorm_forward_train)(
                    out, mean, invstd, B(m, nd->running_mean), B(m, nd->running_var), in,
                    P(m, nd->weight), P(m, nd->bias), &d, nt);
                m->counters[m->tensors[nd->counter].off] += 1;
            } else {
                (fused ? be->batchnorm_relu_forward_eval : be->batchnorm_forward_eval)(
                    out, mean, invstd, in, P(m, nd->weight), P(m, nd->bias),
                    B(m, nd->running_mean), B(m, nd->running_var), &d, nt);
            }
            break;
        }
        case RN_NODE_RELU:
            be->relu_forward(out, in, (size_t)n * rn_value_floats(&m->values[nd->out]));
            break;
        case RN_NODE_ADD:
            if (fused)
                be->add_relu_forward(out, in, act(m, nd->in2),
                                     (size_t)n * rn_value_floats(&m->values[nd->out]), nt);
            else
                be->add_forward(out, in, act(m, nd->in2),
                                (size_t)n * rn_value_floats(&m->values[nd->out]));
            break;
        case RN_NODE_SHORTCUT_A: {
            rn_shortcut_a_desc d = nd->d.sa;
            d.N = n;
            be->shortcut_a_forward(out, in, &d);
            break;
        }
        case RN_NODE_MAXPOOL: {
            rn_pool_desc d = nd->d.pool;
            d.N = n;
            be->maxpool_forward(out, in, &d, nt);
            break;
        }
        case RN_NODE_AVGPOOL: {
            const rn_value *v = &m->values[nd->in];
            be->avgpool_forward(out, in, n, v->c, v->h * v->w);
            break;
        }
        case RN_NODE_LINEAR:
            be->linear_forward(out, in, P(m, nd->weight), P(m, nd->bias), n, nd->d.lin.I,
                               nd->d.lin.O);
            break;
        }
        if (m->prof) m->prof[i][0] += omp_get_wtime() - t0;
        if (fused) i++; /* its ReLU ran with it, in place */
    }
    if (m->prof) m->prof_passes[0]++;
    if (mode == RN_MODE_TRAIN && ctx->bn_sync && ctx->bn_sync->status != RN_OK)
        return ctx->bn_sync->status; /* its message is the sum's */
    m->forward_done = true;
    *logits = act(m, m->nodes[m->n_nodes - 1].out);
    return RN_OK;
}

rn_status rn_model_backward(rn_model *m, rn_ctx *ctx, const float *dlogits) {
    return rn_model_backward_ready(m, ctx, dlogits, NULL, NULL);
}

rn_status rn_model_backward_ready(rn_model *m, rn_ctx *ctx, const float *dlogits,
                                  rn_grads_ready_hook ready, void *user) {
    if (!m->forward_done || m->ws_backend != ctx->backend || m->ws_threads != ctx->nthreads)
        return rn_fail(RN_ERR_BAD_ARG, "%s: backward pass without a forward pass before it",
                       m->name);
    if (m->last_mode == RN_MODE_INFER)
        return rn_fail(RN_ERR_BAD_ARG, "%s: backward pass after an inference-only forward pass "
                       "(RN_MODE_INFER); use RN_MODE_EVAL", m->name);
    if (m->plan.inference)
        return rn_fail(RN_ERR_BAD_ARG, "%s: backward pass in a workspace reserved for inference "
                       "(rn_model_reserve_inference); call rn_model_reserve", m->name);
    const rn_backend *be = ctx->backend;
    int nt = ctx->nthreads, n = m->last_n;
    bool train = m->last_mode == RN_MODE_TRAIN;
    /* Gradients accumulate, so each starts at zero in its slot when it comes alive (at its
     * last consumer; see plan.c). */
    memset(m->din, 0, (size_t)n * rn_value_floats(&m->values[0]) * sizeof(float));
    int last = m->nodes[m->n_nodes - 1].out;
    memcpy(dact(m, last), dlogits, (size_t)n * rn_value_floats(&m->values[last]) * sizeof(float));
    size_t final_from = m->n_params; /* grads[final_from, n_params) are final */
    for (int i = m->n_nodes - 1; i >= 0; i--) {
        double t0 = m->prof ? omp_get_wtime() : 0;
        rn_node *nd = &m->nodes[i];
        /* A ReLU fused into the node before it: that node's backward does its work. */
        bool fused_relu = i > 0 && m->plan.relu_fused[i - 1];
        const bool fused = m->plan.relu_fused[i];
        /* Input gradients that start here: cleared, then added to; a fused op (and a BN on a
         * backend with the fused kernel, run without a mask) writes them instead. */
        bool starts[2] = {false, false};
        bool writes = fused || (nd->kind == RN_NODE_BN && be->batchnorm_relu_backward);
        for (int k = 0; k < 2 && !fused_relu; k++) {
            int v = k ? nd->in2 : nd->in;
            starts[k] = v > 0 && m->values[v].grad_first == i;
            if (starts[k] && !writes)
                memset(dact(m, v), 0, (size_t)n * rn_value_floats(&m->values[v]) * sizeof(float));
        }
        /* The output's gradient is complete now: every consumer has run. */
        if (m->values[nd->out].block >= 0 && m->track_block_grads)
            m->block_gnorm[m->values[nd->out].block] =
                l2norm(dact(m, nd->out), (size_t)n * rn_value_floats(&m->values[nd->out]));
        if (fused_relu) {
            if (m->prof) m->prof[i][1] += omp_get_wtime() - t0;
            continue;
        }
        /* A fused node reads its ReLU's output and output gradient. */
        int gv = fused ? m->nodes[i + 1].out : nd->out;
        const float *in = act(m, nd->in);
        const float *out = act(m, gv);
        const float *dout = dact(m, gv);
        float *din = dact(m, nd->in);
        switch (nd->kind) {
        case RN_NODE_CONV: {
            rn_conv_desc d = nd->d.conv;
            d.N = n;
            be->conv2d_backward(din, G(m, nd->weight), G(m, nd->bias), dout, in, P(m, nd->weight),
                                &d, m->scratch, nt);
            break;
        }
        case RN_NODE_BN: {
            rn_bn_desc d = nd->d.bn;
            d.N = n;
            d.sync = train ? ctx->bn_sync : NULL;
            const float *mean = m->stats + nd->stats_off, *invstd = mean + d.C;
            if (be->batchnorm_relu_backward) /* the ReLU's output masks dout; none: no mask */
                be->batchnorm_relu_backward(din, G(m, nd->weight), G(m, nd->bias), dout,
                                            fused ? out : NULL, in, mean, invstd,
                                            P(m, nd->weight), &d, train, !starts[0], nt);
            else
                be->batchnorm_backward(din, G(m, nd->weight), G(m, nd->bias), dout, in, mean,
                                       invstd, P(m, nd->weight), &d, train, nt);
            break;
        }
        case RN_NODE_RELU:
            be->relu_backward(din, dout, out, (size_t)n * rn_value_floats(&m->values[nd->out]));
            break;
        case RN_NODE_ADD:
            if (fused)
                be->add_relu_backward(din, dact(m, nd->in2), dout, out,
                                      (size_t)n * rn_value_floats(&m->values[nd->out]), !starts[0],
                                      !starts[1], nt);
            else
                be->add_backward(din, dact(m, nd->in2), dout,
                                 (size_t)n * rn_value_floats(&m->values[nd->out]));
            break;
        case RN_NODE_SHORTCUT_A: {
            rn_shortcut_a_desc d = nd->d.sa;
            d.N = n;
            be->shortcut_a_backward(din, dout, &d);
            break;
        }
        case RN_NODE_MAXPOOL: {
            rn_pool_desc d = nd->d.pool;
            d.N = n;
            be->maxpool_backward(din, dout, in, &d, nt);
            break;
        }
        case RN_NODE_AVGPOOL: {
            const rn_value *v = &m->values[nd->in];
            be->avgpool_backward(din, dout, n, v->c, v->h * v->w);
            break;
        }
        case RN_NODE_LINEAR:
            be->linear_backward(din, G(m, nd->weight), G(m, nd->bias), dout, in,
                                P(m, nd->weight), n, nd->d.lin.I, nd->d.lin.O);
            break;
        }
        if (m->prof) m->prof[i][1] += omp_get_wtime() - t0;
        if (train && ctx->bn_sync && ctx->bn_sync->status != RN_OK) return ctx->bn_sync->status;
        if (ready && nd->grads_from < final_from) {
            final_from = nd->grads_from;
            rn_status s = ready(user, m->grads, m->n_params, final_from, false);
            if (s != RN_OK) return s;
        }
    }
    if (m->prof) m->prof_passes[1]++;
    if (m->values[0].block >= 0 && m->track_block_grads)
        m->block_gnorm[m->values[0].block] =
            l2norm(m->din, (size_t)n * rn_value_floats(&m->values[0]));
    return RN_OK;
}

const float *rn_model_input_grad(const rn_model *m) { return m->din; }

int rn_model_num_blocks(const rn_model *m) { return m->n_blocks; }
const char *rn_model_block_name(const rn_model *m, int i) { return m->blocks[i].name; }

void rn_model_track_block_grads(rn_model *m, bool on) { m->track_block_grads = on; }

double rn_model_block_input_grad_norm(const rn_model *m, int i) {
    return m->block_gnorm ? m->block_gnorm[i] : 0; /* zeros until a backward pass */
}

void rn_model_profile(rn_model *m, bool on) {
    free(m->prof);
    m->prof = on ? calloc((size_t)m->n_nodes, sizeof *m->prof) : NULL;
    m->prof_passes[0] = m->prof_passes[1] = 0;
}

void rn_model_profile_print(const rn_model *m, FILE *f) {
    if (!m->prof) return;
    /* Op kinds in order of first appearance, with their time per pass in each direction. */
    enum { MAX_KINDS = 32 };
    const char *kind[MAX_KINDS];
    double t[MAX_KINDS][2] = {{0}}, total[2] = {0};
    int count[MAX_KINDS] = {0}, fused[MAX_KINDS] = {0}, nk = 0;
    double per[2] = {m->prof_passes[0] ? 1e3 / m->prof_passes[0] : 0,
                     m->prof_passes[1] ? 1e3 / m->prof_passes[1] : 0};
    for (int i = 0; i < m->n_nodes; i++) {
        int k = 0;
        while (k < nk && strcmp(kind[k], m->nodes[i].op)) k++;
        if (k == nk) {
            if (nk == MAX_KINDS) continue;
            kind[nk++] = m->nodes[i].op;
        }
        count[k]++;
        fused[k] += i > 0 && (m->plan.relu_fused[i - 1] ||
                              (m->nodes[i - 1].bn_next && m->fold &&
                               m->last_mode == RN_MODE_INFER));
        for (int d = 0; d < 2; d++) {
            t[k][d] += m->prof[i][d] * per[d];
            total[d] += m->prof[i][d] * per[d];
        }
    }
    fprintf(f, "time per pass by op (ms; %d forward, %d backward passes):\n", m->prof_passes[0],
            m->prof_passes[1]);
    fprintf(f, "  %-14s %5s %5s %10s %10s %7s\n", "op", "nodes", "fused", "forward", "backward",
            "share");
    for (int k = 0; k < nk; k++)
        fprintf(f, "  %-14s %5d %5d %10.3f %10.3f %6.1f%%\n", kind[k], count[k], fused[k],
                t[k][0], t[k][1], 100 * (t[k][0] + t[k][1]) / RN_MAX(total[0] + total[1], 1e-12));
    fprintf(f, "  %-14s %5d %5s %10.3f %10.3f\n", "total", m->n_nodes, "", total[0], total[1]);
    fprintf(f, "  (fused: nodes that ran inside the op before them; in inference, BNs folded "
               "into their convolutions)\n");
}
