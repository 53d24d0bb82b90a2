/*
 * exec_host.c — the host executor: the model's passes through a kernel table (rn_ctx: the
 * reference, cpu or cpu-winograd kernels) on the CPU's threads, one op after another. A
 * training step is: the batch (step.h's rn_batch_fill_slice: this process's share of the
 * global batch; or a batch the caller decoded, rn_exec_train_step_batch), forward, softmax
 * cross-entropy, backward (calling the gradients-ready hook as parts of the gradient block
 * become final), the gradient hook, SGD.
 */
#include "exec.h"
#include "step.h"

#include <math.h>
#include <string.h>

typedef struct {
    rn_exec base;
    rn_ctx *ctx;
    /* Training (train_init). */
    const rn_dataset *train;
    rn_norm norm;
    float *lrs;              /* (n_steps) */
    int64_t n_steps, step;   /* step: the next one to run */
    int steps_per_epoch;
    int *order;              /* (train->n) the epoch's order */
    float *x;                /* (batch, C, H, W) */
    float *probs, *dlogits;  /* (batch, K) */
    int *labels;             /* (batch) */
    double loss_sum;         /* since the last train_metrics */
    int64_t correct;
    rn_bn_sync bn_sync;      /* synchronized BN (topts.bn_sum), its buf (2 * max C + 1) */
    double peak;             /* GFLOP/s, measured on first use */
    char peak_what[64];
} host_exec;

static host_exec *H(rn_exec *e) { return (host_exec *)e; }

static void free_training(host_exec *h) {
    rn_free(h->lrs);
    rn_free(h->x);
    rn_free(h->probs);
    rn_free(h->dlogits);
    free(h->order);
    free(h->labels);
    free(h->bn_sync.buf);
    h->bn_sync = (rn_bn_sync){0};
    h->lrs = h->x = h->probs = h->dlogits = NULL;
    h->order = h->labels = NULL;
    h->train = NULL;
}

static void host_close(rn_exec *e) {
    host_exec *h = H(e);
    free_training(h);
    rn_ctx_free(h->ctx);
    rn_free(h);
}

static rn_status host_forward(rn_exec *e, const float *x, int n, rn_mode mode, float *logits) {
    const float *out;
    rn_status s = rn_model_forward(e->m, H(e)->ctx, x, n, mode, &out);
    if (s == RN_OK)
        memcpy(logits, out, (size_t)n * e->m->opts.num_classes * sizeof(float));
    return s;
}

static rn_status host_evaluate(rn_exec *e, const rn_dataset *d, const rn_norm *norm,
                               rn_eval_result *r) {
    return rn_evaluate_progress(e->m, H(e)->ctx, d, norm, e->max_batch, e->eval_progress,
                                e->eval_progress_user, r);
}

static rn_status host_train_init(rn_exec *e, const rn_dataset *train, const rn_norm *norm,
                                 const float *lrs, int64_t n_steps, int64_t step) {
    host_exec *h = H(e);
    free_training(h);
    const int B = e->max_batch, K = e->m->opts.num_classes;
    const size_t per = (size_t)train->c * train->h * train->w;
    h->lrs = rn_alloc((size_t)RN_MAX(n_steps, 1) * sizeof(float));
    /* a streamed set's batches arrive assembled (host_train_step_batch) */
    h->x = train->images ? rn_alloc((size_t)B * per * sizeof(float)) : NULL;
    h->probs = rn_alloc((size_t)B * K * sizeof(float));
    h->dlogits = rn_alloc((size_t)B * K * sizeof(float));
    h->order = malloc((size_t)train->n * sizeof(int));
    h->labels = malloc((size_t)B * sizeof(int));
    if (e->topts.bn_sum) {
        int max_c = 0;
        for (int i = 0; i < e->m->n_nodes; i++)
            if (e->m->nodes[i].kind == RN_NODE_BN) max_c = RN_MAX(max_c, e->m->nodes[i].d.bn.C);
        h->bn_sync = (rn_bn_sync){.sum = e->topts.bn_sum, .user = e->topts.bn_sum_user,
                                  .buf = malloc((2 * (size_t)max_c + 1) * sizeof(double))};
    }
    if (!h->lrs || (train->images && !h->x) || !h->probs || !h->dlogits || !h->order ||
        !h->labels || (e->topts.bn_sum && !h->bn_sync.buf)) {
        free_training(h);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate the training buffers for batch %d", B);
    }
    memcpy(h->lrs, lrs, (size_t)n_steps * sizeof(float));
    for (int i = 0; i < train->n; i++) h->order[i] = i;
    h->train = train;
    h->norm = *norm;
    h->n_steps = n_steps;
    h->step = step;
    h->steps_per_epoch = train->n / e->topts.global_batch;
    h->loss_sum = 0;
    h->correct = 0;
    rn_model_track_block_grads(e->m, e->topts.block_norms);
    return RN_OK;
}

static rn_status host_train_set_order(rn_exec *e, const int *order) {
    host_exec *h = H(e);
    if (!h->train) return rn_fail(RN_ERR_BAD_ARG, "training was not initialized");
    memcpy(h->order, order, (size_t)h->train->n * sizeof(int));
    return RN_OK;
}

/* RN_OK when training was initialized and the run has a next step. */
static rn_status check_next_step(const host_exec *h) {
    if (!h->train) return rn_fail(RN_ERR_BAD_ARG, "training was not initialized");
    if (h->step >= h->n_steps)
        return rn_fail(RN_ERR_BAD_ARG, "step %lld: the run has %lld steps",
                       (long long)h->step + 1, (long long)h->n_steps);
    return RN_OK;
}

/* A training step's passes on batch x (B, C, H, W) with labels (B): forward, loss (into
 * *loss), backward (with the gradients-ready hook), the gradient hook. */
static rn_status step_passes(host_exec *h, const float *x, const int *labels, float *loss) {
    rn_exec *e = &h->base;
    const rn_exec_train_opts *o = &e->topts;
    rn_model *m = e->m;
    const int B = e->max_batch, K = m->opts.num_classes;
    const float *logits;
    rn_status s = rn_model_forward(m, h->ctx, x, B, RN_MODE_TRAIN, &logits);
    if (s != RN_OK) return s;
    float l = rn_softmax_xent_forward(h->probs, logits, labels, B, K, o->label_smoothing);
    if (!isfinite(l))
        return rn_fail(RN_ERR_NUMERIC, "step %lld: the loss is %f", (long long)h->step + 1,
                       (double)l);
    for (int i = 0; i < B; i++) {
        const float *p = h->probs + (size_t)i * K;
        int pred = 0;
        for (int k = 1; k < K; k++)
            if (p[k] > p[pred]) pred = k;
        h->correct += pred == labels[i];
    }
    rn_softmax_xent_backward(h->dlogits, h->probs, labels, B, K, o->label_smoothing, 1.0f);
    rn_model_zero_grad(m);
    if ((s = rn_model_backward_ready(m, h->ctx, h->dlogits, e->ready, e->ready_user)) != RN_OK)
        return s;
    if (e->hook) {
        size_t n;
        float *g = rn_model_grads(m, &n);
        if ((s = e->hook(e->hook_user, g, n, false)) != RN_OK) return s;
    }
    *loss = l;
    return RN_OK;
}

/* The step on batch x with labels: its passes, then SGD. */
static rn_status run_step(host_exec *h, const float *x, const int *labels) {
    rn_exec *e = &h->base;
    const rn_exec_train_opts *o = &e->topts;
    /* Synchronized BN for this step's passes only: evaluation keeps to its own images. */
    h->bn_sync.status = RN_OK;
    h->ctx->bn_sync = o->bn_sum ? &h->bn_sync : NULL;
    float l = 0;
    rn_status s = step_passes(h, x, labels, &l);
    h->ctx->bn_sync = NULL;
    if (s != RN_OK) return s;
    rn_sgd_step(e->m, e->momentum, h->lrs[h->step], o->momentum, o->wd, o->nesterov,
                o->wd_skip_bn);
    h->loss_sum += l;
    h->step++;
    return RN_OK;
}

static rn_status host_train_step(rn_exec *e) {
    host_exec *h = H(e);
    rn_status s = check_next_step(h);
    if (s != RN_OK) return s;
    if (!h->train->images)
        return rn_fail(RN_ERR_BAD_ARG, "the training set has no images in memory (a streamed "
                       "set's batches come with rn_exec_train_step_batch)");
    const rn_exec_train_opts *o = &e->topts;
    const int b = (int)(h->step % h->steps_per_epoch);
    rn_batch_fill_slice(h->x, h->labels, h->train,
                        h->order + (size_t)b * o->global_batch + o->first, e->max_batch,
                        o->first, &h->norm, o->augment, o->seed, h->step, h->ctx->nthreads);
    return run_step(h, h->x, h->labels);
}

static rn_status host_train_step_batch(rn_exec *e, const float *x, const int *labels) {
    host_exec *h = H(e);
    rn_status s = check_next_step(h);
    return s != RN_OK ? s : run_step(h, x, labels);
}

static rn_status host_train_metrics(rn_exec *e, double *loss_sum, int64_t *correct) {
    host_exec *h = H(e);
    *loss_sum = h->loss_sum;
    *correct = h->correct;
    h->loss_sum = 0;
    h->correct = 0;
    return RN_OK;
}

/* The host model is the state: nothing to move. */
static rn_status host_nothing(rn_exec *e) { return RN_OK; }

static void host_profile(rn_exec *e, bool on) { rn_model_profile(e->m, on); }

static rn_status host_profile_print(rn_exec *e, FILE *f) {
    rn_model_profile_print(e->m, f);
    return RN_OK;
}

static double host_peak_gflops(rn_exec *e, const char **what) {
    host_exec *h = H(e);
    if (h->peak == 0) {
        const char *isa;
        int nt = rn_ctx_threads(h->ctx);
        h->peak = rn_fma_peak_gflops(nt, &isa);
        snprintf(h->peak_what, sizeof h->peak_what, "%s FMA, %d thread%s", isa, nt,
                 nt == 1 ? "" : "s");
    }
    *what = h->peak_what;
    return h->peak;
}

static const rn_exec_ops host_ops = {
    .close = host_close,
    .forward = host_forward,
    .evaluate = host_evaluate,
    .train_init = host_train_init,
    .train_set_order = host_train_set_order,
    .train_step = host_train_step,
    .train_step_batch = host_train_step_batch,
    .train_metrics = host_train_metrics,
    .sync_to_host = host_nothing,
    .sync_to_device = host_nothing,
    .grads_to_host = host_nothing,
    .profile = host_profile,
    .profile_print = host_profile_print,
    .peak_gflops = host_peak_gflops,
};

rn_status rn_exec_open_host(rn_exec **out, rn_model *m, const rn_exec_opts *o, int max_batch) {
    *out = NULL;
    /* The precision picks the kernels: fp32 any fp32 table (--backend), bf16 the cpu-bf16
     * table (bf16 convolutions and classifier, fp32 everything else). */
    const char *backend = o->backend && *o->backend ? o->backend : NULL;
    if (o->precision && *o->precision && strcmp(o->precision, "fp32") != 0) {
        rn_precision p;
        rn_status s = rn_precision_parse(o->precision, &p);
        if (s != RN_OK) return s;
        if (p != RN_PRECISION_BF16)
            return rn_fail(RN_ERR_BAD_ARG,
                           "precision %s: the CPU computes in fp32 or bf16 (tf32 is for GPUs)",
                           o->precision);
        if (backend && strcmp(backend, "cpu-bf16") != 0)
            return rn_fail(RN_ERR_BAD_ARG,
                           "precision bf16 runs the cpu-bf16 kernels, not backend %.40s",
                           backend);
        backend = "cpu-bf16";
    }
    rn_exec *e;
    rn_status s = rn_exec_alloc(&e, sizeof(host_exec), &host_ops, m, max_batch);
    if (s != RN_OK) return s;
    host_exec *h = H(e);
    s = rn_ctx_create(&h->ctx, backend, o->threads);
    if (s == RN_OK)
        s = o->inference_only ? rn_model_reserve_inference(m, h->ctx, max_batch)
                              : rn_model_reserve(m, h->ctx, max_batch);
    if (s != RN_OK) {
        rn_exec_close(e);
        return s;
    }
    const int nt = rn_ctx_threads(h->ctx);
    snprintf(e->describe, sizeof e->describe, "cpu (backend %s, %d thread%s)",
             rn_ctx_backend_name(h->ctx), nt, nt == 1 ? "" : "s");
    *out = e;
    return RN_OK;
}
