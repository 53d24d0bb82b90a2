/*
 * test_ops_forward.c — forward values of the reference kernels against independent double
 * computations written here (direct 7-loop convolution, two-pass batch statistics, ...), and the
 * contracts around them: conv results per thread count, gradient accumulation (+=), NULL
 * gradients, max-pool tie and NaN rules, loss values with label smoothing.
 */
#include "testutil.h"

#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *fvec(size_t n, uint64_t seed, float lo, float hi) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    tu_fill_uniform(x, n, seed, lo, hi);
    return x;
}
static float *zvec(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void check(const char *what, double err, double tol) {
    printf("  %-58s max diff %.3g\n", what, err);
    if (!(err <= tol)) fail_msg("%s: max diff %g > %g", what, err, tol);
}

/* ---- conv2d --------------------------------------------------------------------------------- */

static void conv_direct(float *out, const float *in, const float *w, const float *b,
                        const rn_conv_desc *d) {
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++)
            for (int oy = 0; oy < d->Ho; oy++)
                for (int ox = 0; ox < d->Wo; ox++) {
                    double s = b ? b[k] : 0.0;
                    for (int c = 0; c < d->C; c++)
                        for (int r = 0; r < d->R; r++)
                            for (int q = 0; q < d->S; q++) {
                                int iy = oy * d->stride - d->pad + r;
                                int ix = ox * d->stride - d->pad + q;
                                if (iy < 0 || iy >= d->H || ix < 0 || ix >= d->W) continue;
                                s += (double)in[((n * d->C + c) * d->H + iy) * d->W + ix] *
                                     w[((k * d->C + c) * d->R + r) * d->S + q];
                            }
                    out[((n * d->K + k) * d->Ho + oy) * d->Wo + ox] = (float)s;
                }
}

static void test_conv_forward(void **state) {
    static const int cfg[][10] = {
        /* N C H W K R S stride pad bias */
        {3, 3, 9, 7, 4, 3, 3, 1, 1, 1}, {2, 5, 8, 8, 3, 3, 3, 2, 1, 0},
        {3, 6, 5, 4, 7, 1, 1, 1, 0, 1}, {2, 4, 7, 9, 3, 1, 1, 2, 0, 0},
        {1, 3, 15, 13, 4, 7, 7, 2, 3, 1}, {2, 2, 6, 9, 3, 4, 2, 3, 2, 1},
        {1, 16, 32, 32, 16, 3, 3, 1, 1, 0}, {4, 3, 3, 3, 2, 3, 3, 1, 0, 1}, /* 1x1 output */
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        const int *c = cfg[i];
        rn_conv_desc d = {.N = c[0], .C = c[1], .H = c[2], .W = c[3], .K = c[4], .R = c[5],
                          .S = c[6], .stride = c[7], .pad = c[8]};
        rn_conv_desc_finish(&d);
        size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
        size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
        float *in = fvec(nin, 10 + i, -1, 1), *w = fvec(nw, 20 + i, -1, 1);
        float *b = c[9] ? fvec(d.K, 30 + i, -1, 1) : NULL;
        float *out = fvec(nout, 40, -1, 1), *ref = zvec(nout);
        float *scratch = malloc(sizeof(float) * rn_conv2d_scratch_floats(&d, 2) + 1);
        rn_conv2d_forward(out, in, w, b, &d, scratch, 2);
        conv_direct(ref, in, w, b, &d);
        char what[96];
        snprintf(what, sizeof what, "conv %dx%dx%dx%d K=%d %dx%d/%d pad %d%s vs direct (rel)",
                 d.N, d.C, d.H, d.W, d.K, d.R, d.S, d.stride, d.pad, b ? " +bias" : "");
        check(what, tu_max_rel_diff(out, ref, nout), 1e-5);
        free(in), free(w), free(b), free(out), free(ref), free(scratch);
    }
}

/* Same inputs through 1, 2 and 3 threads: forward identical (each image is computed the same
 * way), backward bit-identical when repeated with the same thread count and within rounding
 * across thread counts. Scratch is allocated at exactly the queried size. */
static void test_conv_threads(void **state) {
    rn_conv_desc d = {.N = 5, .C = 4, .H = 9, .W = 8, .K = 6, .R = 3, .S = 3, .stride = 1, .pad = 1};
    rn_conv_desc_finish(&d);
    size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * 9;
    size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
    float *in = fvec(nin, 50, -1, 1), *w = fvec(nw, 51, -1, 1), *b = fvec(d.K, 52, -1, 1);
    float *g = fvec(nout, 53, -1, 1);
    float *out[4], *din[4], *dw[4], *db[4];
    static const int threads[4] = {1, 2, 2, 3};
    for (int t = 0; t < 4; t++) {
        float *scratch = malloc(sizeof(float) * rn_conv2d_scratch_floats(&d, threads[t]));
        out[t] = zvec(nout), din[t] = zvec(nin), dw[t] = zvec(nw), db[t] = zvec(d.K);
        rn_conv2d_forward(out[t], in, w, b, &d, scratch, threads[t]);
        rn_conv2d_backward(din[t], dw[t], db[t], g, in, w, &d, scratch, threads[t]);
        free(scratch);
    }
    check("forward 1 vs 2 threads (abs, must be 0)", tu_max_abs_diff(out[1], out[0], nout), 0);
    check("forward 1 vs 3 threads (abs, must be 0)", tu_max_abs_diff(out[3], out[0], nout), 0);
    check("backward din 2 threads twice (abs, must be 0)", tu_max_abs_diff(din[2], din[1], nin), 0);
    check("backward dw 2 threads twice (abs, must be 0)", tu_max_abs_diff(dw[2], dw[1], nw), 0);
    check("backward dbias 2 threads twice (abs, must be 0)", tu_max_abs_diff(db[2], db[1], d.K), 0);
    check("backward dw 1 vs 2 threads (rel)", tu_max_rel_diff(dw[1], dw[0], nw), 1e-5);
    check("backward dw 1 vs 3 threads (rel)", tu_max_rel_diff(dw[3], dw[0], nw), 1e-5);
    check("backward dbias 1 vs 3 threads (rel)", tu_max_rel_diff(db[3], db[0], d.K), 1e-5);
    check("backward din 1 vs 3 threads (rel)", tu_max_rel_diff(din[3], din[0], nin), 1e-5);
    for (int t = 0; t < 4; t++) free(out[t]), free(din[t]), free(dw[t]), free(db[t]);
    free(in), free(w), free(b), free(g);
}

/* Backward twice from zero doubles the gradient; from a nonzero start it adds; NULL
 * gradients are skipped and leave the others unchanged. */
static void test_conv_accumulates(void **state) {
    for (int pointwise = 0; pointwise < 2; pointwise++) {
        rn_conv_desc d = {.N = 3, .C = 3, .H = 6, .W = 5, .K = 4, .R = 3, .S = 3, .stride = 2,
                          .pad = 1};
        if (pointwise) d.R = d.S = 1, d.stride = 1, d.pad = 0;
        rn_conv_desc_finish(&d);
        size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
        size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
        float *in = fvec(nin, 60, -1, 1), *w = fvec(nw, 61, -1, 1), *g = fvec(nout, 62, -1, 1);
        float *scratch = malloc(sizeof(float) * rn_conv2d_scratch_floats(&d, 2));
        float *din1 = zvec(nin), *dw1 = zvec(nw), *db1 = zvec(d.K);
        float *din2 = zvec(nin), *dw2 = zvec(nw), *db2 = zvec(d.K);
        float *din0 = fvec(nin, 63, -1, 1), *dw0 = fvec(nw, 64, -1, 1), *db0 = fvec(d.K, 65, -1, 1);
        float *din3 = malloc(sizeof(float) * nin), *dw3 = malloc(sizeof(float) * nw);
        float *db3 = malloc(sizeof(float) * d.K);
        memcpy(din3, din0, sizeof(float) * nin);
        memcpy(dw3, dw0, sizeof(float) * nw);
        memcpy(db3, db0, sizeof(float) * d.K);
        rn_conv2d_backward(din1, dw1, db1, g, in, w, &d, scratch, 2);
        for (int i = 0; i < 2; i++) rn_conv2d_backward(din2, dw2, db2, g, in, w, &d, scratch, 2);
        rn_conv2d_backward(din3, dw3, db3, g, in, w, &d, scratch, 2);
        for (size_t i = 0; i < nin; i++) din1[i] *= 2, din0[i] += din1[i] / 2;
        for (size_t i = 0; i < nw; i++) dw1[i] *= 2, dw0[i] += dw1[i] / 2;
        for (int i = 0; i < d.K; i++) db1[i] *= 2, db0[i] += db1[i] / 2;
        printf(" conv %s\n", pointwise ? "1x1/1" : "3x3/2");
        check("din: backward twice = 2 x once (rel)", tu_max_rel_diff(din2, din1, nin), 1e-6);
        check("dw: backward twice = 2 x once (rel)", tu_max_rel_diff(dw2, dw1, nw), 1e-6);
        check("dbias: backward twice = 2 x once (rel)", tu_max_rel_diff(db2, db1, d.K), 1e-6);
        check("din: adds to a nonzero start (rel)", tu_max_rel_diff(din3, din0, nin), 1e-6);
        check("dw: adds to a nonzero start (rel)", tu_max_rel_diff(dw3, dw0, nw), 1e-6);
        check("dbias: adds to a nonzero start (rel)", tu_max_rel_diff(db3, db0, d.K), 1e-6);
        /* NULL din and dbias: dw alone is the same; NULL dw: din alone is the same. */
        memset(dw2, 0, sizeof(float) * nw);
        memset(din2, 0, sizeof(float) * nin);
        rn_conv2d_backward(NULL, dw2, NULL, g, in, w, &d, scratch, 2);
        rn_conv2d_backward(din2, NULL, NULL, g, in, w, &d, scratch, 2);
        for (size_t i = 0; i < nin; i++) din1[i] /= 2;
        for (size_t i = 0; i < nw; i++) dw1[i] /= 2;
        check("dw with din = dbias = NULL (abs)", tu_max_abs_diff(dw2, dw1, nw), 0);
        check("din with dw = dbias = NULL (abs)", tu_max_abs_diff(din2, din1, nin), 0);
        free(in), free(w), free(g), free(scratch), free(din0), free(dw0), free(db0);
        free(din1), free(dw1), free(db1), free(din2), free(dw2), free(db2);
        free(din3), free(dw3), free(db3);
    }
}

/* ---- batchnorm ------------------------------------------------------------------------------ */

static void test_batchnorm_train_forward(void **state) {
    const int N = 4, C = 3, HW = 10;
    const size_t n = (size_t)N * C * HW;
    rn_bn_desc d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f};
    float *in = fvec(n, 70, -2, 5), *gamma = fvec(C, 71, 0.5f, 1.5f), *beta = fvec(C, 72, -1, 1);
    float *out = zvec(n), *ref = zvec(n), mean[3], invstd[3], rm[3] = {0.1f, -0.2f, 0.3f},
          rv[3] = {1.0f, 0.5f, 2.0f};
    float ref_mean[3], ref_invstd[3], ref_rm[3], ref_rv[3];
    for (int c = 0; c < C; c++) {
        double s = 0, ss = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) s += in[(i * C + c) * HW + j];
        double mu = s / (N * HW);
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                double x = in[(i * C + c) * HW + j] - mu;
                ss += x * x;
            }
        double var = ss / (N * HW), istd = 1.0 / sqrt(var + 1e-5);
        ref_mean[c] = (float)mu;
        ref_invstd[c] = (float)istd;
        ref_rm[c] = (float)(0.9 * rm[c] + 0.1 * mu);
        ref_rv[c] = (float)(0.9 * rv[c] + 0.1 * ss / (N * HW - 1));
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                size_t k = (size_t)(i * C + c) * HW + j;
                ref[k] = (float)((in[k] - mu) * istd * gamma[c] + beta[c]);
            }
    }
    rn_batchnorm_forward_train(out, mean, invstd, rm, rv, in, gamma, beta, &d, 2);
    check("bn train out vs two-pass double (rel)", tu_max_rel_diff(out, ref, n), 2e-6);
    check("bn train save_mean (rel)", tu_max_rel_diff(mean, ref_mean, C), 1e-6);
    check("bn train save_invstd (rel)", tu_max_rel_diff(invstd, ref_invstd, C), 1e-6);
    check("bn running_mean (rel)", tu_max_rel_diff(rm, ref_rm, C), 1e-6);
    check("bn running_var, unbiased (rel)", tu_max_rel_diff(rv, ref_rv, C), 1e-6);
    free(in), free(gamma), free(beta), free(out), free(ref);
}

static void test_batchnorm_eval_forward(void **state) {
    const int N = 2, C = 3, HW = 7;
    const size_t n = (size_t)N * C * HW;
    rn_bn_desc d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f};
    float *in = fvec(n, 80, -2, 2), *gamma = fvec(C, 81, 0.5f, 1.5f), *beta = fvec(C, 82, -1, 1);
    float rm[3] = {0.1f, -0.2f, 0.3f}, rv[3] = {1.0f, 0.5f, 2.0f}, mean[3], invstd[3];
    float ref_invstd[3];
    float *out = zvec(n), *ref = zvec(n);
    for (int c = 0; c < C; c++) {
        double istd = 1.0 / sqrt((double)rv[c] + 1e-5);
        ref_invstd[c] = (float)istd;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < HW; j++) {
                size_t k = (size_t)(i * C + c) * HW + j;
                ref[k] = (float)((in[k] - rm[c]) * istd * gamma[c] + beta[c]);
            }
    }
    rn_batchnorm_forward_eval(out, mean, invstd, in, gamma, beta, rm, rv, &d, 2);
    check("bn eval out vs double (rel)", tu_max_rel_diff(out, ref, n), 2e-6);
    check("bn eval save_mean = running_mean (abs)", tu_max_abs_diff(mean, rm, C), 0);
    check("bn eval save_invstd (rel)", tu_max_rel_diff(invstd, ref_invstd, C), 1e-6);
    free(in), free(gamma), free(beta), free(out), free(ref);
}

/* Accumulation: backward twice from zero equals twice once; also per thread count identical. */
static void test_batchnorm_accumulates(void **state) {
    const int N = 3, C = 4, HW = 6;
    const size_t n = (size_t)N * C * HW;
    rn_bn_desc d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f};
    float *in = fvec(n, 90, -1, 2), *gamma = fvec(C, 91, 0.5f, 1.5f), *beta = fvec(C, 92, -1, 1);
    float *g = fvec(n, 93, -1, 1), *out = zvec(n);
    float mean[4], invstd[4], rm[4] = {0}, rv[4] = {1, 1, 1, 1};
    rn_batchnorm_forward_train(out, mean, invstd, rm, rv, in, gamma, beta, &d, 1);
    for (int train = 0; train < 2; train++) {
        float *din1 = zvec(n), *din2 = zvec(n), *din3 = zvec(n);
        float dg1[4] = {0}, db1[4] = {0}, dg2[4] = {0}, db2[4] = {0}, dg3[4] = {0}, db3[4] = {0};
        rn_batchnorm_backward(din1, dg1, db1, g, in, mean, invstd, gamma, &d, train, 1);
        for (int i = 0; i < 2; i++)
            rn_batchnorm_backward(din2, dg2, db2, g, in, mean, invstd, gamma, &d, train, 2);
        rn_batchnorm_backward(din3, dg3, db3, g, in, mean, invstd, gamma, &d, train, 3);
        check(train ? "bn train: din 1 vs 3 threads (abs, must be 0)"
                    : "bn eval: din 1 vs 3 threads (abs, must be 0)",
              tu_max_abs_diff(din3, din1, n), 0);
        for (size_t i = 0; i < n; i++) din1[i] *= 2;
        for (int i = 0; i < C; i++) dg1[i] *= 2, db1[i] *= 2;
        check("bn: din backward twice = 2 x once (rel)", tu_max_rel_diff(din2, din1, n), 1e-6);
        check("bn: dgamma backward twice = 2 x once (rel)", tu_max_rel_diff(dg2, dg1, C), 1e-6);
        check("bn: dbeta backward twice = 2 x once (rel)", tu_max_rel_diff(db2, db1, C), 1e-6);
        free(din1), free(din2), free(din3);
    }
    free(in), free(gamma), free(beta), free(g), free(out);
}

/* ---- elementwise, shortcut, pooling, linear ------------------------------------------------- */

static void test_small_ops_forward(void **state) {
    /* relu and add */
    float x[6] = {-1.5f, 0.0f, 2.0f, -0.0f, 3.5f, -7.0f}, y[6] = {1, 2, 3, 4, 5, 6}, o[6];
    float relu_ref[6] = {0, 0, 2, 0, 3.5f, 0}, add_ref[6] = {-0.5f, 2, 5, 4, 8.5f, -1};
    rn_relu_forward(o, x, 6);
    check("relu forward (abs)", tu_max_abs_diff(o, relu_ref, 6), 0);
    float dx[6] = {1, 1, 1, 1, 1, 1}, dx_ref[6] = {1, 1, 4, 1, 6, 1};
    rn_relu_backward(dx, y, o, 6); /* passes only where out > 0 (so not at 0) */
    check("relu backward, += where out > 0 (abs)", tu_max_abs_diff(dx, dx_ref, 6), 0);
    rn_add_forward(o, x, y, 6);
    check("add forward (abs)", tu_max_abs_diff(o, add_ref, 6), 0);
    float da[6] = {0}, da_ref[6] = {1, 2, 3, 4, 5, 6};
    rn_add_backward(da, NULL, y, 6);
    check("add backward, db = NULL (abs)", tu_max_abs_diff(da, da_ref, 6), 0);

    /* shortcut A: 2 input channels 5x5 -> 5 channels 3x3: 1 zero channel before, 2 after */
    rn_shortcut_a_desc sd = {.N = 2, .C = 2, .H = 5, .W = 5, .K = 5, .stride = 2, .Ho = 3, .Wo = 3};
    float *in = fvec(100, 100, -1, 1), *out = fvec(90, 101, -1, 1), ref[90];
    for (int n = 0; n < 2; n++)
        for (int k = 0; k < 5; k++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    ref[((n * 5 + k) * 3 + i) * 3 + j] =
                        k >= 1 && k < 3 ? in[((n * 2 + k - 1) * 5 + 2 * i) * 5 + 2 * j] : 0.0f;
    rn_shortcut_a_forward(out, in, &sd);
    check("shortcut A forward, K=5 C=2 stride 2 (abs)", tu_max_abs_diff(out, ref, 90), 0);
    free(in), free(out);

    /* global average pool */
    float *ap = fvec(2 * 3 * 20, 110, -1, 3), apo[6], apr[6];
    for (int i = 0; i < 6; i++) {
        double s = 0;
        for (int j = 0; j < 20; j++) s += ap[i * 20 + j];
        apr[i] = (float)(s / 20);
    }
    rn_avgpool_forward(apo, ap, 2, 3, 20);
    check("avgpool forward (rel)", tu_max_rel_diff(apo, apr, 6), 1e-7);
    free(ap);

    /* linear */
    float *li = fvec(5 * 9, 120, -1, 1), *lw = fvec(4 * 9, 121, -1, 1), *lb = fvec(4, 122, -1, 1);
    float lo[20], lr[20];
    for (int n = 0; n < 5; n++)
        for (int k = 0; k < 4; k++) {
            double s = lb[k];
            for (int i = 0; i < 9; i++) s += (double)li[n * 9 + i] * lw[k * 9 + i];
            lr[n * 4 + k] = (float)s;
        }
    rn_linear_forward(lo, li, lw, lb, 5, 9, 4);
    check("linear forward (rel)", tu_max_rel_diff(lo, lr, 20), 1e-6);
    free(li), free(lw), free(lb);
}

static void test_maxpool_rules(void **state) {
    /* 3x3/2 pad 1 over a 4x4 image of which one window is all equal: the first wins. */
    rn_pool_desc d = {.N = 1, .C = 1, .H = 4, .W = 4, .k = 3, .stride = 2, .pad = 1, .Ho = 2, .Wo = 2};
    float in[16] = {2, 2, 0, 1,  /* window (0,0) covers rows 0-1, cols 0-1: all 2s */
                    2, 2, 5, 1,  /* window (0,1): rows 0-1, cols 1-3: max 5 */
                    3, 0, 9, 9,  /* window (1,1): rows 1-3, cols 1-3: 9 twice, first at (2,2) */
                    0, 0, 0, 9};
    float out[4], ref[4] = {2, 5, 3, 9};
    rn_maxpool_forward(out, in, &d);
    check("maxpool forward with ties (abs)", tu_max_abs_diff(out, ref, 4), 0);
    float dout[4] = {1, 10, 100, 1000}, din[16] = {0}, dref[16] = {0};
    dref[0] = 1;        /* first of the four 2s */
    dref[6] = 10;       /* the 5 */
    dref[8] = 100;      /* the 3 (window (1,0): rows 1-3, cols 0-1) */
    dref[10] = 1000;    /* first 9 in scan order */
    rn_maxpool_backward(din, dout, in, &d);
    check("maxpool backward goes to the first maximum (abs)", tu_max_abs_diff(din, dref, 16), 0);
    in[5] = NAN; /* in window (0,0), (0,1), (1,0), (1,1): NaN wins each */
    rn_maxpool_forward(out, in, &d);
    int nans = 0;
    for (int i = 0; i < 4; i++) nans += isnan(out[i]);
    printf("  maxpool: NaN propagates to %d of 4 windows (expected 4)\n", nans);
    assert_int_equal(nans, 4);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

static void test_loss_forward(void **state) {
    const int n = 5, k = 10;
    const int labels[5] = {0, 9, 3, 3, 7};
    float *z = fvec(n * k, 130, -4, 4), *p = zvec(n * k), *pr = zvec(n * k);
    z[3] = 80.0f; /* large logit: exp would overflow without the max shift */
    for (int si = 0; si < 3; si++) {
        const float eps = si == 0 ? 0.0f : si == 1 ? 0.1f : 0.3f;
        double total = 0;
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int j = 0; j < k; j++) s += exp((double)z[i * k + j] - 80.0);
            for (int j = 0; j < k; j++) pr[i * k + j] = (float)(exp((double)z[i * k + j] - 80.0) / s);
            /* cross-entropy against the smoothed target distribution */
            for (int j = 0; j < k; j++) {
                double t = (j == labels[i] ? 1.0 - eps : 0.0) + eps / k;
                total -= t * (z[i * k + j] - 80.0 - log(s));
            }
        }
        float ref = (float)(total / n);
        float loss = rn_softmax_xent_forward(p, z, labels, n, k, eps);
        char what[80];
        snprintf(what, sizeof what, "loss smoothing %.1f: %.6f vs %.6f (rel)", eps, loss, ref);
        check(what, fabs(loss - ref) / (1 + fabs(ref)), 1e-6);
        check("probs (abs)", tu_max_abs_diff(p, pr, n * k), 1e-7);
    }
    /* PyTorch: CrossEntropyLoss(label_smoothing=0.1) on logits [[1,2,3]], label 0 */
    float z1[3] = {1, 2, 3}, p1[3];
    int l1 = 0;
    float loss = rn_softmax_xent_forward(p1, z1, &l1, 1, 3, 0.1f);
    check("loss [[1,2,3]] label 0 smoothing 0.1 vs PyTorch 2.3076060", fabs(loss - 2.3076060f), 1e-6);
    int bad = 3;
    loss = rn_softmax_xent_forward(p1, z1, &bad, 1, 3, 0.0f);
    printf("  label out of range gives %g (expected nan)\n", loss);
    assert_true(isnan(loss));
    free(z), free(p), free(pr);
}

/* ---- fusions: BN + ReLU and add + ReLU against the two ops run one after the other --------
 * Same arithmetic; the vectorized BN sums may group terms differently, so 1e-6; the ReLU
 * must zero some elements and pass others, or the masks would go untested. */

static bool same_bits(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* Equal up to float rounding of reordered sums. */
static bool close6(const float *a, const float *b, size_t n) {
    return tu_max_rel_diff(a, b, n) <= 1e-6;
}

static void check_bn_relu(int N, int C, int HW, int nthreads) {
    rn_bn_desc d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f};
    size_t n = (size_t)N * C * HW;
    float *x = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
    float *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
    float *gbn = malloc(n * sizeof(float));
    float *dx1 = malloc(n * sizeof(float)), *dx2 = malloc(n * sizeof(float));
    float gamma[64], beta[64], rm1[64], rv1[64], rm2[64], rv2[64], m1[64], s1[64], m2[64], s2[64];
    float dg1[64], db1[64], dg2[64], db2[64];
    assert_true(C <= 64);
    tu_fill_uniform(x, n, 11, -2, 3);
    tu_fill_uniform(g, n, 12, -1, 1);
    tu_fill_uniform(gamma, C, 13, 0.5f, 1.5f);
    tu_fill_uniform(beta, C, 14, -0.5f, 0.5f);
    for (int train = 0; train < 2; train++) {
        tu_fill_uniform(rm1, C, 15, -0.1f, 0.1f);
        tu_fill_uniform(rv1, C, 16, 0.5f, 1.5f);
        memcpy(rm2, rm1, sizeof rm1);
        memcpy(rv2, rv1, sizeof rv1);
        /* reference: BN, then ReLU in place; backward: ReLU into a zeroed slot, then BN */
        if (train) {
            rn_batchnorm_forward_train(y1, m1, s1, rm1, rv1, x, gamma, beta, &d, nthreads);
            rn_batchnorm_relu_forward_train(y2, m2, s2, rm2, rv2, x, gamma, beta, &d, nthreads);
        } else {
            rn_batchnorm_forward_eval(y1, m1, s1, x, gamma, beta, rm1, rv1, &d, nthreads);
            rn_batchnorm_relu_forward_eval(y2, m2, s2, x, gamma, beta, rm2, rv2, &d, nthreads);
        }
        rn_relu_forward(y1, y1, n);
        memset(gbn, 0, n * sizeof(float));
        rn_relu_backward(gbn, g, y1, n);
        tu_fill_uniform(dx1, n, 17, -1, 1); /* the slots accumulate */
        memcpy(dx2, dx1, n * sizeof(float));
        tu_fill_uniform(dg1, C, 18, -1, 1);
        memcpy(dg2, dg1, sizeof dg1);
        tu_fill_uniform(db1, C, 19, -1, 1);
        memcpy(db2, db1, sizeof db1);
        rn_batchnorm_backward(dx1, dg1, db1, gbn, x, m1, s1, gamma, &d, train, nthreads);
        rn_batchnorm_relu_backward(dx2, dg2, db2, g, y2, x, m2, s2, gamma, &d, train, true,
                                   nthreads);
        printf("# bn+relu N=%d C=%d HW=%d threads %d %s: out %.1e din %.1e dgamma %.1e\n", N, C,
               HW, nthreads, train ? "train" : "eval", tu_max_abs_diff(y2, y1, n),
               tu_max_abs_diff(dx2, dx1, n), tu_max_abs_diff(dg2, dg1, C));
        assert_true(close6(y1, y2, n) && close6(dx1, dx2, n));
        assert_true(close6(m1, m2, C) && close6(s1, s2, C));
        assert_true(close6(rm1, rm2, C) && close6(rv1, rv2, C));
        assert_true(close6(dg1, dg2, C) && close6(db1, db2, C));
        /* Writing instead of adding: the result over garbage equals the sum into zeros. */
        memset(dx1, 0, n * sizeof(float));
        rn_batchnorm_backward(dx1, NULL, NULL, gbn, x, m1, s1, gamma, &d, train, nthreads);
        memset(dx2, 0xff, n * sizeof(float)); /* NaN */
        rn_batchnorm_relu_backward(dx2, NULL, NULL, g, y2, x, m2, s2, gamma, &d, train, false,
                                   nthreads);
        assert_true(close6(dx1, dx2, n));
        /* Without a mask (out NULL) it is BN's own backward: written over garbage, it equals
         * rn_batchnorm_backward added into zeros. */
        memset(dx1, 0, n * sizeof(float));
        rn_batchnorm_backward(dx1, NULL, NULL, g, x, m1, s1, gamma, &d, train, nthreads);
        memset(dx2, 0xff, n * sizeof(float));
        rn_batchnorm_relu_backward(dx2, NULL, NULL, g, NULL, x, m1, s1, gamma, &d, train, false,
                                   nthreads);
        assert_true(close6(dx1, dx2, n));
        /* the ReLU must have done something, or the test proves little */
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += y2[i] == 0.0f;
        assert_true(zeros > 0 && zeros < n);
    }
    free(x), free(g), free(y1), free(y2), free(gbn), free(dx1), free(dx2);
}

static void test_bn_relu_fused(void **state) {
    check_bn_relu(3, 5, 7, 1);
    check_bn_relu(3, 5, 7, 2);
    check_bn_relu(2, 16, 64, 2);
    check_bn_relu(1, 33, 17, 3);
}

static void test_add_relu_fused(void **state) {
    const size_t sizes[] = {1, 15, 17, 1000, 4099};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
        for (int nt = 1; nt <= 3; nt++) {
            size_t n = sizes[si];
            float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
            float *y1 = malloc(n * sizeof(float)), *y2 = malloc(n * sizeof(float));
            float *g = malloc(n * sizeof(float)), *gs = malloc(n * sizeof(float));
            float *da1 = malloc(n * sizeof(float)), *db1 = malloc(n * sizeof(float));
            float *da2 = malloc(n * sizeof(float)), *db2 = malloc(n * sizeof(float));
            tu_fill_uniform(a, n, 21, -1, 1);
            tu_fill_uniform(b, n, 22, -1, 1);
            tu_fill_uniform(g, n, 23, -1, 1);
            tu_fill_uniform(da1, n, 24, -1, 1);
            tu_fill_uniform(db1, n, 25, -1, 1);
            memcpy(da2, da1, n * sizeof(float));
            memcpy(db2, db1, n * sizeof(float));
            rn_add_forward(y1, a, b, n);
            rn_relu_forward(y1, y1, n);
            memcpy(y2, a, n * sizeof(float));
            rn_add_relu_forward(y2, y2, b, n, nt); /* in place over a, as the model runs it */
            memset(gs, 0, n * sizeof(float));
            rn_relu_backward(gs, g, y1, n);
            rn_add_backward(da1, db1, gs, n);
            rn_add_relu_backward(da2, db2, g, y2, n, true, true, nt);
            assert_true(same_bits(y1, y2, n) && same_bits(da1, da2, n) && same_bits(db1, db2, n));
            rn_add_relu_backward(NULL, db2, g, y2, n, true, true, nt); /* either may be absent */
            rn_add_backward(NULL, db1, gs, n);
            assert_true(same_bits(db1, db2, n));
            /* Written, not added: a keeps adding, b is overwritten (garbage before). */
            memset(db2, 0xff, n * sizeof(float));
            rn_add_relu_backward(da2, db2, g, y2, n, true, false, nt);
            rn_add_backward(da1, NULL, gs, n);
            assert_true(same_bits(da1, da2, n) && same_bits(gs, db2, n));
            free(a), free(b), free(y1), free(y2), free(g), free(gs);
            free(da1), free(db1), free(da2), free(db2);
        }
    printf("# add+relu: equal to add then relu for 5 sizes x 1-3 threads, adding or writing\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_forward),
        cmocka_unit_test(test_conv_threads),
        cmocka_unit_test(test_conv_accumulates),
        cmocka_unit_test(test_batchnorm_train_forward),
        cmocka_unit_test(test_batchnorm_eval_forward),
        cmocka_unit_test(test_batchnorm_accumulates),
        cmocka_unit_test(test_small_ops_forward),
        cmocka_unit_test(test_maxpool_rules),
        cmocka_unit_test(test_loss_forward),
        cmocka_unit_test(test_bn_relu_fused),
        cmocka_unit_test(test_add_relu_fused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
