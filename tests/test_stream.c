/*
 * test_stream.c — the pieces of the streamed data sets that need no Python: the
 * RandomResizedCrop draw (its fallback, its bounds, its determinism), the eval geometry's
 * rounding, the windowed transform against the reference resizer (resize.c), JPEG decoding
 * (sizes, DCT scaling, bad bytes), and a stream over a generated folder (thread-count and
 * request-order independence, refused and skipped corrupt files, bad options). stream_test.sh
 * compares the outputs with torchvision's and covers the tar shards.
 */
#include "testutil.h"

#include "core/draws.h"
#include "data/data.h"
#include "data/decode.h"
#include "data/resize.h"
#include "data/stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* A w x h RGB JPEG of smooth content with some grain; free with tjFree. */
static uint8_t *make_jpeg(int w, int h, int seed, unsigned long *size) {
    uint8_t *px = malloc((size_t)w * h * 3);
    uint64_t st = (uint64_t)seed * 7919 + 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                int v = (x * (c + 1) * 255 / w + y * 255 / h + seed * 40) / 2 + (int)(st >> 61);
                px[((size_t)y * w + x) * 3 + c] = (uint8_t)(v & 255);
            }
    tjhandle tj = tjInitCompress();
    uint8_t *jpeg = NULL;
    *size = 0;
    if (tjCompress2(tj, px, w, 0, h, TJPF_RGB, &jpeg, size, TJSAMP_420, 90, 0))
        fail_msg("tjCompress2: %s", tjGetErrorStr());
    tjDestroy(tj);
    free(px);
    return jpeg;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
    fclose(f);
}

/* ROOT/train/{a,b,c}/i.jpg, `per_class` JPEGs of various sizes each; returns ROOT. */
static const char *make_folder(const char *name, int per_class) {
    static char root[512];
    snprintf(root, sizeof root, "%s/%s", tu_tmpdir(), name);
    char path[1024];
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/train", root);
    mkdir(path, 0755);
    const char *cls[] = {"a", "b", "c"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/train/%s", root, cls[k]);
        mkdir(path, 0755);
        for (int i = 0; i < per_class; i++) {
            unsigned long size;
            uint8_t *j = make_jpeg(90 + 13 * i, 70 + 7 * k, k * 10 + i, &size);
            snprintf(path, sizeof path, "%s/train/%s/%d.jpg", root, cls[k], i);
            write_file(path, j, size);
            tjFree(j);
        }
    }
    return root;
}

/* Every batch of one epoch: (steps * batch, 3, S, S) floats and the labels. */
static void read_epoch(rn_stream *s, int epoch, int batch, int S, float *x, int32_t *labels) {
    size_t plane = (size_t)3 * S * S;
    for (int t = 0; t < rn_stream_steps(s); t++) {
        int n;
        rn_status st = rn_stream_batch(s, epoch, t, x + (size_t)t * batch * plane,
                                       labels + (size_t)t * batch, &n);
        if (st) fail_msg("batch %d: %s", t, rn_error_message());
    }
}

/* ---- draws ---------------------------------------------------------------------------- */

static void test_crop_fallback(void **state) {
    (void)state;
    /* No box of area >= 8% with ratio <= 4/3 fits 10 rows: always the fallback, the center
     * crop clamped to ratio 4/3 (w = round(10 * 4/3) = 13), as torchvision. */
    for (int i = 0; i < 200; i++) {
        rn_crop_box b = rn_draw_resized_crop(1, 0, i, 1000, 10, 0.08, 1, 0.75, 4.0 / 3);
        assert_int_equal(b.h, 10);
        assert_int_equal(b.w, 13);
        assert_int_equal(b.top, 0);
        assert_int_equal(b.left, (1000 - 13) / 2);
        b = rn_draw_resized_crop(1, 0, i, 10, 1000, 0.08, 1, 0.75, 4.0 / 3);
        assert_int_equal(b.w, 10);
        assert_int_equal(b.h, 13); /* round(10 / 0.75) */
        assert_int_equal(b.top, (1000 - 13) / 2);
        assert_int_equal(b.left, 0);
    }
    /* The whole image when its own ratio is in range and nothing fits (scale > 1 never fits). */
    rn_crop_box b = rn_draw_resized_crop(1, 0, 0, 300, 250, 1.5, 1.6, 0.75, 4.0 / 3);
    assert_true(b.top == 0 && b.left == 0 && b.h == 250 && b.w == 300);
}

static void test_crop_bounds_and_keys(void **state) {
    (void)state;
    int flips = 0, n = 20000, changed = 0, fallbacks = 0;
    double area_sum = 0;
    for (int i = 0; i < n; i++) {
        int w = 50 + i % 600, h = 40 + (i * 7) % 500;
        rn_crop_box b = rn_draw_resized_crop(7, 3, i, w, h, 0.08, 1, 0.75, 4.0 / 3);
        assert_true(b.top >= 0 && b.left >= 0 && b.h >= 1 && b.w >= 1);
        assert_true(b.top + b.h <= h && b.left + b.w <= w);
        rn_crop_box again = rn_draw_resized_crop(7, 3, i, w, h, 0.08, 1, 0.75, 4.0 / 3);
        assert_memory_equal(&b, &again, sizeof b);
        rn_crop_box other = rn_draw_resized_crop(7, 4, i, w, h, 0.08, 1, 0.75, 4.0 / 3);
        changed += memcmp(&b, &other, sizeof b) != 0;
        flips += b.flip;
        if (b.h == h && b.w == w) fallbacks++;
        else {
            /* a drawn box: its area fraction and ratio are in range, up to the rounding */
            double frac = (double)b.w * b.h / ((double)w * h);
            double ratio = (double)b.w / b.h;
            assert_true(frac > 0.08 * 0.8 && frac < 1.2);
            assert_true(ratio > 0.75 * 0.8 && ratio < 4.0 / 3 * 1.25);
            area_sum += frac;
        }
    }
    print_message("    flips %d/%d, epoch changes box %d/%d, whole-image boxes %d, mean area "
                  "fraction %.3f\n", flips, n, changed, n, fallbacks, area_sum / (n - fallbacks));
    assert_true(flips > n * 0.47 && flips < n * 0.53);
    assert_true(changed > n * 0.95);
    /* uniform area fraction in [0.08, 1) thinned where it does not fit: below 0.54 */
    assert_true(area_sum / (n - fallbacks) > 0.25 && area_sum / (n - fallbacks) < 0.54);
    /* a photo: torchvision's get_params gives a mean area fraction of 0.435 on 500 x 375
     * (20000 draws, standard error 0.002) */
    area_sum = 0;
    for (int i = 0; i < n; i++) {
        rn_crop_box b = rn_draw_resized_crop(8, 0, i, 500, 375, 0.08, 1, 0.75, 4.0 / 3);
        area_sum += (double)b.w * b.h / (500.0 * 375.0);
    }
    print_message("    500x375: mean area fraction %.4f (torchvision 0.435)\n", area_sum / n);
    assert_true(fabs(area_sum / n - 0.435) < 0.006);
}

static void test_eval_geometry(void **state) {
    (void)state;
    int rh, rw, oy, ox;
    rn_eval_geometry(375, 500, 256, 224, &rh, &rw, &oy, &ox);
    /* int(256 * 500 / 375) = 341; round((341 - 224) / 2) = round(58.5) = 58 (to even) */
    assert_int_equal(rh, 256);
    assert_int_equal(rw, 341);
    assert_int_equal(oy, 16);
    assert_int_equal(ox, 58);
    rn_eval_geometry(500, 333, 256, 224, &rh, &rw, &oy, &ox);
    /* int(256 * 500 / 333) = 384; round(80 / 2) = 40 */
    assert_int_equal(rw, 256);
    assert_int_equal(rh, 384);
    assert_int_equal(oy, 80);
    assert_int_equal(ox, 16);
    rn_eval_geometry(300, 401, 256, 224, &rh, &rw, &oy, &ox);
    /* int(256 * 401 / 300) = 342; round(118 / 2) = 59; round(32 / 2) = 16 */
    assert_int_equal(rw, 342);
    assert_int_equal(ox, 59);
    rn_eval_geometry(256, 483, 256, 224, &rh, &rw, &oy, &ox);
    /* round(259 / 2) = round(129.5) = 130 (to even) */
    assert_int_equal(rw, 483);
    assert_int_equal(ox, 130);
}

/* ---- transform against the reference resizer ---------------------------------------- */

static void test_transform_matches_reference(void **state) {
    (void)state;
    int ih = 57, iw = 83;
    uint8_t *rgb = malloc((size_t)ih * iw * 3);
    for (int i = 0; i < ih * iw * 3; i++) rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    rn_crop_box box = {5, 9, 41, 60, 0};
    int rh = 31, rw = 47;
    /* reference: crop to planar, resize.c, normalize */
    uint8_t *planar = malloc((size_t)3 * box.h * box.w), *resized = malloc((size_t)3 * rh * rw);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < box.h; y++)
            for (int x = 0; x < box.w; x++)
                planar[((size_t)c * box.h + y) * box.w + x] =
                    rgb[((size_t)(box.top + y) * iw + box.left + x) * 3 + c];
    assert_int_equal(rn_data_resize_planes(resized, rh, rw, planar, box.h, box.w, 3), RN_OK);
    rn_normalizer norm;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    rn_normalizer_init(&norm, mean, std);
    rn_transform_scratch t = {0};
    /* a window of the output, plain and mirrored */
    int oy = 4, ox = 7, oh = 20, ow = 33;
    float *out = malloc((size_t)3 * oh * ow * sizeof *out), *flip = malloc((size_t)3 * oh * ow * sizeof *flip);
    assert_int_equal(rn_transform_region(out, rgb, ih, iw, box, rh, rw, oy, ox, oh, ow, &norm, &t),
                     RN_OK);
    box.flip = 1;
    assert_int_equal(rn_transform_region(flip, rgb, ih, iw, box, rh, rw, oy, ox, oh, ow, &norm, &t),
                     RN_OK);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                uint8_t v = resized[((size_t)c * rh + oy + y) * rw + ox + x];
                float want = ((float)v / 255.0f - mean[c]) / std[c];
                bad += out[((size_t)c * oh + y) * ow + x] != want;
                bad += flip[((size_t)c * oh + y) * ow + (ow - 1 - x)] != want;
            }
    assert_int_equal(bad, 0);
    /* a window outside the resized image is refused */
    assert_int_equal(rn_transform_region(out, rgb, ih, iw, box, rh, rw, 12, 0, 20, 33, &norm, &t),
                     RN_ERR_BAD_ARG);
    rn_transform_scratch_free(&t);
    free(rgb);
    free(planar);
    free(resized);
    free(out);
    free(flip);
}

/* ---- decoding ----------------------------------------------------------------------- */

static void test_decoder(void **state) {
    (void)state;
    unsigned long size;
    uint8_t *j = make_jpeg(400, 300, 1, &size);
    rn_decoder d;
    assert_int_equal(rn_decoder_init(&d), RN_OK);
    int w, h;
    assert_int_equal(rn_decoder_peek(&d, j, size, "x.jpg", &w, &h), RN_OK);
    assert_true(w == 400 && h == 300);
    assert_int_equal(rn_decoder_run(&d, j, size, "x.jpg", 0, 0, 0), RN_OK);
    assert_true(d.w == 400 && d.h == 300);
    /* the smallest of 1/8, 1/4, 1/2 keeping the region >= 70 on both sides: 1/4 (100 x 75) */
    assert_int_equal(rn_decoder_run(&d, j, size, "x.jpg", 400, 300, 70), RN_OK);
    assert_true(d.w == 100 && d.h == 75);
    assert_int_equal(rn_decoder_run(&d, j, size, "x.jpg", 400, 300, 76), RN_OK);
    assert_true(d.w == 200 && d.h == 150);
    /* a small region keeps more of the image: 8/8 */
    assert_int_equal(rn_decoder_run(&d, j, size, "x.jpg", 120, 120, 224), RN_OK);
    assert_true(d.w == 400 && d.h == 300);
    /* truncated: refused, with the name */
    assert_int_equal(rn_decoder_run(&d, j, size / 2, "cut.jpg", 0, 0, 0), RN_ERR_BAD_FILE);
    print_message("    %s\n", rn_error_message());
    assert_non_null(strstr(rn_error_message(), "cut.jpg"));
    assert_non_null(strstr(rn_error_message(), "truncated"));
    assert_int_equal(rn_decoder_run(&d, (const uint8_t *)"GIF89a..", 8, "g.jpg", 0, 0, 0),
                     RN_ERR_BAD_FILE);
    assert_non_null(strstr(rn_error_message(), "g.jpg: not a JPEG or PNG"));
    assert_int_equal(rn_decoder_peek(&d, j, 0, "empty.jpg", &w, &h), RN_ERR_BAD_FILE);
    assert_non_null(strstr(rn_error_message(), "empty"));
    tjFree(j);
    rn_decoder_free(&d);
}

/* ---- streams over a folder ------------------------------------------------------------ */

static void test_stream_independent_of_threads_and_order(void **state) {
    (void)state;
    const char *root = make_folder("order", 5);
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    int S = 48, B = 4;
    size_t plane = (size_t)3 * S * S;
    rn_stream_opts o = rn_stream_opts_default();
    o.size = S;
    o.batch = B;
    o.seed = 11;
    o.threads = 1;
    o.prefetch = 1;
    rn_stream *one, *many;
    assert_int_equal(rn_stream_open(&one, spec, &o), RN_OK);
    o.threads = 3;
    o.prefetch = 3;
    assert_int_equal(rn_stream_open(&many, spec, &o), RN_OK);
    assert_int_equal(rn_stream_len(one), 15);
    assert_int_equal(rn_stream_num_classes(one), 3);
    assert_string_equal(rn_stream_class_names(one)[2], "c");
    int steps = rn_stream_steps(one); /* drop_last: 3 */
    assert_int_equal(steps, 3);
    float *a = malloc((size_t)steps * B * plane * sizeof *a);
    float *b = malloc((size_t)steps * B * plane * sizeof *b);
    int32_t la[16], lb[16];
    read_epoch(one, 1, B, S, a, la);
    read_epoch(many, 1, B, S, b, lb);
    assert_memory_equal(a, b, (size_t)steps * B * plane * sizeof *a);
    assert_memory_equal(la, lb, (size_t)steps * B * sizeof *la);
    /* asked for out of order (a resumed run): the same batches */
    int n;
    assert_int_equal(rn_stream_batch(many, 4, 0, b, lb, &n), RN_OK);
    assert_int_equal(rn_stream_batch(many, 1, 2, b, lb, &n), RN_OK);
    assert_int_equal(n, B);
    assert_memory_equal(a + (size_t)2 * B * plane, b, (size_t)B * plane * sizeof *a);
    assert_int_equal(rn_stream_batch(many, 1, 0, b, lb, &n), RN_OK);
    assert_memory_equal(a, b, (size_t)B * plane * sizeof *a);
    /* another epoch: another order or other crops */
    assert_int_equal(rn_stream_batch(many, 2, 0, b, lb, &n), RN_OK);
    assert_memory_not_equal(a, b, (size_t)B * plane * sizeof *a);
    rn_stream_close(one);
    rn_stream_close(many);
    free(a);
    free(b);
}

static int skips;
static char skip_msg[1024];
static void count_skip(const char *m, void *user) {
    (void)user;
    skips++;
    snprintf(skip_msg, sizeof skip_msg, "%s", m);
}

static void test_stream_bad_files(void **state) {
    (void)state;
    const char *root = make_folder("bad", 3);
    char spec[600], path[1024];
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(path, sizeof path, "%s/train/b/1.jpg", root);
    write_file(path, "\xFF\xD8\xFF\xE0 not really", 15);
    rn_stream_opts o = rn_stream_opts_default();
    o.size = 32;
    o.batch = 9;
    o.shuffle = false;
    o.transform = RN_TRANSFORM_EVAL;
    float *x = malloc((size_t)9 * 3 * 32 * 32 * sizeof *x);
    int32_t labels[9];
    int n;
    rn_stream *s;
    /* refused by default: the batch fails and names the file */
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_OK);
    rn_status st = rn_stream_batch(s, 0, 0, x, labels, &n);
    print_message("    refused: %s\n", rn_error_message());
    assert_int_equal(st, RN_ERR_BAD_FILE);
    assert_non_null(strstr(rn_error_message(), "train/b/1.jpg"));
    assert_int_equal(n, 0);
    rn_stream_close(s);
    /* skipped on request: replaced by the next image of the order, reported once */
    o.skip_bad = true;
    o.on_skip = count_skip;
    skips = 0;
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_OK);
    assert_int_equal(rn_stream_batch(s, 0, 0, x, labels, &n), RN_OK);
    assert_int_equal(n, 9);
    assert_int_equal(skips, 1);
    print_message("    skipped: %s\n", skip_msg);
    assert_non_null(strstr(skip_msg, "train/b/1.jpg"));
    /* positions 3..5 are class b; position 4 (b/1) became b/2 */
    int32_t want[9] = {0, 0, 0, 1, 1, 1, 2, 2, 2};
    assert_memory_equal(labels, want, sizeof want);
    size_t plane = (size_t)3 * 32 * 32;
    assert_memory_equal(x + 4 * plane, x + 5 * plane, plane * sizeof *x);
    rn_stream_close(s);
    free(x);
}

static void test_stream_bad_options(void **state) {
    (void)state;
    const char *root = make_folder("opts", 2);
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    rn_stream *s;
    rn_stream_opts o = rn_stream_opts_default();
    o.batch = 7; /* 6 images, drop_last */
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "fewer than one batch"));
    o.batch = 2;
    o.split = "val";
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_ERR_IO);
    assert_non_null(strstr(rn_error_message(), "/val: no such folder"));
    o.split = "train";
    assert_int_equal(rn_stream_open(&s, "cifar10:/x", &o), RN_ERR_BAD_ARG);
    int subset[2] = {1, 6};
    o.subset = subset;
    o.subset_n = 2;
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_ERR_BAD_ARG);
    assert_non_null(strstr(rn_error_message(), "subset"));
    subset[1] = 5;
    assert_int_equal(rn_stream_open(&s, spec, &o), RN_OK);
    assert_int_equal(rn_stream_len(s), 2);
    float x[2 * 3 * 224 * 224];
    int32_t labels[2];
    int n;
    assert_int_equal(rn_stream_batch(s, 0, 1, x, labels, &n), RN_ERR_BAD_ARG);
    assert_int_equal(rn_stream_batch(s, 0, 0, x, labels, &n), RN_OK);
    assert_true((labels[0] == 0 && labels[1] == 2) || (labels[0] == 2 && labels[1] == 0));
    rn_stream_close(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_fallback),
        cmocka_unit_test(test_crop_bounds_and_keys),
        cmocka_unit_test(test_eval_geometry),
        cmocka_unit_test(test_transform_matches_reference),
        cmocka_unit_test(test_decoder),
        cmocka_unit_test(test_stream_independent_of_threads_and_order),
        cmocka_unit_test(test_stream_bad_files),
        cmocka_unit_test(test_stream_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
