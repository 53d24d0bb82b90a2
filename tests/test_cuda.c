/*
 * test_cuda.c — the CUDA backend against the CPU reference kernels, on a GPU.
 *
 * Per small net of one or two ops (every op and fusion) and per model (residual, plain,
 * BasicBlock with 1x1 shortcuts, the ImageNet stem with max pooling, Bottleneck), in each
 * precision: one training-mode forward and backward pass on the GPU and on the CPU's
 * reference backend from the same weights and inputs; compared are the logits, every
 * parameter's gradient, the input gradient, the block input gradient norms and the BN running
 * statistics, each as ||gpu - cpu|| / ||cpu||. Whole-model gradients in fp32 are held to the
 * float rounding noise of the model itself (two correct CPU implementations differ by up to
 * 1e-2 on deep plain nets at initialization), the small nets to per-op tolerances. Then a few graph-captured training steps (batch building and
 * augmentation on the GPU, SGD) against the same steps on the CPU, evaluation against
 * rn_evaluate, and the state round trip. Without a GPU (or in a build without CUDA) every test
 * is skipped with a message.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "model/model.h"
#include "cuda/gpu.h"
#include "exec/step.h"
#include "train/train.h"

static bool have_gpu;

/* Whether a GPU is required (RN_REQUIRE_GPU=1, set by dev/cuda/check.sh and by CI where a GPU
 * is present): then "no GPU" fails the program instead of skipping every test. Without it,
 * only the absence of a GPU or of the NVIDIA driver skips; any other failure to count or open
 * the GPU (a driver too old, missing cuDNN, out of memory, a bug in opening) always fails. */
static int probe(void **state) {
    const char *req = getenv("RN_REQUIRE_GPU");
    const bool required = req && !strcmp(req, "1");
    int n = 0;
    if (rn_gpu_count(&n) != RN_OK) {
        printf("FAIL: cannot count the CUDA GPUs: %s\n", rn_error_message());
        return -1;
    }
    if (n == 0) {
        const char *why = rn_cuda_built() ? "this machine has no CUDA GPU (or no NVIDIA driver)"
                                          : "this build has no CUDA (make CUDA=1)";
        if (required) {
            printf("FAIL: RN_REQUIRE_GPU=1, but %s\n", why);
            return -1;
        }
        printf("no GPU, every CUDA test is skipped: %s\n", why);
        return 0;
    }
    rn_model *m;
    rn_model_opts o = {3, 32, 32, 10};
    if (rn_model_create(&m, "resnet8", &o, 1) != RN_OK) return -1;
    rn_gpu *g;
    rn_status s = rn_gpu_open(&g, 0, m, 2, RN_PRECISION_FP32);
    if (s == RN_OK) printf("GPU: %s\n", rn_gpu_describe(g));
    else printf("FAIL: the machine has %d CUDA GPU(s), but opening cuda:0 failed: %s\n", n,
                rn_error_message());
    rn_gpu_close(g);
    rn_model_free(m);
    have_gpu = s == RN_OK;
    return have_gpu ? 0 : -1;
}

#define NEED_GPU()                                                                             \
    do {                                                                                       \
        if (!have_gpu) skip();                                                                 \
    } while (0)

/* ||a - b|| / ||b|| (b the reference; absolute when b is zero). */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

static float *dup(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float));
    assert_non_null(y);
    memcpy(y, x, n * sizeof(float));
    return y;
}

typedef struct {
    const char *model;
    int h, w, batch;
} parity_case;

/* The relative difference of the gradient vector between two correct fp32 implementations
 * (the fast CPU backend and the reference): how far float rounding alone moves this model's
 * gradients, the floor under any comparison of whole-model gradients. */
static double fp32_noise(rn_model *m, const float *x, const int *labels, int B) {
    const int K = m->opts.num_classes;
    float *probs = malloc(B * K * sizeof(float)), *dl = malloc(B * K * sizeof(float));
    float *buf0 = dup(m->buffers, m->n_buffers), *g[2];
    const char *names[2] = {"reference", "cpu"};
    for (int k = 0; k < 2; k++) {
        rn_ctx *ctx;
        assert_int_equal(rn_ctx_create(&ctx, names[k], 0), RN_OK);
        assert_int_equal(rn_model_reserve(m, ctx, B), RN_OK);
        memcpy(m->buffers, buf0, m->n_buffers * sizeof(float));
        const float *logits;
        assert_int_equal(rn_model_forward(m, ctx, x, B, RN_MODE_TRAIN, &logits), RN_OK);
        rn_softmax_xent_forward(probs, logits, labels, B, K, 0);
        rn_softmax_xent_backward(dl, probs, labels, B, K, 0, 1);
        rn_model_zero_grad(m);
        assert_int_equal(rn_model_backward(m, ctx, dl), RN_OK);
        g[k] = dup(m->grads, m->n_params);
        rn_ctx_free(ctx);
    }
    memcpy(m->buffers, buf0, m->n_buffers * sizeof(float));
    double e = rel_err(g[1], g[0], m->n_params);
    free(probs), free(dl), free(buf0), free(g[0]), free(g[1]);
    return e;
}

/* One forward + backward of model m on both sides, compared. Logits and running statistics
 * must agree within tol_out; the whole gradient vector within tol_grad, or, for fp32 (tol_grad
 * < 0), within 4 times the fp32 noise of this model (fp32_noise) plus 1e-5. */
static void pass_parity_model(rn_model *m, int B, rn_precision p, double tol_out,
                              double tol_grad) {
    const int K = m->opts.num_classes;
    const size_t per = (size_t)m->opts.in_channels * m->opts.in_height * m->opts.in_width;
    float *x = malloc(B * per * sizeof(float)), *probs = malloc(B * K * sizeof(float));
    float *dl = malloc(B * K * sizeof(float)), *lg = malloc(B * K * sizeof(float));
    float *din = malloc(B * per * sizeof(float));
    int *labels = malloc(B * sizeof(int));
    tu_fill_uniform(x, B * per, 11, -2, 2);
    for (int i = 0; i < B; i++) labels[i] = (i * 7) % K;
    double noise = 0;
    if (tol_grad < 0) {
        noise = fp32_noise(m, x, labels, B);
        tol_grad = 4 * noise + 1e-5;
    }

    rn_gpu *g;
    assert_int_equal(rn_gpu_open(&g, 0, m, B, p), RN_OK);
    float *params0 = dup(m->params, m->n_params);

    rn_ctx *ctx;
    assert_int_equal(rn_ctx_create(&ctx, "reference", 0), RN_OK);
    assert_int_equal(rn_model_reserve(m, ctx, B), RN_OK);
    const float *logits;
    assert_int_equal(rn_model_forward(m, ctx, x, B, RN_MODE_TRAIN, &logits), RN_OK);
    float *logits_c = dup(logits, B * K);
    rn_softmax_xent_forward(probs, logits, labels, B, K, 0);
    rn_softmax_xent_backward(dl, probs, labels, B, K, 0, 1);
    rn_model_zero_grad(m);
    assert_int_equal(rn_model_backward(m, ctx, dl), RN_OK);
    float *grads_c = dup(m->grads, m->n_params);
    float *din_c = dup(rn_model_input_grad(m), B * per);
    float *buf_c = dup(m->buffers, m->n_buffers);
    int nb = rn_model_num_blocks(m);
    double *norms_c = malloc((nb + 1) * sizeof(double));
    for (int b = 0; b < nb; b++) norms_c[b] = rn_model_block_input_grad_norm(m, b);

    assert_int_equal(rn_gpu_forward(g, x, B, RN_MODE_TRAIN, lg), RN_OK);
    assert_int_equal(rn_gpu_backward(g, dl), RN_OK);
    assert_int_equal(rn_gpu_download_grads(g, din), RN_OK);
    double e_out = rel_err(lg, logits_c, B * K), e_grad = 0, e_norm = 0;
    double e_all = rel_err(m->grads, grads_c, m->n_params); /* the whole gradient vector */
    const char *worst = "";
    for (int t = 0; t < m->n_tensors; t++) {
        const rn_tensor_entry *e = &m->tensors[t];
        if (e->info.kind != RN_TENSOR_PARAM) continue;
        double r = rel_err(m->grads + e->off, grads_c + e->off, e->info.numel);
        if (r > e_grad) {
            e_grad = r;
            worst = e->info.name;
        }
    }
    double e_din = rel_err(din, din_c, B * per);
    for (int b = 0; b < nb; b++) {
        double r = fabs(rn_model_block_input_grad_norm(m, b) - norms_c[b]) / norms_c[b];
        if (r > e_norm) e_norm = r;
    }
    assert_int_equal(rn_gpu_download(g, NULL), RN_OK);
    double e_buf = rel_err(m->buffers, buf_c, m->n_buffers);
    double e_par = rel_err(m->params, params0, m->n_params);
    printf("  %-18s %s: logits %.2e  gradient %.2e (fp32 noise %.2e; worst tensor %.2e, %s)  "
           "input grad %.2e  block norms %.2e  running stats %.2e  weights round trip %.1e\n",
           rn_model_name(m), rn_precision_name(p), e_out, e_all, noise, e_grad, worst, e_din,
           e_norm, e_buf, e_par);
    assert_true(e_out <= tol_out);
    assert_true(e_all <= tol_grad);
    assert_true(e_norm <= tol_grad);
    assert_true(e_buf <= tol_out);
    assert_true(e_par == 0);

    /* Eval mode, from the running statistics both sides now share. */
    assert_int_equal(rn_model_forward(m, ctx, x, B - 1, RN_MODE_EVAL, &logits), RN_OK);
    assert_int_equal(rn_gpu_forward(g, x, B - 1, RN_MODE_EVAL, lg), RN_OK);
    double e_eval = rel_err(lg, logits, (B - 1) * K);
    printf("  %-18s %s: eval-mode logits %.2e\n", rn_model_name(m), rn_precision_name(p), e_eval);
    assert_true(e_eval <= tol_out);

    rn_gpu_close(g);
    rn_ctx_free(ctx);
    free(x), free(probs), free(dl), free(lg), free(din), free(labels), free(params0);
    free(logits_c), free(grads_c), free(din_c), free(buf_c), free(norms_c);
}

static void pass_parity(const parity_case *pc, rn_precision p, double tol_out, double tol_grad) {
    rn_model_opts o = {3, pc->h, pc->w, 10};
    rn_model *m;
    assert_int_equal(rn_model_create(&m, pc->model, &o, 7), RN_OK);
    pass_parity_model(m, pc->batch, p, tol_out, tol_grad);
    rn_model_free(m);
}

/* Small nets of one or two ops each, so that the errors are those of single ops (a chain of
 * many layers amplifies rounding, see fp32_noise): every kind of node, every fusion, strided
 * and 1x1 convolutions, both shortcut kinds. */
static rn_model *small_net(int which) {
    rn_model_opts o = {3, 16, 16, 10};
    rn_model *m = rn_graph_new(which == 2 ? "net-block-a" : "net-ops", &o,
                               which == 2 ? RN_FAMILY_CIFAR_A : RN_FAMILY_CIFAR_B);
    int x = 0;
    switch (which) {
    case 0: /* conv + BN alone, average pool, classifier */
        x = rn_graph_bn(m, "bn1", rn_graph_conv(m, "conv1", x, 16, 3, 1, 1, false));
        break;
    case 1: /* BN + ReLU fused; a strided conv */
        x = rn_graph_relu(m, rn_graph_bn(m, "bn1", rn_graph_conv(m, "conv1", x, 16, 3, 1, 1, false)));
        x = rn_graph_relu(m, rn_graph_bn(m, "bn2", rn_graph_conv(m, "conv2", x, 32, 3, 2, 1, false)));
        break;
    case 2: /* a residual block with the option-A shortcut: BN + add + ReLU fused */
        x = rn_graph_relu(m, rn_graph_bn(m, "bn1", rn_graph_conv(m, "conv1", x, 16, 3, 1, 1, false)));
        x = rn_graph_basic_block(m, "layer1.0", x, 32, 2, false);
        break;
    case 3: /* max pool; a block with a 1x1 conv shortcut */
        x = rn_graph_relu(m, rn_graph_bn(m, "bn1", rn_graph_conv(m, "conv1", x, 64, 3, 1, 1, false)));
        x = rn_graph_maxpool(m, x, 3, 2, 1);
        x = rn_graph_basic_block(m, "layer1.0", x, 128, 2, false);
        break;
    }
    x = rn_graph_avgpool(m, x);
    rn_graph_linear(m, "linear", x, 10);
    assert_int_equal(rn_graph_finish(m, 9), RN_OK);
    return m;
}

static void ops_parity(rn_precision p, double tol) {
    for (int which = 0; which < 4; which++) {
        rn_model *m = small_net(which);
        pass_parity_model(m, 8, p, tol, tol);
        rn_model_free(m);
    }
}
static void test_ops_fp32(void **state) {
    NEED_GPU();
    ops_parity(RN_PRECISION_FP32, 1e-4);
}
static void test_ops_tf32(void **state) {
    NEED_GPU();
    ops_parity(RN_PRECISION_TF32, 5e-3);
}
/* bf16 holds activations and their gradients in bf16 (8 significant bits), so gradients
 * reach a few 1e-2 even over two layers (measured on an H100: logits <= 2.8e-3, gradients
 * <= 7.8e-2). */
static void test_ops_bf16(void **state) {
    NEED_GPU();
    ops_parity(RN_PRECISION_BF16, 1e-1);
}

static const parity_case cases[] = {
    {"resnet20", 32, 32, 32},          {"plain20", 32, 32, 16},
    {"resnet18", 32, 32, 8},           {"resnet18-imagenet", 64, 64, 4},
    {"resnet50-imagenet", 64, 64, 4},
};

/* Whole models. Measured on an H100 (cuDNN 9.14): fp32 logits <= 6e-5 (resnet50) and
 * gradients at the fp32 noise of each model; tf32 logits <= 6.8e-3 and gradients <= 0.23
 * (resnet50-imagenet: 53 layers of TF32 rounding, amplified like the fp32 noise); bf16
 * resnet20 logits 4e-3, gradient 0.16. Deep plain nets amplify rounding a hundredfold (two
 * fp32 CPU implementations differ by 7e-3 on plain20), so bf16 is held to the residual net. */
static void test_parity_fp32(void **state) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        pass_parity(&cases[i], RN_PRECISION_FP32, 1e-4, -1);
}
static void test_parity_tf32(void **state) {
    NEED_GPU();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        pass_parity(&cases[i], RN_PRECISION_TF32, 1e-2, 0.3);
}
static void test_parity_bf16(void **state) {
    NEED_GPU();
    pass_parity(&cases[0], RN_PRECISION_BF16, 2e-2, 0.3);
}

/* A small labelled set of random images. */
static void make_set(rn_dataset *d, int n, int h, int w, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = 3;
    d->h = h;
    d->w = w;
    d->num_classes = 10;
    d->images = malloc((size_t)n * 3 * h * w);
    d->labels = malloc((size_t)n * sizeof(int32_t));
    d->class_names = calloc(10, sizeof(char *));
    for (int k = 0; k < 10; k++) d->class_names[k] = strdup("c");
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)n * 3 * h * w; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        d->images[i] = (uint8_t)(s >> 56);
    }
    for (int i = 0; i < n; i++) d->labels[i] = (i * 3 + 1) % 10;
}

/* Graph-captured training steps against the trainer's CPU step (rn_batch_fill, reference
 * kernels, rn_sgd_step) with augmentation and momentum: the GPU builds the same batches. */
static void test_train_steps(void **state) {
    NEED_GPU();
    const int B = 16, n = 64, steps = 6, K = 10;
    rn_dataset d;
    make_set(&d, n, 32, 32, 5);
    rn_norm norm = rn_dataset_norm(&d);
    rn_model_opts o = {3, 32, 32, K};
    rn_model *m;
    assert_int_equal(rn_model_create(&m, "resnet20", &o, 3), RN_OK);
    rn_gpu *g;
    assert_int_equal(rn_gpu_open(&g, 0, m, B, RN_PRECISION_FP32), RN_OK);
    float *w0 = dup(m->params, m->n_params);
    int order[64];
    for (int i = 0; i < n; i++) order[i] = (i * 37) % n;
    float lrs[6] = {0.02f, 0.02f, 0.02f, 0.01f, 0.01f, 0.005f};
    rn_gpu_train_opts to = {.batch = B, .momentum = 0.9f, .wd = 5e-4f, .nesterov = true,
                            .wd_skip_bn = true, .augment = true, .seed = 42};
    assert_int_equal(rn_gpu_train_init(g, &d, &norm, &to, lrs, steps, 0), RN_OK);
    assert_int_equal(rn_gpu_train_set_order(g, order), RN_OK);
    double loss_g = 0, step_loss_g[6], step_loss_c[6];
    int64_t correct_g;
    for (int s = 0; s < steps; s++) {
        assert_int_equal(rn_gpu_train_steps(g, 1), RN_OK);
        assert_int_equal(rn_gpu_train_metrics(g, &step_loss_g[s], &correct_g), RN_OK);
        loss_g += step_loss_g[s];
    }
    float *vel_g = calloc(m->n_params, sizeof(float));
    /* The CPU's steps, from the same start. */
    rn_ctx *ctx;
    assert_int_equal(rn_ctx_create(&ctx, "reference", 0), RN_OK);
    assert_int_equal(rn_model_reserve(m, ctx, B), RN_OK);
    float *vel = calloc(m->n_params, sizeof(float));
    float *x = malloc((size_t)B * 3 * 32 * 32 * sizeof(float));
    float *probs = malloc(B * K * sizeof(float)), *dl = malloc(B * K * sizeof(float));
    int labels[16];
    double loss_c = 0;
    for (int s = 0; s < steps; s++) {
        int b = s % (n / B);
        rn_batch_fill(x, labels, &d, order + b * B, B, &norm, true, 42, s, 1);
        const float *logits;
        assert_int_equal(rn_model_forward(m, ctx, x, B, RN_MODE_TRAIN, &logits), RN_OK);
        step_loss_c[s] = rn_softmax_xent_forward(probs, logits, labels, B, K, 0);
        loss_c += step_loss_c[s];
        rn_softmax_xent_backward(dl, probs, labels, B, K, 0, 1);
        rn_model_zero_grad(m);
        assert_int_equal(rn_model_backward(m, ctx, dl), RN_OK);
        rn_sgd_step(m, vel, lrs[s], 0.9f, 5e-4f, true, true);
    }
    float *w_c = dup(m->params, m->n_params), *buf_c = dup(m->buffers, m->n_buffers);
    int64_t counter_c = m->counters[0];
    assert_int_equal(rn_gpu_download(g, vel_g), RN_OK);
    /* The update each side made, compared. */
    double dd = 0, dr = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        double a = (double)m->params[i] - w0[i], b = (double)w_c[i] - w0[i];
        dd += (a - b) * (a - b);
        dr += b * b;
    }
    double e_upd = sqrt(dd / dr), e_vel = rel_err(vel_g, vel, m->n_params);
    double e_buf = rel_err(m->buffers, buf_c, m->n_buffers);
    printf("  per-step loss GPU / CPU:");
    for (int s = 0; s < steps; s++) printf(" %.6f/%.6f", step_loss_g[s], step_loss_c[s]);
    printf("\n");
    printf("  %d steps: loss GPU %.6f CPU %.6f; weight updates %.2e, momentum %.2e, running "
           "stats %.2e; BN counter %lld (CPU %lld)\n",
           steps, loss_g, loss_c, e_upd, e_vel, e_buf, (long long)m->counters[0],
           (long long)counter_c);
    /* The same first batch (augmentation drawn alike), then losses that drift apart only as
     * float rounding grows over steps at a high learning rate on random labels. */
    assert_true(fabs(step_loss_g[0] - step_loss_c[0]) <= 1e-5 * step_loss_c[0]);
    assert_true(fabs(step_loss_g[1] - step_loss_c[1]) <= 1e-4 * step_loss_c[1]);
    assert_true(fabs(loss_g - loss_c) <= 1e-2 * steps);
    assert_true(e_upd <= 0.2);
    assert_true(e_vel <= 0.5);
    assert_true(e_buf <= 1e-3);
    assert_int_equal(m->counters[0], counter_c + steps);

    /* Evaluation against rn_evaluate, with a partial last batch. */
    rn_eval_result rg, rc;
    assert_int_equal(rn_gpu_evaluate(g, &d, &norm, &rg), RN_OK);
    assert_int_equal(rn_evaluate(m, ctx, &d, &norm, B, &rc), RN_OK);
    printf("  evaluation: top1 GPU %.4f CPU %.4f, loss GPU %.6f CPU %.6f\n", rg.top1, rc.top1,
           rg.loss, rc.loss);
    assert_true(fabs(rg.loss - rc.loss) <= 1e-3 * (1 + rc.loss));
    assert_true(fabs(rg.top1 - rc.top1) <= 2.0 / n);
    rn_eval_result_free(&rg);
    rn_eval_result_free(&rc);

    rn_gpu_close(g);
    rn_ctx_free(ctx);
    rn_model_free(m);
    rn_dataset_free(&d);
    free(w0), free(vel_g), free(vel), free(x), free(probs), free(dl), free(w_c), free(buf_c);
}

/* Bad input gives errors, not crashes. */
static void test_errors(void **state) {
    rn_model_opts o = {3, 32, 32, 10};
    rn_model *m;
    assert_int_equal(rn_model_create(&m, "resnet8", &o, 1), RN_OK);
    rn_gpu *g = NULL;
    assert_int_equal(rn_gpu_open(&g, 0, m, 0, RN_PRECISION_FP32),
                     rn_cuda_built() ? RN_ERR_BAD_ARG : RN_ERR_DEVICE);
    assert_int_equal(rn_gpu_open(&g, 1000, m, 4, RN_PRECISION_FP32), RN_ERR_DEVICE);
    assert_non_null(strstr(rn_error_message(), rn_cuda_built() ? "cuda" : "CUDA"));
    int idx;
    assert_int_equal(rn_device_parse("cuda:3", &idx), RN_OK);
    assert_int_equal(idx, 3);
    assert_int_equal(rn_device_parse("gpu", &idx), RN_ERR_BAD_ARG);
    rn_precision p;
    assert_int_equal(rn_precision_parse("fp16", &p), RN_ERR_BAD_ARG);
    if (have_gpu) {
        float x[3 * 32 * 32 * 5] = {0}, lg[50];
        assert_int_equal(rn_gpu_open(&g, 0, m, 4, RN_PRECISION_FP32), RN_OK);
        assert_int_equal(rn_gpu_forward(g, x, 5, RN_MODE_EVAL, lg), RN_ERR_BAD_ARG);
        assert_int_equal(rn_gpu_forward(g, x, 3, RN_MODE_TRAIN, lg), RN_ERR_BAD_ARG);
        assert_int_equal(rn_gpu_train_steps(g, 1), RN_ERR_BAD_ARG);
        rn_gpu_close(g);
    }
    rn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_ops_fp32),
        cmocka_unit_test(test_ops_tf32),
        cmocka_unit_test(test_ops_bf16),
        cmocka_unit_test(test_parity_fp32),
        cmocka_unit_test(test_train_steps),
        cmocka_unit_test(test_parity_tf32),
        cmocka_unit_test(test_parity_bf16),
    };
    return cmocka_run_group_tests(tests, probe, NULL);
}
