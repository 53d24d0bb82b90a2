/*
 * conv_tiles.h — the register-tiled inner kernels ("tiles") of the blocked convolution, one
 * set per instruction-set level (conv_tiles_avx512.c, conv_tiles_avx2.c,
 * conv_tiles_portable.c). The drivers in conv.c cut a convolution into calls of these.
 *
 * Output tile (forward and backward-data): P output pixels of one row (or of RT rows, for
 * images only a few pixels wide) x KB blocks of 16 output channels, all held in registers
 * while every input channel block and every tap is summed in:
 *     out[p][kb][k] (+)= bias[kb][k]
 *                      + sum_{cb, t, c} in[cb][tap_in[t] + p*SI*16 + c] * w[kb][cb][tap_w[t] + c*16 + k]
 * Activations are NCHW16c (16 channels per pixel, contiguous); the input is a zero-padded
 * copy so no tap ever needs a bounds test. SI and SO are the input and output pixel strides
 * (stride-2 forward reads every second pixel; stride-2 backward-data writes every second one).
 * A call may run a batch of such tiles at fixed offsets (the 36 GEMMs of Winograd).
 *
 * Weight-gradient tile: T taps (consecutive s of one kernel row) x KC output channels, each a
 * 16-lane vector over the input channels of one block, summed over every output pixel of
 * a group of images:
 *     dw[t][kk][c] += sum_{n, ho, wo} dout[n][ho][wo][kk] * in[n][ho*si + r][wo*si + s0 + t][c]
 */
#ifndef RN_CONV_TILES_H
#define RN_CONV_TILES_H

#include <stdbool.h>

#include "cpu.h"

typedef struct {
    float *out;          /* tile's first output pixel, first channel block of the group */
    const float *in;     /* padded input at the tile's first pixel (before tap offsets), block 0 */
    const float *w;      /* packed weights of the group's first output block, input block 0 */
    const float *bias;   /* (KB*16) or NULL; used only when !accumulate */
    const int *tap_in;   /* [ntaps] float offsets into in */
    const int *tap_w;    /* [ntaps] float offsets into w (each a 16x16 block: [c][k]) */
    int ntaps;
    int ncb;             /* input channel blocks */
    int cn_last;         /* channels used in the last input block, 1..16 */
    long in_cb;          /* floats between input channel blocks */
    long w_cb;           /* floats between weight input-channel blocks */
    long w_kb;           /* floats between weight output-channel blocks */
    long out_kb;         /* floats between output channel blocks */
    bool accumulate;     /* out += tile (else out = tile) */
    long in_row, out_row;/* floats between the rows of a multi-row tile (RT > 1) */
    int nbatch;          /* independent tiles to run (<= 1: one), each offset by: */
    long in_bs, w_bs, out_bs; /* floats between consecutive batch members */
} rn_otile_args;
typedef void (*rn_otile_fn)(const rn_otile_args *a);

typedef struct {
    float *dw;           /* [T][KC][16] accumulated (+=), rows dw_tap floats apart */
    const float *in;     /* padded input block at (r, s0) of output pixel (0,0) */
    const float *dout;   /* dout block at pixel (0,0), offset to the first of the KC channels */
    long dout_row;       /* floats between dout rows (pixels within a row are 16 apart) */
    long dw_tap;         /* floats between taps in dw */
    long in_row;         /* floats per padded input row */
    int si;              /* stride */
    int Ho, Wo;
    int nimg;            /* images summed (<= 1: one), in and dout advanced per image by: */
    long in_img, dout_img;
} rn_wtile_args;
typedef void (*rn_wtile_fn)(const rn_wtile_args *a);

/* Weight-gradient tile for inputs of at most 3 channels (image inputs): vectors over 16
 * output channels, all taps x channels in registers (T*CC <= 27), summed over the pixels of
 * a group of images:
 *     dw[t][k][c] += sum_{n, ho, wo} dout[n][ho][wo][k] * in[n][ho*si + tap_in[t]][wo*si][c]
 * dw keeps the [t][k16][c16] block layout of the other weight-gradient tile. */
typedef struct {
    float *dw;           /* [T][16][16] accumulated (+=) */
    const float *in;     /* padded input block at output pixel (0,0) */
    const float *dout;   /* dout block at pixel (0,0) */
    const int *tap_in;   /* [T] float offsets of the taps into in */
    long in_row, dout_row;
    int si, Ho, Wo, nimg;
    long in_img, dout_img;
} rn_ktile_args;
typedef void (*rn_ktile_fn)(const rn_ktile_args *a);
#if defined(__x86_64__)
rn_ktile_fn rn_ktile_avx512(int T, int CC); /* T 1..9, CC 1..3 */
rn_ktile_fn rn_ktile33_avx512(int CC);      /* a whole 3x3 kernel (tap_in unused), CC 1..3 */
#endif

/* Each returns NULL when that shape of tile is not built for the level. SI, SO in {1, 2}. */
rn_otile_fn rn_otile_portable(int P, int KB, int SI, int SO);
rn_wtile_fn rn_wtile_portable(int T, int KC);
#if defined(__x86_64__)
rn_otile_fn rn_otile_avx2(int P, int KB, int SI, int SO);
rn_wtile_fn rn_wtile_avx2(int T, int KC);
rn_otile_fn rn_otile_avx512(int P, int KB, int SI, int SO);
/* Tiles of RT = 2..4 rows (P*KB*RT <= 24, KB <= 2). */
rn_otile_fn rn_otile_rows_avx512(int P, int KB, int RT, int SI, int SO);
rn_wtile_fn rn_wtile_avx512(int T, int KC);
#endif

/* ---- shared by the drivers (conv_common.c) ------------------------------------------------ */
rn_otile_fn rn_otile_get(rn_isa isa, int P, int KB, int SI, int SO);
/* The same for tiles of RT rows (RT == 1: rn_otile_get). */
rn_otile_fn rn_otile_get_rows(rn_isa isa, int P, int KB, int RT, int SI, int SO);
rn_wtile_fn rn_wtile_get(rn_isa isa, int T, int KC);
/* Output channel blocks per tile for `nblocks` blocks over rows `width` pixels wide (hint > 0
 * forces it, within what is built). */
int rn_pick_kb(rn_isa isa, int nblocks, int width, int hint);

/* How one row of output pixels is cut into tiles: `nfull` tiles `p` wide, then the tail. */
typedef struct {
    int rt;              /* rows per tile */
    int p, nfull;
    rn_otile_fn fn;
    int ntail;
    int tail_p[16];
    rn_otile_fn tail_fn[16];
} rn_row_plan;

void rn_plan_row(rn_row_plan *pl, rn_isa isa, int kb, int width, int hint, int SI, int SO);
/* Plans for rows of `width` pixels taken `rows` at a time (tiles of up to 4 rows where the
 * rows are short): main[0] for full groups of main[0].rt rows, main[1] for the last
 * nrows % rt rows. */
void rn_plan_rows(rn_row_plan main[2], rn_isa isa, int kb, int width, int nrows, int hint,
                  int SI, int SO);
/* Runs a plan over rows [0, nrows): a->out / a->in at row 0, rows out_row / in_row floats
 * apart (also set into a), pixels out_step / in_step floats apart. */
void rn_run_rows(const rn_row_plan main[2], rn_otile_args *a, int nrows, long out_row,
                 long in_row, long out_step, long in_step);
/* Runs the tiles of one row: a->out and a->in at the row's first pixel, advanced by
 * out_step / in_step floats per pixel. */
void rn_run_row(const rn_row_plan *pl, rn_otile_args *a, long out_step, long in_step);

int rn_thread_id(void);
int rn_thread_count(void);

/* Copies image n of the NCHW tensor src (C,H,W) into the interior of dst (CB,Hp,Wp,16) at
 * offset (top, left). The border and the padded channel lanes of dst must already be zero. */
void rn_pad_image(float *dst, const float *src, int n, int C, int H, int W, int Hp, int Wp,
                  int top, int left, rn_isa isa);
/* dbias (K) += sum of dout (N,K,Ho,Wo) over images and pixels, in fp32: threads split the
 * channels, each summing in a fixed order (the direct, Winograd and bf16 backward passes). */
void rn_conv_bias_grad(float *dbias, const float *dout, const rn_conv_desc *d, int nthreads);
/* Channel blocks [cb0, cb0+ncb) of image n (C,HW) of the NCHW tensor dst (+)= the same blocks
 * of src (CB,HW,16). */
void rn_unblock_image(float *dst, const float *src, int n, int C, int HW, int cb0, int ncb,
                      bool accumulate, rn_isa isa);

#if defined(__x86_64__)
/* transpose_avx512.c: dst[p*16 + c] = src[c*cstride + p] (lanes c >= cn zeroed), and back. */
void rn_rows_to_blocked_avx512(float *dst, const float *src, long cstride, int cn, int n);
void rn_blocked_to_rows_avx512(float *dst, long cstride, const float *src, int cn, int n,
                               bool accumulate);
#endif

#endif
