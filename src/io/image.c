/*
 * image.c — image files: the one list of formats read everywhere (predict and folder: data sets
 * alike), each recognized by its first bytes; PNG chunk CRCs checked first (png.c); decoding
 * with stb_image; and conversion of an image into a normalized model input.
 */
#include "core/internal.h"
#include "data/data.h"
#include "io/png.h"

#include <limits.h>
#include <stb/stb_image.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The formats read, by their first bytes; RN_IMAGE_FORMATS and RN_IMAGE_EXTENSIONS (resnet.h)
 * name the same list. stb_image reads PGM and PPM only in their binary forms (P5, P6). */
static const struct {
    const char *magic;
    size_t magic_len;
    const char *ext[2];
} formats[] = {
    {"\x89PNG\r\n\x1a\n", 8, {".png"}},
    {"\xff\xd8\xff", 3, {".jpg", ".jpeg"}},
    {"BM", 2, {".bmp"}},
    {"P5", 2, {".pgm"}},
    {"P6", 2, {".ppm"}},
};

/* Formats that are not read but are recognized, to name them in the message. */
static const char *unsupported_name(const unsigned char *head, size_t n) {
    if (n >= 12 && !memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WEBP", 4)) return "WebP";
    if (n >= 6 && (!memcmp(head, "GIF87a", 6) || !memcmp(head, "GIF89a", 6))) return "GIF";
    if (n >= 4 && (!memcmp(head, "II*\0", 4) || !memcmp(head, "MM\0*", 4))) return "TIFF";
    if (n >= 12 && !memcmp(head + 4, "ftyp", 4) &&
        (!memcmp(head + 8, "heic", 4) || !memcmp(head + 8, "heix", 4) ||
         !memcmp(head + 8, "mif1", 4)))
        return "HEIF";
    if (n >= 12 && !memcmp(head + 4, "ftypavif", 8)) return "AVIF";
    if (n >= 2 && head[0] == 'P' && (head[1] == '1' || head[1] == '2' || head[1] == '3'))
        return "plain-text PNM";
    return NULL;
}

const char *rn_image_name_unread(const char *name) {
    static const char *const ext[][2] = {{".webp", "WebP"}, {".gif", "GIF"}, {".tif", "TIFF"},
                                         {".tiff", "TIFF"}, {".heic", "HEIF"}, {".heif", "HEIF"},
                                         {".avif", "AVIF"}};
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return NULL;
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i][0])) return ext[i][1];
    return NULL;
}

bool rn_image_name_ok(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || dot == name) return false;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
        for (int e = 0; e < 2 && formats[i].ext[e]; e++)
            if (!strcasecmp(dot, formats[i].ext[e])) return true;
    return false;
}

/* Opens path and checks that it holds one of the formats and that stb_image reads its header:
 * *f is left at the start of the file, *w, *h, *c are the header's size and channels. */
/* Reads a whole image file (a regular file only) and checks it: one of the formats read (by
 * its first bytes), PNG chunk CRCs, a size stb_image reads, at most RN_IMAGE_MAX_PIXELS pixels.
 * *file (rn_free it) holds size bytes; *w, *h, *c the image's size and channels. */
static rn_status read_image(const char *path, void **file, size_t *size, int *w, int *h,
                            int *c) {
    rn_status s = rn_read_file_of(path, "a " RN_IMAGE_FORMATS " image", file, size);
    if (s) return s;
    const uint8_t *buf = *file;
    size_t n = *size;
    bool known = false;
    for (size_t i = 0; i < sizeof formats / sizeof *formats && !known; i++)
        known = n >= formats[i].magic_len && !memcmp(buf, formats[i].magic, formats[i].magic_len);
    const char *other = known ? NULL : unsupported_name(buf, n < 16 ? n : 16);
    if (n == 0 || n > INT_MAX)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: %s, expected a " RN_IMAGE_FORMATS " image",
                    RN_SHOW(path), n == 0 ? "empty file" : "larger than 2 GiB");
    else if (!known && other)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: a %s image, which is not read (expected "
                    RN_IMAGE_FORMATS ")", RN_SHOW(path), other);
    else if (!known)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: not a readable image (expected " RN_IMAGE_FORMATS ")",
                    RN_SHOW(path));
    else if (rn_png_is_png(buf, n))
        s = rn_png_check(buf, n, path);
    if (s == RN_OK && !stbi_info_from_memory(buf, (int)n, w, h, c))
        s = rn_fail(RN_ERR_BAD_FILE, "%s: not a readable image (%s; expected " RN_IMAGE_FORMATS
                    ")", RN_SHOW(path), stbi_failure_reason());
    if (s == RN_OK && (*w < 1 || *h < 1))
        s = rn_fail(RN_ERR_BAD_FILE, "%s: an image of %dx%d pixels (expected at least 1x1)",
                    RN_SHOW(path), *h, *w);
    if (s == RN_OK && (unsigned long long)*w * (unsigned long long)*h > RN_IMAGE_MAX_PIXELS)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: image is %dx%d, more than the %llu pixels this "
                    "program decodes (as Pillow refuses a decompression bomb)", RN_SHOW(path),
                    *h, *w, RN_IMAGE_MAX_PIXELS);
    if (s != RN_OK) {
        rn_free(*file);
        *file = NULL;
    }
    return s;
}

rn_status rn_image_info(const char *path, int *width, int *height, int *channels) {
    void *file;
    size_t size;
    int c;
    rn_status s = read_image(path, &file, &size, width, height, &c);
    if (s) return s;
    rn_free(file);
    *channels = c <= 2 ? 1 : 3;
    return RN_OK;
}

rn_status rn_image_load(rn_image *img, const char *path, int channels) {
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
    if (channels != 0 && channels != 1 && channels != 3)
        return rn_fail(RN_ERR_BAD_ARG, "%s: cannot convert to %d channels (expected 1 or 3)",
                       RN_SHOW(path), channels);
    void *file;
    size_t size;
    int w, h, c;
    rn_status s = read_image(path, &file, &size, &w, &h, &c);
    if (s) return s;
    const uint8_t *buf = file;
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

rn_status rn_image_to_input(float *out, const rn_image *img, int channels, int height,
                            int width, const rn_norm *norm) {
    if (img->channels != channels)
        return rn_fail(RN_ERR_SHAPE, "image has %d channels, the model expects %d (load it with "
                       "channels = %d)", img->channels, channels, channels);
    if (norm->channels != channels)
        return rn_fail(RN_ERR_BAD_ARG, "normalization has %d channels, the image %d",
                       norm->channels, channels);
    /* The data sets' conversion (planar, then PIL's BILINEAR resize when the size differs), so
     * an image reaches the model exactly as it would through a folder: data set. */
    size_t plane = (size_t)height * width;
    uint8_t *px = malloc(plane * channels);  // (channels, height, width)
    if (!px)
        return rn_fail(RN_ERR_NOMEM, "cannot allocate %zu bytes to convert an image",
                       plane * channels);
    rn_status s = rn_data_image_planes(px, height, width, img);
    for (int c = 0; s == RN_OK && c < channels; c++) {
        float *o = out + (size_t)c * plane;  // (height, width)
        const uint8_t *q = px + (size_t)c * plane;
        for (size_t p = 0; p < plane; p++)
            o[p] = ((float)q[p] / 255.0f - norm->mean[c]) / norm->std[c];
    }
    free(px);
    return s;
}
