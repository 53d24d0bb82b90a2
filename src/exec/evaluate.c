/*
 * evaluate.c — accuracy (top-1, top-5), mean loss and the confusion matrix of a model on a
 * data set, in eval mode.
 */
#include "exec/step.h"
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rn_status rn_check_data_fits(const rn_model *m, const rn_dataset *d) {
    if (d->c != m->opts.in_channels || d->h != m->opts.in_height || d->w != m->opts.in_width)
        return rn_fail(RN_ERR_SHAPE, "data set images are %dx%dx%d, model %s expects %dx%dx%d",
                       d->c, d->h, d->w, m->name, m->opts.in_channels, m->opts.in_height,
                       m->opts.in_width);
    if (d->num_classes > m->opts.num_classes)
        return rn_fail(RN_ERR_SHAPE, "data set has %d classes, model %s only %d",
                       d->num_classes, m->name, m->opts.num_classes);
    return RN_OK;
}

rn_status rn_evaluate(rn_model *m, rn_ctx *ctx, const rn_dataset *d, const rn_norm *norm,
                      int batch, rn_eval_result *r) {
    return rn_evaluate_progress(m, ctx, d, norm, batch, NULL, NULL, r);
}

rn_status rn_evaluate_progress(rn_model *m, rn_ctx *ctx, const rn_dataset *d,
                               const rn_norm *norm, int batch, rn_data_progress progress,
                               void *user, rn_eval_result *r) {
    memset(r, 0, sizeof *r);
    const int K = m->opts.num_classes;
    rn_status s0 = rn_check_data_fits(m, d);
    if (s0 != RN_OK) return s0;
    if (batch > d->n) batch = d->n > 0 ? d->n : 1;
    rn_status s = rn_model_reserve_keep(m, ctx, RN_MAX(batch, m->max_batch));
    if (s != RN_OK) return s;
    size_t per = (size_t)d->c * d->h * d->w;
    float *x = rn_alloc((size_t)batch * per * sizeof(float));
    float *probs = rn_alloc((size_t)batch * K * sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int)), *idx = malloc((size_t)batch * sizeof(int));
    r->confusion = calloc((size_t)K * K, sizeof(int64_t));
    if (!x || !probs || !labels || !idx || !r->confusion) {
        s = rn_fail(RN_ERR_NOMEM, "cannot allocate evaluation buffers");
        goto done;
    }
    r->n = d->n;
    r->num_classes = K;
    rn_eval_sums sums = {0};
    for (int start = 0; start < d->n; start += batch) {
        int n = RN_MIN(batch, d->n - start);
        for (int i = 0; i < n; i++) idx[i] = start + i;
        rn_batch_fill(x, labels, d, idx, n, norm, false, 0, 0, ctx->nthreads);
        const float *logits;
        if ((s = rn_model_forward(m, ctx, x, n, RN_MODE_INFER, &logits)) != RN_OK) goto done;
        rn_eval_add(r, &sums, probs, logits, labels, n);
        if (progress) progress(start + n, d->n, user);
    }
    s = rn_eval_finish(r, &sums);
done:
    rn_free(x);
    rn_free(probs);
    free(labels);
    free(idx);
    if (s != RN_OK) rn_eval_result_free(r);
    return s;
}

void rn_eval_add(rn_eval_result *r, rn_eval_sums *sums, float *probs, const float *logits,
                 const int *labels, int n) {
    const int K = r->num_classes;
    sums->loss += (double)rn_softmax_xent_forward(probs, logits, labels, n, K, 0.0f) * n;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * K;
        int y = labels[i], pred = -1, rank = isnan(p[y]) ? K : 0;
        /* The first maximum, NaN skipped; a row of NaN (from non-finite logits) has none,
         * counts as wrong and stays out of the confusion matrix (the loss is then not
         * finite and the evaluation fails, as on the GPU). */
        for (int k = 0; k < K; k++)
            if (!isnan(p[k]) && (pred < 0 || p[k] > p[pred])) pred = k;
        /* The true class's rank: classes strictly more likely, ties to the lower index. */
        for (int k = 0; k < K && rank < K; k++)
            if (p[k] > p[y] || (p[k] == p[y] && k < y)) rank++;
        sums->top1 += pred == y;
        sums->top5 += rank < 5;
        if (pred >= 0) r->confusion[(size_t)y * K + pred]++;
    }
}

rn_status rn_eval_finish(rn_eval_result *r, const rn_eval_sums *sums) {
    r->top1 = r->n ? (double)sums->top1 / r->n : 0;
    r->top5 = r->n ? (double)sums->top5 / r->n : 0;
    r->loss = r->n ? sums->loss / r->n : 0;
    if (!isfinite(r->loss)) return rn_fail(RN_ERR_NUMERIC, "evaluation loss is not finite");
    return RN_OK;
}

void rn_eval_result_free(rn_eval_result *r) {
    free(r->confusion);
    memset(r, 0, sizeof *r);
}
