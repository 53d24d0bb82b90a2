/*
 * isa.c — which instruction-set level the fast kernels run at: detected once at run time
 * (__builtin_cpu_supports), lowered by the RN_ISA environment variable when set.
 */
#include "isa.h"

#include <stdlib.h>
#include <string.h>

rn_isa rn_cpu_isa_supported(void) {
    static volatile int cached = -1; /* racing first calls compute the same value */
    if (cached >= 0) return (rn_isa)cached;
    rn_isa isa = RN_ISA_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("fma"))
        isa = RN_ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isa = RN_ISA_AVX2;
#endif
    cached = (int)isa;
    return isa;
}

const char *rn_cpu_isa_name(rn_isa isa) {
    switch (isa) {
    case RN_ISA_AVX512: return "avx512";
    case RN_ISA_AVX2: return "avx2";
    default: return "portable";
    }
}

bool rn_cpu_isa_parse(const char *s, rn_isa *out) {
    static const rn_isa all[] = {RN_ISA_PORTABLE, RN_ISA_AVX2, RN_ISA_AVX512};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, rn_cpu_isa_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

rn_isa rn_cpu_isa_detect(void) {
    /* Racing threads compute the same value, so the unsynchronized cache is benign; it is
     * kept in an int written once to stay free of torn reads. */
    static volatile int cached = -1;
    if (cached >= 0) return (rn_isa)cached;
    rn_isa isa = rn_cpu_isa_supported();
    const char *env = getenv("RN_ISA");
    rn_isa want;
    if (env && *env && rn_cpu_isa_parse(env, &want) && want < isa) isa = want;
    cached = (int)isa;
    return isa;
}
