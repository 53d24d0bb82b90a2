/*
 * jpeg.c — decoding one encoded image from memory into interleaved RGB for the streaming
 * pipeline: JPEG with libjpeg-turbo's TurboJPEG API (tjDecompress2, optionally shrinking in the
 * DCT domain, which skips most of the inverse transform and upsampling work when the crop is
 * much smaller than the photo), PNG with stb_image. The default flags (accurate integer DCT,
 * smooth chroma upsampling) are the ones PIL decodes with, so eval inputs match torchvision's.
 */
#include "data/decode.h"

#include <string.h>
#include <turbojpeg.h>

#include <stb/stb_image.h>

/* PIL's limit (twice Image.MAX_IMAGE_PIXELS): larger images are refused as decompression bombs. */
#define MAX_PIXELS 178956970LL

/* A declared size that is empty or too large for a photo is an error. */
static rn_status check_size(int w, int h, const char *name) {
    if (w < 1 || h < 1)
        return rn_fail(RN_ERR_BAD_FILE, "%s: corrupt image header (no image size)", name);
    if ((int64_t)w * h > MAX_PIXELS)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %dx%d pixels, more than the %lld allowed (a corrupt "
                       "header or a decompression bomb)", name, w, h, MAX_PIXELS);
    return RN_OK;
}

static bool is_png(const uint8_t *data, size_t size) {
    return size >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8);
}

static bool is_jpeg(const uint8_t *data, size_t size) {
    return size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF;
}

rn_status rn_decoder_init(rn_decoder *d) {
    memset(d, 0, sizeof *d);
    d->tj = tjInitDecompress();
    if (!d->tj) return rn_fail(RN_ERR_NOMEM, "cannot start a JPEG decoder: %s", tjGetErrorStr());
    return RN_OK;
}

void rn_decoder_free(rn_decoder *d) {
    if (d->tj) tjDestroy(d->tj);
    free(d->pixels);
    memset(d, 0, sizeof *d);
}

static rn_status reserve(rn_decoder *d, int w, int h, int channels, const char *name) {
    size_t need = (size_t)w * h * channels;
    if (need <= d->cap) return RN_OK;
    uint8_t *p = realloc(d->pixels, need);
    if (!p) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes to decode it", name, need);
    d->pixels = p;
    d->cap = need;
    return RN_OK;
}

rn_status rn_decoder_peek(rn_decoder *d, const uint8_t *data, size_t size, const char *name,
                          int *w, int *h) {
    if (is_jpeg(data, size)) {
        int subsamp, colorspace;
        *w = *h = 0;
        if (tjDecompressHeader3(d->tj, data, (unsigned long)size, w, h, &subsamp, &colorspace))
            return rn_fail(RN_ERR_BAD_FILE, "%s: corrupt JPEG header (%s)", name,
                           tjGetErrorStr2(d->tj));
        return check_size(*w, *h, name);
    }
    if (is_png(data, size)) {
        int c;
        if (!stbi_info_from_memory(data, (int)size, w, h, &c))
            return rn_fail(RN_ERR_BAD_FILE, "%s: corrupt PNG header (%s)", name,
                           stbi_failure_reason());
        return check_size(*w, *h, name);
    }
    return rn_fail(RN_ERR_BAD_FILE, "%s: not a JPEG or PNG image (%zu bytes%s)", name, size,
                   size ? "" : ", empty");
}

/* The smallest factor num/8 (num 1, 2 or 4) with ceil(region * num / 8) >= min_side on both
 * sides, else 8 (full size). Only powers of two: libjpeg-turbo's other scaled inverse DCTs
 * (7/8, 3/4, ...) are plain C and made decoding twice as slow as full size with SIMD. */
static int dct_eighths(int region_w, int region_h, int min_side) {
    if (min_side <= 0) return 8;
    for (int num = 1; num < 8; num *= 2)
        if ((int)(((int64_t)region_w * num + 7) / 8) >= min_side &&
            (int)(((int64_t)region_h * num + 7) / 8) >= min_side)
            return num;
    return 8;
}

/* PIL's CMYK -> RGB for an Adobe (inverted) CMYK JPEG, in place: r = k' - k' * (255 - c') / 255
 * with c', k' the stored bytes and PIL's rounding of the product. */
static void cmyk_to_rgb(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = px + 4 * i;
        int k = s[3];
        uint8_t rgb[3];
        for (int c = 0; c < 3; c++) {
            int t = (255 - s[c]) * k + 128;
            int v = k - (((t >> 8) + t) >> 8);
            rgb[c] = (uint8_t)(v < 0 ? 0 : v);
        }
        memcpy(px + 3 * i, rgb, 3);
    }
}

static rn_status decode_jpeg(rn_decoder *d, const uint8_t *data, size_t size, const char *name,
                             int region_w, int region_h, int min_side) {
    int w = 0, h = 0, subsamp, colorspace;
    if (tjDecompressHeader3(d->tj, data, (unsigned long)size, &w, &h, &subsamp, &colorspace))
        return rn_fail(RN_ERR_BAD_FILE, "%s: corrupt JPEG header (%s)", name,
                       tjGetErrorStr2(d->tj));
    rn_status s = check_size(w, h, name);
    if (s) return s;
    int num = dct_eighths(region_w, region_h, min_side);
    tjscalingfactor f = {num, 8};
    int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
    bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    s = reserve(d, sw, sh, cmyk ? 4 : 3, name);
    if (s) return s;
    if (tjDecompress2(d->tj, data, (unsigned long)size, d->pixels, sw, 0, sh,
                      cmyk ? TJPF_CMYK : TJPF_RGB, 0)) {
        const char *why = tjGetErrorStr2(d->tj);
        /* PIL refuses truncated files and accepts other recoverable damage; so do we. */
        if (tjGetErrorCode(d->tj) == TJERR_FATAL || strstr(why, "Premature end"))
            return rn_fail(RN_ERR_BAD_FILE, "%s: truncated or corrupt JPEG (%s)", name, why);
    }
    if (cmyk) cmyk_to_rgb(d->pixels, (size_t)sw * sh);
    d->w = sw;
    d->h = sh;
    return RN_OK;
}

static rn_status decode_png(rn_decoder *d, const uint8_t *data, size_t size, const char *name) {
    int w = 0, h = 0, c;
    rn_status s = rn_decoder_peek(d, data, size, name, &w, &h);
    if (s) return s;
    uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &c, 3);
    if (!px)
        return rn_fail(RN_ERR_BAD_FILE, "%s: truncated or corrupt PNG (%s)", name,
                       stbi_failure_reason());
    s = reserve(d, w, h, 3, name);
    if (!s) {
        memcpy(d->pixels, px, (size_t)w * h * 3);
        d->w = w;
        d->h = h;
    }
    stbi_image_free(px);
    return s;
}

rn_status rn_decoder_run(rn_decoder *d, const uint8_t *data, size_t size, const char *name,
                         int region_w, int region_h, int min_side) {
    if (is_jpeg(data, size)) return decode_jpeg(d, data, size, name, region_w, region_h, min_side);
    if (is_png(data, size)) return decode_png(d, data, size, name);
    return rn_fail(RN_ERR_BAD_FILE, "%s: not a JPEG or PNG image (%zu bytes%s)", name, size,
                   size ? "" : ", empty");
}
