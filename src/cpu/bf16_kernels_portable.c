/*
 * bf16_kernels_portable.c — the bf16 GEMM tile and packing routines in plain C (see bf16.h for
 * what each computes). They round exactly as the AVX512_BF16 instructions do and sum each
 * pair's two exact products into fp32, so they are the reference the vector kernels are tested
 * against, and the path for CPUs without bf16 instructions.
 */
#include "bf16.h"

void rn_bf16_convert_portable(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = rn_bf16_from_float(src[i]);
}

static inline float lo_of(uint32_t p) { return rn_bf16_to_float((uint16_t)(p & 0xffffu)); }
static inline float hi_of(uint32_t p) { return rn_bf16_to_float((uint16_t)(p >> 16)); }

void rn_bf16_tile_portable(const rn_bf16_tile_args *t) {
    float acc[RN_BF16_MR][RN_BF16_NB];
    const int nc = t->nv * 16;
    for (int m = 0; m < t->mr; m++)
        for (int j = 0; j < nc; j++)
            acc[m][j] = t->accumulate ? (j < t->ncols ? t->c[m * t->ldc + j] : 0.0f)
                                      : (t->bias ? t->bias[m] : 0.0f);
    for (int k = 0; k < t->kp; k++) {
        const uint32_t *ar = t->a + (size_t)k * RN_BF16_MR;
        uint32_t br[RN_BF16_NB];
        for (int j = 0; j < nc; j++)
            br[j] = t->koff ? (j < t->ncols ? t->b[t->koff[k] + t->boff[j / 16] + j % 16] : 0)
                            : t->b[(size_t)k * t->b_stride + j];
        for (int m = 0; m < t->mr; m++) {
            const float a0 = lo_of(ar[m]), a1 = hi_of(ar[m]);
            for (int j = 0; j < nc; j++) acc[m][j] = acc[m][j] + a0 * lo_of(br[j]) + a1 * hi_of(br[j]);
        }
    }
    for (int m = 0; m < t->mr; m++)
        for (int j = 0; j < t->ncols; j++) {
            float v = acc[m][j];
            t->c[m * t->ldc + j] = t->relu && !(v > 0.0f) ? 0.0f : v;
        }
}

static void pair_plane(uint32_t *dst, long dst_row, const float *lo, const float *hi,
                       long src_row, int h, int w) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            dst[y * dst_row + x] = rn_bf16_pair(lo[y * src_row + x], hi ? hi[y * src_row + x] : 0.0f);
}

static void gather(uint32_t *b, long b_stride, const uint32_t *img, const int *koff, int kp,
                   const int *poff, int ncols, int nv) {
    for (int k = 0; k < kp; k++) {
        uint32_t *row = b + (size_t)k * b_stride;
        const uint32_t *base = img + koff[k];
        for (int i = 0; i < ncols; i++) row[i] = base[poff[i]];
        for (int i = ncols; i < 16 * nv; i++) row[i] = 0;
    }
}

static void gather_pairs(uint32_t *b, long b_stride, const uint16_t *img, const int *koff,
                         int nv, const int *poff, int npairs) {
    for (int q = 0; q < npairs; q++) {
        const uint16_t *p0 = img + poff[2 * q], *p1 = img + poff[2 * q + 1];
        uint32_t *row = b + (size_t)q * b_stride;
        for (int j = 0; j < 16 * nv; j++) row[j] = (uint32_t)p0[koff[j]] | (uint32_t)p1[koff[j]] << 16;
    }
}

static void pack_a8(uint32_t *A, const float *rows, long row_stride, int nrows, int npairs) {
    for (int q = 0; q < npairs; q++)
        for (int m = 0; m < RN_BF16_MR; m++)
            A[(size_t)q * RN_BF16_MR + m] =
                m < nrows ? rn_bf16_pair(rows[m * row_stride + 2 * q], rows[m * row_stride + 2 * q + 1]) : 0;
}

static void hwc_row(uint16_t *dst, int dstep, const float *src, long cstride, int cn, int n) {
    for (int c = 0; c < cn; c++)
        for (int x = 0; x < n; x++) dst[(size_t)x * dstep + c] = rn_bf16_from_float(src[c * cstride + x]);
}

const rn_bf16_kernels rn_bf16_kernels_portable = {
    .tile = rn_bf16_tile_portable,
    .pair_plane = pair_plane,
    .gather = gather,
    .gather_pairs = gather_pairs,
    .pack_a8 = pack_a8,
    .hwc_row = hwc_row,
};
