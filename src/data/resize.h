/*
 * resize.h — bilinear resizing of planar uint8 images, exactly as PIL's BILINEAR; see
 * resize.c. rn_data_resize_planes and rn_data_resize_set (data.h) are built on it.
 */
#ifndef RN_DATA_RESIZE_H
#define RN_DATA_RESIZE_H

#include "data/data.h"

/* The filter weights of one axis: output i reads count[i] inputs from start[i]. */
typedef struct {
    int taps;      /* stride of weight */
    int *start;    // (out)
    int *count;    // (out)
    int32_t *weight; // (out, taps), fixed point with 22 fraction bits
} rn_resize_axis;

/* Everything needed to resize sh x sw images to dh x dw. */
typedef struct {
    int sh, sw, dh, dw;
    rn_resize_axis x, y;
} rn_resizer;

rn_status rn_resizer_init(rn_resizer *r, int sh, int sw, int dh, int dw);
void rn_resizer_free(rn_resizer *r);

/* Resizes a planar image src (c, sh, sw) into dst (c, dh, dw); tmp holds sh*dw bytes. */
void rn_resizer_run(const rn_resizer *r, uint8_t *dst, const uint8_t *src, int c, uint8_t *tmp);

#endif
