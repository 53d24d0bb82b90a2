/*
 * layout.c — conversions between the library's NCHW layout and the fast kernels' blocked
 * NCHW16c layout (see cpu.h).
 */
#include "conv_tiles.h"

#include <string.h>

size_t rn_cpu_tensor_floats(rn_layout layout, int N, int C, int H, int W) {
    size_t c = layout == RN_LAYOUT_NCHW16C ? (size_t)rn_cblocks(C) * RN_CB : (size_t)C;
    return (size_t)N * c * H * W;
}

void rn_cpu_nchw_to_blocked(float *dst, const float *src, int N, int C, int H, int W,
                            int nthreads) {
    const int CB = rn_cblocks(C);
    const size_t HW = (size_t)H * W;
#pragma omp parallel for schedule(static) num_threads(nthreads > 0 ? nthreads : 1)
    for (long nb = 0; nb < (long)N * CB; nb++) {
        const int n = (int)(nb / CB), cb = (int)(nb % CB);
        float *d = dst + (size_t)nb * HW * RN_CB;
        const int cn = C - cb * RN_CB < RN_CB ? C - cb * RN_CB : RN_CB;
#if defined(__x86_64__)
        if (rn_cpu_isa_detect() == RN_ISA_AVX512) {
            rn_rows_to_blocked_avx512(d, src + ((size_t)n * C + cb * RN_CB) * HW, (long)HW, cn, (int)HW);
            continue;
        }
#endif
        if (cn < RN_CB) memset(d, 0, sizeof(float) * HW * RN_CB);
        for (int i = 0; i < cn; i++) {
            const float *s = src + ((size_t)n * C + cb * RN_CB + i) * HW;
            for (size_t p = 0; p < HW; p++) d[p * RN_CB + i] = s[p];
        }
    }
}

void rn_cpu_blocked_to_nchw(float *dst, const float *src, int N, int C, int H, int W,
                            int nthreads) {
    const int CB = rn_cblocks(C);
    const size_t HW = (size_t)H * W;
#pragma omp parallel for schedule(static) num_threads(nthreads > 0 ? nthreads : 1)
    for (long nb = 0; nb < (long)N * CB; nb++) {
        const int n = (int)(nb / CB), cb = (int)(nb % CB);
        const float *s = src + (size_t)nb * HW * RN_CB;
        const int cn = C - cb * RN_CB < RN_CB ? C - cb * RN_CB : RN_CB;
#if defined(__x86_64__)
        if (rn_cpu_isa_detect() == RN_ISA_AVX512) {
            rn_blocked_to_rows_avx512(dst + ((size_t)n * C + cb * RN_CB) * HW, (long)HW, s, cn, (int)HW, false);
            continue;
        }
#endif
        for (int i = 0; i < cn; i++) {
            float *d = dst + ((size_t)n * C + cb * RN_CB + i) * HW;
            for (size_t p = 0; p < HW; p++) d[p] = s[p * RN_CB + i];
        }
    }
}
