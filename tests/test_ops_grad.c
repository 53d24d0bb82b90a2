/*
 * test_ops_grad.c — every gradient of every reference kernel against central finite
 * differences of the scalar L = sum(out * r) for a fixed random r (double accumulation).
 *
 * Each check perturbs one input element by +-h, measures the step actually taken in float, and
 * compares (L+ - L-) / step with the backward pass run on dout = r, accumulated onto
 * gradient buffers that start at 1. The printed error is max |fd - analytic| / (1 + |analytic|).
 */
#include "testutil.h"

#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef double (*objective_fn)(void *ctx);

static float *fvec(size_t n, uint64_t seed, float lo, float hi) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    tu_fill_uniform(x, n, seed, lo, hi);
    return x;
}
static float *zvec(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* Gradient buffers start at 1 and the backward pass must add to them (+=); grad_added takes
 * the start away again before the comparison, so a kernel that overwrites fails the check. */
static float *grad_buf(size_t n) {
    float *g = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) g[i] = 1.0f;
    return g;
}
static void grad_added(float *g, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] -= 1.0f;
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Compares grad (n) with central differences of f over x (n), perturbed in place. Checks every
 * element of small tensors and an evenly spread subset of large ones. */
static void fd_check(const char *what, float *x, const float *grad, size_t n, objective_fn f,
                     void *ctx, float h, double tol) {
    size_t step = n <= 400 ? 1 : n / 200;
    double err = 0;
    size_t worst = 0, checked = 0;
    for (size_t i = 0; i < n; i += step) {
        float x0 = x[i];
        x[i] = x0 + h;
        float xp = x[i];
        double lp = f(ctx);
        x[i] = x0 - h;
        float xm = x[i];
        double lm = f(ctx);
        x[i] = x0;
        double fd = (lp - lm) / ((double)xp - (double)xm);
        double e = fabs(fd - grad[i]) / (1.0 + fabs((double)grad[i]));
        if (!(e <= err) && err == err) { /* a NaN sticks */
            err = e;
            worst = i;
        }
        checked++;
    }
    printf("  %-40s %4zu of %5zu checked, max err %.3g\n", what, checked, n, err);
    if (!(err <= tol)) fail_msg("%s: element %zu: finite-difference error %g > %g", what, worst, err, tol);
}

/* ---- conv2d --------------------------------------------------------------------------------- */

typedef struct {
    rn_conv_desc d;
    float *in, *w, *bias, *out, *r, *scratch;
    int nthreads;
} conv_ctx;

static double conv_objective(void *p) {
    conv_ctx *c = p;
    rn_conv2d_forward(c->out, c->in, c->w, c->bias, &c->d, c->scratch, c->nthreads);
    return dot(c->out, c->r, (size_t)c->d.N * c->d.K * c->d.Ho * c->d.Wo);
}

static void conv_case(int N, int C, int H, int W, int K, int R, int S, int stride, int pad,
                      bool with_bias, int nthreads, uint64_t seed) {
    conv_ctx c = {.d = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = R, .S = S, .stride = stride,
                        .pad = pad},
                  .nthreads = nthreads};
    rn_conv_desc_finish(&c.d);
    size_t nin = (size_t)N * C * H * W, nw = (size_t)K * C * R * S;
    size_t nout = (size_t)N * K * c.d.Ho * c.d.Wo;
    c.in = fvec(nin, seed, -1, 1);
    c.w = fvec(nw, seed + 1, -1, 1);
    c.bias = with_bias ? fvec(K, seed + 2, -1, 1) : NULL;
    c.out = zvec(nout);
    c.r = fvec(nout, seed + 3, -1, 1);
    c.scratch = malloc(sizeof(float) * rn_conv2d_scratch_floats(&c.d, nthreads) + 1);
    float *din = grad_buf(nin), *dw = grad_buf(nw), *db = grad_buf(K);
    rn_conv2d_backward(din, dw, with_bias ? db : NULL, c.r, c.in, c.w, &c.d, c.scratch, nthreads);
    grad_added(din, nin), grad_added(dw, nw), grad_added(db, K);
    char name[96];
    printf(" conv N=%d C=%d %dx%d K=%d %dx%d/%d pad %d%s, %d threads\n", N, C, H, W, K, R, S,
           stride, pad, with_bias ? " +bias" : "", nthreads);
    snprintf(name, sizeof name, "din");
    fd_check(name, c.in, din, nin, conv_objective, &c, 0.05f, 1e-3);
    fd_check("dw", c.w, dw, nw, conv_objective, &c, 0.05f, 1e-3);
    if (with_bias) fd_check("dbias", c.bias, db, K, conv_objective, &c, 0.05f, 1e-3);
    free(c.in), free(c.w), free(c.bias), free(c.out), free(c.r), free(c.scratch);
    free(din), free(dw), free(db);
}

static void test_conv_grad(void **state) {
    conv_case(1, 2, 5, 6, 3, 3, 3, 1, 1, true, 2, 10);  /* 3x3/1, batch 1, idle second slot */
    conv_case(3, 3, 7, 6, 2, 3, 3, 2, 1, false, 2, 20); /* 3x3/2 */
    conv_case(3, 4, 3, 5, 3, 1, 1, 1, 0, true, 2, 30);  /* 1x1/1: no im2col */
    conv_case(3, 3, 6, 5, 4, 1, 1, 2, 0, false, 1, 40); /* 1x1/2 (projection shortcut) */
    conv_case(1, 3, 11, 9, 2, 7, 7, 2, 3, true, 1, 50); /* 7x7/2 pad 3 (ImageNet stem) */
    conv_case(3, 2, 8, 7, 3, 2, 3, 3, 2, true, 3, 60);  /* 2x3/3 pad 2 */
}

/* ---- batchnorm ------------------------------------------------------------------------------ */

typedef struct {
    rn_bn_desc d;
    float *in, *gamma, *beta, *out, *r, *mean, *invstd, *rmean, *rvar;
    bool train;
} bn_ctx;

static double bn_objective(void *p) {
    bn_ctx *b = p;
    if (b->train)
        rn_batchnorm_forward_train(b->out, b->mean, b->invstd, b->rmean, b->rvar, b->in,
                                   b->gamma, b->beta, &b->d, 2);
    else
        rn_batchnorm_forward_eval(b->out, b->mean, b->invstd, b->in, b->gamma, b->beta, b->rmean,
                                  b->rvar, &b->d, 2);
    return dot(b->out, b->r, (size_t)b->d.N * b->d.C * b->d.HW);
}

static void bn_case(int N, int C, int HW, bool train, uint64_t seed) {
    bn_ctx b = {.d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f}, .train = train};
    size_t n = (size_t)N * C * HW;
    b.in = fvec(n, seed, -2, 3);
    b.gamma = fvec(C, seed + 1, 0.5f, 1.5f);
    b.beta = fvec(C, seed + 2, -1, 1);
    b.out = zvec(n);
    b.r = fvec(n, seed + 3, -1, 1);
    b.mean = zvec(C), b.invstd = zvec(C);
    b.rmean = fvec(C, seed + 4, -0.5f, 0.5f);
    b.rvar = fvec(C, seed + 5, 0.5f, 2.0f);
    float *din = grad_buf(n), *dg = grad_buf(C), *dbeta = grad_buf(C);
    bn_objective(&b);
    rn_batchnorm_backward(din, dg, dbeta, b.r, b.in, b.mean, b.invstd, b.gamma, &b.d, train, 2);
    grad_added(din, n), grad_added(dg, C), grad_added(dbeta, C);
    printf(" batchnorm %s N=%d C=%d HW=%d\n", train ? "train" : "eval", N, C, HW);
    fd_check("din", b.in, din, n, bn_objective, &b, 1e-2f, 2e-3);
    fd_check("dgamma", b.gamma, dg, C, bn_objective, &b, 1e-2f, 2e-3);
    fd_check("dbeta", b.beta, dbeta, C, bn_objective, &b, 1e-2f, 2e-3);
    free(b.in), free(b.gamma), free(b.beta), free(b.out), free(b.r), free(b.mean);
    free(b.invstd), free(b.rmean), free(b.rvar), free(din), free(dg), free(dbeta);
}

static void test_batchnorm_grad(void **state) {
    bn_case(3, 3, 5, true, 100);
    bn_case(1, 2, 12, true, 110);
    bn_case(4, 3, 1, true, 120); /* the BN of a 1x1 feature map: statistics over the batch only */
    bn_case(3, 3, 5, false, 130);
}

/* ---- relu, add ------------------------------------------------------------------------------ */

typedef struct {
    float *a, *b, *out, *r;
    size_t n;
    int op; /* 0 relu, 1 add */
} ew_ctx;

static double ew_objective(void *p) {
    ew_ctx *e = p;
    if (e->op == 0) rn_relu_forward(e->out, e->a, e->n);
    else rn_add_forward(e->out, e->a, e->b, e->n);
    return dot(e->out, e->r, e->n);
}

static void test_relu_grad(void **state) {
    const size_t n = 300;
    ew_ctx e = {.a = fvec(n, 200, 0.1f, 1), .out = zvec(n), .r = fvec(n, 201, -1, 1), .n = n};
    float *sign = fvec(n, 202, -1, 1);
    for (size_t i = 0; i < n; i++) /* |x| >= 0.1, far from the kink at 0 */
        if (sign[i] < 0) e.a[i] = -e.a[i];
    float *din = grad_buf(n);
    ew_objective(&e);
    rn_relu_backward(din, e.r, e.out, n);
    grad_added(din, n);
    printf(" relu\n");
    fd_check("din", e.a, din, n, ew_objective, &e, 1e-2f, 1e-4);
    free(e.a), free(e.out), free(e.r), free(sign), free(din);
}

static void test_add_grad(void **state) {
    const size_t n = 200;
    ew_ctx e = {.a = fvec(n, 210, -1, 1), .b = fvec(n, 211, -1, 1), .out = zvec(n),
                .r = fvec(n, 212, -1, 1), .n = n, .op = 1};
    float *da = grad_buf(n), *db = grad_buf(n);
    rn_add_backward(da, db, e.r, n);
    grad_added(da, n), grad_added(db, n);
    printf(" add\n");
    fd_check("da", e.a, da, n, ew_objective, &e, 1e-2f, 1e-4);
    fd_check("db", e.b, db, n, ew_objective, &e, 1e-2f, 1e-4);
    free(e.a), free(e.b), free(e.out), free(e.r), free(da), free(db);
}

/* ---- shortcut A ----------------------------------------------------------------------------- */

typedef struct {
    rn_shortcut_a_desc d;
    float *in, *out, *r;
} sc_ctx;

static double sc_objective(void *p) {
    sc_ctx *s = p;
    rn_shortcut_a_forward(s->out, s->in, &s->d);
    return dot(s->out, s->r, (size_t)s->d.N * s->d.K * s->d.Ho * s->d.Wo);
}

static void sc_case(int N, int C, int H, int W, int K, int stride, uint64_t seed) {
    sc_ctx s = {.d = {.N = N, .C = C, .H = H, .W = W, .K = K, .stride = stride}};
    s.d.Ho = (H + stride - 1) / stride;
    s.d.Wo = (W + stride - 1) / stride;
    size_t nin = (size_t)N * C * H * W, nout = (size_t)N * K * s.d.Ho * s.d.Wo;
    s.in = fvec(nin, seed, -1, 1);
    s.out = zvec(nout);
    s.r = fvec(nout, seed + 1, -1, 1);
    float *din = grad_buf(nin);
    rn_shortcut_a_backward(din, s.r, &s.d);
    grad_added(din, nin);
    printf(" shortcut A N=%d C=%d %dx%d K=%d stride %d\n", N, C, H, W, K, stride);
    fd_check("din", s.in, din, nin, sc_objective, &s, 1e-2f, 1e-4);
    free(s.in), free(s.out), free(s.r), free(din);
}

static void test_shortcut_grad(void **state) {
    sc_case(2, 3, 6, 5, 7, 2, 300); /* odd W, odd padding split: 2 zero channels before, 2 after */
    sc_case(2, 4, 5, 4, 8, 2, 310);
    sc_case(1, 3, 4, 4, 3, 1, 320); /* identity */
}

/* ---- pooling -------------------------------------------------------------------------------- */

typedef struct {
    rn_pool_desc d;
    float *in, *out, *r;
    bool avg;
} pool_ctx;

static double pool_objective(void *p) {
    pool_ctx *c = p;
    if (c->avg) {
        rn_avgpool_forward(c->out, c->in, c->d.N, c->d.C, c->d.H * c->d.W);
        return dot(c->out, c->r, (size_t)c->d.N * c->d.C);
    }
    rn_maxpool_forward(c->out, c->in, &c->d);
    return dot(c->out, c->r, (size_t)c->d.N * c->d.C * c->d.Ho * c->d.Wo);
}

static void maxpool_case(int N, int C, int H, int W, int k, int stride, int pad, uint64_t seed) {
    pool_ctx c = {.d = {.N = N, .C = C, .H = H, .W = W, .k = k, .stride = stride, .pad = pad}};
    c.d.Ho = (H + 2 * pad - k) / stride + 1;
    c.d.Wo = (W + 2 * pad - k) / stride + 1;
    size_t nin = (size_t)N * C * H * W, nout = (size_t)N * C * c.d.Ho * c.d.Wo;
    /* Distinct values 0.05 apart in a shuffled order: no ties, and a step of h = 1e-3 never
     * changes which element is a window's maximum. */
    c.in = malloc(sizeof(float) * nin);
    for (size_t i = 0; i < nin; i++) c.in[i] = (float)(0.05 * (double)i - 1.0);
    uint64_t s = seed;
    for (size_t i = nin - 1; i > 0; i--) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t j = (size_t)(s >> 33) % (i + 1);
        float t = c.in[i];
        c.in[i] = c.in[j];
        c.in[j] = t;
    }
    c.out = zvec(nout);
    c.r = fvec(nout, seed + 1, -1, 1);
    float *din = grad_buf(nin);
    rn_maxpool_backward(din, c.r, c.in, &c.d);
    grad_added(din, nin);
    printf(" maxpool N=%d C=%d %dx%d %dx%d/%d pad %d\n", N, C, H, W, k, k, stride, pad);
    fd_check("din", c.in, din, nin, pool_objective, &c, 1e-3f, 1e-3);
    free(c.in), free(c.out), free(c.r), free(din);
}

static void test_maxpool_grad(void **state) {
    maxpool_case(2, 2, 7, 6, 3, 2, 1, 400); /* the ImageNet stem pool */
    maxpool_case(1, 3, 5, 5, 2, 2, 0, 410);
    maxpool_case(2, 1, 6, 7, 3, 1, 1, 420); /* overlapping windows: gradients add up */
}

static void test_avgpool_grad(void **state) {
    pool_ctx c = {.d = {.N = 3, .C = 4, .H = 3, .W = 5}, .avg = true};
    size_t nin = 3 * 4 * 15;
    c.in = fvec(nin, 500, -1, 1);
    c.out = zvec(12);
    c.r = fvec(12, 501, -1, 1);
    float *din = grad_buf(nin);
    rn_avgpool_backward(din, c.r, 3, 4, 15);
    grad_added(din, nin);
    printf(" avgpool N=3 C=4 HW=15\n");
    fd_check("din", c.in, din, nin, pool_objective, &c, 1e-2f, 1e-4);
    free(c.in), free(c.out), free(c.r), free(din);
}

/* ---- linear --------------------------------------------------------------------------------- */

typedef struct {
    float *in, *w, *bias, *out, *r;
    int N, I, O;
} lin_ctx;

static double lin_objective(void *p) {
    lin_ctx *l = p;
    rn_linear_forward(l->out, l->in, l->w, l->bias, l->N, l->I, l->O);
    return dot(l->out, l->r, (size_t)l->N * l->O);
}

static void test_linear_grad(void **state) {
    lin_ctx l = {.N = 3, .I = 17, .O = 10};
    l.in = fvec(3 * 17, 600, -1, 1);
    l.w = fvec(10 * 17, 601, -1, 1);
    l.bias = fvec(10, 602, -1, 1);
    l.out = zvec(30);
    l.r = fvec(30, 603, -1, 1);
    float *din = grad_buf(3 * 17), *dw = grad_buf(10 * 17), *db = grad_buf(10);
    rn_linear_backward(din, dw, db, l.r, l.in, l.w, 3, 17, 10);
    grad_added(din, 3 * 17), grad_added(dw, 10 * 17), grad_added(db, 10);
    printf(" linear N=3 I=17 O=10\n");
    fd_check("din", l.in, din, 3 * 17, lin_objective, &l, 0.05f, 1e-4);
    fd_check("dw", l.w, dw, 10 * 17, lin_objective, &l, 0.05f, 1e-4);
    fd_check("dbias", l.bias, db, 10, lin_objective, &l, 0.05f, 1e-4);
    free(l.in), free(l.w), free(l.bias), free(l.out), free(l.r), free(din), free(dw), free(db);
}

/* ---- softmax cross-entropy ------------------------------------------------------------------ */

typedef struct {
    float *logits, *probs;
    const int *labels;
    int n, k;
    float smoothing, dloss;
} loss_ctx;

static double loss_objective(void *p) {
    loss_ctx *l = p;
    return (double)l->dloss *
           rn_softmax_xent_forward(l->probs, l->logits, l->labels, l->n, l->k, l->smoothing);
}

static void loss_case(float smoothing, uint64_t seed) {
    static const int labels[] = {3, 0, 6, 6};
    loss_ctx l = {.labels = labels, .n = 4, .k = 7, .smoothing = smoothing, .dloss = 0.7f};
    l.logits = fvec(28, seed, -3, 3);
    l.probs = zvec(28);
    float *dl = fvec(28, seed + 1, -1, 1); /* garbage: the backward pass writes, not adds */
    loss_objective(&l);
    rn_softmax_xent_backward(dl, l.probs, labels, 4, 7, smoothing, l.dloss);
    printf(" softmax cross-entropy n=4 k=7 smoothing %g\n", smoothing);
    fd_check("dlogits", l.logits, dl, 28, loss_objective, &l, 1e-2f, 1e-3);
    free(l.logits), free(l.probs), free(dl);
}

static void test_loss_grad(void **state) {
    loss_case(0.0f, 700);
    loss_case(0.1f, 710);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_grad),     cmocka_unit_test(test_batchnorm_grad),
        cmocka_unit_test(test_relu_grad),     cmocka_unit_test(test_add_grad),
        cmocka_unit_test(test_shortcut_grad), cmocka_unit_test(test_maxpool_grad),
        cmocka_unit_test(test_avgpool_grad),  cmocka_unit_test(test_linear_grad),
        cmocka_unit_test(test_loss_grad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
