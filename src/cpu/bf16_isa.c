/*
 * bf16_isa.c — which bf16 level the CPU kernels run at: AVX512_BF16 and AMX-BF16 from CPUID
 * (and, for AMX, the operating system's permission to use the tile state), lowered by RN_ISA.
 *
 * AMX needs more than CPUID: Linux keeps the 8 KB tile state off by default, and a process
 * asks for it with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) before its first tile
 * instruction. When the request fails the level falls back to AVX512_BF16 (or below) and
 * rn_cpu_bf16_note() says why, for the program to print.
 */
#include "bf16.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

static const char *note; /* written once, under the detection below */

#if defined(__x86_64__)
/* CPUID leaf 7: sub-leaf 0 EDX bits 22 (AMX-BF16), 24 (AMX-TILE); sub-leaf 1 EAX bit 5
 * (AVX512_BF16). XCR0 bits 17, 18: the OS manages the tile configuration and data. */
static bool cpu_amx(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return false;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false; /* OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & (3u << 17)) == (3u << 17);
}

static bool cpu_avx512bf16(void) {
    unsigned a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl"))
        return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 5)) != 0;
}

/* Asks Linux for the AMX tile data state; false (with the note set) if refused. */
static bool request_amx(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    const long ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0) return true;
    note = "the CPU has AMX-BF16 but the kernel refused the tile state "
           "(arch_prctl ARCH_REQ_XCOMP_PERM): bf16 runs on AVX512_BF16 instead";
    return false;
#else
    note = "the CPU has AMX-BF16 but this build cannot ask the OS for the tile state: "
           "bf16 runs on AVX512_BF16 instead";
    return false;
#endif
}
#endif

rn_bf16_level rn_cpu_bf16_supported(void) {
    static volatile int cached = -1; /* racing first calls compute the same value */
    if (cached >= 0) return (rn_bf16_level)cached;
    rn_bf16_level lv = RN_BF16_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) lv = RN_BF16_AVX2;
    if (__builtin_cpu_supports("avx512f")) lv = RN_BF16_AVX512;
    if (cpu_avx512bf16()) lv = RN_BF16_AVX512BF16;
    if (lv == RN_BF16_AVX512BF16 && cpu_amx() && request_amx()) lv = RN_BF16_AMX;
#endif
    cached = (int)lv;
    return lv;
}

bool rn_cpu_bf16_amx_usable(void) { return rn_cpu_bf16_supported() == RN_BF16_AMX; }

const char *rn_cpu_bf16_level_name(rn_bf16_level level) {
    switch (level) {
    case RN_BF16_AMX: return "amx";
    case RN_BF16_AVX512BF16: return "avx512bf16";
    case RN_BF16_AVX512: return "avx512";
    case RN_BF16_AVX2: return "avx2";
    default: return "portable";
    }
}

bool rn_cpu_bf16_level_parse(const char *s, rn_bf16_level *out) {
    for (int i = RN_BF16_PORTABLE; i <= RN_BF16_AMX; i++)
        if (strcmp(s, rn_cpu_bf16_level_name((rn_bf16_level)i)) == 0) {
            *out = (rn_bf16_level)i;
            return true;
        }
    return false;
}

rn_bf16_level rn_cpu_bf16_level(void) {
    static volatile int cached = -1;
    if (cached >= 0) return (rn_bf16_level)cached;
    rn_bf16_level lv = rn_cpu_bf16_supported();
    const char *env = getenv("RN_ISA");
    rn_bf16_level want;
    if (env && *env && rn_cpu_bf16_level_parse(env, &want) && want < lv) lv = want;
    cached = (int)lv;
    return lv;
}

const char *rn_cpu_bf16_note(void) {
    (void)rn_cpu_bf16_supported();
    return note;
}

const rn_bf16_kernels *rn_bf16_kernels_for(rn_bf16_level level) {
    if (level > rn_cpu_bf16_supported()) level = rn_cpu_bf16_supported();
#if defined(__x86_64__)
    if (level >= RN_BF16_AMX) return &rn_bf16_kernels_amx;
    if (level >= RN_BF16_AVX512BF16) return &rn_bf16_kernels_avx512bf16;
#endif
    return &rn_bf16_kernels_portable;
}
