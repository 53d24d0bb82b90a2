/*
 * collective.c — what the executors' users do across processes: evaluation split over them
 * (each evaluates its share of the set, the counts are added up) and the agreement on a
 * status. The gradient average is grad_avg.c.
 */
#include "comm/comm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

rn_status rn_exec_evaluate_comm(rn_exec *e, rn_comm *comm, const rn_dataset *d,
                                const rn_norm *norm, rn_eval_result *r) {
    const int rank = rn_comm_rank(comm), nproc = rn_comm_size(comm);
    if (nproc == 1) return rn_exec_evaluate(e, d, norm, r);
    memset(r, 0, sizeof *r);
    const int lo = (int)((int64_t)d->n * rank / nproc);
    const int hi = (int)((int64_t)d->n * (rank + 1) / nproc);
    const size_t per = (size_t)d->c * d->h * d->w;
    rn_dataset share = *d; /* a view: its arrays belong to d */
    share.n = hi - lo;
    share.images = d->images + (size_t)lo * per;
    share.labels = d->labels + lo;
    rn_eval_result mine;
    rn_status s = rn_exec_evaluate(e, &share, norm, &mine);
    if (s != RN_OK) return s;
    const int K = mine.num_classes;
    const size_t kk = (size_t)K * K;
    /* The confusion matrix, then the top-5 count. */
    int64_t *counts = calloc(kk + 1, sizeof(int64_t));
    if (!counts) {
        rn_eval_result_free(&mine);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate the evaluation counts");
    }
    memcpy(counts, mine.confusion, kk * sizeof(int64_t));
    counts[kk] = llround(mine.top5 * mine.n);
    double loss = mine.loss * mine.n;
    s = rn_comm_sum_i64(comm, counts, kk + 1);
    if (s == RN_OK) s = rn_comm_sum_f64(comm, &loss, 1);
    if (s != RN_OK) {
        rn_eval_result_free(&mine);
        free(counts);
        return s;
    }
    *r = mine;
    int64_t top1 = 0;
    for (int k = 0; k < K; k++) top1 += counts[(size_t)k * K + k];
    memcpy(r->confusion, counts, kk * sizeof(int64_t));
    r->n = d->n;
    r->top1 = d->n ? (double)top1 / d->n : 0;
    r->top5 = d->n ? (double)counts[kk] / d->n : 0;
    r->loss = d->n ? loss / d->n : 0;
    free(counts);
    if (!isfinite(r->loss)) {
        rn_eval_result_free(r);
        return rn_fail(RN_ERR_NUMERIC, "evaluation loss is not finite");
    }
    return RN_OK;
}

rn_status rn_comm_agree(rn_comm *comm, rn_status s) {
    const int rank = rn_comm_rank(comm), nproc = rn_comm_size(comm);
    if (nproc == 1) return s;
    int64_t *failed = calloc((size_t)nproc, sizeof(int64_t));
    if (!failed) return rn_fail(RN_ERR_NOMEM, "cannot allocate %d flags", nproc);
    failed[rank] = s;
    rn_status s2 = rn_comm_sum_i64(comm, failed, (size_t)nproc);
    int first = -1;
    for (int r = 0; s2 == RN_OK && r < nproc && first < 0; r++)
        if (failed[r] != RN_OK) first = r;
    rn_status agreed = first < 0 ? RN_OK : (rn_status)failed[first];
    free(failed);
    if (s2 != RN_OK) return s2;
    if (first < 0) return RN_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", rank == first ? rn_error_message() : "");
    if ((s2 = rn_comm_broadcast(comm, msg, sizeof msg, first)) != RN_OK) return s2;
    return rn_fail(agreed, "%s", msg);
}
