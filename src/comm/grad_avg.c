/*
 * grad_avg.c — the gradient average of data-parallel training, in buckets that overlap the
 * backward pass.
 *
 * The gradient block is cut, from its end, into buckets of a fixed size: the backward pass
 * finishes the parameters of the last layers first, and those lie at the block's end. The
 * executor's gradients-ready hook starts each bucket's sum (rn_comm_ops.start_sum, MPI's
 * Iallreduce) as soon as the pass has made all of it final, and pokes the sums in flight so
 * the transport moves them while the pass goes on; the gradient hook starts what is left,
 * waits for every bucket and scales the block by 1/N. The buckets and their order depend only
 * on the block's size, so they are the same every step and on every process.
 *
 * Each element is summed by one all-reduce either way, so for 2 processes (a + b, the same in
 * any order) the buckets give bit for bit the sums of one all-reduce of the whole block. For
 * more processes the order of the additions is the transport's choice and may depend on the
 * message size: a run stays deterministic for a fixed N and bucket size, but may differ in
 * the last bit from a run with other buckets.
 */
#include "comm/comm.h"

#include <stdlib.h>
#include <string.h>

#define DEFAULT_KB 1024
#define MAX_KB (1L << 20) /* 1 GB: a bucket's count stays below 2^31 floats */

struct rn_grad_avg {
    rn_comm *comm;
    long bucket_kb;        /* 0: the whole block, one blocking sum after the backward pass */
    size_t n;              /* floats of the block the buckets are cut for (0: none yet) */
    size_t bucket;         /* floats per bucket */
    int n_buckets;         /* bucket k is [lo(k), hi(k)); k = 0 at the block's end */
    rn_comm_req *req;      /* (n_buckets) */
    int started, finished; /* this step: buckets started, and of those the first ones done */
};

static size_t bucket_hi(const rn_grad_avg *g, int k) {
    return g->n - RN_MIN(g->n, (size_t)k * g->bucket);
}
static size_t bucket_lo(const rn_grad_avg *g, int k) { return bucket_hi(g, k + 1); }

/* Cuts a block of n floats into buckets (once: the block keeps its size). */
static rn_status cut(rn_grad_avg *g, size_t n) {
    if (n == g->n) return RN_OK;
    if (g->started > 0)
        return rn_fail(RN_ERR_BAD_ARG, "the gradient block changed size during a step");
    g->n = n;
    g->bucket = (size_t)g->bucket_kb * 1024 / sizeof(float);
    g->n_buckets = (int)((n + g->bucket - 1) / g->bucket);
    free(g->req);
    g->req = calloc((size_t)RN_MAX(g->n_buckets, 1), sizeof *g->req);
    if (!g->req) {
        g->n = 0;
        return rn_fail(RN_ERR_NOMEM, "cannot allocate %d bucket requests", g->n_buckets);
    }
    return RN_OK;
}

/* Starts the sums of the buckets that lie wholly in grads[from, n), in order. */
static rn_status start_up_to(rn_grad_avg *g, float *grads, size_t from) {
    while (g->started < g->n_buckets && bucket_lo(g, g->started) >= from) {
        const int k = g->started;
        rn_status s = g->comm->ops->start_sum(g->comm, grads + bucket_lo(g, k),
                                              bucket_hi(g, k) - bucket_lo(g, k), RN_COMM_F32,
                                              &g->req[k]);
        if (s != RN_OK) return s;
        g->started++;
    }
    return RN_OK;
}

/* The gradients-ready hook: starts the buckets now final, and lets those in flight move. */
static rn_status ready(void *user, float *grads, size_t n, size_t from, bool on_device) {
    rn_grad_avg *g = user;
    if (on_device) return RN_OK; /* the gradient hook refuses it */
    rn_status s = cut(g, n);
    if (s == RN_OK) s = start_up_to(g, grads, from);
    while (s == RN_OK && g->finished < g->started &&
           g->comm->ops->test(g->comm, &g->req[g->finished]))
        g->finished++;
    return s;
}

/* The gradient hook: every bucket summed, then the block scaled to the mean. */
static rn_status average(void *user, float *grads, size_t n, bool on_device) {
    rn_grad_avg *g = user;
    if (on_device)
        return rn_fail(RN_ERR_DEVICE, "gradients in device memory cannot be averaged across "
                                      "processes yet");
    rn_status s;
    if (g->bucket_kb == 0) {
        s = rn_comm_sum_f32(g->comm, grads, n);
    } else {
        s = cut(g, n);
        if (s == RN_OK) s = start_up_to(g, grads, 0);
        for (; s == RN_OK && g->finished < g->started; g->finished++)
            s = g->comm->ops->wait(g->comm, &g->req[g->finished]);
        g->started = g->finished = 0;
    }
    if (s != RN_OK) return s;
    const float inv = 1.0f / (float)rn_comm_size(g->comm);
    for (size_t i = 0; i < n; i++) grads[i] *= inv;
    return RN_OK;
}

rn_status rn_grad_avg_open(rn_grad_avg **out, rn_comm *c, rn_exec *e, long bucket_kb) {
    *out = NULL;
    if (rn_comm_size(c) == 1) return RN_OK;
    if (bucket_kb < 0) {
        const char *v = getenv("RN_BUCKET_KB");
        char *end = NULL;
        bucket_kb = v && *v ? strtol(v, &end, 10) : DEFAULT_KB;
        if (v && *v && (*end || bucket_kb < 0 || bucket_kb > MAX_KB))
            return rn_fail(RN_ERR_BAD_ARG, "RN_BUCKET_KB=%.20s: expected 0 to %ld (kilobytes "
                                           "per gradient bucket; 0: one whole-block sum)",
                           v, MAX_KB);
    }
    if (bucket_kb > MAX_KB)
        return rn_fail(RN_ERR_BAD_ARG, "gradient buckets of %ld KB (at most %ld)", bucket_kb,
                       MAX_KB);
    rn_grad_avg *g = calloc(1, sizeof *g);
    if (!g) return rn_fail(RN_ERR_NOMEM, "cannot allocate the gradient average");
    *g = (rn_grad_avg){.comm = c, .bucket_kb = bucket_kb};
    rn_exec_set_grad_hook(e, average, g);
    rn_exec_set_grads_ready_hook(e, bucket_kb > 0 ? ready : NULL, g);
    *out = g;
    return RN_OK;
}

void rn_grad_avg_close(rn_grad_avg *g) {
    if (!g) return;
    free(g->req);
    free(g);
}
