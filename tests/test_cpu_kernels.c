/*
 * test_cpu_kernels.c — the fast CPU backend's convolution kernels (src/cpu) against a naive
 * direct convolution in double precision: forward, backward-data, backward-weights and bias
 * gradient, on every instruction-set level this machine supports, in both activation layouts
 * (NCHW and NCHW16c), on 2 threads (and 1), over many shapes (odd sizes, partial channel
 * blocks, stride 1/2/3, 1x1, 5x5, 7x7, batch 1). Also: run-to-run bit-identity, ISA names,
 * and max pooling against the reference kernel.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"

#define TOL 1e-4

/* ---- naive references (NCHW, double accumulation) ---------------------------------------- */

static void ref_forward(float *out, const float *in, const float *w, const float *bias,
                        const rn_conv_desc *d) {
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++)
            for (int ho = 0; ho < d->Ho; ho++)
                for (int wo = 0; wo < d->Wo; wo++) {
                    double s = bias ? bias[k] : 0.0;
                    for (int c = 0; c < d->C; c++)
                        for (int r = 0; r < d->R; r++)
                            for (int q = 0; q < d->S; q++) {
                                int h = ho * d->stride - d->pad + r, x = wo * d->stride - d->pad + q;
                                if (h < 0 || h >= d->H || x < 0 || x >= d->W) continue;
                                s += (double)in[((n * d->C + c) * d->H + h) * d->W + x] *
                                     w[((k * d->C + c) * d->R + r) * d->S + q];
                            }
                    out[((n * d->K + k) * d->Ho + ho) * d->Wo + wo] = (float)s;
                }
}

/* din, dw, dbias += (accumulating, like the kernels). */
static void ref_backward(float *din, float *dw, float *dbias, const float *dout,
                         const float *in, const float *w, const rn_conv_desc *d) {
    size_t nin = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->K * d->C * d->R * d->S;
    double *gi = calloc(nin, sizeof *gi), *gw = calloc(nw, sizeof *gw), *gb = calloc(d->K, sizeof *gb);
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++)
            for (int ho = 0; ho < d->Ho; ho++)
                for (int wo = 0; wo < d->Wo; wo++) {
                    double g = dout[((n * d->K + k) * d->Ho + ho) * d->Wo + wo];
                    gb[k] += g;
                    for (int c = 0; c < d->C; c++)
                        for (int r = 0; r < d->R; r++)
                            for (int q = 0; q < d->S; q++) {
                                int h = ho * d->stride - d->pad + r, x = wo * d->stride - d->pad + q;
                                if (h < 0 || h >= d->H || x < 0 || x >= d->W) continue;
                                size_t ii = ((size_t)(n * d->C + c) * d->H + h) * d->W + x;
                                size_t wi = ((size_t)(k * d->C + c) * d->R + r) * d->S + q;
                                gi[ii] += g * w[wi];
                                gw[wi] += g * in[ii];
                            }
                }
    for (size_t i = 0; i < nin; i++) din[i] += (float)gi[i];
    for (size_t i = 0; i < nw; i++) dw[i] += (float)gw[i];
    for (int k = 0; k < d->K; k++) dbias[k] += (float)gb[k];
    free(gi);
    free(gw);
    free(gb);
}

/* ---- helpers ------------------------------------------------------------------------------ */

static rn_conv_desc mkdesc(int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
    rn_conv_desc d = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = R, .S = S, .stride = stride, .pad = pad};
    d.Ho = (H + 2 * pad - R) / stride + 1;
    d.Wo = (W + 2 * pad - S) / stride + 1;
    return d;
}

/* The kernels' forward result, with its scratch. */
static void run_forward(float *out, const float *in, const float *w, const float *bias,
                        const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg) {
    float *scratch = malloc(sizeof(float) * rn_cpu_conv2d_scratch_floats(d, cfg));
    rn_cpu_conv2d_forward(out, in, w, bias, d, cfg, scratch);
    free(scratch);
}

/* The kernels' gradients (+=), with their scratch. */
static void run_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, const rn_conv_desc *d, const rn_cpu_conv_cfg *cfg) {
    float *scratch = malloc(sizeof(float) * rn_cpu_conv2d_scratch_floats(d, cfg));
    rn_cpu_conv2d_backward(din, dw, dbias, dout, in, w, d, cfg, scratch);
    free(scratch);
}

typedef struct {
    int N, C, H, W, K, R, S, stride, pad;
} shape;

static const shape shapes[] = {
    {2, 16, 8, 8, 16, 3, 3, 1, 1},    /* one block in, one out */
    {1, 3, 9, 9, 16, 3, 3, 1, 1},     /* first-conv-like, odd size, batch 1 */
    {2, 5, 7, 6, 7, 3, 3, 2, 1},      /* partial blocks, stride 2, odd sizes */
    {3, 16, 10, 10, 32, 3, 3, 2, 1},  /* ResNet downsampling */
    {2, 32, 8, 8, 16, 1, 1, 2, 0},    /* 1x1 stride-2 shortcut */
    {2, 20, 5, 7, 24, 1, 1, 1, 0},    /* 1x1 stride 1, partial blocks */
    {1, 40, 5, 13, 20, 3, 3, 1, 1},   /* partial blocks, wide odd row */
    {2, 16, 6, 6, 16, 3, 3, 1, 0},    /* no padding */
    {1, 16, 3, 37, 48, 3, 3, 1, 1},   /* row tails, three output blocks */
    {2, 64, 8, 8, 64, 3, 3, 1, 1},    /* ResNet-20 stage 3 */
    {1, 32, 16, 16, 32, 3, 3, 1, 1},  /* ResNet-20 stage 2 */
    {1, 16, 32, 32, 16, 3, 3, 1, 1},  /* ResNet-20 stage 1 */
    {1, 3, 17, 17, 8, 7, 7, 2, 3},    /* ImageNet stem */
    {1, 6, 11, 11, 5, 3, 3, 3, 1},    /* stride 3 */
    {2, 8, 9, 9, 10, 5, 5, 1, 2},     /* 5x5 */
    {1, 16, 4, 4, 96, 3, 3, 1, 1},    /* many output blocks, tiny image */
    {1, 130, 4, 4, 40, 3, 3, 2, 1},   /* many input blocks */
    {3, 4, 1, 1, 4, 3, 3, 1, 1},      /* 1x1 image */
    {7, 96, 4, 4, 80, 3, 3, 1, 1},    /* deep layer: images in groups, with a tail */
    {5, 48, 3, 5, 64, 1, 1, 2, 0},    /* 1x1 stride 2, blocked input read in place, groups */
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

typedef struct {
    float *in, *w, *bias, *dout, *din0, *dw0, *db0;
    float *out_ref, *din_ref, *dw_ref, *db_ref;
    size_t nin, nw, nout;
} problem;

static void problem_init(problem *p, const rn_conv_desc *d, uint64_t seed) {
    p->nin = (size_t)d->N * d->C * d->H * d->W;
    p->nw = (size_t)d->K * d->C * d->R * d->S;
    p->nout = (size_t)d->N * d->K * d->Ho * d->Wo;
    p->in = malloc(sizeof(float) * p->nin);
    p->w = malloc(sizeof(float) * p->nw);
    p->bias = malloc(sizeof(float) * d->K);
    p->dout = malloc(sizeof(float) * p->nout);
    p->din0 = malloc(sizeof(float) * p->nin);
    p->dw0 = malloc(sizeof(float) * p->nw);
    p->db0 = malloc(sizeof(float) * d->K);
    tu_fill_uniform(p->in, p->nin, seed + 1, -1, 1);
    /* weights scaled by fan-in as in real networks (Kaiming uniform), so outputs are O(1) and
     * |a-b|/(1+|b|) is a relative error */
    const float ws = sqrtf(6.0f / (float)(d->C * d->R * d->S));
    tu_fill_uniform(p->w, p->nw, seed + 2, -ws, ws);
    tu_fill_uniform(p->bias, d->K, seed + 3, -1, 1);
    tu_fill_uniform(p->dout, p->nout, seed + 4, -1, 1);
    tu_fill_uniform(p->din0, p->nin, seed + 5, -1, 1); /* gradients accumulate onto these */
    tu_fill_uniform(p->dw0, p->nw, seed + 6, -1, 1);
    tu_fill_uniform(p->db0, d->K, seed + 7, -1, 1);
    p->out_ref = malloc(sizeof(float) * p->nout);
    p->din_ref = malloc(sizeof(float) * p->nin);
    p->dw_ref = malloc(sizeof(float) * p->nw);
    p->db_ref = malloc(sizeof(float) * d->K);
    ref_forward(p->out_ref, p->in, p->w, p->bias, d);
    memcpy(p->din_ref, p->din0, sizeof(float) * p->nin);
    memcpy(p->dw_ref, p->dw0, sizeof(float) * p->nw);
    memcpy(p->db_ref, p->db0, sizeof(float) * d->K);
    ref_backward(p->din_ref, p->dw_ref, p->db_ref, p->dout, p->in, p->w, d);
}

static void problem_free(problem *p) {
    float *all[] = {p->in, p->w, p->bias, p->dout, p->din0, p->dw0, p->db0,
                    p->out_ref, p->din_ref, p->dw_ref, p->db_ref};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* Max relative difference of each result against the reference, for one configuration.
 * err[0..3] = forward, din, dw, dbias. */
static void check_config(double err[4], const problem *p, const rn_conv_desc *d,
                         const rn_cpu_conv_cfg *cfg) {
    float *out = malloc(sizeof(float) * p->nout);
    float *din = malloc(sizeof(float) * p->nin), *dw = malloc(sizeof(float) * p->nw);
    float *db = malloc(sizeof(float) * d->K);
    run_forward(out, p->in, p->w, p->bias, d, cfg);
    memcpy(din, p->din0, sizeof(float) * p->nin);
    memcpy(dw, p->dw0, sizeof(float) * p->nw);
    memcpy(db, p->db0, sizeof(float) * d->K);
    run_backward(din, dw, db, p->dout, p->in, p->w, d, cfg);
    err[0] = tu_max_rel_diff(out, p->out_ref, p->nout);
    err[1] = tu_max_rel_diff(din, p->din_ref, p->nin);
    err[2] = tu_max_rel_diff(dw, p->dw_ref, p->nw);
    err[3] = tu_max_rel_diff(db, p->db_ref, d->K);
    free(out);
    free(din);
    free(dw);
    free(db);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_isa_names(void **state) {
    (void)state;
    rn_isa isa;
    assert_true(rn_cpu_isa_parse("avx512", &isa) && isa == RN_ISA_AVX512);
    assert_true(rn_cpu_isa_parse("avx2", &isa) && isa == RN_ISA_AVX2);
    assert_true(rn_cpu_isa_parse("portable", &isa) && isa == RN_ISA_PORTABLE);
    assert_false(rn_cpu_isa_parse("sse9", &isa));
    assert_true(rn_cpu_isa_detect() <= rn_cpu_isa_supported());
    printf("# machine supports %s; RN_ISA=%s selects %s\n", rn_cpu_isa_name(rn_cpu_isa_supported()),
           getenv("RN_ISA") ? getenv("RN_ISA") : "(unset)", rn_cpu_isa_name(rn_cpu_isa_detect()));
}

/* Every shape x supported level x {1, 2} threads, forward and all gradients, with
 * the given algorithm (Winograd where it applies, direct elsewhere). */
static void conv_all(rn_conv_algo algo) {
    const rn_isa top = rn_cpu_isa_supported();
    const char *aname = algo == RN_CONV_DIRECT ? "direct" : "winograd";
    double worst = 0;
    for (int si = 0; si < NSHAPES; si++) {
        const shape *s = &shapes[si];
        rn_conv_desc d = mkdesc(s->N, s->C, s->H, s->W, s->K, s->R, s->S, s->stride, s->pad);
        problem p;
        problem_init(&p, &d, 1000 + si * 17);
        for (int isa = RN_ISA_PORTABLE; isa <= (int)top; isa++)
            for (int nt = 1; nt <= 2; nt++) {
                if (nt == 1 && isa != (int)top) continue; /* 1 thread: once */
                rn_cpu_conv_cfg cfg = {.isa = (rn_isa)isa, .nthreads = nt, .algo = algo};
                double e[4];
                check_config(e, &p, &d, &cfg);
                double m = fmax(fmax(e[0], e[1]), fmax(e[2], e[3]));
                if (nt == 2 && isa == (int)top)
                    printf("# %s N%d C%d %dx%d K%d %dx%d/%d pad%d %s: max rel err fwd %.1e din %.1e dw %.1e db %.1e\n",
                           aname, s->N, s->C, s->H, s->W, s->K, s->R, s->S, s->stride, s->pad,
                           rn_cpu_isa_name((rn_isa)isa), e[0], e[1], e[2], e[3]);
                if (!(m <= TOL))
                    fail_msg("%s, shape %d (N%d C%d %dx%d K%d %dx%d/%d pad%d) %s %d threads: "
                             "fwd %.2e din %.2e dw %.2e db %.2e > %.0e", aname,
                             si, s->N, s->C, s->H, s->W, s->K, s->R, s->S, s->stride, s->pad,
                             rn_cpu_isa_name((rn_isa)isa), nt, e[0], e[1], e[2], e[3], TOL);
                if (m > worst) worst = m;
            }
        problem_free(&p);
    }
    printf("# %s: worst max rel err over all shapes, levels, threads: %.2e (tolerance %.0e)\n",
           aname, worst, TOL);
}

static void test_conv_direct(void **state) {
    (void)state;
    conv_all(RN_CONV_DIRECT);
}

static void test_conv_winograd(void **state) {
    (void)state;
    conv_all(RN_CONV_WINOGRAD);
}

/* The ReLU epilogue (cfg.relu, used when inference folds a BN into the convolution): the
 * forward result equals max(reference, 0), for every shape and both algorithms. */
static void test_conv_relu_epilogue(void **state) {
    (void)state;
    const rn_isa top = rn_cpu_isa_supported();
    double worst = 0;
    size_t zeros = 0, total = 0;
    for (int si = 0; si < NSHAPES; si++) {
        const shape *sh = &shapes[si];
        rn_conv_desc d = mkdesc(sh->N, sh->C, sh->H, sh->W, sh->K, sh->R, sh->S, sh->stride, sh->pad);
        problem p;
        problem_init(&p, &d, 300 + si);
        float *want = malloc(sizeof(float) * p.nout), *out = malloc(sizeof(float) * p.nout);
        for (size_t i = 0; i < p.nout; i++) want[i] = p.out_ref[i] < 0 ? 0.0f : p.out_ref[i];
        for (int cfgi = 0; cfgi < 2; cfgi++) {
            rn_cpu_conv_cfg cfg = {.isa = top, .nthreads = 2, .relu = true,
                                   .algo = cfgi ? RN_CONV_WINOGRAD : RN_CONV_DIRECT};
            run_forward(out, p.in, p.w, p.bias, &d, &cfg);
            worst = fmax(worst, tu_max_rel_diff(out, want, p.nout));
            for (size_t i = 0; i < p.nout; i++) zeros += out[i] == 0.0f;
            total += p.nout;
        }
        free(want);
        free(out);
        problem_free(&p);
    }
    printf("# relu epilogue on %s, %d shapes x 2 algorithms: max rel err %.2e, "
           "%.0f%% of outputs zeroed\n", rn_cpu_isa_name(top), NSHAPES, worst,
           100.0 * zeros / total);
    assert_true(worst <= TOL);
    assert_true(zeros > total / 5 && zeros < total * 4 / 5); /* the ReLU did something */
}

/* Forced tile shapes and Winograd chunk sizes (the tuning knobs) must not change results
 * beyond rounding. */
static void test_conv_tile_overrides(void **state) {
    (void)state;
    const rn_isa top = rn_cpu_isa_supported();
    rn_conv_desc d = mkdesc(2, 32, 9, 19, 64, 3, 3, 1, 1);
    problem p;
    problem_init(&p, &d, 77);
    double worst = 0;
    const int kbs[] = {1, 2, 4}, ps[] = {1, 3, 5, 8, 14, 28};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 6; j++) {
            rn_cpu_conv_cfg cfg = {.isa = top, .nthreads = 2,
                                   .algo = j % 2 ? RN_CONV_WINOGRAD : RN_CONV_DIRECT,
                                   .tile_kb = kbs[i], .tile_p = ps[j], .chunk = ps[j]};
            double e[4];
            check_config(e, &p, &d, &cfg);
            for (int k = 0; k < 4; k++) worst = fmax(worst, e[k]);
        }
    problem_free(&p);
    printf("# tile overrides on %s: worst max rel err %.2e\n", rn_cpu_isa_name(top), worst);
    assert_true(worst <= TOL);
}

/* Backward with only some gradients requested leaves the others untouched. */
static void test_conv_partial_grads(void **state) {
    (void)state;
    /* direct on a stride-2 convolution, Winograd on a stride-1 one (where it applies) */
    for (int algo = RN_CONV_DIRECT; algo <= RN_CONV_WINOGRAD; algo++) {
        rn_conv_desc d = mkdesc(2, 16, 8, 8, 32, 3, 3, algo == RN_CONV_DIRECT ? 2 : 1, 1);
        problem p;
        problem_init(&p, &d, 5);
        rn_cpu_conv_cfg cfg = {.isa = rn_cpu_isa_detect(), .nthreads = 2, .algo = (rn_conv_algo)algo};
        float *din = malloc(sizeof(float) * p.nin), *dw = malloc(sizeof(float) * p.nw);
        memcpy(din, p.din0, sizeof(float) * p.nin);
        run_backward(din, NULL, NULL, p.dout, p.in, p.w, &d, &cfg);
        double e_din = tu_max_rel_diff(din, p.din_ref, p.nin);
        memcpy(dw, p.dw0, sizeof(float) * p.nw);
        run_backward(NULL, dw, NULL, p.dout, p.in, p.w, &d, &cfg);
        double e_dw = tu_max_rel_diff(dw, p.dw_ref, p.nw);
        printf("# only din: %.1e, only dw: %.1e (%s)\n", e_din, e_dw,
               algo == RN_CONV_WINOGRAD ? "winograd" : "direct");
        assert_true(e_din <= TOL && e_dw <= TOL);
        free(din);
        free(dw);
        problem_free(&p);
    }
}

/* The same inputs give the same bits, run after run, for a fixed thread count. */
static void test_conv_deterministic(void **state) {
    (void)state;
    rn_conv_desc d = mkdesc(7, 32, 12, 12, 32, 3, 3, 1, 1);
    problem p;
    problem_init(&p, &d, 9);
    for (int isa = RN_ISA_PORTABLE; isa <= (int)rn_cpu_isa_supported(); isa++) {
        rn_cpu_conv_cfg cfg = {.isa = (rn_isa)isa, .nthreads = 2,
                               .algo = isa % 2 ? RN_CONV_WINOGRAD : RN_CONV_DIRECT};
        float *o[2], *gi[2], *gw[2];
        for (int rep = 0; rep < 2; rep++) {
            o[rep] = malloc(sizeof(float) * p.nout);
            gi[rep] = calloc(p.nin, sizeof(float));
            gw[rep] = calloc(p.nw, sizeof(float));
            run_forward(o[rep], p.in, p.w, NULL, &d, &cfg);
            run_backward(gi[rep], gw[rep], NULL, p.dout, p.in, p.w, &d, &cfg);
        }
        int same = !memcmp(o[0], o[1], sizeof(float) * p.nout) &&
                   !memcmp(gi[0], gi[1], sizeof(float) * p.nin) &&
                   !memcmp(gw[0], gw[1], sizeof(float) * p.nw);
        printf("# %s %s: two runs bit-identical: %s (max abs diff dw %.1e)\n", rn_cpu_isa_name((rn_isa)isa),
               cfg.algo == RN_CONV_WINOGRAD ? "winograd" : "direct", same ? "yes" : "no",
               tu_max_abs_diff(gw[0], gw[1], p.nw));
        assert_true(same);
        for (int rep = 0; rep < 2; rep++) {
            free(o[rep]);
            free(gi[rep]);
            free(gw[rep]);
        }
    }
    problem_free(&p);
}

/* Max pooling (src/cpu/pool.c) against the reference rn_maxpool_forward / _backward: the
 * same bits, forward and backward, on 1 and 3 threads, for the ImageNet stem's 3x3/2 pad 1,
 * 2x2/2, 3x3/1 pad 1, 3x3/2 without padding, odd sizes, images smaller than the window's reach
 * (no interior), and inputs with ties (values drawn from a few levels) and NaNs. */
static void test_maxpool(void **state) {
    (void)state;
    const int shapes[][6] = {/* N, C, H, W, k, stride; pad from the k/stride pair below */
                             {2, 3, 112, 112, 3, 2}, {1, 2, 17, 23, 3, 2}, {2, 2, 8, 8, 2, 2},
                             {1, 3, 9, 7, 3, 1},     {2, 1, 2, 2, 3, 2},   {1, 2, 1, 5, 3, 2},
                             {1, 1, 300, 9, 3, 2}};
    const int pads[] = {1, 1, 0, 1, 1, 1, 0};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        rn_pool_desc d = {.N = shapes[t][0], .C = shapes[t][1], .H = shapes[t][2],
                          .W = shapes[t][3], .k = shapes[t][4], .stride = shapes[t][5],
                          .pad = pads[t]};
        d.Ho = (d.H + 2 * d.pad - d.k) / d.stride + 1;
        d.Wo = (d.W + 2 * d.pad - d.k) / d.stride + 1;
        const size_t ni = (size_t)d.N * d.C * d.H * d.W, no = (size_t)d.N * d.C * d.Ho * d.Wo;
        float *x = malloc(ni * sizeof(float)), *g = malloc(no * sizeof(float));
        float *y0 = malloc(no * sizeof(float)), *y1 = malloc(no * sizeof(float));
        float *dx0 = malloc(ni * sizeof(float)), *dx1 = malloc(ni * sizeof(float));
        tu_fill_uniform(x, ni, 40 + (uint64_t)t, -2, 2);
        tu_fill_uniform(g, no, 50 + (uint64_t)t, -1, 1);
        for (size_t i = 0; i < ni; i++) x[i] = roundf(x[i] * 2) / 2; /* 9 levels: many ties */
        for (size_t i = 0; i < ni; i += 97) x[i] = NAN;
        for (int threads = 1; threads <= 3; threads += 2) {
            rn_maxpool_forward(y0, x, &d);
            rn_cpu_maxpool_forward(y1, x, &d, threads);
            assert_memory_equal(y0, y1, no * sizeof(float));
            tu_fill_uniform(dx0, ni, 60, -1, 1);
            memcpy(dx1, dx0, ni * sizeof(float)); /* both add into the same values */
            rn_maxpool_backward(dx0, g, x, &d);
            rn_cpu_maxpool_backward(dx1, g, x, &d, threads);
            assert_memory_equal(dx0, dx1, ni * sizeof(float));
        }
        free(x), free(g), free(y0), free(y1), free(dx0), free(dx1);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_names),
        cmocka_unit_test(test_conv_direct),
        cmocka_unit_test(test_conv_winograd),
        cmocka_unit_test(test_conv_relu_epilogue),
        cmocka_unit_test(test_conv_tile_overrides),
        cmocka_unit_test(test_conv_partial_grads),
        cmocka_unit_test(test_conv_deterministic),
        cmocka_unit_test(test_maxpool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
