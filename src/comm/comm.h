/*
 * comm.h — the inside of a communicator (the public side is rn_comm_* in resnet.h): the table
 * of collective operations each transport implements. Two exist: one process alone (comm.c)
 * and MPI (comm_mpi.c, built with `make MPI=1`). A transport for GPU memory (NCCL) would be a
 * third table: nothing above this file asks which one runs.
 *
 * Every collective is called by every process of the communicator in the same order; buffers
 * are in host memory.
 */
#ifndef RN_COMM_H
#define RN_COMM_H

#include "core/internal.h"

typedef enum { RN_COMM_F32, RN_COMM_F64, RN_COMM_I64 } rn_comm_type;

/* A sum in flight (rn_comm_ops.start_sum): room for the transport's own handle. */
typedef struct {
    _Alignas(8) unsigned char handle[16];
} rn_comm_req;

typedef struct {
    const char *name;
    /* Sum of buf (n elements of type t) over the processes, into buf on every process, in an
     * order that depends only on the number of processes (so a run is deterministic). */
    rn_status (*allreduce_sum)(rn_comm *c, void *buf, size_t n, rn_comm_type t);
    /* allreduce_sum started without waiting (n < 2^31): buf is neither read nor written by the
     * caller until wait returns. Several may be in flight; each process starts them in the
     * same order. */
    rn_status (*start_sum)(rn_comm *c, void *buf, size_t n, rn_comm_type t, rn_comm_req *req);
    /* Whether a started sum has finished (it then needs no wait); lets the transport make
     * progress on it without blocking. */
    bool (*test)(rn_comm *c, rn_comm_req *req);
    /* Until a started sum has finished. */
    rn_status (*wait)(rn_comm *c, rn_comm_req *req);
    /* root's bytes into buf on every process. */
    rn_status (*broadcast)(rn_comm *c, void *buf, size_t bytes, int root);
    rn_status (*barrier)(rn_comm *c);
    void (*abort)(rn_comm *c, int code);
    void (*close)(rn_comm *c);
} rn_comm_ops;

struct rn_comm {
    const rn_comm_ops *ops;
    int rank, size;
    int local_size; /* processes on this host */
    void *impl;     /* the transport's own state */
};

/* The MPI transport (comm_mpi.c): RN_ERR_DEVICE ("this build has no MPI") in builds without
 * it. */
rn_status rn_comm_open_mpi(rn_comm *c);

#endif
