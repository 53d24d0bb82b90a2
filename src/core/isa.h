/*
 * isa.h — the one probe of the CPU's vector units, used by every fast kernel (the CPU
 * convolutions, the GEMM behind every classifier, the FMA peak measurement): detected once at
 * run time, lowered by the RN_ISA environment variable (avx512, avx2, portable) when set, so a
 * machine can run and test each lower level's kernels.
 */
#ifndef RN_CORE_ISA_H
#define RN_CORE_ISA_H

#include <stdbool.h>

typedef enum {
    RN_ISA_PORTABLE = 0, /* plain C (the compiler's baseline vectorization) */
    RN_ISA_AVX2 = 1,     /* AVX2 + FMA, 8-wide */
    RN_ISA_AVX512 = 2,   /* AVX-512F + VL, 16-wide */
} rn_isa;

/* The best level this machine supports, lowered by RN_ISA if set (a level the machine lacks
 * is clamped to what it has). Evaluated once, then cached. */
rn_isa rn_cpu_isa_detect(void);
/* The best level this machine supports, ignoring RN_ISA. */
rn_isa rn_cpu_isa_supported(void);
/* "avx512", "avx2" or "portable". */
const char *rn_cpu_isa_name(rn_isa isa);
/* Parses an RN_ISA value; returns false for an unknown name. */
bool rn_cpu_isa_parse(const char *s, rn_isa *out);

#endif
