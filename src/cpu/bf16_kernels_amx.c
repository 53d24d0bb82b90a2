/*
 * bf16_kernels_amx.c — the bf16 GEMM tile (bf16.h) on AMX-BF16: C (8 x 16*nv) += A (8 x 32)
 * x B (32 x 16*nv) per chunk of 16 contraction pairs, one TDPBF16PS per vector of 16 columns.
 * The packing routines are AVX512_BF16's (every AMX CPU has it).
 *
 * Each chunk's A (8 rows x 16 pairs, transposed from the [pair][row] layout) and B (16 pairs x
 * 16 columns per vector, from the panel or from the pair image in place) are copied into small
 * buffers first: a chunk past the end of the contraction is zero-padded there, so the tile
 * shapes never change. The C tiles start from a staging copy (accumulated values, bias or 0)
 * and end there, then rows and columns past mr and ncols are dropped on the way out.
 *
 * This file is compiled everywhere but runs only where rn_cpu_bf16_supported() reports AMX
 * (CPUID and the kernel's permission for the tile state, core/isa.c).
 */
#include "bf16.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TGT __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bf16,avx512vl,avx512bw")))

/* The layout of LDTILECFG's 64-byte operand (palette 1). */
typedef struct __attribute__((packed, aligned(64))) {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16]; /* bytes per row of tmm0..15 */
    uint8_t rows[16];
} tile_config;

/* tmm0-2: C, 8 rows x 16 fp32; tmm3: A, 8 rows x 16 pairs; tmm4-6: B, 16 pairs x 16 columns. */
static TGT void configure(void) {
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int i = 0; i < 3; i++) c.colsb[i] = 64, c.rows[i] = RN_BF16_MR;
    c.colsb[3] = 64, c.rows[3] = RN_BF16_MR;
    for (int i = 4; i < 7; i++) c.colsb[i] = 64, c.rows[i] = 16;
    _tile_loadconfig(&c);
}

TGT void rn_bf16_tile_amx(const rn_bf16_tile_args *t) {
    float cst[RN_BF16_NV][RN_BF16_MR][16] __attribute__((aligned(64)));
    uint32_t at[RN_BF16_MR][16] __attribute__((aligned(64)));
    uint32_t bt[RN_BF16_NV][16][16] __attribute__((aligned(64)));
    const int nv = t->nv;
    for (int v = 0; v < RN_BF16_NV; v++)
        for (int m = 0; m < RN_BF16_MR; m++)
            for (int j = 0; j < 16; j++) {
                const int col = v * 16 + j;
                float x = 0.0f;
                if (v < nv && m < t->mr) {
                    if (t->accumulate) x = col < t->ncols ? t->c[m * t->ldc + col] : 0.0f;
                    else if (t->bias) x = t->bias[m];
                }
                cst[v][m][j] = x;
            }
    configure();
    _tile_loadd(0, cst[0], 64);
    _tile_loadd(1, cst[1], 64);
    _tile_loadd(2, cst[2], 64);
    for (int k0 = 0; k0 < t->kp; k0 += 16) {
        const int kc = t->kp - k0 < 16 ? t->kp - k0 : 16;
        for (int m = 0; m < RN_BF16_MR; m++)
            for (int k = 0; k < 16; k++) at[m][k] = k < kc ? t->a[(size_t)(k0 + k) * RN_BF16_MR + m] : 0;
        for (int v = 0; v < nv; v++)
            for (int k = 0; k < 16; k++) {
                const uint32_t *src = k >= kc ? NULL
                                      : t->koff ? t->b + t->koff[k0 + k] + t->boff[v]
                                                : t->b + (size_t)(k0 + k) * t->b_stride + v * 16;
                for (int j = 0; j < 16; j++) bt[v][k][j] = src ? src[j] : 0;
            }
        _tile_loadd(3, at, 64);
        _tile_loadd(4, bt[0], 64);
        _tile_dpbf16ps(0, 3, 4);
        if (nv > 1) {
            _tile_loadd(5, bt[1], 64);
            _tile_dpbf16ps(1, 3, 5);
        }
        if (nv > 2) {
            _tile_loadd(6, bt[2], 64);
            _tile_dpbf16ps(2, 3, 6);
        }
    }
    _tile_stored(0, cst[0], 64);
    _tile_stored(1, cst[1], 64);
    _tile_stored(2, cst[2], 64);
    _tile_release();
    for (int m = 0; m < t->mr; m++)
        for (int col = 0; col < t->ncols; col++) {
            const float x = cst[col / 16][m][col % 16];
            t->c[m * t->ldc + col] = t->relu && !(x > 0.0f) ? 0.0f : x;
        }
}

#endif
