/*
 * wino.h — Winograd F(4x4, 3x3) for 3x3 stride-1 convolutions on channel-blocked buffers
 * (Lavin & Gray 2015): a 6x6 input patch d and a 3x3 filter g give a 4x4 output tile
 *     Y = A^T [ (G g G^T) . (B^T d B) ] A
 * so each 4x4 tile costs 36 multiply-adds per (input, output) channel pair instead of 144.
 * The 36 element-wise products summed over input channels are 36 independent GEMMs, run
 * with the direct convolution's output tiles (conv_tiles.h) as 1x1 convolutions.
 * The weight gradient uses the same transforms: dG = G^T [ sum over tiles of
 * (A dY A^T) . (B^T d B) ] G.
 */
#ifndef RN_WINO_H
#define RN_WINO_H

#include <stdbool.h>

#include "cpu.h"

/* Per-tile transforms on 16-lane channel vectors (pixels 16 floats apart, rows `row` floats
 * apart); the 36 transformed vectors of a tile are `xs` floats apart. */
typedef struct {
    /* V[xi] = (B^T d B)[xi] for the 6x6 patch at src. */
    void (*input)(float *V, long xs, const float *src, long row);
    /* The 4x4 tile A^T M A; its top-left nr x nc pixels are written to dst (+ bias when
     * bias != NULL). */
    void (*output)(float *dst, long row, const float *M, long xs, int nr, int nc,
                   const float *bias);
    /* D[xi] = (A y A^T)[xi] for the 4x4 tile of output gradients at src. */
    void (*grad)(float *D, long xs, const float *src, long row);
} rn_wino_ops;

const rn_wino_ops *rn_wino_ops_get(rn_isa isa);

/* u (6x6) = G g G^T for one 3x3 filter g. */
void rn_wino_filter(float u[36], const float g[9]);
/* g (3x3) += G^T du G: a transformed-domain filter gradient back to the 3x3 filter. */
void rn_wino_filter_grad(float g[9], const float du[36]);

/* ---- drivers (conv_wino.c); the contracts of rn_cpu_conv2d_forward / _backward ----------- */
/* 3x3 kernel, stride 1, padding 0..2. */
bool rn_wino_applicable(const rn_conv_desc *d);
size_t rn_wino_scratch_floats(const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg);
void rn_wino_forward(float *out, const float *in, const float *w, const float *bias,
                     const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch);
/* din and dw (either may be NULL) +=; no bias gradient. */
void rn_wino_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                      const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch);

#endif
