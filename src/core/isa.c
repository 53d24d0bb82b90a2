/*
 * isa.c — which instruction-set level the fast kernels run at (see isa.h): detected once at
 * run time (__builtin_cpu_supports, CPUID, and for AMX the operating system's permission),
 * lowered by the RN_ISA environment variable when set.
 *
 * AMX needs more than CPUID: Linux keeps the 8 KB tile state off by default, and a process
 * asks for it with arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) before its first tile
 * instruction. When the request fails the bf16 level falls back to AVX512_BF16 (or below) and
 * rn_cpu_bf16_note() says why, for the program to print.
 *
 * Caches: racing first calls compute the same value, so the unsynchronized caches are benign;
 * each is an int written once, free of torn reads.
 */
#include "isa.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

_Static_assert((int)RN_ISA_AVX2 == (int)RN_BF16_AVX2 && (int)RN_ISA_AVX512 == (int)RN_BF16_AVX512,
               "rn_isa is the bottom of the rn_bf16_level ladder");

/* The ladder's names, indexed by rn_bf16_level (and so by rn_isa). */
static const char *const level_names[] = {"portable", "avx2", "avx512", "avx512bf16", "amx"};
#define N_LEVELS (int)(sizeof level_names / sizeof *level_names)

/* The rung that s names among the ladder's first n, or -1. */
static int rung(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

/* `top` lowered to RN_ISA's rung of the ladder when RN_ISA names a lower one. */
static int lowered(int top) {
    const char *env = getenv("RN_ISA");
    const int r = env && *env ? rung(env, top) : -1;
    return r >= 0 ? r : top;
}

/* ---- fp32 ---------------------------------------------------------------------------------- */

rn_isa rn_cpu_isa_supported(void) {
    static volatile int cached = -1;
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
    return isa >= RN_ISA_PORTABLE && isa <= RN_ISA_AVX512 ? level_names[isa] : "portable";
}

bool rn_cpu_isa_parse(const char *s, rn_isa *out) {
    const int r = rung(s, RN_ISA_AVX512 + 1);
    if (r >= 0) *out = (rn_isa)r;
    return r >= 0;
}

rn_isa rn_cpu_isa_detect(void) {
    static volatile int cached = -1;
    if (cached >= 0) return (rn_isa)cached;
    cached = lowered((int)rn_cpu_isa_supported());
    return (rn_isa)cached;
}

/* ---- bf16 ---------------------------------------------------------------------------------- */

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
    static volatile int cached = -1;
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
    return level >= RN_BF16_PORTABLE && level <= RN_BF16_AMX ? level_names[level] : "portable";
}

bool rn_cpu_bf16_level_parse(const char *s, rn_bf16_level *out) {
    const int r = rung(s, N_LEVELS);
    if (r >= 0) *out = (rn_bf16_level)r;
    return r >= 0;
}

rn_bf16_level rn_cpu_bf16_level(void) {
    static volatile int cached = -1;
    if (cached >= 0) return (rn_bf16_level)cached;
    cached = lowered((int)rn_cpu_bf16_supported());
    return (rn_bf16_level)cached;
}

const char *rn_cpu_bf16_note(void) {
    (void)rn_cpu_bf16_supported();
    return note;
}
