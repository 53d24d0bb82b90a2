/*
 * test_cpu_backend.c — the "cpu" backend against the "reference" backend on whole networks:
 * the same model (same seed) trained one step on each, comparing logits, every parameter
 * gradient, the input gradient and the BN running statistics. Both fast backends: "cpu"
 * (direct convolutions) and "cpu-winograd" (Winograd where it applies; resnet20 only: deeper
 * nets at initialization amplify its larger rounding error, see src/cpu/backend_cpu.c).
 * The models cover every pattern the cpu backend fuses: BN + ReLU and add + ReLU in
 * BasicBlocks with both shortcuts (resnet20: option A, resnet18: projection), and plain nets,
 * where every BN is followed by a ReLU (plain20). Bottlenecks have the same patterns; resnet50
 * itself is left out because at initialization it amplifies any rounding difference (the
 * direct convolutions' summation order alone moves its gradients by 2e-2, with or without
 * fusions).
 */
#include "testutil.h"
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double logits, grads, din, buffers;
} diffs;

/* One training step of `name` on backend `be`; results copied out. */
static void step(const char *name, const rn_model_opts *opts, const char *be, int n,
                 float **logits, float **grads, float **din, float **bufs, size_t *counts) {
    rn_model *m;
    rn_ctx *ctx;
    TU_OK(rn_model_create(&m, name, opts, 42));
    TU_OK(rn_ctx_create(&ctx, be, 2));
    TU_OK(rn_model_reserve(m, ctx, n));
    rn_model_opts o = rn_model_get_opts(m);
    size_t nx = (size_t)n * o.in_channels * o.in_height * o.in_width;
    float *x = malloc(sizeof(float) * nx);
    tu_fill_uniform(x, nx, 7, -2, 2);
    int *labels = malloc(sizeof(int) * n);
    for (int i = 0; i < n; i++) labels[i] = i % o.num_classes;
    const float *lg;
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_TRAIN, &lg));
    size_t nl = (size_t)n * o.num_classes;
    float *probs = malloc(sizeof(float) * nl), *dl = malloc(sizeof(float) * nl);
    rn_softmax_xent_forward(probs, lg, labels, n, o.num_classes, 0.0f);
    rn_softmax_xent_backward(dl, probs, labels, n, o.num_classes, 0.0f, 1.0f);
    *logits = malloc(sizeof(float) * nl);
    memcpy(*logits, lg, sizeof(float) * nl);
    rn_model_zero_grad(m);
    TU_OK(rn_model_backward(m, ctx, dl));
    size_t ng, nb;
    const float *g = rn_model_grads(m, &ng), *b = rn_model_buffers(m, &nb);
    *grads = malloc(sizeof(float) * ng);
    memcpy(*grads, g, sizeof(float) * ng);
    *bufs = malloc(sizeof(float) * nb);
    memcpy(*bufs, b, sizeof(float) * nb);
    *din = malloc(sizeof(float) * nx);
    memcpy(*din, rn_model_input_grad(m), sizeof(float) * nx);
    counts[0] = nl, counts[1] = ng, counts[2] = nx, counts[3] = nb;
    free(x);
    free(labels);
    free(probs);
    free(dl);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

/* Max |a-b| / (1e-3 + max|b|): errors relative to the tensor's scale (gradients of different
 * parameters differ by orders of magnitude). */
static double scaled_diff(const float *a, const float *b, size_t n) {
    double mb = 0;
    for (size_t i = 0; i < n; i++) mb = fmax(mb, fabs(b[i]));
    return tu_max_abs_diff(a, b, n) / (1e-3 + mb);
}

static diffs compare(const char *name, const rn_model_opts *opts, int n, const char *be) {
    float *l[2], *g[2], *d[2], *b[2];
    size_t c[2][4];
    step(name, opts, "reference", n, &l[0], &g[0], &d[0], &b[0], c[0]);
    step(name, opts, be, n, &l[1], &g[1], &d[1], &b[1], c[1]);
    for (int i = 0; i < 4; i++) assert_int_equal(c[0][i], c[1][i]);
    diffs r = {
        .logits = tu_max_rel_diff(l[1], l[0], c[0][0]),
        .grads = scaled_diff(g[1], g[0], c[0][1]),
        .din = scaled_diff(d[1], d[0], c[0][2]),
        .buffers = tu_max_rel_diff(b[1], b[0], c[0][3]),
    };
    for (int i = 0; i < 2; i++) {
        free(l[i]);
        free(g[i]);
        free(d[i]);
        free(b[i]);
    }
    return r;
}

static void check_model(const char *name, const rn_model_opts *opts, int n, int n_backends) {
    const char *backends[] = {"cpu", "cpu-winograd"};
    const double tol = 1e-4;
    for (int a = 0; a < n_backends; a++) {
        diffs r = compare(name, opts, n, backends[a]);
        printf("# %s on %s vs reference: logits %.2e  param grads %.2e  input grad %.2e  "
               "BN buffers %.2e (tolerance %.0e)\n",
               name, backends[a], r.logits, r.grads, r.din, r.buffers, tol);
        if (!(r.logits <= tol && r.grads <= tol && r.din <= tol && r.buffers <= tol))
            fail_msg("%s on %s differs from the reference backend", name, backends[a]);
    }
}

static void test_resnet20(void **state) {
    (void)state;
    check_model("resnet20", NULL, 8, 2);
}

static void test_resnet18_small(void **state) {
    (void)state;
    rn_model_opts o = {.in_channels = 3, .in_height = 16, .in_width = 16, .num_classes = 10};
    check_model("resnet18", &o, 2, 1);
}

static void test_plain20(void **state) {
    (void)state;
    check_model("plain20", NULL, 4, 1);
}

/* Inference with BN folded into the convolutions (RN_MODE_INFER) against the op-by-op eval
 * pass (RN_MODE_EVAL), on weights and BN statistics far from their initial values (the hash
 * fill), for every way a BN follows a convolution: before a ReLU, before the residual add, in
 * a projection shortcut, in Bottlenecks, before the ImageNet stem's max pool; on both fast
 * backends, and on the reference backend, which does not fold (the same bits). A backward
 * pass after an inference pass is refused. */
/* The inference workspace (rn_model_reserve_inference: activations share slots by lifetime)
 * gives the same bits as the training workspace, in eval mode (eval_ref) and in inference
 * mode (infer_ref), in less memory; training and backward passes are refused there until
 * rn_model_reserve makes a training workspace again. */
static void check_inference_workspace(rn_model *m, rn_ctx *ctx, const float *x, int n,
                                      const float *eval_ref, const float *infer_ref) {
    const size_t nl = (size_t)n * rn_model_get_opts(m).num_classes, train_acts = m->plan.act_floats;
    float *a = malloc(sizeof(float) * nl), *b = malloc(sizeof(float) * nl);
    memcpy(b, infer_ref, sizeof(float) * nl); /* infer_ref is in the arena about to go */
    TU_OK(rn_model_reserve_inference(m, ctx, n));
    assert_true(m->plan.inference);
    printf("#   inference workspace: activations %.1f%% of the training workspace's\n",
           100.0 * m->plan.act_floats / train_acts);
    assert_true(m->plan.act_floats < train_acts);
    const float *lg;
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_EVAL, &lg));
    memcpy(a, lg, sizeof(float) * nl);
    assert_memory_equal(a, eval_ref, sizeof(float) * nl);
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_INFER, &lg));
    assert_memory_equal(lg, b, sizeof(float) * nl);
    /* A second call keeps the inference workspace; a training pass and a backward pass fail. */
    TU_OK(rn_model_reserve_inference(m, ctx, n));
    assert_int_equal(rn_model_forward(m, ctx, x, n, RN_MODE_TRAIN, &lg), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "reserved for inference"));
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_EVAL, &lg));
    float *dl = calloc(nl, sizeof(float));
    assert_int_equal(rn_model_backward(m, ctx, dl), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "reserved for inference"));
    /* rn_model_reserve makes a training workspace again, and the eval pass its bits. */
    TU_OK(rn_model_reserve(m, ctx, n));
    assert_false(m->plan.inference);
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_EVAL, &lg));
    assert_memory_equal(lg, eval_ref, sizeof(float) * nl);
    TU_OK(rn_model_backward(m, ctx, dl));
    free(dl);
    free(a);
    free(b);
}

static void check_infer(const char *name, const rn_model_opts *opts, int n, const char *be,
                        double tol) {
    rn_model *m;
    rn_ctx *ctx;
    TU_OK(rn_model_create(&m, name, opts, 3));
    tu_fill_hash_model(m);
    TU_OK(rn_ctx_create(&ctx, be, 2));
    TU_OK(rn_model_reserve(m, ctx, n));
    rn_model_opts o = rn_model_get_opts(m);
    size_t nx = (size_t)n * o.in_channels * o.in_height * o.in_width, nl = (size_t)n * o.num_classes;
    float *x = malloc(sizeof(float) * nx), *ref = malloc(sizeof(float) * nl);
    tu_fill_uniform(x, nx, 9, -2, 2);
    const float *lg;
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_EVAL, &lg));
    memcpy(ref, lg, sizeof(float) * nl);
    TU_OK(rn_model_forward(m, ctx, x, n, RN_MODE_INFER, &lg));
    double e = tu_max_rel_diff(lg, ref, nl);
    printf("# %s on %s: inference (BN folded) vs eval logits %.2e (tolerance %.0e)\n", name, be,
           e, tol);
    if (tol == 0) {
        assert_memory_equal(lg, ref, sizeof(float) * nl);
    } else {
        assert_true(e <= tol);
        /* Folding rounds differently; the same bits would mean it never ran. */
        assert_true(e > 0);
    }
    float *dl = calloc(nl, sizeof(float));
    assert_int_equal(rn_model_backward(m, ctx, dl), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "inference-only"));
    check_inference_workspace(m, ctx, x, n, ref, lg);
    free(dl);
    free(x);
    free(ref);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

static void test_infer_folds_bn(void **state) {
    (void)state;
    rn_model_opts small = {.in_channels = 3, .in_height = 16, .in_width = 16, .num_classes = 10};
    rn_model_opts img = {.in_channels = 3, .in_height = 64, .in_width = 64, .num_classes = 10};
    check_infer("resnet20", NULL, 4, "cpu", 1e-5);
    check_infer("resnet20", NULL, 4, "cpu-winograd", 1e-5);
    check_infer("plain20", NULL, 4, "cpu", 1e-5);
    check_infer("resnet18", &small, 2, "cpu", 1e-5);
    check_infer("resnet50", &small, 2, "cpu", 1e-5);
    check_infer("resnet18-imagenet", &img, 2, "cpu", 1e-5);
    check_infer("resnet20", NULL, 2, "reference", 0);
    check_infer("resnet110", &small, 2, "cpu", 1e-5);
}

static void test_backend_names(void **state) {
    (void)state;
    rn_ctx *ctx;
    TU_OK(rn_ctx_create(&ctx, NULL, 1));
    printf("# default backend: %s\n", rn_ctx_backend_name(ctx));
    assert_string_equal(rn_ctx_backend_name(ctx), "cpu-winograd");
    rn_ctx_free(ctx);
    assert_int_equal(rn_ctx_create(&ctx, "gpu9", 1), RN_ERR_BAD_ARG);
    printf("# unknown backend: %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "cpu, cpu-winograd, cpu-bf16, reference"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_names),
        cmocka_unit_test(test_resnet20),
        cmocka_unit_test(test_resnet18_small),
        cmocka_unit_test(test_plain20),
        cmocka_unit_test(test_infer_folds_bn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
