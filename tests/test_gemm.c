/*
 * test_gemm.c — rn_sgemm, and every micro-kernel this CPU can run (rn_sgemm_with), against
 * rn_sgemm_naive: odd and blocked shapes (B read in place and packed), all four transpose
 * combinations, alpha/beta values, leading dimensions wider than the matrices, beta = 0 over
 * NaN-filled C, and entries outside the C window left untouched.
 */
#include "testutil.h"

#include "ops/gemm.h"
#include "ops/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL 12345.0f

/* The larger of two differences, a NaN counting as the largest. */
static double worse(double a, double b) { return a != a || b != b ? NAN : a > b ? a : b; }

/* Allowed max relative difference: float rounding grows with the summation length K. */
static double tol(int K) { return 1e-6 * (2.0 + sqrt((double)K)); }

/* Runs one case through rn_sgemm and through each micro-kernel this CPU supports; returns
 * the max relative difference against the naive reference (inf if an entry outside the MxN
 * window of C was touched). */
static double run_case(bool ta, bool tb, int M, int N, int K, float alpha, float beta, int pad,
                       bool nan_c, uint64_t seed) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * (na + 1));
    float *B = malloc(sizeof(float) * (nb + 1));
    float *C0 = malloc(sizeof(float) * (nc + 1));
    float *C = malloc(sizeof(float) * (nc + 1));
    float *R = malloc(sizeof(float) * (nc + 1));
    tu_fill_uniform(A, na, seed, -1, 1);
    tu_fill_uniform(B, nb, seed + 1, -1, 1);
    tu_fill_uniform(C0, nc, seed + 2, -1, 1);
    for (int i = 0; i < M; i++)
        for (int j = N; j < ldc; j++) C0[(size_t)i * ldc + j] = SENTINEL;
    if (nan_c)
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C0[(size_t)i * ldc + j] = NAN;
    memcpy(R, C0, sizeof(float) * nc);
    rn_sgemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    double err = 0;
    for (int k = -1; k < 0 || rn_sgemm_kernels[k]; k++) {
        memcpy(C, C0, sizeof(float) * nc);
        if (k < 0) rn_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        else if (!rn_sgemm_with(rn_sgemm_kernels[k], ta, tb, M, N, K, alpha, A, lda, B, ldb,
                                beta, C, ldc))
            continue; /* not on this CPU */
        for (int i = 0; i < M; i++) {
            double e = tu_max_rel_diff(C + (size_t)i * ldc, R + (size_t)i * ldc, N);
            err = worse(err, e);
            for (int j = N; j < ldc; j++)
                if (C[(size_t)i * ldc + j] != SENTINEL) err = INFINITY;
        }
    }
    free(A);
    free(B);
    free(C0);
    free(C);
    free(R);
    return err;
}

/* Names the micro-kernels this CPU runs, which every case below goes through. */
static void test_kernels_present(void **state) {
    float a = 2, b = 3, c = 0;
    int n = 0;
    printf("  micro-kernels checked on this CPU:");
    for (int k = 0; rn_sgemm_kernels[k]; k++)
        if (rn_sgemm_with(rn_sgemm_kernels[k], false, false, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1)) {
            printf(" %s (2*3 = %g)", rn_sgemm_kernels[k], c);
            assert_true(c == 6.0f);
            n++;
        }
    printf("\n");
    assert_true(n >= 1);
    assert_false(rn_sgemm_with("no-such-kernel", false, false, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1));
}

static void test_odd_shapes(void **state) {
    static const int sizes[] = {1, 3, 17, 63, 129};
    static const float ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 0.3f}, {2.5f, -1}};
    double worst = 0;
    int n = 0;
    uint64_t seed = 1;
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < 5; mi++)
            for (int ni = 0; ni < 5; ni++)
                for (int ki = 0; ki < 5; ki++) {
                    const float *p = ab[(mi + ni + ki + t) % 4];
                    double e = run_case(t & 1, t & 2, sizes[mi], sizes[ni], sizes[ki], p[0], p[1],
                                        (mi + ki) % 3 == 0 ? 0 : 5, false, seed++);
                    if (!(e <= tol(sizes[ki])))
                        fail_msg("ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: max rel diff %g",
                                 t & 1, (t & 2) != 0, sizes[mi], sizes[ni], sizes[ki], p[0], p[1],
                                 e);
                    worst = worse(worst, e);
                    n++;
                }
    printf("  odd shapes: %d cases, max rel diff %.3g\n", n, worst);
}

/* Shapes that cross the cache blocks and micro-tile edges, including the ResNet-20 conv. */
static void test_blocked_shapes(void **state) {
    static const int shapes[][3] = {{64, 1024, 576}, {200, 300, 700}, {17, 4500, 40},
                                    {31, 47, 1200},  {513, 9, 33},    {48, 64, 16},
                                    {96, 100, 257},  {1, 1000, 512},  {1000, 1, 64},
                                    {16, 1024, 144}, {64, 64, 576}};
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            const int *sh = shapes[s];
            double e = run_case(t & 1, t & 2, sh[0], sh[1], sh[2], 1.0f, t == 3 ? 0.5f : 0.0f,
                                t == 2 ? 7 : 0, false, 100 + s * 4 + t);
            printf("  M=%4d N=%4d K=%4d ta=%d tb=%d: max rel diff %.3g\n", sh[0], sh[1], sh[2],
                   t & 1, (t & 2) != 0, e);
            if (!(e <= tol(sh[2]))) fail_msg("max rel diff %g > %g", e, tol(sh[2]));
            worst = worse(worst, e);
        }
}

/* beta = 0 must not read C: NaN garbage there does not reach the result. */
static void test_beta_zero_ignores_nan(void **state) {
    double worst = 0;
    for (int t = 0; t < 4; t++) {
        double e = run_case(t & 1, t & 2, 37, 45, 29, 1.5f, 0.0f, 3, true, 500 + t);
        worst = worse(worst, e);
        e = run_case(t & 1, t & 2, 70, 200, 300, 1.0f, 0.0f, 0, true, 510 + t);
        worst = worse(worst, e);
    }
    printf("  beta=0 over NaN C: max rel diff %.3g\n", worst);
    assert_true(worst <= tol(300));
}

/* K = 0 leaves beta*C; alpha = 0 leaves beta*C too. */
static void test_degenerate(void **state) {
    double e1 = run_case(false, false, 5, 7, 0, 1.0f, 0.5f, 2, false, 600);
    double e2 = run_case(false, false, 5, 7, 0, 1.0f, 0.0f, 2, true, 601);
    double e3 = run_case(true, true, 9, 4, 11, 0.0f, 2.0f, 1, false, 602);
    printf("  K=0 beta=0.5: %.3g, K=0 beta=0 (NaN C): %.3g, alpha=0: %.3g\n", e1, e2, e3);
    assert_true(e1 <= 1e-6 && e2 <= 1e-6 && e3 <= 1e-6);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_present),
        cmocka_unit_test(test_odd_shapes),
        cmocka_unit_test(test_blocked_shapes),
        cmocka_unit_test(test_beta_zero_ignores_nan),
        cmocka_unit_test(test_degenerate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
