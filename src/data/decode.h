/*
 * decode.h — the per-image work of the streaming pipeline (stream.h): decoding one encoded
 * image held in memory (JPEG through libjpeg-turbo, PNG through stb_image) into interleaved RGB,
 * and turning a region of it into a normalized model input with torchvision's semantics. Each
 * decoding thread owns one rn_decoder and one rn_transform_scratch; nothing here is shared.
 */
#ifndef RN_DATA_DECODE_H
#define RN_DATA_DECODE_H

#include "core/draws.h"
#include "core/internal.h"

#include <stdbool.h>

/* A decoder and its output buffer, reused from image to image. */
typedef struct {
    void *tj;          /* the libjpeg-turbo handle (tjhandle) */
    uint8_t *pixels;   // (h, w, 3) RGB, row-major: the last decoded image
    size_t cap;        /* bytes allocated at pixels */
    int w, h;          /* the decoded size (after DCT scaling) */
} rn_decoder;

rn_status rn_decoder_init(rn_decoder *d);
void rn_decoder_free(rn_decoder *d);

/* The width and height an encoded image (JPEG or PNG) declares, without decoding it. `name`
 * (a path, or shard:member) is only for messages. */
rn_status rn_decoder_peek(rn_decoder *d, const uint8_t *data, size_t size, const char *name,
                          int *w, int *h);

/* Decodes an encoded image into d->pixels (d->h, d->w, 3). A JPEG is shrunk in the DCT domain
 * by the smallest of the factors 1/8, 1/4, 1/2, 1 that keeps the region
 * region_w x region_h (in full-size pixels) at least min_side pixels on both sides; min_side 0
 * decodes at full size (as PIL does). PNG is always full size. Gray and CMYK (Adobe) JPEGs are
 * converted to RGB as PIL's convert("RGB") does. A truncated JPEG is an error (as in PIL); a
 * JPEG that libjpeg-turbo decodes with a warning about other corrupt data is accepted (as in
 * PIL). */
rn_status rn_decoder_run(rn_decoder *d, const uint8_t *data, size_t size, const char *name,
                         int region_w, int region_h, int min_side);

/* Per-channel lookup tables: lut[c][v] = (v / 255 - mean[c]) / std[c] in float, as
 * torchvision's ToTensor + Normalize compute it. */
typedef struct {
    float lut[3][256];
} rn_normalizer;

void rn_normalizer_init(rn_normalizer *n, const float mean[3], const float std[3]);

/* Scratch memory of rn_transform_region, grown on demand. */
typedef struct {
    uint8_t *rows;     // (3, rows, out_w): the horizontal pass
    size_t cap;
    int32_t *acc;      // (out_w): one output row's sums in the vertical pass
    int acc_cap;
} rn_transform_scratch;

void rn_transform_scratch_free(rn_transform_scratch *t);

/* Resizes the region box (rows [top, top+h), columns [left, left+w) of the image rgb (ih, iw, 3))
 * to rh x rw with PIL's antialiased BILINEAR filter (resize.c: the filter window is cut at the
 * region's borders, and each pass rounds to uint8, as PIL's crop-then-resize does), keeps the
 * output window rows [oy, oy+oh), columns [ox, ox+ow), mirrors it when box.flip, and writes it
 * normalized to out (3, oh, ow). Only the window is computed. */
rn_status rn_transform_region(float *out, const uint8_t *rgb, int ih, int iw, rn_crop_box box,
                              int rh, int rw, int oy, int ox, int oh, int ow,
                              const rn_normalizer *norm, rn_transform_scratch *t);

/* The eval geometry of torchvision's Resize(resize) + CenterCrop(crop) on an iw x ih image:
 * the resized size rh x rw (shorter side = resize, the other int(resize * long / short)) and
 * the crop's offset (int(round((r - crop) / 2)), Python's rounding). */
void rn_eval_geometry(int ih, int iw, int resize, int crop, int *rh, int *rw, int *oy, int *ox);

#endif
