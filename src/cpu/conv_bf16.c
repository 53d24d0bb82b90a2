/*
 * conv_bf16.c — bf16 convolutions on NCHW fp32 tensors: forward, backward-data and
 * backward-weights, each an implicit GEMM over bf16 pairs cut into the tiles of bf16.h.
 * Inputs are rounded to bf16 where they are packed; every sum is fp32.
 *
 * Forward and backward-data share one driver, a "padded convolution":
 *     out[m][y][x] (+)= sum_{r, s, j} A[m][r][s][j] * img[j][y*st + r][x*st + s]
 * where img is the source (pad rows and columns of zeros before it, its pixels `dil` apart)
 * held as bf16 channel pairs, img[j/2][Y][X] one uint32. The forward is that with A = w,
 * source = in, dil = 1; backward-data is that with A = w transposed (input and output channels
 * swapped) and flipped (r -> R-1-r), source = dout spread `stride` apart, padding R-1-pad, and
 * stride 1; its results are added to din. The contraction runs over (r, s, channel pair) and
 * the columns over output pixels: per block of 48 pixels the pairs of every tap are gathered
 * into a B panel (in cache) and every block of 8 output channels multiplies it. Small images
 * go in groups of up to 4 so that blocks are full; a block within one image is stored in place,
 * one that spans two images through a small staging tile.
 *
 * Backward-weights: dw[k][(r, s, c)] += sum over pixels of dout[k][p] * in[c][p + (r, s)],
 * the contraction over pairs of pixels: per chunk of ~512 pixels the input is copied into a
 * padded HWC bf16 image, dout into pairs of pixels per block of 8 output channels, and for each
 * block of 48 (r, s, c) columns the pixel pairs are gathered into a B panel. Each thread sums
 * its images into its own partial dw; the partials are added in thread order at the end, so
 * results are bit-identical for a fixed thread count.
 *
 * Threads: forward and backward-data split (group of images, pixel block) items statically;
 * backward-weights splits images. No allocation: scratch comes from the caller.
 */
#include "bf16.h"

#include "conv_tiles.h" /* rn_thread_id, rn_thread_count */

#include <string.h>

#define MR RN_BF16_MR
#define NB RN_BF16_NB

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* ---- the padded convolution (forward, backward-data) -------------------------------------- */

typedef struct {
    int N, M;              /* images, output channels (GEMM rows) */
    int Cs, Hs, Ws;        /* source channels and image */
    int dil, pt, pl;       /* source pixels dil apart, after pt rows / pl columns of zeros */
    int R, S, st;          /* taps, stride over the padded image */
    int Ho, Wo, npix;      /* output image */
    int Hp, Wp, C2, kp;    /* padded image, channel pairs, contraction pairs R*S*C2 */
    int MB;                /* row blocks of 8 */
    int G;                 /* images per group */
    bool flip;             /* A is w transposed and flipped (backward-data) */
    size_t img;            /* uint32 per padded pair image */
    size_t a_off, koff_off, shared_end;                   /* scratch, in floats */
    size_t t_img, t_b, t_stage, t_poff, per_thread;
} pconv;

/* Images per group: up to 4, at most 256 pixels unless one image has more, fewest columns
 * wasted in the last vector of 16. */
static int pick_group(int npix, int N) {
    int best = 1;
    double best_waste = 1e9;
    for (int g = 1; g <= 4 && g <= N; g++) {
        if (g > 1 && g * npix > 256) break;
        const double cols = (double)g * npix, waste = (16.0 * cdiv(g * npix, 16) - cols) / cols;
        if (waste < best_waste - 1e-9) best = g, best_waste = waste;
    }
    return best;
}

static void pconv_layout(pconv *g, int nthreads) {
    g->npix = g->Ho * g->Wo;
    g->Hp = (g->Ho - 1) * g->st + g->R;
    g->Wp = (g->Wo - 1) * g->st + g->S;
    g->C2 = cdiv(g->Cs, 2);
    g->kp = g->R * g->S * g->C2;
    g->MB = cdiv(g->M, MR);
    g->G = pick_group(g->npix, g->N);
    g->img = (size_t)g->C2 * g->Hp * g->Wp;
    size_t o = 0;
    g->a_off = o; o += up16((size_t)g->MB * MR * g->kp);
    g->koff_off = o; o += up16((size_t)g->kp);
    g->shared_end = o;
    size_t t = 0;
    g->t_img = t; t += up16((size_t)g->G * g->img);
    g->t_b = t; t += up16((size_t)g->kp * NB);
    g->t_stage = t; t += up16((size_t)MR * NB);
    g->t_poff = t; t += up16(NB);
    g->per_thread = t;
    (void)nthreads;
}

static void pconv_forward(pconv *g, const rn_conv_desc *d, int nthreads) {
    *g = (pconv){.N = d->N, .M = d->K, .Cs = d->C, .Hs = d->H, .Ws = d->W, .dil = 1,
                 .pt = d->pad, .pl = d->pad, .R = d->R, .S = d->S, .st = d->stride,
                 .Ho = d->Ho, .Wo = d->Wo, .flip = false};
    pconv_layout(g, nthreads);
}

static void pconv_backward_data(pconv *g, const rn_conv_desc *d, int nthreads) {
    *g = (pconv){.N = d->N, .M = d->C, .Cs = d->K, .Hs = d->Ho, .Ws = d->Wo, .dil = d->stride,
                 .pt = d->R - 1 - d->pad, .pl = d->S - 1 - d->pad, .R = d->R, .S = d->S,
                 .st = 1, .Ho = d->H, .Wo = d->W, .flip = true};
    pconv_layout(g, nthreads);
}

static size_t pconv_scratch(const pconv *g, int nthreads) {
    return g->shared_end + (size_t)(nthreads > 0 ? nthreads : 1) * g->per_thread;
}

/* A [MB][kp][8] from w (K,C,R,S); contraction index (r*S + s)*C2 + j/2. Row blocks are split
 * among the calling team. */
static void pack_a(uint32_t *A, const float *w, const pconv *g) {
    const int RS = g->R * g->S;
#pragma omp for schedule(static)
    for (int mb = 0; mb < g->MB; mb++)
        for (int t = 0; t < RS; t++) {
            const int r = t / g->S, s = t % g->S;
            for (int c2 = 0; c2 < g->C2; c2++) {
                uint32_t *dst = A + ((size_t)mb * g->kp + (size_t)t * g->C2 + c2) * MR;
                for (int m = 0; m < MR; m++) {
                    const int row = mb * MR + m;
                    float v[2] = {0.0f, 0.0f};
                    for (int e = 0; e < 2; e++) {
                        const int j = 2 * c2 + e;
                        if (row >= g->M || j >= g->Cs) continue;
                        v[e] = g->flip ? w[(((size_t)j * g->M + row) * g->R + (g->R - 1 - r)) * g->S + (g->S - 1 - s)]
                                       : w[(((size_t)row * g->Cs + j) * g->R + r) * g->S + s];
                    }
                    dst[m] = rn_bf16_pair(v[0], v[1]);
                }
            }
        }
}

/* The padded pair image of source image n of src (N,Cs,Hs,Ws) into dst (C2,Hp,Wp). */
static void build_image(uint32_t *dst, const float *src, int n, const pconv *g,
                        const rn_bf16_kernels *kn) {
    memset(dst, 0, sizeof(uint32_t) * g->img);
    /* source columns x whose padded column pl + x*dil lies in [0, Wp) */
    int x0 = 0;
    while (x0 < g->Ws && g->pl + x0 * g->dil < 0) x0++;
    int x1 = x0;
    while (x1 < g->Ws && g->pl + x1 * g->dil < g->Wp) x1++;
    if (x1 <= x0) return;
    for (int c2 = 0; c2 < g->C2; c2++) {
        const float *lo = src + ((size_t)n * g->Cs + 2 * c2) * g->Hs * g->Ws;
        const float *hi = 2 * c2 + 1 < g->Cs ? lo + (size_t)g->Hs * g->Ws : NULL;
        for (int y = 0; y < g->Hs; y++) {
            const int Y = g->pt + y * g->dil;
            if (Y < 0 || Y >= g->Hp) continue;
            const size_t so = (size_t)y * g->Ws + x0;
            kn->pair_row(dst + ((size_t)c2 * g->Hp + Y) * g->Wp + g->pl + x0 * g->dil, g->dil,
                         lo + so, hi ? hi + so : NULL, x1 - x0);
        }
    }
}

/* out (N,M,Ho,Wo) (+)= the padded convolution of src (N,Cs,Hs,Ws) by w, + bias. */
static void pconv_run(const pconv *g, float *out, const float *src, const float *w,
                      const float *bias, bool relu, bool accumulate, const rn_bf16_kernels *kn,
                      float *scratch, int nthreads) {
    uint32_t *A = (uint32_t *)(scratch + g->a_off);
    int *koff = (int *)(scratch + g->koff_off);
    for (int t = 0; t < g->R * g->S; t++)
        for (int c2 = 0; c2 < g->C2; c2++)
            koff[t * g->C2 + c2] = (int)(((size_t)c2 * g->Hp + t / g->S) * g->Wp + t % g->S);
    const int ngroups = cdiv(g->N, g->G);
    const int bpg = cdiv(g->G * g->npix, NB); /* pixel blocks per (full) group */
    const long items = (long)ngroups * bpg;

#pragma omp parallel num_threads(nthreads > 0 ? nthreads : 1)
    {
        pack_a(A, w, g); /* ends with a barrier */
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *base = scratch + g->shared_end + (size_t)tid * g->per_thread;
        uint32_t *imgs = (uint32_t *)(base + g->t_img), *B = (uint32_t *)(base + g->t_b);
        float *stage = base + g->t_stage;
        int *poff = (int *)(base + g->t_poff);
        const long lo = items * tid / nt, hi = items * (tid + 1) / nt;
        int cur = -1;
        for (long it = lo; it < hi; it++) {
            const int grp = (int)(it / bpg), blk = (int)(it % bpg);
            const int n0 = grp * g->G, gn = g->N - n0 < g->G ? g->N - n0 : g->G;
            const int gpix = gn * g->npix, p0 = blk * NB;
            if (p0 >= gpix) continue;
            if (grp != cur)
                for (int i = 0; i < gn; i++) build_image(imgs + i * g->img, src, n0 + i, g, kn);
            cur = grp;
            const int ncols = gpix - p0 < NB ? gpix - p0 : NB, nv = cdiv(ncols, 16);
            for (int i = 0; i < ncols; i++) {
                const int q = p0 + i, im = q / g->npix, p = q % g->npix;
                poff[i] = (int)(im * g->img) + (p / g->Wo) * g->st * g->Wp + (p % g->Wo) * g->st;
            }
            kn->gather(B, 16 * nv, imgs, koff, g->kp, poff, ncols, nv);
            const int im0 = p0 / g->npix, im1 = (p0 + ncols - 1) / g->npix;
            const bool direct = im0 == im1;
            for (int mb = 0; mb < g->MB; mb++) {
                const int mr = g->M - mb * MR < MR ? g->M - mb * MR : MR;
                rn_bf16_tile_args t = {
                    .a = A + (size_t)mb * g->kp * MR, .b = B, .b_stride = 16 * nv, .kp = g->kp,
                    .nv = nv, .ncols = ncols, .mr = mr, .bias = bias ? bias + mb * MR : NULL,
                    .relu = relu,
                };
                if (direct) {
                    t.c = out + ((size_t)(n0 + im0) * g->M + mb * MR) * g->npix + (p0 - im0 * g->npix);
                    t.ldc = g->npix;
                    t.accumulate = accumulate;
                    kn->tile(&t);
                    continue;
                }
                t.c = stage;
                t.ldc = NB;
                kn->tile(&t);
                for (int q = p0; q < p0 + ncols;) { /* one run per image */
                    const int im = q / g->npix, p = q % g->npix;
                    const int run = g->npix - p < p0 + ncols - q ? g->npix - p : p0 + ncols - q;
                    for (int m = 0; m < mr; m++) {
                        float *o = out + ((size_t)(n0 + im) * g->M + mb * MR + m) * g->npix + p;
                        const float *s = stage + m * NB + (q - p0);
                        if (accumulate)
                            for (int x = 0; x < run; x++) o[x] += s[x];
                        else
                            memcpy(o, s, sizeof(float) * run);
                    }
                    q += run;
                }
            }
        }
    }
}

/* ---- backward-weights ---------------------------------------------------------------------- */

typedef struct {
    int N, C, H, W, K, R, S, st, pad, Ho, Wo, npix;
    int Hp, Wp;            /* padded input, HWC */
    int Kd, NBK, Kdp;      /* columns (r, s, c), their blocks of 48, padded count */
    int KB8;               /* row blocks of 8 output channels */
    int G, maxpairs;       /* images per chunk, most pixel pairs in one chunk */
    size_t img;            /* uint16 per padded image */
    size_t koff_off, shared_end;
    size_t t_img, t_a, t_b, t_dw, t_poff, per_thread;
} wgeom;

static void wgeom_init(wgeom *g, const rn_conv_desc *d, int nthreads) {
    *g = (wgeom){.N = d->N, .C = d->C, .H = d->H, .W = d->W, .K = d->K, .R = d->R, .S = d->S,
                 .st = d->stride, .pad = d->pad, .Ho = d->Ho, .Wo = d->Wo};
    g->npix = d->Ho * d->Wo;
    g->Hp = (d->Ho - 1) * d->stride + d->R;
    g->Wp = (d->Wo - 1) * d->stride + d->S;
    g->Kd = d->R * d->S * d->C;
    g->NBK = cdiv(g->Kd, NB);
    g->Kdp = g->NBK * NB;
    g->KB8 = cdiv(d->K, MR);
    g->img = (size_t)g->Hp * g->Wp * d->C;
    const int nt = nthreads > 0 ? nthreads : 1, share = cdiv(d->N, nt);
    int G = cdiv(512, g->npix);
    if (G > share) G = share;
    while (G > 1 && (size_t)G * g->img > ((size_t)1 << 20)) G--;
    g->G = G < 1 ? 1 : G;
    g->maxpairs = cdiv(g->G * g->npix, 2);
    size_t o = 0;
    g->koff_off = o; o += up16((size_t)g->Kdp);
    g->shared_end = o;
    size_t t = 0;
    g->t_img = t; t += up16(((size_t)g->G * g->img + 1) / 2 + 16); /* + room for 32-bit gathers */
    g->t_a = t; t += up16((size_t)g->KB8 * g->maxpairs * MR);
    g->t_b = t; t += up16((size_t)g->maxpairs * NB);
    g->t_dw = t; t += up16((size_t)g->KB8 * MR * g->Kdp);
    g->t_poff = t; t += up16(2 * (size_t)g->maxpairs);
    g->per_thread = t;
}

static size_t wgeom_scratch(const wgeom *g, int nthreads) {
    return g->shared_end + (size_t)(nthreads > 0 ? nthreads : 1) * g->per_thread;
}

/* Image n of in (N,C,H,W) into dst (Hp,Wp,C) bf16, zero-padded. */
static void build_image_hwc(uint16_t *dst, const float *in, int n, const wgeom *g,
                            const rn_bf16_kernels *kn) {
    memset(dst, 0, sizeof(uint16_t) * g->img);
    const int h1 = g->H < g->Hp - g->pad ? g->H : g->Hp - g->pad;
    const int w1 = g->W < g->Wp - g->pad ? g->W : g->Wp - g->pad;
    if (w1 <= 0) return;
    for (int c0 = 0; c0 < g->C; c0 += 16) {
        const float *src = in + ((size_t)n * g->C + c0) * g->H * g->W;
        const int cn = g->C - c0 < 16 ? g->C - c0 : 16;
        for (int y = 0; y < h1; y++)
            kn->hwc_row(dst + ((size_t)(y + g->pad) * g->Wp + g->pad) * g->C + c0, g->C,
                        src + (size_t)y * g->W, (long)g->H * g->W, cn, w1);
    }
}

/* A [KB8][np][8] of dout pairs for a chunk of images whose pixel count is odd. */
static void pack_a_odd(uint32_t *A, const float *dout, int c0, int P, int np, const wgeom *g) {
    uint16_t *A16 = (uint16_t *)A;
    for (int kb = 0; kb < g->KB8; kb++)
        for (int m = 0; m < MR; m++) {
            const int k = kb * MR + m;
            uint16_t *dst = A16 + (size_t)kb * np * 2 * MR + 2 * m;
            for (int q = 0; q < 2 * np; q++) {
                float v = 0.0f;
                if (k < g->K && q < P) {
                    const int im = q / g->npix, p = q % g->npix;
                    v = dout[((size_t)(c0 + im) * g->K + k) * g->npix + p];
                }
                dst[(size_t)(q / 2) * 2 * MR + (q & 1)] = rn_bf16_from_float(v);
            }
        }
}

static void wgrad_run(const wgeom *g, float *dw, const float *dout, const float *in,
                      const rn_bf16_kernels *kn, float *scratch, int nthreads) {
    int *koff = (int *)(scratch + g->koff_off);
    for (int j = 0; j < g->Kdp; j++) {
        if (j >= g->Kd) { koff[j] = 0; continue; }
        const int t = j / g->C, c = j % g->C;
        koff[j] = ((t / g->S) * g->Wp + t % g->S) * g->C + c;
    }
#pragma omp parallel num_threads(nthreads > 0 ? nthreads : 1)
    {
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *base = scratch + g->shared_end + (size_t)tid * g->per_thread;
        uint16_t *imgs = (uint16_t *)(base + g->t_img);
        uint32_t *A = (uint32_t *)(base + g->t_a), *B = (uint32_t *)(base + g->t_b);
        float *part = base + g->t_dw;
        int *poff = (int *)(base + g->t_poff);
        memset(part, 0, sizeof(float) * g->KB8 * MR * g->Kdp);
        const int n0 = (int)((long)g->N * tid / nt), n1 = (int)((long)g->N * (tid + 1) / nt);
        for (int c0 = n0; c0 < n1; c0 += g->G) {
            const int gn = n1 - c0 < g->G ? n1 - c0 : g->G, P = gn * g->npix, np = cdiv(P, 2);
            for (int i = 0; i < gn; i++) build_image_hwc(imgs + i * g->img, in, c0 + i, g, kn);
            for (int q = 0; q < 2 * np; q++) {
                const int qq = q < P ? q : P - 1; /* an odd chunk's last pair: its A half is 0 */
                const int im = qq / g->npix, p = qq % g->npix;
                poff[q] = (int)(im * g->img) + ((p / g->Wo) * g->st * g->Wp + (p % g->Wo) * g->st) * g->C;
            }
            if (g->npix % 2 == 0) /* whole pairs per image: 8 rows at a time */
                for (int kb = 0; kb < g->KB8; kb++)
                    for (int i = 0; i < gn; i++)
                        kn->pack_a8(A + ((size_t)kb * np + (size_t)i * (g->npix / 2)) * MR,
                                    dout + ((size_t)(c0 + i) * g->K + kb * MR) * g->npix, g->npix,
                                    g->K - kb * MR < MR ? g->K - kb * MR : MR, g->npix / 2);
            else /* pairs that span two images */
                pack_a_odd(A, dout, c0, P, np, g);
            for (int nb = 0; nb < g->NBK; nb++) {
                kn->gather_pairs(B, NB, imgs, koff + nb * NB, RN_BF16_NV, poff, np);
                for (int kb = 0; kb < g->KB8; kb++) {
                    rn_bf16_tile_args t = {
                        .c = part + (size_t)kb * MR * g->Kdp + nb * NB, .ldc = g->Kdp,
                        .a = A + (size_t)kb * np * MR, .b = B, .b_stride = NB, .kp = np,
                        .nv = RN_BF16_NV, .ncols = NB, .mr = MR, .accumulate = true,
                    };
                    kn->tile(&t);
                }
            }
        }
#pragma omp barrier
        /* dw (K,C,R,S) += the partials, in thread order */
        const float *part0 = scratch + g->shared_end + g->t_dw;
        const int RS = g->R * g->S;
#pragma omp for schedule(static)
        for (int k = 0; k < g->K; k++)
            for (int c = 0; c < g->C; c++)
                for (int t = 0; t < RS; t++) {
                    const size_t j = (size_t)k * g->Kdp + (size_t)t * g->C + c;
                    float sum = part0[j];
                    for (int th = 1; th < nt; th++) sum += part0[(size_t)th * g->per_thread + j];
                    dw[((size_t)k * g->C + c) * RS + t] += sum;
                }
    }
}

/* ---- entry points -------------------------------------------------------------------------- */

size_t rn_cpu_bf16_conv2d_scratch_floats(const rn_conv_desc *d, int nthreads) {
    pconv f, b;
    wgeom w;
    pconv_forward(&f, d, nthreads);
    pconv_backward_data(&b, d, nthreads);
    wgeom_init(&w, d, nthreads);
    size_t s = pconv_scratch(&f, nthreads), sb = pconv_scratch(&b, nthreads), sw = wgeom_scratch(&w, nthreads);
    if (sb > s) s = sb;
    if (sw > s) s = sw;
    return s;
}

void rn_cpu_bf16_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                                const rn_conv_desc *d, bool relu, rn_bf16_level level,
                                float *scratch, int nthreads) {
    if (d->N <= 0 || d->K <= 0 || d->Ho <= 0 || d->Wo <= 0) return;
    pconv g;
    pconv_forward(&g, d, nthreads);
    pconv_run(&g, out, in, w, bias, relu, false, rn_bf16_kernels_for(level), scratch, nthreads);
}

/* dbias (K) += sum of dout (N,K,Ho,Wo) over images and pixels, in fp32; channels split. */
static void bias_grad(float *dbias, const float *dout, const rn_conv_desc *d, int nthreads) {
    const size_t HW = (size_t)d->Ho * d->Wo;
#pragma omp parallel for schedule(static) num_threads(nthreads > 0 ? nthreads : 1)
    for (int k = 0; k < d->K; k++) {
        float s = 0.0f;
        for (int n = 0; n < d->N; n++) {
            const float *p = dout + ((size_t)n * d->K + k) * HW;
            for (size_t i = 0; i < HW; i++) s += p[i];
        }
        dbias[k] += s;
    }
}

void rn_cpu_bf16_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                                 const float *in, const float *w, const rn_conv_desc *d,
                                 rn_bf16_level level, float *scratch, int nthreads) {
    if (d->N <= 0 || d->K <= 0 || d->C <= 0 || d->Ho <= 0 || d->Wo <= 0) return;
    const rn_bf16_kernels *kn = rn_bf16_kernels_for(level);
    if (dbias) bias_grad(dbias, dout, d, nthreads);
    if (din) {
        pconv g;
        pconv_backward_data(&g, d, nthreads);
        pconv_run(&g, din, dout, w, NULL, false, true, kn, scratch, nthreads);
    }
    if (dw) {
        wgeom g;
        wgeom_init(&g, d, nthreads);
        wgrad_run(&g, dw, dout, in, kn, scratch, nthreads);
    }
}
