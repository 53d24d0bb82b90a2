/*
 * conv_bf16.c — bf16 convolutions on NCHW fp32 tensors: forward, backward-data and
 * backward-weights, each an implicit GEMM over bf16 pairs cut into the tiles of bf16.h.
 * Inputs are rounded to bf16 where they are packed; every sum is fp32.
 *
 * Forward and backward-data share one driver, a "padded convolution":
 *     out[m][py + y*so][px + x*so] (+)= sum_{taps t, j} A[m][t][j] * img[j][y*sp + r_t][x*sp + s_t]
 * where img is the source with rows and columns of zeros around it, held as bf16 channel
 * pairs (img[j/2][Y][X] one uint32). The forward is that with A = w, source = in, sp = stride,
 * so = 1 and one phase (py = px = 0) holding every tap. Backward-data is the transposed
 * convolution: A = w with input and output channels swapped and the taps flipped, source =
 * dout, sp = 1; for stride s the input pixels fall into s*s phases (py, px) = (y%s, x%s),
 * each a stride-1 correlation of dout with only the taps that reach it (so = s), so nothing is
 * multiplied by the zeros a dilated dout would hold. Its results are added to din.
 * The contraction runs over (tap, channel pair), the columns over output pixels: per block of
 * 48 pixels every block of 8 output channels is one tile, reading the pair image in place
 * where each vector of 16 pixels is one run of a row, else a B panel gathered in cache. Small
 * images go in groups so that blocks are full; a block within one image of a single-phase
 * pass is stored in place, others through a staging tile. Where the packed filter outgrows L2
 * (deep layers), up to 8 blocks run together over chunks of the contraction, sharing each
 * chunk of the filter from cache.
 *
 * Backward-weights: dw[k][(r, s, c)] += sum over pixels of dout[k][p] * in[c][p + (r, s)],
 * the contraction over pairs of pixels: per chunk of ~512 pixels the input is copied into a
 * padded HWC bf16 image, dout into pairs of pixels per block of 8 output channels, and for each
 * block of 48 (r, s, c) columns the pixel pairs are gathered into a B panel. Each thread sums
 * its images into its own partial dw; the partials are added in thread order at the end, so
 * results are bit-identical for a fixed thread count.
 *
 * Threads: forward and backward-data split (group of images, phase, run of blocks) items
 * statically; backward-weights splits images. No allocation: scratch comes from the caller.
 */
#include "bf16.h"

#include "conv_tiles.h" /* rn_thread_id, rn_thread_count */

#include <string.h>

#define MR RN_BF16_MR
#define NB RN_BF16_NB

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* ---- the padded convolution (forward, backward-data) -------------------------------------- */

/* One phase: the output pixels (py + i*so, px + j*so), i < Hg, j < Wg, and the taps that reach
 * them (the forward and a stride-1 backward-data have one phase holding every tap). */
typedef struct {
    int Hg, Wg;            /* the phase's output grid */
    int py, px;            /* its first output pixel */
    int tap0, ntap;        /* its taps: [tap0, tap0 + ntap) of the tap tables */
} phase;

typedef struct {
    int N, M;              /* images, output channels (GEMM rows) */
    int Cs, Hs, Ws;        /* source channels and image */
    int R, S, st, pad;     /* the convolution's */
    bool bwd;              /* backward-data (A = w transposed and flipped; phases) */
    int Hout, Wout, nout;  /* output image */
    int sp, so;            /* pixel step in the source per output pixel; between phase pixels */
    int top, left, Hq, Wq; /* source at (top, left) of a zero-padded Hq x Wq image */
    int C2, nph, MB, G;    /* channel pairs, phases, row blocks of 8, images per group */
    int bpg;               /* pixel blocks per group and phase (the largest phase) */
    int SB, kc;            /* blocks run together, contraction pairs per chunk (see below) */
    size_t img;            /* uint32 per padded pair image */
    size_t a_off, koff_off, ph_off, tap_off, shared_end; /* scratch, in floats */
    size_t t_img, t_b, t_stage, t_poff, t_ooff, per_thread;
} pconv;

/* Images per group: up to gmax, at most `most` pixels unless one image has more, fewest
 * columns wasted in the last vector of 16 (on a tie the fewest images, or with `wide` the
 * most: wider blocks). */
static int pick_group(int npix, int N, int gmax, int most, bool wide) {
    int best = 1;
    double best_waste = 1e9;
    for (int g = 1; g <= gmax && g <= N; g++) {
        if (g > 1 && g * npix > most) break;
        const double cols = (double)g * npix, waste = (16.0 * cdiv(g * npix, 16) - cols) / cols;
        if (waste < best_waste - 1e-9 || (wide && waste < best_waste + 1e-9)) best = g, best_waste = waste;
    }
    return best;
}

/* Backward-data taps (r, q) index the flipped filter of a stride-1 correlation over the
 * output gradient spread st apart after pt = R-1-pad zeros: tap r reaches output row
 * py + i*st from gradient row i + (r + py - pt)/st when st divides r + py - pt. */
static bool tap_in_phase(const pconv *g, int r, int q, int py, int px) {
    if (!g->bwd) return true;
    return (r + py - (g->R - 1 - g->pad)) % g->st == 0 && (q + px - (g->S - 1 - g->pad)) % g->st == 0;
}
/* Source rows / columns of tap r (q) of a phase, relative to the phase pixel's base. */
static int tap_row(const pconv *g, int r, int py) {
    return g->bwd ? g->top + (r + py - (g->R - 1 - g->pad)) / g->st : r;
}
static int tap_col(const pconv *g, int q, int px) {
    return g->bwd ? g->left + (q + px - (g->S - 1 - g->pad)) / g->st : q;
}

/* The phase table and the tap tables (tap weight index r*S+q, source offset row*Wq+col). */
static void build_phases(const pconv *g, phase *ph, int *tw, int *toff) {
    const int s = g->bwd ? g->st : 1;
    int ntaps = 0;
    for (int p = 0; p < g->nph; p++) {
        phase *f = &ph[p];
        f->py = p / s, f->px = p % s;
        f->Hg = g->Hout > f->py ? cdiv(g->Hout - f->py, s) : 0;
        f->Wg = g->Wout > f->px ? cdiv(g->Wout - f->px, s) : 0;
        f->tap0 = ntaps;
        for (int r = 0; r < g->R; r++)
            for (int q = 0; q < g->S; q++)
                if (tap_in_phase(g, r, q, f->py, f->px)) {
                    if (tw) {
                        tw[ntaps] = r * g->S + q;
                        toff[ntaps] = tap_row(g, r, f->py) * g->Wq + tap_col(g, q, f->px);
                    }
                    ntaps++;
                }
        f->ntap = ntaps - f->tap0;
    }
}

static void pconv_layout(pconv *g, int nthreads) {
    g->nout = g->Hout * g->Wout;
    g->C2 = cdiv(g->Cs, 2);
    g->MB = cdiv(g->M, MR);
    g->nph = g->bwd ? g->st * g->st : 1;
    if (!g->bwd) {
        g->sp = g->st, g->so = 1;
        g->top = g->left = g->pad;
        g->Hq = (g->Hout - 1) * g->st + g->R;
        g->Wq = (g->Wout - 1) * g->st + g->S;
    } else { /* the padding every phase's taps need around the gradient */
        g->sp = 1, g->so = g->st;
        const int pt = g->R - 1 - g->pad, pl = g->S - 1 - g->pad;
        int top = 0, left = 0, bottom = g->Hs, right = g->Ws;
        for (int py = 0; py < g->st; py++)
            for (int r = 0; r < g->R; r++)
                if ((r + py - pt) % g->st == 0) {
                    const int e = (r + py - pt) / g->st, hg = g->Hout > py ? cdiv(g->Hout - py, g->st) : 0;
                    if (-e > top) top = -e;
                    if (hg - 1 + e + 1 > bottom) bottom = hg + e;
                }
        for (int px = 0; px < g->st; px++)
            for (int q = 0; q < g->S; q++)
                if ((q + px - pl) % g->st == 0) {
                    const int e = (q + px - pl) / g->st, wg = g->Wout > px ? cdiv(g->Wout - px, g->st) : 0;
                    if (-e > left) left = -e;
                    if (wg + e > right) right = wg + e;
                }
        g->top = top, g->left = left;
        g->Hq = top + bottom;
        g->Wq = left + right;
    }
    const int Hg0 = cdiv(g->Hout, g->so), Wg0 = cdiv(g->Wout, g->so); /* phase 0, the largest */
    const size_t kp_all = (size_t)g->R * g->S * g->C2; /* pairs over every phase */
    /* Where the packed filter outgrows the L2 cache (deep layers: megabytes), each block would
     * stream all of it from memory. Then up to 8 blocks run together, the contraction cut in
     * chunks of kc pairs whose filter (every row block, <= 256 KB) they share from cache. */
    const size_t a_bytes = (size_t)g->MB * MR * kp_all * 4;
    const int nt = nthreads > 0 ? nthreads : 1;
    if (a_bytes > ((size_t)512 << 10)) {
        g->SB = 8;
        g->kc = (int)(((size_t)256 << 10) / ((size_t)g->MB * MR * 4));
        if (g->kc < 16) g->kc = 16;
        int most = g->SB * NB, share = g->N / (2 * nt); /* keep 2 groups per thread */
        g->G = pick_group(Hg0 * Wg0, g->N, share > 1 ? share : 1, most, true);
    } else {
        g->SB = 1;
        g->kc = (int)kp_all;
        g->G = pick_group(Hg0 * Wg0, g->N, 4, 256, false);
    }
    g->bpg = cdiv(g->G * Hg0 * Wg0, NB);
    if (g->SB > g->bpg) g->SB = g->bpg;
    if (g->kc > (int)kp_all) g->kc = (int)kp_all;
    g->img = (size_t)g->C2 * g->Hq * g->Wq;
    size_t o = 0;
    g->a_off = o; o += up16((size_t)g->MB * MR * kp_all);
    g->koff_off = o; o += up16(kp_all);
    g->ph_off = o; o += up16((size_t)g->nph * sizeof(phase) / sizeof(float) + 1);
    g->tap_off = o; o += up16(2 * (size_t)g->R * g->S);
    g->shared_end = o;
    size_t t = 0;
    g->t_img = t; t += up16((size_t)g->G * g->img + 16); /* + what a whole last vector reads */
    g->t_b = t; t += up16((size_t)g->SB * g->kc * NB);
    g->t_stage = t; t += up16((size_t)g->MB * MR * g->SB * NB);
    g->t_poff = t; t += up16((size_t)g->SB * NB);
    g->t_ooff = t; t += up16((size_t)g->SB * NB);
    g->per_thread = t;
}

static void pconv_forward(pconv *g, const rn_conv_desc *d, int nthreads) {
    *g = (pconv){.N = d->N, .M = d->K, .Cs = d->C, .Hs = d->H, .Ws = d->W, .R = d->R, .S = d->S,
                 .st = d->stride, .pad = d->pad, .bwd = false, .Hout = d->Ho, .Wout = d->Wo};
    pconv_layout(g, nthreads);
}

static void pconv_backward_data(pconv *g, const rn_conv_desc *d, int nthreads) {
    *g = (pconv){.N = d->N, .M = d->C, .Cs = d->K, .Hs = d->Ho, .Ws = d->Wo, .R = d->R, .S = d->S,
                 .st = d->stride, .pad = d->pad, .bwd = true, .Hout = d->H, .Wout = d->W};
    pconv_layout(g, nthreads);
}

static size_t pconv_scratch(const pconv *g, int nthreads) {
    return g->shared_end + (size_t)(nthreads > 0 ? nthreads : 1) * g->per_thread;
}

/* A, per phase [MB][kp][8], from w (K,C,R,S); a phase's contraction index is
 * (its tap t)*C2 + j/2. Rows past M and channels past Cs are zeros. Row blocks are split among
 * the calling team. */
static void pack_a(uint32_t *A, const float *w, const pconv *g, const phase *ph, const int *tw) {
    const int RS = g->R * g->S;
    /* element (row, source channel j) of tap `tap` (flipped for backward-data) */
    const long srow = g->bwd ? RS : (long)g->Cs * RS, sj = g->bwd ? (long)g->M * RS : RS;
#pragma omp for schedule(static)
    for (int mb = 0; mb < g->MB; mb++)
        for (int p = 0; p < g->nph; p++) {
            const int kp = ph[p].ntap * g->C2;
            uint32_t *Ap = A + (size_t)ph[p].tap0 * g->C2 * g->MB * MR + (size_t)mb * kp * MR;
            for (int t = 0; t < ph[p].ntap; t++) {
                const int tap = g->bwd ? RS - 1 - tw[ph[p].tap0 + t] : tw[ph[p].tap0 + t];
                for (int m = 0; m < MR; m++) {
                    const int row = mb * MR + m;
                    uint32_t *dst = Ap + (size_t)t * g->C2 * MR + m;
                    if (row >= g->M) {
                        for (int c2 = 0; c2 < g->C2; c2++) dst[(size_t)c2 * MR] = 0;
                        continue;
                    }
                    const float *src = w + row * srow + tap;
                    for (int c2 = 0; c2 < g->Cs / 2; c2++)
                        dst[(size_t)c2 * MR] = rn_bf16_pair(src[2 * c2 * sj], src[(2 * c2 + 1) * sj]);
                    if (g->Cs % 2) dst[(size_t)(g->C2 - 1) * MR] = rn_bf16_pair(src[(g->Cs - 1) * sj], 0.0f);
                }
            }
        }
}

/* The padded pair image of source image n of src (N,Cs,Hs,Ws) into dst (C2,Hq,Wq): the
 * interior converted plane by plane, the border (only) cleared. */
static void build_image(uint32_t *dst, const float *src, int n, const pconv *g,
                        const rn_bf16_kernels *kn) {
    const int h1 = g->Hs < g->Hq - g->top ? g->Hs : g->Hq - g->top;
    const int w1 = g->Ws < g->Wq - g->left ? g->Ws : g->Wq - g->left;
    const size_t plane = (size_t)g->Hq * g->Wq;
    if (h1 <= 0 || w1 <= 0) {
        memset(dst, 0, sizeof(uint32_t) * g->img);
        return;
    }
    for (int c2 = 0; c2 < g->C2; c2++) {
        uint32_t *d = dst + c2 * plane;
        memset(d, 0, sizeof(uint32_t) * g->top * g->Wq);
        for (int y = g->top; y < g->top + h1; y++) {
            memset(d + (size_t)y * g->Wq, 0, sizeof(uint32_t) * g->left);
            memset(d + (size_t)y * g->Wq + g->left + w1, 0, sizeof(uint32_t) * (g->Wq - g->left - w1));
        }
        memset(d + (size_t)(g->top + h1) * g->Wq, 0, sizeof(uint32_t) * (g->Hq - g->top - h1) * g->Wq);
        const float *lo = src + ((size_t)n * g->Cs + 2 * c2) * g->Hs * g->Ws;
        const float *hi = 2 * c2 + 1 < g->Cs ? lo + (size_t)g->Hs * g->Ws : NULL;
        kn->pair_plane(d + (size_t)g->top * g->Wq + g->left, g->Wq, lo, hi, g->Ws, h1, w1);
    }
}

/* out (N,M,Hout,Wout) (+)= the padded convolution of src (N,Cs,Hs,Ws) by w, + bias. */
static void pconv_run(const pconv *g, float *out, const float *src, const float *w,
                      const float *bias, bool relu, bool accumulate, const rn_bf16_kernels *kn,
                      float *scratch, int nthreads) {
    uint32_t *A = (uint32_t *)(scratch + g->a_off);
    int *koff = (int *)(scratch + g->koff_off), *tw = (int *)(scratch + g->tap_off);
    int *toff = tw + g->R * g->S;
    phase *ph = (phase *)(scratch + g->ph_off);
    build_phases(g, ph, tw, toff);
    for (int t = 0; t < ph[g->nph - 1].tap0 + ph[g->nph - 1].ntap; t++)
        for (int c2 = 0; c2 < g->C2; c2++) koff[t * g->C2 + c2] = (int)((size_t)c2 * g->Hq * g->Wq) + toff[t];
    const int ngroups = cdiv(g->N, g->G), nsb = cdiv(g->bpg, g->SB);
    const long items = (long)ngroups * g->nph * nsb; /* (group, phase, run of SB blocks) */

#pragma omp parallel num_threads(nthreads > 0 ? nthreads : 1)
    {
        pack_a(A, w, g, ph, tw); /* ends with a barrier */
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *base = scratch + g->shared_end + (size_t)tid * g->per_thread;
        uint32_t *imgs = (uint32_t *)(base + g->t_img), *Bs = (uint32_t *)(base + g->t_b);
        float *stage = base + g->t_stage;
        int *poffs = (int *)(base + g->t_poff), *ooffs = (int *)(base + g->t_ooff);
        const long ldst = (long)g->SB * NB; /* stage: [M rows][SB blocks x NB columns] */
        const long lo = items * tid / nt, hi = items * (tid + 1) / nt;
        int cur = -1;
        for (long it = lo; it < hi; it++) {
            const int grp = (int)(it / ((long)g->nph * nsb));
            const int p = (int)(it / nsb % g->nph), sb = (int)(it % nsb);
            const phase *f = &ph[p];
            const int n0 = grp * g->G, gn = g->N - n0 < g->G ? g->N - n0 : g->G;
            const int npix = f->Hg * f->Wg, gpix = gn * npix;
            int nblk = 0; /* blocks of this run that hold pixels */
            while (nblk < g->SB && (sb * g->SB + nblk) * NB < gpix) nblk++;
            if (nblk == 0 || f->ntap == 0) continue;
            if (grp != cur)
                for (int i = 0; i < gn; i++) build_image(imgs + i * g->img, src, n0 + i, g, kn);
            cur = grp;
            int ncols[8], nv[8];
            bool runs[8], direct[8];
            for (int b = 0; b < nblk; b++) {
                const int p0 = (sb * g->SB + b) * NB;
                int *poff = poffs + b * NB, *ooff = ooffs + b * NB;
                ncols[b] = gpix - p0 < NB ? gpix - p0 : NB;
                nv[b] = cdiv(ncols[b], 16);
                const int im0 = p0 / npix, im1 = (p0 + ncols[b] - 1) / npix;
                runs[b] = true; /* every vector one run of consecutive source pixels */
                direct[b] = im0 == im1 && g->nph == 1 && g->so == 1; /* tiles into out */
                if (direct[b] && f->Wg % 16 == 0 && g->sp == 1) { /* vectors are pieces of rows */
                    for (int v = 0; v < nv[b]; v++) {
                        const int pi = p0 - im0 * npix + v * 16;
                        poff[v * 16] = (int)(im0 * g->img) + pi / f->Wg * g->Wq + pi % f->Wg;
                    }
                    ooff[0] = (int)((size_t)im0 * g->M * g->nout) + (p0 - im0 * npix);
                    continue;
                }
                /* source and output offsets of every pixel, walking (image, row, column) */
                int im = im0, y = p0 % npix / f->Wg, x = p0 % npix % f->Wg;
                for (int i = 0; i < ncols[b]; i++) {
                    poff[i] = (int)(im * g->img) + y * g->sp * g->Wq + x * g->sp;
                    ooff[i] = (int)((size_t)im * g->M * g->nout) + (f->py + y * g->so) * g->Wout + f->px + x * g->so;
                    if (i % 16 && poff[i] != poff[i - 1] + 1) runs[b] = false;
                    if (++x == f->Wg && (x = 0, ++y == f->Hg)) y = 0, im++;
                }
            }
            const int kp = f->ntap * g->C2;
            const int *kof = koff + f->tap0 * g->C2;
            const uint32_t *Ap = A + (size_t)f->tap0 * g->C2 * g->MB * MR;
            float *ob = out + (size_t)n0 * g->M * g->nout;
            for (int k0 = 0; k0 < kp; k0 += g->kc) { /* chunks of the contraction */
                const int kn_ = kp - k0 < g->kc ? kp - k0 : g->kc;
                const bool first = k0 == 0, last = k0 + kn_ == kp;
                for (int b = 0; b < nblk; b++)
                    if (!runs[b])
                        kn->gather(Bs + (size_t)b * g->kc * NB, 16 * nv[b], imgs, kof + k0, kn_,
                                   poffs + b * NB, ncols[b], nv[b]);
                for (int mb = 0; mb < g->MB; mb++) {
                    const int mr = g->M - mb * MR < MR ? g->M - mb * MR : MR;
                    for (int b = 0; b < nblk; b++) {
                        rn_bf16_tile_args t = {
                            .a = Ap + ((size_t)mb * kp + k0) * MR, .b = Bs + (size_t)b * g->kc * NB,
                            .b_stride = 16 * nv[b], .kp = kn_, .nv = nv[b], .ncols = ncols[b],
                            .mr = mr, .bias = bias ? bias + mb * MR : NULL, .relu = relu && last,
                        };
                        if (runs[b]) { /* read the pair image in place */
                            t.b = imgs, t.koff = kof + k0;
                            for (int v = 0; v < nv[b]; v++) t.boff[v] = poffs[b * NB + v * 16];
                        }
                        if (direct[b]) {
                            t.c = ob + (size_t)mb * MR * g->nout + ooffs[b * NB];
                            t.ldc = g->nout;
                            t.accumulate = accumulate || !first;
                        } else {
                            t.c = stage + (size_t)mb * MR * ldst + b * NB;
                            t.ldc = ldst;
                            t.accumulate = !first;
                        }
                        kn->tile(&t);
                    }
                }
            }
            for (int b = 0; b < nblk; b++) { /* staged blocks to out */
                if (direct[b]) continue;
                const int *ooff = ooffs + b * NB;
                for (int m = 0; m < g->M; m++) {
                    float *o = ob + (size_t)m * g->nout;
                    const float *s = stage + (size_t)m * ldst + b * NB;
                    if (accumulate)
                        for (int i = 0; i < ncols[b]; i++) o[ooff[i]] += s[i];
                    else
                        for (int i = 0; i < ncols[b]; i++) o[ooff[i]] = s[i];
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

void rn_cpu_bf16_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                                 const float *in, const float *w, const rn_conv_desc *d,
                                 rn_bf16_level level, float *scratch, int nthreads) {
    if (d->N <= 0 || d->K <= 0 || d->C <= 0 || d->Ho <= 0 || d->Wo <= 0) return;
    const rn_bf16_kernels *kn = rn_bf16_kernels_for(level);
    if (dbias) rn_conv_bias_grad(dbias, dout, d, nthreads);
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
