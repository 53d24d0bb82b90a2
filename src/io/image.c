/*
 * image.c — image decoding (stb_image: PNG, JPEG, BMP, GIF, ...) and conversion of an image into
 * a normalized model input.
 */
#include "core/internal.h"

#include <stb/stb_image.h>

rn_status rn_image_load(rn_image *img, const char *path, int channels) {
    img->pixels = NULL;
    img->width = img->height = img->channels = 0;
    if (channels != 0 && channels != 1 && channels != 3)
        return rn_fail(RN_ERR_BAD_ARG, "%s: cannot convert to %d channels (expected 1 or 3)",
                       path, channels);
    FILE *f = fopen(path, "rb");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot open", path);
    int w, h, c;
    if (!stbi_info_from_file(f, &w, &h, &c)) {
        fclose(f);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a readable image (%s; expected PNG or JPEG)",
                       path, stbi_failure_reason());
    }
    int want = channels ? channels : (c <= 2 ? 1 : 3);
    unsigned char *px = stbi_load_from_file(f, &w, &h, &c, want);
    fclose(f);
    if (!px)
        return rn_fail(RN_ERR_BAD_FILE, "%s: cannot decode image (%s)", path,
                       stbi_failure_reason());
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
