/*
 * test_data.c — the data sets (src/data/): small files of every format are written to a
 * temporary folder and loaded back, pixel for pixel; statistics, the seeded split, the pack ->
 * load round trip, resizing against PIL's output, and every kind of bad input (status and
 * message). If the real Fashion-MNIST is installed it is loaded too.
 */
#include "testutil.h"

#include "data/data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers -------------------------------------------------------------------------- */

/* A fresh folder under the test's temporary folder: tmp/name. */
static const char *fresh_dir(const char *name) {
    static char dirs[64][512];
    static int used;
    char *d = dirs[used++ % 64];
    snprintf(d, 512, "%s/%s", tu_tmpdir(), name);
    mkdir(d, 0755);
    return d;
}

static void mkdirs(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    mkdir(buf, 0755);
}

static void write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        fail_msg("path too long: %s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (n && fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text) {
    write_bytes(dir, name, text, strlen(text));
}

static void remove_file(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    remove(path);
}

/* The pixel byte the generated sets hold: image i, byte k, some seed. */
static uint8_t pix(int i, int k, int seed) { return (uint8_t)(i * 37 + k * 11 + seed * 101 + (k >> 3)); }

/* Asserts a failed status and a message containing each of up to three substrings. */
static void expect_fail(rn_status got, rn_status want, const char *a, const char *b,
                        const char *c) {
    const char *m = rn_error_message();
    print_message("    expected failure: %s: %s\n", rn_status_name(got), m);
    if (got != want)
        fail_msg("status %s, expected %s (message: %s)", rn_status_name(got),
                 rn_status_name(want), m);
    const char *subs[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (subs[i] && !strstr(m, subs[i]))
            fail_msg("message '%s' lacks '%s'", m, subs[i]);
    if (strchr(m, '\n')) fail_msg("message '%s' is more than one line", m);
}

/* Loads spec and asserts that it fails with want and substrings; the sets must stay empty. */
static void expect_load_fail(const char *spec, const rn_data_opts *opts, rn_status want,
                             const char *a, const char *b, const char *c) {
    rn_dataset tr, te;
    memset(&tr, 0x5a, sizeof tr);
    memset(&te, 0x5a, sizeof te);
    rn_status s = rn_dataset_load(&tr, &te, spec, opts);
    expect_fail(s, want, a, b, c);
    assert_null(tr.images);
    assert_null(te.images);
    assert_int_equal(tr.n, 0);
    assert_int_equal(te.n, 0);
}

/* CIFAR-10 records: n images, label of image i = labels[i], pixels pix(i + first, k, seed). */
static void write_cifar10_batch(const char *dir, const char *name, int n, int first,
                                const int *labels, int seed) {
    size_t rec = 1 + 3072;
    uint8_t *buf = malloc(n * rec + 1);
    for (int i = 0; i < n; i++) {
        buf[i * rec] = (uint8_t)labels[first + i];
        for (int k = 0; k < 3072; k++) buf[i * rec + 1 + k] = pix(first + i, k, seed);
    }
    write_bytes(dir, name, buf, n * rec);
    free(buf);
}

static const int cifar10_counts[5] = {2, 1, 3, 1, 2};
static const int cifar10_labels[9] = {3, 0, 9, 1, 1, 5, 7, 2, 8};
static const int cifar10_test_labels[3] = {6, 4, 0};

/* A CIFAR-10 folder with 9 train images in 5 batches and 3 test images. */
static void make_cifar10(const char *dir, bool names) {
    char bname[32];
    for (int b = 0, first = 0; b < 5; b++) {
        snprintf(bname, sizeof bname, "data_batch_%d.bin", b + 1);
        write_cifar10_batch(dir, bname, cifar10_counts[b], first, cifar10_labels, 0);
        first += cifar10_counts[b];
    }
    write_cifar10_batch(dir, "test_batch.bin", 3, 0, cifar10_test_labels, 1);
    if (names)
        write_text(dir, "batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\n"
                                            "horse\nship\r\ntruck\n\n");
    else
        remove_file(dir, "batches.meta.txt");
}

/* Same counts, shape, classes and class names. */
static void assert_same_form(const rn_dataset *a, const rn_dataset *b) {
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->c, b->c);
    assert_int_equal(a->h, b->h);
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->num_classes, b->num_classes);
    for (int k = 0; k < a->num_classes; k++) assert_string_equal(a->class_names[k], b->class_names[k]);
}

static void assert_sets_equal(const rn_dataset *a, const rn_dataset *b) {
    assert_same_form(a, b);
    assert_memory_equal(a->images, b->images, (size_t)a->n * a->c * a->h * a->w);
    assert_memory_equal(a->labels, b->labels, (size_t)a->n * sizeof *a->labels);
}

/* Records (label byte, then pixels) of a set, sorted, to compare sets as multisets. */
static size_t record_size;
static int cmp_record(const void *a, const void *b) { return memcmp(a, b, record_size); }
static uint8_t *sorted_records(const rn_dataset *d) {
    size_t img = (size_t)d->c * d->h * d->w;
    record_size = 1 + img;
    uint8_t *r = malloc((size_t)d->n * record_size);
    for (int i = 0; i < d->n; i++) {
        r[i * record_size] = (uint8_t)d->labels[i];
        memcpy(r + i * record_size + 1, d->images + i * img, img);
    }
    qsort(r, (size_t)d->n, record_size, cmp_record);
    return r;
}

/* Packing shuffles: b holds a's images with their labels, in another order. */
static void assert_sets_permuted(const rn_dataset *a, const rn_dataset *b) {
    assert_same_form(a, b);
    uint8_t *ra = sorted_records(a), *rb = sorted_records(b);
    assert_memory_equal(ra, rb, (size_t)a->n * record_size);
    free(ra);
    free(rb);
}

/* A set built in memory: n images (c, h, w), label i % k, pixels pix(i, byte, seed). */
static void make_set(rn_dataset *d, int n, int c, int h, int w, int k, int seed) {
    TU_OK(rn_data_alloc(d, NULL, n, c, h, w, k));
    size_t img = (size_t)c * h * w;
    for (int i = 0; i < n; i++) {
        d->labels[i] = i % k;
        for (size_t j = 0; j < img; j++) d->images[i * img + j] = pix(i, (int)j, seed);
    }
    TU_OK(rn_data_default_names(d));
}

/* ---- CIFAR ---------------------------------------------------------------------------- */

static void test_cifar10(void **state) {
    const char *dir = fresh_dir("cifar10");
    make_cifar10(dir, true);
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.n, 9);
    assert_int_equal(te.n, 3);
    assert_int_equal(tr.c, 3);
    assert_int_equal(tr.h, 32);
    assert_int_equal(tr.w, 32);
    assert_int_equal(tr.num_classes, 10);
    assert_int_equal(te.num_classes, 10);
    int bad = 0;
    for (int i = 0; i < 9; i++) {
        bad += tr.labels[i] != cifar10_labels[i];
        for (int k = 0; k < 3072; k++) bad += tr.images[i * 3072 + k] != pix(i, k, 0);
    }
    for (int i = 0; i < 3; i++) {
        bad += te.labels[i] != cifar10_test_labels[i];
        for (int k = 0; k < 3072; k++) bad += te.images[i * 3072 + k] != pix(i, k, 1);
    }
    print_message("    cifar10: %d wrong bytes or labels\n", bad);
    assert_int_equal(bad, 0);
    assert_string_equal(tr.class_names[0], "airplane");
    assert_string_equal(tr.class_names[8], "ship");
    assert_string_equal(te.class_names[9], "truck");
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    rn_dataset_free(&te); /* freeing twice is allowed */

    /* Without batches.meta.txt the names are the numbers; test may be skipped. */
    make_cifar10(dir, false);
    TU_OK(rn_dataset_load(&tr, NULL, spec, NULL));
    assert_int_equal(tr.n, 9);
    assert_string_equal(tr.class_names[0], "0");
    assert_string_equal(tr.class_names[9], "9");
    rn_dataset_free(&tr);
}

static void test_cifar100(void **state) {
    const char *dir = fresh_dir("cifar100");
    size_t rec = 2 + 3072;
    int n = 4, coarse[4] = {19, 0, 7, 3}, fine[4] = {99, 0, 42, 17};
    uint8_t *buf = malloc(n * rec);
    for (int i = 0; i < n; i++) {
        buf[i * rec] = (uint8_t)coarse[i];
        buf[i * rec + 1] = (uint8_t)fine[i];
        for (int k = 0; k < 3072; k++) buf[i * rec + 2 + k] = pix(i, k, 2);
    }
    write_bytes(dir, "train.bin", buf, n * rec);
    write_bytes(dir, "test.bin", buf + rec, 2 * rec);
    char names[2000] = "";
    for (int k = 0; k < 100; k++) sprintf(names + strlen(names), "fine%d\n", k);
    write_text(dir, "fine_label_names.txt", names);
    free(buf);

    char spec[600];
    snprintf(spec, sizeof spec, "cifar100:%s", dir);
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.n, 4);
    assert_int_equal(te.n, 2);
    assert_int_equal(tr.num_classes, 100);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += tr.labels[i] != fine[i];
        for (int k = 0; k < 3072; k++) bad += tr.images[i * 3072 + k] != pix(i, k, 2);
    }
    bad += te.labels[0] != fine[1] || te.labels[1] != fine[2];
    for (int k = 0; k < 3072; k++) bad += te.images[k] != pix(1, k, 2);
    print_message("    cifar100: %d wrong bytes or labels\n", bad);
    assert_int_equal(bad, 0);
    assert_string_equal(tr.class_names[42], "fine42");
    rn_dataset_free(&tr);
    rn_dataset_free(&te);

    snprintf(spec, sizeof spec, "cifar100-coarse:%s", dir);
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.num_classes, 20);
    for (int i = 0; i < n; i++) assert_int_equal(tr.labels[i], coarse[i]);
    assert_string_equal(tr.class_names[19], "19"); /* no coarse_label_names.txt */
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

/* ---- IDX ------------------------------------------------------------------------------ */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* IDX bytes for n images (rows, cols) or, rows == 0, n labels; labels[i] = lab(i). */
static uint8_t *idx_bytes(uint32_t magic, int n, int rows, int cols, int seed, size_t *size) {
    size_t head = rows ? 16 : 8, body = rows ? (size_t)n * rows * cols : (size_t)n;
    uint8_t *b = malloc(head + body);
    put_be32(b, magic);
    put_be32(b + 4, (uint32_t)n);
    if (rows) {
        put_be32(b + 8, (uint32_t)rows);
        put_be32(b + 12, (uint32_t)cols);
        for (size_t k = 0; k < body; k++) b[head + k] = pix((int)(k / (rows * cols)), (int)(k % (rows * cols)), seed);
    } else {
        for (int i = 0; i < n; i++) b[head + i] = (uint8_t)((i * 3 + seed) % 10);
    }
    *size = head + body;
    return b;
}

static void write_gz(const char *dir, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (gzwrite(f, data, (unsigned)n) != (int)n) fail_msg("cannot write %s", path);
    gzclose(f);
}

/* An MNIST folder: train 7 images 5x4 (plain files), test 3 images (gzip). */
static void make_mnist(const char *dir) {
    size_t n;
    uint8_t *b = idx_bytes(0x803, 7, 5, 4, 3, &n);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    free(b);
    b = idx_bytes(0x801, 7, 0, 0, 3, &n);
    write_bytes(dir, "train-labels-idx1-ubyte", b, n);
    free(b);
    b = idx_bytes(0x803, 3, 5, 4, 4, &n);
    write_gz(dir, "t10k-images-idx3-ubyte.gz", b, n);
    free(b);
    b = idx_bytes(0x801, 3, 0, 0, 4, &n);
    write_gz(dir, "t10k-labels-idx1-ubyte.gz", b, n);
    free(b);
}

static void test_mnist(void **state) {
    const char *dir = fresh_dir("mnist");
    make_mnist(dir);
    char spec[600];
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.n, 7);
    assert_int_equal(te.n, 3);
    assert_int_equal(tr.c, 1);
    assert_int_equal(tr.h, 5);
    assert_int_equal(tr.w, 4);
    assert_int_equal(tr.num_classes, 10);
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        bad += tr.labels[i] != (i * 3 + 3) % 10;
        for (int k = 0; k < 20; k++) bad += tr.images[i * 20 + k] != pix(i, k, 3);
    }
    for (int i = 0; i < 3; i++) {
        bad += te.labels[i] != (i * 3 + 4) % 10;
        for (int k = 0; k < 20; k++) bad += te.images[i * 20 + k] != pix(i, k, 4);
    }
    print_message("    mnist (plain + gz): %d wrong bytes or labels\n", bad);
    assert_int_equal(bad, 0);
    assert_string_equal(tr.class_names[7], "7");
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

static void test_fashion_mnist(void **state) {
    struct stat st;
    if (stat(FASHION_DIR "/train-images-idx3-ubyte.gz", &st) != 0) {
        print_message("    " FASHION_DIR " is absent: skipped\n");
        skip();
    }
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, "mnist:" FASHION_DIR, NULL));
    assert_int_equal(tr.n, 60000);
    assert_int_equal(te.n, 10000);
    assert_int_equal(tr.c, 1);
    assert_int_equal(tr.h, 28);
    assert_int_equal(tr.w, 28);
    int counts[10] = {0}, over = 0;
    for (int i = 0; i < tr.n; i++) {
        if (tr.labels[i] >= 10) over++;
        else counts[tr.labels[i]]++;
    }
    for (int i = 0; i < te.n; i++) over += te.labels[i] >= 10;
    rn_norm nm = rn_dataset_norm(&tr);
    print_message("    Fashion-MNIST: %d/%d images, labels >= 10: %d, class 0: %d images, "
                  "mean %.4f std %.4f\n", tr.n, te.n, over, counts[0], nm.mean[0], nm.std[0]);
    assert_int_equal(over, 0);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], 6000);
    /* Recognized by its training labels: Fashion-MNIST's class names, in both splits. */
    print_message("    class names: %s, %s, ..., %s\n", tr.class_names[0], tr.class_names[1],
                  tr.class_names[9]);
    assert_string_equal(tr.class_names[0], "T-shirt/top");
    assert_string_equal(tr.class_names[6], "Shirt");
    assert_string_equal(tr.class_names[9], "Ankle boot");
    assert_string_equal(te.class_names[9], "Ankle boot");
    /* The same labels elsewhere, under any folder name, with other images: the same names;
     * one label changed: the digits. */
    const char *dir = fresh_dir("idx_copy");
    size_t n;
    uint8_t *b = idx_bytes(0x803, tr.n, 1, 1, 3, &n);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    free(b);
    b = idx_bytes(0x801, tr.n, 0, 0, 3, &n);
    for (int i = 0; i < tr.n; i++) b[8 + i] = (uint8_t)tr.labels[i];
    write_bytes(dir, "train-labels-idx1-ubyte", b, n);
    char spec[600];
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    rn_dataset copy;
    TU_OK(rn_dataset_load(&copy, NULL, spec, NULL));
    assert_string_equal(copy.class_names[0], "T-shirt/top");
    rn_dataset_free(&copy);
    b[8 + 100] = (uint8_t)((b[8 + 100] + 1) % 10);
    write_bytes(dir, "train-labels-idx1-ubyte", b, n);
    free(b);
    TU_OK(rn_dataset_load(&copy, NULL, spec, NULL));
    assert_string_equal(copy.class_names[0], "0");
    rn_dataset_free(&copy);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

/* ---- image folders -------------------------------------------------------------------- */

/* A gray (c = 1) or color (c = 3) image of w x h from a seed, interleaved (h, w, c). */
static uint8_t *hwc_image(int w, int h, int c, int seed) {
    uint8_t *p = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h * c; i++) p[i] = pix(seed, i, 5);
    return p;
}

static void write_png(const char *dir, const char *name, int w, int h, int c, int seed) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *p = hwc_image(w, h, c, seed);
    if (!stbi_write_png(path, w, h, c, p, w * c)) fail_msg("cannot write %s", path);
    free(p);
}

static void write_jpg(const char *dir, const char *name, int w, int h, int c, int seed) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *p = hwc_image(w, h, c, seed);
    if (!stbi_write_jpg(path, w, h, c, p, 90)) fail_msg("cannot write %s", path);
    free(p);
}

/* What loading path should give as a planar c-channel image (stb_image's own decode). */
static uint8_t *planar_decode(const char *dir, const char *name, int c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int w, h, fc;
    uint8_t *p = stbi_load(path, &w, &h, &fc, c);
    if (!p) fail_msg("cannot decode %s", path);
    uint8_t *out = malloc((size_t)w * h * c);
    for (int ch = 0; ch < c; ch++)
        for (int i = 0; i < w * h; i++) out[ch * w * h + i] = p[i * c + ch];
    stbi_image_free(p);
    return out;
}

/* ROOT/train/{ant,cat,dog}, ROOT/test/{cat,dog}: 6x5 images; names that lie about classes. */
static const char *make_folder(const char *name) {
    const char *root = fresh_dir(name);
    char d[1024];
    snprintf(d, sizeof d, "%s/train/cat", root);
    mkdirs(d);
    write_png(d, "dog_0.png", 6, 5, 1, 0); /* the name says dog; the folder says cat */
    write_jpg(d, "b.JPEG", 6, 5, 3, 1);
    write_text(d, "notes.txt", "not an image, and not named like one");
    write_text(d, ".hidden.png", "hidden files are skipped");
    snprintf(d, sizeof d, "%s/train/ant", root);
    mkdirs(d);
    write_png(d, "z.PNG", 6, 5, 3, 2);
    write_png(d, "a.png", 6, 5, 1, 3);
    snprintf(d, sizeof d, "%s/train/dog", root);
    mkdirs(d);
    write_jpg(d, "x.jpg", 6, 5, 1, 4);
    snprintf(d, sizeof d, "%s/test/dog", root);
    mkdirs(d);
    write_png(d, "t1.png", 6, 5, 3, 5);
    snprintf(d, sizeof d, "%s/test/cat", root);
    mkdirs(d);
    write_png(d, "t0.png", 6, 5, 1, 6);
    write_png(root, "train/stray.png", 6, 5, 1, 7); /* a file beside the class folders */
    return root;
}

static void test_folder(void **state) {
    const char *root = make_folder("folder");
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.n, 5);
    assert_int_equal(te.n, 2);
    assert_int_equal(tr.c, 3); /* some images are in color */
    assert_int_equal(tr.h, 5);
    assert_int_equal(tr.w, 6);
    assert_int_equal(tr.num_classes, 3);
    assert_string_equal(tr.class_names[0], "ant");
    assert_string_equal(tr.class_names[1], "cat");
    assert_string_equal(tr.class_names[2], "dog");
    assert_string_equal(te.class_names[2], "dog");
    /* Order: classes sorted, files sorted by strcmp within each. */
    const char *files[5] = {"ant/a.png", "ant/z.PNG", "cat/b.JPEG", "cat/dog_0.png", "dog/x.jpg"};
    const int labels[5] = {0, 0, 1, 1, 2};
    const char *test_files[2] = {"cat/t0.png", "dog/t1.png"};
    const int test_labels[2] = {1, 2};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/train", root);
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t *want = planar_decode(dir, files[i], 3);
        bad += tr.labels[i] != labels[i];
        bad += memcmp(tr.images + i * 90, want, 90) != 0;
        free(want);
    }
    snprintf(dir, sizeof dir, "%s/test", root);
    for (int i = 0; i < 2; i++) {
        uint8_t *want = planar_decode(dir, test_files[i], 3);
        bad += te.labels[i] != test_labels[i];
        bad += memcmp(te.images + i * 90, want, 90) != 0;
        free(want);
    }
    /* A PNG is lossless: the gray one must come back as written, in all three channels. */
    uint8_t *gray = hwc_image(6, 5, 1, 3);
    for (int ch = 0; ch < 3; ch++) bad += memcmp(tr.images + ch * 30, gray, 30) != 0;
    free(gray);
    print_message("    folder: %d wrong images or labels\n", bad);
    assert_int_equal(bad, 0);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);

    /* Only gray images: one channel. */
    const char *groot = fresh_dir("folder_gray");
    snprintf(dir, sizeof dir, "%s/train/a", groot);
    mkdirs(dir);
    write_png(dir, "0.png", 4, 3, 1, 8);
    snprintf(dir, sizeof dir, "%s/test/a", groot);
    mkdirs(dir);
    write_png(dir, "0.png", 4, 3, 1, 9);
    snprintf(spec, sizeof spec, "folder:%s", groot);
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.c, 1);
    uint8_t *want = hwc_image(4, 3, 1, 8);
    assert_memory_equal(tr.images, want, 12);
    free(want);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

/* Every format predict reads, folders read too (by content, listed by extension); a file of
 * a recognized but unread format is an error naming it, not left out. */
static void test_folder_formats(void **state) {
    const char *root = fresh_dir("folder_formats");
    char d[1024], path[1100], spec[600];
    snprintf(d, sizeof d, "%s/train/a", root);
    mkdirs(d);
    uint8_t *rgb = hwc_image(6, 5, 3, 30), *gray = hwc_image(6, 5, 1, 31);
    snprintf(path, sizeof path, "%s/x.BMP", d);
    assert_true(stbi_write_bmp(path, 6, 5, 3, rgb));
    uint8_t pgm[11 + 30], ppm[11 + 90]; /* "P5\n6 5\n255\n" is 11 bytes */
    memcpy(pgm, "P5\n6 5\n255\n", 11);
    memcpy(pgm + 11, gray, 30);
    write_bytes(d, "y.pgm", pgm, sizeof pgm);
    memcpy(ppm, "P6\n6 5\n255\n", 11);
    memcpy(ppm + 11, rgb, 90);
    write_bytes(d, "z.ppm", ppm, sizeof ppm);
    snprintf(d, sizeof d, "%s/test/a", root);
    mkdirs(d);
    write_png(d, "t.png", 6, 5, 3, 30);
    snprintf(spec, sizeof spec, "folder:%s", root);
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    assert_int_equal(tr.n, 3);
    assert_int_equal(tr.c, 3);
    int bad = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int k = 0; k < 30; k++) {
            bad += tr.images[ch * 30 + k] != rgb[k * 3 + ch];       /* x.BMP */
            bad += tr.images[90 + ch * 30 + k] != gray[k];          /* y.pgm */
            bad += tr.images[180 + ch * 30 + k] != rgb[k * 3 + ch]; /* z.ppm */
        }
    print_message("    folder of BMP, PGM and PPM files: %d wrong pixels\n", bad);
    assert_int_equal(bad, 0);
    assert_memory_equal(te.images, tr.images, 90); /* the PNG of the same pixels */
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    /* A WebP file among them: refused by name, and by content under another name. */
    snprintf(d, sizeof d, "%s/train/a", root);
    write_bytes(d, "w.webp", "RIFF\x24\0\0\0WEBPVP8 ", 16);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "a/w.webp: a WebP image",
                     "expected PNG, JPEG, BMP, PGM or PPM", NULL);
    remove_file(d, "w.webp");
    write_bytes(d, "w.png", "RIFF\x24\0\0\0WEBPVP8 ", 16);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "a/w.png: a WebP image",
                     "expected PNG, JPEG, BMP, PGM or PPM", NULL);
    free(rgb);
    free(gray);
}

/* Progress while a folder decodes: done never falls, and the last call says every image. */
typedef struct {
    int calls, last_done, last_total, fell;
} progress_log;

static void log_progress(int done, int total, void *user) {
    progress_log *p = user;
    p->fell += done < p->last_done;
    p->calls++;
    p->last_done = done;
    p->last_total = total;
}

static void test_folder_progress(void **state) {
    const char *root = make_folder("folder_progress");
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    rn_dataset tr, te;
    progress_log log = {0};
    TU_OK(rn_dataset_load_progress(&tr, &te, spec, NULL, log_progress, &log));
    print_message("    %d progress calls, the last %d of %d\n", log.calls, log.last_done,
                  log.last_total);
    assert_true(log.calls >= 1);
    assert_int_equal(log.fell, 0);
    assert_int_equal(log.last_done, tr.n + te.n);
    assert_int_equal(log.last_total, tr.n + te.n);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

static void test_folder_resize(void **state) {
    const char *root = fresh_dir("folder_resize");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/train/a", root);
    mkdirs(dir);
    write_png(dir, "big.png", 12, 9, 3, 10);
    write_png(dir, "small.png", 4, 4, 3, 11);
    write_png(dir, "exact.png", 8, 6, 3, 12);
    snprintf(dir, sizeof dir, "%s/test/a", root);
    mkdirs(dir);
    write_png(dir, "t.png", 3, 7, 1, 13);
    char spec[600];
    snprintf(spec, sizeof spec, "folder:%s", root);
    rn_data_opts opts = {6, 8};
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, &opts));
    assert_int_equal(tr.c, 3);
    assert_int_equal(tr.h, 6);
    assert_int_equal(tr.w, 8);
    assert_int_equal(te.h, 6);
    snprintf(dir, sizeof dir, "%s/train/a", root);
    const char *names[3] = {"big.png", "exact.png", "small.png"};
    const int sizes[3][2] = {{9, 12}, {6, 8}, {4, 4}};
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        uint8_t *src = planar_decode(dir, names[i], 3);
        uint8_t want[3 * 48];
        TU_OK(rn_data_resize_planes(want, 6, 8, src, sizes[i][0], sizes[i][1], 3));
        bad += memcmp(tr.images + i * 144, want, 144) != 0;
        free(src);
    }
    print_message("    folder with resize: %d wrong images\n", bad);
    assert_int_equal(bad, 0);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);

    /* Resizing applies to the other formats too. */
    const char *mdir = fresh_dir("mnist_resize");
    make_mnist(mdir);
    snprintf(spec, sizeof spec, "mnist:%s", mdir);
    rn_data_opts up = {10, 3};
    TU_OK(rn_dataset_load(&tr, &te, spec, &up));
    assert_int_equal(tr.h, 10);
    assert_int_equal(tr.w, 3);
    uint8_t src[20], want[30];
    for (int k = 0; k < 20; k++) src[k] = pix(6, k, 3);
    TU_OK(rn_data_resize_planes(want, 10, 3, src, 5, 4, 1));
    assert_memory_equal(tr.images + 6 * 30, want, 30);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

/* Resizing against PIL's Image.resize(BILINEAR) (tests/data/resize_ref.bin, written by
 * tools/gen_resize_ref.py): must match bit for bit, both the data sets' resize and
 * rn_image_to_input's (predict), which must be the same one. */
static void test_resize_matches_pil(void **state) {
    char path[1024];
    snprintf(path, sizeof path, "%s/resize_ref.bin", tu_data_dir());
    void *buf;
    size_t size;
    TU_OK(rn_read_file(path, &buf, &size));
    const uint8_t *p = memchr(buf, '\n', size);
    assert_non_null(p);
    p++;
    const uint8_t *end = (const uint8_t *)buf + size;
    int cases = 0, worst = 0, worst_input = 0;
    while (p < end) {
        int32_t hd[5];
        memcpy(hd, p, sizeof hd);
        p += sizeof hd;
        int sh = hd[0], sw = hd[1], dh = hd[2], dw = hd[3], c = hd[4];
        size_t in = (size_t)c * sh * sw, out = (size_t)c * dh * dw;
        assert_true(p + in + out <= end);
        uint8_t *got = malloc(out);
        TU_OK(rn_data_resize_planes(got, dh, dw, p, sh, sw, c));
        int diff = 0;
        for (size_t k = 0; k < out; k++) diff = RN_MAX(diff, abs(got[k] - p[in + k]));
        /* The same image (interleaved) through rn_image_to_input, with mean 0 and std 1. */
        rn_image img = {.width = sw, .height = sh, .channels = c, .pixels = malloc(in)};
        for (int ch = 0; ch < c; ch++)
            for (int k = 0; k < sh * sw; k++) img.pixels[k * c + ch] = p[(size_t)ch * sh * sw + k];
        rn_norm unit = {.channels = c, .std = {1, 1, 1, 1}};
        float *x = malloc(out * sizeof *x);  // (c, dh, dw)
        TU_OK(rn_image_to_input(x, &img, c, dh, dw, &unit));
        int diff_input = 0;
        for (size_t k = 0; k < out; k++)
            diff_input = RN_MAX(diff_input, abs((int)lrintf(x[k] * 255.0f) - p[in + k]));
        print_message("    %dx%dx%d -> %dx%d: max |diff| vs PIL %d (data sets), %d (predict's "
                      "input)\n", c, sh, sw, dh, dw, diff, diff_input);
        worst = RN_MAX(worst, diff);
        worst_input = RN_MAX(worst_input, diff_input);
        free(img.pixels);
        free(x);
        free(got);
        p += in + out;
        cases++;
    }
    rn_free(buf);
    assert_true(cases >= 5);
    assert_int_equal(worst, 0);
    assert_int_equal(worst_input, 0);
}

/* ---- statistics, split, pack ---------------------------------------------------------- */

static void test_norm(void **state) {
    rn_dataset d;
    make_set(&d, 7, 3, 5, 4, 2, 6);
    rn_norm nm = rn_dataset_norm(&d);
    assert_int_equal(nm.channels, 3);
    float want_mean[3], want_std[3];
    for (int ch = 0; ch < 3; ch++) {
        double s = 0, s2 = 0;
        int count = 0;
        for (int i = 0; i < d.n; i++)
            for (int k = 0; k < 20; k++) {
                double v = d.images[(i * 3 + ch) * 20 + k] / 255.0;
                s += v;
                count++;
            }
        double mean = s / count;
        for (int i = 0; i < d.n; i++)
            for (int k = 0; k < 20; k++) {
                double v = d.images[(i * 3 + ch) * 20 + k] / 255.0 - mean;
                s2 += v * v;
            }
        want_mean[ch] = (float)mean;
        want_std[ch] = (float)sqrt(s2 / count);
    }
    double dm = tu_max_abs_diff(nm.mean, want_mean, 3), ds = tu_max_abs_diff(nm.std, want_std, 3);
    print_message("    norm: mean %.5f %.5f %.5f std %.5f %.5f %.5f; max diff mean %.2e std %.2e\n",
                  nm.mean[0], nm.mean[1], nm.mean[2], nm.std[0], nm.std[1], nm.std[2], dm, ds);
    assert_true(dm < 1e-6 && ds < 1e-6);
    /* Half black, half white: mean 0.5, std 0.5 exactly. */
    memset(d.images, 0, 7 * 60);
    for (int i = 4; i < 7; i++) memset(d.images + i * 60, 255, 20); /* channel 0: 3.5 of 7 */
    memset(d.images + 3 * 60 + 10, 255, 10);
    nm = rn_dataset_norm(&d);
    print_message("    black/white: mean %.6f std %.6f\n", nm.mean[0], nm.std[0]);
    assert_true(fabsf(nm.mean[0] - 0.5f) < 1e-6f && fabsf(nm.std[0] - 0.5f) < 1e-6f);
    rn_dataset_free(&d);
    rn_dataset empty = {0};
    nm = rn_dataset_norm(&empty);
    assert_true(nm.mean[0] == 0.0f && nm.std[0] == 1.0f);
}

static void test_split(void **state) {
    /* Each image carries its index in its first pixel and its label. */
    int n = 50;
    rn_dataset a, b, va, vb;
    make_set(&a, n, 1, 2, 2, n, 7);
    make_set(&b, n, 1, 2, 2, n, 7);
    for (int i = 0; i < n; i++) a.images[i * 4] = b.images[i * 4] = (uint8_t)i;
    TU_OK(rn_dataset_split(&a, &va, 12, 42));
    TU_OK(rn_dataset_split(&b, &vb, 12, 42));
    assert_int_equal(a.n, 38);
    assert_int_equal(va.n, 12);
    assert_sets_equal(&a, &b); /* same seed, same split */
    assert_sets_equal(&va, &vb);
    int seen[50] = {0};
    for (int i = 0; i < a.n; i++) {
        assert_int_equal(a.images[i * 4], a.labels[i]); /* images moved with their labels */
        if (i) assert_true(a.labels[i] > a.labels[i - 1]); /* order kept */
        seen[a.labels[i]]++;
    }
    for (int i = 0; i < va.n; i++) {
        assert_int_equal(va.images[i * 4], va.labels[i]);
        if (i) assert_true(va.labels[i] > va.labels[i - 1]);
        seen[va.labels[i]]++;
    }
    for (int i = 0; i < n; i++) assert_int_equal(seen[i], 1); /* disjoint, nothing lost */
    assert_string_equal(va.class_names[3], "3");
    /* Another seed, another split. */
    rn_dataset c, vc;
    make_set(&c, n, 1, 2, 2, n, 7);
    TU_OK(rn_dataset_split(&c, &vc, 12, 43));
    assert_int_equal(vc.n, 12);
    assert_true(memcmp(vc.labels, va.labels, 12 * sizeof(int32_t)) != 0);
    print_message("    split seed 42: val starts %d %d %d; seed 43: %d %d %d\n", va.labels[0],
                  va.labels[1], va.labels[2], vc.labels[0], vc.labels[1], vc.labels[2]);
    /* Bad sizes. */
    rn_dataset vd;
    expect_fail(rn_dataset_split(&c, &vd, 39, 1), RN_ERR_BAD_ARG, "39", "0..38", NULL);
    expect_fail(rn_dataset_split(&c, &vd, -1, 1), RN_ERR_BAD_ARG, "-1", NULL, NULL);
    TU_OK(rn_dataset_split(&c, &vd, 0, 1));
    assert_int_equal(vd.n, 0);
    assert_int_equal(c.n, 38);
    rn_dataset_free(&vd);
    rn_dataset_free(&a);
    rn_dataset_free(&b);
    rn_dataset_free(&c);
    rn_dataset_free(&va);
    rn_dataset_free(&vb);
    rn_dataset_free(&vc);
}

static void test_pack_roundtrip(void **state) {
    /* Any shape: packed:DIR. 13 images -> batches of 3, 3, 3, 2, 2. */
    rn_dataset tr, te, tr2, te2;
    make_set(&tr, 13, 1, 5, 4, 3, 8);
    make_set(&te, 4, 1, 5, 4, 3, 9);
    free(tr.class_names[1]);
    tr.class_names[1] = strdup("two words");
    const char *dir = fresh_dir("packed/inner"); /* the parent does not exist yet */
    expect_fail(rn_dataset_pack(&tr, &te, dir), RN_ERR_IO, "cannot create", NULL, NULL);
    dir = fresh_dir("packed");
    TU_OK(rn_dataset_pack(&tr, &te, dir));
    char spec[600], path[1024];
    snprintf(spec, sizeof spec, "packed:%s", dir);
    TU_OK(rn_dataset_load(&tr2, &te2, spec, NULL));
    assert_sets_permuted(&tr, &tr2);
    for (int k = 0; k < 3; k++) free(te.class_names[k]);
    free(te.class_names);
    te.class_names = rn_data_copy_names(tr.class_names, 3);
    assert_sets_permuted(&te, &te2);
    struct stat st;
    snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 3 * 21);
    snprintf(path, sizeof path, "%s/data_batch_5.bin", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 2 * 21);
    print_message("    packed 1x5x4: train %d, test %d images, the same after the round trip\n",
                  tr2.n, te2.n);
    /* Not CIFAR-10's shape: cifar10:DIR refuses and points to packed:. */
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    expect_load_fail(spec, NULL, RN_ERR_SHAPE, "meta.json", "1x5x4", "packed:");
    rn_dataset_free(&tr2);
    rn_dataset_free(&te2);

    /* Packing again over it works (meta.json replaced). */
    TU_OK(rn_dataset_pack(&tr, &te, dir));
    rn_dataset_free(&tr);
    rn_dataset_free(&te);

    /* 3x32x32: also a valid cifar10:DIR. */
    make_set(&tr, 6, 3, 32, 32, 10, 10);
    make_set(&te, 2, 3, 32, 32, 10, 11);
    const char *cdir = fresh_dir("packed_cifar");
    TU_OK(rn_dataset_pack(&tr, &te, cdir));
    snprintf(spec, sizeof spec, "cifar10:%s", cdir);
    TU_OK(rn_dataset_load(&tr2, &te2, spec, NULL));
    assert_sets_permuted(&tr, &tr2);
    assert_sets_permuted(&te, &te2);
    rn_dataset_free(&tr2);
    rn_dataset_free(&te2);
    /* And the loaded CIFAR-10 of test_cifar10 round-trips through packed too. */
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    const char *odir = fresh_dir("cifar10_orig");
    make_cifar10(odir, true);
    snprintf(spec, sizeof spec, "cifar10:%s", odir);
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    const char *pdir = fresh_dir("cifar10_packed");
    TU_OK(rn_dataset_pack(&tr, &te, pdir));
    snprintf(spec, sizeof spec, "packed:%s", pdir);
    TU_OK(rn_dataset_load(&tr2, &te2, spec, NULL));
    assert_sets_permuted(&tr, &tr2);
    assert_sets_permuted(&te, &te2);
    rn_dataset_free(&tr2);
    rn_dataset_free(&te2);

    /* Labels that do not fit a byte. */
    rn_dataset big;
    make_set(&big, 3, 1, 2, 2, 400, 12);
    big.labels[2] = 300;
    expect_fail(rn_dataset_pack(&big, &big, pdir), RN_ERR_BAD_ARG, "label 300", "0..255", NULL);
    rn_dataset_free(&big);
    /* Shapes that differ between train and test. */
    make_set(&big, 3, 1, 2, 2, 10, 12);
    expect_fail(rn_dataset_pack(&tr, &big, pdir), RN_ERR_SHAPE, "1x2x2", "3x32x32", NULL);
    rn_dataset_free(&big);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
}

/* Packing writes the records shuffled, with a fixed seed: every batch holds every class of a
 * set sorted by class, and the same set packs to the same bytes. */
static void test_pack_shuffles(void **state) {
    rn_dataset tr, te, tr2, te2;
    make_set(&tr, 500, 1, 2, 2, 10, 20);
    make_set(&te, 100, 1, 2, 2, 10, 21);
    for (int i = 0; i < tr.n; i++) tr.labels[i] = i / 50; /* sorted by class */
    for (int i = 0; i < te.n; i++) te.labels[i] = i / 10;
    const char *dir = fresh_dir("pack_shuffled");
    TU_OK(rn_dataset_pack(&tr, &te, dir));
    char spec[600];
    snprintf(spec, sizeof spec, "packed:%s", dir);
    TU_OK(rn_dataset_load(&tr2, &te2, spec, NULL));
    assert_sets_permuted(&tr, &tr2);
    int classes = 0, moved = 0;
    bool seen[10] = {false};
    for (int i = 0; i < 100; i++) { /* data_batch_1.bin */
        classes += !seen[tr2.labels[i]];
        seen[tr2.labels[i]] = true;
    }
    for (int i = 0; i < tr.n; i++) moved += memcmp(tr.images + 4 * i, tr2.images + 4 * i, 4) != 0;
    int test_moved = 0;
    for (int i = 0; i < te.n; i++) test_moved += te2.labels[i] != te.labels[i];
    print_message("    packed a set sorted by class: the first batch holds %d classes, %d of %d "
                  "train and %d of %d test images moved\n", classes, moved, tr.n, test_moved,
                  te.n);
    assert_int_equal(classes, 10);
    assert_true(moved > tr.n / 2 && test_moved > te.n / 2);
    /* Again, elsewhere: the same bytes. */
    const char *dir2 = fresh_dir("pack_shuffled_again");
    TU_OK(rn_dataset_pack(&tr, &te, dir2));
    const char *files[] = {"data_batch_1.bin", "data_batch_5.bin", "test_batch.bin"};
    for (int f = 0; f < 3; f++) {
        char p1[1024], p2[1024];
        snprintf(p1, sizeof p1, "%s/%s", dir, files[f]);
        snprintf(p2, sizeof p2, "%s/%s", dir2, files[f]);
        void *b1, *b2;
        size_t n1, n2;
        TU_OK(rn_read_file(p1, &b1, &n1));
        TU_OK(rn_read_file(p2, &b2, &n2));
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        rn_free(b1);
        rn_free(b2);
    }
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    rn_dataset_free(&tr2);
    rn_dataset_free(&te2);
}

/* ---- bad data ------------------------------------------------------------------------- */

static void test_bad_cifar(void **state) {
    const char *dir = fresh_dir("bad_cifar");
    char spec[600];
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    /* A missing batch. */
    make_cifar10(dir, true);
    remove_file(dir, "data_batch_3.bin");
    expect_load_fail(spec, NULL, RN_ERR_IO, "data_batch_3.bin", "expected", "test_batch.bin");
    /* Truncated: not a whole number of records. */
    make_cifar10(dir, true);
    write_cifar10_batch(dir, "data_batch_2.bin", 1, 0, cifar10_labels, 0);
    {
        char path[1024];
        snprintf(path, sizeof path, "%s/data_batch_2.bin", dir);
        truncate(path, 3000);
    }
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "data_batch_2.bin", "3000 bytes",
                     "3073-byte records");
    /* A label beyond the class count. */
    make_cifar10(dir, true);
    int labels[3] = {1, 10, 2};
    write_cifar10_batch(dir, "test_batch.bin", 3, 0, labels, 1);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "test_batch.bin", "record 1 has label 10",
                     "< 10");
    /* A names file with the wrong count. */
    make_cifar10(dir, true);
    write_text(dir, "batches.meta.txt", "a\nb\nc\n");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "batches.meta.txt", "3 class names",
                     "expected 10");
    /* No records at all. */
    make_cifar10(dir, false);
    for (int b = 1; b <= 5; b++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", b);
        write_bytes(dir, name, "", 0);
    }
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "data_batch_1.bin", "empty file", NULL);
    /* One empty batch among full ones (it used to load as zero records). */
    make_cifar10(dir, false);
    write_bytes(dir, "data_batch_3.bin", "", 0);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "data_batch_3.bin: empty file",
                     "expected CIFAR-10", NULL);
    make_cifar10(dir, false);
    write_bytes(dir, "test_batch.bin", "", 0);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "test_batch.bin: empty file", NULL, NULL);
    /* CIFAR-100 truncated and missing. */
    const char *d100 = fresh_dir("bad_cifar100");
    snprintf(spec, sizeof spec, "cifar100:%s", d100);
    expect_load_fail(spec, NULL, RN_ERR_IO, "train.bin", "expected CIFAR-100", NULL);
    uint8_t rec[3074 + 5] = {0};
    write_bytes(d100, "train.bin", rec, sizeof rec);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "train.bin", "3074-byte records", NULL);
    /* Packed: meta.json missing, or counts that disagree with it. */
    const char *pdir = fresh_dir("bad_packed");
    snprintf(spec, sizeof spec, "packed:%s", pdir);
    make_cifar10(pdir, true);
    expect_load_fail(spec, NULL, RN_ERR_IO, "meta.json", "resnet data pack", NULL);
    write_text(pdir, "meta.json", "{\"format\": \"resnet.c packed data set\", \"version\": 1, "
               "\"channels\": 3, \"height\": 32, \"width\": 32, \"num_classes\": 10, "
               "\"train_count\": 10, \"test_count\": 3}");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "9 records", "expected 10", NULL);
    write_text(pdir, "meta.json", "{\"format\": \"resnet.c packed data set\", \"version\": 1, "
               "\"channels\": 0, \"height\": 32}");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "meta.json", "channels", NULL);
    write_text(pdir, "meta.json", "[1, 2");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "meta.json", "JSON", NULL);
    /* Numbers beyond a long (casting them was undefined; found by tests/fuzz/fuzz_cifar). */
    write_text(pdir, "meta.json", "{\"format\": \"resnet.c packed data set\", \"version\": "
               "1e55, \"channels\": 3}");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "meta.json", "version 0", NULL);
    write_text(pdir, "meta.json", "{\"format\": \"resnet.c packed data set\", \"version\": 1, "
               "\"channels\": -1e300, \"height\": 32}");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "meta.json", "channels", NULL);
}

static void test_bad_mnist(void **state) {
    const char *dir = fresh_dir("bad_mnist");
    char spec[600];
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    size_t n;
    uint8_t *b;
    /* Missing. */
    expect_load_fail(spec, NULL, RN_ERR_IO, "train-images-idx3-ubyte", ".gz", "expected");
    make_mnist(dir);
    remove_file(dir, "t10k-labels-idx1-ubyte.gz");
    expect_load_fail(spec, NULL, RN_ERR_IO, "t10k-labels-idx1-ubyte", NULL, NULL);
    /* Wrong magic (a labels file given as images). */
    make_mnist(dir);
    b = idx_bytes(0x801, 20, 0, 0, 3, &n);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    free(b);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "train-images-idx3-ubyte", "magic 0x00000801",
                     "0x00000803");
    /* Zero-sized dimensions. */
    b = idx_bytes(0x803, 7, 5, 4, 3, &n);
    put_be32(b + 8, 0);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    free(b);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "dimensions", "7 x 0 x 4", NULL);
    /* Counts that differ. */
    make_mnist(dir);
    b = idx_bytes(0x801, 6, 0, 0, 3, &n);
    write_bytes(dir, "train-labels-idx1-ubyte", b, n);
    free(b);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "6 labels", "7 images", NULL);
    /* Truncated pixels, plain and gzip. */
    make_mnist(dir);
    b = idx_bytes(0x803, 7, 5, 4, 3, &n);
    write_bytes(dir, "train-images-idx3-ubyte", b, n - 1);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "train-images-idx3-ubyte", "truncated", NULL);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    uint8_t *more = malloc(n + 1);
    memcpy(more, b, n);
    more[n] = 0;
    write_bytes(dir, "train-images-idx3-ubyte", more, n + 1);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "data after the 7 images", NULL, NULL);
    write_bytes(dir, "train-images-idx3-ubyte", b, n);
    free(more);
    free(b);
    b = idx_bytes(0x803, 3, 5, 4, 4, &n);
    write_gz(dir, "t10k-images-idx3-ubyte.gz", b, n - 10);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "t10k-images-idx3-ubyte.gz", "truncated", NULL);
    free(b);
    /* A label >= 10. */
    make_mnist(dir);
    b = idx_bytes(0x801, 7, 0, 0, 3, &n);
    b[8 + 4] = 10;
    write_bytes(dir, "train-labels-idx1-ubyte", b, n);
    free(b);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "label 4 is 10", "< 10", NULL);
}

static void test_bad_folder(void **state) {
    char spec[600], d[1024];
    /* No train folder at all. */
    const char *root = fresh_dir("bad_folder_none");
    snprintf(spec, sizeof spec, "folder:%s", root);
    expect_load_fail(spec, NULL, RN_ERR_IO, "/train", "cannot open", "CLASS");
    /* A train folder without class folders. */
    snprintf(d, sizeof d, "%s/train", root);
    mkdirs(d);
    write_png(d, "loose.png", 2, 2, 1, 0);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "no class folders", NULL, NULL);
    /* A class folder without images. */
    root = make_folder("bad_folder_empty");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "%s/train/eel", root);
    mkdirs(d);
    write_text(d, "readme.txt", "no images here");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "train/eel", "no images", NULL);
    /* A test class that train lacks. */
    root = make_folder("bad_folder_subset");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "%s/test/yak", root);
    mkdirs(d);
    write_png(d, "0.png", 6, 5, 1, 0);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "test/yak", "'yak'", "train");
    /* A missing test folder. */
    root = make_folder("bad_folder_notest");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "rm -rf '%s/test'", root);
    assert_int_equal(system(d), 0);
    expect_load_fail(spec, NULL, RN_ERR_IO, "/test", "cannot open", NULL);
    /* A file that is not an image. */
    root = make_folder("bad_folder_notimage");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "%s/train/dog", root);
    write_text(d, "fake.jpg", "this is text, not a JPEG");
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "dog/fake.jpg", "not a readable image", NULL);
    /* A PNG whose data is cut off after the header. */
    root = make_folder("bad_folder_cut");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "%s/train/dog/x.jpg", root);
    truncate(d, 40);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "dog/x.jpg", NULL, NULL);
    /* Mixed sizes without a resize. */
    root = make_folder("bad_folder_sizes");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(d, sizeof d, "%s/train/dog", root);
    write_png(d, "y.png", 7, 5, 1, 0);
    expect_load_fail(spec, NULL, RN_ERR_SHAPE, "dog/y.png", "5x7", "5x6");
    rn_data_opts opts = {5, 6};
    rn_dataset tr, te;
    TU_OK(rn_dataset_load(&tr, &te, spec, &opts)); /* with a resize it loads */
    assert_int_equal(tr.n, 6);
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    opts.resize_w = 0;
    expect_load_fail(spec, &opts, RN_ERR_BAD_ARG, "resize 5x0", NULL, NULL);
}

/* A gzip IDX file must end with its trailer (CRC-32 and length of the data), and the CRC must
 * match: without the check a file cut inside its trailer loaded without complaint. */
static void test_bad_gzip_trailer(void **state) {
    const char *dir = fresh_dir("bad_gzip");
    char spec[600], path[1024];
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    rn_dataset tr, te;
    make_mnist(dir);
    TU_OK(rn_dataset_load(&tr, &te, spec, NULL));
    rn_dataset_free(&tr);
    rn_dataset_free(&te);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    truncate(path, st.st_size - 8); /* no trailer at all */
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "t10k-images-idx3-ubyte.gz",
                     "ends before its trailer", NULL);
    make_mnist(dir);
    truncate(path, st.st_size - 3); /* half the length field */
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "t10k-images-idx3-ubyte.gz", "trailer", NULL);
    make_mnist(dir); /* a wrong CRC */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, st.st_size - 8, SEEK_SET);
    int c = fgetc(f);
    fseek(f, st.st_size - 8, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "t10k-images-idx3-ubyte.gz",
                     "incorrect data check", NULL);
    /* A 40-byte gzip file whose header claims 2^28 images of 256x256: refused before the 16 TiB
     * it announces are allocated. */
    make_mnist(dir);
    uint8_t head[16];
    put_be32(head, 0x803);
    put_be32(head + 4, 1u << 28);
    put_be32(head + 8, 64);
    put_be32(head + 12, 64);
    write_gz(dir, "t10k-images-idx3-ubyte.gz", head, 16);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "t10k-images-idx3-ubyte.gz",
                     "more than a gzip file of", NULL);
}

/* FIFOs where the loaders expect files: refused before they are opened (opening one blocks
 * until a writer comes; the alarm turns such a hang into a failure). */
static void test_bad_fifo(void **state) {
    char spec[600], path[1024];
    alarm(60);
    const char *dir = fresh_dir("fifo_mnist");
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    make_mnist(dir);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_load_fail(spec, NULL, RN_ERR_IO, "train-images-idx3-ubyte: is a FIFO", NULL, NULL);
    dir = fresh_dir("fifo_cifar");
    snprintf(spec, sizeof spec, "cifar10:%s", dir);
    make_cifar10(dir, false);
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_load_fail(spec, NULL, RN_ERR_IO, "batches.meta.txt: is a FIFO", NULL, NULL);
    unlink(path);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_load_fail(spec, NULL, RN_ERR_IO, "meta.json: is a FIFO", NULL, NULL);
    const char *root = make_folder("fifo_folder");
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(path, sizeof path, "%s/train/cat/pipe.png", root);
    assert_int_equal(mkfifo(path, 0600), 0);
    expect_load_fail(spec, NULL, RN_ERR_IO, "pipe.png: is a FIFO", "PNG, JPEG, BMP, PGM or PPM", NULL);
    alarm(0);
}

/* PNG chunk CRCs: a single flipped bit inside IDAT is refused (stb_image alone decoded it),
 * and so is a PNG cut before its IEND chunk. */
static void test_bad_png_crc(void **state) {
    const char *root = make_folder("png_crc");
    char spec[600], path[1024];
    snprintf(spec, sizeof spec, "folder:%s", root);
    snprintf(path, sizeof path, "%s/train/ant/z.PNG", root);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    uint8_t *idat = memmem(buf, n, "IDAT", 4);
    assert_non_null(idat);
    int flips = 0, refused = 0;
    for (uint8_t *p = idat + 4; p < buf + n - 16 && flips < 8; p += 3, flips++) {
        *p ^= 0x20;
        write_bytes(root, "train/ant/z.PNG", buf, n);
        rn_image img;
        rn_status s = rn_image_load(&img, path, 0);
        if (s == RN_OK) rn_image_free(&img);
        else if (strstr(rn_error_message(), "CRC")) refused++;
        *p ^= 0x20;
    }
    print_message("    %d of %d single-bit flips in IDAT refused\n", refused, flips);
    assert_int_equal(refused, flips);
    idat[6] ^= 0x01;
    write_bytes(root, "train/ant/z.PNG", buf, n);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "z.PNG: cannot decode image", "chunk IDAT",
                     "CRC");
    idat[6] ^= 0x01;
    write_bytes(root, "train/ant/z.PNG", buf, n - 12); /* without IEND */
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "z.PNG", "no IEND chunk", NULL);
    /* A header claiming 16000 x 16000 pixels (1.4x Pillow's decompression-bomb limit, below
     * stb_image's own limit of 2^30 bytes). */
    write_bytes(root, "train/ant/z.PNG", buf, n);
    memcpy(buf + 16, "\x00\x00\x3e\x80\x00\x00\x3e\x80", 8);
    uint32_t crc = (uint32_t)crc32(0, buf + 12, 17);
    put_be32(buf + 29, crc);
    write_bytes(root, "train/ant/z.PNG", buf, n);
    expect_load_fail(spec, NULL, RN_ERR_BAD_FILE, "z.PNG: image is 16000x16000", "pixels", NULL);
}

/* A set whose pixels are all equal has std 0; the normalization must stay finite. */
static void test_norm_constant(void **state) {
    rn_dataset d;
    make_set(&d, 4, 3, 5, 4, 2, 6);
    memset(d.images, 77, (size_t)4 * 3 * 5 * 4);
    rn_norm nm = rn_dataset_norm(&d);
    for (int c = 0; c < 3; c++) {
        assert_true(fabsf(nm.mean[c] - 77.0f / 255) < 1e-6f);
        assert_true(nm.std[c] == (float)(1.0 / 255));
        float x = (77.0f / 255 - nm.mean[c]) / nm.std[c], y = (1.0f - nm.mean[c]) / nm.std[c];
        assert_true(isfinite(x) && isfinite(y) && fabsf(x) < 1e-3f && y <= 255.0f);
    }
    rn_dataset_free(&d);
}

/* A 100,000-character folder name is echoed cut, never whole. */
static void test_bad_long_name(void **state) {
    size_t n = 100000;
    char *spec = malloc(n + 16);
    assert_non_null(spec);
    strcpy(spec, "mnist:");
    memset(spec + 6, 'd', n);
    spec[6 + n] = 0;
    rn_dataset tr;
    assert_int_not_equal(rn_dataset_load(&tr, NULL, spec, NULL), RN_OK);
    print_message("    %s\n", rn_error_message());
    assert_true(strlen(rn_error_message()) < 400);
    assert_non_null(strstr(rn_error_message(), "ddd...ddd"));
    spec[3] = 'x'; /* an unknown kind echoes the spec itself */
    assert_int_equal(rn_dataset_load(&tr, NULL, spec, NULL), RN_ERR_BAD_ARG);
    assert_true(strlen(rn_error_message()) < 400);
    free(spec);
}

static void test_bad_spec(void **state) {
    expect_load_fail("imagenet:/data", NULL, RN_ERR_BAD_ARG, "imagenet:/data", "cifar10:DIR",
                     "folder:ROOT");
    expect_load_fail("/just/a/path", NULL, RN_ERR_BAD_ARG, "unknown data set", "packed:DIR", NULL);
    expect_load_fail("cifar10:", NULL, RN_ERR_BAD_ARG, "no folder", NULL, NULL);
    expect_load_fail("cifar1:x", NULL, RN_ERR_BAD_ARG, "unknown", "mnist:DIR", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cifar10),          cmocka_unit_test(test_cifar100),
        cmocka_unit_test(test_mnist),            cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_folder),           cmocka_unit_test(test_folder_resize),
        cmocka_unit_test(test_folder_formats),
        cmocka_unit_test(test_folder_progress),
        cmocka_unit_test(test_resize_matches_pil), cmocka_unit_test(test_norm),
        cmocka_unit_test(test_split),            cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_pack_shuffles),
        cmocka_unit_test(test_bad_cifar),        cmocka_unit_test(test_bad_mnist),
        cmocka_unit_test(test_bad_folder),       cmocka_unit_test(test_bad_spec),
        cmocka_unit_test(test_bad_gzip_trailer), cmocka_unit_test(test_bad_fifo),
        cmocka_unit_test(test_bad_png_crc),      cmocka_unit_test(test_norm_constant),
        cmocka_unit_test(test_bad_long_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
