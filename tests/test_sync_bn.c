/*
 * test_sync_bn.c — synchronized BatchNorm (rn_bn_sync) on one process: a batch split in two
 * halves, each run by its own thread as if by its own process, with a sum that adds the two
 * threads' buffers, gives the whole batch's BN (forward: output, saved and running statistics;
 * backward: input gradient; dgamma and dbeta add up to the whole's); and with a sum over one
 * process (which leaves the sums as they are) the synchronized kernels are the plain ones bit
 * for bit.
 */
#include "testutil.h"
#include "ops/ops.h"

#include <pthread.h>
#include <string.h>

enum { N = 6, C = 5, HW = 9, HALF = N / 2 };

/* Two threads standing in for two processes: each sum adds both buffers in a fixed order. */
typedef struct {
    pthread_barrier_t barrier;
    double *bufs[2];
    size_t n[2];
} pair;

typedef struct {
    pair *p;
    int rank;
} member;

static rn_status pair_sum(void *user, double *buf, size_t n) {
    member *me = user;
    pair *p = me->p;
    p->bufs[me->rank] = buf;
    p->n[me->rank] = n;
    pthread_barrier_wait(&p->barrier);
    double sum[2 * C + 1];
    const bool same = p->n[0] == p->n[1] && n <= 2 * C + 1;
    for (size_t i = 0; same && i < n; i++) sum[i] = p->bufs[0][i] + p->bufs[1][i];
    pthread_barrier_wait(&p->barrier); /* both have read both */
    if (!same) return RN_ERR_BAD_ARG; /* (cmocka's asserts belong to the main thread) */
    memcpy(buf, sum, n * sizeof(double));
    return RN_OK;
}

/* One BN layer's tensors for a batch of n images. */
typedef struct {
    float in[N * C * HW], dout[N * C * HW]; /* (n, C, HW) */
    float out[N * C * HW], din[N * C * HW]; /* (n, C, HW) */
    float mean[C], invstd[C], rmean[C], rvar[C], dgamma[C], dbeta[C];
} layer;

static float gamma_[C], beta_[C];

/* BN + ReLU forward (training mode) then backward on images [first, first + n) of src. */
static void run(layer *l, const layer *src, int first, int n, rn_bn_sync *sync) {
    const size_t off = (size_t)first * C * HW, len = (size_t)n * C * HW;
    memcpy(l->in, src->in + off, len * sizeof(float));
    memcpy(l->dout, src->dout + off, len * sizeof(float));
    for (int c = 0; c < C; c++) {
        l->rmean[c] = 0.1f * c;
        l->rvar[c] = 1.0f + 0.2f * c;
        l->dgamma[c] = l->dbeta[c] = 0;
    }
    rn_bn_desc d = {.N = n, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f, .sync = sync};
    rn_batchnorm_relu_forward_train(l->out, l->mean, l->invstd, l->rmean, l->rvar, l->in, gamma_,
                                    beta_, &d, 1);
    rn_batchnorm_relu_backward(l->din, l->dgamma, l->dbeta, l->dout, l->out, l->in, l->mean,
                               l->invstd, gamma_, &d, true, false, 1);
}

typedef struct {
    member me;
    rn_bn_sync sync;
    layer *l;
    const layer *src;
} job;

static void *run_half(void *arg) {
    job *j = arg;
    run(j->l, j->src, j->me.rank * HALF, HALF, &j->sync);
    return NULL;
}

static void make_inputs(layer *src) {
    tu_fill_uniform(src->in, N * C * HW, 11, -2.0f, 3.0f);
    tu_fill_uniform(src->dout, N * C * HW, 12, -1.0f, 1.0f);
    tu_fill_uniform(gamma_, C, 13, 0.5f, 1.5f);
    tu_fill_uniform(beta_, C, 14, -0.5f, 0.5f);
}

static void test_two_halves_equal_whole(void **state) {
    static layer src, whole, half[2];
    make_inputs(&src);
    run(&whole, &src, 0, N, NULL);
    pair p;
    pthread_barrier_init(&p.barrier, NULL, 2);
    double bufs[2][2 * C + 1];
    job jobs[2];
    pthread_t th[2];
    for (int r = 0; r < 2; r++) {
        jobs[r] = (job){.me = {&p, r}, .l = &half[r], .src = &src};
        jobs[r].sync = (rn_bn_sync){.sum = pair_sum, .user = &jobs[r].me, .buf = bufs[r]};
        assert_int_equal(pthread_create(&th[r], NULL, run_half, &jobs[r]), 0);
    }
    for (int r = 0; r < 2; r++) pthread_join(th[r], NULL);
    pthread_barrier_destroy(&p.barrier);
    const size_t len = (size_t)HALF * C * HW;
    for (int r = 0; r < 2; r++) {
        assert_int_equal(jobs[r].sync.status, RN_OK);
        assert_true(tu_max_abs_diff(half[r].out, whole.out + r * len, len) <= 1e-5);
        assert_true(tu_max_abs_diff(half[r].din, whole.din + r * len, len) <= 1e-5);
        assert_true(tu_max_rel_diff(half[r].mean, whole.mean, C) <= 1e-5);
        assert_true(tu_max_rel_diff(half[r].invstd, whole.invstd, C) <= 1e-5);
        assert_true(tu_max_rel_diff(half[r].rmean, whole.rmean, C) <= 1e-5);
        assert_true(tu_max_rel_diff(half[r].rvar, whole.rvar, C) <= 1e-5);
    }
    /* the processes see the same statistics, to the bit */
    assert_memory_equal(half[0].mean, half[1].mean, sizeof half[0].mean);
    assert_memory_equal(half[0].rvar, half[1].rvar, sizeof half[0].rvar);
    for (int c = 0; c < C; c++) {
        assert_float_equal(half[0].dgamma[c] + half[1].dgamma[c], whole.dgamma[c], 1e-5);
        assert_float_equal(half[0].dbeta[c] + half[1].dbeta[c], whole.dbeta[c], 1e-5);
    }
}

/* One process: the sum leaves the buffer alone, and the synchronized kernels compute what the
 * plain ones do, bit for bit. */
static void test_one_process_is_plain(void **state) {
    static layer src, plain, synced;
    make_inputs(&src);
    run(&plain, &src, 0, N, NULL);
    double buf[2 * C + 1];
    rn_bn_sync sync = {.sum = rn_comm_sum_f64_hook, .user = NULL, .buf = buf};
    run(&synced, &src, 0, N, &sync);
    assert_int_equal(sync.status, RN_OK);
    assert_memory_equal(&plain, &synced, sizeof plain);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_halves_equal_whole),
        cmocka_unit_test(test_one_process_is_plain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
