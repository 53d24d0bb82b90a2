/*
 * bench_bf16.c — the bf16 CPU kernels against the fp32 ones, in one run on this machine:
 *
 *   layers  every convolution shape of ResNet-20 (batch 128) and ResNet-18 with the CIFAR stem
 *           (batch 64): forward, and backward (input and weight gradients), with the "cpu"
 *           (direct), "cpu-winograd" and bf16 kernels; milliseconds and the ratio (CPU time
 *           with --threads 1, which a shared machine disturbs least; wall time otherwise).
 *   steps   whole training steps (forward + backward) and inference passes of a model with
 *           the cpu, cpu-winograd and cpu-bf16 backends: images/s, median of the timed steps
 *           (per CPU-second with --threads 1).
 *   tile    the bf16 tile alone on one thread, in cache, against the fp32 FMA peak: the most
 *           multiply-adds per second any bf16 convolution can reach here.
 *
 *   make && cc -O2 -fopenmp -Iinclude -Isrc bench/bench_bf16.c build/libresnet.a \
 *       -lcjson -lstb -lz -lm -o build/bench_bf16
 *   build/bench_bf16 [layers|steps|tile] [--threads 2] [--model resnet20] [--batch 128]
 *                    [--steps 10] [--mode train|infer]
 *
 * PyTorch's bf16 autocast on the same models: bench/cpu_vs_pytorch.py --precision bf16.
 * (Until "cpu-bf16" is in rn_backend_find's list, the steps mode installs the table in the
 * context itself.)
 */
#include "cpu/cpu.h"
#include "ops/backend.h"
#include "cpu/bf16.h"
#include "resnet.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *net;
    int count; /* layers of this shape in the net */
    int N, C, H, W, K, R, S, stride, pad;
} layer;

static const layer LAYERS[] = {
    {"resnet20", 1, 128, 3, 32, 32, 16, 3, 3, 1, 1},
    {"resnet20", 6, 128, 16, 32, 32, 16, 3, 3, 1, 1},
    {"resnet20", 1, 128, 16, 32, 32, 32, 3, 3, 2, 1},
    {"resnet20", 5, 128, 32, 16, 16, 32, 3, 3, 1, 1},
    {"resnet20", 1, 128, 32, 16, 16, 64, 3, 3, 2, 1},
    {"resnet20", 5, 128, 64, 8, 8, 64, 3, 3, 1, 1},
    {"resnet18", 1, 64, 3, 32, 32, 64, 3, 3, 1, 1},
    {"resnet18", 4, 64, 64, 32, 32, 64, 3, 3, 1, 1},
    {"resnet18", 1, 64, 64, 32, 32, 128, 3, 3, 2, 1},
    {"resnet18", 1, 64, 64, 32, 32, 128, 1, 1, 2, 0},
    {"resnet18", 3, 64, 128, 16, 16, 128, 3, 3, 1, 1},
    {"resnet18", 1, 64, 128, 16, 16, 256, 3, 3, 2, 1},
    {"resnet18", 1, 64, 128, 16, 16, 256, 1, 1, 2, 0},
    {"resnet18", 3, 64, 256, 8, 8, 256, 3, 3, 1, 1},
    {"resnet18", 1, 64, 256, 8, 8, 512, 3, 3, 2, 1},
    {"resnet18", 1, 64, 256, 8, 8, 512, 1, 1, 2, 0},
    {"resnet18", 3, 64, 512, 4, 4, 512, 3, 3, 1, 1},
};

/* Seconds: this process's CPU time on one thread (others' load on a shared machine is not
 * counted), wall time on several. */
static double now(int nt) {
    if (nt > 1) return omp_get_wtime();
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of `reps` calls of one pass (0 forward, 1 backward) of a backend's kernels. */
static double time_pass(const rn_backend *b, bool bf16, int pass, const rn_conv_desc *d,
                        float *out, float *in, float *w, float *din, float *dw, float *s,
                        int nt, int reps) {
    double t[16];
    for (int i = 0; i < reps + 1; i++) {
        double t0 = now(nt);
        if (pass == 0) {
            if (bf16) rn_cpu_bf16_conv2d_forward(out, in, w, NULL, d, false, rn_cpu_bf16_level(), s, nt);
            else b->conv2d_forward(out, in, w, NULL, d, s, nt);
        } else {
            if (bf16) rn_cpu_bf16_conv2d_backward(din, dw, NULL, out, in, w, d, rn_cpu_bf16_level(), s, nt);
            else b->conv2d_backward(din, dw, NULL, out, in, w, d, s, nt);
        }
        if (i > 0) t[i - 1] = now(nt) - t0; /* the first call warms up */
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

static void bench_layers(int nt) {
    printf("%-8s %5s %-28s | %8s %8s %8s | %8s %8s %8s | %6s %6s\n", "net", "count", "shape",
           "fwd cpu", "fwd wino", "fwd bf16", "bwd cpu", "bwd wino", "bwd bf16", "x cpu", "x wino");
    double tot[2][3] = {{0}};
    const char *net = NULL;
    for (size_t li = 0; li <= sizeof LAYERS / sizeof LAYERS[0]; li++) {
        const layer *L = li < sizeof LAYERS / sizeof LAYERS[0] ? &LAYERS[li] : NULL;
        if (net && (!L || strcmp(L->net, net) != 0)) { /* the net's total, weighted by count */
            printf("%-8s total %-28s | %8.1f %8.1f %8.1f | %8.1f %8.1f %8.1f |\n", net, "(count x ms)",
                   1e3 * tot[0][0], 1e3 * tot[0][1], 1e3 * tot[0][2], 1e3 * tot[1][0],
                   1e3 * tot[1][1], 1e3 * tot[1][2]);
            printf("%-8s forward+backward: bf16 %.2fx cpu, %.2fx cpu-winograd\n", net,
                   (tot[0][0] + tot[1][0]) / (tot[0][2] + tot[1][2]),
                   (tot[0][1] + tot[1][1]) / (tot[0][2] + tot[1][2]));
            memset(tot, 0, sizeof tot);
        }
        if (!L) break;
        net = L->net;
        rn_conv_desc d = {.N = L->N, .C = L->C, .H = L->H, .W = L->W, .K = L->K, .R = L->R,
                          .S = L->S, .stride = L->stride, .pad = L->pad};
        rn_conv_desc_finish(&d);
        size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
        size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
        size_t ns = rn_cpu_bf16_conv2d_scratch_floats(&d, nt);
        size_t n1 = rn_backend_cpu.conv2d_scratch_floats(&d, nt), n2 = rn_backend_cpu_winograd.conv2d_scratch_floats(&d, nt);
        if (n1 > ns) ns = n1;
        if (n2 > ns) ns = n2;
        float *in = calloc(nin, 4), *w = calloc(nw, 4), *out = calloc(nout, 4), *din = calloc(nin, 4);
        float *dw = calloc(nw, 4), *s = calloc(ns, 4);
        for (size_t i = 0; i < nin; i++) in[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        for (size_t i = 0; i < nw; i++) w[i] = (float)((i * 40503u) % 1000) / 5000.0f - 0.1f;
        double t[2][3];
        const int reps = 5;
        for (int p = 0; p < 2; p++) {
            t[p][0] = time_pass(&rn_backend_cpu, false, p, &d, out, in, w, din, dw, s, nt, reps);
            t[p][1] = time_pass(&rn_backend_cpu_winograd, false, p, &d, out, in, w, din, dw, s, nt, reps);
            t[p][2] = time_pass(NULL, true, p, &d, out, in, w, din, dw, s, nt, reps);
            for (int k = 0; k < 3; k++) tot[p][k] += L->count * t[p][k];
        }
        char shape[64];
        snprintf(shape, sizeof shape, "%dx%dx%d -> %d %dx%d s%d", d.C, d.H, d.W, d.K, d.R, d.S, d.stride);
        printf("%-8s %5d %-28s | %8.2f %8.2f %8.2f | %8.2f %8.2f %8.2f | %5.2fx %5.2fx\n", L->net,
               L->count, shape, 1e3 * t[0][0], 1e3 * t[0][1], 1e3 * t[0][2], 1e3 * t[1][0],
               1e3 * t[1][1], 1e3 * t[1][2], (t[0][0] + t[1][0]) / (t[0][2] + t[1][2]),
               (t[0][1] + t[1][1]) / (t[0][2] + t[1][2]));
        fflush(stdout);
        free(in), free(w), free(out), free(din), free(dw), free(s);
    }
}

/* Median images/s of whole steps (train: forward + backward; infer: forward). */
static double step_rate(const char *model, const rn_backend *b, int batch, bool train, int nt,
                        int steps) {
    rn_ctx *ctx = NULL;
    rn_model *m = NULL;
    rn_model_opts mo = {0};
    if (rn_ctx_create(&ctx, "cpu", nt) != RN_OK || rn_model_create(&m, model, &mo, 1) != RN_OK) {
        fprintf(stderr, "bench_bf16: %s\n", rn_error_message());
        exit(1);
    }
    ctx->backend = b; /* "cpu-bf16" is not in rn_backend_find's list yet */
    if (rn_model_reserve(m, ctx, batch) != RN_OK) {
        fprintf(stderr, "bench_bf16: %s\n", rn_error_message());
        exit(1);
    }
    rn_model_opts g = rn_model_get_opts(m);
    size_t xn = (size_t)batch * g.in_channels * g.in_height * g.in_width;
    float *x = malloc(xn * 4), *probs = malloc((size_t)batch * g.num_classes * 4);
    float *dl = malloc((size_t)batch * g.num_classes * 4);
    int *labels = malloc((size_t)batch * sizeof(int));
    for (size_t i = 0; i < xn; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < batch; i++) labels[i] = i % g.num_classes;
    double t[64];
    for (int it = 0; it < steps + 2; it++) {
        double t0 = now(nt);
        const float *logits;
        rn_status s = rn_model_forward(m, ctx, x, batch, train ? RN_MODE_TRAIN : RN_MODE_INFER, &logits);
        if (s == RN_OK && train) {
            rn_softmax_xent_forward(probs, logits, labels, batch, g.num_classes, 0);
            rn_softmax_xent_backward(dl, probs, labels, batch, g.num_classes, 0, 1);
            rn_model_zero_grad(m);
            s = rn_model_backward(m, ctx, dl);
        }
        if (s != RN_OK) {
            fprintf(stderr, "bench_bf16: %s\n", rn_error_message());
            exit(1);
        }
        if (it >= 2) t[it - 2] = now(nt) - t0;
    }
    qsort(t, (size_t)steps, sizeof t[0], cmp_double);
    free(x), free(probs), free(dl), free(labels);
    rn_model_free(m);
    rn_ctx_free(ctx);
    return batch / t[steps / 2];
}

static void bench_steps(const char *model, int batch, int nt, int steps, const char *mode) {
    const rn_backend *bs[] = {&rn_backend_cpu, &rn_backend_cpu_winograd, &rn_backend_cpu_bf16};
    for (int train = 1; train >= 0; train--) {
        if (mode && strcmp(mode, train ? "train" : "infer") != 0) continue;
        double r[3];
        for (int i = 0; i < 3; i++) r[i] = step_rate(model, bs[i], batch, train, nt, steps);
        printf("%-10s %-5s batch %3d: cpu %7.1f  cpu-winograd %7.1f  cpu-bf16 %7.1f img/s  "
               "(bf16 %.2fx cpu, %.2fx cpu-winograd)\n", model, train ? "train" : "infer", batch,
               r[0], r[1], r[2], r[2] / r[0], r[2] / r[1]);
        fflush(stdout);
    }
}

/* The bf16 tile's own rate on one thread, its A and B in cache (one 8 x 48 tile, kp pairs, called
 * over and over), beside the fp32 FMA peak of the same thread: the ceiling of every bf16
 * convolution on this machine, in multiply-adds per second. */
static void bench_tile(void) {
    const rn_bf16_kernels *kn = rn_bf16_kernels_for(rn_cpu_bf16_level());
    const char *isa;
    const double fma = rn_fma_peak_gflops(1, &isa) / 2; /* GMAC/s */
    for (int kp = 64; kp <= 1024; kp *= 4) {
        uint32_t *a = malloc(sizeof(uint32_t) * kp * RN_BF16_MR);
        uint32_t *b = malloc(sizeof(uint32_t) * kp * RN_BF16_NB);
        float *c = calloc(RN_BF16_MR * RN_BF16_NB, sizeof(float));
        for (int i = 0; i < kp * RN_BF16_MR; i++) a[i] = 0x3f803f80u; /* pairs of 1.0 */
        for (int i = 0; i < kp * RN_BF16_NB; i++) b[i] = 0x3c003c00u; /* pairs of 2^-7 */
        rn_bf16_tile_args t = {.c = c, .ldc = RN_BF16_NB, .a = a, .b = b, .b_stride = RN_BF16_NB,
                               .kp = kp, .nv = RN_BF16_NV, .ncols = RN_BF16_NB, .mr = RN_BF16_MR,
                               .accumulate = true};
        const long reps = 40000000L / kp;
        double best = 1e30;
        for (int round = 0; round < 5; round++) {
            const double t0 = omp_get_wtime();
            for (long r = 0; r < reps; r++) kn->tile(&t);
            const double dt = omp_get_wtime() - t0;
            if (dt < best) best = dt;
        }
        const double gmac = (double)reps * kp * 2 * RN_BF16_MR * RN_BF16_NB / best * 1e-9;
        printf("tile %dx%d, %4d pairs, in cache: %6.1f GMAC/s (fp32 FMA peak, %s: %.1f GMAC/s; "
               "%.2fx)\n", RN_BF16_MR, RN_BF16_NB, kp, gmac, isa, fma, gmac / fma);
        free(a), free(b), free(c);
    }
}

int main(int argc, char **argv) {
    const char *mode = "layers", *model = "resnet20", *only = NULL;
    int nt = 2, batch = 128, steps = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) nt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) only = argv[++i];
        else if (argv[i][0] != '-') mode = argv[i];
        else {
            fprintf(stderr, "usage: bench_bf16 [layers|steps|tile] [--threads N] [--model M] [--batch B] "
                            "[--steps S] [--mode train|infer]\n");
            return 2;
        }
    }
    if (steps < 1 || steps > 64) steps = 10;
    printf("bf16 level %s (this CPU: %s), %d threads\n", rn_cpu_bf16_level_name(rn_cpu_bf16_level()),
           rn_cpu_bf16_level_name(rn_cpu_bf16_supported()), nt);
    if (!strcmp(mode, "steps")) bench_steps(model, batch, nt, steps, only);
    else if (!strcmp(mode, "tile")) bench_tile();
    else bench_layers(nt);
    return 0;
}
