/*
 * comm_mpi.c — the MPI transport of the communicator (builds made with `make MPI=1`, which
 * define RN_MPI and compile with mpicc): MPI_COMM_WORLD, its collectives, and the number of
 * processes on this host (MPI_COMM_TYPE_SHARED). Started sums are MPI_Iallreduce; Open MPI
 * moves them forward only inside MPI calls, which is what test is for. MPI's default error
 * handler ends the job on a failed call, so the collectives here return RN_OK or do not
 * return.
 */
#include "comm/comm.h"

#ifdef RN_MPI

#include <limits.h>
#include <mpi.h>
#include <string.h>

/* MPI counts are int: large buffers go in pieces of at most this many elements. */
#define CHUNK ((size_t)1 << 30)

static MPI_Datatype mpi_type(rn_comm_type t) {
    return t == RN_COMM_F32 ? MPI_FLOAT : t == RN_COMM_F64 ? MPI_DOUBLE : MPI_INT64_T;
}

static rn_status mpi_sum(rn_comm *c, void *buf, size_t n, rn_comm_type t) {
    MPI_Datatype dt = mpi_type(t);
    size_t elem = t == RN_COMM_F32 ? 4 : 8;
    for (size_t at = 0; at < n; at += CHUNK) {
        size_t k = RN_MIN(CHUNK, n - at);
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * elem, (int)k, dt, MPI_SUM,
                      MPI_COMM_WORLD);
    }
    return RN_OK;
}

_Static_assert(sizeof(MPI_Request) <= sizeof(rn_comm_req), "rn_comm_req holds an MPI_Request");

static rn_status mpi_start_sum(rn_comm *c, void *buf, size_t n, rn_comm_type t,
                               rn_comm_req *req) {
    if (n > INT_MAX) return rn_fail(RN_ERR_BAD_ARG, "a started sum of %zu elements", n);
    MPI_Request r;
    MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, mpi_type(t), MPI_SUM, MPI_COMM_WORLD, &r);
    memcpy(req->handle, &r, sizeof r);
    return RN_OK;
}

static bool mpi_test(rn_comm *c, rn_comm_req *req) {
    MPI_Request r;
    int done;
    memcpy(&r, req->handle, sizeof r);
    MPI_Test(&r, &done, MPI_STATUS_IGNORE); /* MPI_REQUEST_NULL once done: a later wait is free */
    memcpy(req->handle, &r, sizeof r);
    return done;
}

static rn_status mpi_wait(rn_comm *c, rn_comm_req *req) {
    MPI_Request r;
    memcpy(&r, req->handle, sizeof r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
    memcpy(req->handle, &r, sizeof r);
    return RN_OK;
}

static rn_status mpi_broadcast(rn_comm *c, void *buf, size_t bytes, int root) {
    for (size_t at = 0; at < bytes; at += CHUNK)
        MPI_Bcast((char *)buf + at, (int)RN_MIN(CHUNK, bytes - at), MPI_BYTE, root,
                  MPI_COMM_WORLD);
    return RN_OK;
}

static rn_status mpi_barrier(rn_comm *c) {
    MPI_Barrier(MPI_COMM_WORLD);
    return RN_OK;
}

static void mpi_abort(rn_comm *c, int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static void mpi_close(rn_comm *c) {
    int done;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

static const rn_comm_ops mpi_ops = {
    .name = "mpi",
    .allreduce_sum = mpi_sum,
    .start_sum = mpi_start_sum,
    .test = mpi_test,
    .wait = mpi_wait,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
    .close = mpi_close,
};

rn_status rn_comm_open_mpi(rn_comm *c) {
    int inited;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
        return rn_fail(RN_ERR_IO, "MPI_Init failed");
    c->ops = &mpi_ops;
    MPI_Comm_rank(MPI_COMM_WORLD, &c->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &c->size);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &c->local_size);
    MPI_Comm_free(&local);
    return RN_OK;
}

#else

rn_status rn_comm_open_mpi(rn_comm *c) {
    return rn_fail(RN_ERR_DEVICE, "this build has no MPI (make MPI=1)");
}

#endif
