/*
 * cmd_experiment.c — `resnet experiment degradation`: He et al.'s degradation experiment. For
 * each depth D it trains plainD and resnetD with one recipe and seed (each a `resnet train
 * --log-grads` child process into OUT/plainD and OUT/resnetD, one after the other), then writes
 * OUT/report.html and prints the final training and test errors. Ctrl-C stops the running child
 * at a checkpoint; running the same command again resumes it and skips the finished runs.
 */
#include "cli.h"
#include "report.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Defaults sized for CIFAR-10 on a 2-core CPU with the faster CPU backend: about 80 minutes for
 * depths 20 and 56, the shortest budget at which both halves of the paper's result showed (see
 * the README); every one can be overridden. */
#define DEFAULT_DEPTHS "20,56"
#define DEFAULT_ITERS 4000
#define DEFAULT_CPU_BACKEND "cpu-winograd"
#define DEFAULT_BATCH "128"
#define DEFAULT_LR "0.1"
#define DEFAULT_WD "1e-4"
#define DEFAULT_SCHEDULE "multistep:50%,75%"
#define DEFAULT_VAL "5000"
#define MAX_DEPTHS 8

static volatile sig_atomic_t stop_requested;
static volatile pid_t child_pid;

static void on_signal(int sig) {
    stop_requested = 1;
    if (child_pid > 0) kill(child_pid, sig); /* also when only this process was signalled */
}

static void usage(FILE *f) {
    fprintf(f,
"usage: resnet experiment degradation --data SPEC --out DIR [options] [-- TRAIN_OPTIONS]\n"
"Trains plainD and resnetD for each depth D with the same recipe and seed (into DIR/plainD\n"
"and DIR/resnetD, with --log-grads), writes DIR/report.html and prints each run's final\n"
"training error and test error: deeper plain nets train worse, deeper residual nets better\n"
"(He et al. 2015, Fig. 6). Ctrl-C keeps the finished runs; the same command again resumes the\n"
"unfinished one and skips the finished ones.\n"
"  --depths D1,D2,...  depths of 6n+2 with plain and residual models (default " DEFAULT_DEPTHS
")\n"
"                      (8, 14, 20, 32, 44, 56, 110)\n"
"  --iters N           optimizer steps per run (default %d)\n"
"  --batch B           (default " DEFAULT_BATCH ")  --lr LR (default " DEFAULT_LR
")  --wd WD (default " DEFAULT_WD ")\n"
"  --schedule S        (default %s: lr/10 at 50%% and 75%% of the run)\n"
"  --warmup N          steps of linear learning-rate warm-up from 0 (default iters/10; 0: none)\n"
"  --val N             training images held out for validation (default " DEFAULT_VAL ")\n"
"  --log-every N       steps between logged metrics and gradients (default iters/100)\n"
"  --eval-every N      epochs between test evaluations (default 1)\n"
"  --seed S  --threads T  --quiet\n"
"  --backend NAME      CPU kernels (default " DEFAULT_CPU_BACKEND ", the faster ones; a GPU ignores it)\n"
"  --device cpu|cuda[:N]  --precision fp32|tf32|bf16 (on a GPU; see resnet train --help)\n"
"  -- TRAIN_OPTIONS    more `resnet train` options for every run (e.g. -- --augment none)\n",
            DEFAULT_ITERS, DEFAULT_SCHEDULE);
}

/* The run directory's state: new, unfinished (has a checkpoint), or finished. */
typedef enum { RUN_NEW, RUN_RESUME, RUN_DONE } run_state;

/* Whether metrics.jsonl holds the final test evaluation (a "test_acc" line at step >= iters). */
static bool has_final_test(const char *dir, int64_t iters) {
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[8192];
    bool done = false;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"test_acc\"")) continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "step");
        if (cJSON_IsNumber(s) && s->valuedouble >= (double)iters) done = true;
        cJSON_Delete(j);
    }
    fclose(f);
    return done;
}

static bool exists(const char *dir, const char *name) {
    char path[1200];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* Decides what to do with dir; false (after one printed line) when it holds a run of other
 * settings. */
static bool inspect(const char *dir, const char *model, const char *data, int64_t iters,
                    long batch, double lr, unsigned long long seed, run_state *st) {
    *st = RUN_NEW;
    if (!exists(dir, "config.json")) return true;
    rn_train_config c;
    if (rn_train_config_load(&c, dir) != RN_OK) {
        cli_error("%s", rn_error_message());
        return false;
    }
    char why[256] = "";
    if (strcmp(c.model, model)) snprintf(why, sizeof why, "model %s", c.model);
    else if (strcmp(c.data, data)) snprintf(why, sizeof why, "data %.200s", c.data);
    else if (c.iters != iters) snprintf(why, sizeof why, "--iters %lld", (long long)c.iters);
    else if (c.batch != batch) snprintf(why, sizeof why, "--batch %d", c.batch);
    else if (fabs(c.lr - lr) > 1e-6 * fabs(lr)) snprintf(why, sizeof why, "--lr %g", c.lr);
    else if (c.seed != seed) snprintf(why, sizeof why, "--seed %llu", (unsigned long long)c.seed);
    if (why[0]) {
        cli_error("%s holds a run with other settings (%s); use another --out, or the same "
                  "settings to continue it",
                  dir, why);
        return false;
    }
    if (has_final_test(dir, iters)) *st = RUN_DONE;
    else if (exists(dir, "checkpoint.safetensors")) *st = RUN_RESUME;
    return true;
}

/* Runs `resnet train` with args as a child process; returns its exit status (128 + signal if
 * it was killed, -1 if it could not start). */
static int run_train(char **args) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execv("/proc/self/exe", args);
        fprintf(stderr, "resnet: cannot start /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            status = -1;
            break;
        }
    }
    child_pid = 0;
    if (status == -1) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

static void fmt_time(char *buf, size_t n, double s) {
    long t = lround(s);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Prints the result table and, for the shallowest and deepest depth, whether the runs show the
 * paper's result. */
static void print_table(const rp_run *runs, int n, int n_depths) {
    printf("\n%-12s %-10s %12s %12s %12s\n", "run", "model", "train error", "val error",
           "test error");
    for (int i = 0; i < n; i++) {
        char tr[16] = "-", va[16] = "-", te[16] = "-";
        if (isfinite(runs[i].final_train_err)) snprintf(tr, sizeof tr, "%.2f%%", runs[i].final_train_err);
        if (isfinite(runs[i].best_val_err)) snprintf(va, sizeof va, "%.2f%%", runs[i].best_val_err);
        if (isfinite(runs[i].test_err)) snprintf(te, sizeof te, "%.2f%%", runs[i].test_err);
        printf("%-12s %-10s %12s %12s %12s\n", runs[i].name, runs[i].model, tr, va, te);
    }
    if (n_depths >= 2) {
        const rp_run *p0 = &runs[0], *r0 = &runs[1], *p1 = &runs[n - 2], *r1 = &runs[n - 1];
        printf("\ntraining error, deeper vs shallower: %s %s %s (%s), %s %s %s (%s)\n", p1->name,
               p1->final_train_err > p0->final_train_err ? ">" : "<=", p0->name,
               p1->final_train_err > p0->final_train_err ? "degradation, as in the paper"
                                                         : "no degradation",
               r1->name, r1->final_train_err < r0->final_train_err ? "<" : ">=", r0->name,
               r1->final_train_err < r0->final_train_err ? "depth helps, as in the paper"
                                                         : "not as in the paper");
    }
}

int cmd_experiment(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "degradation") != 0) {
        cli_error("experiment: expected `resnet experiment degradation ...` (the only experiment"
                  " so far), got '%s'",
                  argc >= 2 ? argv[1] : "");
        return 2;
    }
    enum {
        OPT_DATA = 256, OPT_OUT, OPT_DEPTHS, OPT_ITERS, OPT_BATCH, OPT_LR, OPT_WD, OPT_SCHEDULE,
        OPT_VAL, OPT_LOG_EVERY, OPT_EVAL_EVERY, OPT_SEED, OPT_THREADS, OPT_BACKEND, OPT_QUIET,
        OPT_HELP, OPT_DEVICE, OPT_PRECISION, OPT_WARMUP
    };
    static const struct option opts[] = {{"data", required_argument, 0, OPT_DATA},
                                         {"out", required_argument, 0, OPT_OUT},
                                         {"depths", required_argument, 0, OPT_DEPTHS},
                                         {"iters", required_argument, 0, OPT_ITERS},
                                         {"batch", required_argument, 0, OPT_BATCH},
                                         {"lr", required_argument, 0, OPT_LR},
                                         {"wd", required_argument, 0, OPT_WD},
                                         {"schedule", required_argument, 0, OPT_SCHEDULE},
                                         {"val", required_argument, 0, OPT_VAL},
                                         {"log-every", required_argument, 0, OPT_LOG_EVERY},
                                         {"eval-every", required_argument, 0, OPT_EVAL_EVERY},
                                         {"seed", required_argument, 0, OPT_SEED},
                                         {"threads", required_argument, 0, OPT_THREADS},
                                         {"backend", required_argument, 0, OPT_BACKEND},
                                         {"quiet", no_argument, 0, OPT_QUIET},
                                         {"help", no_argument, 0, OPT_HELP},
                                         {"device", required_argument, 0, OPT_DEVICE},
                                         {"precision", required_argument, 0, OPT_PRECISION},
                                         {"warmup", required_argument, 0, OPT_WARMUP},
                                         {0, 0, 0, 0}};
    const char *data = NULL, *out = NULL, *depths_s = DEFAULT_DEPTHS, *batch_s = DEFAULT_BATCH;
    const char *lr_s = DEFAULT_LR, *wd_s = DEFAULT_WD, *sched = DEFAULT_SCHEDULE;
    const char *val_s = DEFAULT_VAL, *log_s = NULL, *eval_s = "1", *seed_s = "1";
    const char *threads_s = NULL, *backend = NULL, *device = NULL, *precision = NULL;
    const char *warmup_s = NULL;
    char iters_s[32];
    snprintf(iters_s, sizeof iters_s, "%d", DEFAULT_ITERS);
    bool quiet = false;
    double d;
    int o;
    optind = 1;
    argc--, argv++; /* past "degradation" */
    while ((o = cli_getopt("experiment", argc, argv, "+", opts, NULL)) != -1) { /* "+": stop at "--" */
        switch (o) {
        case OPT_DATA: data = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_DEPTHS: depths_s = optarg; break;
        case OPT_ITERS:
            if (!cli_parse_setting("--iters", optarg, &d)) return 2;
            if (d == 0) {
                cli_error("--iters: expected at least 1, got '0'");
                return 2;
            }
            snprintf(iters_s, sizeof iters_s, "%.0f", d);
            break;
        case OPT_BATCH:
            if (!cli_parse_setting("--batch", optarg, &d)) return 2;
            batch_s = optarg;
            break;
        case OPT_LR:
            if (!cli_parse_setting("--lr", optarg, &d)) return 2;
            lr_s = optarg;
            break;
        case OPT_WD:
            if (!cli_parse_setting("--wd", optarg, &d)) return 2;
            wd_s = optarg;
            break;
        case OPT_SCHEDULE: sched = optarg; break;
        case OPT_WARMUP:
            if (!cli_parse_setting("--warmup", optarg, &d)) return 2;
            warmup_s = optarg;
            break;
        case OPT_VAL:
            if (!cli_parse_setting("--val", optarg, &d)) return 2;
            val_s = optarg;
            break;
        case OPT_LOG_EVERY:
            if (!cli_parse_setting("--log-every", optarg, &d)) return 2;
            log_s = optarg;
            break;
        case OPT_EVAL_EVERY:
            if (!cli_parse_setting("--eval-every", optarg, &d)) return 2;
            eval_s = optarg;
            break;
        case OPT_SEED: {
            uint64_t seed;
            if (!cli_parse_u64("--seed", optarg, &seed)) return 2;
            seed_s = optarg;
            break;
        }
        case OPT_THREADS:
            if (!cli_parse_setting("--threads", optarg, &d)) return 2;
            threads_s = optarg;
            break;
        case OPT_BACKEND: backend = optarg; break;
        case OPT_DEVICE: {
            if (!cli_check_device(optarg)) return 2;
            device = optarg;
            break;
        }
        case OPT_PRECISION:
            if (!cli_check_precision(optarg)) return 2;
            precision = optarg;
            break;
        case OPT_QUIET: quiet = true; break;
        case OPT_HELP: usage(stdout); return 0;
        default: return 2; /* cli_getopt said why */
        }
    }
    /* Whatever follows "--" goes to every `resnet train`. */
    char **extra = argv + optind;
    int n_extra = argc - optind;
    if (optind > 0 && strcmp(argv[optind - 1], "--") != 0 && n_extra > 0)
        return cli_usage_error("experiment: unexpected argument '%s' (train options go after --)",
                         argv[optind]);
    if (!data) return cli_usage_error("experiment: --data SPEC is required (e.g. cifar10:DIR)");
    if (!out) return cli_usage_error("experiment: --out DIR is required");
    if (strlen(out) > 900) return cli_usage_error("--out: path too long");

    int depths[MAX_DEPTHS], n_depths = 0;
    for (const char *p = depths_s; *p;) {
        char *end;
        long dv = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || n_depths == MAX_DEPTHS || dv < 1 || dv > 100000)
            return cli_usage_error("--depths: expected up to %d comma-separated depths, got '%s'",
                             MAX_DEPTHS, depths_s);
        depths[n_depths++] = (int)dv;
        p = *end ? end + 1 : end;
    }
    if (n_depths == 0) return cli_usage_error("--depths: expected at least one depth");
    int n_runs = 2 * n_depths;
    char names[2 * MAX_DEPTHS][32], dirs[2 * MAX_DEPTHS][1024];
    double macs[2 * MAX_DEPTHS];
    for (int i = 0; i < n_runs; i++) {
        snprintf(names[i], sizeof names[i], "%s%d", i % 2 ? "resnet" : "plain", depths[i / 2]);
        if (!cli_model_known(names[i]))
            return cli_usage_error("--depths: no model %s (plain and residual nets exist for depths "
                             "8, 14, 20, 32, 44, 56, 110)",
                             names[i]);
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", out, names[i]);
        rn_model *m;
        macs[i] = 1;
        if (rn_model_create(&m, names[i], NULL, 0) == RN_OK) {
            macs[i] = (double)rn_model_macs(m);
            rn_model_free(m);
        }
    }
    int64_t iters = strtoll(iters_s, NULL, 10);
    char log_buf[32];
    if (!log_s) {
        snprintf(log_buf, sizeof log_buf, "%lld", (long long)(iters >= 200 ? iters / 100 : 2));
        log_s = log_buf;
    }
    char warmup_buf[32];
    if (!warmup_s) {
        snprintf(warmup_buf, sizeof warmup_buf, "%lld", (long long)(iters / 10));
        warmup_s = warmup_buf;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return cli_error("%s: cannot create: %s", out, strerror(errno));

    /* What each directory holds decides new, resume or skip; all are checked before training. */
    run_state st[2 * MAX_DEPTHS];
    for (int i = 0; i < n_runs; i++)
        if (!inspect(dirs[i], names[i], data, iters, strtol(batch_s, NULL, 10),
                     strtod(lr_s, NULL), strtoull(seed_s, NULL, 10), &st[i]))
            return 1;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "degradation experiment: %d runs of %lld iterations, batch %s, lr %s (%s), "
                    "seed %s -> %s\n",
            n_runs, (long long)iters, batch_s, lr_s, sched, seed_s, out);
    double spent = 0, spent_macs = 0;
    for (int i = 0; i < n_runs && !stop_requested; i++) {
        if (st[i] == RUN_DONE) {
            fprintf(stderr, "[%d/%d] %s: finished before, skipped\n", i + 1, n_runs, names[i]);
            continue;
        }
        char *args[96];
        int na = 0;
        args[na++] = "resnet";
        args[na++] = "train";
        if (device) args[na++] = "--device", args[na++] = (char *)device;
        if (precision) args[na++] = "--precision", args[na++] = (char *)precision;
        if (st[i] == RUN_RESUME) {
            args[na++] = "--resume";
            args[na++] = dirs[i];
        } else {
            char *fixed[] = {"--model", names[i], "--data", (char *)data, "--out", dirs[i],
                             "--iters", iters_s, "--batch", (char *)batch_s, "--lr", (char *)lr_s,
                             "--wd", (char *)wd_s, "--schedule", (char *)sched, "--val",
                             (char *)val_s, "--log-every", (char *)log_s, "--eval-every",
                             (char *)eval_s, "--seed", (char *)seed_s, "--warmup",
                             (char *)warmup_s, "--log-grads"};
            for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) args[na++] = fixed[k];
            if (threads_s) args[na++] = "--threads", args[na++] = (char *)threads_s;
            /* The host's kernels; an executor on a GPU has its own and ignores them. */
            args[na++] = "--backend", args[na++] = backend ? (char *)backend : DEFAULT_CPU_BACKEND;
            if (n_extra > 96 - na - 2) return cli_usage_error("experiment: too many train options");
            for (int k = 0; k < n_extra; k++) args[na++] = extra[k];
        }
        if (quiet) args[na++] = "--quiet";
        args[na] = NULL;
        fprintf(stderr, "[%d/%d] %s %s\n", i + 1, n_runs,
                st[i] == RUN_RESUME ? "resuming" : "training", names[i]);
        double t0 = now_s();
        int rc = run_train(args);
        if (rc == 130 || stop_requested) {
            cli_error("interrupted during %s; finished runs are kept. Run the same command again "
                      "to resume it",
                      names[i]);
            return 130;
        }
        if (rc != 0) {
            cli_error("training %s failed (exit status %d); see the message above", dirs[i], rc);
            return rc == CLI_EXIT_USAGE ? rc : CLI_EXIT_FAILURE; /* e.g. a train option after -- */
        }
        spent += now_s() - t0;
        spent_macs += macs[i];
        double left = 0;
        for (int k = i + 1; k < n_runs; k++) left += st[k] == RUN_DONE ? 0 : macs[k];
        char a[32], b[32];
        fmt_time(a, sizeof a, now_s() - t0);
        fmt_time(b, sizeof b, spent / spent_macs * left);
        if (left > 0) fprintf(stderr, "%s took %s; about %s left\n", names[i], a, b);
    }
    if (stop_requested) {
        cli_error("interrupted; finished runs are kept. Run the same command again to resume");
        return 130;
    }

    char report[1100];
    snprintf(report, sizeof report, "%s/report.html", out);
    const char *dir_ptrs[2 * MAX_DEPTHS];
    for (int i = 0; i < n_runs; i++) dir_ptrs[i] = dirs[i];
    rp_options ro = {.title = "Degradation: plain and residual nets of growing depth",
                     .grad_step = -1};
    int charts;
    if (!rp_write_report(report, dir_ptrs, n_runs, &ro, &charts)) return 1;
    rp_run runs[2 * MAX_DEPTHS];
    int loaded = 0;
    bool ok = true;
    for (; loaded < n_runs && ok; loaded++) ok = rp_run_load(&runs[loaded], dirs[loaded]);
    if (ok) print_table(runs, n_runs, n_depths);
    for (int i = 0; i < loaded; i++) rp_run_free(&runs[i]);
    if (!ok) return 1;
    printf("report: %s\n", report);
    return 0;
}
