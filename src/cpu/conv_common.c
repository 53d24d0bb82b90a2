/*
 * conv_common.c — pieces shared by the direct and the Winograd convolution drivers: picking
 * tiles for an instruction-set level, cutting rows of pixels into tiles, and copying images
 * between NCHW tensors and the zero-padded channel-blocked buffers the tiles read; and the
 * bias gradient, which the bf16 convolutions share too.
 */
#include "conv_tiles.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- tile selection ----------------------------------------------------------------------- */

rn_otile_fn rn_otile_get(rn_isa isa, int P, int KB, int SI, int SO) {
#if defined(__x86_64__)
    if (isa == RN_ISA_AVX512) return rn_otile_avx512(P, KB, SI, SO);
    if (isa == RN_ISA_AVX2) return rn_otile_avx2(P, KB, SI, SO);
#endif
    return rn_otile_portable(P, KB, SI, SO);
}

rn_otile_fn rn_otile_get_rows(rn_isa isa, int P, int KB, int RT, int SI, int SO) {
    if (RT == 1) return rn_otile_get(isa, P, KB, SI, SO);
#if defined(__x86_64__)
    if (isa == RN_ISA_AVX512) return rn_otile_rows_avx512(P, KB, RT, SI, SO);
#endif
    return NULL;
}

rn_wtile_fn rn_wtile_get(rn_isa isa, int T, int KC) {
#if defined(__x86_64__)
    if (isa == RN_ISA_AVX512) return rn_wtile_avx512(T, KC);
    if (isa == RN_ISA_AVX2) return rn_wtile_avx2(T, KC);
#endif
    return rn_wtile_portable(T, KC);
}

/* Largest register budget (pixels x blocks) of an output tile at each level. */
static int otile_budget(rn_isa isa) { return isa == RN_ISA_AVX512 ? 28 : isa == RN_ISA_AVX2 ? 6 : 8; }

/* Channel blocks per output tile for `nblocks` output blocks over rows `width` pixels wide. */
int rn_pick_kb(rn_isa isa, int nblocks, int width, int hint) {
    int kb = hint > 0 ? hint : 1;
    if (hint <= 0 && isa == RN_ISA_AVX512) {
        /* Two blocks share each broadcast input (short rows get more rows per tile). */
        kb = nblocks >= 2 ? 2 : 1;
        if (kb == 2 && width > 14 && width % 16 == 0) kb = 1;
    }
    if (kb > nblocks) kb = nblocks;
    while (kb > 1 && !rn_otile_get(isa, 1, kb, 1, 1)) kb--;
    return kb;
}

/* Plans a row of `width` pixels for tiles of kb channel blocks: the widest built tile within
 * the register budget (or `hint`), narrowed so that the row splits evenly where possible;
 * the rest greedily. Strides above 2 use one-pixel tiles (their offsets are then free). */
void rn_plan_row(rn_row_plan *pl, rn_isa isa, int kb, int width, int hint, int SI, int SO) {
    int pmax = hint > 0 ? hint : otile_budget(isa) / kb;
    if (SI > 2 || SO > 2) pmax = 1, SI = 1, SO = 1;
    if (pmax < 1) pmax = 1;
    int ntiles = (width + pmax - 1) / pmax;
    int p = (width + ntiles - 1) / ntiles;
    while (p > 1 && !rn_otile_get(isa, p, kb, SI, SO)) p--;
    pl->rt = 1;
    pl->p = p;
    pl->fn = rn_otile_get(isa, p, kb, SI, SO);
    pl->nfull = width / p;
    pl->ntail = 0;
    for (int rem = width - pl->nfull * p; rem > 0;) {
        int q = rem;
        while (q > 1 && !rn_otile_get(isa, q, kb, SI, SO)) q--;
        pl->tail_p[pl->ntail] = q;
        pl->tail_fn[pl->ntail] = rn_otile_get(isa, q, kb, SI, SO);
        pl->ntail++;
        rem -= q;
    }
}

/* A plan for tiles of rt rows over a row of `width` pixels (rt > 1: the whole row in one tile
 * if it is built, else NULL fn). */
static bool plan_row_rt(rn_row_plan *pl, rn_isa isa, int kb, int width, int rt, int SI, int SO) {
    pl->rt = rt;
    pl->p = width;
    pl->nfull = 1;
    pl->ntail = 0;
    pl->fn = rn_otile_get_rows(isa, width, kb, rt, SI, SO);
    return pl->fn != NULL;
}

void rn_plan_rows(rn_row_plan main[2], rn_isa isa, int kb, int width, int nrows, int hint,
                  int SI, int SO) {
    /* Short rows (at most 8 pixels) take several rows per tile, up to 24 accumulators. */
    int rt = width <= 8 && hint <= 0 && SI <= 2 && SO <= 2 ? 24 / (width * kb) : 1;
    if (rt > 4) rt = 4;
    if (rt > nrows) rt = nrows;
    if (rt >= 2 && plan_row_rt(&main[0], isa, kb, width, rt, SI, SO)) {
        int rest = nrows % rt;
        if (rest >= 2 && plan_row_rt(&main[1], isa, kb, width, rest, SI, SO)) return;
        rn_plan_row(&main[1], isa, kb, width, hint, SI, SO);
        return;
    }
    rn_plan_row(&main[0], isa, kb, width, hint, SI, SO);
    main[1] = main[0];
}

void rn_run_rows(const rn_row_plan main[2], rn_otile_args *a, int nrows, long out_row,
                 long in_row, long out_step, long in_step) {
    float *out0 = a->out;
    const float *in0 = a->in;
    a->out_row = out_row;
    a->in_row = in_row;
    const int rt = main[0].rt;
    int r = 0;
    for (; r + rt <= nrows; r += rt) {
        a->out = out0 + r * out_row;
        a->in = in0 + r * in_row;
        rn_run_row(&main[0], a, out_step, in_step);
    }
    for (; r < nrows; r += main[1].rt) { /* the last nrows % rt rows */
        a->out = out0 + r * out_row;
        a->in = in0 + r * in_row;
        rn_run_row(&main[1], a, out_step, in_step);
    }
}

/* Runs the tiles of one row: a->out and a->in at the row's first pixel, advanced by
 * out_step / in_step floats per pixel. */
void rn_run_row(const rn_row_plan *pl, rn_otile_args *a, long out_step, long in_step) {
    float *out0 = a->out;
    const float *in0 = a->in;
    int x = 0;
    for (int i = 0; i < pl->nfull; i++, x += pl->p) {
        a->out = out0 + x * out_step;
        a->in = in0 + x * in_step;
        pl->fn(a);
    }
    for (int i = 0; i < pl->ntail; i++) {
        a->out = out0 + x * out_step;
        a->in = in0 + x * in_step;
        pl->tail_fn[i](a);
        x += pl->tail_p[i];
    }
}

/* ---- data movement ------------------------------------------------------------------------ */

int rn_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}
int rn_thread_count(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Copies image n of the NCHW tensor src (C,H,W) into the interior of dst (CB,Hp,Wp,16) at offset
 * (top, left). The border and padded channel lanes of dst must already be zero. */
void rn_pad_image(float *dst, const float *src, int n, int C, int H, int W, int Hp, int Wp,
                  int top, int left, rn_isa isa) {
    int CB = rn_cblocks(C);
    const float *s = src + (size_t)n * C * H * W;
#if defined(__x86_64__)
    if (isa == RN_ISA_AVX512) {
        for (int cb = 0; cb < CB; cb++) {
            int cn = C - cb * 16 < 16 ? C - cb * 16 : 16;
            for (int h = 0; h < H; h++)
                rn_rows_to_blocked_avx512(dst + (((size_t)cb * Hp + h + top) * Wp + left) * 16,
                                          s + ((size_t)cb * 16 * H + h) * W, (long)H * W, cn, W);
        }
        return;
    }
#endif
    for (int c = 0; c < C; c++) {
        float *d = dst + (size_t)(c / 16) * Hp * Wp * 16 + c % 16;
        for (int h = 0; h < H; h++) {
            const float *sr = s + ((size_t)c * H + h) * W;
            float *dr = d + ((size_t)(h + top) * Wp + left) * 16;
            for (int w = 0; w < W; w++) dr[w * 16] = sr[w];
        }
    }
}

void rn_unblock_image(float *dst, const float *src, int n, int C, int HW, int cb0, int ncb,
                      bool accumulate, rn_isa isa) {
    float *d = dst + (size_t)n * C * HW;
    for (int cb = cb0; cb < cb0 + ncb; cb++) {
        const int cn = C - cb * 16 < 16 ? C - cb * 16 : 16;
        const float *sb = src + (size_t)cb * HW * 16;
#if defined(__x86_64__)
        if (isa == RN_ISA_AVX512) {
            rn_blocked_to_rows_avx512(d + (size_t)cb * 16 * HW, HW, sb, cn, HW, accumulate);
            continue;
        }
#endif
        for (int i = 0; i < cn; i++) {
            const float *si = sb + i;
            float *dc = d + ((size_t)cb * 16 + i) * HW;
            if (accumulate)
                for (int p = 0; p < HW; p++) dc[p] += si[p * 16];
            else
                for (int p = 0; p < HW; p++) dc[p] = si[p * 16];
        }
    }
}

void rn_conv_bias_grad(float *dbias, const float *dout, const rn_conv_desc *d, int nthreads) {
    const size_t HW = (size_t)d->Ho * d->Wo;
#pragma omp parallel for schedule(static) num_threads(nthreads > 0 ? nthreads : 1)
    for (int k = 0; k < d->K; k++) {
        float s = 0.0f;
        for (int n = 0; n < d->N; n++) {
            const float *p = dout + ((size_t)n * d->K + k) * HW;
            for (size_t i = 0; i < HW; i++) s += p[i];
        }
        dbias[k] += s;
    }
}
