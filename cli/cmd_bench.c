/*
 * cmd_bench.c — `resnet bench`: training or inference throughput of a model on synthetic data.
 * Prints the median images/s over the timed steps (after warm-up), the achieved GFLOP/s
 * (2 FLOPs per multiply-add; a training step counts 3 forward passes: forward, input
 * gradients, weight gradients) and its share of the CPU's FMA peak, measured once per machine
 * and thread count and cached (peak.h). Under
 * mpirun (make MPI=1) --batch is the global batch: each process steps on its share, the
 * gradients are averaged as in training, and rank 0 prints the global images/s.
 */
#include "cli.h"
#include "peak.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f, "usage: resnet bench [--model M] [--batch B] [--mode train|infer] [--threads T]\n"
               "                    [--steps S] [--warmup W] [--backend NAME] [--size HxW]\n"
               "                    [--in-channels C] [--classes K] [--remeasure-peak]\n"
               "                    [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16]\n"
               "A training step is the whole step on a synthetic uint8 data set: the batch\n"
               "(crop + flip), forward, loss, backward, SGD update; images/s comes from the\n"
               "median step time, each step waited for.\n"
               "  --model M          resnet20\n"
               "  --batch B          128\n"
               "  --mode             train\n"
               "  --threads T        0: every core\n"
               "  --steps S          10 timed steps, after\n"
               "  --warmup W         2 warm-up steps\n"
               "  --backend NAME     cpu-winograd (see README: cpu, cpu-winograd, cpu-bf16,\n"
               "                     reference)\n"
               "  --size, --in-channels, --classes   the model's defaults (3x32x32, 10 classes\n"
               "                     for CIFAR models; 3x224x224, 1000 for -imagenet ones)\n"
               "  --device           cpu\n"
               "  --precision        fp32 on the CPU, tf32 on a GPU\n"
               "On the CPU, GFLOP/s is compared with the FMA peak of the threads, measured once\n"
               "(the best of several short runs) and cached per CPU model, vector unit, thread\n"
               "count and library version in $XDG_CACHE_HOME/resnet/peak (default\n"
               "~/.cache/resnet/peak); the output says when it was measured.\n"
               "--remeasure-peak measures it again and rewrites the cache.\n"
               "With RN_PROFILE=1 in the environment it also prints the time per op kind.\n");
}

/* A synthetic training set of n images shaped for model m: fixed pseudo-random pixels, labels
 * cycling through the classes. */
static bool synthetic_set(rn_dataset *d, const rn_model *m, int n) {
    rn_model_opts o = rn_model_get_opts(m);
    size_t per = (size_t)o.in_channels * o.in_height * o.in_width;
    *d = (rn_dataset){.n = n, .c = o.in_channels, .h = o.in_height, .w = o.in_width,
                      .num_classes = o.num_classes};
    d->images = malloc((size_t)n * per);
    d->labels = malloc((size_t)n * sizeof(int32_t));
    if (!d->images || !d->labels) return false;
    for (size_t i = 0; i < (size_t)n * per; i++) d->images[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < n; i++) d->labels[i] = i % o.num_classes;
    return true;
}

/* Times warmup + steps training steps (each waited for) or inference passes on executor e;
 * times[0..steps) receives the timed ones. */
static rn_status run_steps(rn_exec *e, rn_model *m, rn_comm *comm, bool train, long batch,
                           long steps, long warmup, double *times) {
    const int nproc = rn_comm_size(comm), share = (int)batch / nproc;
    rn_model_opts g = rn_model_get_opts(m);
    size_t xn = (size_t)batch * g.in_channels * g.in_height * g.in_width;
    rn_dataset d = {0};
    int *order = malloc((size_t)batch * 4 * sizeof(int));
    float *lrs = malloc((size_t)(warmup + steps) * sizeof(float));
    float *x = malloc(xn * sizeof(float));
    float *logits = malloc((size_t)batch * g.num_classes * sizeof(float));
    rn_grad_avg *avg = NULL;
    rn_status s = RN_OK;
    if (!order || !lrs || !x || !logits || !synthetic_set(&d, m, (int)batch * 4)) {
        s = RN_ERR_NOMEM;
        cli_error("out of memory");
        goto done;
    }
    for (long i = 0; i < batch * 4; i++) order[i] = (int)i;
    for (long i = 0; i < warmup + steps; i++) lrs[i] = 0.01f;
    for (size_t i = 0; i < xn; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    if (train) {
        rn_norm norm = rn_dataset_norm(&d);
        rn_exec_train_opts to = {.batch = share, .global_batch = (int)batch,
                                 .first = rn_comm_rank(comm) * share, .momentum = 0.9f,
                                 .wd = 1e-4f, .augment = true, .seed = 1};
        s = rn_grad_avg_open(&avg, comm, e, -1);
        if (s == RN_OK) s = rn_exec_train_init(e, &d, &norm, &to, lrs, warmup + steps, 0);
        if (s == RN_OK) s = rn_exec_train_set_order(e, order);
    }
    for (long it = 0; s == RN_OK && it < warmup + steps; it++) {
        if (it == warmup && getenv("RN_PROFILE")) rn_exec_profile(e, true);
        if (nproc > 1 && s == RN_OK) s = rn_comm_barrier(comm);
        double t0 = omp_get_wtime(), loss;
        int64_t correct;
        if (train) {
            s = rn_exec_train_step(e);
            if (s == RN_OK) s = rn_exec_train_metrics(e, &loss, &correct); /* waits */
        } else {
            s = rn_exec_forward(e, x, share, RN_MODE_INFER, logits);
        }
        if (nproc > 1 && s == RN_OK) s = rn_comm_barrier(comm); /* the slowest process */
        if (it >= warmup) times[it - warmup] = omp_get_wtime() - t0;
    }
    if (s != RN_OK && s != RN_ERR_NOMEM) cli_lib_error(s);
done:
    rn_grad_avg_close(avg);
    rn_dataset_free(&d);
    free(order);
    free(lrs);
    free(x);
    free(logits);
    return s;
}

static int bench(rn_comm *comm, int argc, char **argv) {
    enum { OPT_MODE = CLI_OPT_OWN, OPT_STEPS, OPT_WARMUP, OPT_REMEASURE };
    static const struct option opts[] = {
        {"model", required_argument, 0, CLI_OPT_MODEL},
        {"batch", required_argument, 0, CLI_OPT_BATCH},
        {"mode", required_argument, 0, OPT_MODE},
        {"threads", required_argument, 0, CLI_OPT_THREADS},
        {"steps", required_argument, 0, OPT_STEPS},
        {"warmup", required_argument, 0, OPT_WARMUP},
        {"backend", required_argument, 0, CLI_OPT_BACKEND},
        {"size", required_argument, 0, CLI_OPT_SIZE},
        {"in-channels", required_argument, 0, CLI_OPT_IN_CHANNELS},
        {"classes", required_argument, 0, CLI_OPT_CLASSES},
        {"device", required_argument, 0, CLI_OPT_DEVICE},
        {"precision", required_argument, 0, CLI_OPT_PRECISION},
        {"remeasure-peak", no_argument, 0, OPT_REMEASURE},
        {"help", no_argument, 0, CLI_OPT_HELP},
        {0, 0, 0, 0}};
    const char *model = "resnet20", *backend = NULL, *device = NULL, *precision = NULL;
    long batch = 128, threads = 0, steps = 10, warmup = 2;
    bool train = true, remeasure = false;
    rn_model_opts mo = {0};
    int o;
    optind = 1;
    while ((o = cli_getopt("bench", argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case CLI_OPT_MODEL: if (!cli_check_model(optarg)) return 2; model = optarg; break;
        case CLI_OPT_BATCH: if (!cli_parse_int("--batch", optarg, 1, 65536, &batch)) return 2; break;
        case OPT_MODE:
            if (!strcmp(optarg, "train")) train = true;
            else if (!strcmp(optarg, "infer")) train = false;
            else return cli_usage_error("--mode: expected train or infer, got '%s'", optarg);
            break;
        case CLI_OPT_THREADS: if (!cli_parse_int("--threads", optarg, 0, 1024, &threads)) return 2; break;
        case OPT_STEPS: if (!cli_parse_int("--steps", optarg, 1, 100000, &steps)) return 2; break;
        case OPT_WARMUP: if (!cli_parse_int("--warmup", optarg, 0, 100000, &warmup)) return 2; break;
        case CLI_OPT_BACKEND: backend = optarg; break;
        case OPT_REMEASURE: remeasure = true; break;
        case CLI_OPT_DEVICE: if (!cli_check_device(optarg)) return 2; device = optarg; break;
        case CLI_OPT_PRECISION: if (!cli_check_precision(optarg)) return 2; precision = optarg; break;
        case CLI_OPT_IN_CHANNELS:
        case CLI_OPT_SIZE:
        case CLI_OPT_CLASSES: if (!cli_model_opt(o, optarg, &mo)) return 2; break;
        case CLI_OPT_HELP: usage(stdout); return 0;
        default: return 2; /* cli_getopt said why */
        }
    }
    if (optind != argc) return cli_usage_error("bench: unexpected argument '%s'", argv[optind]);
    const int nproc = rn_comm_size(comm);
    if (batch % nproc != 0)
        return cli_usage_error("--batch %ld is not divisible by the %d processes (it is the global "
                         "batch; each process takes an equal share)",
                         batch, nproc);
    threads = cli_comm_threads(comm, (int)threads);
    rn_model *m = NULL;
    rn_exec *e = NULL;
    rn_exec_opts eo = {.device = device, .backend = backend, .threads = (int)threads,
                       .precision = precision, .inference_only = !train};
    rn_status s = rn_model_create(&m, model, &mo, 1);
    if (s == RN_OK) s = rn_exec_open(&e, m, &eo, (int)batch / nproc);
    s = rn_comm_agree(comm, s);
    double *times = malloc((size_t)steps * sizeof(double));
    if (s != RN_OK || !times) {
        free(times);
        rn_model_free(m);
        if (!times) return cli_error("out of memory");
        int rc = cli_lib_error(s);
        /* Everything here comes from the options: a value the library refuses (the geometry,
         * the backend's name) is a usage error; a missing GPU is a failure. */
        return s == RN_ERR_BAD_ARG ? CLI_EXIT_USAGE : rc;
    }
    /* The CPU's peak from the cache (measured first where it has none); a GPU's from its
     * executor. */
    int cuda = -1;
    rn_device_parse(device, &cuda);
    cli_peak pk = {0};
    if (cuda < 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        cli_peak_get(threads ? (int)threads : cores > 0 ? (int)cores : 1, remeasure, &pk);
    } else {
        const char *what;
        pk.gflops = rn_exec_peak_gflops(e, &what);
        snprintf(pk.what, sizeof pk.what, "%s", what);
    }
    s = run_steps(e, m, comm, train, batch, steps, warmup, times);
    if (s == RN_OK) {
        qsort(times, (size_t)steps, sizeof *times, cmp_double);
        double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        double ips = batch / med;
        double flops = 2.0 * (double)rn_model_macs(m) * (train ? 3 : 1) * ips / 1e9 / nproc;
        printf("model %s  mode %s  batch %ld  device %s", model, train ? "train" : "infer",
               batch, rn_exec_describe(e));
        if (nproc > 1) printf(" x %d processes (%s)", nproc, rn_comm_name(comm));
        printf("\n");
        printf("images/s: %.1f\n", ips);
        printf("step ms: %.3f (median of %ld)\n", 1e3 * med, steps);
        printf("GFLOP/s: %.1f%s\n", flops, nproc > 1 ? " (per process)" : "");
        if (pk.gflops > 0)
            printf("peak: %.1f GFLOP/s (%s; measured %s) -> %.1f%% of peak\n", pk.gflops, pk.what,
                   pk.cached ? pk.measured : "now", 100 * flops / pk.gflops);
        s = rn_exec_profile_print(e, stdout);
        if (s != RN_OK) cli_lib_error(s);
    }
    free(times);
    rn_exec_close(e);
    rn_model_free(m);
    return s == RN_OK ? 0 : 1;
}

int cmd_bench(int argc, char **argv) { return cli_comm_run(bench, argc, argv); }
