/*
 * cpu.h — the fast CPU backend's convolution kernels and their instruction-set dispatch.
 *
 * Tensors at this interface are the library's NCHW, weights PyTorch's (K,C,R,S). Inside, the
 * convolutions work on channel blocks of RN_CB = 16 (one pixel's 16 channels fill one AVX-512
 * register): each image is copied into a zero-padded (CB,Hp,Wp,16) buffer, in cache, and its
 * results copied back; weights are repacked into scratch.
 *
 * ISA levels. Every kernel has an AVX-512 path, an AVX2+FMA path and a portable C path; the
 * level is chosen at run time (rn_cpu_isa_detect, overridable by RN_ISA=avx512|avx2|portable)
 * or forced by the caller. x86 paths are compiled only on x86-64, with per-function target
 * attributes, so one binary runs on any x86-64 machine.
 *
 * Threads: OpenMP with static partitioning; for a fixed thread count every result is
 * bit-for-bit the same from run to run. No kernel allocates: scratch comes from the caller,
 * sized by the matching *_scratch_floats query.
 */
#ifndef RN_CPU_H
#define RN_CPU_H

#include <stdbool.h>
#include <stddef.h>

#include "core/isa.h"
#include "ops/backend.h"
#include "ops/ops.h"

/* The fast CPU backends (backend_cpu.c): direct convolutions only ("cpu"), and with Winograd
 * convolutions where they are faster ("cpu-winograd"). */
extern const rn_backend rn_backend_cpu;
extern const rn_backend rn_backend_cpu_winograd;

/* Max pooling (pool.c): rn_maxpool_forward / _backward's results, planes over threads. */
void rn_cpu_maxpool_forward(float *out, const float *in, const rn_pool_desc *d, int nthreads);
void rn_cpu_maxpool_backward(float *din, const float *dout, const float *in,
                             const rn_pool_desc *d, int nthreads);

#define RN_CB 16 /* channels per block inside the kernels */
static inline int rn_cblocks(int c) { return (c + RN_CB - 1) / RN_CB; }

/* ---- convolution ------------------------------------------------------------------------ */
typedef enum {
    RN_CONV_AUTO = 0,     /* Winograd where it is faster, else direct */
    RN_CONV_DIRECT = 1,   /* register-tiled direct convolution (any shape) */
    RN_CONV_WINOGRAD = 2, /* F(4x4,3x3) for 3x3 stride-1 pad<=2 (others fall back to direct) */
} rn_conv_algo;

/* What the kernels may use. */
typedef struct {
    rn_isa isa;        /* instruction-set level to run (lowered to what the CPU has) */
    int nthreads;      /* OpenMP threads */
    rn_conv_algo algo;
    bool relu;         /* forward: out = max(conv + bias, 0) (a BN folded in, then its ReLU) */
    /* tuning knobs for experiments, 0 = automatic: */
    int tile_p;        /* direct: output tile width in pixels */
    int tile_kb;       /* output channel blocks per tile */
    int chunk;         /* Winograd: 4x4 tiles transformed per chunk */
} rn_cpu_conv_cfg;

/* Scratch floats rn_cpu_conv2d_forward / _backward need for this shape and configuration
 * (the larger of the two, so one buffer serves both). */
size_t rn_cpu_conv2d_scratch_floats(const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg);

/* out (N,K,Ho,Wo) = in (N,C,H,W) conv w (K,C,R,S) + bias (K); bias may be NULL. Writes out.
 * Any R, S, stride, pad. */
void rn_cpu_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                           const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch);

/* din (N,C,H,W) += dL/din, dw (K,C,R,S) += dL/dw, dbias (K) += dL/dbias, from
 * dout (N,K,Ho,Wo) and the forward input in (N,C,H,W). Any of din, dw, dbias may be NULL. */
void rn_cpu_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, const rn_conv_desc *d,
                            const rn_cpu_conv_cfg *cfg, float *scratch);

#endif
