/*
 * trainer.c — the training loop behind rn_train_run: data, model, SGD steps, logging to
 * metrics.jsonl, evaluation, checkpoints and exact resume.
 *
 * A checkpoint (checkpoint.safetensors) is the model's state plus one tensor
 * "optimizer.momentum" (the momentum block) and metadata: the next step, the best validation
 * accuracy, the elapsed time, and the sums of the logging window it falls in (window_steps,
 * window_loss_sum, window_correct; absent in checkpoints older than them, read as 0). Everything else a resumed run needs is a function of the config
 * and the step: the data order of an epoch and each step's augmentation are seeded from them.
 *
 * With several processes (a communicator of size N, rn_train_run_comm), each process runs
 * this same loop on its share of every global batch; they meet at the collectives below, in
 * the same order on every process: the agreement after each part of the setup, the state
 * rank 0 hands out, the gradient average (the executor's hooks), the stop flag after each
 * step, the logged sums, and the evaluation counts. Rank 0 alone touches the run directory.
 *
 * One run per directory: rank 0 holds a write lock (fcntl) on RUN_DIR/.lock from its setup to
 * its end, so a second trainer on the same directory (a new run or a resume) stops at once,
 * naming the holder. The kernel drops the lock when its holder dies, so a killed run never
 * blocks the next; the file itself stays (removing it could let two trainers lock two files).
 */
#include "train.h"
#include "train/batches.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
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
    rn_batches data;  /* the sets, in memory or streamed (batches.h) */
    rn_norm norm;
    rn_model *model;
    rn_exec *exec;    /* where the steps run (the seam: no other code here knows the device) */
    rn_grad_avg *avg; /* the gradient average over the processes (NULL: one process) */
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
    rn_train_callback cb; /* for the data's warnings (skipped images) */
    void *cb_user;
    int lock_fd;       /* RUN_DIR/.lock, locked for the whole run (rank 0; -1: not yet) */
    /* The logging window (the steps since the last metrics line): its steps, and the loss and
     * accuracy sums over the global batch read from the executor so far. A checkpoint keeps
     * them, so that the first line after a resume covers the whole window. */
    int64_t win_steps, win_correct;
    double win_loss;
    bool fresh;        /* rank 0: starts at step 0 (a new run, or a resumed one that was
                        * stopped before its first checkpoint) */
} trainer;

/* c->out + "/" + name into t->path. */
static const char *run_path(trainer *t, const char *name) {
    snprintf(t->path, sizeof t->path, "%s/%s", t->c->out, name);
    return t->path;
}

/* Brings the executor's state (weights, BN buffers, momentum) into the host model, unless it is
 * already there (an epoch's best.safetensors and checkpoint need it once). */
static rn_status sync_to_host(trainer *t) {
    if (t->host_step == t->step) return RN_OK;
    rn_status s = rn_exec_sync_to_host(t->exec);
    if (s == RN_OK) t->host_step = t->step;
    return s;
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

/* Adds the executor's loss and accuracy sums of the steps since it was last asked (it waits
 * for them) to the logging window's, over the global batch: the shares' mean losses averaged,
 * their correct counts added (a collective with several processes). */
static rn_status harvest_metrics(trainer *t) {
    double loss;
    int64_t correct;
    rn_status s = rn_exec_train_metrics(t->exec, &loss, &correct);
    if (s != RN_OK) return s == RN_ERR_NUMERIC ? numeric_stop(t) : s;
    if (t->nproc > 1) {
        double sums[2] = {loss, (double)correct};
        if ((s = rn_comm_sum_f64(t->comm, sums, 2)) != RN_OK) return s;
        loss = sums[0] / t->nproc;
        correct = (int64_t)sums[1];
    }
    t->win_loss += loss;
    t->win_correct += correct;
    return RN_OK;
}

static rn_status save_checkpoint(trainer *t) {
    rn_status s0 = harvest_metrics(t);
    if (s0 == RN_OK) s0 = sync_to_host(t);
    if (s0 != RN_OK || !t->root) return s0;
    size_t n;
    const float *velocity = rn_exec_momentum(t->exec, &n);
    rn_st_tensor mom = {.name = "optimizer.momentum", .dtype = RN_DTYPE_F32, .ndim = 1,
                        .shape = {(int64_t)n}, .nbytes = n * sizeof(float), .data = velocity};
    char step[32], best[32], elapsed[32], wsteps[32], wloss[32], wcorrect[32];
    snprintf(step, sizeof step, "%lld", (long long)t->step);
    snprintf(best, sizeof best, "%.17g", t->best_val);
    snprintf(elapsed, sizeof elapsed, "%.17g", t->elapsed_before + (now_s() - t->t_start));
    snprintf(wsteps, sizeof wsteps, "%lld", (long long)t->win_steps);
    snprintf(wloss, sizeof wloss, "%.17g", t->win_loss); /* reads back as the same double */
    snprintf(wcorrect, sizeof wcorrect, "%lld", (long long)t->win_correct);
    const char *keys[] = {"checkpoint_step", "best_val_acc", "elapsed_s",
                          "window_steps", "window_loss_sum", "window_correct"};
    const char *vals[] = {step, best, elapsed, wsteps, wloss, wcorrect};
    rn_status s = rn_model_save_ext(t->model, run_path(t, "checkpoint.safetensors"), &t->norm,
                                    &mom, 1, keys, vals, 6);
    if (s == RN_OK)
        s = rn_model_save_named(t->model, run_path(t, "last.safetensors"), &t->norm,
                                t->data.train.class_names);
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
    const char *ws = rn_safetensors_meta(&st, "window_steps");
    const char *wl = rn_safetensors_meta(&st, "window_loss_sum");
    const char *wc = rn_safetensors_meta(&st, "window_correct");
    if (ws && wl && wc) {
        t->win_steps = strtoll(ws, &end, 10);
        bool ok = !*end && t->win_steps >= 0 && t->win_steps <= t->step;
        t->win_loss = strtod(wl, &end);
        ok = ok && !*end && isfinite(t->win_loss);
        t->win_correct = strtoll(wc, &end, 10);
        if (!ok || *end || t->win_correct < 0) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s: window_steps, window_loss_sum or window_correct "
                        "is not a number of this run", path);
            goto done;
        }
    }
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
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT) return RN_OK; /* none yet */
    rn_status st = rn_read_file_of(path, "a regular file", &buf, &size);
    if (st != RN_OK) return st;
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
    st = rn_write_file_atomic(path, parts, sizes, 1);
    rn_free(buf);
    return st;
}

/* Removes the temporary files (NAME.tmp.PID, see rn_write_file_atomic) that a process killed
 * while writing one of the run's files left behind. Called with the run's lock held: every
 * writer of these files in a run directory is the trainer holding its lock, and the lock is
 * gone only when that trainer has ended (returned, or died and the kernel dropped it), so no
 * process still writes the files found here. A file whose PID names a live process is kept
 * all the same: that process is not a trainer of this run (a writer that takes no lock, such
 * as an older resnet), and only a writer removes its own temporary file. */
static void remove_stale_temps(trainer *t) {
    static const char *const files[] = {"checkpoint.safetensors", "last.safetensors",
                                        "best.safetensors", "config.json", "metrics.jsonl"};
    DIR *d = opendir(t->c->out);
    if (!d) return;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
            size_t n = strlen(files[i]);
            if (strncmp(e->d_name, files[i], n) != 0 || strncmp(e->d_name + n, ".tmp.", 5) != 0)
                continue;
            char *end;
            errno = 0;
            long pid = strtol(e->d_name + n + 5, &end, 10);
            bool dead = !*end && !errno && pid > 0 && pid == (pid_t)pid &&
                        kill((pid_t)pid, 0) != 0 && errno == ESRCH;
            if (dead) unlinkat(dirfd(d), e->d_name, 0);
            break;
        }
    }
    closedir(d);
}

/* Takes the run directory's lock (rank 0, once; the directory exists): RN_ERR_BAD_ARG naming
 * the holder's pid when another trainer holds it. Writes this process's pid into the file,
 * for people (the message takes the holder from the kernel). */
static rn_status lock_run_dir(trainer *t) {
    const char *path = run_path(t, ".lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0)
        return rn_fail(RN_ERR_IO, "%s: cannot open the run's lock file: %s", RN_SHOW(path),
                       strerror(errno));
    struct stat sb;
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return rn_fail(RN_ERR_IO, "%s: not a regular file, expected the run's lock file",
                       RN_SHOW(path));
    }
    if (fcntl(fd, F_SETLK, &l) != 0) {
        int e = errno;
        struct flock h = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        bool held = (e == EAGAIN || e == EACCES) && fcntl(fd, F_GETLK, &h) == 0 &&
                    h.l_type != F_UNLCK;
        close(fd);
        if (!held)
            return rn_fail(RN_ERR_IO, "%s: cannot lock: %s", RN_SHOW(path), strerror(e));
        return rn_fail(RN_ERR_BAD_ARG,
                       "%s is in use by another training run (process %ld); wait for it to end "
                       "or stop it first",
                       RN_SHOW(t->c->out), (long)h.l_pid);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return rn_fail(RN_ERR_IO, "%s: cannot write: %s", RN_SHOW(path), strerror(e));
    }
    t->lock_fd = fd;
    return RN_OK;
}

static rn_status write_classes(trainer *t) {
    FILE *f;
    rn_status s = rn_fopen_regular_write(run_path(t, "classes.txt"), "a regular file", false, &f);
    if (s != RN_OK) return s;
    for (int k = 0; k < t->data.train.num_classes; k++) fprintf(f, "%s\n", t->data.train.class_names[k]);
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
    rn_status s = rn_exec_train_init(t->exec, &t->data.train, &t->norm, &o, lrs, t->total,
                                      t->step);
    free(lrs);
    return s;
}

/* An image the streamed data skipped (skip_bad), to the caller's progress callback. */
static void data_warning(const char *message, void *user) {
    const trainer *t = user;
    rn_train_progress p = {.warning = message};
    if (t->cb) t->cb(&p, t->cb_user);
}

/* Every file a run reads or writes in its directory (the lock apart). */
static const char *const run_files[] = {"config.json", "metrics.jsonl", "grads.jsonl",
                                        "classes.txt", "checkpoint.safetensors",
                                        "last.safetensors", "best.safetensors"};

/* Locks the run directory (lock_run_dir) and, for a new run, refuses one that holds a run
 * already: checked under the lock, so that no other trainer can be writing one meanwhile.
 * Once claimed (an existing directory, before the data is read) nothing can change under the
 * lock, so a second call has nothing to check again. */
static rn_status claim_run_dir(trainer *t, bool resume) {
    if (t->lock_fd >= 0) return RN_OK;
    rn_status s = lock_run_dir(t);
    if (s != RN_OK) return s;
    /* The run's files must be regular files, or absent: a FIFO would block the reads and
     * appends, and the atomic writes would replace it unasked. */
    for (size_t i = 0; i < sizeof run_files / sizeof *run_files; i++)
        if ((s = rn_check_regular(run_path(t, run_files[i]), "a regular file")) != RN_OK)
            return s;
    struct stat sb;
    bool ckpt = stat(run_path(t, "checkpoint.safetensors"), &sb) == 0;
    if (!resume && ckpt)
        return rn_fail(RN_ERR_BAD_ARG,
                       "%s already holds a run (resume it with --resume %s, or choose another "
                       "--out)",
                       RN_SHOW(t->c->out), RN_SHOW(t->c->out));
    /* A run stopped before its first checkpoint is resumed from step 0, with its config.json. */
    if (resume && !ckpt && stat(run_path(t, "config.json"), &sb) != 0)
        return rn_fail(RN_ERR_BAD_ARG,
                       "%s holds no run to resume (neither config.json nor "
                       "checkpoint.safetensors)",
                       RN_SHOW(t->c->out));
    t->fresh = !ckpt;
    return RN_OK;
}

/* What every process sets up for itself: data, model, executor. No collectives. */
static rn_status setup_local(trainer *t, bool resume) {
    const rn_train_config *c = t->c;
    rn_status s = rn_train_config_check(c);
    if (s != RN_OK) return s;
    if (c->batch % t->nproc != 0)
        return rn_fail(RN_ERR_BAD_ARG,
                       "batch size %d is not divisible by the %d processes (--batch is the "
                       "global batch; each process takes an equal share)",
                       c->batch, t->nproc);
    struct stat sb;
    /* A directory that exists is claimed before the data is read, so that a second trainer
     * stops at once; a new one is claimed when it is created (setup_run_dir). */
    if (t->root && stat(c->out, &sb) == 0 && (s = claim_run_dir(t, resume)) != RN_OK) return s;
    if ((s = rn_batches_open(&t->data, c, t->nproc, true, NULL, data_warning, t)) != RN_OK)
        return s;
    const rn_dataset *train = &t->data.train;
    if (train->n < c->batch)
        return rn_fail(RN_ERR_BAD_ARG, "batch size %d is larger than the %d training images",
                       c->batch, train->n);
    t->norm = t->data.norm;
    t->steps_per_epoch = t->data.steps_per_epoch;
    t->total = c->iters > 0 ? c->iters : (int64_t)c->epochs * t->steps_per_epoch;
    if (t->total < 1)
        return rn_fail(RN_ERR_BAD_ARG, "nothing to train: --epochs and --iters are both 0");
    rn_schedule_resolve(&t->cfg, t->total, t->steps_per_epoch);
    rn_model_opts mo = {train->c, train->h, train->w, train->num_classes};
    if ((s = rn_model_create(&t->model, c->model, &mo, c->seed)) != RN_OK) return s;
    /* Rank 0's weights are everyone's (share_state). */
    if (t->root && t->fresh && c->init[0] && (s = rn_model_load(t->model, c->init, NULL)) != RN_OK)
        return s;
    int threads = c->threads;
    if (threads == 0 && t->nproc > 1) /* the host's cores, shared by its processes */
        threads = RN_MAX(1, (int)sysconf(_SC_NPROCESSORS_ONLN) / rn_comm_local_size(t->comm));
    rn_exec_opts eo = {.device = c->device, .backend = c->backend, .threads = threads,
                       .precision = c->precision};
    if ((s = rn_exec_open(&t->exec, t->model, &eo, c->batch / t->nproc)) != RN_OK) return s;
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
    if ((s = claim_run_dir(t, resume)) != RN_OK) return s;
    remove_stale_temps(t);
    if (!t->fresh) {
        if ((s = load_checkpoint(t)) != RN_OK) return s;
        if ((s = truncate_log(t, "metrics.jsonl", t->step)) != RN_OK) return s;
        if ((s = truncate_log(t, "grads.jsonl", t->step)) != RN_OK) return s;
    } else {
        /* The caller's config, units as given, so that resume resolves them the same way
         * (a resumed run's config.json is that already). */
        rn_train_config saved = *t->orig;
        saved.processes = t->nproc;
        /* the budget a folder was judged against, so that a resume decides the same */
        bool streamed;
        if (!strncmp(saved.data, "folder:", 7) &&
            (s = rn_batches_decide(&saved, &streamed, &saved.data_memory)) != RN_OK)
            return s;
        if (!resume && (s = rn_train_config_save(&saved, run_path(t, "config.json"))) != RN_OK)
            return s;
        if ((s = write_classes(t)) != RN_OK) return s;
        remove(run_path(t, "metrics.jsonl"));
        remove(run_path(t, "grads.jsonl"));
    }
    s = rn_fopen_regular_write(run_path(t, "metrics.jsonl"), "a regular file", true,
                               &t->metrics);
    if (s == RN_OK && c->log_grads)
        s = rn_fopen_regular_write(run_path(t, "grads.jsonl"), "a regular file", true,
                                   &t->grads);
    return s;
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
    uint64_t mine = set_digest(&t->data.train, 14695981039346656037ull);
    mine = set_digest(&t->data.test, set_digest(&t->data.val, mine));
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
        int64_t step, ckpt_step, win_steps, win_correct;
        double best_val, elapsed_before, win_loss;
    } pos = {t->step, t->ckpt_step, t->win_steps, t->win_correct, t->best_val,
             t->elapsed_before, t->win_loss};
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
    t->win_steps = pos.win_steps;
    t->win_correct = pos.win_correct;
    t->win_loss = pos.win_loss;
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
    rn_batches_close(&t->data);
    rn_exec_close(t->exec);
    rn_grad_avg_close(t->avg);
    rn_model_free(t->model);
    if (t->lock_fd >= 0) close(t->lock_fd); /* last: the lock goes with it */
}

/* Writes the current weights as best.safetensors (rank 0). */
static rn_status save_best(trainer *t) {
    rn_status s = sync_to_host(t);
    if (s != RN_OK || !t->root) return s;
    return rn_model_save_named(t->model, run_path(t, "best.safetensors"), &t->norm,
                               t->data.train.class_names);
}

static double elapsed(const trainer *t) { return t->elapsed_before + (now_s() - t->t_start); }

/* Evaluates a set, split over the processes (rn_exec_evaluate_comm) with rank 0's BN
 * statistics: the model's running statistics are rank 0's, handed to the others first. */
static rn_status evaluate_set(trainer *t, rn_split split, rn_eval_result *r) {
    if (t->nproc > 1) {
        size_t nb;
        float *bufs = rn_model_buffers(t->model, &nb);
        rn_status s = sync_to_host(t);
        if (s == RN_OK) s = rn_comm_broadcast(t->comm, bufs, nb * sizeof(float), 0);
        if (s == RN_OK) s = rn_exec_sync_to_device(t->exec);
        if (s != RN_OK) return s;
    }
    return rn_batches_evaluate(&t->data, split, t->exec, t->comm, t->model->opts.num_classes,
                               r);
}

/* Evaluates the validation and/or test set and logs one metrics line (rank 0); p->elapsed_s
 * becomes the time at its end. metrics.jsonl counts epochs from 1, as the console does (p's
 * epoch is 0-based). */
static rn_status evaluate_sets(trainer *t, bool val, bool test, rn_train_progress *p) {
    rn_eval_result r;
    rn_status s;
    if (val && rn_batches_count(&t->data, RN_SPLIT_VAL) > 0) {
        s = evaluate_set(t, RN_SPLIT_VAL, &r);
        if (s != RN_OK) return s;
        p->has_val = true;
        p->val_acc = r.top1;
        p->val_loss = r.loss;
        rn_eval_result_free(&r);
    }
    if (test && rn_batches_count(&t->data, RN_SPLIT_TEST) > 0) {
        s = evaluate_set(t, RN_SPLIT_TEST, &r);
        if (s != RN_OK) return s;
        p->has_test = true;
        p->test_acc = r.top1;
        p->test_loss = r.loss;
        rn_eval_result_free(&r);
    }
    p->elapsed_s = elapsed(t); /* the evaluation included */
    if ((!p->has_val && !p->has_test) || !t->root) return RN_OK;
    fprintf(t->metrics, "{\"step\": %lld, \"epoch\": %d, \"elapsed_s\": %.3f",
            (long long)p->step, p->epoch + 1, p->elapsed_s);
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
                 .nproc = rn_comm_size(comm), .cb = cb, .cb_user = user, .lock_fd = -1,
                 .fresh = !resume};
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
                                .elapsed_s = t.elapsed_before, .started = true,
                                .streamed = t.data.streamed};
        cb(&p0, user);
    }
    double win_start = now_s();
    int64_t timed_steps = 0; /* steps since win_start, for images/s */
    rn_train_progress p = {0};
    while (t.step < t.total) {
        if ((s = rn_batches_train_step(&t.data, t.exec, t.step)) != RN_OK) {
            if (s == RN_ERR_NUMERIC) s = numeric_stop(&t);
            goto done;
        }
        t.step++;
        t.win_steps++;
        timed_steps++;
        bool epoch_end = t.step % t.steps_per_epoch == 0 || t.step == t.total;
        bool log = t.step % RN_MAX(c->log_every, 1) == 0 || epoch_end;
        int epoch = (int)((t.step - 1) / t.steps_per_epoch);
        if (log && (s = harvest_metrics(&t)) != RN_OK) goto done;
        if (log) {
            double dt = now_s() - win_start;
            p = (rn_train_progress){.step = t.step, .total_steps = t.total, .epoch = epoch,
                                    .steps_per_epoch = t.steps_per_epoch,
                                    .lr = rn_schedule_lr(c, t.step - 1, t.total),
                                    .train_loss = t.win_loss / t.win_steps,
                                    .train_acc = (double)t.win_correct /
                                                 (t.win_steps * c->batch),
                                    .images_per_s = dt > 0 ? timed_steps * c->batch / dt : 0,
                                    .elapsed_s = elapsed(&t)};
            p.eta_s = p.images_per_s > 0 ? (t.total - t.step) * c->batch / p.images_per_s : 0;
            if (t.root) { /* the others' metrics are the same sums */
                fprintf(t.metrics,
                        "{\"step\": %lld, \"epoch\": %d, \"lr\": %.6g, \"train_loss\": %.9g, "
                        "\"train_acc\": %.6g, \"images_per_s\": %.1f, \"elapsed_s\": %.3f}\n",
                        (long long)t.step, epoch + 1, p.lr, p.train_loss, p.train_acc,
                        p.images_per_s, p.elapsed_s);
                fflush(t.metrics);
            }
            if (c->log_grads && (s = log_grads(&t)) != RN_OK) goto done;
            if (cb) cb(&p, user);
            t.win_loss = 0;
            t.win_correct = 0;
            t.win_steps = 0;
            timed_steps = 0;
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
                if ((s = save_best(&t)) != RN_OK) goto done;
            }
            /* Without a validation split nothing chooses among the epochs (the test set never
             * does): best.safetensors is then the final weights. */
            if (last && rn_batches_count(&t.data, RN_SPLIT_VAL) == 0 &&
                (s = save_best(&t)) != RN_OK)
                goto done;
            e.final = last;
            if ((e.has_val || e.has_test || last) && cb) cb(&e, user);
            win_start = now_s(); /* evaluation time is not training throughput */
            timed_steps = 0;
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
