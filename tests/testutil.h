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

/* ---- reading reference tensors (tests/data, safetensors files) -------------------------------- */

/* Copies tensor `name` (F32) into a fresh malloc'd array; *numel receives its element count
 * (numel may be NULL). Fails the test if the tensor is absent or not F32. */
float *tu_st_floats(const rn_safetensors *st, const char *name, size_t *numel);
/* Copies an I64 tensor into a fresh malloc'd int array. */
int *tu_st_ints(const rn_safetensors *st, const char *name, size_t *numel);
/* The single value of a one-element F32, F64 or I64 tensor. */
double tu_st_scalar(const rn_safetensors *st, const char *name);
/* Fails the test unless tensor `name` has exactly these dims. */
void tu_st_expect_shape(const rn_safetensors *st, const char *name, int ndim, const int *shape);

/* ---- parity checks (each prints one line with the max difference it saw) --------------- */

/* Forward values: max over elements of |a-b| / (1+|ref|) must be <= 1e-4. */
#define TU_FWD_TOL 1e-4
/* Gradients: max|a-b| / (1e-3 + max|ref|) must be <= 1e-3 (relative to the tensor's scale,
 * so tiny gradients are not waved through by an absolute floor). */
#define TU_GRAD_TOL 1e-3
double tu_grad_err(const float *a, const float *ref, size_t n);
/* Compute the error, print "what: ... max diff", fail the test past the tolerance.
 * Return the error. */
double tu_check_fwd(const char *what, const float *a, const float *ref, size_t n);
double tu_check_grad(const char *what, const float *a, const float *ref, size_t n);

/* ---- the hash fill of tools/gen_reference.py (weights both sides compute, not stored) ------
 * x = (t*0x9E3779B1 + i*0x85EBCA77 + 0x165667B1) mod 2^32, then three xor-shift-multiply
 * rounds; u = x / 2^32. t is the tensor's index in state_dict order, i the element index. */
double tu_hash_uniform(int t, size_t i);
typedef enum {
    TU_HASH_WEIGHT,       /* conv / linear weight: (2u-1)/sqrt(fan_in) */
    TU_HASH_BIAS,         /* linear or BN bias: 0.2*(2u-1) */
    TU_HASH_BN_WEIGHT,    /* 0.5+u */
    TU_HASH_RUNNING_MEAN, /* 0.1*(2u-1) */
    TU_HASH_RUNNING_VAR,  /* 0.5+u */
} tu_hash_kind;
/* x[i] = (float) of the double formula for `kind`; fan_in is used by TU_HASH_WEIGHT only. */
void tu_fill_hash(float *x, size_t n, int t, tu_hash_kind kind, size_t fan_in);
/* Fills every state tensor of m (rn_model_tensor order = t) by its name; counters become 0. */
void tu_fill_hash_model(rn_model *m);

/* Asserts a status is RN_OK, printing rn_error_message() otherwise. */
#define TU_OK(expr)                                                                        \
    do {                                                                                   \
        rn_status tu_s_ = (expr);                                                          \
        if (tu_s_ != RN_OK) fail_msg("%s -> %s: %s", #expr, rn_status_name(tu_s_),          \
                                     rn_error_message());                                  \
    } while (0)

#endif
