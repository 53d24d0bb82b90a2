/*
 * test_models.c — the model zoo: parameter counts equal PyTorch's, multiply-adds, state_dict key
 * names and order per family, option checking, and finite-difference gradient checks through a
 * whole BasicBlock and Bottleneck in both BN modes.
 */
#include "testutil.h"

#include "model/model.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int64_t params_of(const char *name, int classes) {
    rn_model *m;
    rn_model_opts o = {.num_classes = classes};
    TU_OK(rn_model_create(&m, name, &o, 0));
    int64_t n = rn_model_param_count(m);
    rn_model_free(m);
    return n;
}

/* The counts PyTorch reports (sum of p.numel() for p in model.parameters()). */
static void test_param_counts(void **state) {
    assert_int_equal(params_of("resnet20", 10), 269722);
    assert_int_equal(params_of("resnet56", 10), 853018);
    assert_int_equal(params_of("resnet110", 10), 1727962);
    assert_int_equal(params_of("resnet18", 10), 11173962);
    assert_int_equal(params_of("resnet18-imagenet", 0), 11689512);
    assert_int_equal(params_of("resnet50-imagenet", 0), 25557032);
    /* Option A has no parameters, so plain twins have the same count. */
    assert_int_equal(params_of("plain20", 10), 269722);
    assert_int_equal(params_of("resnet1202", 10), 19421274);
    assert_int_equal(params_of("resnet34-imagenet", 0), 21797672);
    assert_int_equal(params_of("resnet101-imagenet", 0), 44549160);
    assert_int_equal(params_of("resnet152-imagenet", 0), 60192808);
}

static void test_macs(void **state) {
    rn_model *m;
    TU_OK(rn_model_create(&m, "resnet20", NULL, 0));
    /* conv1 442,368 + stage1 6x2,359,296 + stages 2,3 (1,179,648 + 5x2,359,296 each) + fc 640 */
    assert_int_equal(rn_model_macs(m), 40551040);
    rn_model_free(m);
    TU_OK(rn_model_create(&m, "resnet18-imagenet", NULL, 0));
    assert_int_equal(rn_model_macs(m), 1814073344); /* torchvision's 1.81 GMACs */
    rn_model_free(m);
}

static bool has(const rn_model *m, const char *name) { return rn_model_find_tensor(m, name); }

static void test_key_names(void **state) {
    rn_model *m;
    TU_OK(rn_model_create(&m, "resnet20", NULL, 0));
    assert_true(has(m, "conv1.weight"));
    assert_true(has(m, "layer1.0.bn2.running_var"));
    assert_true(has(m, "layer3.2.conv2.weight"));
    assert_true(has(m, "linear.weight") && has(m, "linear.bias"));
    assert_false(has(m, "layer2.0.shortcut.0.weight"));
    /* state_dict order: conv1, bn1 (weight, bias, running_mean, running_var,
     * num_batches_tracked), layer1.0.conv1, ... */
    assert_string_equal(rn_model_tensor(m, 0)->name, "conv1.weight");
    assert_string_equal(rn_model_tensor(m, 5)->name, "bn1.num_batches_tracked");
    assert_string_equal(rn_model_tensor(m, 6)->name, "layer1.0.conv1.weight");
    assert_string_equal(rn_model_tensor(m, rn_model_num_tensors(m) - 1)->name, "linear.bias");
    assert_int_equal(rn_model_find_tensor(m, "bn1.num_batches_tracked")->kind, RN_TENSOR_COUNTER);
    assert_int_equal(rn_model_num_blocks(m), 9);
    assert_string_equal(rn_model_block_name(m, 3), "layer2.0");
    rn_model_free(m);

    TU_OK(rn_model_create(&m, "resnet18", NULL, 0));
    assert_true(has(m, "layer2.0.shortcut.0.weight") && has(m, "layer2.0.shortcut.1.running_mean"));
    assert_false(has(m, "layer1.0.shortcut.0.weight"));
    assert_true(has(m, "linear.weight"));
    rn_model_free(m);

    TU_OK(rn_model_create(&m, "resnet50-imagenet", NULL, 0));
    assert_true(has(m, "layer1.0.downsample.0.weight")); /* 64 -> 256 channels */
    assert_true(has(m, "layer4.2.conv3.weight") && has(m, "fc.weight"));
    assert_int_equal(rn_model_num_blocks(m), 16);
    const rn_tensor_info *t = rn_model_find_tensor(m, "layer2.0.conv2.weight");
    assert_int_equal(t->shape[0], 128);
    assert_int_equal(t->shape[2], 3);
    rn_model_free(m);
}

static void test_options_and_errors(void **state) {
    rn_model *m = (rn_model *)1;
    assert_int_equal(rn_model_create(&m, "resnet21", NULL, 0), RN_ERR_UNKNOWN_MODEL);
    assert_null(m);
    assert_non_null(strstr(rn_error_message(), "resnet21"));
    rn_model_opts bad = {.in_channels = 9};
    assert_int_equal(rn_model_create(&m, "resnet20", &bad, 0), RN_ERR_BAD_ARG);
    rn_model_opts tiny = {.in_height = 2, .in_width = 2};
    assert_int_equal(rn_model_create(&m, "resnet18-imagenet", &tiny, 0), RN_ERR_BAD_ARG);

    rn_model_opts fm = {.in_channels = 1, .in_height = 28, .in_width = 28, .num_classes = 10};
    TU_OK(rn_model_create(&m, "resnet20", &fm, 0));
    assert_int_equal(rn_model_find_tensor(m, "conv1.weight")->shape[1], 1);
    rn_layer_info last = rn_model_layer(m, rn_model_num_layers(m) - 2);
    assert_int_equal(last.c, 64); /* 28 -> 14 -> 7, pooled */
    rn_model_free(m);
}

/* Same seed, same weights; another seed, other weights; BN starts at 1/0. */
static void test_init(void **state) {
    rn_model *a, *b, *c;
    TU_OK(rn_model_create(&a, "resnet20", NULL, 7));
    TU_OK(rn_model_create(&b, "resnet20", NULL, 7));
    TU_OK(rn_model_create(&c, "resnet20", NULL, 8));
    size_t n;
    float *pa = rn_model_params(a, &n);
    assert_memory_equal(pa, rn_model_params(b, NULL), n * sizeof(float));
    assert_memory_not_equal(pa, rn_model_params(c, NULL), n * sizeof(float));
    const rn_tensor_info *w = rn_model_find_tensor(a, "layer1.0.conv1.weight");
    double ss = 0;
    for (size_t i = 0; i < w->numel; i++) ss += (double)w->data[i] * w->data[i];
    double std = sqrt(ss / w->numel); /* kaiming normal, fan_in 144: sqrt(2/144) = 0.118 */
    assert_true(std > 0.10 && std < 0.135);
    assert_true(rn_model_find_tensor(a, "bn1.weight")->data[3] == 1.0f);
    assert_true(rn_model_find_tensor(a, "bn1.running_var")->data[3] == 1.0f);
    rn_model_free(a);
    rn_model_free(b);
    rn_model_free(c);
}

/* ---- finite differences through a whole block --------------------------------------------- */

/* L = sum(logits * r): a scalar whose gradient w.r.t. the logits is r. */
static double objective(rn_model *m, rn_ctx *ctx, const float *x, int n, rn_mode mode,
                        const float *r) {
    const float *logits;
    TU_OK(rn_model_forward(m, ctx, x, n, mode, &logits));
    double s = 0;
    for (int i = 0; i < n * m->opts.num_classes; i++) s += (double)logits[i] * r[i];
    return s;
}

/* The relative error between an analytic derivative and central differences of the objective
 * w.r.t. *p. ReLU kinks make a single step size unreliable in a small net, so the best of three
 * step sizes counts (a wrong derivative matches none of them). BN buffers are restored after
 * each evaluation, since train-mode passes update them. */
static double fd_error(rn_model *m, rn_ctx *ctx, const float *x, int n, rn_mode mode,
                       const float *r, float *p, double analytic, float *buf, const float *saved,
                       size_t nb) {
    double best = INFINITY;
    for (double eps = 1e-2; eps > 1e-5; eps /= 10) {
        float orig = *p;
        *p = orig + (float)eps;
        double lp = objective(m, ctx, x, n, mode, r);
        *p = orig - (float)eps;
        double lm = objective(m, ctx, x, n, mode, r);
        *p = orig;
        memcpy(buf, saved, nb * sizeof(float));
        double fd = (lp - lm) / (2 * eps);
        double err = fabs(fd - analytic) / (5e-2 + fabs(fd)); /* float noise floor */
        if (err < best) best = err;
    }
    return best;
}

/* Compares analytic gradients with central differences at a few parameter elements of every
 * PARAM tensor and a few input elements. BN running stats are restored around each probe. */
static void check_block_grads(rn_model *m, rn_mode mode) {
    rn_ctx *ctx;
    TU_OK(rn_ctx_create(&ctx, "reference", 1));
    const int n = 3;
    rn_model_opts o = m->opts;
    size_t xn = (size_t)n * o.in_channels * o.in_height * o.in_width;
    float *x = malloc(xn * sizeof(float));
    float r[3 * 16];
    tu_fill_uniform(x, xn, 1, -1, 1);
    tu_fill_uniform(r, (size_t)n * o.num_classes, 2, -1, 1);
    /* Make eval mode non-trivial. */
    size_t nb;
    float *buf = rn_model_buffers(m, &nb);
    tu_fill_uniform(buf, nb, 3, 0.2f, 1.0f);
    float *saved = malloc(nb * sizeof(float));
    memcpy(saved, buf, nb * sizeof(float));
    TU_OK(rn_model_reserve(m, ctx, n));
    rn_model_zero_grad(m);
    objective(m, ctx, x, n, mode, r);
    TU_OK(rn_model_backward(m, ctx, r));
    const float *dx = rn_model_input_grad(m);
    double worst = 0;
    for (int ti = 0; ti < rn_model_num_tensors(m); ti++) {
        const rn_tensor_info *t = rn_model_tensor(m, ti);
        if (t->kind != RN_TENSOR_PARAM) continue;
        for (int k = 0; k < 3; k++) {
            size_t i = (size_t)(k * 7919) % t->numel;
            double err = fd_error(m, ctx, x, n, mode, r, &t->data[i], t->grad[i], buf, saved, nb);
            if (err > worst) worst = err;
            if (err > 1e-2) fail_msg("%s[%zu]: analytic %g, relative error %g", t->name, i,
                                     t->grad[i], err);
        }
    }
    for (int k = 0; k < 6; k++) {
        size_t i = (size_t)(k * 104729) % xn;
        double err = fd_error(m, ctx, x, n, mode, r, &x[i], dx[i], buf, saved, nb);
        if (err > worst) worst = err;
        if (err > 1e-2) fail_msg("input[%zu]: analytic %g, relative error %g", i, dx[i], err);
    }
    printf("    %s, %s mode: max relative gradient error %.2e\n", m->name,
           mode == RN_MODE_TRAIN ? "train" : "eval", worst);
    free(x);
    free(saved);
    rn_ctx_free(ctx);
}

/* input (C,6,6) -> block(planes, stride 2) -> avgpool -> linear(5). */
static rn_model *block_model(rn_family family, bool bottleneck, bool plain) {
    rn_model_opts o = {.in_channels = 4, .in_height = 6, .in_width = 6, .num_classes = 5};
    rn_model *m = rn_graph_new(bottleneck ? "bottleneck" : "basicblock", &o, family);
    int x = bottleneck ? rn_graph_bottleneck(m, "block", 0, 3, 2, plain)
                       : rn_graph_basic_block(m, "block", 0, 8, 2, plain);
    x = rn_graph_avgpool(m, x);
    rn_graph_linear(m, "fc", x, 5);
    TU_OK(rn_graph_finish(m, 11));
    return m;
}

static void test_basic_block_grads(void **state) {
    for (int mode = 0; mode < 2; mode++) {
        rn_model *a = block_model(RN_FAMILY_CIFAR_A, false, false); /* option A shortcut */
        check_block_grads(a, (rn_mode)mode);
        rn_model_free(a);
        rn_model *b = block_model(RN_FAMILY_CIFAR_B, false, false); /* 1x1 conv + BN */
        check_block_grads(b, (rn_mode)mode);
        rn_model_free(b);
        rn_model *p = block_model(RN_FAMILY_CIFAR_A, false, true); /* plain */
        check_block_grads(p, (rn_mode)mode);
        rn_model_free(p);
    }
}

static void test_bottleneck_grads(void **state) {
    for (int mode = 0; mode < 2; mode++) {
        rn_model *m = block_model(RN_FAMILY_IMAGENET, true, false);
        check_block_grads(m, (rn_mode)mode);
        rn_model_free(m);
    }
}

/* Train mode updates BN running stats and counts batches; eval mode leaves them. */
static void test_bn_running_stats(void **state) {
    rn_model *m;
    rn_ctx *ctx;
    TU_OK(rn_model_create(&m, "resnet20", NULL, 1));
    TU_OK(rn_ctx_create(&ctx, "reference", 2));
    TU_OK(rn_model_reserve(m, ctx, 2));
    float x[2 * 3 * 32 * 32];
    tu_fill_uniform(x, sizeof x / sizeof x[0], 5, -2, 2);
    const float *logits;
    const rn_tensor_info *rm = rn_model_find_tensor(m, "bn1.running_mean");
    const rn_tensor_info *cnt = rn_model_find_tensor(m, "layer2.1.bn1.num_batches_tracked");
    TU_OK(rn_model_forward(m, ctx, x, 2, RN_MODE_EVAL, &logits));
    assert_true(rm->data[0] == 0.0f && *cnt->counter == 0);
    TU_OK(rn_model_forward(m, ctx, x, 2, RN_MODE_TRAIN, &logits));
    TU_OK(rn_model_forward(m, ctx, x, 2, RN_MODE_TRAIN, &logits));
    assert_true(rm->data[0] != 0.0f);
    assert_int_equal(*cnt->counter, 2);
    /* Gradient flow: every block input gets a nonzero gradient after a backward pass. */
    float dl[2 * 10];
    tu_fill_uniform(dl, 20, 9, -1, 1);
    TU_OK(rn_model_backward(m, ctx, dl));
    for (int b = 0; b < rn_model_num_blocks(m); b++)
        assert_true(rn_model_block_input_grad_norm(m, b) > 0);
    assert_int_equal(rn_model_forward(m, ctx, x, 3, RN_MODE_EVAL, &logits), RN_ERR_BAD_ARG);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

/* The memory plan: in-place ReLU/add and shared gradient slots keep the workspace small, and
 * depth barely changes the number of gradient slabs. */
static void test_memory_plan(void **state) {
    const char *names[] = {"resnet20", "resnet110", "plain56", "resnet50-imagenet"};
    for (int k = 0; k < 4; k++) {
        rn_model *m;
        rn_ctx *ctx;
        TU_OK(rn_model_create(&m, names[k], NULL, 0));
        TU_OK(rn_ctx_create(&ctx, "reference", 1));
        TU_OK(rn_model_reserve(m, ctx, 2));
        size_t naive = 0, slab = 0;
        for (int v = 1; v < m->n_values; v++) {
            size_t f = (size_t)m->values[v].c * m->values[v].h * m->values[v].w * 2;
            naive += f;
            if (f > slab) slab = f;
        }
        size_t slots = m->plan.grad_floats / slab;
        printf("    %-18s activations %5.1f%% of one slab per value, %zu gradient slabs\n",
               names[k], 100.0 * m->plan.act_floats / naive, slots);
        assert_true(m->plan.act_floats < 0.7 * naive);
        assert_true(slots <= 5);
        rn_ctx_free(ctx);
        rn_model_free(m);
    }
}

/* Resident pages (mincore) of the pages that hold the n bytes at p. */
static size_t resident_pages(const void *p, size_t n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), skew = (uintptr_t)p % page;
    const size_t np = (n + skew + page - 1) / page;
    unsigned char *v = malloc(np);
    assert_int_equal(mincore((char *)p - skew, n + skew, v), 0);
    size_t r = 0;
    for (size_t i = 0; i < np; i++) r += v[i] & 1;
    free(v);
    return r;
}

/* The gradient block takes no memory in a model that only infers: its pages stay untouched
 * through creation, an inference workspace and forward passes; a backward pass writes them. */
static void test_grads_untouched_by_inference(void **state) {
    (void)state;
    rn_model *m;
    rn_ctx *ctx;
    TU_OK(rn_model_create(&m, "resnet50-imagenet", NULL, 1));
    TU_OK(rn_ctx_create(&ctx, "cpu", 2));
    size_t n;
    const float *g = rn_model_grads(m, &n);
    const size_t bytes = n * sizeof(float);
    TU_OK(rn_model_reserve_inference(m, ctx, 1));
    rn_model_opts o = rn_model_get_opts(m);
    const size_t nx = (size_t)o.in_channels * o.in_height * o.in_width;
    float *x = malloc(nx * sizeof(float));
    tu_fill_uniform(x, nx, 3, -1, 1);
    const float *logits;
    TU_OK(rn_model_forward(m, ctx, x, 1, RN_MODE_INFER, &logits));
    TU_OK(rn_model_forward(m, ctx, x, 1, RN_MODE_EVAL, &logits));
    const size_t before = resident_pages(g, bytes);
    printf("    resnet50-imagenet: %zu of %zu gradient pages resident after inference\n", before,
           (bytes + 4095) / 4096);
    assert_int_equal(before, 0);
    TU_OK(rn_model_reserve(m, ctx, 2));
    float *x2 = calloc(2 * nx, sizeof(float)), dl[2 * 1000] = {0};
    memcpy(x2, x, nx * sizeof(float));
    dl[0] = 1, dl[1000 + 7] = -1;
    TU_OK(rn_model_forward(m, ctx, x2, 2, RN_MODE_TRAIN, &logits));
    TU_OK(rn_model_backward(m, ctx, dl));
    const size_t after = resident_pages(g, bytes);
    printf("    ... %zu after a backward pass\n", after);
    assert_true(after > 0.9 * ((bytes + 4095) / 4096));
    free(x);
    free(x2);
    rn_ctx_free(ctx);
    rn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts),      cmocka_unit_test(test_macs),
        cmocka_unit_test(test_key_names),         cmocka_unit_test(test_options_and_errors),
        cmocka_unit_test(test_init),              cmocka_unit_test(test_basic_block_grads),
        cmocka_unit_test(test_bottleneck_grads),  cmocka_unit_test(test_bn_running_stats),
        cmocka_unit_test(test_memory_plan),
        cmocka_unit_test(test_grads_untouched_by_inference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
