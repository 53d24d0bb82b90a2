/*
 * test_parity_ops.c — every reference kernel of src/ops/ops.h, and the softmax cross-entropy
 * loss, against PyTorch's numbers in tests/data/ref_ops.safetensors (tools/gen_reference.py).
 *
 * Each case reads its inputs, parameters and upstream gradient "dout" from the file, runs the
 * forward and backward kernels with 1 and 2 threads and compares the output and every gradient
 * (tolerances in testutil.h). Outputs are poisoned with NaN first, so a kernel that leaves an
 * element unwritten fails; backward passes run a second time into the same buffers and must
 * give twice the gradient, since they accumulate (+=).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"

static rn_safetensors ref;

/* ---- small helpers: every array a test takes is kept here and freed by the teardown ------- */

#define MAX_KEPT 64
static void *kept[MAX_KEPT];
static int n_kept;

static void *keep(void *p) {
    assert_non_null(p);
    assert_true(n_kept < MAX_KEPT);
    kept[n_kept++] = p;
    return p;
}

static int free_kept(void **state) {
    (void)state;
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    n_kept = 0;
    return 0;
}

static const char *key(const char *cs, const char *what) {
    static char buf[128];
    snprintf(buf, sizeof buf, "%s.%s", cs, what);
    return buf;
}

/* The reference tensor <cs>.<what> (F32), its element count in *n if n is not NULL. */
static float *get(const char *cs, const char *what, size_t *n) {
    return keep(tu_st_floats(&ref, key(cs, what), n));
}

static const rn_st_tensor *info(const char *cs, const char *what) {
    const rn_st_tensor *t = rn_safetensors_find(&ref, key(cs, what));
    if (!t) fail_msg("reference tensor %s.%s is missing", cs, what);
    return t;
}

/* A fresh buffer of n floats, all NaN (outputs) or all zero (gradients). */
static float *nans(size_t n) {
    float *x = keep(malloc(n * sizeof(float) + 1));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}
static float *zeros(size_t n) { return keep(calloc(n + 1, sizeof(float))); }

static float *twice(const float *x, size_t n) {
    float *y = keep(malloc(n * sizeof(float) + 1));
    for (size_t i = 0; i < n; i++) y[i] = 2.0f * x[i];
    return y;
}

static void check_fwd(const char *cs, const char *what, int nt, const float *a, const float *r,
                      size_t n) {
    char label[96];
    snprintf(label, sizeof label, "%s.%s [%d thr]", cs, what, nt);
    tu_check_fwd(label, a, r, n);
}

static void check_grad(const char *cs, const char *what, int nt, const float *a, const float *r,
                       size_t n) {
    char label[96];
    snprintf(label, sizeof label, "%s.%s [%d thr]", cs, what, nt);
    tu_check_grad(label, a, r, n);
}

/* After a second backward pass into the same buffers: each must hold twice the gradient. */
static void check_accumulated(const char *cs, const char *what, const float *a, const float *r,
                              size_t n) {
    char label[96];
    snprintf(label, sizeof label, "%s.%s accumulated twice", cs, what);
    tu_check_grad(label, a, twice(r, n), n);
}

/* ---- conv2d ------------------------------------------------------------------------------- */

static void run_conv(const char *cs, int stride, int pad, bool has_bias) {
    const rn_st_tensor *xt = info(cs, "x"), *wt = info(cs, "w");
    rn_conv_desc d = {.N = (int)xt->shape[0], .C = (int)xt->shape[1], .H = (int)xt->shape[2],
                      .W = (int)xt->shape[3], .K = (int)wt->shape[0], .R = (int)wt->shape[2],
                      .S = (int)wt->shape[3], .stride = stride, .pad = pad};
    rn_conv_desc_finish(&d);
    tu_st_expect_shape(&ref, key(cs, "out"), 4, (int[]){d.N, d.K, d.Ho, d.Wo});
    size_t nx, nw, nout, nb = 0;
    float *x = get(cs, "x", &nx), *w = get(cs, "w", &nw), *ref_out = get(cs, "out", &nout);
    float *dout = get(cs, "dout", NULL), *ref_dx = get(cs, "dx", NULL), *ref_dw = get(cs, "dw", NULL);
    float *b = has_bias ? get(cs, "b", &nb) : NULL;
    float *ref_db = has_bias ? get(cs, "db", NULL) : NULL;
    for (int nt = 1; nt <= 2; nt++) {
        float *scratch = keep(malloc(rn_conv2d_scratch_floats(&d, nt) * sizeof(float) + 1));
        float *out = nans(nout);
        rn_conv2d_forward(out, x, w, b, &d, scratch, nt);
        check_fwd(cs, "out", nt, out, ref_out, nout);
        float *dx = zeros(nx), *dw = zeros(nw), *db = has_bias ? zeros(nb) : NULL;
        rn_conv2d_backward(dx, dw, db, dout, x, w, &d, scratch, nt);
        check_grad(cs, "dx", nt, dx, ref_dx, nx);
        check_grad(cs, "dw", nt, dw, ref_dw, nw);
        if (has_bias) check_grad(cs, "db", nt, db, ref_db, nb);
        if (nt == 1) {
            rn_conv2d_backward(dx, dw, db, dout, x, w, &d, scratch, nt);
            check_accumulated(cs, "dx", dx, ref_dx, nx);
            check_accumulated(cs, "dw", dw, ref_dw, nw);
            if (has_bias) check_accumulated(cs, "db", db, ref_db, nb);
            /* Only din or only dw, the way a first layer or a frozen one asks. */
            float *dx_only = zeros(nx), *dw_only = zeros(nw);
            rn_conv2d_backward(dx_only, NULL, NULL, dout, x, w, &d, scratch, nt);
            rn_conv2d_backward(NULL, dw_only, NULL, dout, x, w, &d, scratch, nt);
            check_grad(cs, "dx (dw NULL)", nt, dx_only, ref_dx, nx);
            check_grad(cs, "dw (dx NULL)", nt, dw_only, ref_dw, nw);
        }
    }
}

static void test_conv3x3_s1(void **state) { run_conv("conv3x3_s1", 1, 1, false); }
static void test_conv3x3_s2(void **state) { run_conv("conv3x3_s2", 2, 1, false); }
static void test_conv1x1_s2(void **state) { run_conv("conv1x1_s2", 2, 0, false); }
static void test_conv7x7_s2_bias(void **state) { run_conv("conv7x7_s2_bias", 2, 3, true); }
static void test_conv3x3_odd(void **state) { run_conv("conv3x3_odd", 1, 1, false); }

/* ---- batchnorm ---------------------------------------------------------------------------- */

static void run_bn(const char *cs, bool train) {
    const rn_st_tensor *xt = info(cs, "x");
    rn_bn_desc d = {.N = (int)xt->shape[0], .C = (int)xt->shape[1],
                    .HW = (int)(xt->shape[2] * xt->shape[3]), .eps = 1e-5f, .momentum = 0.1f};
    size_t nx, nc;
    float *x = get(cs, "x", &nx), *gamma = get(cs, "gamma", &nc), *beta = get(cs, "beta", NULL);
    float *rm0 = get(cs, "running_mean", NULL), *rv0 = get(cs, "running_var", NULL);
    float *ref_out = get(cs, "out", NULL), *dout = get(cs, "dout", NULL);
    float *ref_dx = get(cs, "dx", NULL), *ref_dgamma = get(cs, "dgamma", NULL);
    float *ref_dbeta = get(cs, "dbeta", NULL);
    assert_int_equal(nc, (size_t)d.C);
    for (int nt = 1; nt <= 2; nt++) {
        float *out = nans(nx), *smean = nans(nc), *sinv = nans(nc);
        if (train) {
            float *rm = keep(malloc(nc * sizeof(float))), *rv = keep(malloc(nc * sizeof(float)));
            memcpy(rm, rm0, nc * sizeof(float));
            memcpy(rv, rv0, nc * sizeof(float));
            rn_batchnorm_forward_train(out, smean, sinv, rm, rv, x, gamma, beta, &d, nt);
            check_fwd(cs, "out", nt, out, ref_out, nx);
            check_fwd(cs, "running_mean", nt, rm, get(cs, "running_mean_after", NULL), nc);
            check_fwd(cs, "running_var", nt, rv, get(cs, "running_var_after", NULL), nc);
        } else {
            rn_batchnorm_forward_eval(out, smean, sinv, x, gamma, beta, rm0, rv0, &d, nt);
            check_fwd(cs, "out", nt, out, ref_out, nx);
        }
        float *dx = zeros(nx), *dgamma = zeros(nc), *dbeta = zeros(nc);
        rn_batchnorm_backward(dx, dgamma, dbeta, dout, x, smean, sinv, gamma, &d, train, nt);
        check_grad(cs, "dx", nt, dx, ref_dx, nx);
        check_grad(cs, "dgamma", nt, dgamma, ref_dgamma, nc);
        check_grad(cs, "dbeta", nt, dbeta, ref_dbeta, nc);
        if (nt == 1) {
            rn_batchnorm_backward(dx, dgamma, dbeta, dout, x, smean, sinv, gamma, &d, train, nt);
            check_accumulated(cs, "dx", dx, ref_dx, nx);
            check_accumulated(cs, "dgamma", dgamma, ref_dgamma, nc);
            check_accumulated(cs, "dbeta", dbeta, ref_dbeta, nc);
        }
    }
}

static void test_bn_train(void **state) { run_bn("bn_train", true); }
static void test_bn_eval(void **state) { run_bn("bn_eval", false); }

/* ---- relu, pooling, linear, shortcut A --------------------------------------------------- */

static void test_relu(void **state) {
    const char *cs = "relu";
    size_t n;
    float *x = get(cs, "x", &n), *dout = get(cs, "dout", NULL);
    float *out = nans(n), *dx = zeros(n);
    rn_relu_forward(out, x, n);
    check_fwd(cs, "out", 1, out, get(cs, "out", NULL), n);
    rn_relu_backward(dx, dout, out, n);
    float *ref_dx = get(cs, "dx", NULL);
    check_grad(cs, "dx", 1, dx, ref_dx, n);
    rn_relu_backward(dx, dout, out, n);
    check_accumulated(cs, "dx", dx, ref_dx, n);
}

/* maxpool: random values (no ties); maxpool_ties: values rounded to a few levels so that about
 * a third of the windows hold a tied maximum, where the gradient must go to the first maximum in
 * row-major scan order, as PyTorch's CPU kernel does (the generator asserts that rule). */
static void run_maxpool(const char *cs) {
    const rn_st_tensor *xt = info(cs, "x");
    rn_pool_desc d = {.N = (int)xt->shape[0], .C = (int)xt->shape[1], .H = (int)xt->shape[2],
                      .W = (int)xt->shape[3], .k = 3, .stride = 2, .pad = 1};
    d.Ho = (d.H + 2 * d.pad - d.k) / d.stride + 1;
    d.Wo = (d.W + 2 * d.pad - d.k) / d.stride + 1;
    tu_st_expect_shape(&ref, key(cs, "out"), 4, (int[]){d.N, d.C, d.Ho, d.Wo});
    size_t nx, nout;
    float *x = get(cs, "x", &nx), *ref_out = get(cs, "out", &nout), *dout = get(cs, "dout", NULL);
    float *ref_dx = get(cs, "dx", NULL);
    float *out = nans(nout), *dx = zeros(nx);
    rn_maxpool_forward(out, x, &d);
    check_fwd(cs, "out", 1, out, ref_out, nout);
    rn_maxpool_backward(dx, dout, x, &d);
    check_grad(cs, "dx", 1, dx, ref_dx, nx);
    rn_maxpool_backward(dx, dout, x, &d);
    check_accumulated(cs, "dx", dx, ref_dx, nx);
}

static void test_maxpool(void **state) { run_maxpool("maxpool"); }
static void test_maxpool_ties(void **state) { run_maxpool("maxpool_ties"); }

static void test_avgpool(void **state) {
    const char *cs = "avgpool";
    const rn_st_tensor *xt = info(cs, "x");
    int N = (int)xt->shape[0], C = (int)xt->shape[1], HW = (int)(xt->shape[2] * xt->shape[3]);
    size_t nx, nout;
    float *x = get(cs, "x", &nx), *ref_out = get(cs, "out", &nout), *dout = get(cs, "dout", NULL);
    float *ref_dx = get(cs, "dx", NULL);
    assert_int_equal(nout, (size_t)N * C);
    float *out = nans(nout), *dx = zeros(nx);
    rn_avgpool_forward(out, x, N, C, HW);
    check_fwd(cs, "out", 1, out, ref_out, nout);
    rn_avgpool_backward(dx, dout, N, C, HW);
    check_grad(cs, "dx", 1, dx, ref_dx, nx);
    rn_avgpool_backward(dx, dout, N, C, HW);
    check_accumulated(cs, "dx", dx, ref_dx, nx);
}

static void test_linear(void **state) {
    const char *cs = "linear";
    const rn_st_tensor *xt = info(cs, "x"), *wt = info(cs, "w");
    int N = (int)xt->shape[0], I = (int)xt->shape[1], O = (int)wt->shape[0];
    size_t nx, nw, nb, nout;
    float *x = get(cs, "x", &nx), *w = get(cs, "w", &nw), *b = get(cs, "b", &nb);
    float *ref_out = get(cs, "out", &nout), *dout = get(cs, "dout", NULL);
    float *ref_dx = get(cs, "dx", NULL), *ref_dw = get(cs, "dw", NULL), *ref_db = get(cs, "db", NULL);
    float *out = nans(nout), *dx = zeros(nx), *dw = zeros(nw), *db = zeros(nb);
    rn_linear_forward(out, x, w, b, N, I, O);
    check_fwd(cs, "out", 1, out, ref_out, nout);
    rn_linear_backward(dx, dw, db, dout, x, w, N, I, O);
    check_grad(cs, "dx", 1, dx, ref_dx, nx);
    check_grad(cs, "dw", 1, dw, ref_dw, nw);
    check_grad(cs, "db", 1, db, ref_db, nb);
    rn_linear_backward(dx, dw, db, dout, x, w, N, I, O);
    check_accumulated(cs, "dx", dx, ref_dx, nx);
    check_accumulated(cs, "dw", dw, ref_dw, nw);
    check_accumulated(cs, "db", db, ref_db, nb);
}

/* 8 -> 16 channels, stride 2 on an odd 9x9 input: out = F.pad(x[:, :, ::2, ::2], 4 zero
 * channels before and 4 after). */
static void test_shortcut_a(void **state) {
    const char *cs = "shortcut_a";
    const rn_st_tensor *xt = info(cs, "x"), *ot = info(cs, "out");
    rn_shortcut_a_desc d = {.N = (int)xt->shape[0], .C = (int)xt->shape[1],
                            .H = (int)xt->shape[2], .W = (int)xt->shape[3],
                            .K = (int)ot->shape[1], .stride = 2};
    d.Ho = (d.H + d.stride - 1) / d.stride;
    d.Wo = (d.W + d.stride - 1) / d.stride;
    tu_st_expect_shape(&ref, key(cs, "out"), 4, (int[]){d.N, d.K, d.Ho, d.Wo});
    size_t nx, nout;
    float *x = get(cs, "x", &nx), *ref_out = get(cs, "out", &nout), *dout = get(cs, "dout", NULL);
    float *ref_dx = get(cs, "dx", NULL);
    float *out = nans(nout), *dx = zeros(nx);
    rn_shortcut_a_forward(out, x, &d);
    check_fwd(cs, "out", 1, out, ref_out, nout);
    rn_shortcut_a_backward(dx, dout, &d);
    check_grad(cs, "dx", 1, dx, ref_dx, nx);
    rn_shortcut_a_backward(dx, dout, &d);
    check_accumulated(cs, "dx", dx, ref_dx, nx);
}

/* ---- softmax cross-entropy ---------------------------------------------------------------- */

static void run_xent(const char *cs, float smoothing) {
    const rn_st_tensor *lt = info(cs, "logits");
    int n = (int)lt->shape[0], k = (int)lt->shape[1];
    size_t nl, nlab;
    float *logits = get(cs, "logits", &nl);
    int *labels = keep(tu_st_ints(&ref, key(cs, "labels"), &nlab));
    assert_int_equal(nlab, (size_t)n);
    float *probs = nans(nl), *dlogits = nans(nl);
    float loss = rn_softmax_xent_forward(probs, logits, labels, n, k, smoothing);
    float ref_loss = (float)tu_st_scalar(&ref, key(cs, "loss"));
    check_fwd(cs, "probs", 1, probs, get(cs, "probs", NULL), nl);
    check_fwd(cs, "loss", 1, &loss, &ref_loss, 1);
    float *ref_dlogits = get(cs, "dlogits", NULL);
    rn_softmax_xent_backward(dlogits, probs, labels, n, k, smoothing, 1.0f);
    check_grad(cs, "dlogits", 1, dlogits, ref_dlogits, nl);
    /* Written, not accumulated, and scaled by dloss. */
    rn_softmax_xent_backward(dlogits, probs, labels, n, k, smoothing, 2.0f);
    check_grad(cs, "dlogits (dloss=2)", 1, dlogits, twice(ref_dlogits, nl), nl);
}

static void test_xent(void **state) { run_xent("xent", 0.0f); }
static void test_xent_label_smoothing(void **state) { run_xent("xent_ls", 0.1f); }

/* ---- main --------------------------------------------------------------------------------- */

static int load_ref(void **state) {
    char path[4096];
    snprintf(path, sizeof path, "%s/ref_ops.safetensors", tu_data_dir());
    rn_status s = rn_safetensors_read(&ref, path);
    if (s != RN_OK) {
        fprintf(stderr, "cannot read %s: %s\n", path, rn_error_message());
        return -1;
    }
    const char *v = rn_safetensors_meta(&ref, "torch_version");
    printf("reference: %s (torch %s)\n", path, v ? v : "?");
    return 0;
}

static int free_ref(void **state) {
    rn_safetensors_free(&ref);
    return 0;
}

#define T(f) cmocka_unit_test_teardown(f, free_kept)

/* An optional argument runs only the tests whose names match it (cmocka pattern). */
int main(int argc, char **argv) {
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        T(test_conv3x3_s1), T(test_conv3x3_s2), T(test_conv1x1_s2), T(test_conv7x7_s2_bias),
        T(test_conv3x3_odd), T(test_bn_train), T(test_bn_eval), T(test_relu), T(test_maxpool),
        T(test_maxpool_ties), T(test_avgpool), T(test_linear), T(test_shortcut_a), T(test_xent),
        T(test_xent_label_smoothing),
    };
    return cmocka_run_group_tests(tests, load_ref, free_ref);
}
