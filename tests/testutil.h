/*
 * testutil.h — helpers shared by the C tests (all use cmocka).
 */
#ifndef RN_TESTUTIL_H
#define RN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "resnet.h"

/* Deterministic uniform floats in [lo, hi) from a seed (splitmix64). */
void tu_fill_uniform(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Max of |a-b| / (1 + |b|) over n elements; b is the reference. */
double tu_max_rel_diff(const float *a, const float *b, size_t n);
/* Max of |a-b|. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);

/* The folder holding this repository's tests/data (absolute). */
const char *tu_data_dir(void);
/* A fresh temporary directory (removed by the OS's tmp cleaning; tests keep it small). */
const char *tu_tmpdir(void);

/* Asserts a status is RN_OK, printing rn_error_message() otherwise. */
#define TU_OK(expr)                                                                        \
    do {                                                                                   \
        rn_status tu_s_ = (expr);                                                          \
        if (tu_s_ != RN_OK) fail_msg("%s -> %s: %s", #expr, rn_status_name(tu_s_),          \
                                     rn_error_message());                                  \
    } while (0)

#endif
