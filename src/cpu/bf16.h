/*
 * bf16.h — bfloat16 convolutions and classifier for the CPU: inputs rounded to bf16, products
 * summed in fp32 (the contract of PyTorch's bf16 autocast and of the GPU's bf16).
 *
 * Rounding. rn_bf16_from_float rounds to nearest even, the way AVX512_BF16's vcvtneps2bf16
 * does: denormal inputs become zeros of the same sign and NaNs stay (quiet) NaNs. Every level
 * rounds identically; a rounded value has a relative error of at most 2^-8 (bf16 keeps 8
 * significant bits), and a product of two of them is exact in fp32.
 *
 * Levels (rn_cpu_bf16_level, core/isa.h): the portable C path runs anywhere; AVX512_BF16 (vdpbf16ps,
 * AMD Zen 4/5, Intel Cooper Lake and later) multiplies pairs of bf16 and adds them into fp32
 * lanes; AMX-BF16 (Intel Sapphire Rapids and later) multiplies 16x32 by 32x16 tiles.
 * RN_ISA=portable|avx2|avx512|avx512bf16|amx lowers the level (avx2 and avx512 run the
 * portable bf16 path: they have no bf16 instructions).
 *
 * Data layout inside the kernels. Every product is a GEMM C (M,N) += A (M,2P) x B (2P,N)
 * whose contraction runs over P pairs of bf16, stored as one uint32 per pair (the first
 * element in the low half, as vdpbf16ps and AMX's VNNI layout read them):
 *     A  [P][8]     pairs of 8 rows of A (a row block), broadcast one at a time
 *     B  [P][16*nv] pairs of nv vectors of 16 columns
 * Convolutions become such GEMMs (conv_bf16.c): forward M = output channels, N = output
 * pixels, the contraction over (tap, input channel); backward-data is the forward of the
 * flipped, transposed filter over the output gradient (one phase per stride offset);
 * backward-weights has M = output channels, N = (tap, input channel), the contraction over
 * pixels.
 */
#ifndef RN_BF16_H
#define RN_BF16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/isa.h"
#include "ops/backend.h"
#include "ops/ops.h"

/* ---- rounding ----------------------------------------------------------------------------- */

/* f rounded to bf16 (nearest even; denormals to signed zero; NaN stays NaN), as its 16 bits. */
static inline uint16_t rn_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u & 0x80000000u) >> 16);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
static inline float rn_bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
/* f rounded to bf16 and back. */
static inline float rn_bf16_round(float f) { return rn_bf16_to_float(rn_bf16_from_float(f)); }
/* The pair (lo, hi) as the kernels store it. */
static inline uint32_t rn_bf16_pair(float lo, float hi) {
    return (uint32_t)rn_bf16_from_float(lo) | (uint32_t)rn_bf16_from_float(hi) << 16;
}

/* dst[i] = rn_bf16_from_float(src[i]) for n values: in C, and with vcvtneps2bf16 (the latter
 * only where the CPU has AVX512_BF16; the tests check that both agree bit for bit). */
void rn_bf16_convert_portable(uint16_t *dst, const float *src, size_t n);
#if defined(__x86_64__)
void rn_bf16_convert_avx512bf16(uint16_t *dst, const float *src, size_t n);
#endif

/* ---- the GEMM tile (bf16_kernels_*.c) ------------------------------------------------------ */
#define RN_BF16_MR 8  /* rows of A per row block */
#define RN_BF16_NV 3  /* most vectors of 16 columns per tile */
#define RN_BF16_NB (16 * RN_BF16_NV)

typedef struct {
    float *c;           /* C tile: rows ldc floats apart, columns contiguous */
    long ldc;
    const uint32_t *a;  /* [kp][RN_BF16_MR] pairs */
    const uint32_t *b;  /* [kp][b_stride] pairs; columns [0, 16*nv) used */
    long b_stride;
    const int *koff;    /* non-NULL: no B panel; vector v of pair k is the 16 pairs at
                         * b + koff[k] + boff[v] (read whole: lanes past ncols are not stored) */
    int boff[RN_BF16_NV];
    int kp;             /* pairs in the contraction */
    int nv;             /* vectors of 16 columns, 1..RN_BF16_NV */
    int ncols;          /* columns stored, (nv-1)*16 < ncols <= nv*16 */
    int mr;             /* rows stored, 1..RN_BF16_MR */
    const float *bias;  /* [mr] start values of the rows, or NULL for zeros (without accumulate) */
    bool accumulate;    /* C += A x B (else C = bias + A x B) */
    bool relu;          /* then C = max(C, 0) */
} rn_bf16_tile_args;
typedef void (*rn_bf16_tile_fn)(const rn_bf16_tile_args *t);

/* The tile and the packing routines of one level. */
typedef struct {
    rn_bf16_tile_fn tile;
    /* dst[y*dst_row + x] = pair(lo[y*src_row + x], hi[...]) for y < h, x < w; hi NULL: zeros.
     * (Two channel planes of an image into the padded pair image.) */
    void (*pair_plane)(uint32_t *dst, long dst_row, const float *lo, const float *hi,
                       long src_row, int h, int w);
    /* b[k*b_stride + i] = img[koff[k] + poff[i]] for k < kp, i < ncols; 0 for
     * ncols <= i < 16*nv. (The B panel of a forward tile: kp pairs x a block of pixels.) */
    void (*gather)(uint32_t *b, long b_stride, const uint32_t *img, const int *koff, int kp,
                   const int *poff, int ncols, int nv);
    /* b[q*b_stride + j] = pair(img[poff[2q] + koff[j]], img[poff[2q+1] + koff[j]]) for
     * q < npairs, j < 16*nv. (The B panel of a weight-gradient tile: pixel pairs x taps.) */
    void (*gather_pairs)(uint32_t *b, long b_stride, const uint16_t *img, const int *koff,
                         int nv, const int *poff, int npairs);
    /* A[q*8 + m] = pair(rows[m*row_stride + 2q], rows[m*row_stride + 2q + 1]) for q < npairs,
     * m < nrows; zeros for nrows <= m < 8. (Output gradients as the A of a weight gradient.) */
    void (*pack_a8)(uint32_t *A, const float *rows, long row_stride, int nrows, int npairs);
    /* dst[x*dstep + c] = bf16(src[c*cstride + x]) for c < cn (<= 16), x < n. (A row of an
     * image from NCHW into HWC.) */
    void (*hwc_row)(uint16_t *dst, int dstep, const float *src, long cstride, int cn, int n);
} rn_bf16_kernels;

extern const rn_bf16_kernels rn_bf16_kernels_portable;
#if defined(__x86_64__)
extern const rn_bf16_kernels rn_bf16_kernels_avx512bf16;
/* AMX tile, AVX512_BF16 packing. */
extern const rn_bf16_kernels rn_bf16_kernels_amx;
void rn_bf16_tile_amx(const rn_bf16_tile_args *t);
#endif
/* The kernels of a level (lowered to what is built and what the CPU runs). */
const rn_bf16_kernels *rn_bf16_kernels_for(rn_bf16_level level);

/* ---- convolution and linear (conv_bf16.c, linear_bf16.c) ---------------------------------- */

/* Scratch floats rn_cpu_bf16_conv2d_forward and _backward need (the larger of the two). */
size_t rn_cpu_bf16_conv2d_scratch_floats(const rn_conv_desc *d, int nthreads);
/* out (N,K,Ho,Wo) = bf16(in) (N,C,H,W) conv bf16(w) (K,C,R,S) + bias (K), fp32 sums; bias may
 * be NULL; relu: then out = max(out, 0). Writes out. NCHW tensors, any R, S, stride, pad. */
void rn_cpu_bf16_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                                const rn_conv_desc *d, bool relu, rn_bf16_level level,
                                float *scratch, int nthreads);
/* din (N,C,H,W) += bf16(dout) conv^T bf16(w); dw (K,C,R,S) += bf16(dout) x bf16(in) summed
 * over pixels; dbias (K) += sum of dout (fp32). Any of din, dw, dbias may be NULL. */
void rn_cpu_bf16_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                                 const float *in, const float *w, const rn_conv_desc *d,
                                 rn_bf16_level level, float *scratch, int nthreads);

/* out (N,O) = bf16(in) (N,I) x bf16(w) (O,I)^T + bias (O), fp32 sums; bias may be NULL.
 * Writes out. One thread. */
void rn_cpu_bf16_linear_forward(float *out, const float *in, const float *w, const float *bias,
                                int N, int I, int O, rn_bf16_level level);
/* din (N,I) += bf16(dout) x bf16(w); dw (O,I) += bf16(dout)^T x bf16(in); dbias (O) += sum
 * of dout (fp32). Any of the three may be NULL. */
void rn_cpu_bf16_linear_backward(float *din, float *dw, float *dbias, const float *dout,
                                 const float *in, const float *w, int N, int I, int O,
                                 rn_bf16_level level);

/* ---- the backend (backend_bf16.c) ---------------------------------------------------------- */
/* "cpu-bf16": the bf16 convolutions and classifier above, the cpu backend's fp32 kernels for
 * every other op. */
extern const rn_backend rn_backend_cpu_bf16;

#endif
