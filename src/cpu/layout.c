/*
 * layout.c — conversions between the library's NCHW layout and the fast kernels' blocked
 * NCHW16c layout (see cpu.h).
 */
#include "cpu.h"

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
        for (int i = 0; i < cn; i++) {
            float *d = dst + ((size_t)n * C + cb * RN_CB + i) * HW;
            for (size_t p = 0; p < HW; p++) d[p] = s[p * RN_CB + i];
        }
    }
}
