/*
 * isa.h — the one probe of the CPU's vector units, used by every fast kernel (the CPU
 * convolutions, the GEMM behind every classifier, the FMA peak measurement, the bf16 kernels):
 * detected once at run time, lowered by the RN_ISA environment variable when set, so a
 * machine can run and test each lower level's kernels.
 *
 * One ladder of levels, one RN_ISA value for both kinds of kernel:
 *   portable < avx2 < avx512 < avx512bf16 < amx
 * The fp32 kernels use the first three (rn_isa); the bf16 kernels all five (rn_bf16_level).
 * RN_ISA=avx2 lowers both; RN_ISA=avx512bf16 lowers only the bf16 level (the fp32 kernels
 * have nothing above avx512). A level the machine lacks is clamped to what it has; an
 * unknown value lowers nothing.
 */
#ifndef RN_CORE_ISA_H
#define RN_CORE_ISA_H

#include <stdbool.h>

/* fp32 kernel levels. */
typedef enum {
    RN_ISA_PORTABLE = 0, /* plain C (the compiler's baseline vectorization) */
    RN_ISA_AVX2 = 1,     /* AVX2 + FMA, 8-wide */
    RN_ISA_AVX512 = 2,   /* AVX-512F + VL, 16-wide */
} rn_isa;

/* bf16 kernel levels: the same ladder, two rungs higher. */
typedef enum {
    RN_BF16_PORTABLE = 0,   /* C with the same rounding */
    RN_BF16_AVX2 = 1,       /* no bf16 instructions: runs the portable path */
    RN_BF16_AVX512 = 2,     /* likewise */
    RN_BF16_AVX512BF16 = 3, /* vdpbf16ps */
    RN_BF16_AMX = 4,        /* AMX-BF16 tiles */
} rn_bf16_level;

/* The best fp32 level, lowered by RN_ISA if set. Evaluated once, then cached. */
rn_isa rn_cpu_isa_detect(void);
/* The best fp32 level this machine supports, ignoring RN_ISA. */
rn_isa rn_cpu_isa_supported(void);
/* "avx512", "avx2" or "portable". */
const char *rn_cpu_isa_name(rn_isa isa);
/* Parses an fp32 level name; false for any other name. */
bool rn_cpu_isa_parse(const char *s, rn_isa *out);

/* The best bf16 level this CPU (and, for AMX, the kernel's permission) allows, ignoring
 * RN_ISA. */
rn_bf16_level rn_cpu_bf16_supported(void);
/* rn_cpu_bf16_supported lowered by RN_ISA when set. Evaluated once, then cached. */
rn_bf16_level rn_cpu_bf16_level(void);
/* "portable", "avx2", "avx512", "avx512bf16" or "amx". */
const char *rn_cpu_bf16_level_name(rn_bf16_level level);
/* Parses any level name of the ladder; false for an unknown one. */
bool rn_cpu_bf16_level_parse(const char *s, rn_bf16_level *out);
/* NULL, or one line on why a level the CPU has is not used (the kernel refused AMX's tile
 * state, say): for a program to show; the library does not print it. */
const char *rn_cpu_bf16_note(void);
/* Whether the CPU has AMX-BF16 and the kernel granted this process the tile state. */
bool rn_cpu_bf16_amx_usable(void);

#endif
