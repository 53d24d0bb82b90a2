/*
 * trainer.c — the training loop behind rn_train_run: data, model, SGD steps, logging to
 * metrics.jsonl, evaluation, checkpoints and exact resume.
 *
 * A checkpoint (checkpoint.safetensors) is the model's state plus one tensor
 * "optimizer.momentum" (the momentum block) and metadata: the next step, the best validation
 * accuracy, the elapsed time. Everything else a resumed run needs is a function of the config
 * and the step: the data order of an epoch and each step's augmentation are seeded from them.
 *
 * With several processes (a communicator of size N, rn_train_run_comm), each process runs
 * this same loop on its share of every global batch; they meet at the collectives below, in
 * the same order on every process: the agreement after each part of the setup, the state
 * rank 0 hands out, the gradient average (the executor's hooks), the stop flag after each
 * step, the logged sums, and the evaluation counts. Rank 0 alone touches the run directory.
 */
#include "core/draws.h"
#include "train.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    const rn_train_config *c; /* points at cfg */
    rn_train_config cfg;      /* the caller's config with milestones resolved to steps */
    const rn_train_config *orig;
    rn_dataset train, val, test;
    rn_norm norm;
    rn_model *model;
    rn_exec *exec;    /* where the steps run (the seam: no other code here knows the device) */
    rn_grad_avg *avg; /* the gradient average over the processes (NULL: one process) */
    int *perm;
    int perm_epoch;
    int steps_per_epoch;
    int64_t total, step;
    double best_val, elapsed_before, t_start;
    char path[2048];
    FILE *metrics;
    FILE *grads; /* grads.jsonl when c->log_grads */
    int64_t host_step; /* the step the host model's state is from (a device may train ahead) */
    int64_t ckpt_step; /* the step of the last checkpoint (-1: none yet) */
    rn_comm *comm;     /* the processes training this model (NULL: this one alone) */
    int rank, nproc;
    bool root;         /* rank 0: writes the run directory */
} trainer;

/* c->out + "/" + name into t->path. */
static const char *run_path(trainer *t, const char *name) {
    snprintf(t->path, sizeof t->path, "%s/%s", t->c->out, name);
    return t->path;
}

/* The data order of epoch e (computed once per epoch). */
static void epoch_order(trainer *t, int epoch) {
    if (t->perm_epoch == epoch) return;
    rn_draw_epoch_order(t->perm, t->train.n, t->c->seed, epoch, t->c->shuffle);
    t->perm_epoch = epoch;
}

/* Brings the executor's state (weights, BN buffers, momentum) into the host model, unless it is
 * already there (an epoch's best.safetensors and checkpoint need it once). */
static rn_status sync_to_host(trainer *t) {
    if (t->host_step == t->step) return RN_OK;
    rn_status s = rn_exec_sync_to_host(t->exec);
    if (s == RN_OK) t->host_step = t->step;
    return s;
}

static rn_status save_checkpoint(trainer *t) {
    rn_status s0 = sync_to_host(t);
    if (s0 != RN_OK || !t->root) return s0;
    size_t n;
    const float *velocity = rn_exec_momentum(t->exec, &n);
    rn_st_tensor mom = {.name = "optimizer.momentum", .dtype = RN_DTYPE_F32, .ndim = 1,
                        .shape = {(int64_t)n}, .nbytes = n * sizeof(float), .data = velocity};
    char step[32], best[32], elapsed[32];
    snprintf(step, sizeof step, "%lld", (long long)t->step);
    snprintf(best, sizeof best, "%.17g", t->best_val);
    snprintf(elapsed, sizeof elapsed, "%.17g", t->elapsed_before + (now_s() - t->t_start));
    const char *keys[] = {"checkpoint_step", "best_val_acc", "elapsed_s"};
    const char *vals[] = {step, best, elapsed};
    rn_status s = rn_model_save_ext(t->model, run_path(t, "checkpoint.safetensors"), &t->norm,
                                    &mom, 1, keys, vals, 3);
    if (s == RN_OK)
        s = rn_model_save_named(t->model, run_path(t, "last.safetensors"), &t->norm,
                                t->train.class_names);
    if (s == RN_OK) t->ckpt_step = t->step;
    return s;
}

static rn_status load_checkpoint(trainer *t) {
    const char *path = run_path(t, "checkpoint.safetensors");
    rn_safetensors st;
    rn_status s = rn_safetensors_read(&st, path);
    if (s != RN_OK) return s;
    size_t n;
    float *velocity = rn_exec_momentum(t->exec, &n);
    const rn_st_tensor *mom = rn_safetensors_find(&st, "optimizer.momentum");
    const char *step = rn_safetensors_meta(&st, "checkpoint_step");
    const char *best = rn_safetensors_meta(&st, "best_val_acc");
    const char *elapsed = rn_safetensors_meta(&st, "elapsed_s");
    if (!mom || mom->dtype != RN_DTYPE_F32 || mom->nbytes != n * sizeof(float) || !step ||
        !best || !elapsed) {
        s = rn_fail(RN_ERR_BAD_FILE,
                    "%s: not a checkpoint of this run (expected optimizer.momentum of %zu floats "
                    "and checkpoint_step, best_val_acc, elapsed_s metadata)",
                    path, n);
        goto done;
    }
    if ((s = rn_model_load_st(t->model, &st, path, "optimizer.", NULL)) != RN_OK) goto done;
    memcpy(velocity, mom->data, n * sizeof(float));
    char *end;
    t->step = strtoll(step, &end, 10);
    if (end == step || *end || t->step < 0 || t->step > t->total) {
        s = rn_fail(RN_ERR_BAD_FILE,
                    "%s: checkpoint_step '%s' is not a step of this run (an integer in 0..%lld)",
                    path, step, (long long)t->total);
        goto done;
    }
    t->best_val = strtod(best, NULL);
    t->elapsed_before = strtod(elapsed, NULL);
    t->ckpt_step = t->step;
    s = rn_exec_sync_to_device(t->exec);
done:
    rn_safetensors_free(&st);
    return s;
}

/* Keeps only the lines of a log (metrics.jsonl, grads.jsonl) of steps <= step, so a resumed run
 * does not log twice. */
static rn_status truncate_log(trainer *t, const char *name, int64_t step) {
    const char *path = run_path(t, name);
    void *buf;
    size_t size;
    if (rn_read_file(path, &buf, &size) != RN_OK) return RN_OK; /* none yet */
    char *text = buf, *keep_end = text;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        cJSON *j = cJSON_ParseWithLength(line, len);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        bool keep = cJSON_IsNumber(s) && s->valuedouble <= (double)step;
        cJSON_Delete(j);
        if (!keep) break;
        keep_end = line + len + (nl ? 1 : 0);
        line = keep_end;
    }
    const void *parts[] = {text};
    size_t sizes[] = {(size_t)(keep_end - text)};
    rn_status st = rn_write_file_atomic(path, parts, sizes, 1);
    rn_free(buf);
    return st;
}

/* Removes the temporary files (NAME.tmp.PID, see rn_write_file_atomic) that a process killed
 * while writing one of the run's files left behind. */
static void remove_stale_temps(trainer *t) {
    static const char *const files[] = {"checkpoint.safetensors", "last.safetensors",
                                        "best.safetensors", "config.json", "metrics.jsonl"};
    DIR *d = opendir(t->c->out);
    if (!d) return;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            size_t n = strlen(files[i]);
            if (!strncmp(e->d_name, files[i], n) && !strncmp(e->d_name + n, ".tmp.", 5)) {
                unlinkat(dirfd(d), e->d_name, 0);
                break;
            }
        }
    }
    closedir(d);
}

static rn_status write_classes(trainer *t) {
    FILE *f = fopen(run_path(t, "classes.txt"), "w");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot write", t->path);
    for (int k = 0; k < t->train.num_classes; k++) fprintf(f, "%s\n", t->train.class_names[k]);
    if (fclose(f) != 0) return rn_fail(RN_ERR_IO, "%s: write failed", t->path);
    return RN_OK;
}

/* The executor's training: every step's learning rate (the schedule is computed here, once,
 * for every device) and the step's settings. */
static rn_status start_training(trainer *t) {
    const rn_train_config *c = t->c;
    t->host_step = t->step;
    float *lrs = malloc((size_t)t->total * sizeof(float));
    if (!lrs) return rn_fail(RN_ERR_NOMEM, "cannot allocate the learning-rate table");
    for (int64_t i = 0; i < t->total; i++) lrs[i] = (float)rn_schedule_lr(c, i, t->total);
    const int share = c->batch / t->nproc;
    rn_exec_train_opts o = {.batch = share, .global_batch = c->batch, .first = t->rank * share,
                            .momentum = c->momentum, .wd = c->wd,
                            .label_smoothing = c->label_smoothing, .nesterov = c->nesterov,
                            .wd_skip_bn = c->wd_skip_bn, .augment = c->augment, .seed = c->seed,
                            .block_norms = c->log_grads,
                            .bn_sum = c->sync_bn ? rn_comm_sum_f64_hook : NULL,
                            .bn_sum_user = t->comm};
    rn_status s = rn_exec_train_init(t->exec, &t->train, &t->norm, &o, lrs, t->total, t->step);
    free(lrs);
    return s;
}

/* What every process sets up for itself: data, model, executor. No collectives. */
static rn_status setup_local(trainer *t, bool resume) {
    const rn_train_config *c = t->c;
    rn_status s;
    if (c->batch < 1 || c->batch > 65536)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d (expected 1 to 65536)", c->batch);
    if (c->batch % t->nproc != 0)
        return rn_fail(RN_ERR_BAD_ARG,
                       "batch size %d is not divisible by the %d processes (--batch is the "
                       "global batch; each process takes an equal share)",
                       c->batch, t->nproc);
    struct stat sb;
    if (t->root && !resume && stat(run_path(t, "checkpoint.safetensors"), &sb) == 0)
        return rn_fail(RN_ERR_BAD_ARG,
                       "%s already holds a run (resume it with --resume %s, or choose another "
                       "--out)",
                       c->out, c->out);
    rn_data_opts dopts = {c->resize_h, c->resize_w};
    if ((s = rn_dataset_load(&t->train, &t->test, c->data, &dopts)) != RN_OK) return s;
    if (c->val < 0 || c->val >= t->train.n)
        return rn_fail(RN_ERR_BAD_ARG, "--val %d: the training set has %d images", c->val,
                       t->train.n);
    if (c->val > 0 && (s = rn_dataset_split(&t->train, &t->val, c->val, c->seed)) != RN_OK)
        return s;
    if (t->train.n < c->batch)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d is larger than the %d training images",
                       c->batch, t->train.n);
    t->norm = rn_dataset_norm(&t->train);
    t->steps_per_epoch = t->train.n / c->batch; /* the last partial batch is dropped */
    t->total = c->iters > 0 ? c->iters : (int64_t)c->epochs * t->steps_per_epoch;
    if (t->total < 1)
        return rn_fail(RN_ERR_BAD_ARG, "nothing to train: --epochs and --iters are both 0");
    for (int i = 0; i < t->cfg.n_milestones; i++) {
        int64_t *ms = &t->cfg.milestones[i];
        if (c->milestone_unit == RN_UNIT_EPOCHS) *ms *= t->steps_per_epoch;
        else if (c->milestone_unit == RN_UNIT_PERCENT) *ms = *ms * t->total / 100;
    }
    rn_model_opts mo = {t->train.c, t->train.h, t->train.w, t->train.num_classes};
    if ((s = rn_model_create(&t->model, c->model, &mo, c->seed)) != RN_OK) return s;
    /* Rank 0's weights are everyone's (share_state). */
    if (t->root && !resume && c->init[0] && (s = rn_model_load(t->model, c->init, NULL)) != RN_OK)
        return s;
    int threads = c->threads;
    if (threads == 0 && t->nproc > 1) /* the host's cores, shared by its processes */
        threads = RN_MAX(1, (int)sysconf(_SC_NPROCESSORS_ONLN) / rn_comm_local_size(t->comm));
    rn_exec_opts eo = {.device = c->device, .backend = c->backend, .threads = threads,
                       .precision = c->precision};
    if ((s = rn_exec_open(&t->exec, t->model, &eo, c->batch / t->nproc)) != RN_OK) return s;
    t->perm = malloc((size_t)t->train.n * sizeof(int));
    if (!t->perm) return rn_fail(RN_ERR_NOMEM, "cannot allocate training buffers");
    t->perm_epoch = -1;
    t->best_val = -1;
    t->ckpt_step = -1;
    return RN_OK;
}

/* Rank 0's part of the setup: the run directory, and the checkpoint on resume. */
static rn_status setup_run_dir(trainer *t, bool resume) {
    const rn_train_config *c = t->c;
    rn_status s;
    /* Created only now, so that a run refused for its data, model or settings leaves no
     * directory behind. */
    if (mkdir(c->out, 0755) != 0 && errno != EEXIST)
        return rn_fail(RN_ERR_IO, "%s: cannot create the run directory: %s", c->out,
                       strerror(errno));
    remove_stale_temps(t);
    if (resume) {
        if ((s = load_checkpoint(t)) != RN_OK) return s;
        if ((s = truncate_log(t, "metrics.jsonl", t->step)) != RN_OK) return s;
        if ((s = truncate_log(t, "grads.jsonl", t->step)) != RN_OK) return s;
    } else {
        /* The caller's config, units as given, so that resume resolves them the same way. */
        rn_train_config saved = *t->orig;
        saved.processes = t->nproc;
        if ((s = rn_train_config_save(&saved, run_path(t, "config.json"))) != RN_OK) return s;
        if ((s = write_classes(t)) != RN_OK) return s;
        remove(run_path(t, "metrics.jsonl"));
        remove(run_path(t, "grads.jsonl"));
    }
    t->metrics = fopen(run_path(t, "metrics.jsonl"), "a");
    if (!t->metrics) return rn_fail(RN_ERR_IO, "%s: cannot open for appending", t->path);
    if (c->log_grads && !(t->grads = fopen(run_path(t, "grads.jsonl"), "a")))
        return rn_fail(RN_ERR_IO, "%s: cannot open for appending", t->path);
    return RN_OK;
}

/* Every process's status, agreed (see rn_comm_agree). */
static rn_status agree(trainer *t, rn_status s) { return rn_comm_agree(t->comm, s); }

/* A digest of a set's shape, pixels and labels (64-bit words, multiply-xor), to tell whether
 * two processes read the same data. */
static uint64_t set_digest(const rn_dataset *d, uint64_t h) {
    const uint64_t k = 0x100000001B3ull;
    const int64_t shape[] = {d->n, d->c, d->h, d->w, d->num_classes};
    for (size_t i = 0; i < sizeof shape / sizeof *shape; i++) h = (h ^ (uint64_t)shape[i]) * k;
    size_t bytes = (size_t)d->n * d->c * d->h * d->w, i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, d->images + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    for (; i < bytes; i++) h = (h ^ d->images[i]) * k;
    for (int j = 0; j < d->n; j++) h = (h ^ (uint64_t)(uint32_t)d->labels[j]) * k;
    return h;
}

/* Every process must train on the same data (each takes its share of the same global
 * batches): their digests are compared with rank 0's. */
static rn_status check_same_data(trainer *t) {
    uint64_t mine = set_digest(&t->train, 14695981039346656037ull);
    mine = set_digest(&t->test, set_digest(&t->val, mine));
    uint64_t root = mine;
    rn_status s = rn_comm_broadcast(t->comm, &root, sizeof root, 0);
    if (s != RN_OK || mine == root) return s;
    return rn_fail(RN_ERR_BAD_FILE,
                   "rank %d: the data %s differs from rank 0's (digest %016llx, rank 0 has "
                   "%016llx); every process must read the same data",
                   t->rank, t->c->data, (unsigned long long)mine, (unsigned long long)root);
}

/* Rank 0's state (weights, BN statistics and counters, momentum, the trainer's position)
 * to every process, so that all start from the same point, fresh or resumed. */
static rn_status share_state(trainer *t) {
    size_t np, nb, nm;
    float *params = rn_model_params(t->model, &np);
    float *bufs = rn_model_buffers(t->model, &nb);
    float *mom = rn_exec_momentum(t->exec, &nm);
    struct {
        int64_t step, ckpt_step;
        double best_val, elapsed_before;
    } pos = {t->step, t->ckpt_step, t->best_val, t->elapsed_before};
    rn_status s = rn_comm_broadcast(t->comm, &pos, sizeof pos, 0);
    if (s == RN_OK) s = rn_comm_broadcast(t->comm, params, np * sizeof(float), 0);
    if (s == RN_OK) s = rn_comm_broadcast(t->comm, bufs, nb * sizeof(float), 0);
    if (s == RN_OK) s = rn_comm_broadcast(t->comm, mom, nm * sizeof(float), 0);
    for (int i = 0; s == RN_OK && i < rn_model_num_tensors(t->model); i++) {
        const rn_tensor_info *e = rn_model_tensor(t->model, i);
        if (e->kind == RN_TENSOR_COUNTER)
            s = rn_comm_broadcast(t->comm, e->counter, sizeof(int64_t), 0);
    }
    if (s != RN_OK) return s;
    t->step = pos.step;
    t->ckpt_step = pos.ckpt_step;
    t->best_val = pos.best_val;
    t->elapsed_before = pos.elapsed_before;
    return rn_exec_sync_to_device(t->exec);
}

static rn_status setup(trainer *t, bool resume) {
    rn_status s = agree(t, setup_local(t, resume));
    if (s == RN_OK && t->nproc > 1) s = agree(t, check_same_data(t));
    if (s != RN_OK) return s;
    s = agree(t, t->root ? setup_run_dir(t, resume) : RN_OK);
    if (s != RN_OK) return s;
    if (t->nproc > 1) {
        if ((s = share_state(t)) != RN_OK) return s;
        /* each process's gradient is that of its share's mean loss; their mean is the
         * gradient of the global batch's mean loss */
        if ((s = agree(t, rn_grad_avg_open(&t->avg, t->comm, t->exec, -1))) != RN_OK) return s;
    }
    return agree(t, start_training(t));
}

static void teardown(trainer *t) {
    if (t->metrics) fclose(t->metrics);
    if (t->grads) fclose(t->grads);
    rn_dataset_free(&t->train);
    rn_dataset_free(&t->val);
    rn_dataset_free(&t->test);
    rn_exec_close(t->exec);
    rn_grad_avg_close(t->avg);
    rn_model_free(t->model);
    free(t->perm);
}

static double elapsed(const trainer *t) { return t->elapsed_before + (now_s() - t->t_start); }

/* Evaluates a set, split over the processes (rn_exec_evaluate_comm) with rank 0's BN
 * statistics: the model's running statistics are rank 0's, handed to the others first. */
static rn_status evaluate_set(trainer *t, const rn_dataset *d, rn_eval_result *r) {
    if (t->nproc > 1) {
        size_t nb;
        float *bufs = rn_model_buffers(t->model, &nb);
        rn_status s = sync_to_host(t);
        if (s == RN_OK) s = rn_comm_broadcast(t->comm, bufs, nb * sizeof(float), 0);
        if (s == RN_OK) s = rn_exec_sync_to_device(t->exec);
        if (s != RN_OK) return s;
    }
    return rn_exec_evaluate_comm(t->exec, t->comm, d, &t->norm, r);
}

/* Evaluates the validation and/or test set and logs one metrics line (rank 0). */
static rn_status evaluate_sets(trainer *t, bool val, bool test, rn_train_progress *p) {
    rn_eval_result r;
    rn_status s;
    if (val && t->val.n > 0) {
        s = evaluate_set(t, &t->val, &r);
        if (s != RN_OK) return s;
        p->has_val = true;
        p->val_acc = r.top1;
        p->val_loss = r.loss;
        rn_eval_result_free(&r);
    }
    if (test && t->test.n > 0) {
        s = evaluate_set(t, &t->test, &r);
        if (s != RN_OK) return s;
        p->has_test = true;
        p->test_acc = r.top1;
        p->test_loss = r.loss;
        rn_eval_result_free(&r);
    }
    if ((!p->has_val && !p->has_test) || !t->root) return RN_OK;
    fprintf(t->metrics, "{\"step\": %lld, \"epoch\": %d, \"elapsed_s\": %.3f",
            (long long)p->step, p->epoch, elapsed(t));
    if (p->has_val)
        fprintf(t->metrics, ", \"val_loss\": %.6g, \"val_acc\": %.6g", p->val_loss, p->val_acc);
    if (p->has_test)
        fprintf(t->metrics, ", \"test_loss\": %.6g, \"test_acc\": %.6g", p->test_loss,
                p->test_acc);
    fprintf(t->metrics, "}\n");
    fflush(t->metrics);
    return RN_OK;
}

/* A norm as JSON: null when it is not finite (JSON has no NaN or Inf). */
static void put_norm(FILE *f, const char *sep, const char *name, double v) {
    if (isfinite(v)) fprintf(f, "%s\"%s\": %.6g", sep, name, v);
    else fprintf(f, "%s\"%s\": null", sep, name);
}

/* One grads.jsonl line after the backward pass of step t->step: the L2 norm of each parameter's
 * gradient and of the gradient reaching each block's input. */
static rn_status log_grads(trainer *t) {
    rn_status s = rn_exec_grads_to_host(t->exec);
    if (s != RN_OK || !t->root) return s;
    FILE *f = t->grads;
    fprintf(f, "{\"step\": %lld, \"params\": {", (long long)t->step);
    int n = rn_model_num_tensors(t->model), k = 0;
    for (int i = 0; i < n; i++) {
        const rn_tensor_info *e = rn_model_tensor(t->model, i);
        if (e->kind != RN_TENSOR_PARAM) continue;
        double sum = 0;
        for (size_t j = 0; j < e->numel; j++) sum += (double)e->grad[j] * e->grad[j];
        put_norm(f, k++ ? ", " : "", e->name, sqrt(sum));
    }
    fprintf(f, "}, \"blocks\": {");
    for (int i = 0; i < rn_model_num_blocks(t->model); i++)
        put_norm(f, i ? ", " : "", rn_model_block_name(t->model, i),
                 rn_model_block_input_grad_norm(t->model, i));
    fprintf(f, "}}\n");
    if (fflush(f) != 0 || ferror(f))
        return rn_fail(RN_ERR_IO, "%s/grads.jsonl: write failed", t->c->out);
    return RN_OK;
}

/* A non-finite loss stops the run: the executor's message, plus what is kept. */
static rn_status numeric_stop(trainer *t) {
    char what[256];
    snprintf(what, sizeof what, "%s", rn_error_message());
    if (t->ckpt_step < 0)
        return rn_fail(RN_ERR_NUMERIC, "%s; training stopped (no checkpoint was written yet)",
                       what);
    return rn_fail(RN_ERR_NUMERIC,
                   "%s; training stopped (the checkpoint of step %lld is kept in %s)", what,
                   (long long)t->ckpt_step, t->c->out);
}

/* Whether any process was asked to stop (each step's boundary, on every process). */
static bool agree_stop(trainer *t, volatile int *stop) {
    int64_t any = stop && *stop;
    if (t->nproc > 1 && rn_comm_sum_i64(t->comm, &any, 1) != RN_OK) return true;
    return any > 0;
}

rn_status rn_train_run(const rn_train_config *c, bool resume, rn_train_callback cb, void *user,
                       volatile int *stop) {
    return rn_train_run_comm(c, NULL, resume, cb, user, stop);
}

rn_status rn_train_run_comm(const rn_train_config *c, rn_comm *comm, bool resume,
                            rn_train_callback cb, void *user, volatile int *stop) {
    trainer t = {.cfg = *c, .orig = c, .comm = comm, .rank = rn_comm_rank(comm),
                 .nproc = rn_comm_size(comm)};
    t.root = t.rank == 0;
    t.c = &t.cfg;
    rn_status s = setup(&t, resume);
    if (s != RN_OK) goto done;
    c = t.c; /* from here on, the config with its milestones resolved to steps */
    t.t_start = now_s();
    if (cb) {
        rn_train_progress p0 = {.step = t.step, .total_steps = t.total,
                                .epoch = (int)(t.step / t.steps_per_epoch),
                                .steps_per_epoch = t.steps_per_epoch,
                                .lr = rn_schedule_lr(c, t.step, t.total),
                                .elapsed_s = t.elapsed_before, .started = true};
        cb(&p0, user);
    }
    double loss_sum = 0, win_start = now_s();
    int64_t correct_sum = 0, win_steps = 0;
    rn_train_progress p = {0};
    while (t.step < t.total) {
        /* Queued, perhaps not waited for: a device may run ahead until the next log line. */
        if (t.step % t.steps_per_epoch == 0 || t.perm_epoch < 0) {
            epoch_order(&t, (int)(t.step / t.steps_per_epoch));
            if ((s = rn_exec_train_set_order(t.exec, t.perm)) != RN_OK) goto done;
        }
        if ((s = rn_exec_train_step(t.exec)) != RN_OK) {
            if (s == RN_ERR_NUMERIC) s = numeric_stop(&t);
            goto done;
        }
        t.step++;
        win_steps++;
        bool epoch_end = t.step % t.steps_per_epoch == 0 || t.step == t.total;
        bool log = t.step % RN_MAX(c->log_every, 1) == 0 || epoch_end;
        int epoch = (int)((t.step - 1) / t.steps_per_epoch);
        if (log && (s = rn_exec_train_metrics(t.exec, &loss_sum, &correct_sum)) != RN_OK) {
            if (s == RN_ERR_NUMERIC) s = numeric_stop(&t);
            goto done;
        }
        if (log && t.nproc > 1) { /* over the global batch: the shares' mean losses averaged */
            double sums[2] = {loss_sum, (double)correct_sum};
            if ((s = rn_comm_sum_f64(t.comm, sums, 2)) != RN_OK) goto done;
            loss_sum = sums[0] / t.nproc;
            correct_sum = (int64_t)sums[1];
        }
        if (log) {
            double dt = now_s() - win_start;
            p = (rn_train_progress){.step = t.step, .total_steps = t.total, .epoch = epoch,
                                    .steps_per_epoch = t.steps_per_epoch,
                                    .lr = rn_schedule_lr(c, t.step - 1, t.total),
                                    .train_loss = loss_sum / win_steps,
                                    .train_acc = (double)correct_sum / (win_steps * c->batch),
                                    .images_per_s = dt > 0 ? win_steps * c->batch / dt : 0,
                                    .elapsed_s = elapsed(&t)};
            p.eta_s = p.images_per_s > 0 ? (t.total - t.step) * c->batch / p.images_per_s : 0;
            if (t.root) { /* the others' metrics are the same sums */
                fprintf(t.metrics,
                        "{\"step\": %lld, \"epoch\": %d, \"lr\": %.6g, \"train_loss\": %.9g, "
                        "\"train_acc\": %.6g, \"images_per_s\": %.1f, \"elapsed_s\": %.3f}\n",
                        (long long)t.step, epoch, p.lr, p.train_loss, p.train_acc,
                        p.images_per_s, p.elapsed_s);
                fflush(t.metrics);
            }
            if (c->log_grads && (s = log_grads(&t)) != RN_OK) goto done;
            if (cb) cb(&p, user);
            loss_sum = 0;
            correct_sum = 0;
            win_steps = 0;
            win_start = now_s();
        }
        if (epoch_end) {
            bool last = t.step == t.total;
            bool test = last || (c->eval_every > 0 && (epoch + 1) % c->eval_every == 0);
            rn_train_progress e = p;
            e.has_val = e.has_test = false;
            if ((s = evaluate_sets(&t, true, test, &e)) != RN_OK) goto done;
            if (e.has_val && e.val_acc > t.best_val) {
                t.best_val = e.val_acc;
                if ((s = sync_to_host(&t)) != RN_OK) goto done;
                if (t.root && (s = rn_model_save_named(t.model, run_path(&t, "best.safetensors"),
                                                       &t.norm, t.train.class_names)) != RN_OK)
                    goto done;
            }
            e.final = last;
            if ((e.has_val || e.has_test || last) && cb) cb(&e, user);
            win_start = now_s(); /* evaluation time is not training throughput */
        }
        bool ckpt = epoch_end || (c->ckpt_every > 0 && t.step % c->ckpt_every == 0);
        bool stopping = agree_stop(&t, stop);
        if (ckpt || stopping) {
            if ((s = save_checkpoint(&t)) != RN_OK) goto done;
        }
        if (stopping && t.step < t.total) {
            s = rn_fail(RN_ERR_INTERRUPTED,
                        "stopped at step %lld of %lld; checkpoint written (resume with --resume "
                        "%s)",
                        (long long)t.step, (long long)t.total, c->out);
            goto done;
        }
    }
done:
    teardown(&t);
    return s;
}
