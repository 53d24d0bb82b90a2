/*
 * cmd_train.c — `resnet train`: trains a model from the command line, shows progress (a live
 * line on a terminal, log lines otherwise), and stops cleanly on Ctrl-C or SIGTERM with a
 * checkpoint that `resnet train --resume RUN_DIR` continues exactly. Started by mpirun (builds
 * made with make MPI=1), the processes train one model together (rn_train_run_comm).
 */
#include "cli.h"
#include "format.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static volatile int stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f) {
    fprintf(f,
"usage: resnet train [--model NAME] [--data SPEC] [--out RUN_DIR] [options]\n"
"       resnet train --resume RUN_DIR\n"
"Trains a model and writes RUN_DIR/{config.json,metrics.jsonl,classes.txt,\n"
"checkpoint.safetensors,last.safetensors,best.safetensors}. best.safetensors holds the\n"
"weights of the epoch with the best validation accuracy with --val N, else the final\n"
"weights (the test set never chooses); the run ends by listing the files it wrote.\n"
"--resume continues a stopped run exactly (one that stopped before its first checkpoint\n"
"starts again from step 0); one trainer at a time per RUN_DIR.\n"
"\n"
"data:     --data cifar10:DIR | cifar100:DIR | mnist:DIR | folder:ROOT | packed:DIR |\n"
"          shards:PATTERN (default: Fashion-MNIST from " FASHION_MNIST_DIR ")\n"
"          --val N (hold out N training images for model selection)  --resize HxW\n"
CLI_STREAM_HELP
"length:   --epochs N (default 1) | --iters N\n"
"optimizer:--batch B (128) --lr LR (0.1) --momentum M (0.9) --nesterov --wd WD (5e-4)\n"
"          --wd-skip-bn\n"
"schedule: --schedule constant | multistep:M1,M2,... | cosine | onecycle\n"
"          (milestones in epochs, or with %% of the run, or with 'it' in steps:\n"
"          multistep:50%%,75%% or multistep:32000it,48000it) --gamma G (0.1)\n"
"          --warmup N (steps of linear warm-up)\n"
"          --recipe he2015 (the paper's CIFAR recipe: 64k steps, lr/10 at 32k and 48k,\n"
"          batch 128, wd 1e-4, 45k/5k split; the drops stay at 50%% and 75%% of a run\n"
"          made shorter or longer with --iters or --epochs)\n"
"other:    --label-smoothing E  --augment crop+flip|none  --shuffle epoch|none\n"
"          --init WEIGHTS (start from these weights)  --seed S  --threads N\n"
"          --backend NAME  --log-every N (50)  --eval-every N (epochs)  --ckpt-every N\n"
"          --quiet\n"
"device:   --device cpu|cuda|cuda:N (default cpu; a GPU in builds made with make CUDA=1)\n"
"          --precision fp32|tf32|bf16 (on a GPU; default tf32). Both may also be given\n"
"          with --resume, to continue a run on another device\n"
"          --log-grads (gradient norms per tensor and per block input at every logged\n"
"          step into RUN_DIR/grads.jsonl; `resnet report` draws them)\n"
"mpirun:   --sync-bn (BatchNorm statistics over the global batch of all processes; CPU)\n");
}

/* "multistep:30,45", "multistep:50%,75%", "multistep:32000it,48000it", "cosine", ... */
static bool parse_schedule(const char *s, rn_train_config *c) {
    if (!strcmp(s, "constant")) c->schedule = RN_SCHED_CONSTANT;
    else if (!strcmp(s, "cosine")) c->schedule = RN_SCHED_COSINE;
    else if (!strcmp(s, "onecycle")) c->schedule = RN_SCHED_ONECYCLE;
    else if (!strncmp(s, "multistep:", 10)) {
        c->schedule = RN_SCHED_MULTISTEP;
        c->n_milestones = 0;
        const char *p = s + 10;
        int unit = -1;
        double lo, hi; /* each milestone's range, config.json's */
        bool integer;
        rn_train_setting_range("milestones", &lo, &hi, &integer);
        while (*p) {
            char *end;
            if (!isdigit((unsigned char)*p)) goto bad;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (errno || v < lo || v > hi) {
                int len = (int)strcspn(p, ",");
                cli_error("--schedule: milestone '%.*s%s' is out of range (expected an integer "
                          "from %.0f to %.0f)",
                          len > 40 ? 40 : len, p, len > 40 ? "..." : "", lo, hi);
                return false;
            }
            int u = RN_UNIT_EPOCHS;
            if (*end == '%') {
                u = RN_UNIT_PERCENT;
                end++;
            } else if (!strncmp(end, "it", 2)) {
                u = RN_UNIT_STEPS;
                end += 2;
            }
            if ((*end && *end != ',') ||
                c->n_milestones >= RN_MAX_MILESTONES || (unit >= 0 && u != unit))
                goto bad;
            unit = u;
            c->milestones[c->n_milestones++] = v;
            p = *end ? end + 1 : end;
        }
        if (c->n_milestones == 0) goto bad;
        c->milestone_unit = unit;
    } else
        goto bad;
    return true;
bad:
    cli_error("--schedule: expected constant, cosine, onecycle or multistep:M1,M2,... (all "
              "epochs, all N%%, or all Nit), got '%s'",
              s);
    return false;
}

typedef struct {
    bool quiet, tty;
    int last_len;
    const rn_train_config *c;
    bool resume;  /* train --resume */
    bool started; /* the run was set up on every process */
    int64_t first_step, total_steps; /* where this call began, and the run's length */
} progress_state;

static void fmt_time(char *buf, size_t n, double s) {
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%dh%02dm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
}

static void on_progress(const rn_train_progress *p, void *user) {
    progress_state *ps = user;
    if (p->warning) { /* an image the streamed data skipped */
        if (ps->tty && ps->last_len) fputc('\n', stderr);
        ps->last_len = 0;
        fprintf(stderr, "warning: %s\n", p->warning);
        return;
    }
    if (p->started) { /* set up without error: say what runs where */
        ps->started = true;
        ps->first_step = p->step;
        ps->total_steps = p->total_steps;
        if (ps->quiet) return;
        const rn_train_config *c = ps->c;
        if (p->step >= p->total_steps)
            fprintf(stderr, "%s: the run is already complete (%lld step%s)\n", c->out,
                    (long long)p->total_steps, cli_plural((double)p->total_steps));
        else if (p->step > 0)
            fprintf(stderr, "resuming %s on %s at step %lld of %lld -> %s\n", c->model, c->data,
                    (long long)p->step, (long long)p->total_steps, c->out);
        else if (ps->resume)
            fprintf(stderr, "%s: no checkpoint yet (the run stopped before its first one); "
                    "starting it again from step 0 of %lld\n",
                    c->out, (long long)p->total_steps);
        else
            fprintf(stderr, "training %s on %s%s: %lld step%s, %d per epoch -> %s\n", c->model,
                    c->data, p->streamed ? " (streamed)" : "", (long long)p->total_steps,
                    cli_plural((double)p->total_steps),
                    p->steps_per_epoch, c->out);
        return;
    }
    if (p->final && p->has_test) { /* the result, on stdout even when quiet */
        printf("test accuracy: %.2f%% (loss %.4f)\n", 100 * p->test_acc, p->test_loss);
        fflush(stdout);
    }
    if (ps->quiet) return;
    char eta[32], el[32];
    fmt_time(eta, sizeof eta, p->eta_s);
    fmt_time(el, sizeof el, p->elapsed_s);
    if (p->has_val || p->has_test) {
        if (ps->tty) fputc('\n', stderr);
        fprintf(stderr, "epoch %d step %lld:", p->epoch + 1, (long long)p->step);
        if (p->has_val)
            fprintf(stderr, " val loss %.4f acc %.2f%%", p->val_loss, 100 * p->val_acc);
        if (p->has_test)
            fprintf(stderr, " test loss %.4f acc %.2f%%", p->test_loss, 100 * p->test_acc);
        fprintf(stderr, "  (%s)\n", el);
        ps->last_len = 0;
        return;
    }
    char line[256];
    int len = snprintf(line, sizeof line,
                       "epoch %d  step %lld/%lld  loss %.4f  acc %.2f%%  lr %.4g  %.0f img/s  "
                       "elapsed %s  eta %s",
                       p->epoch + 1, (long long)p->step, (long long)p->total_steps,
                       p->train_loss, 100 * p->train_acc, p->lr, p->images_per_s, el, eta);
    if (ps->tty) {
        fprintf(stderr, "\r%s%*s", line, ps->last_len > len ? ps->last_len - len : 0, "");
        ps->last_len = len;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

/* The line that ends a finished run: the files it wrote (config.json and classes.txt only
 * when it began at step 0), and what chose best.safetensors. */
static void list_files(const rn_train_config *c, bool resumed) {
    fprintf(stderr, "wrote %s/: %smetrics.jsonl,%s checkpoint.safetensors, last.safetensors, "
            "best.safetensors (%s)\n",
            c->out, resumed ? "" : "config.json, classes.txt, ", c->log_grads ? " grads.jsonl," : "",
            c->val > 0 ? "the epoch with the best validation accuracy"
                       : "the final weights: no validation split (--val N) to choose by");
}

enum {
    OPT_MODEL = 256, OPT_DATA, OPT_OUT, OPT_EPOCHS, OPT_ITERS, OPT_BATCH, OPT_LR, OPT_MOMENTUM,
    OPT_NESTEROV, OPT_WD, OPT_WD_SKIP_BN, OPT_SCHEDULE, OPT_GAMMA, OPT_WARMUP, OPT_SMOOTHING,
    OPT_AUGMENT, OPT_SEED, OPT_THREADS, OPT_VAL, OPT_LOG_EVERY, OPT_EVAL_EVERY, OPT_CKPT_EVERY,
    OPT_RECIPE, OPT_RESIZE, OPT_BACKEND, OPT_RESUME, OPT_QUIET, OPT_HELP, OPT_INIT, OPT_SHUFFLE,
    OPT_LOG_GRADS, OPT_DEVICE, OPT_PRECISION, OPT_SYNC_BN,
    OPT_STREAM /* .. OPT_STREAM + CLI_STREAM_COUNT - 1: the streamed-data options */
};

/* Whether option o sets a numeric training setting of the same name (cli_parse_setting). */
static bool numeric_setting(int o) {
    switch (o) {
    case OPT_EPOCHS: case OPT_ITERS: case OPT_BATCH: case OPT_LR: case OPT_MOMENTUM: case OPT_WD:
    case OPT_GAMMA: case OPT_WARMUP: case OPT_SMOOTHING: case OPT_THREADS: case OPT_VAL:
    case OPT_LOG_EVERY: case OPT_EVAL_EVERY: case OPT_CKPT_EVERY: return true;
    default: return false;
    }
}

static int train(rn_comm *comm, int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, OPT_MODEL},
        {"data", required_argument, 0, OPT_DATA},
        {"out", required_argument, 0, OPT_OUT},
        {"epochs", required_argument, 0, OPT_EPOCHS},
        {"iters", required_argument, 0, OPT_ITERS},
        {"batch", required_argument, 0, OPT_BATCH},
        {"lr", required_argument, 0, OPT_LR},
        {"momentum", required_argument, 0, OPT_MOMENTUM},
        {"nesterov", no_argument, 0, OPT_NESTEROV},
        {"wd", required_argument, 0, OPT_WD},
        {"wd-skip-bn", no_argument, 0, OPT_WD_SKIP_BN},
        {"schedule", required_argument, 0, OPT_SCHEDULE},
        {"gamma", required_argument, 0, OPT_GAMMA},
        {"warmup", required_argument, 0, OPT_WARMUP},
        {"label-smoothing", required_argument, 0, OPT_SMOOTHING},
        {"augment", required_argument, 0, OPT_AUGMENT},
        {"seed", required_argument, 0, OPT_SEED},
        {"threads", required_argument, 0, OPT_THREADS},
        {"val", required_argument, 0, OPT_VAL},
        {"log-every", required_argument, 0, OPT_LOG_EVERY},
        {"eval-every", required_argument, 0, OPT_EVAL_EVERY},
        {"ckpt-every", required_argument, 0, OPT_CKPT_EVERY},
        {"recipe", required_argument, 0, OPT_RECIPE},
        {"resize", required_argument, 0, OPT_RESIZE},
        {"backend", required_argument, 0, OPT_BACKEND},
        {"resume", required_argument, 0, OPT_RESUME},
        {"quiet", no_argument, 0, OPT_QUIET},
        {"init", required_argument, 0, OPT_INIT},
        {"shuffle", required_argument, 0, OPT_SHUFFLE},
        {"help", no_argument, 0, OPT_HELP},
        {"log-grads", no_argument, 0, OPT_LOG_GRADS},
        {"device", required_argument, 0, OPT_DEVICE},
        {"precision", required_argument, 0, OPT_PRECISION},
        CLI_STREAM_OPTIONS(OPT_STREAM),
        {"sync-bn", no_argument, 0, OPT_SYNC_BN},
        {0, 0, 0, 0}};
    rn_train_config c;
    rn_train_config_defaults(&c);
    const char *resume = NULL, *recipe = NULL;
    bool quiet = false, explicit_out = false;
    double d = 0;
    int o, li = -1;
    const char *setting = NULL; /* the first option that changes a setting */
    /* Where the run executes: also allowed with --resume, so a run moves between devices. */
    const char *device = NULL, *precision = NULL;
    optind = 1;
    /* A recipe sets many fields; options given with it must win, so find it first. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--recipe") && i + 1 < argc) recipe = argv[i + 1];
        else if (!strncmp(argv[i], "--recipe=", 9)) recipe = argv[i] + 9;
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            snprintf(c.model, sizeof c.model, "%s", argv[i + 1]);
    }
    if (recipe) {
        rn_status s = rn_train_config_recipe(&c, recipe);
        if (s != RN_OK) return cli_lib_error(s);
    }
    while ((o = cli_getopt("train", argc, argv, "", opts, &li)) != -1) {
        if (o >= OPT_STREAM && o < OPT_STREAM + CLI_STREAM_COUNT && li >= 0 &&
            !cli_stream_opt(opts[li].name, optarg, &c))
            return 2;
        if (!setting && li >= 0 && o != OPT_RESUME && o != OPT_QUIET && o != OPT_HELP &&
            o != OPT_DEVICE && o != OPT_PRECISION)
            setting = opts[li].name;
        /* the numeric settings, each in the range the library holds for it */
        if (numeric_setting(o)) {
            char opt[64];
            snprintf(opt, sizeof opt, "--%s", opts[li].name);
            if (!cli_parse_setting(opt, optarg, &d)) return 2;
        }
        li = -1;
        switch (o) {
        case OPT_MODEL:
            if (strlen(optarg) >= sizeof c.model) return cli_usage_error("--model: name too long");
            snprintf(c.model, sizeof c.model, "%s", optarg);
            break;
        case OPT_DATA:
            if (strlen(optarg) >= sizeof c.data) return cli_usage_error("--data: spec too long");
            snprintf(c.data, sizeof c.data, "%s", optarg);
            break;
        case OPT_OUT:
            if (strlen(optarg) >= sizeof c.out) return cli_usage_error("--out: path too long");
            snprintf(c.out, sizeof c.out, "%s", optarg);
            explicit_out = true;
            break;
        case OPT_EPOCHS:
            c.epochs = (int)d;
            c.iters = 0;
            break;
        case OPT_ITERS:
            /* config.json's 0 means "count in epochs", which --epochs says here */
            if (d == 0) {
                cli_error("--iters: expected at least 1, got '0' (--epochs N counts in epochs)");
                return 2;
            }
            c.iters = (int64_t)d;
            break;
        case OPT_BATCH: c.batch = (int)d; break;
        case OPT_LR: c.lr = (float)d; break;
        case OPT_MOMENTUM: c.momentum = (float)d; break;
        case OPT_NESTEROV: c.nesterov = true; break;
        case OPT_WD: c.wd = (float)d; break;
        case OPT_WD_SKIP_BN: c.wd_skip_bn = true; break;
        case OPT_SCHEDULE:
            if (!parse_schedule(optarg, &c)) return 2;
            break;
        case OPT_GAMMA: c.gamma = (float)d; break;
        case OPT_WARMUP:
            c.warmup = (int64_t)d;
            c.warmup_factor = 0;
            break;
        case OPT_SMOOTHING: c.label_smoothing = (float)d; break;
        case OPT_AUGMENT:
            if (!strcmp(optarg, "crop+flip")) c.augment = true;
            else if (!strcmp(optarg, "none")) c.augment = false;
            else return cli_usage_error("--augment: expected crop+flip or none, got '%s'", optarg);
            break;
        case OPT_SEED:
            if (!cli_parse_u64("--seed", optarg, &c.seed)) return 2;
            break;
        case OPT_THREADS: c.threads = (int)d; break;
        case OPT_VAL: c.val = (int)d; break;
        case OPT_LOG_EVERY: c.log_every = (int)d; break;
        case OPT_EVAL_EVERY: c.eval_every = (int)d; break;
        case OPT_CKPT_EVERY: c.ckpt_every = (int64_t)d; break;
        case OPT_RECIPE: break; /* applied above */
        case OPT_RESIZE: {
            /* the range of config.json's resize_h and resize_w, less 0 ("keep sizes", which
             * leaving --resize out says) */
            double lo, hi;
            bool integer;
            rn_train_setting_range("resize_h", &lo, &hi, &integer);
            if (!cli_parse_size_in("--resize", optarg, lo > 1 ? (long)lo : 1, (long)hi,
                                   &c.resize_h, &c.resize_w))
                return 2;
            break;
        }
        case OPT_BACKEND:
            if (strlen(optarg) >= sizeof c.backend)
                return cli_usage_error("--backend: name too long");
            snprintf(c.backend, sizeof c.backend, "%s", optarg);
            break;
        case OPT_RESUME: resume = optarg; break;
        case OPT_INIT:
            if (strlen(optarg) >= sizeof c.init) return cli_usage_error("--init: path too long");
            snprintf(c.init, sizeof c.init, "%s", optarg);
            break;
        case OPT_SHUFFLE:
            if (!strcmp(optarg, "epoch")) c.shuffle = true;
            else if (!strcmp(optarg, "none")) c.shuffle = false;
            else return cli_usage_error("--shuffle: expected epoch or none, got '%s'", optarg);
            break;
        case OPT_QUIET: quiet = true; break;
        case OPT_LOG_GRADS: c.log_grads = true; break;
        case OPT_SYNC_BN: c.sync_bn = true; break;
        case OPT_DEVICE: {
            if (!cli_check_device(optarg)) return 2;
            if (strlen(optarg) >= sizeof c.device)
                return cli_usage_error("--device: name too long");
            device = optarg;
            break;
        }
        case OPT_PRECISION:
            if (!cli_check_precision(optarg)) return 2;
            precision = optarg;
            break;
        case OPT_HELP: usage(stdout); return 0;
        default:
            if (o >= OPT_STREAM && o < OPT_STREAM + CLI_STREAM_COUNT) break; /* above */
            return 2; /* cli_getopt said why */
        }
    }
    if (optind != argc) return cli_usage_error("train: unexpected argument '%s'", argv[optind]);
    if (resume && setting)
        return cli_usage_error("--resume continues a run with the settings of its config.json; "
                               "--%s cannot be given with it",
                               setting);
    const bool root = rn_comm_rank(comm) == 0;
    if (resume) { /* rank 0 reads the run's config for every process */
        rn_status s = rn_comm_agree(comm, root ? rn_train_config_load(&c, resume) : RN_OK);
        if (s == RN_OK) s = rn_comm_broadcast(comm, &c, sizeof c, 0);
        if (s != RN_OK) return cli_lib_error(s);
        snprintf(c.out, sizeof c.out, "%s", resume); /* the directory may have moved */
    }
    if (device) snprintf(c.device, sizeof c.device, "%s", device);
    if (precision) snprintf(c.precision, sizeof c.precision, "%s", precision);
    if (!resume) {
        if (!c.data[0]) {
            struct stat sb;
            if (stat(FASHION_MNIST_DIR, &sb) != 0)
                return cli_error("no --data given and Fashion-MNIST is not installed at %s "
                                 "(apt-get install dataset-fashion-mnist, or pass --data "
                                 "cifar10:DIR, folder:ROOT, ...)",
                                 FASHION_MNIST_DIR);
            snprintf(c.data, sizeof c.data, "mnist:%s", FASHION_MNIST_DIR);
        }
        if (!explicit_out) {
            char stamp[32];
            time_t now = time(NULL);
            strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
            if (root) mkdir("runs", 0755);
            snprintf(c.out, sizeof c.out, "runs/%s-%s", c.model, stamp);
            rn_status s = rn_comm_broadcast(comm, c.out, sizeof c.out, 0); /* rank 0's time */
            if (s != RN_OK) return cli_lib_error(s);
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    progress_state ps = {.quiet = quiet, .tty = isatty(2), .c = &c, .resume = resume != NULL};
    rn_status s = rn_train_run_comm(&c, comm, resume != NULL, on_progress, &ps, &stop_requested);
    if (ps.tty && ps.last_len) fputc('\n', stderr);
    const bool alone = rn_comm_size(comm) == 1;
    if (s == RN_ERR_INTERRUPTED) { /* every process stopped at the same step */
        cli_error("%s", rn_error_message());
        return alone ? 130 : 0;
    }
    /* Once the run is set up, an error may be one process's alone: it ends the job. */
    if (s != RN_OK) return ps.started ? cli_comm_local_error(comm, s) : cli_lib_error(s);
    if (!quiet && ps.first_step < ps.total_steps) list_files(&c, ps.first_step > 0);
    return 0;
}

int cmd_train(int argc, char **argv) { return cli_comm_run(train, argc, argv); }
