/*
 * conv.c — the fast CPU convolution: forward, backward-data and backward-weights of any
 * 2-D convolution (any kernel size, stride, padding) on NCHW tensors, cut into the register
 * tiles of conv_tiles.h, which work on channel blocks of 16 (one AVX-512 register).
 *
 * Images go in groups: each thread copies a group's inputs into zero-padded channel-blocked
 * buffers (CB,Hp,Wp,16) in its scratch (the layout conversion costs one pass, in cache), so
 * tiles never test bounds; outputs leave the same way, a group's blocks back to NCHW. A
 * group holds as many images as it takes for their activations to outweigh the weights,
 * which are then read from memory once per group rather than once per image (deep layers:
 * megabytes of weights, a few kilobytes of pixels per image). Then:
 *   forward         out[ho][wo] = sum over taps and input channels of in * w: each output
 *                   tile (P pixels x KB blocks of 16 channels) is computed whole, in
 *                   registers, and written once.
 *   backward-data   din = transposed convolution of dout. For stride s the input pixels fall
 *                   into s*s phases (hi%s, wi%s); each phase is an ordinary stride-1
 *                   correlation of the padded dout with the taps that reach it, so the same
 *                   output tiles serve (writing every s-th pixel).
 *   backward-weight dw[k][c][r][s] = sum over pixels of dout * in: tiles of T taps x KC
 *                   output channels, vectors over 16 input channels, summed over a whole
 *                   group of images in registers, then added into the thread's partial dw.
 * Threads split images (forward: images x channel groups) statically; the partial weight
 * gradients are added in thread order, so results are bit-identical for a fixed thread count
 * (the forward and backward-data results do not depend on the thread count at all).
 */
#include "conv_tiles.h"
#include "wino.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- geometry and scratch layout --------------------------------------------------------- */

typedef struct {
    int N, C, H, W, K, R, S, st, pad, Ho, Wo;
    int CB, KB, RS;
    int Hp, Wp;          /* zero-padded input image: H + 2 pad */
    int pdh, pdw;        /* zero rows / columns before dout in its padded copy */
    int Hdp, Wdp;        /* zero-padded dout image */
    int G;               /* images per group */
    size_t in_img, dout_img; /* floats of one padded input / dout image */
    /* scratch offsets in floats; per-thread regions repeat every `per_thread` floats */
    size_t w_fwd, w_bwd, bias, taps, shared_end;
    size_t t_in, t_dout, t_img, t_dw, t_db, per_thread;
} geom;

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }

static void geom_init(geom *g, const rn_conv_desc *d, int nthreads) {
    g->N = d->N; g->C = d->C; g->H = d->H; g->W = d->W;
    g->K = d->K; g->R = d->R; g->S = d->S; g->st = d->stride; g->pad = d->pad;
    g->Ho = d->Ho; g->Wo = d->Wo;
    g->CB = rn_cblocks(d->C);
    g->KB = rn_cblocks(d->K);
    g->RS = d->R * d->S;
    g->Hp = d->H + 2 * d->pad;
    g->Wp = d->W + 2 * d->pad;
    g->pdh = (d->R - 1 + d->stride - 1) / d->stride;
    g->pdw = (d->S - 1 + d->stride - 1) / d->stride;
    int hmax = (d->H - 1 + d->pad) / d->stride + 1, wmax = (d->W - 1 + d->pad) / d->stride + 1;
    g->Hdp = g->pdh + (d->Ho > hmax ? d->Ho : hmax) + 1;
    g->Wdp = g->pdw + (d->Wo > wmax ? d->Wo : wmax) + 1;

    size_t wsz = (size_t)g->KB * g->CB * g->RS * 256;
    g->in_img = (size_t)g->CB * g->Hp * g->Wp * 16;
    g->dout_img = (size_t)g->KB * g->Hdp * g->Wdp * 16;
    /* images per group: enough that their activations outweigh the weights, at most a
     * thread's share of the batch, at most ~16 MB of padded copies */
    const size_t per_image = g->in_img + g->dout_img;
    const int share = (d->N + (nthreads > 0 ? nthreads : 1) - 1) / (nthreads > 0 ? nthreads : 1);
    size_t G = (wsz + per_image - 1) / per_image;
    if (G > (size_t)share) G = (size_t)share;
    if (G * per_image > ((size_t)4 << 20)) G = ((size_t)4 << 20) / per_image;
    g->G = G < 1 ? 1 : (int)G;
    size_t o = 0;
    g->w_fwd = o; o += up16(wsz);
    g->w_bwd = o; o += up16(wsz);
    g->bias = o; o += up16((size_t)g->KB * 16);
    /* taps: forward RS x (in, w); backward st*st phases x (count + RS x (in, w)), then RS
     * input offsets for the small-channel weight gradient */
    g->taps = o; o += up16(3 * (size_t)g->RS + (size_t)g->st * g->st * (1 + 2 * (size_t)g->RS));
    g->shared_end = o;
    size_t t = 0;
    g->t_in = t; t += up16((size_t)g->G * g->in_img);
    g->t_dout = t; t += up16((size_t)g->G * g->dout_img);
    size_t img_out = (size_t)g->KB * g->Ho * g->Wo * 16, img_in = (size_t)g->CB * g->H * g->W * 16;
    g->t_img = t; t += up16(img_out > img_in ? img_out : img_in);
    g->t_dw = t; t += up16(wsz);
    g->t_db = t; t += up16((size_t)g->KB * 16);
    g->per_thread = t;
}

/* Whether this shape runs the Winograd drivers (conv_wino.c). */
static bool use_wino(const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg) {
    if (cfg->algo == RN_CONV_DIRECT || !rn_wino_applicable(d)) return false;
    if (cfg->algo == RN_CONV_WINOGRAD) return true;
    /* Below 16 channels the transforms cost more than they save; at 512 channels on 4x4
     * images the transformed filters (36x the weights) no longer stay in cache; and the error
     * grows with the channel count. The measurements behind these bounds: BENCHMARKS.md,
     * "Winograd", and dev/cpu/README.md. */
    return d->C >= 16 && d->K >= 16 && d->C <= 256 && d->K <= 256;
}

size_t rn_cpu_conv2d_scratch_floats(const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg) {
    if (use_wino(d, cfg)) return rn_wino_scratch_floats(d, cfg);
    geom g;
    geom_init(&g, d, cfg->nthreads);
    int nt = cfg->nthreads > 0 ? cfg->nthreads : 1;
    return g.shared_end + (size_t)nt * g.per_thread;
}

/* cfg with its ISA lowered to what this CPU runs (a caller asking for more gets the best
 * level there is rather than an illegal instruction). */
static rn_cpu_conv_cfg checked(const rn_cpu_conv_cfg *cfg) {
    rn_cpu_conv_cfg c = *cfg;
    rn_isa top = rn_cpu_isa_supported();
    if (c.isa > top) c.isa = top;
    return c;
}

/* x = max(x, 0) over n floats, rn_relu_forward on an equal slice per thread. */
static void relu_threads(float *x, size_t n, int nthreads) {
#pragma omp parallel num_threads(nthreads > 0 ? nthreads : 1)
    {
        const size_t t = (size_t)rn_thread_id(), nt = (size_t)rn_thread_count();
        const size_t lo = n * t / nt, hi = n * (t + 1) / nt;
        rn_relu_forward(x + lo, x + lo, hi - lo);
    }
}

/* Packs w (K,C,R,S) for forward tiles: dst[kb][cb][r][s][c16][k16]. transpose: for the
 * backward-data tiles instead, dst[cb][kb][r][s][k16][c16] (input and output swapped). Lanes
 * past K or C are zero. Rows of the outer block are split among the calling team. */
static void pack_weights(float *dst, const float *w, const geom *g, bool transpose) {
    int OB = transpose ? g->CB : g->KB, IB = transpose ? g->KB : g->CB;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (int ob = 0; ob < OB; ob++)
        for (int ib = 0; ib < IB; ib++)
            for (int t = 0; t < g->RS; t++) {
                float *blk = dst + (((size_t)ob * IB + ib) * g->RS + t) * 256;
                for (int i = 0; i < 16; i++)      /* input channel lane */
                    for (int o = 0; o < 16; o++) { /* output channel lane */
                        int k = transpose ? ib * 16 + i : ob * 16 + o;
                        int c = transpose ? ob * 16 + o : ib * 16 + i;
                        blk[i * 16 + o] = k < g->K && c < g->C ? w[((size_t)k * g->C + c) * g->RS + t] : 0.0f;
                    }
            }
}

/* ---- forward ------------------------------------------------------------------------------ */

void rn_cpu_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                           const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg_in, float *scratch) {
    if (d->N <= 0 || d->Ho <= 0 || d->Wo <= 0 || d->K <= 0) return;
    const rn_cpu_conv_cfg cfg_c = checked(cfg_in), *cfg = &cfg_c;
    if (use_wino(d, cfg)) {
        rn_wino_forward(out, in, w, bias, d, cfg, scratch);
        if (cfg->relu) relu_threads(out, (size_t)d->N * d->K * d->Ho * d->Wo,
                                    cfg->nthreads);
        return;
    }
    geom g;
    geom_init(&g, d, cfg->nthreads);
    const rn_isa isa = cfg->isa;
    float *wpk = scratch + g.w_fwd;
    float *biasp = bias ? scratch + g.bias : NULL;
    int *tap_in = (int *)(scratch + g.taps), *tap_w = tap_in + g.RS;
    for (int r = 0; r < g.R; r++)
        for (int s = 0; s < g.S; s++) {
            tap_in[r * g.S + s] = (r * g.Wp + s) * 16;
            tap_w[r * g.S + s] = (r * g.S + s) * 256;
        }
    if (biasp)
        for (int k = 0; k < g.KB * 16; k++) biasp[k] = k < g.K ? bias[k] : 0.0f;

    const int kbt = rn_pick_kb(isa, g.KB, g.Wo, cfg->tile_kb);
    const int ngroups = (g.KB + kbt - 1) / kbt;
    const int nimg_groups = (g.N + g.G - 1) / g.G;
    const long items = (long)nimg_groups * ngroups; /* (image group, channel group) */

#pragma omp parallel num_threads(cfg->nthreads > 0 ? cfg->nthreads : 1)
    {
        pack_weights(wpk, w, &g, false); /* ends with a barrier */
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *inpad = scratch + g.shared_end + (size_t)tid * g.per_thread + g.t_in;
        float *img = scratch + g.shared_end + (size_t)tid * g.per_thread + g.t_img;
        memset(inpad, 0, sizeof(float) * g.G * g.in_img);
        rn_row_plan plans[2][2]; /* full groups of kbt blocks; the last, narrower group */
        rn_plan_rows(plans[0], isa, kbt, g.Wo, g.Ho, cfg->tile_p, g.st, 1);
        rn_plan_rows(plans[1], isa, g.KB - (ngroups - 1) * kbt, g.Wo, g.Ho, cfg->tile_p, g.st, 1);
        const long lo = items * tid / nt, hi = items * (tid + 1) / nt;
        int cur = -1;
        for (long it = lo; it < hi; it++) {
            const int grp = (int)(it / ngroups), kg = (int)(it % ngroups);
            const int g0 = grp * g.G, gn = g.N - g0 < g.G ? g.N - g0 : g.G;
            if (grp != cur)
                for (int i = 0; i < gn; i++)
                    rn_pad_image(inpad + i * g.in_img, in, g0 + i, g.C, g.H, g.W, g.Hp, g.Wp, g.pad, g.pad, isa);
            cur = grp;
            const int kb0 = kg * kbt, nkb = g.KB - kb0 < kbt ? g.KB - kb0 : kbt;
            const rn_row_plan *pl = plans[kg == ngroups - 1];
            rn_otile_args a = {
                .w = wpk + (size_t)kb0 * g.CB * g.RS * 256,
                .bias = biasp ? biasp + kb0 * 16 : NULL,
                .tap_in = tap_in, .tap_w = tap_w, .ntaps = g.RS,
                .ncb = g.CB, .cn_last = g.C - 16 * (g.CB - 1),
                .in_cb = (long)g.Hp * g.Wp * 16, .w_cb = (long)g.RS * 256,
                .w_kb = (long)g.CB * g.RS * 256, .out_kb = (long)g.Ho * g.Wo * 16,
                .accumulate = false,
            };
            for (int i = 0; i < gn; i++) {
                const int n = g0 + i;
                float *obase = img + (size_t)kb0 * g.Ho * g.Wo * 16;
                a.out = obase;
                a.in = inpad + i * g.in_img;
                rn_run_rows(pl, &a, g.Ho, (long)g.Wo * 16, (long)g.st * g.Wp * 16, 16, (long)g.st * 16);
                if (cfg->relu) /* on the tile while it is in cache */
                    rn_relu_forward(obase, obase, (size_t)nkb * g.Ho * g.Wo * 16);
                /* this group's channels of image n, to NCHW */
                rn_unblock_image(out, img, n, g.K, g.Ho * g.Wo, kb0, nkb, false, isa);
            }
        }
    }
}

/* ---- backward ----------------------------------------------------------------------------- */

/* Tap lists of the backward-data phases: for phase (ph, pw), the taps (r, s) whose stride
 * congruence reaches input pixels (st*i + ph, st*j + pw), with their offsets into the padded
 * dout copy relative to (i, j) and into the transposed weights. */
static void build_bwd_taps(int *taps, const geom *g) {
    for (int ph = 0; ph < g->st; ph++)
        for (int pw = 0; pw < g->st; pw++) {
            int *cnt = taps + (ph * g->st + pw) * (1 + 2 * g->RS);
            int *ti = cnt + 1, *tw = ti + g->RS;
            *cnt = 0;
            for (int r = 0; r < g->R; r++) {
                if ((ph + g->pad - r) % g->st != 0) continue;
                int er = (ph + g->pad - r) / g->st; /* exact, possibly negative */
                for (int s = 0; s < g->S; s++) {
                    if ((pw + g->pad - s) % g->st != 0) continue;
                    int es = (pw + g->pad - s) / g->st;
                    ti[*cnt] = ((er + g->pdh) * g->Wdp + (es + g->pdw)) * 16;
                    tw[*cnt] = (r * g->S + s) * 256;
                    (*cnt)++;
                }
            }
        }
}

void rn_cpu_conv2d_backward(float *din, float *dw, float *dbias, const float *dout,
                            const float *in, const float *w, const rn_conv_desc *d,
                            const rn_cpu_conv_cfg *cfg_in, float *scratch) {
    if (d->N <= 0 || d->Ho <= 0 || d->Wo <= 0 || d->K <= 0 || d->C <= 0) return;
    const rn_cpu_conv_cfg cfg_c = checked(cfg_in), *cfg = &cfg_c;
    if (!din && !dw && !dbias) return;
    if (use_wino(d, cfg)) {
        if (din || dw) rn_wino_backward(din, dw, dout, in, w, d, cfg, scratch);
        if (dbias) rn_conv_bias_grad(dbias, dout, d, cfg->nthreads);
        return;
    }
    geom g;
    geom_init(&g, d, cfg->nthreads);
    const rn_isa isa = cfg->isa;
    float *wbd = scratch + g.w_bwd;
    int *taps = (int *)(scratch + g.taps) + 2 * g.RS;
    build_bwd_taps(taps, &g);

    /* backward-data tiles: output = din channel blocks, rows of a phase */
    const int st = g.st;
    const int cbt = rn_pick_kb(isa, g.CB, (g.W + st - 1) / st, cfg->tile_kb);
    const int ngroups = (g.CB + cbt - 1) / cbt;
    /* weight-gradient tiles: T taps of a kernel row x KC output channels */
    const int KC = isa == RN_ISA_AVX2 ? 2 : 8;
    const size_t wsz = (size_t)g.KB * g.CB * g.RS * 256;
    /* dout of one image as padded blocked rows */
    const long drow = (long)g.Wdp * 16;
    const long dcb = (long)g.Hdp * g.Wdp * 16;
    const size_t dimg_stride = g.dout_img;
    const size_t dorigin = ((size_t)g.pdh * g.Wdp + g.pdw) * 16;
    /* inputs of at most 3 channels take the weight-gradient tile over output channels */
#if defined(__x86_64__)
    const bool small_c = isa == RN_ISA_AVX512 && g.C <= 3;
#else
    const bool small_c = false;
#endif
    int *ktaps = taps + g.st * g.st * (1 + 2 * g.RS); /* RS input offsets, one per tap */
    for (int r = 0; r < g.R; r++)
        for (int s = 0; s < g.S; s++) ktaps[r * g.S + s] = (r * g.Wp + s) * 16;

#pragma omp parallel num_threads(cfg->nthreads > 0 ? cfg->nthreads : 1)
    {
        if (din) pack_weights(wbd, w, &g, true); /* ends with a barrier */
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *base = scratch + g.shared_end + (size_t)tid * g.per_thread;
        float *inpad = base + g.t_in, *dpad = base + g.t_dout, *img = base + g.t_img;
        float *dwp = base + g.t_dw, *dbp = base + g.t_db;
        if (dw) {
            memset(inpad, 0, sizeof(float) * g.G * g.in_img);
            memset(dwp, 0, sizeof(float) * wsz);
        }
        memset(dpad, 0, sizeof(float) * g.G * g.dout_img);
        if (dbias) memset(dbp, 0, sizeof(float) * g.KB * 16);

        const int n0 = (int)((long)g.N * tid / nt), n1 = (int)((long)g.N * (tid + 1) / nt);
        for (int g0 = n0; g0 < n1; g0 += g.G) {
            const int gn = n1 - g0 < g.G ? n1 - g0 : g.G;
            /* the group's dout and input, as padded copies */
            for (int i = 0; i < gn; i++)
                rn_pad_image(dpad + i * g.dout_img, dout, g0 + i, g.K, g.Ho, g.Wo, g.Hdp, g.Wdp, g.pdh, g.pdw, isa);
            const float *dgrp = dpad;
            if (dw)
                for (int i = 0; i < gn; i++)
                    rn_pad_image(inpad + i * g.in_img, in, g0 + i, g.C, g.H, g.W, g.Hp, g.Wp, g.pad, g.pad, isa);
            const float *igrp = inpad;
            if (dbias)
                for (int i = 0; i < gn; i++)
                    for (int kb = 0; kb < g.KB; kb++)
                        for (int ho = 0; ho < g.Ho; ho++) {
                            const float *row = dgrp + i * dimg_stride + dorigin + kb * dcb + ho * drow;
                            for (int wo = 0; wo < g.Wo; wo++)
                                for (int k = 0; k < 16; k++) dbp[kb * 16 + k] += row[wo * 16 + k];
                        }
            if (dw && small_c) /* image inputs: vectors over output channels */
                for (int kb = 0; kb < g.KB; kb++)
                    for (int t0 = 0; t0 < g.RS; t0 += 9) {
                        const int T = g.RS - t0 < 9 ? g.RS - t0 : 9;
                        rn_ktile_args a = {
                            .dw = dwp + ((size_t)kb * g.CB * g.RS + t0) * 256,
                            .in = igrp, .dout = dgrp + dorigin + kb * dcb, .tap_in = ktaps + t0,
                            .in_row = (long)g.Wp * 16, .dout_row = drow, .si = st, .Ho = g.Ho,
                            .Wo = g.Wo, .nimg = gn, .in_img = (long)g.in_img, .dout_img = (long)dimg_stride,
                        };
#if defined(__x86_64__)
                        (g.R == 3 && g.S == 3 ? rn_ktile33_avx512(g.C) : rn_ktile_avx512(T, g.C))(&a);
#else
                        (void)a;
#endif
                    }
            else if (dw)
                for (int kb = 0; kb < g.KB; kb++)
                    for (int cb = 0; cb < g.CB; cb++)
                        for (int r = 0; r < g.R; r++)
                            for (int s0 = 0; s0 < g.S; s0 += 3) {
                                int T = g.S - s0 < 3 ? g.S - s0 : 3;
                                rn_wtile_fn fn = rn_wtile_get(isa, T, KC);
                                for (int k0 = 0; k0 < 16 && kb * 16 + k0 < g.K; k0 += KC) {
                                    rn_wtile_args a = {
                                        .dw = dwp + (((size_t)kb * g.CB + cb) * g.RS + r * g.S + s0) * 256 + k0 * 16,
                                        .in = igrp + (((size_t)cb * g.Hp + r) * g.Wp + s0) * 16,
                                        .dout = dgrp + dorigin + kb * dcb + k0,
                                        .dw_tap = 256, .in_row = (long)g.Wp * 16, .dout_row = drow,
                                        .si = st, .Ho = g.Ho, .Wo = g.Wo,
                                        .nimg = gn, .in_img = (long)g.in_img, .dout_img = (long)dimg_stride,
                                    };
                                    fn(&a);
                                }
                            }
            if (din)
                for (int gi = 0; gi < ngroups; gi++) {
                    const int cb0 = gi * cbt, ncb = g.CB - cb0 < cbt ? g.CB - cb0 : cbt;
                    for (int i = 0; i < gn; i++) {
                        const int n = g0 + i;
                        for (int ph = 0; ph < st; ph++)
                            for (int pw = 0; pw < st; pw++) {
                                const int *cnt = taps + (ph * st + pw) * (1 + 2 * g.RS);
                                const int Hph = (g.H - ph + st - 1) / st, Wph = (g.W - pw + st - 1) / st;
                                if (Hph <= 0 || Wph <= 0) continue; /* no taps: zeros */
                                rn_row_plan pl[2];
                                rn_plan_rows(pl, isa, ncb, Wph, Hph, cfg->tile_p, 1, st);
                                rn_otile_args a = {
                                    .w = wbd + (size_t)cb0 * g.KB * g.RS * 256,
                                    .bias = NULL,
                                    .tap_in = cnt + 1, .tap_w = cnt + 1 + g.RS, .ntaps = *cnt,
                                    .ncb = g.KB, .cn_last = g.K - 16 * (g.KB - 1),
                                    .in_cb = dcb, .w_cb = (long)g.RS * 256,
                                    .w_kb = (long)g.KB * g.RS * 256, .out_kb = (long)g.H * g.W * 16,
                                    .accumulate = false,
                                };
                                a.out = img + (((size_t)cb0 * g.H + ph) * g.W + pw) * 16;
                                a.in = dpad + i * g.dout_img;
                                rn_run_rows(pl, &a, Hph, (long)st * g.W * 16, (long)g.Wdp * 16, (long)st * 16, 16);
                            }
                        rn_unblock_image(din, img, n, g.C, g.H * g.W, cb0, ncb, true, isa);
                    }
                }
        }
#pragma omp barrier
        /* Partial gradients, added in thread order into thread 0's, then to dw (K,C,R,S) and
         * dbias (K). */
        float *part0 = scratch + g.shared_end;
        if (dw) {
#pragma omp for schedule(static)
            for (long i = 0; i < (long)wsz; i++) {
                float sum = part0[g.t_dw + i];
                for (int th = 1; th < nt; th++) sum += part0[(size_t)th * g.per_thread + g.t_dw + i];
                part0[g.t_dw + i] = sum;
            }
#pragma omp for schedule(static)
            for (int k = 0; k < g.K; k++)
                for (int c = 0; c < g.C; c++)
                    for (int t = 0; t < g.RS; t++)
                        dw[((size_t)k * g.C + c) * g.RS + t] +=
                            part0[g.t_dw + (((size_t)(k / 16) * g.CB + c / 16) * g.RS + t) * 256 + (k % 16) * 16 + c % 16];
        }
        if (dbias) {
#pragma omp single
            for (int k = 0; k < g.K; k++) {
                float sum = 0.0f;
                for (int th = 0; th < nt; th++) sum += part0[(size_t)th * g.per_thread + g.t_db + k];
                dbias[k] += sum;
            }
        }
    }
}
