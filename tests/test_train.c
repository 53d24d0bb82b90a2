/*
 * test_train.c — the training loop (rn_train_run) on small generated data sets: exact resume
 * (a run stopped half-way and resumed ends bit-identical to one that was not), evaluation
 * during training, the learning-rate schedules against PyTorch's schedulers, a NaN loss, bad
 * checkpoints and config.json, and the refusal to overwrite a run.
 *
 * Data: 3x8x8 images of 4 classes (a bright square whose place depends on the class, over
 * seeded noise) packed with rn_dataset_pack into the test's temporary folder; resnet20 at 8x8
 * is small enough to take a few milliseconds per step, also under the sanitizers.
 */
#include "testutil.h"

#include <cjson/cJSON.h>

#include "core/internal.h"
#include "exec/step.h"
#include "train/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* dir/name in one of a few rotating buffers. */
static const char *path_in(const char *dir, const char *name) {
    static char bufs[8][2100];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 2100, "%s/%s", dir, name);
    return b;
}

/* A fresh, empty-named folder under the temporary folder. */
static const char *tmp_sub(const char *name) {
    static char bufs[32][512];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, 512, "%s/%s", tu_tmpdir(), name);
    mkdir(b, 0755);
    return b;
}

static void fill_images(rn_dataset *d, int n, int c, int h, int w, int classes, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->num_classes = classes;
    d->images = malloc((size_t)n * c * h * w);
    d->labels = malloc((size_t)n * sizeof *d->labels);
    assert_non_null(d->images);
    assert_non_null(d->labels);
    uint64_t s = seed;
    for (int i = 0; i < n; i++) {
        int k = (int)((i * 7 + seed) % (uint64_t)classes);
        d->labels[i] = k;
        int y0 = (k / 2) * (h / 2), x0 = (k % 2) * (w / 2);
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    s = s * 6364136223846793005ull + 1442695040888963407ull;
                    int v = (int)(s >> 58); /* noise 0..63 */
                    if (y >= y0 && y < y0 + h / 2 && x >= x0 && x < x0 + w / 2) v += 150;
                    d->images[(((size_t)i * c + ch) * h + y) * w + x] = (uint8_t)v;
                }
    }
}

/* Writes a packed data set of n_train + n_test 3x8x8 images to tmp/name; returns the spec. */
static const char *make_data(const char *name, int n_train, int n_test) {
    static char specs[8][600];
    static int next;
    rn_dataset train, test;
    fill_images(&train, n_train, 3, 8, 8, 4, 1);
    fill_images(&test, n_test, 3, 8, 8, 4, 2);
    const char *dir = tmp_sub(name);
    TU_OK(rn_dataset_pack(&train, &test, dir));
    rn_dataset_free(&train);
    rn_dataset_free(&test);
    char *spec = specs[next++ % 8];
    snprintf(spec, 600, "packed:%s", dir);
    return spec;
}

/* The data set most tests share: 40 training images (5 steps of 8), 16 test images. */
static const char *small_data(void) {
    static const char *spec;
    if (!spec) spec = make_data("data40", 40, 16);
    return spec;
}

static void config(rn_train_config *c, const char *data, const char *out_name, int64_t iters) {
    rn_train_config_defaults(c);
    snprintf(c->data, sizeof c->data, "%s", data);
    snprintf(c->out, sizeof c->out, "%s", tmp_sub(out_name));
    c->batch = 8;
    c->iters = iters;
    c->threads = 1;
    c->log_every = 1;
    c->augment = false;
    c->shuffle = false;
}

static void *read_all(const char *path, size_t *size) {
    void *buf = NULL;
    rn_status s = rn_read_file(path, &buf, size);
    if (s != RN_OK) fail_msg("%s", rn_error_message());
    return buf;
}

/* Fails unless the two files hold the same bytes; prints the first difference. */
static void expect_same_file(const char *a, const char *b) {
    size_t na, nb;
    unsigned char *x = read_all(a, &na), *y = read_all(b, &nb);
    size_t i = 0;
    while (i < na && i < nb && x[i] == y[i]) i++;
    bool same = na == nb && i == na;
    printf("  %s vs %s: %zu and %zu bytes, %s\n", a, b, na, nb,
           same ? "identical" : "DIFFERENT");
    if (!same) printf("  first difference at byte %zu\n", i);
    rn_free(x);
    rn_free(y);
    assert_true(same);
}

/* The optimizer.momentum tensors of two checkpoints must be identical; returns the count. */
static void expect_same_momentum(const char *a, const char *b) {
    rn_safetensors sa, sb;
    TU_OK(rn_safetensors_read(&sa, a));
    TU_OK(rn_safetensors_read(&sb, b));
    const rn_st_tensor *ma = rn_safetensors_find(&sa, "optimizer.momentum");
    const rn_st_tensor *mb = rn_safetensors_find(&sb, "optimizer.momentum");
    assert_non_null(ma);
    assert_non_null(mb);
    assert_int_equal(ma->nbytes, mb->nbytes);
    bool same = memcmp(ma->data, mb->data, ma->nbytes) == 0;
    printf("  optimizer.momentum: %zu floats, %s\n", ma->nbytes / 4,
           same ? "identical" : "DIFFERENT");
    assert_true(same);
    assert_string_equal(rn_safetensors_meta(&sa, "checkpoint_step"),
                        rn_safetensors_meta(&sb, "checkpoint_step"));
    rn_safetensors_free(&sa);
    rn_safetensors_free(&sb);
}

static long checkpoint_step(const char *run) {
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, path_in(run, "checkpoint.safetensors")));
    const char *v = rn_safetensors_meta(&st, "checkpoint_step");
    assert_non_null(v);
    long s = atol(v);
    rn_safetensors_free(&st);
    return s;
}

/* metrics.jsonl's training lines: steps[i] and the exact train_loss text of each. */
typedef struct {
    int n;
    long steps[256];
    char loss[256][32];
    int n_test; /* lines with a test_acc */
    double test_acc[64];
    int n_val;
    double val_acc[64];
} metrics;

static void read_metrics(const char *run, metrics *m) {
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path_in(run, "metrics.jsonl"), "r");
    assert_non_null(f);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        long step;
        assert_int_equal(sscanf(line, "{\"step\": %ld", &step), 1);
        const char *l = strstr(line, "\"train_loss\": ");
        if (l && m->n < 256) {
            m->steps[m->n] = step;
            sscanf(l + 14, "%31[^,}]", m->loss[m->n]);
            m->n++;
        }
        const char *t = strstr(line, "\"test_acc\": ");
        if (t && m->n_test < 64) m->test_acc[m->n_test++] = atof(t + 12);
        const char *v = strstr(line, "\"val_acc\": ");
        if (v && m->n_val < 64) m->val_acc[m->n_val++] = atof(v + 11);
    }
    fclose(f);
}

/* Training lines must be steps 1..n exactly once each, with identical losses in both runs. */
static void expect_same_metrics(const char *a, const char *b, long n) {
    metrics ma, mb;
    read_metrics(a, &ma);
    read_metrics(b, &mb);
    assert_int_equal(ma.n, n);
    assert_int_equal(mb.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ma.steps[i], i + 1);
        assert_int_equal(mb.steps[i], i + 1);
        if (strcmp(ma.loss[i], mb.loss[i]) != 0)
            fail_msg("step %d: train_loss %s straight, %s resumed", i + 1, ma.loss[i],
                     mb.loss[i]);
    }
    assert_int_equal(ma.n_test, mb.n_test);
    assert_int_equal(ma.n_val, mb.n_val);
    printf("  metrics.jsonl: steps 1..%ld once each, the same %d losses, %d val and %d test "
           "lines\n", n, ma.n, ma.n_val, ma.n_test);
}

/* line without its "elapsed_s" and "images_per_s" fields (times differ run to run). */
static void strip_times(char *line) {
    static const char *const keys[] = {", \"elapsed_s\": ", ", \"images_per_s\": "};
    for (size_t k = 0; k < 2; k++) {
        char *at = strstr(line, keys[k]);
        if (!at) continue;
        char *end = at + strlen(keys[k]);
        end += strcspn(end, ",}");
        memmove(at, end, strlen(end) + 1);
    }
}

/* Two runs' metrics.jsonl, line by line, equal apart from their times. */
static void expect_same_log(const char *a, const char *b) {
    FILE *fa = fopen(path_in(a, "metrics.jsonl"), "r"), *fb = fopen(path_in(b, "metrics.jsonl"), "r");
    assert_non_null(fa);
    assert_non_null(fb);
    char la[1024], lb[1024];
    int n = 0;
    for (;;) {
        bool ga = fgets(la, sizeof la, fa) != NULL, gb = fgets(lb, sizeof lb, fb) != NULL;
        if (!ga || !gb) {
            if (ga != gb) fail_msg("metrics.jsonl: one run has more lines than the other");
            break;
        }
        strip_times(la);
        strip_times(lb);
        if (strcmp(la, lb) != 0) fail_msg("metrics.jsonl line %d:\n  %s  %s", n + 1, la, lb);
        n++;
    }
    fclose(fa);
    fclose(fb);
    printf("  metrics.jsonl: the same %d lines, times apart\n", n);
}

/* Progress callback: records each report (the started one apart); sets *stop when a
 * training report of step stop_at comes. */
typedef struct {
    int64_t stop_at;
    volatile int *stop;
    int n_started;
    rn_train_progress started;
    int n;
    rn_train_progress p[256];
} recorder;

static void record(const rn_train_progress *p, void *user) {
    recorder *r = user;
    if (p->started) {
        if (r->n > 0) fail_msg("a started report after step %lld", (long long)r->p[0].step);
        r->started = *p;
        r->n_started++;
        return;
    }
    if (r->n < 256) r->p[r->n++] = *p;
    if (r->stop && p->step == r->stop_at && !p->has_val && !p->has_test) *r->stop = 1;
}

/* Runs c straight into its out; then the same config into out2, stopped after stop_at steps
 * and resumed; compares the two runs. */
static void straight_vs_resumed(rn_train_config *c, const char *out2, int64_t stop_at) {
    recorder r1 = {0};
    TU_OK(rn_train_run(c, false, record, &r1, NULL));
    assert_true(r1.n > 0 && r1.p[r1.n - 1].final);

    rn_train_config c2 = *c;
    snprintf(c2.out, sizeof c2.out, "%s", out2);
    volatile int stop = 0;
    recorder r2 = {.stop_at = stop_at, .stop = &stop};
    rn_status s = rn_train_run(&c2, false, record, &r2, &stop);
    assert_int_equal(s, RN_ERR_INTERRUPTED);
    char want[64];
    snprintf(want, sizeof want, "stopped at step %lld of %lld", (long long)stop_at,
             (long long)c->iters);
    printf("  interrupted: %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), want));
    assert_int_equal(checkpoint_step(out2), stop_at);

    /* Resume the way the CLI does: from the run's own config.json. */
    rn_train_config c3;
    TU_OK(rn_train_config_load(&c3, out2));
    stop = 0;
    recorder r3 = {0};
    TU_OK(rn_train_run(&c3, true, record, &r3, &stop));
    assert_true(r3.n > 0 && r3.p[r3.n - 1].final);
    assert_true(r3.p[0].step > stop_at); /* nothing before the checkpoint is redone */
    /* Each call reported its start once: step 0, then the checkpoint's step. */
    assert_int_equal(r1.n_started, 1);
    assert_int_equal(r1.started.step, 0);
    assert_int_equal(r1.started.total_steps, c->iters);
    assert_int_equal(r3.n_started, 1);
    assert_int_equal(r3.started.step, stop_at);
    assert_true(r3.started.lr == rn_schedule_lr(c, stop_at, c->iters));

    expect_same_file(path_in(c->out, "last.safetensors"), path_in(out2, "last.safetensors"));
    expect_same_momentum(path_in(c->out, "checkpoint.safetensors"),
                         path_in(out2, "checkpoint.safetensors"));
    if (c->val > 0)
        expect_same_file(path_in(c->out, "best.safetensors"), path_in(out2, "best.safetensors"));
    else /* nothing to choose by: the final weights */
        expect_same_file(path_in(out2, "best.safetensors"), path_in(out2, "last.safetensors"));
    expect_same_metrics(c->out, out2, c->iters);
    expect_same_log(c->out, out2);
    /* The final evaluation is the same too. */
    const rn_train_progress *fa = &r1.p[r1.n - 1], *fb = &r3.p[r3.n - 1];
    assert_true(fa->has_test && fb->has_test);
    assert_true(fa->test_acc == fb->test_acc && fa->test_loss == fb->test_loss);
}

/* ---- exact resume ----------------------------------------------------------------------- */

/* No augmentation, the data set's order; 8 steps of 5 per epoch, stopped after 4. */
static void test_resume_plain(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "plain_a", 8);
    straight_vs_resumed(&c, tmp_sub("plain_b"), 4);
}

/* A validation split, reshuffling every epoch, crop+flip, momentum with Nesterov, 2 threads,
 * periodic checkpoints and a cosine schedule; 14 steps of 4 per epoch, stopped mid-epoch. */
static void test_resume_val_shuffle_augment(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "aug_a", 14);
    c.val = 8;
    c.shuffle = true;
    c.augment = true;
    c.nesterov = true;
    c.threads = 2;
    c.ckpt_every = 3;
    c.log_every = 1;
    c.seed = 12345;
    c.schedule = RN_SCHED_COSINE;
    c.warmup = 2;
    straight_vs_resumed(&c, tmp_sub("aug_b"), 7);
}

/* A run stopped in the middle of a logging window (log_every 3, stopped after step 1) and
 * resumed logs the same metrics.jsonl as an uninterrupted run: the first line after the resume
 * averages the whole window, the step before the stop included. Checkpoints every 2 steps
 * split windows too, in both runs. */
static void test_resume_mid_window(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "window_a", 12);
    c.log_every = 3;
    c.ckpt_every = 2;
    c.augment = true;
    TU_OK(rn_train_run(&c, false, NULL, NULL, NULL));
    rn_train_config c2 = c;
    snprintf(c2.out, sizeof c2.out, "%s", tmp_sub("window_b"));
    volatile int stop = 1; /* stops after the first step */
    assert_int_equal(rn_train_run(&c2, false, NULL, NULL, &stop), RN_ERR_INTERRUPTED);
    assert_int_equal(checkpoint_step(c2.out), 1);
    rn_train_config c3;
    TU_OK(rn_train_config_load(&c3, c2.out));
    TU_OK(rn_train_run(&c3, true, NULL, NULL, NULL));
    expect_same_file(path_in(c.out, "last.safetensors"), path_in(c2.out, "last.safetensors"));
    expect_same_log(c.out, c2.out);
}

/* The final report's elapsed time includes the final evaluation (400 test images, so it takes
 * measurable time): it is the time of metrics.jsonl's last line, later than the last training
 * report's. metrics.jsonl counts epochs from 1: the lines of steps 1..5 say epoch 1, of step 6
 * epoch 2 (5 steps per epoch). */
static void test_final_elapsed_and_epochs(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, make_data("data_eval400", 40, 400), "final_time", 6);
    recorder r = {0};
    TU_OK(rn_train_run(&c, false, record, &r, NULL));
    const rn_train_progress *fin = &r.p[r.n - 1], *train_last = &r.p[r.n - 2];
    assert_true(fin->final && fin->has_test && !train_last->has_test);
    FILE *f = fopen(path_in(c.out, "metrics.jsonl"), "r");
    assert_non_null(f);
    char line[1024], last[1024] = "";
    while (fgets(line, sizeof line, f)) {
        long step;
        int epoch;
        assert_int_equal(sscanf(line, "{\"step\": %ld, \"epoch\": %d", &step, &epoch), 2);
        assert_int_equal(epoch, step <= 5 ? 1 : 2);
        snprintf(last, sizeof last, "%s", line);
    }
    fclose(f);
    const char *e = strstr(last, "\"elapsed_s\": ");
    assert_non_null(e);
    double logged = atof(e + 13);
    printf("  last training report %.4f s, final report %.4f s, metrics.jsonl's last line %.3f s\n",
           train_last->elapsed_s, fin->elapsed_s, logged);
    assert_true(fabs(fin->elapsed_s - logged) <= 0.0005 + 1e-9);
    assert_true(fin->elapsed_s > train_last->elapsed_s);
}

/* Stopping is checked after each step: a stop requested before the run begins stops after
 * step 1; one requested at the last step lets the run finish normally. */
static void test_stop_contract(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "stop_first", 3);
    volatile int stop = 1;
    assert_int_equal(rn_train_run(&c, false, NULL, NULL, &stop), RN_ERR_INTERRUPTED);
    printf("  stop before the run: %s\n", rn_error_message());
    assert_int_equal(checkpoint_step(c.out), 1);

    config(&c, small_data(), "stop_last", 3);
    stop = 0;
    recorder r = {.stop_at = 3, .stop = &stop};
    TU_OK(rn_train_run(&c, false, record, &r, &stop));
    assert_int_equal(checkpoint_step(c.out), 3);
    assert_true(r.p[r.n - 1].final);
}

/* ---- evaluation during training --------------------------------------------------------- */

/* 3 epochs with --eval-every 1 and a validation split: a test evaluation at each epoch end, a
 * validation one too, best.safetensors from the best validation accuracy, and the final test
 * numbers equal to rn_evaluate of last.safetensors. With eval_every 0, only the final one. */
static void test_eval_every(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "eval1", 0);
    c.epochs = 3;
    c.val = 8;
    c.eval_every = 1;
    c.log_every = 2;
    c.lr = 0.02f;
    recorder r = {0};
    TU_OK(rn_train_run(&c, false, record, &r, NULL));
    int n_test = 0, n_val = 0;
    double best_val = -1;
    const rn_train_progress *last = NULL;
    for (int i = 0; i < r.n; i++) {
        const rn_train_progress *p = &r.p[i];
        if (p->has_test) {
            n_test++;
            assert_int_equal(p->step % p->steps_per_epoch, 0);
            assert_true(p->test_acc >= 0 && p->test_acc <= 1 && isfinite(p->test_loss));
        }
        if (p->has_val) {
            n_val++;
            if (p->val_acc > best_val) best_val = p->val_acc;
        }
        if (p->final) last = p;
    }
    printf("  %d reports, %d test and %d validation evaluations over 3 epochs of %d steps\n",
           r.n, n_test, n_val, r.p[0].steps_per_epoch);
    assert_int_equal(r.p[0].steps_per_epoch, 4); /* 32 training images after the split */
    assert_int_equal(n_test, 3);
    assert_int_equal(n_val, 3);
    assert_non_null(last);
    assert_int_equal(last->step, 12);
    metrics m;
    read_metrics(c.out, &m);
    assert_int_equal(m.n_test, 3);
    assert_int_equal(m.n_val, 3);
    assert_int_equal(m.n, 6); /* steps 2,4,...,12: every 2 steps and each epoch end */

    /* The final test accuracy and loss are those of the saved weights. */
    rn_model *model;
    rn_norm norm;
    rn_ctx *ctx;
    rn_dataset train, test, val;
    rn_eval_result e;
    TU_OK(rn_model_create_from_file(&model, path_in(c.out, "last.safetensors"), &norm));
    TU_OK(rn_ctx_create(&ctx, NULL, 1));
    TU_OK(rn_dataset_load(&train, &test, c.data, NULL));
    TU_OK(rn_evaluate(model, ctx, &test, &norm, c.batch, &e));
    printf("  final test accuracy %.4f loss %.6f; rn_evaluate of last.safetensors %.4f %.6f\n",
           last->test_acc, last->test_loss, e.top1, e.loss);
    assert_true(e.top1 == last->test_acc);
    assert_true(fabs(e.loss - last->test_loss) <= 1e-6 * fabs(e.loss));
    rn_eval_result_free(&e);
    rn_model_free(model);

    /* best.safetensors holds the weights of the best validation accuracy. */
    TU_OK(rn_model_create_from_file(&model, path_in(c.out, "best.safetensors"), &norm));
    TU_OK(rn_dataset_split(&train, &val, c.val, c.seed));
    TU_OK(rn_evaluate(model, ctx, &val, &norm, c.batch, &e));
    printf("  best validation accuracy %.4f; rn_evaluate of best.safetensors %.4f\n", best_val,
           e.top1);
    assert_true(e.top1 == best_val);
    rn_eval_result_free(&e);
    rn_model_free(model);
    rn_dataset_free(&train);
    rn_dataset_free(&test);
    rn_dataset_free(&val);
    rn_ctx_free(ctx);

    config(&c, small_data(), "eval0", 0);
    c.epochs = 3;
    c.log_every = 100;
    recorder r0 = {0};
    TU_OK(rn_train_run(&c, false, record, &r0, NULL));
    read_metrics(c.out, &m);
    assert_int_equal(m.n_test, 1);
    assert_int_equal(m.n_val, 0);
    assert_int_equal(m.n, 3); /* one line per epoch end */
    assert_true(r0.p[r0.n - 1].final && r0.p[r0.n - 1].has_test);
}

/* ---- the SGD update ---------------------------------------------------------------------- */

/* Three steps of rn_sgd_step on two elements of a conv weight and of a BN weight, with fixed
 * gradients, against torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01[, nesterov=True])
 * on the same two values (torch 1.13, printed with %.9g). With wd_skip_bn the BN weight follows
 * a param group with weight_decay=0. */
static void test_sgd_matches_torch(void **state) {
    (void)state;
    static const float grads[3][2] = {{0.3f, -0.2f}, {-0.1f, 0.4f}, {0.25f, 0.05f}};
    static const float plain[3][2] = {
        {0.469500005f, -1.22874999f}, {0.451580495f, -1.24839628f}, {0.410001367f, -1.26982951f}};
    static const float nesterov[3][2] = {
        {0.44205001f, -1.20962501f}, {0.435505122f, -1.26611423f}, {0.372685105f, -1.2891376f}};
    static const float no_decay[3][2] = {
        {0.469999999f, -1.23000002f}, {0.453000009f, -1.25199997f}, {0.412699997f, -1.27679992f}};
    rn_model_opts mo = {3, 8, 8, 4};
    rn_model *m;
    TU_OK(rn_model_create(&m, "resnet20", &mo, 1));
    const rn_tensor_info *conv = rn_model_find_tensor(m, "conv1.weight");
    const rn_tensor_info *bn = rn_model_find_tensor(m, "bn1.weight");
    assert_true(conv && bn && !conv->is_bn_or_bias && bn->is_bn_or_bias);
    size_t n;
    rn_model_params(m, &n);
    float *v = calloc(n, sizeof(float));
    assert_non_null(v);
    for (int variant = 0; variant < 3; variant++) {
        bool nest = variant == 1, skip = variant == 2;
        memset(v, 0, n * sizeof(float));
        conv->data[0] = bn->data[0] = 0.5f;
        conv->data[1] = bn->data[1] = -1.25f;
        double worst = 0;
        for (int s = 0; s < 3; s++) {
            rn_model_zero_grad(m);
            for (int i = 0; i < 2; i++) conv->grad[i] = bn->grad[i] = grads[s][i];
            rn_sgd_step(m, v, 0.1f, 0.9f, 0.01f, nest, skip);
            const float(*want)[2] = nest ? nesterov : plain;
            for (int i = 0; i < 2; i++) {
                worst = fmax(worst, fabs(conv->data[i] - want[s][i]));
                worst = fmax(worst, fabs(bn->data[i] - (skip ? no_decay : want)[s][i]));
            }
        }
        printf("  SGD%s%s: 3 steps, max abs difference from torch %.2e\n",
               nest ? " nesterov" : "", skip ? " wd-skip-bn" : "", worst);
        assert_true(worst <= 2e-7);
    }
    free(v);
    rn_model_free(m);
}

/* ---- schedules -------------------------------------------------------------------------- */

typedef struct {
    int64_t step;
    double lr;
} lr_at;

/* Compares rn_schedule_lr at the given steps with PyTorch's values (relative 1e-6: c->lr is
 * the float 0.1f). */
static void check_lrs(const char *what, const rn_train_config *c, int64_t total, const lr_at *v,
                      int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double got = rn_schedule_lr(c, v[i].step, total);
        double rel = fabs(got - v[i].lr) / v[i].lr;
        if (rel > worst) worst = rel;
        if (rel > 1e-6)
            printf("  %s: step %lld lr %.10g, PyTorch %.10g\n", what, (long long)v[i].step, got,
                   v[i].lr);
    }
    printf("  %-34s %2d steps, max relative difference %.2e\n", what, n, worst);
    assert_true(worst <= 1e-6);
}

/* The values below were printed by torch 1.13 (Debian's python3-torch): an SGD optimizer with
 * lr 0.1 and the scheduler named in each comment, stepped once per optimizer step, reading
 * optimizer.param_groups[0]["lr"] before step k (0-based) of a 100-step run. */
static void test_schedules(void **state) {
    (void)state;
    rn_train_config c;
    rn_train_config_defaults(&c);

    c.schedule = RN_SCHED_CONSTANT;
    static const lr_at constant[] = {{0, 0.1}, {1, 0.1}, {50, 0.1}, {99, 0.1}};
    check_lrs("constant", &c, 100, constant, 4);

    /* MultiStepLR(milestones=[30, 60], gamma=0.1) */
    c.schedule = RN_SCHED_MULTISTEP;
    c.milestones[0] = 30;
    c.milestones[1] = 60;
    c.n_milestones = 2;
    static const lr_at multistep[] = {
        {0, 0.1},     {1, 0.1},     {29, 0.1},    {30, 0.01},   {31, 0.01},
        {59, 0.01},   {60, 0.001},  {61, 0.001},  {99, 0.001}};
    check_lrs("multistep 30,60", &c, 100, multistep, 9);

    /* CosineAnnealingLR(T_max=100) */
    c.schedule = RN_SCHED_COSINE;
    static const lr_at cosine[] = {
        {0, 0.1},                   {1, 0.09997532801828658},   {10, 0.09755282581475769},
        {29, 0.08064535268264886},  {30, 0.0793892626146237},   {50, 0.05000000000000004},
        {60, 0.034549150281252675}, {98, 9.866357858642213e-05}, {99, 2.4671981713420017e-05}};
    check_lrs("cosine", &c, 100, cosine, 9);

    /* OneCycleLR(max_lr=0.1, total_steps=100, cycle_momentum=False), its other defaults */
    c.schedule = RN_SCHED_ONECYCLE;
    static const lr_at onecycle[] = {
        {0, 0.0040000000000000036}, {1, 0.004281378056590748}, {10, 0.029516394846410082},
        {28, 0.09971862194340926},  {29, 0.1},                 {30, 0.09994965352845243},
        {31, 0.09979871550490317},  {50, 0.0793893450575732},  {60, 0.05892800902855288},
        {98, 5.07464715475788e-05}, {99, 4e-07}};
    check_lrs("onecycle", &c, 100, onecycle, 11);

    /* --warmup 10 with multistep 30,60: ChainedScheduler([LinearLR(start_factor=1/10,
     * total_iters=9), MultiStepLR(milestones=[30, 60], gamma=0.1)]) */
    c.schedule = RN_SCHED_MULTISTEP;
    c.warmup = 10;
    c.warmup_factor = 0;
    static const lr_at warm[] = {
        {0, 0.01}, {1, 0.02}, {4, 0.05}, {5, 0.06}, {6, 0.07}, {9, 0.1},
        {10, 0.1}, {11, 0.1}, {29, 0.1}, {30, 0.01}, {50, 0.01}, {99, 0.001}};
    check_lrs("linear warm-up 10 + multistep", &c, 100, warm, 12);

    /* The he2015 warm-up (lr/10 for the first steps): ConstantLR(factor=0.1, total_iters=10) */
    c.schedule = RN_SCHED_CONSTANT;
    c.warmup = 10;
    c.warmup_factor = 0.1f;
    static const lr_at constwarm[] = {{0, 0.01}, {1, 0.01}, {9, 0.01}, {10, 0.1}, {99, 0.1}};
    check_lrs("constant warm-up 10 (factor 0.1)", &c, 100, constwarm, 5);

    /* The recipe: resnet110 gets that warm-up for 400 steps, then 0.1, /10 at 32k and 48k;
     * a run of 200 steps gets its drops at 100 and 150. */
    rn_train_config_defaults(&c);
    snprintf(c.model, sizeof c.model, "resnet110");
    TU_OK(rn_train_config_recipe(&c, "he2015"));
    assert_int_equal(c.iters, 64000);
    rn_train_config short_run = c;
    rn_schedule_resolve(&c, c.iters, 390);
    static const lr_at he[] = {{0, 0.01},    {399, 0.01},   {400, 0.1},  {31999, 0.1},
                               {32000, 0.01}, {47999, 0.01}, {48000, 0.001}, {63999, 0.001}};
    check_lrs("he2015 recipe, resnet110", &c, c.iters, he, 8);
    short_run.warmup = 0;
    rn_schedule_resolve(&short_run, 200, 390);
    static const lr_at he200[] = {{0, 0.1},    {99, 0.1},    {100, 0.01},
                                  {149, 0.01}, {150, 0.001}, {199, 0.001}};
    check_lrs("he2015 recipe, 200 steps", &short_run, 200, he200, 6);
    assert_int_equal(rn_train_config_recipe(&c, "he2016"), RN_ERR_BAD_ARG);
    printf("  unknown recipe: %s\n", rn_error_message());
}

/* Milestones given in epochs or in percent are turned into steps when the run starts: the
 * lr each logged step used, as the progress callback reports it. */
static void test_milestone_units(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "ms_epochs", 12); /* 5 steps per epoch */
    c.schedule = RN_SCHED_MULTISTEP;
    c.milestones[0] = 1;
    c.milestones[1] = 2;
    c.n_milestones = 2;
    c.milestone_unit = RN_UNIT_EPOCHS;
    recorder r = {0};
    TU_OK(rn_train_run(&c, false, record, &r, NULL));
    int seen = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.p[i].has_test) continue;
        int64_t s = r.p[i].step; /* 1-based: the lr of 0-based step s-1 */
        double want = s <= 5 ? 0.1 : s <= 10 ? 0.01 : 0.001;
        if (fabs(r.p[i].lr - want) > 1e-6 * want)
            fail_msg("epochs: step %lld lr %g, expected %g", (long long)s, r.p[i].lr, want);
        seen++;
    }
    assert_int_equal(seen, 12);

    config(&c, small_data(), "ms_percent", 10);
    c.schedule = RN_SCHED_MULTISTEP;
    c.milestones[0] = 50;
    c.milestones[1] = 80;
    c.n_milestones = 2;
    c.milestone_unit = RN_UNIT_PERCENT;
    recorder q = {0};
    TU_OK(rn_train_run(&c, false, record, &q, NULL));
    seen = 0;
    for (int i = 0; i < q.n; i++) {
        if (q.p[i].has_test) continue;
        int64_t s = q.p[i].step;
        double want = s <= 5 ? 0.1 : s <= 8 ? 0.01 : 0.001;
        if (fabs(q.p[i].lr - want) > 1e-6 * want)
            fail_msg("percent: step %lld lr %g, expected %g", (long long)s, q.p[i].lr, want);
        seen++;
    }
    assert_int_equal(seen, 10);
    printf("  milestones 1,2 epochs and 50%%,80%% resolved to steps 5,10 and 5,8\n");
}

/* ---- failures --------------------------------------------------------------------------- */

/* A learning rate of 1e30 makes the weights explode: the loss of step 3 is not finite. The run
 * stops with RN_ERR_NUMERIC naming that step, and the checkpoint of step 2 stays (resuming it
 * replays the same failure). */
static void test_nan_loss(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "nan", 20);
    /* The largest learning rate and weight decay the settings allow: each step multiplies the
     * weights by about -99, so the classifier overflows float within a few steps. */
    c.lr = 100;
    c.wd = 1;
    c.ckpt_every = 1;
    rn_status s = rn_train_run(&c, false, NULL, NULL, NULL);
    printf("  %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_NUMERIC);
    long bad = 0;
    assert_int_equal(sscanf(rn_error_message(), "step %ld:", &bad), 1);
    assert_true(bad >= 2 && bad <= 20);
    assert_non_null(strstr(rn_error_message(), "the loss is"));
    assert_int_equal(checkpoint_step(c.out), bad - 1);
    char first[512];
    snprintf(first, sizeof first, "%s", rn_error_message());

    rn_train_config r;
    TU_OK(rn_train_config_load(&r, c.out));
    s = rn_train_run(&r, true, NULL, NULL, NULL);
    printf("  resumed: %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_NUMERIC);
    assert_string_equal(rn_error_message(), first);
    assert_int_equal(checkpoint_step(c.out), bad - 1);

    /* Stopped before its first checkpoint (25 steps to an epoch's end), a run says so. */
    rn_train_config c0;
    config(&c0, make_data("data200", 200, 8), "nan0", 20);
    c0.lr = 100;
    c0.wd = 1;
    assert_int_equal(rn_train_run(&c0, false, NULL, NULL, NULL), RN_ERR_NUMERIC);
    printf("  %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "no checkpoint was written yet"));
}

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes a copy of checkpoint src to dst with metadata key set to value (or tensor
 * optimizer.momentum cut to `keep` floats when key is NULL). */
static void rewrite_checkpoint(const char *src, const char *dst, const char *key,
                               const char *value, size_t keep) {
    rn_safetensors st;
    TU_OK(rn_safetensors_read(&st, src));
    rn_st_tensor *t = malloc((size_t)st.n_tensors * sizeof *t);
    const char **keys = malloc((size_t)st.n_meta * sizeof *keys);
    const char **vals = malloc((size_t)st.n_meta * sizeof *vals);
    assert_true(t && keys && vals);
    for (int i = 0; i < st.n_tensors; i++) {
        t[i] = st.tensors[i];
        if (!key && !strcmp(t[i].name, "optimizer.momentum")) {
            t[i].shape[0] = (int64_t)keep;
            t[i].nbytes = keep * sizeof(float);
        }
    }
    for (int i = 0; i < st.n_meta; i++) {
        keys[i] = st.meta_keys[i];
        vals[i] = key && !strcmp(keys[i], key) ? value : st.meta_values[i];
    }
    TU_OK(rn_safetensors_write(dst, t, st.n_tensors, keys, vals, st.n_meta));
    free(t);
    free(keys);
    free(vals);
    rn_safetensors_free(&st);
}

/* Resumes run and expects failure `want` with a message holding `sub`. */
static void expect_resume_fails(const char *what, const char *run, rn_status want,
                                const char *sub) {
    rn_train_config c;
    TU_OK(rn_train_config_load(&c, run));
    rn_status s = rn_train_run(&c, true, NULL, NULL, NULL);
    printf("  %-28s %s: %s\n", what, rn_status_name(s), rn_error_message());
    assert_int_equal(s, want);
    if (!strstr(rn_error_message(), sub))
        fail_msg("%s: the message lacks '%s'", what, sub);
}

/* A damaged checkpoint.safetensors is refused on resume with a message naming it; the run
 * directory is left as it was, so restoring the file lets the run finish. */
static void test_bad_checkpoint(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "badckpt", 6);
    volatile int stop = 0;
    recorder r = {.stop_at = 3, .stop = &stop};
    assert_int_equal(rn_train_run(&c, false, record, &r, &stop), RN_ERR_INTERRUPTED);
    const char *ckpt = path_in(c.out, "checkpoint.safetensors");
    char good[1024];
    snprintf(good, sizeof good, "%s/good.safetensors", tu_tmpdir());
    size_t n;
    unsigned char *orig = read_all(ckpt, &n);
    write_all(good, orig, n);

    write_all(ckpt, orig, n / 2);
    expect_resume_fails("truncated to half", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    write_all(ckpt, orig, n - 1);
    expect_resume_fails("one byte short", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    write_all(ckpt, orig, 5);
    expect_resume_fails("5 bytes", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    write_all(ckpt, orig, 0);
    expect_resume_fails("empty", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    unsigned char *bad = malloc(n);
    assert_non_null(bad);
    memcpy(bad, orig, n);
    memset(bad + 8, 'x', 16); /* the JSON header */
    write_all(ckpt, bad, n);
    expect_resume_fails("garbage header", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    memcpy(bad, orig, n);
    bad[3] = 0x7f; /* a header length far past the end */
    write_all(ckpt, bad, n);
    expect_resume_fails("header length", c.out, RN_ERR_BAD_FILE, "checkpoint.safetensors");
    free(bad);

    /* Well-formed files that are not this run's checkpoint. */
    size_t nl;
    void *last = read_all(path_in(c.out, "last.safetensors"), &nl);
    write_all(ckpt, last, nl);
    rn_free(last);
    expect_resume_fails("weights without momentum", c.out, RN_ERR_BAD_FILE,
                        "not a checkpoint of this run");
    rewrite_checkpoint(good, ckpt, NULL, NULL, 100);
    expect_resume_fails("momentum of 100 floats", c.out, RN_ERR_BAD_FILE,
                        "not a checkpoint of this run");
    rewrite_checkpoint(good, ckpt, "checkpoint_step", "7", 0);
    expect_resume_fails("checkpoint_step 7 of 6", c.out, RN_ERR_BAD_FILE,
                        "checkpoint_step '7' is not a step of this run");
    rewrite_checkpoint(good, ckpt, "checkpoint_step", "-1", 0);
    expect_resume_fails("checkpoint_step -1", c.out, RN_ERR_BAD_FILE, "checkpoint_step '-1'");
    rewrite_checkpoint(good, ckpt, "checkpoint_step", "3x", 0);
    expect_resume_fails("checkpoint_step 3x", c.out, RN_ERR_BAD_FILE, "checkpoint_step '3x'");
    rewrite_checkpoint(good, ckpt, "model", "resnet32", 0);
    expect_resume_fails("another model's", c.out, RN_ERR_SHAPE, "resnet32");
    rewrite_checkpoint(good, ckpt, "window_loss_sum", "1.5x", 0);
    expect_resume_fails("window_loss_sum 1.5x", c.out, RN_ERR_BAD_FILE, "window_loss_sum");

    /* Without a checkpoint (a run stopped before its first), the run starts again. */
    remove(ckpt);
    rn_train_config rc;
    TU_OK(rn_train_config_load(&rc, c.out));
    recorder r0 = {0};
    TU_OK(rn_train_run(&rc, true, record, &r0, NULL));
    assert_int_equal(r0.started.step, 0);
    assert_int_equal(checkpoint_step(c.out), 6);
    printf("  no checkpoint: started again from step 0, to step 6\n");

    write_all(ckpt, orig, n);
    rn_free(orig);
    TU_OK(rn_train_run(&rc, true, NULL, NULL, NULL));
    assert_int_equal(checkpoint_step(c.out), 6);
    printf("  the restored checkpoint resumes to step 6\n");
}

/* ---- config.json ------------------------------------------------------------------------ */

/* A run with every setting away from its default writes a config.json that reads back equal. */
static void test_config_roundtrip(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, make_data("data_cfg", 24, 4), "cfg", 2);
    /* --init: a 3x10x10, 4-class resnet20 saved beforehand */
    rn_model *m;
    rn_model_opts mo = {3, 10, 10, 4};
    TU_OK(rn_model_create(&m, "resnet20", &mo, 99));
    snprintf(c.init, sizeof c.init, "%s/init.safetensors", tu_tmpdir());
    TU_OK(rn_model_save(m, c.init, NULL));
    rn_model_free(m);
    snprintf(c.backend, sizeof c.backend, "reference");
    c.threads = 2;
    c.resize_h = 10;
    c.resize_w = 10;
    c.batch = 4;
    c.epochs = 7;
    c.val = 5;
    c.seed = 18446744073709551557ull; /* beyond a double's 53 bits */
    c.lr = 0.0123f;
    c.momentum = 0.85f;
    c.wd = 1.5e-4f;
    c.gamma = 0.3f;
    c.nesterov = true;
    c.wd_skip_bn = true;
    c.schedule = RN_SCHED_MULTISTEP;
    c.milestones[0] = 10;
    c.milestones[1] = 55;
    c.milestones[2] = 90;
    c.n_milestones = 3;
    c.milestone_unit = RN_UNIT_PERCENT;
    c.warmup = 1;
    c.warmup_factor = 0.25f;
    c.label_smoothing = 0.1f;
    c.augment = true;
    c.shuffle = true;
    c.log_every = 3;
    c.eval_every = 2;
    c.ckpt_every = 11;
    TU_OK(rn_train_run(&c, false, NULL, NULL, NULL));

    rn_train_config d;
    TU_OK(rn_train_config_load(&d, c.out));
    assert_string_equal(d.model, c.model);
    assert_string_equal(d.data, c.data);
    assert_string_equal(d.out, c.out);
    assert_string_equal(d.backend, c.backend);
    assert_string_equal(d.init, c.init);
    assert_true(d.seed == c.seed);
    assert_true(d.lr == c.lr && d.momentum == c.momentum && d.wd == c.wd && d.gamma == c.gamma);
    assert_true(d.warmup_factor == c.warmup_factor && d.label_smoothing == c.label_smoothing);
    assert_int_equal(d.n_milestones, 3);
    assert_int_equal(d.milestones[1], 55);
    assert_int_equal(d.milestone_unit, RN_UNIT_PERCENT);
    assert_int_equal(d.schedule, RN_SCHED_MULTISTEP);
    /* Both started from rn_train_config_defaults (zeroed), so the whole structs compare. */
    assert_int_equal(memcmp(&d, &c, sizeof c), 0);
    printf("  config.json read back equal to the %zu-byte config\n", sizeof c);

    /* Every schedule name and milestone unit too. */
    static const rn_sched_kind kinds[] = {RN_SCHED_CONSTANT, RN_SCHED_COSINE, RN_SCHED_ONECYCLE};
    for (int i = 0; i < 3; i++) {
        c.schedule = kinds[i];
        c.milestone_unit = i == 0 ? RN_UNIT_STEPS : RN_UNIT_EPOCHS;
        TU_OK(rn_train_config_save(&c, path_in(c.out, "config.json")));
        TU_OK(rn_train_config_load(&d, c.out));
        assert_int_equal(memcmp(&d, &c, sizeof c), 0);
    }

    /* A config.json with a field missing or mistyped is refused, naming the field. */
    const char *cfg = path_in(c.out, "config.json");
    size_t n;
    char *text = read_all(cfg, &n);
    char *broken = malloc(n + 1);
    assert_non_null(broken);
    memcpy(broken, text, n);
    broken[n] = 0;
    char *lr = strstr(broken, "\"lr\"");
    assert_non_null(lr);
    lr[1] = 'L'; /* "Lr" */
    write_all(cfg, broken, n);
    assert_int_equal(rn_train_config_load(&d, c.out), RN_ERR_BAD_FILE);
    printf("  %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "'lr'"));
    /* Values the command line refuses are refused on resume too, naming the field, and
     * numbers too big for their type are caught before any conversion. */
    static const struct {
        const char *key;
        double value;
    } out_of_range[] = {{"lr", -1}, {"momentum", 3}, {"wd", -1}, {"gamma", 1e300},
                        {"epochs", -1}, {"batch", 1e18}, {"threads", 2.5}, {"ckpt_every", -4}};
    for (size_t i = 0; i < sizeof out_of_range / sizeof *out_of_range; i++) {
        cJSON *j = cJSON_ParseWithLength(text, n);
        cJSON_ReplaceItemInObject(j, out_of_range[i].key,
                                  cJSON_CreateNumber(out_of_range[i].value));
        char *t = cJSON_Print(j);
        write_all(cfg, t, strlen(t));
        assert_int_equal(rn_train_config_load(&d, c.out), RN_ERR_BAD_FILE);
        printf("  %s\n", rn_error_message());
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s'", out_of_range[i].key);
        assert_non_null(strstr(rn_error_message(), quoted));
        cJSON_free(t);
        cJSON_Delete(j);
    }
    /* A missing field is reported under its own name, wherever it sits among optional ones. */
    static const char *const dropped[][2] = {{"precision", "threads"}, {"device", "init"}};
    for (int i = 0; i < 2; i++) {
        cJSON *j = cJSON_ParseWithLength(text, n);
        cJSON_DeleteItemFromObject(j, dropped[i][0]);
        cJSON_DeleteItemFromObject(j, dropped[i][1]);
        char *t = cJSON_Print(j);
        write_all(cfg, t, strlen(t));
        assert_int_equal(rn_train_config_load(&d, c.out), RN_ERR_BAD_FILE);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "'%s' is missing", dropped[i][1]);
        assert_non_null(strstr(rn_error_message(), quoted));
        cJSON_free(t);
        cJSON_Delete(j);
    }
    write_all(cfg, "{\"model\": ", 10);
    assert_int_equal(rn_train_config_load(&d, c.out), RN_ERR_BAD_FILE);
    printf("  %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "config.json"));
    write_all(cfg, text, n);
    free(broken);
    rn_free(text);
    remove(cfg);
    assert_int_equal(rn_train_config_load(&d, c.out), RN_ERR_IO);
    printf("  %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "config.json"));
}

/* One table of ranges: what rn_train_setting_range reports is what rn_train_config_check (and
 * so rn_train_run) enforces, naming the setting; a milestone whose resolution to steps would
 * overflow (1e18 percent) is refused before anything is created. */
static void test_setting_ranges(void **state) {
    (void)state;
    double lo, hi;
    bool integer;
    TU_OK(rn_train_setting_range("lr", &lo, &hi, &integer));
    assert_true(lo == 0 && hi == 100 && !integer);
    TU_OK(rn_train_setting_range("batch", &lo, &hi, &integer));
    assert_true(lo == 1 && hi == 65536 && integer);
    TU_OK(rn_train_setting_range("milestones", &lo, &hi, &integer));
    assert_true(lo == 0 && hi == 1e9 && integer);
    assert_int_equal(rn_train_setting_range("model", &lo, &hi, &integer), RN_ERR_BAD_ARG);
    assert_int_equal(rn_train_setting_range("nonsense", &lo, &hi, &integer), RN_ERR_BAD_ARG);

    rn_train_config c;
    config(&c, small_data(), "ranges", 2);
    TU_OK(rn_train_config_check(&c));
    /* the setting each case below puts out of range */
    static const char *const bad[] = {"'lr'", "'batch'", "'momentum'", "'epochs'",
                                      "'milestones'"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        config(&c, small_data(), "ranges", 2);
        switch (i) {
        case 0: c.lr = -1; break;
        case 1: c.batch = -2147483647 - 1; break;
        case 2: c.momentum = 3; break;
        case 3: c.epochs = -1; break;
        case 4:
            c.schedule = RN_SCHED_MULTISTEP;
            c.milestones[0] = 1000000000000000000ll;
            c.n_milestones = 1;
            c.milestone_unit = RN_UNIT_PERCENT;
            break;
        }
        assert_int_equal(rn_train_config_check(&c), RN_ERR_BAD_ARG);
        assert_non_null(strstr(rn_error_message(), bad[i]));
        snprintf(c.out, sizeof c.out, "%s/ranges_never", tu_tmpdir());
        rn_status s = rn_train_run(&c, false, NULL, NULL, NULL);
        printf("  %s\n", rn_error_message());
        assert_int_equal(s, RN_ERR_BAD_ARG);
        assert_non_null(strstr(rn_error_message(), bad[i]));
        struct stat sb;
        assert_int_not_equal(stat(c.out, &sb), 0);
    }
}

/* ---- refusing to overwrite a run ---------------------------------------------------------- */

static void test_refuse_existing_run(void **state) {
    (void)state;
    rn_train_config c;
    config(&c, small_data(), "existing", 2);
    TU_OK(rn_train_run(&c, false, NULL, NULL, NULL));
    size_t n1;
    void *before = read_all(path_in(c.out, "checkpoint.safetensors"), &n1);
    c.lr = 0.5f; /* a different run */
    rn_status s = rn_train_run(&c, false, NULL, NULL, NULL);
    printf("  %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "already holds a run"));
    /* Nothing of the old run was touched. */
    size_t n2;
    void *after = read_all(path_in(c.out, "checkpoint.safetensors"), &n2);
    assert_true(n1 == n2 && memcmp(before, after, n1) == 0);
    rn_free(before);
    rn_free(after);
    rn_train_config d;
    TU_OK(rn_train_config_load(&d, c.out));
    assert_true(d.lr == 0.1f);

    /* A run refused for its settings creates no folder. */
    static const char *const bad_model = "resnet7";
    config(&c, small_data(), "unused", 2);
    snprintf(c.out, sizeof c.out, "%s/never", tu_tmpdir());
    snprintf(c.model, sizeof c.model, "%s", bad_model);
    s = rn_train_run(&c, false, NULL, NULL, NULL);
    printf("  %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_UNKNOWN_MODEL);
    struct stat sb;
    assert_int_not_equal(stat(c.out, &sb), 0);
    snprintf(c.model, sizeof c.model, "resnet20");
    snprintf(c.data, sizeof c.data, "packed:%s/nowhere", tu_tmpdir());
    s = rn_train_run(&c, false, NULL, NULL, NULL);
    printf("  %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_equal(s, RN_ERR_IO);
    assert_int_not_equal(stat(c.out, &sb), 0);

    /* Resuming a folder that holds no run. */
    config(&c, small_data(), "empty_run", 2);
    s = rn_train_run(&c, true, NULL, NULL, NULL);
    printf("  %s: %s\n", rn_status_name(s), rn_error_message());
    assert_int_not_equal(s, RN_OK);
    assert_non_null(strstr(rn_error_message(), "checkpoint.safetensors"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_plain),     cmocka_unit_test(test_resume_val_shuffle_augment),
        cmocka_unit_test(test_stop_contract),    cmocka_unit_test(test_eval_every),
        cmocka_unit_test(test_sgd_matches_torch),
        cmocka_unit_test(test_schedules),        cmocka_unit_test(test_milestone_units),
        cmocka_unit_test(test_nan_loss),         cmocka_unit_test(test_bad_checkpoint),
        cmocka_unit_test(test_config_roundtrip), cmocka_unit_test(test_refuse_existing_run),
        cmocka_unit_test(test_setting_ranges),   cmocka_unit_test(test_resume_mid_window),
        cmocka_unit_test(test_final_elapsed_and_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
