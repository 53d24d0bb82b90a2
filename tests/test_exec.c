/*
 * test_exec.c — the executor seam on the host: its passes are the model's own, its training
 * step calls the gradient hook once per step between backward and update (and the hook's
 * changes reach the update), the gradients-ready hook during the backward pass with parts of
 * the block that are final indeed, its evaluation is rn_evaluate's, a process's share of a global
 * batch is those images with their augmentation draws, and bad uses fail cleanly.
 * (Training through the seam bit for bit as before is exec_identity_test.sh.)
 */
#include "testutil.h"
#include "exec/step.h"

#include <stdlib.h>
#include <string.h>

enum { B = 8, N_IMAGES = 32, STEPS = 6 };

/* A small 3x8x8 set with 10 classes and a model for it. */
static void make_set(rn_dataset *d) {
    *d = (rn_dataset){.n = N_IMAGES, .c = 3, .h = 8, .w = 8, .num_classes = 10};
    d->images = malloc((size_t)N_IMAGES * 3 * 64);
    d->labels = malloc(N_IMAGES * sizeof(int32_t));
    assert_non_null(d->images);
    assert_non_null(d->labels);
    for (size_t i = 0; i < (size_t)N_IMAGES * 3 * 64; i++)
        d->images[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < N_IMAGES; i++) d->labels[i] = i % 10;
}

static rn_model *make_model(void) {
    rn_model_opts mo = {3, 8, 8, 10};
    rn_model *m;
    TU_OK(rn_model_create(&m, "resnet8", &mo, 5));
    return m;
}

typedef struct {
    int calls;
    size_t n;
    bool on_device;
    float scale;
    rn_status status;
} hook_state;

static rn_status scale_hook(void *user, float *grads, size_t n, bool on_device) {
    hook_state *h = user;
    h->calls++;
    h->n = n;
    h->on_device = on_device;
    for (size_t i = 0; i < n; i++) grads[i] *= h->scale;
    return h->status;
}

/* Closes a training run: a copy of the model's parameters (malloc'd; *np of them), then the
 * executor, the model and the set freed. */
static float *finish(rn_exec *e, rn_model *m, rn_dataset *d, size_t *np) {
    const float *p = rn_model_params(m, np);
    float *copy = malloc(*np * sizeof(float));
    assert_non_null(copy);
    memcpy(copy, p, *np * sizeof(float));
    rn_exec_close(e);
    rn_model_free(m);
    rn_dataset_free(d);
    return copy;
}

/* The gradients-ready hook: what it has seen of each part when told it was final. */
typedef struct {
    int calls, steps;
    size_t last_from;
    float *seen; /* (n) */
    bool order_ok;
} ready_state;

static rn_status record_ready(void *user, float *grads, size_t n, size_t from, bool on_device) {
    ready_state *r = user;
    if (!r->seen) r->seen = calloc(n, sizeof(float));
    if (r->calls == 0) r->last_from = n;
    r->order_ok &= from < r->last_from && !on_device;
    memcpy(r->seen + from, grads + from, (r->last_from - from) * sizeof(float));
    r->last_from = from;
    r->calls++;
    return RN_OK;
}

static rn_status check_ready(void *user, float *grads, size_t n, bool on_device) {
    ready_state *r = user;
    r->order_ok &= r->last_from == 0 && r->calls > 1;
    if (memcmp(r->seen, grads, n * sizeof(float)) != 0) r->order_ok = false;
    r->steps++;
    r->calls = 0;
    return RN_OK;
}

/* Trains STEPS steps at learning rate lr (no weight decay) with an optional gradient hook, or
 * with the two hooks that check the gradients-ready hook; returns the final parameters
 * (malloc'd). */
static float *train(float lr, hook_state *hook, ready_state *ready, size_t *np) {
    rn_dataset d;
    make_set(&d);
    rn_model *m = make_model();
    rn_exec *e;
    rn_exec_opts o = {.threads = 1};
    TU_OK(rn_exec_open(&e, m, &o, B));
    if (hook) rn_exec_set_grad_hook(e, scale_hook, hook);
    if (ready) {
        rn_exec_set_grads_ready_hook(e, record_ready, ready);
        rn_exec_set_grad_hook(e, check_ready, ready);
    }
    rn_norm norm = rn_dataset_norm(&d);
    float lrs[STEPS];
    for (int i = 0; i < STEPS; i++) lrs[i] = lr;
    rn_exec_train_opts to = {.batch = B, .momentum = 0.9f, .augment = true, .seed = 3};
    TU_OK(rn_exec_train_init(e, &d, &norm, &to, lrs, STEPS, 0));
    int order[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++) order[i] = (i * 7) % N_IMAGES;
    TU_OK(rn_exec_train_set_order(e, order));
    for (int s = 0; s < STEPS; s++) TU_OK(rn_exec_train_step(e));
    double loss;
    int64_t correct;
    TU_OK(rn_exec_train_metrics(e, &loss, &correct));
    assert_true(loss > 0 && loss < 100);
    TU_OK(rn_exec_sync_to_host(e));
    return finish(e, m, &d, np);
}

/* Doubling every gradient in the hook and halving the learning rate is exactly the plain run
 * (powers of two, no weight decay): the hook's writes reach the update, once per step. */
static void test_grad_hook_reaches_update(void **state) {
    size_t n1, n2, n3;
    float *plain = train(0.1f, NULL, NULL, &n1);
    hook_state h = {.scale = 2.0f, .status = RN_OK};
    float *hooked = train(0.05f, &h, NULL, &n2);
    assert_int_equal(h.calls, STEPS);
    assert_int_equal(h.n, n1);
    assert_false(h.on_device);
    assert_int_equal(n1, n2);
    assert_memory_equal(plain, hooked, n1 * sizeof(float));
    /* and a hook that does change the gradients changes the result */
    hook_state h3 = {.scale = 3.0f, .status = RN_OK};
    float *tripled = train(0.05f, &h3, NULL, &n3);
    assert_true(memcmp(plain, tripled, n1 * sizeof(float)) != 0);
    free(plain);
    free(hooked);
    free(tripled);
}

/* A failing hook stops the step with its status, before the update. */
static void test_grad_hook_failure_stops_step(void **state) {
    rn_dataset d;
    make_set(&d);
    rn_model *m = make_model();
    size_t np;
    const float *p = rn_model_params(m, &np);
    float *before = malloc(np * sizeof(float));
    memcpy(before, p, np * sizeof(float));
    rn_exec *e;
    TU_OK(rn_exec_open(&e, m, NULL, B));
    hook_state h = {.scale = 1.0f, .status = RN_ERR_IO};
    rn_exec_set_grad_hook(e, scale_hook, &h);
    rn_norm norm = rn_dataset_norm(&d);
    float lrs[1] = {0.1f};
    rn_exec_train_opts to = {.batch = B, .momentum = 0.9f};
    TU_OK(rn_exec_train_init(e, &d, &norm, &to, lrs, 1, 0));
    assert_int_equal(rn_exec_train_step(e), RN_ERR_IO);
    assert_memory_equal(before, rn_model_params(m, NULL), np * sizeof(float));
    free(before);
    rn_exec_close(e);
    rn_model_free(m);
    rn_dataset_free(&d);
}

/* During each step's backward pass the ready hook is called several times with a start that
 * falls to 0, and every part it was told is final holds then what the gradient hook finds. */
static void test_grads_ready_hook_reports_final_parts(void **state) {
    ready_state r = {.order_ok = true};
    size_t np;
    free(train(0.1f, NULL, &r, &np));
    assert_int_equal(r.steps, STEPS);
    assert_true(r.order_ok);
    free(r.seen);
}

/* A slice [first, first + n) of a batch is exactly those rows of the whole batch, with the
 * augmentation draws of their positions in it (what each process of a data-parallel run
 * assembles). */
static void test_batch_slice_is_part_of_batch(void **state) {
    rn_dataset d;
    make_set(&d);
    rn_norm norm = rn_dataset_norm(&d);
    enum { G = 8, FIRST = 3, NS = 4, PER = 3 * 64 };
    int idx[G];
    for (int i = 0; i < G; i++) idx[i] = (i * 5 + 1) % N_IMAGES;
    float whole[G * PER], part[NS * PER];
    int lw[G], lp[NS];
    rn_batch_fill(whole, lw, &d, idx, G, &norm, true, 11, 4, 1);
    rn_batch_fill_slice(part, lp, &d, idx + FIRST, NS, FIRST, &norm, true, 11, 4, 1);
    assert_memory_equal(part, whole + FIRST * PER, sizeof part);
    assert_memory_equal(lp, lw + FIRST, sizeof lp);
    /* the draws follow the position: the same images as the batch's first rows differ */
    rn_batch_fill_slice(part, lp, &d, idx + FIRST, NS, 0, &norm, true, 11, 4, 1);
    assert_true(memcmp(part, whole + FIRST * PER, sizeof part) != 0);
    rn_dataset_free(&d);
}

/* Trains STEPS steps on images [first, first + batch) of each global batch of the order
 * `order`; returns the final parameters (malloc'd). */
static float *train_share(const int *order, int batch, int global, int first, size_t *np) {
    rn_dataset d;
    make_set(&d);
    rn_model *m = make_model();
    rn_exec *e;
    rn_exec_opts o = {.threads = 1};
    TU_OK(rn_exec_open(&e, m, &o, batch));
    rn_norm norm = rn_dataset_norm(&d);
    float lrs[STEPS];
    for (int i = 0; i < STEPS; i++) lrs[i] = 0.05f;
    rn_exec_train_opts to = {.batch = batch, .global_batch = global, .first = first,
                             .momentum = 0.9f};
    TU_OK(rn_exec_train_init(e, &d, &norm, &to, lrs, STEPS, 0));
    TU_OK(rn_exec_train_set_order(e, order));
    for (int s = 0; s < STEPS; s++) TU_OK(rn_exec_train_step(e));
    return finish(e, m, &d, np);
}

/* The share [2, 4) of global batches of 4 trains exactly as whole batches of 2 made of those
 * images (without augmentation, whose draws depend on the position). */
static void test_train_share_takes_its_images(void **state) {
    int order[N_IMAGES], odd[N_IMAGES];
    for (int i = 0; i < N_IMAGES; i++) order[i] = (i * 7) % N_IMAGES;
    /* steps 0..STEPS-1 of batches of 2: images order[4s + 2], order[4s + 3] */
    for (int i = 0; i < N_IMAGES / 2; i++) odd[i] = order[4 * (i / 2) + 2 + i % 2];
    for (int i = N_IMAGES / 2; i < N_IMAGES; i++) odd[i] = odd[i - N_IMAGES / 2];
    size_t n1, n2, n3;
    float *share = train_share(order, 2, 4, 2, &n1);
    float *whole = train_share(odd, 2, 2, 0, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(share, whole, n1 * sizeof(float));
    float *other = train_share(order, 2, 4, 0, &n3); /* the other share differs */
    assert_true(memcmp(share, other, n1 * sizeof(float)) != 0);
    free(share);
    free(whole);
    free(other);
}

/* Forward and evaluation through the seam equal the model's own. */
static void test_forward_and_evaluate_match_model(void **state) {
    rn_dataset d;
    make_set(&d);
    rn_model *m = make_model();
    rn_exec *e;
    rn_exec_opts o = {.backend = "reference", .threads = 1};
    TU_OK(rn_exec_open(&e, m, &o, B));
    rn_norm norm = rn_dataset_norm(&d);
    float x[B * 3 * 64], logits[B * 10];
    tu_fill_uniform(x, B * 3 * 64, 9, -1, 1);
    TU_OK(rn_exec_forward(e, x, 5, RN_MODE_EVAL, logits));
    rn_ctx *ctx;
    TU_OK(rn_ctx_create(&ctx, "reference", 1));
    rn_model *m2 = make_model();
    TU_OK(rn_model_reserve(m2, ctx, B));
    const float *want;
    TU_OK(rn_model_forward(m2, ctx, x, 5, RN_MODE_EVAL, &want));
    assert_memory_equal(logits, want, 5 * 10 * sizeof(float));
    rn_eval_result r1, r2;
    TU_OK(rn_exec_evaluate(e, &d, &norm, &r1));
    TU_OK(rn_evaluate(m2, ctx, &d, &norm, B, &r2));
    assert_true(r1.top1 == r2.top1 && r1.loss == r2.loss && r1.n == N_IMAGES);
    assert_memory_equal(r1.confusion, r2.confusion, 100 * sizeof(int64_t));
    assert_non_null(strstr(rn_exec_describe(e), "reference"));
    rn_eval_result_free(&r1);
    rn_eval_result_free(&r2);
    rn_exec_close(e);
    rn_model_free(m);
    rn_model_free(m2);
    rn_ctx_free(ctx);
    rn_dataset_free(&d);
}

static void test_bad_uses(void **state) {
    rn_model *m = make_model();
    rn_exec *e = NULL;
    rn_exec_opts bad_device = {.device = "tpu"};
    assert_int_equal(rn_exec_open(&e, m, &bad_device, B), RN_ERR_BAD_ARG);
    assert_null(e);
    rn_exec_opts tf32 = {.precision = "tf32"};
    assert_int_equal(rn_exec_open(&e, m, &tf32, B), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "tf32 is for GPUs"));
    rn_exec_opts bf16_ref = {.precision = "bf16", .backend = "reference"};
    assert_int_equal(rn_exec_open(&e, m, &bf16_ref, B), RN_ERR_BAD_ARG);
    rn_exec_opts bf16 = {.precision = "bf16"};
    TU_OK(rn_exec_open(&e, m, &bf16, B));
    assert_non_null(strstr(rn_exec_describe(e), "cpu-bf16"));
    rn_exec_close(e);
    rn_exec_opts backend = {.backend = "nope"};
    assert_int_equal(rn_exec_open(&e, m, &backend, B), RN_ERR_BAD_ARG);
    assert_int_equal(rn_exec_open(&e, m, NULL, 0), RN_ERR_BAD_ARG);
    TU_OK(rn_exec_open(&e, m, NULL, B));
    assert_int_equal(rn_exec_train_step(e), RN_ERR_BAD_ARG); /* no train_init */
    float x[(B + 1) * 3 * 64], logits[(B + 1) * 10];
    memset(x, 0, sizeof x);
    assert_int_equal(rn_exec_forward(e, x, B + 1, RN_MODE_EVAL, logits), RN_ERR_BAD_ARG);
    assert_int_equal(rn_exec_forward(e, x, B - 1, RN_MODE_TRAIN, logits), RN_ERR_BAD_ARG);
    rn_dataset d;
    make_set(&d);
    rn_norm norm = rn_dataset_norm(&d);
    float lrs[2] = {0.1f, 0.1f};
    rn_exec_train_opts to = {.batch = B + 1};
    assert_int_equal(rn_exec_train_init(e, &d, &norm, &to, lrs, 2, 0), RN_ERR_BAD_ARG);
    to.batch = B;
    assert_int_equal(rn_exec_train_init(e, &d, &norm, &to, lrs, 2, 3), RN_ERR_BAD_ARG);
    to.global_batch = B + 1; /* [2, 2 + B) is no slice of B + 1 images */
    to.first = 2;
    assert_int_equal(rn_exec_train_init(e, &d, &norm, &to, lrs, 2, 0), RN_ERR_BAD_ARG);
    to.global_batch = to.first = 0;
    rn_dataset_free(&d);
    rn_exec_close(e);
    rn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_hook_reaches_update),
        cmocka_unit_test(test_grad_hook_failure_stops_step),
        cmocka_unit_test(test_grads_ready_hook_reports_final_parts),
        cmocka_unit_test(test_batch_slice_is_part_of_batch),
        cmocka_unit_test(test_train_share_takes_its_images),
        cmocka_unit_test(test_forward_and_evaluate_match_model),
        cmocka_unit_test(test_bad_uses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
