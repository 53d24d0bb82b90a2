/*
 * conv_wino.c — Winograd F(4x4, 3x3) drivers for 3x3 stride-1 convolutions (see wino.h):
 * forward, backward-data (the same correlation of the padded output gradient with the
 * flipped, transposed filters) and backward-weights.
 *
 * Each thread takes a contiguous range of images, in groups of whole images with about
 * `chunk` 4x4 tiles. For each chunk of tiles, all in the thread's scratch (L2-sized):
 *   V[xi][ib][t][16]  input transform of the 6x6 patches   (36 x input blocks x tiles)
 *   M[xi][ob][t][16]  36 GEMMs over input channels           (the direct conv's tiles, 1x1)
 *   out               output transform, 4x4 pixels per tile (cut at the image border)
 * The weight gradient sums D[xi][kb][t] (transformed output gradients) times V over tiles into
 * a per-thread 36 x K x C partial, added across threads in thread order and transformed back
 * (bit-identical for a fixed thread count).
 */
#include "conv_tiles.h"
#include "wino.h"

#include <string.h>

#define CHUNK_TILES 16

/* A stride-1 3x3 correlation from an input with Cin channels (H x W, zero padding pad) to an
 * output with Cout channels (Ho x Wo = H+2pad-2 x W+2pad-2), cut into 4x4 tiles. */
typedef struct {
    int N, Cin, Cout, H, W, pad, Ho, Wo;
    int IB, OB;
    int TH, TW, TPI; /* tiles per column, per row, per image */
    int Hp, Wp;      /* padded input buffer */
    int ipc;         /* images per group */
    int Tc;          /* tiles per chunk */
} corr;

static void corr_init(corr *c, int N, int Cin, int Cout, int H, int W, int pad, int chunk) {
    c->N = N; c->Cin = Cin; c->Cout = Cout; c->H = H; c->W = W; c->pad = pad;
    c->Ho = H + 2 * pad - 2;
    c->Wo = W + 2 * pad - 2;
    c->IB = rn_cblocks(Cin);
    c->OB = rn_cblocks(Cout);
    c->TH = (c->Ho + 3) / 4;
    c->TW = (c->Wo + 3) / 4;
    c->TPI = c->TH * c->TW;
    c->Hp = H + 2 * pad > 4 * c->TH + 2 ? H + 2 * pad : 4 * c->TH + 2;
    c->Wp = W + 2 * pad > 4 * c->TW + 2 ? W + 2 * pad : 4 * c->TW + 2;
    if (chunk <= 0) chunk = CHUNK_TILES;
    c->ipc = chunk / c->TPI > 1 ? chunk / c->TPI : 1;
    if (c->ipc > N) c->ipc = N > 0 ? N : 1;
    c->Tc = c->ipc * c->TPI < chunk ? c->ipc * c->TPI : chunk;
}

/* Scratch of one call: shared transformed filters, then per thread: padded inputs, padded
 * output gradients (weight gradient), V, M, an output image buffer (NCHW), partial dU. */
typedef struct {
    corr f, b;        /* forward (in -> out) and backward-data (dout -> din) correlations */
    size_t u, bias, shared_end;
    size_t t_in, t_g, t_v, t_m, t_img, t_du, per_thread;
} wlayout;

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t maxz(size_t a, size_t b) { return a > b ? a : b; }

static void wlayout_init(wlayout *L, const rn_conv_desc *d, int chunk) {
    corr_init(&L->f, d->N, d->C, d->K, d->H, d->W, d->pad, chunk);
    corr_init(&L->b, d->N, d->K, d->C, d->Ho, d->Wo, 2 - d->pad, chunk);
    const corr *f = &L->f, *b = &L->b;
    size_t o = 0;
    L->u = o; o += up16((size_t)36 * f->IB * f->OB * 256);
    L->bias = o; o += up16((size_t)f->OB * 16);
    L->shared_end = o;
    size_t t = 0;
    L->t_in = t; t += up16(maxz((size_t)f->ipc * f->IB * f->Hp * f->Wp, (size_t)b->ipc * b->IB * b->Hp * b->Wp) * 16);
    L->t_g = t; t += up16((size_t)f->ipc * f->OB * 4 * f->TH * 4 * f->TW * 16);
    size_t blocks = maxz(f->IB, f->OB);
    size_t tc = maxz(f->Tc, b->Tc);
    L->t_v = t; t += up16((size_t)36 * blocks * tc * 16);
    L->t_m = t; t += up16((size_t)36 * blocks * tc * 16);
    L->t_img = t; t += up16(maxz((size_t)f->ipc * f->OB * f->Ho * f->Wo, (size_t)b->ipc * b->OB * b->Ho * b->Wo) * 16);
    L->t_du = t; t += up16((size_t)36 * f->IB * f->OB * 256);
    L->per_thread = t;
}

bool rn_wino_applicable(const rn_conv_desc *d) {
    return d->R == 3 && d->S == 3 && d->stride == 1 && d->pad >= 0 && d->pad <= 2 && d->Ho > 0 && d->Wo > 0;
}

size_t rn_wino_scratch_floats(const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg) {
    wlayout L;
    wlayout_init(&L, d, cfg->chunk);
    int nt = cfg->nthreads > 0 ? cfg->nthreads : 1;
    return L.shared_end + (size_t)nt * L.per_thread;
}

/* U[xi][ob][ib][i16][o16] = (G g G^T)[xi] of the filter from input channel i to output o;
 * transposed: the backward-data filters (input = K, output = C, flipped 180 degrees). */
static void transform_filters(float *U, const float *w, const rn_conv_desc *d, bool transposed) {
    const int Cin = transposed ? d->K : d->C, Cout = transposed ? d->C : d->K;
    const int IB = rn_cblocks(Cin), OB = rn_cblocks(Cout);
#pragma omp for schedule(static)
    for (int o = 0; o < OB * 16; o++)
        for (int i = 0; i < IB * 16; i++) {
            float g[9] = {0}, u[36];
            if (o < Cout && i < Cin) {
                int k = transposed ? i : o, c = transposed ? o : i;
                const float *src = w + ((size_t)k * d->C + c) * 9;
                for (int t = 0; t < 9; t++) g[t] = transposed ? src[8 - t] : src[t];
            }
            rn_wino_filter(u, g);
            for (int xi = 0; xi < 36; xi++)
                U[(((size_t)xi * OB + o / 16) * IB + i / 16) * 256 + (i % 16) * 16 + o % 16] = u[xi];
        }
}

/* Input transform of tiles [t0, t0+tn) of the group, read from its zero-padded blocked
 * copies `pad` (one (IB,Hp,Wp,16) image after another), into V[xi][ib][t]. */
static void transform_inputs(float *V, const float *pad, const corr *c, const rn_wino_ops *ops,
                             int t0, int tn) {
    const long xs = (long)c->IB * c->Tc * 16;
    const size_t img = (size_t)c->IB * c->Hp * c->Wp * 16;
    for (int t = t0; t < t0 + tn; t++) {
        int ig = t / c->TPI, tt = t % c->TPI, th = tt / c->TW, tw = tt % c->TW;
        float *v = V + (size_t)(t - t0) * 16;
        for (int ib = 0; ib < c->IB; ib++)
            ops->input(v + (size_t)ib * c->Tc * 16, xs,
                       pad + ig * img + (((size_t)ib * c->Hp + 4 * th) * c->Wp + 4 * tw) * 16,
                       (long)c->Wp * 16);
    }
}

/* out (+)= correlation of src (N,Cin,H,W) with the transformed filters U; one thread's images. */
static void corr_run(float *out, const float *src, const float *U, const float *bias,
                     const corr *c, const wlayout *L, const rn_cpu_conv_cfg *cfg, float *tbase,
                     bool accumulate) {
    const rn_isa isa = cfg->isa;
    const rn_wino_ops *ops = rn_wino_ops_get(isa);
    float *inpad = tbase + L->t_in, *V = tbase + L->t_v, *M = tbase + L->t_m, *img = tbase + L->t_img;
    const size_t in_img = (size_t)c->IB * c->Hp * c->Wp * 16, out_img = (size_t)c->OB * c->Ho * c->Wo * 16;
    memset(inpad, 0, sizeof(float) * c->ipc * in_img);

    const int obt = rn_pick_kb(isa, c->OB, c->Tc, cfg->tile_kb);
    const int tid = rn_thread_id(), nt = rn_thread_count();
    const int n0 = (int)((long)c->N * tid / nt), n1 = (int)((long)c->N * (tid + 1) / nt);
    static const int zero_tap[1] = {0};
    for (int g0 = n0; g0 < n1; g0 += c->ipc) {
        const int gi = n1 - g0 < c->ipc ? n1 - g0 : c->ipc;
        for (int ig = 0; ig < gi; ig++)
            rn_pad_image(inpad + ig * in_img, src, g0 + ig, c->Cin, c->H, c->W, c->Hp, c->Wp, c->pad, c->pad, isa);
        const int ntiles = gi * c->TPI;
        for (int t0 = 0; t0 < ntiles; t0 += c->Tc) {
            const int tn = ntiles - t0 < c->Tc ? ntiles - t0 : c->Tc;
            transform_inputs(V, inpad, c, ops, t0, tn);
            for (int ob0 = 0; ob0 < c->OB; ob0 += obt) {
                const int nob = c->OB - ob0 < obt ? c->OB - ob0 : obt;
                rn_row_plan pl;
                rn_plan_row(&pl, isa, nob, tn, 0, 1, 1);
                rn_otile_args a = {
                    .out = M + (size_t)ob0 * c->Tc * 16, .in = V,
                    .w = U + (size_t)ob0 * c->IB * 256, .bias = NULL,
                    .tap_in = zero_tap, .tap_w = zero_tap, .ntaps = 1,
                    .ncb = c->IB, .cn_last = c->Cin - 16 * (c->IB - 1),
                    .in_cb = (long)c->Tc * 16, .w_cb = 256, .w_kb = (long)c->IB * 256,
                    .out_kb = (long)c->Tc * 16, .accumulate = false,
                    .nbatch = 36, .in_bs = (long)c->IB * c->Tc * 16,
                    .w_bs = (long)c->OB * c->IB * 256, .out_bs = (long)c->OB * c->Tc * 16,
                };
                rn_run_row(&pl, &a, 16, 16);
            }
            for (int t = t0; t < t0 + tn; t++) {
                int ig = t / c->TPI, tt = t % c->TPI, th = tt / c->TW, tw = tt % c->TW;
                int nr = c->Ho - 4 * th < 4 ? c->Ho - 4 * th : 4, nc = c->Wo - 4 * tw < 4 ? c->Wo - 4 * tw : 4;
                float *dst = img + ig * out_img;
                for (int ob = 0; ob < c->OB; ob++)
                    ops->output(dst + (((size_t)ob * c->Ho + 4 * th) * c->Wo + 4 * tw) * 16, (long)c->Wo * 16,
                                M + ((size_t)ob * c->Tc + (t - t0)) * 16, (long)c->OB * c->Tc * 16, nr, nc,
                                bias ? bias + ob * 16 : NULL);
            }
        }
        for (int ig = 0; ig < gi; ig++)
            rn_unblock_image(out, img + ig * out_img, g0 + ig, c->Cout, c->Ho * c->Wo, 0, c->OB, accumulate, isa);
    }
}

void rn_wino_forward(float *out, const float *in, const float *w, const float *bias,
                     const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch) {
    wlayout L;
    wlayout_init(&L, d, cfg->chunk);
    float *U = scratch + L.u;
    float *biasp = bias ? scratch + L.bias : NULL;
    if (biasp)
        for (int k = 0; k < L.f.OB * 16; k++) biasp[k] = k < d->K ? bias[k] : 0.0f;
#pragma omp parallel num_threads(cfg->nthreads > 0 ? cfg->nthreads : 1)
    {
        transform_filters(U, w, d, false); /* ends with a barrier */
        float *tbase = scratch + L.shared_end + (size_t)rn_thread_id() * L.per_thread;
        corr_run(out, in, U, biasp, &L.f, &L, cfg, tbase, false);
    }
}

void rn_wino_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                      const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg, float *scratch) {
    wlayout L;
    wlayout_init(&L, d, cfg->chunk);
    float *U = scratch + L.u;
    const corr *f = &L.f;
    const rn_isa isa = cfg->isa;
    const rn_wino_ops *ops = rn_wino_ops_get(isa);
    const int KC = isa == RN_ISA_AVX512 ? 16 : isa == RN_ISA_AVX2 ? 2 : 8;
    const rn_wtile_fn wt = rn_wtile_get(isa, 1, KC);
#pragma omp parallel num_threads(cfg->nthreads > 0 ? cfg->nthreads : 1)
    {
        const int tid = rn_thread_id(), nt = rn_thread_count();
        float *tbase = scratch + L.shared_end + (size_t)tid * L.per_thread;
        if (din) {
            transform_filters(U, w, d, true); /* ends with a barrier */
            corr_run(din, dout, U, NULL, &L.b, &L, cfg, tbase, true);
        }
        if (dw) {
            float *inpad = tbase + L.t_in, *gpad = tbase + L.t_g, *V = tbase + L.t_v, *D = tbase + L.t_m;
            float *du = tbase + L.t_du;
            const size_t in_img = (size_t)f->IB * f->Hp * f->Wp * 16;
            const int Hg = 4 * f->TH, Wg = 4 * f->TW;
            const size_t g_img = (size_t)f->OB * Hg * Wg * 16, du_n = (size_t)36 * f->IB * f->OB * 256;
            memset(inpad, 0, sizeof(float) * f->ipc * in_img);
            memset(gpad, 0, sizeof(float) * f->ipc * g_img);
            memset(du, 0, sizeof(float) * du_n);
            const int n0 = (int)((long)f->N * tid / nt), n1 = (int)((long)f->N * (tid + 1) / nt);
            for (int g0 = n0; g0 < n1; g0 += f->ipc) {
                const int gi = n1 - g0 < f->ipc ? n1 - g0 : f->ipc;
                for (int ig = 0; ig < gi; ig++) {
                    rn_pad_image(inpad + ig * in_img, in, g0 + ig, f->Cin, f->H, f->W, f->Hp, f->Wp, f->pad, f->pad, isa);
                    rn_pad_image(gpad + ig * g_img, dout, g0 + ig, f->Cout, f->Ho, f->Wo, Hg, Wg, 0, 0, isa);
                }
                const float *gsrc = gpad;
                const int ntiles = gi * f->TPI;
                for (int t0 = 0; t0 < ntiles; t0 += f->Tc) {
                    const int tn = ntiles - t0 < f->Tc ? ntiles - t0 : f->Tc;
                    transform_inputs(V, inpad, f, ops, t0, tn);
                    for (int t = t0; t < t0 + tn; t++) {
                        int ig = t / f->TPI, tt = t % f->TPI, th = tt / f->TW, tw = tt % f->TW;
                        for (int ob = 0; ob < f->OB; ob++)
                            ops->grad(D + ((size_t)ob * f->Tc + (t - t0)) * 16, (long)f->OB * f->Tc * 16,
                                      gsrc + ig * g_img + (((size_t)ob * Hg + 4 * th) * Wg + 4 * tw) * 16, (long)Wg * 16);
                    }
                    for (int xi = 0; xi < 36; xi++)
                        for (int ob = 0; ob < f->OB; ob++)
                            for (int ib = 0; ib < f->IB; ib++)
                                for (int k0 = 0; k0 < 16 && ob * 16 + k0 < f->Cout; k0 += KC) {
                                    rn_wtile_args a = {
                                        .dw = du + (((size_t)xi * f->OB + ob) * f->IB + ib) * 256 + k0 * 16,
                                        .in = V + (((size_t)xi * f->IB + ib) * f->Tc) * 16,
                                        .dout = D + (((size_t)xi * f->OB + ob) * f->Tc) * 16 + k0,
                                        .dout_row = 0, .dw_tap = 256, .in_row = 0, .si = 1,
                                        .Ho = 1, .Wo = tn,
                                    };
                                    wt(&a);
                                }
                }
            }
#pragma omp barrier
            /* partial dU of every thread into thread 0's, in thread order */
            float *du0 = scratch + L.shared_end + L.t_du;
#pragma omp for schedule(static)
            for (long i = 0; i < (long)du_n; i++) {
                float s = du0[i];
                for (int th = 1; th < nt; th++) s += scratch[L.shared_end + (size_t)th * L.per_thread + L.t_du + i];
                du0[i] = s;
            }
#pragma omp for schedule(static)
            for (int k = 0; k < d->K; k++)
                for (int c = 0; c < d->C; c++) {
                    float u[36];
                    for (int xi = 0; xi < 36; xi++)
                        u[xi] = du0[(((size_t)xi * f->OB + k / 16) * f->IB + c / 16) * 256 + (k % 16) * 16 + c % 16];
                    rn_wino_filter_grad(dw + ((size_t)k * d->C + c) * 9, u);
                }
        }
    }
}
