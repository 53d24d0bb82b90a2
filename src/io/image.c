/*
 * image.c — image decoding (stb_image: PNG, JPEG, BMP, GIF, ...; PNG chunk CRCs checked first,
 * png.c) and conversion of an image into a normalized model input.
 */
#include "core/internal.h"
#include "io/png.h"

#include <limits.h>
#include <stb/stb_image.h>
#include <string.h>

rn_status rn_image_load(rn_image *img, const char *path, int channels) {
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
    if (channels != 0 && channels != 1 && channels != 3)
        return rn_fail(RN_ERR_BAD_ARG, "%s: cannot convert to %d channels (expected 1 or 3)",
                       RN_SHOW(path), channels);
    void *file;
    size_t size;
    rn_status s = rn_read_file_of(path, "a PNG or JPEG image", &file, &size);
    if (s) return s;
    const uint8_t *buf = file;
    if (size == 0 || size > INT_MAX) {
        rn_free(file);
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s, expected a PNG or JPEG image", RN_SHOW(path),
                       size == 0 ? "empty file" : "larger than 2 GiB");
    }
    if (rn_png_is_png(buf, size) && (s = rn_png_check(buf, size, path))) {
        rn_free(file);
        return s;
    }
    int w, h, c;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &c)) {
        rn_free(file);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a readable image (%s; expected PNG or JPEG)",
                       RN_SHOW(path), stbi_failure_reason());
    }
    if ((unsigned long long)w * (unsigned long long)h > RN_IMAGE_MAX_PIXELS) {
        rn_free(file);
        return rn_fail(RN_ERR_BAD_FILE, "%s: image is %dx%d, more than the %llu pixels this "
                       "program decodes (as Pillow refuses a decompression bomb)",
                       RN_SHOW(path), h, w, RN_IMAGE_MAX_PIXELS);
    }
    int want = channels ? channels : (c <= 2 ? 1 : 3);
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &w, &h, &c, want);
    rn_free(file);
    const char *why = stbi_failure_reason();
    if (!px)
        return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (%s)", RN_SHOW(path),
                       why && why[0] ? why : "truncated or corrupt");
    img->pixels = px;
    img->width = w;
    img->height = h;
    img->channels = want;
    return RN_OK;
}

void rn_image_free(rn_image *img) {
    if (img->pixels) stbi_image_free(img->pixels);
    img->pixels = NULL;
}

/* Bilinear sample of channel c at the output pixel (oy, ox), with the half-pixel convention of
 * PyTorch's interpolate(mode="bilinear", align_corners=False) and OpenCV's resize. */
static float bilinear(const rn_image *img, int c, int oy, int ox, int oh, int ow) {
    float sy = ((float)oy + 0.5f) * (float)img->height / (float)oh - 0.5f;
    float sx = ((float)ox + 0.5f) * (float)img->width / (float)ow - 0.5f;
    if (sy < 0) sy = 0;
    if (sx < 0) sx = 0;
    int y0 = (int)sy, x0 = (int)sx;
    int y1 = y0 + 1 < img->height ? y0 + 1 : y0, x1 = x0 + 1 < img->width ? x0 + 1 : x0;
    float fy = sy - (float)y0, fx = sx - (float)x0;
    const uint8_t *p = img->pixels;
    int C = img->channels, W = img->width;
    float a = p[(y0 * W + x0) * C + c], b = p[(y0 * W + x1) * C + c];
    float d = p[(y1 * W + x0) * C + c], e = p[(y1 * W + x1) * C + c];
    return (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * d + fx * e);
}

rn_status rn_image_to_input(float *out, const rn_image *img, int channels, int height,
                            int width, const rn_norm *norm) {
    if (img->channels != channels)
        return rn_fail(RN_ERR_SHAPE, "image has %d channels, the model expects %d (load it with "
                       "channels = %d)", img->channels, channels, channels);
    if (norm->channels != channels)
        return rn_fail(RN_ERR_BAD_ARG, "normalization has %d channels, the image %d",
                       norm->channels, channels);
    bool same = img->height == height && img->width == width;
    for (int c = 0; c < channels; c++) {
        float *o = out + (size_t)c * height * width;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) {
                float v = same ? img->pixels[((size_t)y * width + x) * channels + c]
                               : bilinear(img, c, y, x, height, width);
                o[y * width + x] = (v / 255.0f - norm->mean[c]) / norm->std[c];
            }
    }
    return RN_OK;
}
