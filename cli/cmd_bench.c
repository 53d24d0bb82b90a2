/*
 * cmd_bench.c — `resnet bench`: training or inference throughput of a model on synthetic data.
 * Prints the median images/s over the timed steps (after warm-up), the achieved GFLOP/s
 * (2 FLOPs per multiply-add; a training step counts 3 forward passes: forward, input
 * gradients, weight gradients) and its share of the FMA peak measured at start-up.
 */
#include "cli.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f, "usage: resnet bench [--model M] [--batch B] [--mode train|infer] [--threads T]\n"
               "                    [--steps S] [--warmup W] [--backend NAME] [--size HxW]\n"
               "                    [--in-channels C] [--classes K]\n"
               "                    [--device cpu|cuda[:N]] [--precision fp32|tf32|bf16]\n"
               "On a GPU a training step is the whole captured step (batch built from a\n"
               "synthetic uint8 data set on the GPU, forward, loss, backward, SGD update), and\n"
               "images/s is the mean over the timed steps, as the GPU runs them back to back.\n"
               "With RN_PROFILE=1 in the environment it also prints the time per op kind.\n");
}

/* The GPU benchmark: the training step of rn_gpu_train_* on a synthetic data set, or
 * forward passes from host memory for inference. */
static int bench_gpu(rn_model *m, int cuda, rn_precision prec, long batch, bool train,
                     long steps, long warmup) {
    rn_gpu *g = NULL;
    rn_status s = rn_gpu_open(&g, cuda, m, (int)batch, prec);
    if (s != RN_OK) return cli_lib_error(s);
    rn_model_opts o = rn_model_get_opts(m);
    size_t per = (size_t)o.in_channels * o.in_height * o.in_width;
    int n = (int)batch * 4;
    rn_dataset d = {.n = n, .c = o.in_channels, .h = o.in_height, .w = o.in_width,
                    .num_classes = o.num_classes};
    d.images = malloc((size_t)n * per);
    d.labels = malloc((size_t)n * sizeof(int32_t));
    int *order = malloc((size_t)n * sizeof(int));
    float *lrs = malloc((size_t)(warmup + steps) * sizeof(float));
    float *x = malloc((size_t)batch * per * sizeof(float));
    float *logits = malloc((size_t)batch * o.num_classes * sizeof(float));
    if (!d.images || !d.labels || !order || !lrs || !x || !logits) return cli_error("out of memory");
    for (size_t i = 0; i < (size_t)n * per; i++) d.images[i] = (uint8_t)((i * 2654435761u) >> 24);
    for (int i = 0; i < n; i++) {
        d.labels[i] = i % o.num_classes;
        order[i] = i;
    }
    for (long i = 0; i < warmup + steps; i++) lrs[i] = 0.01f;
    for (size_t i = 0; i < (size_t)batch * per; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    double t = 0;
    if (train) {
        rn_norm norm = rn_dataset_norm(&d);
        rn_gpu_train_opts to = {.batch = (int)batch, .momentum = 0.9f, .wd = 1e-4f,
                                .augment = true, .seed = 1};
        double l;
        int64_t c;
        s = rn_gpu_train_init(g, &d, &norm, &to, lrs, warmup + steps, 0);
        if (s == RN_OK) s = rn_gpu_train_set_order(g, order);
        if (s == RN_OK) s = rn_gpu_train_steps(g, (int)warmup);
        if (s == RN_OK) s = rn_gpu_train_metrics(g, &l, &c);
        double t0 = omp_get_wtime();
        if (s == RN_OK) s = rn_gpu_train_steps(g, (int)steps);
        if (s == RN_OK) s = rn_gpu_train_metrics(g, &l, &c);
        t = omp_get_wtime() - t0;
        if (s == RN_OK && getenv("RN_PROFILE")) s = rn_gpu_profile(g, stdout);
    } else {
        for (long i = 0; s == RN_OK && i < warmup; i++)
            s = rn_gpu_forward(g, x, (int)batch, RN_MODE_EVAL, logits);
        double t0 = omp_get_wtime();
        for (long i = 0; s == RN_OK && i < steps; i++)
            s = rn_gpu_forward(g, x, (int)batch, RN_MODE_EVAL, logits);
        t = omp_get_wtime() - t0;
    }
    if (s == RN_OK) {
        double ips = batch * steps / t;
        double flops = 2.0 * (double)rn_model_macs(m) * (train ? 3 : 1) * ips / 1e12;
        printf("model %s  mode %s  batch %ld  device %s\n", rn_model_name(m),
               train ? "train" : "infer", batch, rn_gpu_describe(g));
        printf("images/s: %.1f\n", ips);
        printf("step ms: %.3f (mean of %ld)\n", 1e3 * t / steps, steps);
        printf("TFLOP/s: %.2f\n", flops);
    } else {
        cli_lib_error(s);
    }
    free(d.images);
    free(d.labels);
    free(order);
    free(lrs);
    free(x);
    free(logits);
    rn_gpu_close(g);
    return s == RN_OK ? 0 : 1;
}

int cmd_bench(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"batch", required_argument, 0, 'b'},
        {"mode", required_argument, 0, 'M'},    {"threads", required_argument, 0, 't'},
        {"steps", required_argument, 0, 's'},   {"warmup", required_argument, 0, 'w'},
        {"backend", required_argument, 0, 'B'}, {"size", required_argument, 0, 'S'},
        {"in-channels", required_argument, 0, 'C'}, {"classes", required_argument, 0, 'K'},
        {"device", required_argument, 0, 'D'}, {"precision", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    const char *model = "resnet20", *backend = NULL;
    int cuda = -1;
    rn_precision prec = RN_PRECISION_TF32;
    long batch = 128, threads = 0, steps = 10, warmup = 2;
    bool train = true;
    rn_model_opts mo = {0};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'm': model = optarg; break;
        case 'b': if (!cli_parse_int("--batch", optarg, 1, 65536, &batch)) return 2; break;
        case 'M':
            if (!strcmp(optarg, "train")) train = true;
            else if (!strcmp(optarg, "infer")) train = false;
            else return cli_error("--mode: expected train or infer, got '%s'", optarg);
            break;
        case 't': if (!cli_parse_int("--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 's': if (!cli_parse_int("--steps", optarg, 1, 100000, &steps)) return 2; break;
        case 'w': if (!cli_parse_int("--warmup", optarg, 0, 100000, &warmup)) return 2; break;
        case 'B': backend = optarg; break;
        case 'D': if (!cli_parse_device(optarg, &cuda)) return 2; break;
        case 'P': if (!cli_parse_precision(optarg, &prec)) return 2; break;
        case 'C': case 'S': case 'K': if (!cli_model_opt(o, optarg, &mo)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) return cli_error("bench: unexpected argument '%s'", argv[optind]);
    rn_ctx *ctx = NULL;
    rn_model *m = NULL;
    if (cuda >= 0) {
        rn_status s = rn_model_create(&m, model, &mo, 1);
        if (s != RN_OK) return cli_lib_error(s);
        int rc = bench_gpu(m, cuda, prec, batch, train, steps, warmup);
        rn_model_free(m);
        return rc;
    }
    rn_status s = rn_ctx_create(&ctx, backend, (int)threads);
    if (s == RN_OK) s = rn_model_create(&m, model, &mo, 1);
    if (s == RN_OK) s = rn_model_reserve(m, ctx, (int)batch);
    if (s == RN_OK) rn_model_track_block_grads(m, false); /* as training without --log-grads */
    if (s != RN_OK) {
        rn_model_free(m);
        rn_ctx_free(ctx);
        return cli_lib_error(s);
    }
    int nt = rn_ctx_threads(ctx);
    const char *isa;
    double peak = rn_fma_peak_gflops(nt, &isa);
    rn_model_opts g = rn_model_get_opts(m);
    size_t xn = (size_t)batch * g.in_channels * g.in_height * g.in_width;
    float *x = malloc(xn * sizeof(float));
    float *probs = malloc((size_t)batch * g.num_classes * sizeof(float));
    float *dl = malloc((size_t)batch * g.num_classes * sizeof(float));
    int *labels = malloc((size_t)batch * sizeof(int));
    double *times = malloc((size_t)steps * sizeof(double));
    if (!x || !probs || !dl || !labels || !times) return cli_error("out of memory");
    for (size_t i = 0; i < xn; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (long i = 0; i < batch; i++) labels[i] = (int)(i % g.num_classes);
    for (long it = 0; it < warmup + steps; it++) {
        if (it == warmup && getenv("RN_PROFILE")) rn_model_profile(m, true);
        double t0 = omp_get_wtime();
        const float *logits;
        s = rn_model_forward(m, ctx, x, (int)batch, train ? RN_MODE_TRAIN : RN_MODE_INFER, &logits);
        if (s == RN_OK && train) {
            rn_softmax_xent_forward(probs, logits, labels, (int)batch, g.num_classes, 0);
            rn_softmax_xent_backward(dl, probs, labels, (int)batch, g.num_classes, 0, 1);
            rn_model_zero_grad(m);
            s = rn_model_backward(m, ctx, dl);
        }
        if (s != RN_OK) break;
        if (it >= warmup) times[it - warmup] = omp_get_wtime() - t0;
    }
    if (s == RN_OK) {
        qsort(times, (size_t)steps, sizeof *times, cmp_double);
        double med = steps % 2 ? times[steps / 2] : 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
        double ips = batch / med;
        double flops = 2.0 * (double)rn_model_macs(m) * (train ? 3 : 1) * ips / 1e9;
        printf("model %s  mode %s  batch %ld  threads %d  backend %s\n", model,
               train ? "train" : "infer", batch, nt, rn_ctx_backend_name(ctx));
        printf("images/s: %.1f\n", ips);
        printf("step ms: %.2f (median of %ld)\n", 1e3 * med, steps);
        printf("GFLOP/s: %.1f\n", flops);
        printf("peak: %.1f GFLOP/s (%s FMA, %d threads) -> %.1f%% of peak\n", peak, isa, nt,
               100 * flops / peak);
        rn_model_profile_print(m, stdout);
    } else {
        cli_lib_error(s);
    }
    free(x);
    free(probs);
    free(dl);
    free(labels);
    free(times);
    rn_model_free(m);
    rn_ctx_free(ctx);
    return s == RN_OK ? 0 : 1;
}
