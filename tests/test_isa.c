/*
 * test_isa.c — RN_ISA=portable|avx2|avx512 really chooses the kernels that run. The level is
 * read once per process (rn_cpu_isa_detect caches it), so each value is tried in a child
 * process: this program run again with `--child` under that RN_ISA. The child reports
 *   detect <level>            what rn_cpu_isa_detect returned
 *   bf16 <level>              what rn_cpu_bf16_level returned (the same RN_ISA, one ladder:
 *                             avx512bf16 and amx lower the bf16 kernels only)
 *   conv <levels>             the levels whose convolution kernel, called directly with that
 *                             level, gives bit for bit what the "cpu" backend's convolution
 *                             gives (forward, input and weight gradients)
 *   model <hash>              a hash of the logits and every gradient of one resnet8 training
 *                             step on the "cpu" backend (the public API, end to end)
 *   sgemm <kernels>           the micro-kernels of rn_sgemm_with that give rn_sgemm's result
 * and the parent asserts: each level is min(RN_ISA, what the machine has) (unset or unknown:
 * what the machine has); the backend's convolution is bit for bit that level's kernel and not
 * a kernel that rounds differently; the whole step matches the step of the level RN_ISA
 * resolves to. The AVX2 and AVX-512 kernels give identical bits (same summation order), so
 * results tell portable from vector code; which vector level runs is told by rn_cpu_isa_detect,
 * the value every kernel dispatch reads.
 *
 * rn_sgemm (src/ops/gemm.c), which runs every classifier, follows RN_ISA too
 * (test_isa_selects_sgemm).
 */
#include "testutil.h"

#include "ops/backend.h"
#include "cpu/cpu.h"
#include "ops/gemm.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- what the child computes ----------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

/* The convolution of the check: 2 images of 16 channels, 9x9 (a tail past the vector width),
 * 24 output channels (a partial channel block), 3x3, pad 1. */
static rn_conv_desc conv_shape(void) {
    rn_conv_desc d = {.N = 2, .C = 16, .H = 9, .W = 9, .K = 24, .R = 3, .S = 3, .stride = 1, .pad = 1};
    rn_conv_desc_finish(&d);
    return d;
}

typedef struct {
    float *in, *w, *bias, *dout, *out, *din, *dw; /* shapes of conv_shape() */
    size_t nin, nw, nout;
} conv_run;

static void conv_alloc(conv_run *r, const rn_conv_desc *d) {
    r->nin = (size_t)d->N * d->C * d->H * d->W;
    r->nw = (size_t)d->K * d->C * d->R * d->S;
    r->nout = (size_t)d->N * d->K * d->Ho * d->Wo;
    r->in = malloc(sizeof(float) * r->nin);
    r->w = malloc(sizeof(float) * r->nw);
    r->bias = malloc(sizeof(float) * d->K);
    r->dout = malloc(sizeof(float) * r->nout);
    r->out = calloc(r->nout, sizeof(float));
    r->din = calloc(r->nin, sizeof(float));
    r->dw = calloc(r->nw, sizeof(float));
    assert_true(r->in && r->w && r->bias && r->dout && r->out && r->din && r->dw);
    tu_fill_uniform(r->in, r->nin, 1, -1, 1);
    tu_fill_uniform(r->w, r->nw, 2, -0.3f, 0.3f);
    tu_fill_uniform(r->bias, d->K, 3, -0.1f, 0.1f);
    tu_fill_uniform(r->dout, r->nout, 4, -1, 1);
}

static void conv_free(conv_run *r) {
    free(r->in), free(r->w), free(r->bias), free(r->dout), free(r->out), free(r->din), free(r->dw);
}

static bool conv_same(const conv_run *a, const conv_run *b) {
    return memcmp(a->out, b->out, sizeof(float) * a->nout) == 0 &&
           memcmp(a->din, b->din, sizeof(float) * a->nin) == 0 &&
           memcmp(a->dw, b->dw, sizeof(float) * a->nw) == 0;
}

/* The direct convolution kernel at level `isa` (forward and backward, one thread). */
static void conv_at_level(conv_run *r, rn_isa isa) {
    rn_conv_desc d = conv_shape();
    rn_cpu_conv_cfg cfg = {.isa = isa, .nthreads = 1, .algo = RN_CONV_DIRECT};
    float *scratch = malloc(sizeof(float) * (rn_cpu_conv2d_scratch_floats(&d, &cfg) + 1));
    assert_non_null(scratch);
    rn_cpu_conv2d_forward(r->out, r->in, r->w, r->bias, &d, &cfg, scratch);
    rn_cpu_conv2d_backward(r->din, r->dw, NULL, r->dout, r->in, r->w, &d, &cfg, scratch);
    free(scratch);
}

/* The "cpu" backend's convolution, at whatever level it picks (one thread). */
static void conv_by_backend(conv_run *r) {
    rn_conv_desc d = conv_shape();
    const rn_backend *be = rn_backend_find("cpu");
    assert_non_null(be);
    float *scratch = malloc(sizeof(float) * (be->conv2d_scratch_floats(&d, 1) + 1));
    assert_non_null(scratch);
    be->conv2d_forward(r->out, r->in, r->w, r->bias, &d, scratch, 1);
    be->conv2d_backward(r->din, r->dw, NULL, r->dout, r->in, r->w, &d, scratch, 1);
    free(scratch);
}

/* One training step of resnet8 (3x8x8, batch 4, seed 5) on the "cpu" backend, one thread:
 * a hash of the logits and of every gradient. */
static uint64_t model_step_hash(void) {
    rn_model *m;
    rn_ctx *ctx;
    rn_model_opts o = {.in_channels = 3, .in_height = 8, .in_width = 8, .num_classes = 10};
    enum { B = 4 };
    TU_OK(rn_model_create(&m, "resnet8", &o, 5));
    TU_OK(rn_ctx_create(&ctx, "cpu", 1));
    TU_OK(rn_model_reserve(m, ctx, B));
    float x[B * 3 * 8 * 8], probs[B * 10], dl[B * 10];
    int labels[B] = {1, 3, 5, 7};
    tu_fill_uniform(x, sizeof x / sizeof x[0], 6, -2, 2);
    const float *logits;
    TU_OK(rn_model_forward(m, ctx, x, B, RN_MODE_TRAIN, &logits));
    uint64_t h = fnv1a(0xCBF29CE484222325ull, logits, sizeof(float) * B * 10);
    rn_softmax_xent_forward(probs, logits, labels, B, 10, 0.0f);
    rn_softmax_xent_backward(dl, probs, labels, B, 10, 0.0f, 1.0f);
    rn_model_zero_grad(m);
    TU_OK(rn_model_backward(m, ctx, dl));
    size_t ng;
    const float *g = rn_model_grads(m, &ng);
    h = fnv1a(h, g, sizeof(float) * ng);
    rn_ctx_free(ctx);
    rn_model_free(m);
    return h;
}

/* rn_sgemm's product of a 37x61 and a 61x53 matrix, and rn_sgemm_with's on kernel `name`
 * (false if this machine lacks it). */
enum { GM = 37, GN = 53, GK = 61 };
static void sgemm_inputs(float *a, float *b) {
    tu_fill_uniform(a, GM * GK, 8, -1, 1);
    tu_fill_uniform(b, GK * GN, 9, -1, 1);
}

/* The level names in the order of rn_isa, and rn_sgemm_with's name for each. */
static const char *const level_names[] = {"portable", "avx2", "avx512"};
static const char *const sgemm_names[] = {"generic", "avx2", "avx512"};

static int child(void) {
    printf("detect %s\n", rn_cpu_isa_name(rn_cpu_isa_detect()));
    printf("bf16 %s\n", rn_cpu_bf16_level_name(rn_cpu_bf16_level()));
    rn_conv_desc d = conv_shape();
    conv_run be, lv;
    conv_alloc(&be, &d);
    conv_by_backend(&be);
    printf("conv");
    for (int l = RN_ISA_PORTABLE; l <= (int)rn_cpu_isa_supported(); l++) {
        conv_alloc(&lv, &d);
        conv_at_level(&lv, (rn_isa)l);
        if (conv_same(&be, &lv)) printf(" %s", level_names[l]);
        conv_free(&lv);
    }
    printf("\n");
    conv_free(&be);
    printf("model %016llx\n", (unsigned long long)model_step_hash());
    static float a[GM * GK], b[GK * GN], c[GM * GN], ck[GM * GN];
    sgemm_inputs(a, b);
    rn_sgemm(false, false, GM, GN, GK, 1.0f, a, GK, b, GN, 0.0f, c, GN);
    printf("sgemm");
    for (int l = 0; l < 3; l++)
        if (rn_sgemm_with(sgemm_names[l], false, false, GM, GN, GK, 1.0f, a, GK, b, GN, 0.0f, ck,
                          GN) &&
            memcmp(c, ck, sizeof c) == 0)
            printf(" %s", sgemm_names[l]);
    printf("\n");
    return 0;
}

/* ---- the parent: one child per RN_ISA value -------------------------------------------- */

typedef struct {
    char detect[256];
    char bf16[256];
    char conv[256]; /* space-separated level names, leading space */
    char sgemm[256];
    unsigned long long model;
} report;

/* Runs this program with --child under RN_ISA=value (NULL: RN_ISA unset) and parses its
 * report. */
static report run_child(const char *value) {
    char self[1024], cmd[1400];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(len > 0);
    self[len] = 0;
    if (value) snprintf(cmd, sizeof cmd, "env RN_ISA='%s' '%s' --child", value, self);
    else snprintf(cmd, sizeof cmd, "env -u RN_ISA '%s' --child", self);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    report r = {0};
    char line[256];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "detect ", 7) == 0) snprintf(r.detect, sizeof r.detect, "%s", line + 7);
        else if (strncmp(line, "bf16 ", 5) == 0) snprintf(r.bf16, sizeof r.bf16, "%s", line + 5);
        else if (strncmp(line, "conv", 4) == 0) snprintf(r.conv, sizeof r.conv, "%s", line + 4);
        else if (strncmp(line, "sgemm", 5) == 0) snprintf(r.sgemm, sizeof r.sgemm, "%s", line + 5);
        else if (strncmp(line, "model ", 6) == 0) r.model = strtoull(line + 6, NULL, 16);
    }
    int rc = pclose(f);
    if (rc != 0 || !r.detect[0] || !r.model)
        fail_msg("%s: exit status %d, incomplete report (detect '%s')", cmd, rc, r.detect);
    print_message("    RN_ISA=%s: detect %s, bf16 %s, cpu backend's convolution = the kernel of:%s; "
                  "model step %016llx; rn_sgemm = kernel:%s\n", value ? value : "(unset)",
                  r.detect, r.bf16, r.conv, r.model, r.sgemm);
    return r;
}

/* The fp32 level a value of RN_ISA should give on this machine (names above avx512 lower
 * nothing here). */
static rn_isa expected_level(const char *value) {
    rn_isa want, top = rn_cpu_isa_supported();
    if (!value || !rn_cpu_isa_parse(value, &want) || want > top) return top;
    return want;
}

/* The bf16 level it should give. */
static rn_bf16_level expected_bf16(const char *value) {
    rn_bf16_level want, top = rn_cpu_bf16_supported();
    if (!value || !rn_cpu_bf16_level_parse(value, &want) || want > top) return top;
    return want;
}

static const char *const values[] = {NULL, "portable", "avx2", "avx512", "avx512bf16", "amx",
                                     "sse9"};
#define NVALUES (sizeof values / sizeof values[0])

/* rn_cpu_isa_detect and rn_cpu_bf16_level follow one RN_ISA, down to portable; unknown or
 * unset: the machine's best. */
static void test_isa_env_sets_level(void **state) {
    (void)state;
    print_message("    this machine supports %s (bf16: %s)\n",
                  rn_cpu_isa_name(rn_cpu_isa_supported()),
                  rn_cpu_bf16_level_name(rn_cpu_bf16_supported()));
    for (size_t i = 0; i < NVALUES; i++) {
        report r = run_child(values[i]);
        assert_string_equal(r.detect, rn_cpu_isa_name(expected_level(values[i])));
        assert_string_equal(r.bf16, rn_cpu_bf16_level_name(expected_bf16(values[i])));
    }
}

/* The "cpu" backend's convolution is the kernel of the level RN_ISA gives: bit for bit that
 * level's result and not that of a level that rounds differently. The vector levels (AVX2,
 * AVX-512) accumulate in the same order and agree bit for bit, so the results tell only the
 * portable level from the vector ones; that they differ is asserted first, else the check
 * would mean nothing (which vector level runs is test_isa_env_sets_level's). */
static void test_isa_selects_conv_kernels(void **state) {
    (void)state;
    rn_isa top = rn_cpu_isa_supported();
    rn_conv_desc d = conv_shape();
    conv_run lv[3];
    for (int l = 0; l <= (int)top; l++) {
        conv_alloc(&lv[l], &d);
        conv_at_level(&lv[l], (rn_isa)l);
    }
    for (int l = 1; l <= (int)top; l++)
        if (conv_same(&lv[l], &lv[0]))
            fail_msg("the %s and portable kernels agree bit for bit on this shape: pick one where "
                     "they round differently", level_names[l]);
    /* same[l]: the levels whose kernel gives level l's result, as the child prints them */
    char same[3][64] = {{0}};
    for (int l = 0; l <= (int)top; l++)
        for (int k = 0; k <= (int)top; k++)
            if (conv_same(&lv[l], &lv[k]))
                snprintf(same[l] + strlen(same[l]), sizeof same[l] - strlen(same[l]), " %s",
                         level_names[k]);
    for (int l = 0; l <= (int)top; l++) conv_free(&lv[l]);
    if (top == RN_ISA_PORTABLE) print_message("    only the portable level on this machine\n");
    for (size_t i = 0; i < NVALUES; i++) {
        report r = run_child(values[i]);
        assert_string_equal(r.conv, same[expected_level(values[i])]);
    }
}

/* A whole training step through the public API: RN_ISA=portable gives a result of its own
 * (the vector levels round alike, see above), and every value gives the result of the level it
 * resolves to. */
static void test_isa_changes_model_step(void **state) {
    (void)state;
    rn_isa top = rn_cpu_isa_supported();
    unsigned long long at[3] = {0};
    for (int l = 0; l <= (int)top; l++) at[l] = run_child(level_names[l]).model;
    for (int l = 1; l <= (int)top; l++)
        if (at[l] == at[0])
            fail_msg("RN_ISA=%s and RN_ISA=portable give the same training step", level_names[l]);
    for (size_t i = 0; i < NVALUES; i++) {
        report r = run_child(values[i]);
        assert_true(r.model == at[expected_level(values[i])]);
    }
}

/* rn_sgemm follows RN_ISA too: its result is that of the micro-kernel of the level RN_ISA
 * gives. */
static void test_isa_selects_sgemm(void **state) {
    (void)state;
    static float a[GM * GK], b[GK * GN], c[3][GM * GN];
    sgemm_inputs(a, b);
    for (int l = 0; l <= (int)rn_cpu_isa_supported(); l++) {
        assert_true(rn_sgemm_with(sgemm_names[l], false, false, GM, GN, GK, 1.0f, a, GK, b, GN,
                                  0.0f, c[l], GN));
        if (l > 0 && memcmp(c[l], c[0], sizeof c[l]) == 0)
            fail_msg("the %s and generic micro-kernels agree bit for bit on this shape",
                     sgemm_names[l]);
    }
    for (size_t i = 0; i < NVALUES; i++) {
        report r = run_child(values[i]);
        const char *k = sgemm_names[expected_level(values[i])];
        char want[64];
        snprintf(want, sizeof want, " %s", k);
        if (!strstr(r.sgemm, want) || (strcmp(k, "generic") == 0) != (strcmp(r.sgemm, " generic") == 0))
            fail_msg("RN_ISA=%s: rn_sgemm matches the kernels {%s }, not %s", values[i] ? values[i] : "(unset)",
                     r.sgemm, k);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isa_env_sets_level),
        cmocka_unit_test(test_isa_selects_conv_kernels),
        cmocka_unit_test(test_isa_changes_model_step),
        cmocka_unit_test(test_isa_selects_sgemm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
