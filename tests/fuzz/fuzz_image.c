/*
 * fuzz_image.c — rn_image_load (PNG chunk checks, then stb_image) on arbitrary bytes, and the
 * decoded image turned into a model input as `resnet predict` does.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write("x.png", data, size);
    rn_image img;
    rn_status s = rn_image_load(&img, fuzz_path("x.png"), 0);
    fuzz_check_error(s);
    if (s != RN_OK) return 0;
    if (img.width <= 0 || img.height <= 0 || (img.channels != 1 && img.channels != 3)) abort();
    rn_norm norm = {.channels = img.channels, .mean = {0.5f, 0.5f, 0.5f},
                    .std = {0.25f, 0.25f, 0.25f}};
    float *in = malloc(sizeof(float) * 3 * 8 * 8);
    if (!in) abort();
    fuzz_check_error(rn_image_to_input(in, &img, img.channels, 8, 8, &norm));
    free(in);
    rn_image_free(&img);
    return 0;
}
