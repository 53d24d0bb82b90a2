/*
 * test_bf16.c — the bf16 convolutions and classifier (src/cpu/ files named bf16) against the fp32
 * reference kernels of src/ops, on every bf16 level this machine has (forced one by one):
 * forward (with bias, with the fused ReLU), backward-data, backward-weights, bias gradient,
 * over many shapes (odd sizes, stride 2, 1x1, the 7x7 stride-2 stem, batch 1, channel counts
 * that are not multiples of 16 or 32, images small enough to be grouped), on 1 and 2 threads.
 * Also: the portable rounding against AVX512_BF16's vcvtneps2bf16, bit for bit, and the
 * backend table.
 *
 * The bound, per output element e of a dot product of length L:
 *   Rounding a to bf16 (nearest even) gives a(1+d), |d| <= u = 2^-8 (8 significant bits), so the product of two
 *   rounded inputs is ab(1+d1)(1+d2) and the sum of L of them differs from the exact fp32
 *   one by at most (2u + u^2) * S_e, S_e = sum |a||b| (the same convolution run by the
 *   reference on |a| and |b|). Both our sum and the reference's are fp32 sums of L terms, in
 *   different orders: each within about L * 2^-24 * S_e of the exact sum.
 *   So   |ours - ref(a, b)|          <= (2u + u^2 + 2 (L+2) 2^-24) * S_e   (rounding applied)
 *   and  |ours - ref(bf16(a), bf16(b))| <= 2 (L+2) 2^-24 * S_e            (only the order)
 * The second check fails if an input is not rounded, or rounded another way; the first if
 * anything is off by more than bf16's rounding. Accumulated outputs add |start value| to S_e.
 */
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu/cpu.h"
#include "ops/backend.h"
#include "cpu/bf16.h"

static const double U = 1.0 / 256;          /* bf16 unit roundoff, 2^-8 */
static const double EPS32 = 1.0 / 16777216; /* 2^-24 */

/* ---- helpers ------------------------------------------------------------------------------ */

static float *fa(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *absdup(const float *x, size_t n) {
    float *y = fa(n);
    for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
    return y;
}
static float *rounddup(const float *x, size_t n) {
    float *y = fa(n);
    for (size_t i = 0; i < n; i++) y[i] = rn_bf16_round(x[i]);
    return y;
}
static float *fdup(const float *x, size_t n) {
    float *y = fa(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}
/* Scratch full of NaNs: a kernel that reads scratch it did not write shows it. */
static float *dirty(size_t n) {
    float *s = fa(n);
    for (size_t i = 0; i < n; i++) s[i] = NAN;
    return s;
}
static float *dirty_refill(float *s, size_t n) {
    for (size_t i = 0; i < n; i++) s[i] = NAN;
    return s;
}

/* Fails unless |got - ref| <= rel * scale + 1e-30 everywhere; prints the worst ratio. */
static void check_bound(const char *what, const float *got, const float *ref, const float *scale,
                        size_t n, double rel) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double err = fabs((double)got[i] - ref[i]), bound = rel * scale[i] + 1e-30;
        if (!(err <= bound))
            fail_msg("%s: element %zu is %.9g, reference %.9g: error %.3g above the bound %.3g", what,
                     i, got[i], ref[i], err, bound);
        if (err / bound > worst) worst = err / bound;
    }
    printf("    %-44s worst error / bound %.3f\n", what, worst);
}

static rn_conv_desc mkdesc(int N, int C, int H, int W, int K, int R, int S, int stride, int pad) {
    rn_conv_desc d = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = R, .S = S, .stride = stride, .pad = pad};
    rn_conv_desc_finish(&d);
    return d;
}

/* The levels to run: every one up to what this machine has (AVX2 and AVX512 run the portable
 * path, so portable stands for them). */
static int levels(rn_bf16_level *out) {
    int n = 0;
    out[n++] = RN_BF16_PORTABLE;
    if (rn_cpu_bf16_supported() >= RN_BF16_AVX512BF16) out[n++] = RN_BF16_AVX512BF16;
    if (rn_cpu_bf16_supported() >= RN_BF16_AMX) out[n++] = RN_BF16_AMX;
    return n;
}

/* ---- convolution ---------------------------------------------------------------------------- */

static void ref_forward(float *out, const float *in, const float *w, const float *bias,
                        const rn_conv_desc *d) {
    float *s = fa(rn_conv2d_scratch_floats(d, 1));
    rn_conv2d_forward(out, in, w, bias, d, s, 1);
    free(s);
}
static void ref_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, const rn_conv_desc *d) {
    float *s = fa(rn_conv2d_scratch_floats(d, 1));
    rn_conv2d_backward(din, dw, db, dout, in, w, d, s, 1);
    free(s);
}

static void check_conv(const rn_conv_desc *dd, rn_bf16_level level, int nthreads) {
    const rn_conv_desc d = *dd;
    const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * d.R * d.S;
    const size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
    char what[160];
    snprintf(what, sizeof what, "N%d C%d %dx%d K%d %dx%d s%d p%d, %s, %d thr", d.N, d.C, d.H, d.W,
             d.K, d.R, d.S, d.stride, d.pad, rn_cpu_bf16_level_name(level), nthreads);
    printf("  %s\n", what);
    float *in = fa(nin), *w = fa(nw), *bias = fa(d.K), *dout = fa(nout);
    tu_fill_uniform(in, nin, 1, -1.0f, 1.0f);
    tu_fill_uniform(w, nw, 2, -0.5f, 0.5f);
    tu_fill_uniform(bias, d.K, 3, -0.2f, 0.2f);
    tu_fill_uniform(dout, nout, 4, -1.0f, 1.0f);
    float *ain = absdup(in, nin), *aw = absdup(w, nw), *abias = absdup(bias, d.K), *adout = absdup(dout, nout);
    float *rin = rounddup(in, nin), *rw = rounddup(w, nw), *rdout = rounddup(dout, nout);
    const size_t ns = rn_cpu_bf16_conv2d_scratch_floats(&d, nthreads);

    /* forward: L = C*R*S */
    const double Lf = (double)d.C * d.R * d.S + 2;
    float *out = fa(nout), *ref = fa(nout), *rref = fa(nout), *scale = fa(nout);
    float *scratch = dirty(ns);
    rn_cpu_bf16_conv2d_forward(out, in, w, bias, &d, false, level, scratch, nthreads);
    ref_forward(ref, in, w, bias, &d);
    ref_forward(rref, rin, rw, bias, &d);
    ref_forward(scale, ain, aw, abias, &d);
    check_bound("forward vs fp32", out, ref, scale, nout, 2 * U + U * U + 2 * Lf * EPS32);
    check_bound("forward vs fp32 on bf16 inputs", out, rref, scale, nout, 2 * Lf * EPS32);
    /* fused ReLU, no bias */
    rn_cpu_bf16_conv2d_forward(out, in, w, NULL, &d, true, level, dirty_refill(scratch, ns), nthreads);
    ref_forward(rref, rin, rw, NULL, &d);
    for (size_t i = 0; i < nout; i++) rref[i] = rref[i] > 0 ? rref[i] : 0.0f;
    check_bound("forward+relu vs fp32 on bf16 inputs", out, rref, scale, nout, 2 * Lf * EPS32);

    /* backward: gradients start at nonzero values (they accumulate) */
    float *din0 = fa(nin), *dw0 = fa(nw), *db0 = fa(d.K);
    tu_fill_uniform(din0, nin, 5, -1.0f, 1.0f);
    tu_fill_uniform(dw0, nw, 6, -1.0f, 1.0f);
    tu_fill_uniform(db0, d.K, 7, -1.0f, 1.0f);
    float *din = fdup(din0, nin), *dw = fdup(dw0, nw), *db = fdup(db0, d.K);
    rn_cpu_bf16_conv2d_backward(din, dw, db, dout, in, w, &d, level, dirty_refill(scratch, ns), nthreads);
    float *rdin = fdup(din0, nin), *rdw = fdup(dw0, nw), *rdb = fdup(db0, d.K);
    float *qdin = fdup(din0, nin), *qdw = fdup(dw0, nw), *qdb = fdup(db0, d.K);
    float *sdin = absdup(din0, nin), *sdw = absdup(dw0, nw), *sdb = absdup(db0, d.K);
    ref_backward(rdin, rdw, rdb, dout, in, w, &d);
    ref_backward(qdin, qdw, qdb, rdout, rin, rw, &d);
    ref_backward(sdin, sdw, sdb, adout, ain, aw, &d);
    const double Ld = (double)d.K * d.R * d.S + 2, Lw = (double)d.N * d.Ho * d.Wo + 2;
    check_bound("backward-data vs fp32", din, rdin, sdin, nin, 2 * U + U * U + 2 * Ld * EPS32);
    check_bound("backward-data vs fp32 on bf16 inputs", din, qdin, sdin, nin, 2 * Ld * EPS32);
    check_bound("backward-weights vs fp32", dw, rdw, sdw, nw, 2 * U + U * U + 2 * Lw * EPS32);
    check_bound("backward-weights vs fp32 on bf16 inputs", dw, qdw, sdw, nw, 2 * Lw * EPS32);
    /* the bias gradient is an fp32 sum of fp32 dout */
    check_bound("bias gradient vs fp32", db, rdb, sdb, d.K, 2 * Lw * EPS32);

    /* each gradient alone (NULL others) gives the same numbers */
    float *din2 = fdup(din0, nin);
    rn_cpu_bf16_conv2d_backward(din2, NULL, NULL, dout, in, w, &d, level, dirty_refill(scratch, ns), nthreads);
    assert_memory_equal(din2, din, nin * sizeof(float));
    float *dw2 = fdup(dw0, nw);
    rn_cpu_bf16_conv2d_backward(NULL, dw2, NULL, dout, in, w, &d, level, dirty_refill(scratch, ns), nthreads);
    assert_memory_equal(dw2, dw, nw * sizeof(float));

    float *all[] = {in, w, bias, dout, ain, aw, abias, adout, rin, rw, rdout, out, ref, rref,
                    scale, scratch, din0, dw0, db0, din, dw, db, rdin, rdw, rdb, qdin, qdw, qdb,
                    sdin, sdw, sdb, din2, dw2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static const int SHAPES[][9] = {
    /* N, C, H, W, K, R, S, stride, pad */
    {2, 3, 9, 11, 5, 3, 3, 1, 1},     /* odd everything */
    {2, 16, 10, 10, 32, 3, 3, 2, 1},  /* stride 2 */
    {2, 8, 8, 8, 16, 3, 3, 2, 1},     /* stride 2, the last input row unused */
    {3, 24, 7, 7, 20, 1, 1, 1, 0},    /* 1x1 */
    {2, 20, 9, 9, 36, 1, 1, 2, 0},    /* 1x1 stride 2 (a projection shortcut) */
    {2, 3, 23, 23, 16, 7, 7, 2, 3},   /* the 7x7 stride-2 stem */
    {1, 17, 8, 8, 33, 3, 3, 1, 1},    /* batch 1 */
    {2, 33, 6, 6, 45, 3, 3, 1, 1},    /* channels past multiples of 16 and 32 */
    {5, 12, 3, 3, 24, 3, 3, 1, 1},    /* 3x3 images: groups of 3, blocks spanning images */
    {3, 10, 4, 4, 8, 3, 3, 1, 1},     /* 4x4 images */
    {2, 7, 13, 12, 9, 5, 5, 1, 2},    /* 5x5 */
    {2, 16, 7, 7, 16, 3, 3, 1, 0},    /* no padding */
    {2, 4, 6, 6, 4, 1, 1, 1, 1},      /* padding larger than the kernel */
    {2, 32, 16, 16, 32, 3, 3, 1, 1},  /* a ResNet layer */
    {2, 64, 5, 5, 64, 3, 3, 1, 1},    /* contraction of 576 */
    {2, 6, 11, 10, 7, 3, 3, 3, 1},    /* stride 3: 9 backward-data phases */
    {1, 4, 9, 9, 3, 2, 2, 2, 0},      /* an even kernel */
    {2, 18, 14, 14, 16, 1, 1, 2, 0},  /* 1x1 stride 2: phases without taps */
    {1, 5, 1, 22, 6, 1, 3, 1, 0},     /* 1x3 kernel, rows read in place, a partial vector */
    {2, 16, 3, 32, 24, 3, 3, 1, 1},   /* rows of 32 read in place, blocks of 48 */
    {2, 8, 6, 32, 8, 3, 3, 2, 1},     /* stride 2, backward phases of rows of 16 */
    /* filters past 512 KB packed: blocks run together over chunks of the contraction */
    {3, 301, 5, 5, 100, 3, 3, 1, 1},
    {16, 520, 4, 4, 64, 3, 3, 1, 1},  /* and blocks spanning images */
};

static void test_conv_levels(void **state) {
    (void)state;
    rn_bf16_level lv[3];
    const int nl = levels(lv);
    for (int l = 0; l < nl; l++)
        for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
            const int *s = SHAPES[i];
            rn_conv_desc d = mkdesc(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]);
            check_conv(&d, lv[l], 2);
            if (i % 4 == 0) check_conv(&d, lv[l], 1);
        }
}

/* AMX tiles: only where the CPU has them and the kernel grants the tile state. */
static void test_conv_amx(void **state) {
    (void)state;
    if (!rn_cpu_bf16_amx_usable()) {
        const char *why = rn_cpu_bf16_note();
        printf("  skipped: %s\n", why ? why : "this CPU has no AMX-BF16");
        skip();
    }
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        const int *s = SHAPES[i];
        rn_conv_desc d = mkdesc(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8]);
        check_conv(&d, RN_BF16_AMX, 2);
    }
}

/* The same level gives bit-identical results from run to run, and the thread count does not
 * change the forward and backward-data results. */
static void test_conv_deterministic(void **state) {
    (void)state;
    rn_conv_desc d = mkdesc(3, 16, 9, 9, 24, 3, 3, 1, 1);
    const size_t nin = (size_t)d.N * d.C * d.H * d.W, nw = (size_t)d.K * d.C * 9;
    const size_t nout = (size_t)d.N * d.K * d.Ho * d.Wo;
    float *in = fa(nin), *w = fa(nw), *dout = fa(nout);
    tu_fill_uniform(in, nin, 11, -1, 1);
    tu_fill_uniform(w, nw, 12, -1, 1);
    tu_fill_uniform(dout, nout, 13, -1, 1);
    float *o1 = fa(nout), *o2 = fa(nout), *o3 = fa(nout), *g1 = fa(nin), *g2 = fa(nin);
    float *s = fa(rn_cpu_bf16_conv2d_scratch_floats(&d, 2));
    const rn_bf16_level top = rn_cpu_bf16_level();
    rn_cpu_bf16_conv2d_forward(o1, in, w, NULL, &d, false, top, s, 2);
    rn_cpu_bf16_conv2d_forward(o2, in, w, NULL, &d, false, top, s, 2);
    rn_cpu_bf16_conv2d_forward(o3, in, w, NULL, &d, false, top, s, 1);
    assert_memory_equal(o1, o2, nout * sizeof(float));
    assert_memory_equal(o1, o3, nout * sizeof(float));
    rn_cpu_bf16_conv2d_backward(g1, NULL, NULL, dout, in, w, &d, top, s, 2);
    rn_cpu_bf16_conv2d_backward(g2, NULL, NULL, dout, in, w, &d, top, s, 1);
    assert_memory_equal(g1, g2, nin * sizeof(float));
    float *all[] = {in, w, dout, o1, o2, o3, g1, g2, s};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

/* ---- linear ------------------------------------------------------------------------------ */

static void check_linear(int N, int I, int O, rn_bf16_level level) {
    printf("  linear N%d I%d O%d, %s\n", N, I, O, rn_cpu_bf16_level_name(level));
    const size_t ni = (size_t)N * I, nw = (size_t)O * I, no = (size_t)N * O;
    float *in = fa(ni), *w = fa(nw), *b = fa(O), *dout = fa(no);
    tu_fill_uniform(in, ni, 21, -1, 1);
    tu_fill_uniform(w, nw, 22, -1, 1);
    tu_fill_uniform(b, O, 23, -1, 1);
    tu_fill_uniform(dout, no, 24, -1, 1);
    float *ain = absdup(in, ni), *aw = absdup(w, nw), *ab = absdup(b, O), *adout = absdup(dout, no);
    float *rin = rounddup(in, ni), *rw = rounddup(w, nw), *rdout = rounddup(dout, no);
    float *out = fa(no), *ref = fa(no), *rref = fa(no), *scale = fa(no);
    rn_cpu_bf16_linear_forward(out, in, w, b, N, I, O, level);
    rn_linear_forward(ref, in, w, b, N, I, O);
    rn_linear_forward(rref, rin, rw, b, N, I, O);
    rn_linear_forward(scale, ain, aw, ab, N, I, O);
    const double Lf = I + 2, Ld = O + 2, Lw = N + 2;
    check_bound("linear forward vs fp32", out, ref, scale, no, 2 * U + U * U + 2 * Lf * EPS32);
    check_bound("linear forward vs fp32 on bf16 inputs", out, rref, scale, no, 2 * Lf * EPS32);
    float *din = fa(ni), *dw = fa(nw), *db = fa(O), *rdin = fa(ni), *rdw = fa(nw), *rdb = fa(O);
    float *qdin = fa(ni), *qdw = fa(nw), *qdb = fa(O), *sdin = fa(ni), *sdw = fa(nw), *sdb = fa(O);
    tu_fill_uniform(din, ni, 25, -1, 1);
    tu_fill_uniform(dw, nw, 26, -1, 1);
    memcpy(rdin, din, ni * 4), memcpy(qdin, din, ni * 4), memcpy(rdw, dw, nw * 4), memcpy(qdw, dw, nw * 4);
    for (size_t i = 0; i < ni; i++) sdin[i] = fabsf(din[i]);
    for (size_t i = 0; i < nw; i++) sdw[i] = fabsf(dw[i]);
    rn_cpu_bf16_linear_backward(din, dw, db, dout, in, w, N, I, O, level);
    rn_linear_backward(rdin, rdw, rdb, dout, in, w, N, I, O);
    rn_linear_backward(qdin, qdw, qdb, rdout, rin, rw, N, I, O);
    rn_linear_backward(sdin, sdw, sdb, adout, ain, aw, N, I, O);
    check_bound("linear backward-data vs fp32", din, rdin, sdin, ni, 2 * U + U * U + 2 * Ld * EPS32);
    check_bound("linear backward-data vs fp32 on bf16 inputs", din, qdin, sdin, ni, 2 * Ld * EPS32);
    check_bound("linear backward-weights vs fp32", dw, rdw, sdw, nw, 2 * U + U * U + 2 * Lw * EPS32);
    check_bound("linear backward-weights vs fp32 on bf16", dw, qdw, sdw, nw, 2 * Lw * EPS32);
    check_bound("linear bias gradient vs fp32", db, rdb, sdb, O, 2 * Lw * EPS32);
    float *all[] = {in, w, b, dout, ain, aw, ab, adout, rin, rw, rdout, out, ref, rref, scale,
                    din, dw, db, rdin, rdw, rdb, qdin, qdw, qdb, sdin, sdw, sdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
}

static void test_linear_levels(void **state) {
    (void)state;
    rn_bf16_level lv[3];
    const int nl = levels(lv);
    for (int l = 0; l < nl; l++) {
        check_linear(3, 17, 10, lv[l]);
        check_linear(64, 64, 10, lv[l]);
        check_linear(5, 130, 70, lv[l]);  /* several chunks of pairs and column blocks */
        check_linear(1, 1, 1, lv[l]);
    }
}

/* ---- rounding --------------------------------------------------------------------------- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_rounding_known_values(void **state) {
    (void)state;
    assert_int_equal(rn_bf16_from_float(1.0f), 0x3f80);
    assert_int_equal(rn_bf16_from_float(1.0f + 1.0f / 256), 0x3f80);      /* tie -> even (down) */
    assert_int_equal(rn_bf16_from_float(1.0f + 3.0f / 256), 0x3f82);      /* tie -> even (up) */
    assert_int_equal(rn_bf16_from_float(1.0f + 1.0f / 256 + 1.0f / 65536), 0x3f81); /* above the tie */
    assert_int_equal(rn_bf16_from_float(-2.5f), 0xc020);
    assert_int_equal(rn_bf16_from_float(FLT_MAX), 0x7f80);                /* rounds up to inf */
    assert_int_equal(rn_bf16_from_float(INFINITY), 0x7f80);
    assert_int_equal(rn_bf16_from_float(from_bits(0x00000001)), 0x0000);  /* denormal -> 0 */
    assert_int_equal(rn_bf16_from_float(from_bits(0x807fffff)), 0x8000);  /* -denormal -> -0 */
    assert_true(isnan(rn_bf16_round(NAN)));
    assert_true(isnan(rn_bf16_to_float(rn_bf16_from_float(from_bits(0x7f800001))))); /* sNaN stays NaN */
    /* the relative error bound the tests rely on */
    float x[4096];
    tu_fill_uniform(x, 4096, 31, -1000.0f, 1000.0f);
    for (int i = 0; i < 4096; i++) assert_true(fabs(rn_bf16_round(x[i]) - (double)x[i]) <= U * fabs(x[i]));
}

/* The portable rounding and AVX512_BF16's vcvtneps2bf16 agree bit for bit, on random values
 * of every magnitude and on the special ones. */
static void test_rounding_matches_avx512bf16(void **state) {
    (void)state;
#if defined(__x86_64__)
    if (rn_cpu_bf16_supported() < RN_BF16_AVX512BF16) {
        printf("  skipped: this CPU has no AVX512_BF16\n");
        skip();
    }
    enum { N = 1 << 16 };
    float *x = fa(N);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) { /* random bit patterns: every exponent, denormals, NaNs */
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = from_bits((uint32_t)(s >> 16));
    }
    const uint32_t special[] = {0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000,
                                0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000, 0x7fc00000,
                                0x7f800001, 0xffffffff, 0x3f808000, 0x3f818000, 0x3f808001,
                                0x3f7fffff, 0x4effff80};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[i] = from_bits(special[i]);
    uint16_t *a = calloc(N, 2), *b = calloc(N, 2);
    rn_bf16_convert_portable(a, x, N);
    rn_bf16_convert_avx512bf16(b, x, N);
    for (int i = 0; i < N; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        if (a[i] != b[i]) fail_msg("0x%08x: portable 0x%04x, vcvtneps2bf16 0x%04x", u, a[i], b[i]);
    }
    rn_bf16_convert_avx512bf16(b, x + 1, 13); /* a tail shorter than a vector */
    for (int i = 0; i < 13; i++) assert_int_equal(a[i + 1], b[i]);
    free(x), free(a), free(b);
#else
    skip();
#endif
}

/* ---- levels and the backend ---------------------------------------------------------------- */

/* RN_ISA lowers the level (never raises it); each value is tried in a fresh child process,
 * as the level is read once per process. Runs before anything here asks for the level. */
static void test_isa_env(void **state) {
    (void)state;
    const char *names[] = {"portable", "avx2", "avx512", "avx512bf16", "amx"};
    const rn_bf16_level top = rn_cpu_bf16_supported();
    for (int i = 0; i < 5; i++) {
        const rn_bf16_level want = (rn_bf16_level)i < top ? (rn_bf16_level)i : top;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            setenv("RN_ISA", names[i], 1);
            _exit(rn_cpu_bf16_level() == want ? 0 : 1);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("RN_ISA=%s: expected level %s", names[i], rn_cpu_bf16_level_name(want));
    }
}

static void test_levels(void **state) {
    (void)state;
    rn_bf16_level l;
    const char *names[] = {"portable", "avx2", "avx512", "avx512bf16", "amx"};
    for (int i = 0; i < 5; i++) {
        assert_true(rn_cpu_bf16_level_parse(names[i], &l));
        assert_int_equal(l, i);
        assert_string_equal(rn_cpu_bf16_level_name(l), names[i]);
    }
    assert_false(rn_cpu_bf16_level_parse("avx1024", &l));
    assert_true(rn_cpu_bf16_level() <= rn_cpu_bf16_supported());
    printf("  this CPU: %s (running %s)\n", rn_cpu_bf16_level_name(rn_cpu_bf16_supported()),
           rn_cpu_bf16_level_name(rn_cpu_bf16_level()));
}

/* The table: bf16 convolution and linear entries, the cpu backend's fp32 kernels elsewhere. */
static void test_backend_table(void **state) {
    (void)state;
    const rn_backend *b = &rn_backend_cpu_bf16, *c = &rn_backend_cpu;
    assert_string_equal(b->name, "cpu-bf16");
    assert_ptr_equal(b->batchnorm_relu_forward_train, c->batchnorm_relu_forward_train);
    assert_ptr_equal(b->batchnorm_relu_backward, c->batchnorm_relu_backward);
    assert_ptr_equal(b->add_relu_backward, c->add_relu_backward);
    assert_ptr_equal(b->avgpool_forward, c->avgpool_forward);
    assert_ptr_equal(b->maxpool_backward, c->maxpool_backward);
    assert_ptr_equal(b->shortcut_a_forward, c->shortcut_a_forward);
    /* its convolution is the bf16 one at the running level */
    rn_conv_desc d = mkdesc(2, 5, 6, 6, 7, 3, 3, 1, 1);
    const size_t nin = 2 * 5 * 36, nw = 7 * 5 * 9, nout = 2 * 7 * 36;
    float *in = fa(nin), *w = fa(nw), *o1 = fa(nout), *o2 = fa(nout);
    tu_fill_uniform(in, nin, 41, -1, 1);
    tu_fill_uniform(w, nw, 42, -1, 1);
    float *s = fa(b->conv2d_scratch_floats(&d, 2));
    b->conv2d_forward(o1, in, w, NULL, &d, s, 2);
    rn_cpu_bf16_conv2d_forward(o2, in, w, NULL, &d, false, rn_cpu_bf16_level(), s, 2);
    assert_memory_equal(o1, o2, nout * sizeof(float));
    free(in), free(w), free(o1), free(o2), free(s);
}

/* ---- training ---------------------------------------------------------------------------- */

/* Losses of `steps` SGD steps (lr 0.05, no momentum) of resnet8 on one fixed batch of 32
 * synthetic images with the given backend table, one thread, the same initial weights. */
static void train_losses(const rn_backend *b, float *losses, int steps) {
    rn_ctx *ctx = NULL;
    rn_model *m = NULL;
    TU_OK(rn_ctx_create(&ctx, "cpu", 1));
    ctx->backend = b; /* the table itself ("cpu-bf16" is not in rn_backend_find's list) */
    TU_OK(rn_model_create(&m, "resnet8", NULL, 7));
    enum { B = 32, K = 10 };
    TU_OK(rn_model_reserve(m, ctx, B));
    float *x = fa((size_t)B * 3 * 32 * 32), probs[B * K], dl[B * K];
    int labels[B];
    tu_fill_uniform(x, (size_t)B * 3 * 32 * 32, 51, -1, 1);
    for (int i = 0; i < B; i++) labels[i] = (i * 7) % K;
    size_t np = 0, ng = 0;
    float *p = rn_model_params(m, &np), *g = rn_model_grads(m, &ng);
    assert_int_equal(np, ng);
    for (int it = 0; it < steps; it++) {
        const float *logits;
        TU_OK(rn_model_forward(m, ctx, x, B, RN_MODE_TRAIN, &logits));
        losses[it] = rn_softmax_xent_forward(probs, logits, labels, B, K, 0);
        rn_softmax_xent_backward(dl, probs, labels, B, K, 0, 1);
        rn_model_zero_grad(m);
        TU_OK(rn_model_backward(m, ctx, dl));
        for (size_t i = 0; i < np; i++) p[i] -= 0.05f * g[i];
    }
    free(x);
    rn_model_free(m);
    rn_ctx_free(ctx);
}

/* 100 bf16 training steps follow the fp32 run's loss trajectory. Tolerance: every loss within
 * 0.02 + 2% of the fp32 one. Each bf16 convolution is off by at most ~2^-8 relative per output
 * (the bound above; with cancellation usually far less), which through 8 layers and 100
 * updates moved the loss by at most 0.0045 when this was written (2.93 -> 0.29), a fifth of
 * the band; a wrong gradient (a kernel summing the wrong products) leaves it within a few
 * steps. Both runs must also learn (loss halved). */
static void test_training_trajectory(void **state) {
    (void)state;
    enum { STEPS = 100 };
    float f32[STEPS], b16[STEPS];
    train_losses(&rn_backend_cpu, f32, STEPS);
    train_losses(&rn_backend_cpu_bf16, b16, STEPS);
    double worst = 0;
    for (int i = 0; i < STEPS; i++) {
        const double d = fabs((double)b16[i] - f32[i]), tol = 0.02 + 0.02 * fabs(f32[i]);
        if (!(d <= tol)) fail_msg("step %d: bf16 loss %.5f, fp32 %.5f (tolerance %.4f)", i, b16[i], f32[i], tol);
        if (d > worst) worst = d;
    }
    printf("  losses: fp32 %.4f -> %.4f, bf16 %.4f -> %.4f, largest difference %.5f\n", f32[0],
           f32[STEPS - 1], b16[0], b16[STEPS - 1], worst);
    assert_true(f32[STEPS - 1] < 0.5f * f32[0]);
    assert_true(b16[STEPS - 1] < 0.5f * b16[0]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_env),
        cmocka_unit_test(test_rounding_known_values),
        cmocka_unit_test(test_rounding_matches_avx512bf16),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_conv_levels),
        cmocka_unit_test(test_conv_amx),
        cmocka_unit_test(test_conv_deterministic),
        cmocka_unit_test(test_linear_levels),
        cmocka_unit_test(test_backend_table),
        cmocka_unit_test(test_training_trajectory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
