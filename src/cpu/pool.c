/*
 * pool.c — max pooling for the fast CPU tables: the reference kernel's results (the same bits:
 * padding as -inf, the first maximum in scan order, a NaN over any number), planes split over
 * threads, and the windows that lie wholly inside the image taken without bounds checks. The
 * border windows use the reference's rn_maxpool_window_argmax.
 */
#include "cpu.h"

#include <math.h>

/* The output rows and columns whose windows lie inside the image: [lo, hi). */
static void interior(int n_out, int n_in, const rn_pool_desc *d, int *lo, int *hi) {
    *lo = (d->pad + d->stride - 1) / d->stride;
    *hi = n_in - d->k + d->pad < 0 ? 0 : (n_in - d->k + d->pad) / d->stride + 1;
    if (*hi > n_out) *hi = n_out;
    if (*lo > *hi) *lo = *hi;
}

/* The interior box [y0, y1) x [x0, x1) of the output; returns the count of planes. */
static long interior_box(const rn_pool_desc *d, int *y0, int *y1, int *x0, int *x1) {
    interior(d->Ho, d->H, d, y0, y1);
    interior(d->Wo, d->W, d, x0, x1);
    return (long)d->N * d->C;
}

/* Whether v replaces the running maximum m, by the reference's rule: where it is greater or a
 * NaN, so ties keep the first; once m is a NaN it stays that NaN. */
static inline bool takes(float m, float v) { return m == m && (v > m || v != v); }

/* Interior columns [x0, x1) of output row oy: m[] the maxima and, with best non-NULL, their
 * indices into the plane x; taken window position by window position in the reference's scan
 * order, each a loop over the row's columns (vectorized). At most CHUNK columns per call. */
#define CHUNK 256
static void interior_row(const float *x, const rn_pool_desc *d, int oy, int x0, int x1,
                         float *m, int *best) {
    const int n = x1 - x0, st = d->stride, base = (oy * st - d->pad) * d->W + x0 * st - d->pad;
    for (int r = 0; r < d->k; r++)
        for (int s = 0; s < d->k; s++) {
            const int off = base + r * d->W + s;
            if (r == 0 && s == 0) {
#pragma omp simd
                for (int i = 0; i < n; i++) m[i] = x[off + i * st];
                if (best)
                    for (int i = 0; i < n; i++) best[i] = off + i * st;
                continue;
            }
            if (best) {
#pragma omp simd
                for (int i = 0; i < n; i++) {
                    const float v = x[off + i * st];
                    const bool take = takes(m[i], v);
                    m[i] = take ? v : m[i];
                    best[i] = take ? off + i * st : best[i];
                }
            } else {
#pragma omp simd
                for (int i = 0; i < n; i++) {
                    const float v = x[off + i * st];
                    m[i] = takes(m[i], v) ? v : m[i];
                }
            }
        }
}

void rn_cpu_maxpool_forward(float *out, const float *in, const rn_pool_desc *d, int nthreads) {
    int y0, y1, x0, x1;
    const long planes = interior_box(d, &y0, &y1, &x0, &x1);
#pragma omp parallel for num_threads(nthreads > 0 ? nthreads : 1) schedule(static)
    for (long nc = 0; nc < planes; nc++) {
        const float *x = in + (size_t)nc * d->H * d->W;
        float *y = out + (size_t)nc * d->Ho * d->Wo;
        for (int oy = 0; oy < d->Ho; oy++) {
            const bool inside = oy >= y0 && oy < y1;
            for (int ox = 0; ox < d->Wo; ox++) {
                if (inside && ox == x0) { /* the interior, in chunks */
                    for (int c = x0; c < x1; c += CHUNK)
                        interior_row(x, d, oy, c, c + CHUNK < x1 ? c + CHUNK : x1,
                                     y + oy * d->Wo + c, NULL);
                    ox = x1 - 1;
                    continue;
                }
                int i = rn_maxpool_window_argmax(x, d, oy, ox);
                y[oy * d->Wo + ox] = i < 0 ? -INFINITY : x[i];
            }
        }
    }
}

void rn_cpu_maxpool_backward(float *din, const float *dout, const float *in,
                             const rn_pool_desc *d, int nthreads) {
    int y0, y1, x0, x1;
    const long planes = interior_box(d, &y0, &y1, &x0, &x1);
#pragma omp parallel for num_threads(nthreads > 0 ? nthreads : 1) schedule(static)
    for (long nc = 0; nc < planes; nc++) {
        const float *x = in + (size_t)nc * d->H * d->W, *g = dout + (size_t)nc * d->Ho * d->Wo;
        float *dx = din + (size_t)nc * d->H * d->W;
        float m[CHUNK];
        int best[CHUNK];
        for (int oy = 0; oy < d->Ho; oy++) {
            const bool inside = oy >= y0 && oy < y1;
            for (int ox = 0; ox < d->Wo; ox++) {
                if (inside && ox == x0) {
                    for (int c = x0; c < x1; c += CHUNK) {
                        const int e = c + CHUNK < x1 ? c + CHUNK : x1;
                        interior_row(x, d, oy, c, e, m, best);
                        for (int i = 0; i < e - c; i++) dx[best[i]] += g[oy * d->Wo + c + i];
                    }
                    ox = x1 - 1;
                    continue;
                }
                const int i = rn_maxpool_window_argmax(x, d, oy, ox);
                if (i >= 0) dx[i] += g[oy * d->Wo + ox];
            }
        }
    }
}
