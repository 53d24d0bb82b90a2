/*
 * batches.c — the data of a training run or an evaluation, in memory or streamed (see
 * batches.h): the choice between them, the streams of each split with their held-out
 * validation subset and normalization, and the step's batch and a split's evaluation over
 * either kind.
 */
#include "train/batches.h"

#include "core/draws.h"
#include "data/data.h"
#include "data/source.h"
#include "exec/exec.h" /* the executor's evaluation progress */
#include "exec/step.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NORM_SAMPLE 500 /* images the statistics of a streamed set are measured on */

static bool is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The default budget: a quarter of physical memory (2 GiB when the system does not say). */
static int64_t default_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return (int64_t)2 << 30;
    return (int64_t)pages * page / 4;
}

/* Images in ROOT/split, 0 when the split has no folder. */
static rn_status folder_count(const char *root, const char *split, int *n, char *first,
                              size_t size) {
    char dir[4096];
    *n = 0;
    snprintf(dir, sizeof dir, "%s/%s", root, split);
    if (!is_dir(dir)) return RN_OK;
    rn_source src;
    rn_status s = rn_source_open_folder(&src, root, split);
    if (s != RN_OK) return s;
    *n = src.n;
    if (first && src.n > 0) rn_source_name(&src, 0, first, size);
    rn_source_free(&src);
    return RN_OK;
}

rn_status rn_batches_decide(const rn_train_config *c, bool *streamed, int64_t *memory) {
    *memory = c->data_memory > 0 ? c->data_memory : default_memory();
    *streamed = !strncmp(c->data, "shards:", 7);
    if (strncmp(c->data, "folder:", 7) != 0 || *streamed) return RN_OK;
    if (c->size > 0 || c->preset[0]) {
        *streamed = true;
        return RN_OK;
    }
    /* What the in-memory loader would hold: ROOT/train and ROOT/test as 3 x H x W bytes,
     * H x W the resize or the first image's size (the loader requires one size). */
    const char *root = c->data + 7;
    char first[4096] = "";
    int n_train, n_test, w = c->resize_w, h = c->resize_h, ch;
    rn_status s = folder_count(root, "train", &n_train, first, sizeof first);
    if (s == RN_OK) s = folder_count(root, "test", &n_test, NULL, 0);
    if (s != RN_OK || n_train == 0) return RN_OK; /* the in-memory loader says what is wrong */
    if ((w <= 0 || h <= 0) && rn_image_info(first, &w, &h, &ch) != RN_OK) return RN_OK;
    double bytes = (double)(n_train + n_test) * 3 * h * w;
    *streamed = bytes > (double)*memory;
    return RN_OK;
}

/* The crop size of a streamed set: the setting, else 224 for -imagenet models, 32 others. */
static int stream_size(const rn_train_config *c) {
    if (c->size > 0) return c->size;
    const char *tail = strrchr(c->model, '-');
    return tail && !strcmp(tail, "-imagenet") ? 224 : 32;
}

static void on_skip(const char *message, void *user) {
    rn_batches *b = user;
    if (b->warn) b->warn(message, b->user);
}

/* The stream options every split shares. */
static rn_stream_opts base_opts(const rn_batches *b, const rn_train_config *c) {
    rn_stream_opts o = rn_stream_opts_default();
    o.size = stream_size(c);
    o.batch = c->batch;
    o.seed = c->seed;
    o.threads = c->data_threads > 0 ? c->data_threads : 2;
    o.skip_bad = c->skip_bad;
    o.on_skip = on_skip;
    o.user = (void *)b;
    o.transform = RN_TRANSFORM_EVAL;
    o.shuffle = false;
    o.drop_last = false;
    for (int k = 0; k < 3; k++) {
        o.mean[k] = b->norm.mean[k];
        o.std[k] = b->norm.std[k];
    }
    return o;
}

/* The test split's spec: folder: ROOT/val, else ROOT/test; shards: the pattern with the last
 * "train" of its file name replaced by "val", when that names shards. "" when none. */
static void test_spec(const rn_train_config *c, char *spec, size_t size, const char **split) {
    spec[0] = '\0';
    *split = "val";
    if (!strncmp(c->data, "folder:", 7)) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/val", c->data + 7);
        if (!is_dir(dir)) {
            *split = "test";
            snprintf(dir, sizeof dir, "%s/test", c->data + 7);
            if (!is_dir(dir)) return;
        }
        snprintf(spec, size, "%s", c->data);
        return;
    }
    const char *name = strrchr(c->data, '/');
    name = name ? name + 1 : c->data + 7;
    const char *at = NULL;
    for (const char *p = strstr(name, "train"); p; p = strstr(p + 1, "train")) at = p;
    if (!at) return;
    snprintf(spec, size, "%.*sval%s", (int)(at - c->data), c->data, at + 5);
    /* the first shard the pattern names: its braces' lower bounds */
    char first[4096];
    size_t k = 0;
    for (const char *p = spec + 7; *p && k + 1 < sizeof first; p++) {
        if (*p == '{') {
            const char *dots = strstr(p, ".."), *close = strchr(p, '}');
            if (dots && close && dots < close) {
                for (p++; p < dots && k + 1 < sizeof first; p++) first[k++] = *p;
                p = close;
                continue;
            }
        }
        first[k++] = *p;
    }
    first[k] = '\0';
    struct stat st;
    if (strpbrk(first, "*?[") == NULL && stat(first, &st) != 0) spec[0] = '\0';
}

/* Mean and std of pixel/255 per channel over up to NORM_SAMPLE images of the training split
 * (idx, n of them), spread evenly, through the evaluation transform. */
static rn_status sample_norm(rn_batches *b, const rn_train_config *c, const int *idx, int n) {
    int k = RN_MIN(n, NORM_SAMPLE);
    int *pick = malloc((size_t)RN_MAX(k, 1) * sizeof(int));
    if (!pick) return rn_fail(RN_ERR_NOMEM, "cannot allocate the normalization sample");
    for (int i = 0; i < k; i++) pick[i] = idx[(int64_t)i * n / k];
    rn_stream_opts o = base_opts(b, c);
    o.batch = RN_MIN(k, 50);
    o.subset = pick;
    o.subset_n = k;
    rn_stream *s;
    rn_status st = rn_stream_open(&s, c->data, &o);
    free(pick);
    if (st != RN_OK) return st;
    const size_t plane = (size_t)o.size * o.size;
    float *x = malloc((size_t)o.batch * 3 * plane * sizeof(float));
    int32_t *labels = malloc((size_t)o.batch * sizeof(int32_t));
    double sum[3] = {0}, sq[3] = {0}, count = 0;
    if (!x || !labels) st = rn_fail(RN_ERR_NOMEM, "cannot allocate the normalization sample");
    for (int step = 0; st == RN_OK && step < rn_stream_steps(s); step++) {
        int got;
        if ((st = rn_stream_batch(s, 0, step, x, labels, &got)) != RN_OK) break;
        for (int i = 0; i < got; i++)
            for (int ch = 0; ch < 3; ch++) {
                const float *p = x + ((size_t)i * 3 + ch) * plane;
                for (size_t j = 0; j < plane; j++) {
                    sum[ch] += p[j];
                    sq[ch] += (double)p[j] * p[j];
                }
            }
        count += (double)got * plane;
    }
    free(x);
    free(labels);
    rn_stream_close(s);
    if (st != RN_OK) return st;
    for (int ch = 0; ch < 3 && count > 0; ch++) {
        double mean = sum[ch] / count, var = sq[ch] / count - mean * mean;
        b->norm.mean[ch] = (float)mean;
        b->norm.std[ch] = (float)RN_MAX(sqrt(RN_MAX(var, 0)), 1.0 / 255);
    }
    return RN_OK;
}

/* The streamed splits: train (less the held-out val) and val as subsets of the training
 * source, test from its own spec. */
static rn_status open_streams(rn_batches *b, const rn_train_config *c, bool training,
                              const rn_norm *norm) {
    b->norm = (rn_norm){.channels = 3, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    rn_stream_opts o = base_opts(b, c);
    rn_stream *probe;
    rn_status s = rn_stream_open(&probe, c->data, &o); /* the count and the classes */
    if (s != RN_OK) return s;
    const int n = rn_stream_len(probe), K = rn_stream_num_classes(probe);
    b->train.class_names = rn_data_copy_names(rn_stream_class_names(probe), K);
    rn_stream_close(probe);
    if (!b->train.class_names) return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    b->train.num_classes = K;
    if (c->val < 0 || c->val >= n)
        return rn_fail(RN_ERR_BAD_ARG, "--val %d: the training set has %d images", c->val, n);
    /* The held-out images: rn_dataset_split's rule (the first val of the split order), both
     * parts in the source's order. */
    int *order = malloc((size_t)n * sizeof(int));
    char *held = calloc((size_t)n, 1);
    int *train_idx = malloc((size_t)n * sizeof(int)), *val_idx = malloc((size_t)n * sizeof(int));
    if (!order || !held || !train_idx || !val_idx) {
        s = rn_fail(RN_ERR_NOMEM, "cannot allocate the index of %d images", n);
        goto done;
    }
    rn_draw_split_order(order, n, c->seed);
    for (int i = 0; i < c->val; i++) held[order[i]] = 1;
    int n_train = 0, n_val = 0;
    for (int i = 0; i < n; i++) {
        if (held[i]) val_idx[n_val++] = i;
        else train_idx[n_train++] = i;
    }
    if (norm) b->norm = *norm;
    else if (!strcmp(c->preset, "imagenet"))
        b->norm = (rn_norm){.channels = 3, .mean = {0.485f, 0.456f, 0.406f},
                            .std = {0.229f, 0.224f, 0.225f}};
    else if ((s = sample_norm(b, c, train_idx, n_train)) != RN_OK)
        goto done;
    o = base_opts(b, c); /* with the normalization */
    rn_stream_opts ot = o;
    ot.subset = train_idx;
    ot.subset_n = n_train;
    if (training) {
        ot.transform = c->augment ? RN_TRANSFORM_TRAIN : RN_TRANSFORM_EVAL;
        ot.shuffle = c->shuffle;
        ot.drop_last = true;
    }
    if ((s = rn_stream_open(&b->stream[RN_SPLIT_TRAIN], c->data, &ot)) != RN_OK) goto done;
    if (n_val > 0) {
        rn_stream_opts ov = o;
        ov.subset = val_idx;
        ov.subset_n = n_val;
        if ((s = rn_stream_open(&b->stream[RN_SPLIT_VAL], c->data, &ov)) != RN_OK) goto done;
    }
    char spec[sizeof c->data + 8];
    const char *split;
    test_spec(c, spec, sizeof spec, &split);
    if (spec[0]) {
        rn_stream_opts oe = o;
        oe.split = split;
        oe.num_classes = K;
        if ((s = rn_stream_open(&b->stream[RN_SPLIT_TEST], spec, &oe)) != RN_OK) goto done;
    }
    b->train.n = n_train;
    b->train.c = 3;
    b->train.h = b->train.w = o.size;
done:
    free(order);
    free(held);
    free(train_idx);
    free(val_idx);
    return s;
}

rn_status rn_batches_open(rn_batches *b, const rn_train_config *c, int nproc, bool training,
                          const rn_norm *norm, void (*warn)(const char *message, void *user),
                          void *user) {
    memset(b, 0, sizeof *b);
    b->warn = warn;
    b->user = user;
    b->batch = c->batch;
    b->seed = c->seed;
    b->shuffle = c->shuffle;
    b->perm_epoch = -1;
    int64_t memory;
    rn_status s = rn_batches_decide(c, &b->streamed, &memory);
    if (s != RN_OK) return s;
    if (b->streamed && nproc > 1)
        return rn_fail(RN_ERR_BAD_ARG, "%s: streamed sets train in one process for now",
                       RN_SHOW(c->data));
    if (c->preset[0] && strcmp(c->preset, "imagenet") != 0)
        return rn_fail(RN_ERR_BAD_ARG, "preset '%s' (expected imagenet)", RN_SHOW(c->preset));
    if (!b->streamed) {
        rn_data_opts dopts = {c->resize_h, c->resize_w};
        if ((s = rn_dataset_load(&b->train, &b->test, c->data, &dopts)) != RN_OK) return s;
        if (c->val < 0 || c->val >= b->train.n)
            return rn_fail(RN_ERR_BAD_ARG, "--val %d: the training set has %d images", c->val,
                           b->train.n);
        if (c->val > 0 && (s = rn_dataset_split(&b->train, &b->val, c->val, c->seed)) != RN_OK)
            return s;
        b->norm = norm ? *norm : rn_dataset_norm(&b->train);
        if (!(b->perm = malloc((size_t)RN_MAX(b->train.n, 1) * sizeof(int))))
            return rn_fail(RN_ERR_NOMEM, "cannot allocate training buffers");
    } else {
        if ((s = open_streams(b, c, training, norm)) != RN_OK) return s;
        const size_t per = (size_t)3 * b->train.h * b->train.w;
        b->x = malloc((size_t)c->batch * per * sizeof(float));
        b->labels = malloc((size_t)c->batch * sizeof(int32_t));
        if (!b->x || !b->labels) return rn_fail(RN_ERR_NOMEM, "cannot allocate a batch");
    }
    b->steps_per_epoch = b->train.n / c->batch; /* the last partial batch is dropped */
    return RN_OK;
}

void rn_batches_close(rn_batches *b) {
    for (int k = 0; k < RN_SPLIT_COUNT; k++) rn_stream_close(b->stream[k]);
    rn_dataset_free(&b->train);
    rn_dataset_free(&b->val);
    rn_dataset_free(&b->test);
    free(b->x);
    free(b->labels);
    free(b->logits);
    free(b->probs);
    free(b->perm);
    memset(b, 0, sizeof *b);
}

int rn_batches_count(const rn_batches *b, rn_split split) {
    if (b->streamed) return b->stream[split] ? rn_stream_len(b->stream[split]) : 0;
    return split == RN_SPLIT_TRAIN ? b->train.n : split == RN_SPLIT_VAL ? b->val.n : b->test.n;
}

rn_status rn_batches_train_step(rn_batches *b, rn_exec *e, int64_t step) {
    const int epoch = (int)(step / b->steps_per_epoch), k = (int)(step % b->steps_per_epoch);
    if (!b->streamed) {
        /* Queued, perhaps not waited for: a device may run ahead until the next log line. */
        if (k == 0 || b->perm_epoch < 0) {
            if (b->perm_epoch != epoch)
                rn_draw_epoch_order(b->perm, b->train.n, b->seed, epoch, b->shuffle);
            b->perm_epoch = epoch;
            rn_status s = rn_exec_train_set_order(e, b->perm);
            if (s != RN_OK) return s;
        }
        return rn_exec_train_step(e);
    }
    int n;
    rn_status s = rn_stream_batch(b->stream[RN_SPLIT_TRAIN], epoch, k, b->x, b->labels, &n);
    return s != RN_OK ? s : rn_exec_train_step_batch(e, b->x, b->labels);
}

/* A streamed split through the executor's forward pass, batch by batch. */
static rn_status evaluate_stream(rn_batches *b, rn_stream *st, rn_exec *e, int K,
                                 rn_eval_result *r) {
    memset(r, 0, sizeof *r);
    if (!b->logits) {
        b->logits = malloc((size_t)b->batch * K * sizeof(float));
        b->probs = malloc((size_t)b->batch * K * sizeof(float));
    }
    r->confusion = calloc((size_t)K * K, sizeof(int64_t));
    if (!b->logits || !b->probs || !r->confusion) {
        rn_eval_result_free(r);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate evaluation buffers");
    }
    r->n = rn_stream_len(st);
    r->num_classes = K;
    rn_eval_sums sums = {0};
    rn_status s = RN_OK;
    int done = 0;
    for (int step = 0; s == RN_OK && step < rn_stream_steps(st); step++) {
        int n;
        if ((s = rn_stream_batch(st, 0, step, b->x, b->labels, &n)) != RN_OK) break;
        if ((s = rn_exec_forward(e, b->x, n, RN_MODE_INFER, b->logits)) != RN_OK) break;
        rn_eval_add(r, &sums, b->probs, b->logits, b->labels, n);
        done += n;
        if (e->eval_progress) e->eval_progress(done, r->n, e->eval_progress_user);
    }
    if (s == RN_OK) s = rn_eval_finish(r, &sums);
    if (s != RN_OK) rn_eval_result_free(r);
    return s;
}

rn_status rn_batches_evaluate(rn_batches *b, rn_split split, rn_exec *e, rn_comm *comm,
                              int num_classes, rn_eval_result *r) {
    if (!b->streamed) {
        const rn_dataset *d = split == RN_SPLIT_TRAIN ? &b->train
                              : split == RN_SPLIT_VAL ? &b->val : &b->test;
        return rn_exec_evaluate_comm(e, comm, d, &b->norm, r);
    }
    if (!b->stream[split]) return rn_fail(RN_ERR_BAD_ARG, "the data has no such split");
    return evaluate_stream(b, b->stream[split], e, num_classes, r);
}
