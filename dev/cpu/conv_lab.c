/*
 * conv_lab.c — the convolution kernel lab: numbered versions of the hot kernel, each checked
 * against a naive reference on a small batch, then timed on the shapes that matter.
 *
 *   ./conv_lab [-v VERSION] [-t THREADS] [-s SHAPE] [-r REPS] [-p P -k KB -c CHUNK]
 *              [-m wall|cpu]
 * -m cpu times with the process CPU clock instead of the wall clock: on a shared machine a
 * single-threaded run then does not count the time it was preempted (use it for tuning; the
 * reported comparisons use the wall clock on an idle machine).
 *
 * Versions (see README.md for what each gave):
 *   1  naive direct convolution, NCHW, OpenMP over images
 *   2  src/cpu blocked kernels, portable C tiles
 *   3  src/cpu blocked kernels, AVX2 tiles
 *   4  src/cpu blocked kernels, AVX-512, small tiles (8 pixels x 1 block)
 *   5  src/cpu blocked kernels, AVX-512 direct convolution, automatic tiles
 *   6  src/cpu Winograd F(4x4,3x3) where it applies (3x3 stride 1), else as 5
 *   7  src/cpu automatic choice between 5 and 6 (what the library runs)
 * Prints one line per shape and direction: name, direction, milliseconds, GFLOP/s.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu/cpu.h"

typedef struct {
    const char *name;
    int N, C, H, K, R, stride, pad;
} lab_shape;

/* ResNet-20 (batch 128) and ResNet-18 with the CIFAR stem (batch 64). */
static const lab_shape shapes[] = {
    {"r20.conv1", 128, 3, 32, 16, 3, 1, 1},
    {"r20.s1.16x32", 128, 16, 32, 16, 3, 1, 1},
    {"r20.s2.16-32", 128, 16, 32, 32, 3, 2, 1},
    {"r20.s1.32x16", 128, 32, 16, 32, 3, 1, 1},
    {"r20.s2.32-64", 128, 32, 16, 64, 3, 2, 1},
    {"r20.s1.64x8", 128, 64, 8, 64, 3, 1, 1},
    {"r18.conv1", 64, 3, 32, 64, 3, 1, 1},
    {"r18.s1.64x32", 64, 64, 32, 64, 3, 1, 1},
    {"r18.s2.64-128", 64, 64, 32, 128, 3, 2, 1},
    {"r18.sc.64-128", 64, 64, 32, 128, 1, 2, 0},
    {"r18.s1.128x16", 64, 128, 16, 128, 3, 1, 1},
    {"r18.s2.128-256", 64, 128, 16, 256, 3, 2, 1},
    {"r18.sc.128-256", 64, 128, 16, 256, 1, 2, 0},
    {"r18.s1.256x8", 64, 256, 8, 256, 3, 1, 1},
    {"r18.s2.256-512", 64, 256, 8, 512, 3, 2, 1},
    {"r18.sc.256-512", 64, 256, 8, 512, 1, 2, 0},
    {"r18.s1.512x4", 64, 512, 4, 512, 3, 1, 1},
};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

static clockid_t lab_clock = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(lab_clock, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) * (1.0 / 16777216.0) - 0.5);
    }
}

static rn_conv_desc desc_of(const lab_shape *s, int N) {
    rn_conv_desc d = {.N = N, .C = s->C, .H = s->H, .W = s->H, .K = s->K, .R = s->R, .S = s->R,
                      .stride = s->stride, .pad = s->pad};
    d.Ho = (d.H + 2 * d.pad - d.R) / d.stride + 1;
    d.Wo = (d.W + 2 * d.pad - d.S) / d.stride + 1;
    return d;
}

/* ---- version 1: naive direct convolution (NCHW) -------------------------------------------- */

static void v1_forward(float *out, const float *in, const float *w, const rn_conv_desc *d, int nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++)
            for (int ho = 0; ho < d->Ho; ho++)
                for (int wo = 0; wo < d->Wo; wo++) {
                    float s = 0;
                    for (int c = 0; c < d->C; c++)
                        for (int r = 0; r < d->R; r++)
                            for (int q = 0; q < d->S; q++) {
                                int h = ho * d->stride - d->pad + r, x = wo * d->stride - d->pad + q;
                                if (h < 0 || h >= d->H || x < 0 || x >= d->W) continue;
                                s += in[(((size_t)n * d->C + c) * d->H + h) * d->W + x] *
                                     w[((k * d->C + c) * d->R + r) * d->S + q];
                            }
                    out[(((size_t)n * d->K + k) * d->Ho + ho) * d->Wo + wo] = s;
                }
}

/* din += (threads own images); dw += (threads own output channels). */
static void v1_backward(float *din, float *dw, const float *dout, const float *in, const float *w,
                        const rn_conv_desc *d, int nt) {
    if (din) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int n = 0; n < d->N; n++)
            for (int k = 0; k < d->K; k++)
                for (int ho = 0; ho < d->Ho; ho++)
                    for (int wo = 0; wo < d->Wo; wo++) {
                        float g = dout[(((size_t)n * d->K + k) * d->Ho + ho) * d->Wo + wo];
                        for (int c = 0; c < d->C; c++)
                            for (int r = 0; r < d->R; r++)
                                for (int q = 0; q < d->S; q++) {
                                    int h = ho * d->stride - d->pad + r, x = wo * d->stride - d->pad + q;
                                    if (h < 0 || h >= d->H || x < 0 || x >= d->W) continue;
                                    din[(((size_t)n * d->C + c) * d->H + h) * d->W + x] +=
                                        g * w[((k * d->C + c) * d->R + r) * d->S + q];
                                }
                    }
    }
    if (dw) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int k = 0; k < d->K; k++)
            for (int n = 0; n < d->N; n++)
                for (int ho = 0; ho < d->Ho; ho++)
                    for (int wo = 0; wo < d->Wo; wo++) {
                        float g = dout[(((size_t)n * d->K + k) * d->Ho + ho) * d->Wo + wo];
                        for (int c = 0; c < d->C; c++)
                            for (int r = 0; r < d->R; r++)
                                for (int q = 0; q < d->S; q++) {
                                    int h = ho * d->stride - d->pad + r, x = wo * d->stride - d->pad + q;
                                    if (h < 0 || h >= d->H || x < 0 || x >= d->W) continue;
                                    dw[((k * d->C + c) * d->R + r) * d->S + q] +=
                                        g * in[(((size_t)n * d->C + c) * d->H + h) * d->W + x];
                                }
                    }
    }
}

/* ---- running a version ---------------------------------------------------------------------- */

typedef struct {
    int version, nthreads, tile_p, tile_kb, chunk;
} lab_cfg;

static rn_cpu_conv_cfg cpu_cfg(const lab_cfg *lc) {
    rn_cpu_conv_cfg c = {.nthreads = lc->nthreads, .tile_p = lc->tile_p,
                         .tile_kb = lc->tile_kb, .chunk = lc->chunk};
    c.algo = lc->version == 6 ? RN_CONV_WINOGRAD : lc->version == 7 ? RN_CONV_AUTO : RN_CONV_DIRECT;
    c.isa = lc->version == 2 ? RN_ISA_PORTABLE : lc->version == 3 ? RN_ISA_AVX2 : RN_ISA_AVX512;
    if (c.isa > rn_cpu_isa_supported()) c.isa = rn_cpu_isa_supported();
    if (lc->version == 4 && !c.tile_p) c.tile_p = 8, c.tile_kb = 1;
    return c;
}

/* NCHW tensors of one shape. dir: 0 forward, 1 backward-data, 2 backward-weights. */
typedef struct {
    rn_conv_desc d;
    float *in, *w, *out, *dout, *din, *dw, *scratch;
} lab_problem;

static void problem_init(lab_problem *p, const lab_shape *s, int N, const lab_cfg *lc) {
    p->d = desc_of(s, N);
    const rn_conv_desc *d = &p->d;
    size_t nin = (size_t)d->N * d->C * d->H * d->W, nout = (size_t)d->N * d->K * d->Ho * d->Wo;
    size_t nw = (size_t)d->K * d->C * d->R * d->S;
    p->in = calloc(nin, sizeof(float));
    p->din = calloc(nin, sizeof(float));
    p->out = calloc(nout, sizeof(float));
    p->dout = calloc(nout, sizeof(float));
    p->w = malloc(nw * sizeof(float));
    p->dw = calloc(nw, sizeof(float));
    fill(p->in, nin, 1);
    fill(p->dout, nout, 2);
    fill(p->w, nw, 3);
    p->scratch = NULL;
    if (lc->version >= 2) {
        rn_cpu_conv_cfg c = cpu_cfg(lc);
        p->scratch = malloc(rn_cpu_conv2d_scratch_floats(d, &c) * sizeof(float));
    }
}

static void problem_free(lab_problem *p) {
    free(p->in); free(p->din); free(p->out); free(p->dout); free(p->w); free(p->dw); free(p->scratch);
}

static void run(lab_problem *p, const lab_cfg *lc, int dir) {
    if (lc->version == 1) {
        if (dir == 0) v1_forward(p->out, p->in, p->w, &p->d, lc->nthreads);
        else v1_backward(dir == 1 ? p->din : NULL, dir == 2 ? p->dw : NULL, p->dout, p->in, p->w, &p->d, lc->nthreads);
        return;
    }
    rn_cpu_conv_cfg c = cpu_cfg(lc);
    if (dir == 0) rn_cpu_conv2d_forward(p->out, p->in, p->w, NULL, &p->d, &c, p->scratch);
    else rn_cpu_conv2d_backward(dir == 1 ? p->din : NULL, dir == 2 ? p->dw : NULL, NULL, p->dout,
                                p->in, p->w, &p->d, &c, p->scratch);
}

/* The result of a direction, as NCHW (or KCRS) floats. */
static float *result(lab_problem *p, const lab_cfg *lc, int dir, size_t *n) {
    const rn_conv_desc *d = &p->d;
    if (dir == 2) {
        *n = (size_t)d->K * d->C * d->R * d->S;
        float *r = malloc(*n * sizeof(float));
        memcpy(r, p->dw, *n * sizeof(float));
        return r;
    }
    int C = dir == 0 ? d->K : d->C, H = dir == 0 ? d->Ho : d->H, W = dir == 0 ? d->Wo : d->W;
    const float *src = dir == 0 ? p->out : p->din;
    *n = (size_t)d->N * C * H * W;
    float *r = malloc(*n * sizeof(float));
    memcpy(r, src, *n * sizeof(float));
    return r;
}

static const char *dir_name[3] = {"fwd", "bwd_data", "bwd_weights"};

int main(int argc, char **argv) {
    lab_cfg lc = {.version = 5, .nthreads = 1};
    const char *only = NULL;
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-v")) lc.version = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-t")) lc.nthreads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-s")) only = argv[i + 1];
        else if (!strcmp(argv[i], "-r")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) lc.tile_p = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-k")) lc.tile_kb = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-c")) lc.chunk = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-m")) lab_clock = !strcmp(argv[i + 1], "cpu") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (lc.version < 1 || lc.version > 7) { fprintf(stderr, "versions: 1..7\n"); return 2; }
    for (int si = 0; si < NSHAPES; si++) {
        const lab_shape *s = &shapes[si];
        if (only && strcmp(only, s->name)) continue;
        /* check against version 1 on two images */
        lab_cfg ref = lc;
        ref.version = 1;
        lab_problem a, b;
        problem_init(&a, s, 2, &lc);
        problem_init(&b, s, 2, &ref);
        double err[3];
        for (int dir = 0; dir < 3; dir++) {
            run(&a, &lc, dir);
            run(&b, &ref, dir);
            size_t n;
            float *x = result(&a, &lc, dir, &n), *y = result(&b, &ref, dir, &n);
            err[dir] = 0;
            for (size_t i = 0; i < n; i++) err[dir] = fmax(err[dir], fabs(x[i] - y[i]) / (1 + fabs(y[i])));
            free(x);
            free(y);
        }
        problem_free(&a);
        problem_free(&b);
        /* time the full batch */
        lab_problem p;
        problem_init(&p, s, s->N, &lc);
        for (int dir = 0; dir < 3; dir++) {
            double flop = 2.0 * p.d.N * p.d.K * p.d.C * p.d.R * p.d.S * p.d.Ho * p.d.Wo;
            int r = lc.version == 1 ? 1 : reps;
            run(&p, &lc, dir); /* warm up */
            double best = 1e30;
            for (int i = 0; i < r; i++) {
                double t = now();
                run(&p, &lc, dir);
                t = now() - t;
                if (t < best) best = t;
            }
            printf("%-16s %-12s v%d t%d %9.3f ms %7.1f GFLOP/s  (max rel err %.1e)\n", s->name,
                   dir_name[dir], lc.version, lc.nthreads, best * 1e3,
                   flop / best * 1e-9, err[dir]);
            fflush(stdout);
        }
        problem_free(&p);
    }
    return 0;
}
