/*
 * device.c — parsing of device and precision names, shared by CPU-only and CUDA builds.
 */
#include "internal.h"

#include <string.h>

rn_status rn_precision_parse(const char *s, rn_precision *p) {
    if (!s || !*s || !strcmp(s, "tf32")) *p = RN_PRECISION_TF32;
    else if (!strcmp(s, "fp32")) *p = RN_PRECISION_FP32;
    else if (!strcmp(s, "bf16")) *p = RN_PRECISION_BF16;
    else return rn_fail(RN_ERR_BAD_ARG, "precision '%s' (expected fp32, tf32 or bf16)", s);
    return RN_OK;
}

const char *rn_precision_name(rn_precision p) {
    switch (p) {
    case RN_PRECISION_FP32: return "fp32";
    case RN_PRECISION_TF32: return "tf32";
    case RN_PRECISION_BF16: return "bf16";
    }
    return "?";
}

rn_status rn_device_parse(const char *spec, int *cuda_index) {
    *cuda_index = -1;
    if (!spec || !*spec || !strcmp(spec, "cpu")) return RN_OK;
    if (!strcmp(spec, "cuda")) {
        *cuda_index = 0;
        return RN_OK;
    }
    if (!strncmp(spec, "cuda:", 5)) {
        char *end;
        long n = strtol(spec + 5, &end, 10);
        if (end != spec + 5 && !*end && n >= 0 && n < 1024) {
            *cuda_index = (int)n;
            return RN_OK;
        }
    }
    return rn_fail(RN_ERR_BAD_ARG, "device '%s' (expected cpu, cuda or cuda:N)", spec);
}
