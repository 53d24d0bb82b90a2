/*
 * image.c — image decoding (stb_image: PNG, JPEG, BMP, GIF, ...) and conversion of an image into
 * a normalized model input.
 */
#include "core/internal.h"
#include "data/data.h"

#include <errno.h>
#include <stb/stb_image.h>
#include <string.h>
#include <sys/stat.h>

rn_status rn_image_load(rn_image *img, const char *path, int channels) {
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
    if (channels != 0 && channels != 1 && channels != 3)
        return rn_fail(RN_ERR_BAD_ARG, "%s: cannot convert to %d channels (expected 1 or 3)",
                       path, channels);
    FILE *f = fopen(path, "rb");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && (S_ISDIR(sb.st_mode) || sb.st_size == 0)) {
        fclose(f);
        return rn_fail(S_ISDIR(sb.st_mode) ? RN_ERR_IO : RN_ERR_BAD_FILE,
                       "%s: %s, expected a PNG or JPEG image", path,
                       S_ISDIR(sb.st_mode) ? "is a directory" : "empty file");
    }
    int w, h, c;
    if (!stbi_info_from_file(f, &w, &h, &c)) {
        fclose(f);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a readable image (%s; expected PNG or JPEG)",
                       path, stbi_failure_reason());
    }
    int want = channels ? channels : (c <= 2 ? 1 : 3);
    unsigned char *px = stbi_load_from_file(f, &w, &h, &c, want);
    fclose(f);
    const char *why = stbi_failure_reason();
    if (!px)
        return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (%s)", path,
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
        for (size_t p = 0; p < plane; p++) o[p] = ((float)q[p] / 255.0f - norm->mean[c]) / norm->std[c];
    }
    free(px);
    return s;
}
