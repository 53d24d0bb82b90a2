/*
 * bf16_kernels_avx512bf16.c — the bf16 GEMM tile and packing routines with AVX512_BF16 (see
 * bf16.h for what each computes). Compiled with per-function target attributes, so the file
 * builds on any x86-64 and runs only where rn_cpu_bf16_level() says the CPU has the
 * instructions.
 *
 * Tile: 8 rows x nv vectors of 16 columns = 8*nv zmm accumulators. Per pair of the contraction
 * it loads nv vectors of B (16 columns x 2 bf16 each), broadcasts the 8 row pairs of A and
 * issues 8*nv vdpbf16ps (each 32 multiply-adds): 24 of them for 11 loads at nv = 3.
 */
#include "bf16.h"
#include "conv_tiles.h" /* rn_rows_to_blocked_avx512 */

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw")))
#define INLINE static inline __attribute__((always_inline))

TGT void rn_bf16_convert_avx512bf16(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256i h = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

/* The first n lanes (none for n <= 0, all for n >= 16). */
static inline __mmask16 lanes(int n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

INLINE TGT void tile(const rn_bf16_tile_args *t, const int NV, const bool IMPLICIT) {
    __m512 acc[RN_BF16_MR][RN_BF16_NV];
    const __mmask16 last = lanes(t->ncols - (NV - 1) * 16);
    const long ldc = t->ldc;
#pragma GCC unroll 8
    for (int m = 0; m < RN_BF16_MR; m++) {
        __m512 init = _mm512_setzero_ps();
        if (!t->accumulate && t->bias && m < t->mr) init = _mm512_set1_ps(t->bias[m]);
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            acc[m][v] = init;
            if (t->accumulate && m < t->mr)
                acc[m][v] = _mm512_maskz_loadu_ps(v == NV - 1 ? last : 0xffff, t->c + m * ldc + v * 16);
        }
    }
    const uint32_t *a = t->a, *b = t->b;
    const long bs = t->b_stride;
    const int *koff = t->koff;
    const uint32_t *bb[RN_BF16_NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) bb[v] = IMPLICIT ? t->b + t->boff[v] : t->b + v * 16;
    for (int k = 0; k < t->kp; k++) {
        __m512bh bv[RN_BF16_NV];
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            bv[v] = (__m512bh)_mm512_loadu_si512(IMPLICIT ? bb[v] + koff[k] : b + v * 16);
#pragma GCC unroll 8
        for (int m = 0; m < RN_BF16_MR; m++) {
            const __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[m]);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[m][v] = _mm512_dpbf16_ps(acc[m][v], av, bv[v]);
        }
        a += RN_BF16_MR;
        b += bs;
    }
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int m = 0; m < RN_BF16_MR; m++) {
        if (m >= t->mr) break;
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++) {
            __m512 x = t->relu ? _mm512_max_ps(acc[m][v], zero) : acc[m][v];
            _mm512_mask_storeu_ps(t->c + m * ldc + v * 16, v == NV - 1 ? last : 0xffff, x);
        }
    }
}

static TGT void tile1(const rn_bf16_tile_args *t) { tile(t, 1, false); }
static TGT void tile2(const rn_bf16_tile_args *t) { tile(t, 2, false); }
static TGT void tile3(const rn_bf16_tile_args *t) { tile(t, 3, false); }
static TGT void tile1i(const rn_bf16_tile_args *t) { tile(t, 1, true); }
static TGT void tile2i(const rn_bf16_tile_args *t) { tile(t, 2, true); }
static TGT void tile3i(const rn_bf16_tile_args *t) { tile(t, 3, true); }

TGT void rn_bf16_tile_avx512bf16(const rn_bf16_tile_args *t) {
    if (t->koff) (t->nv == 3 ? tile3i : t->nv == 2 ? tile2i : tile1i)(t);
    else (t->nv == 3 ? tile3 : t->nv == 2 ? tile2 : tile1)(t);
}

/* 16 pairs (lo[i], hi[i]) rounded, as uint32 lanes. */
INLINE TGT __m512i pairs16(__m512 lo, __m512 hi) {
    __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

/* Rows of at least 16 pixels a vector at a time; narrower ones (small images, whose source
 * rows are contiguous) 16 pixels spanning several rows a time, stored a row piece each. */
static TGT void pair_plane(uint32_t *dst, long dst_row, const float *lo, const float *hi,
                           long src_row, int h, int w) {
    if (w >= 16 || src_row != w) {
        for (int y = 0; y < h; y++)
            for (int i = 0; i < w; i += 16) {
                const __mmask16 m = lanes(w - i);
                const float *l = lo + y * src_row + i;
                __m512i x = pairs16(_mm512_maskz_loadu_ps(m, l),
                                    hi ? _mm512_maskz_loadu_ps(m, hi + y * src_row + i) : _mm512_setzero_ps());
                _mm512_mask_storeu_epi32(dst + y * dst_row + i, m, x);
            }
        return;
    }
    const int n = h * w;
    for (int e = 0; e < n; e += 16) {
        const __mmask16 m = lanes(n - e);
        __m512i x = pairs16(_mm512_maskz_loadu_ps(m, lo + e), hi ? _mm512_maskz_loadu_ps(m, hi + e) : _mm512_setzero_ps());
        for (int e0 = e; e0 < e + 16 && e0 < n;) { /* one row piece: lanes [e0-e, e1-e) */
            const int y = e0 / w, e1 = (y + 1) * w < e + 16 ? (y + 1) * w : e + 16;
            const __mmask16 piece = (__mmask16)(lanes(e1 - e) & ~lanes(e0 - e) & m);
            _mm512_mask_storeu_epi32(dst + y * dst_row + (e0 - y * w) - (e0 - e), piece, x);
            e0 = e1;
        }
    }
}

/* One vector of a B panel: lanes [0, n) read img at base + poff[i], as runs of consecutive
 * offsets (masked loads) when there are few, else one gather. */
typedef struct {
    int nseg;          /* 0: gather */
    __mmask16 mask[4];
    int off[4];        /* offset of lane 0 of each run's load */
    __mmask16 all;
    int idx[16];
} bvec_plan;

static void plan_bvec(bvec_plan *p, const int *poff, int n) {
    p->nseg = 0;
    p->all = lanes(n);
    for (int i = 0; i < 16; i++) p->idx[i] = i < n ? poff[i] : 0;
    int s = -1;
    for (int i = 0; i < n; i++) {
        if (i == 0 || poff[i] != poff[i - 1] + 1) {
            if (++s == 4) { p->nseg = 0; return; }
            p->mask[s] = 0;
            p->off[s] = poff[i] - i;
        }
        p->mask[s] |= (__mmask16)(1u << i);
    }
    p->nseg = s + 1;
}

static TGT void gather(uint32_t *b, long b_stride, const uint32_t *img, const int *koff, int kp,
                       const int *poff, int ncols, int nv) {
    bvec_plan pl[RN_BF16_NV];
    for (int v = 0; v < nv; v++) {
        int n = ncols - v * 16;
        plan_bvec(&pl[v], poff + v * 16, n < 0 ? 0 : n > 16 ? 16 : n);
    }
    for (int k = 0; k < kp; k++) {
        const uint32_t *base = img + koff[k];
        uint32_t *row = b + (size_t)k * b_stride;
        for (int v = 0; v < nv; v++) {
            const bvec_plan *p = &pl[v];
            __m512i x = _mm512_setzero_si512();
            if (p->nseg > 0) {
                for (int s = 0; s < p->nseg; s++)
                    x = _mm512_mask_loadu_epi32(x, p->mask[s], base + p->off[s]);
            } else if (p->all) {
                x = _mm512_mask_i32gather_epi32(x, p->all, _mm512_loadu_si512(p->idx), base, 4);
            }
            _mm512_storeu_si512(row + v * 16, x);
        }
    }
}

static TGT void gather_pairs(uint32_t *b, long b_stride, const uint16_t *img, const int *koff,
                             int nv, const int *poff, int npairs) {
    bool run[RN_BF16_NV];
    __m512i idx[RN_BF16_NV];
    for (int v = 0; v < nv; v++) {
        run[v] = true;
        for (int i = 1; i < 16; i++) run[v] = run[v] && koff[v * 16 + i] == koff[v * 16] + i;
        idx[v] = _mm512_loadu_si512(koff + v * 16);
    }
    const __m512i low16 = _mm512_set1_epi32(0xffff);
    for (int q = 0; q < npairs; q++) {
        const uint16_t *p0 = img + poff[2 * q], *p1 = img + poff[2 * q + 1];
        uint32_t *row = b + (size_t)q * b_stride;
        for (int v = 0; v < nv; v++) {
            __m512i l, h;
            if (run[v]) {
                l = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p0 + koff[v * 16])));
                h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p1 + koff[v * 16])));
            } else { /* 32-bit gathers at 2-byte scale: the low half is the element */
                l = _mm512_and_si512(_mm512_i32gather_epi32(idx[v], p0, 2), low16);
                h = _mm512_and_si512(_mm512_i32gather_epi32(idx[v], p1, 2), low16);
            }
            _mm512_storeu_si512(row + v * 16, _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
        }
    }
}

/* 8 rows x 16 pixel pairs, rounded, transposed into 16 columns of 8 pairs: two unpack stages
 * gather each column's rows 0-3 and 4-7 within 128-bit lanes, two lane shuffles pair them. */
static TGT void pack_a8(uint32_t *A, const float *rows, long row_stride, int nrows, int npairs) {
    for (int q0 = 0; q0 < npairs; q0 += 16) {
        const int n = npairs - q0 < 16 ? npairs - q0 : 16;
        const __mmask16 mlo = lanes(2 * n), mhi = lanes(2 * n - 16);
        __m512i r[8];
        for (int m = 0; m < 8; m++) {
            if (m >= nrows) { r[m] = _mm512_setzero_si512(); continue; }
            const float *p = rows + m * row_stride + 2 * q0;
            r[m] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mhi, p + 16), _mm512_maskz_loadu_ps(mlo, p));
        }
        __m512i a[4], b[4], x[4], y[4];
        for (int p = 0; p < 4; p++) {
            a[p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
            b[p] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
        }
        /* x[e] lane L = rows 0-3 of column 4L+e; y[e] likewise rows 4-7 */
        x[0] = _mm512_unpacklo_epi64(a[0], a[1]), x[1] = _mm512_unpackhi_epi64(a[0], a[1]);
        x[2] = _mm512_unpacklo_epi64(b[0], b[1]), x[3] = _mm512_unpackhi_epi64(b[0], b[1]);
        y[0] = _mm512_unpacklo_epi64(a[2], a[3]), y[1] = _mm512_unpackhi_epi64(a[2], a[3]);
        y[2] = _mm512_unpacklo_epi64(b[2], b[3]), y[3] = _mm512_unpackhi_epi64(b[2], b[3]);
        uint32_t *out = A + (size_t)q0 * RN_BF16_MR;
        for (int e = 0; e < 4; e++) {
            /* [x0 y0 x1 y1] = columns e and 4+e; [x2 y2 x3 y3] = columns 8+e and 12+e */
            __m512i z01 = _mm512_shuffle_i32x4(x[e], y[e], 0x44), z23 = _mm512_shuffle_i32x4(x[e], y[e], 0xEE);
            z01 = _mm512_shuffle_i32x4(z01, z01, 0xD8);
            z23 = _mm512_shuffle_i32x4(z23, z23, 0xD8);
            const int col[4] = {e, 4 + e, 8 + e, 12 + e};
            const __m256i half[4] = {_mm512_castsi512_si256(z01), _mm512_extracti64x4_epi64(z01, 1),
                                     _mm512_castsi512_si256(z23), _mm512_extracti64x4_epi64(z23, 1)};
            for (int h = 0; h < 4; h++)
                if (col[h] < n) _mm256_storeu_si256((__m256i *)(out + col[h] * RN_BF16_MR), half[h]);
        }
    }
}

/* 16 channels of up to 64 pixels at a time: transposed to pixel-major fp32 (transpose_avx512.c),
 * then each pixel's channels rounded and stored. */
static TGT void hwc_row(uint16_t *dst, int dstep, const float *src, long cstride, int cn, int n) {
    float tmp[64 * 16];
    const __mmask16 m = lanes(cn);
    for (int x0 = 0; x0 < n; x0 += 64) {
        const int nx = n - x0 < 64 ? n - x0 : 64;
        rn_rows_to_blocked_avx512(tmp, src + x0, cstride, cn, nx);
        for (int x = 0; x < nx; x++)
            _mm256_mask_storeu_epi16(dst + (size_t)(x0 + x) * dstep, m,
                                     (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(tmp + x * 16)));
    }
}

const rn_bf16_kernels rn_bf16_kernels_avx512bf16 = {
    .tile = rn_bf16_tile_avx512bf16,
    .pair_plane = pair_plane,
    .gather = gather,
    .gather_pairs = gather_pairs,
    .pack_a8 = pack_a8,
    .hwc_row = hwc_row,
};

const rn_bf16_kernels rn_bf16_kernels_amx = {
    .tile = rn_bf16_tile_amx,
    .pair_plane = pair_plane,
    .gather = gather,
    .gather_pairs = gather_pairs,
    .pack_a8 = pack_a8,
    .hwc_row = hwc_row,
};

#endif
