/*
 * cpu.h — the fast CPU backend's kernels: instruction-set dispatch, the channel-blocked
 * activation layout and the convolution kernels built on it.
 *
 * Layouts. A tensor of N images, C channels, HxW pixels is held either as
 *   RN_LAYOUT_NCHW     x[((n*C + c)*H + h)*W + w]                    (the library's layout)
 *   RN_LAYOUT_NCHW16C  x[(((n*CB + cb)*H + h)*W + w)*16 + c%16]      cb = c/16, CB = ceil(C/16)
 * In NCHW16c one pixel's 16 channels fill one AVX-512 register; channels past C in the last
 * block are zero (kernels read them as zeros and write zeros there). Weights are always in
 * PyTorch's (K,C,R,S) layout at this interface; kernels repack them into scratch.
 *
 * Convolution kernels take the layout of their activation tensors as an argument, so the same
 * kernels serve a model that keeps NCHW tensors (conversion happens per image, inside the
 * kernel, in cache) and one that keeps NCHW16c tensors (no conversion at all).
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

/* ---- layouts ---------------------------------------------------------------------------- */
typedef enum {
    RN_LAYOUT_NCHW = 0,
    RN_LAYOUT_NCHW16C = 1,
} rn_layout;

#define RN_CB 16 /* channels per block */
static inline int rn_cblocks(int c) { return (c + RN_CB - 1) / RN_CB; }

/* Floats of an (N,C,H,W) tensor held in `layout` (NCHW16c pads C up to a multiple of 16). */
size_t rn_cpu_tensor_floats(rn_layout layout, int N, int C, int H, int W);
/* dst (N,CB,H,W,16) = src (N,C,H,W); padded channels set to zero. */
void rn_cpu_nchw_to_blocked(float *dst, const float *src, int N, int C, int H, int W,
                            int nthreads);
/* dst (N,C,H,W) = src (N,CB,H,W,16). */
void rn_cpu_blocked_to_nchw(float *dst, const float *src, int N, int C, int H, int W,
                            int nthreads);

/* ---- convolution ------------------------------------------------------------------------ */
typedef enum {
    RN_CONV_AUTO = 0,     /* Winograd where it is faster, else direct */
    RN_CONV_DIRECT = 1,   /* register-tiled direct convolution (any shape) */
    RN_CONV_WINOGRAD = 2, /* F(4x4,3x3) for 3x3 stride-1 pad<=2 (others fall back to direct) */
} rn_conv_algo;

/* Which tensors are in which layout, and what the kernels may use. */
typedef struct {
    rn_layout act;     /* layout of in/out (forward) and din/dout (backward) */
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
 * in/out in cfg->act layout; w (K,C,R,S) always. Any R, S, stride, pad. */
void rn_cpu_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                           const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch);

/* din (N,C,H,W) += dL/din, dw (K,C,R,S) += dL/dw, dbias (K) += dL/dbias, from
 * dout (N,K,Ho,Wo) and the forward input in (N,C,H,W). Any of din, dw, dbias may be NULL.
 * din/dout/in in cfg->act layout. */
void rn_cpu_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, const rn_conv_desc *d,
                            const rn_cpu_conv_cfg *cfg, float *scratch);

#endif
