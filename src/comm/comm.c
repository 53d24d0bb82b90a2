/*
 * comm.c — the communicator's public functions (rn_comm_*, see resnet.h), which forward to a
 * transport's table, and the transport of one process alone: its collectives leave the data
 * as it is. A build without MPI that a launcher started as one of several processes refuses
 * to run, since each copy would train alone into the same run directory.
 */
#include "comm/comm.h"

#include <stdlib.h>
#include <string.h>

static rn_status single_sum(rn_comm *c, void *buf, size_t n, rn_comm_type t) { return RN_OK; }
static rn_status single_start_sum(rn_comm *c, void *buf, size_t n, rn_comm_type t,
                                  rn_comm_req *req) {
    return RN_OK;
}
static bool single_test(rn_comm *c, rn_comm_req *req) { return true; }
static rn_status single_wait(rn_comm *c, rn_comm_req *req) { return RN_OK; }
static rn_status single_broadcast(rn_comm *c, void *buf, size_t bytes, int root) {
    return RN_OK;
}
static rn_status single_barrier(rn_comm *c) { return RN_OK; }
static void single_abort(rn_comm *c, int code) {}
static void single_close(rn_comm *c) {}

static const rn_comm_ops single_ops = {
    .name = "single",
    .allreduce_sum = single_sum,
    .start_sum = single_start_sum,
    .test = single_test,
    .wait = single_wait,
    .broadcast = single_broadcast,
    .barrier = single_barrier,
    .abort = single_abort,
    .close = single_close,
};

/* The number of processes a launcher (Open MPI's mpirun, MPICH's hydra, slurm's srun) says it
 * started, and which variable says so; 1 when none does. */
static long launched_processes(const char **var) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                       "SLURM_STEP_NUM_TASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        long n = v ? strtol(v, NULL, 10) : 0;
        if (n > 1) {
            *var = vars[i];
            return n;
        }
    }
    return 1;
}

rn_status rn_comm_open(rn_comm **out) {
    *out = NULL;
    rn_comm *c = calloc(1, sizeof *c);
    if (!c) return rn_fail(RN_ERR_NOMEM, "cannot allocate a communicator");
    rn_status s = rn_comm_open_mpi(c);
    if (s == RN_ERR_DEVICE) { /* no MPI in this build */
        const char *var = "";
        long n = launched_processes(&var);
        if (n > 1) {
            free(c);
            return rn_fail(RN_ERR_DEVICE,
                           "started as one of %ld processes (%s), but this build has no MPI: "
                           "rebuild with make MPI=1, or run a single process",
                           n, var);
        }
        *c = (rn_comm){.ops = &single_ops, .rank = 0, .size = 1, .local_size = 1};
        s = RN_OK;
    }
    if (s != RN_OK) {
        free(c);
        return s;
    }
    *out = c;
    return RN_OK;
}

void rn_comm_close(rn_comm *c) {
    if (!c) return;
    c->ops->close(c);
    free(c);
}

void rn_comm_abort(rn_comm *c, int code) {
    if (c) c->ops->abort(c, code);
}

int rn_comm_rank(const rn_comm *c) { return c ? c->rank : 0; }
int rn_comm_size(const rn_comm *c) { return c ? c->size : 1; }
int rn_comm_local_size(const rn_comm *c) { return c ? c->local_size : 1; }
const char *rn_comm_name(const rn_comm *c) { return c ? c->ops->name : single_ops.name; }

rn_status rn_comm_sum_f32(rn_comm *c, float *buf, size_t n) {
    return c && c->size > 1 ? c->ops->allreduce_sum(c, buf, n, RN_COMM_F32) : RN_OK;
}
rn_status rn_comm_sum_f64(rn_comm *c, double *buf, size_t n) {
    return c && c->size > 1 ? c->ops->allreduce_sum(c, buf, n, RN_COMM_F64) : RN_OK;
}
rn_status rn_comm_sum_f64_hook(void *comm, double *buf, size_t n) {
    return rn_comm_sum_f64(comm, buf, n);
}
rn_status rn_comm_sum_i64(rn_comm *c, int64_t *buf, size_t n) {
    return c && c->size > 1 ? c->ops->allreduce_sum(c, buf, n, RN_COMM_I64) : RN_OK;
}
rn_status rn_comm_broadcast(rn_comm *c, void *buf, size_t bytes, int root) {
    return c && c->size > 1 ? c->ops->broadcast(c, buf, bytes, root) : RN_OK;
}
rn_status rn_comm_barrier(rn_comm *c) {
    return c && c->size > 1 ? c->ops->barrier(c) : RN_OK;
}
