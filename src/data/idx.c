/*
 * idx.c — MNIST-style IDX files (mnist:DIR; Fashion-MNIST uses the same files): an images file
 * (magic 0x00000803, then big-endian count, rows, cols, then count*rows*cols bytes) and a labels
 * file (magic 0x00000801, count, then count bytes), each plain or gzip-compressed (NAME.gz).
 *
 * Class names: the files carry none, so a set is recognized by its content. When the training
 * labels are exactly Fashion-MNIST's (its 60,000 training labels, identified by their CRC-32,
 * wherever the files lie), both splits get Fashion-MNIST's names (T-shirt/top, Trouser, ...,
 * Ankle boot); any other IDX set, MNIST included, gets the digits "0".."9".
 */
#include "data/data.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_CLASSES 10

/* Fashion-MNIST (Xiao et al. 2017): its training labels, and its class names in label order. */
#define FASHION_TRAIN_LABELS 60000
#define FASHION_TRAIN_LABELS_CRC32 0x2ed6e46aul
static const char *const fashion_names[IDX_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* Opens dir/name, or dir/name.gz if the plain file is absent; path receives the one opened. */
static rn_status idx_open(gzFile *out, char *path, size_t size, const char *dir, const char *name) {
    char gz[4200];
    snprintf(gz, sizeof gz, "%s.gz", name);
    if (!rn_data_path(path, size, dir, name))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    struct stat st;
    if (stat(path, &st) != 0 && !rn_data_path(path, size, dir, gz))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    if (stat(path, &st) != 0)
        return rn_fail(RN_ERR_IO, "%s/%s: not found, nor %s.gz (expected MNIST-style IDX files "
                       "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                       "t10k-labels-idx1-ubyte, plain or .gz)", RN_SHOW(dir), name, name);
    int fd;
    rn_status s = rn_open_regular(path, "an IDX file, plain or gzip", &fd);
    if (s) return s;
    *out = gzdopen(fd, "rb");
    if (!*out) {
        close(fd);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot open: out of memory", RN_SHOW(path));
    }
    gzbuffer(*out, 1 << 18);
    return RN_OK;
}

/* Reads exactly n bytes; false on a short read or a decompression error. */
static bool idx_read(gzFile f, void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0) return false;
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib's message for the last error of f, without the "<fd:N>: " it puts in front. */
static const char *gz_why(gzFile f, int *err) {
    const char *msg = gzerror(f, err);
    const char *colon = strncmp(msg, "<fd:", 4) == 0 ? strstr(msg, ": ") : NULL;
    return colon ? colon + 2 : msg;
}

/* A gz read failure is either truncation or corruption; say which zlib saw. */
static rn_status idx_short(gzFile f, const char *path, const char *what) {
    int err = 0;
    const char *msg = gz_why(f, &err);
    if (err != Z_OK && err != Z_BUF_ERROR)
        return rn_fail(RN_ERR_BAD_FILE, "%s: cannot read the %s: %s", RN_SHOW(path), what, msg);
    return rn_fail(RN_ERR_BAD_FILE, "%s: file ends inside the %s (truncated)", RN_SHOW(path), what);
}

/* Reads no more bytes: the file must end here, and a gzip stream with its trailer (the CRC-32
 * and length of the data, which zlib checks when it reads them). */
static rn_status idx_expect_end(gzFile f, const char *path, long n, const char *unit) {
    uint8_t extra;
    int got = gzread(f, &extra, 1);
    if (got > 0)
        return rn_fail(RN_ERR_BAD_FILE, "%s: has data after the %ld %s its header announces",
                       RN_SHOW(path), n, unit);
    int err = Z_OK;
    const char *msg = gz_why(f, &err);
    if (got < 0 || err != Z_OK) {
        if (err == Z_BUF_ERROR) /* zlib's "unexpected end of file" */
            return rn_fail(RN_ERR_BAD_FILE, "%s: the gzip stream ends before its trailer (CRC "
                           "and length; truncated)", RN_SHOW(path));
        return rn_fail(RN_ERR_BAD_FILE, "%s: cannot read the gzip trailer: %s", RN_SHOW(path), msg);
    }
    return RN_OK;
}

/* Checks the body the header announces (body bytes after a head-byte header) against the file's
 * size before anything is allocated: a plain file must hold it exactly, and a gzip file can
 * hold at most about 1032 times its size (deflate's largest ratio), so a 16-byte file cannot
 * make the loader allocate a terabyte. */
static rn_status idx_check_size(gzFile f, const char *path, uint64_t head, uint64_t body,
                                long n, const char *unit) {
    struct stat st;
    if (stat(path, &st) != 0)
        return rn_fail(RN_ERR_IO, "%s: cannot stat: %s", RN_SHOW(path), strerror(errno));
    uint64_t size = (uint64_t)st.st_size;
    if (gzdirect(f)) {
        if (size < head + body)
            return rn_fail(RN_ERR_BAD_FILE, "%s: file ends inside the %s (truncated): %llu bytes, "
                           "its header announces %ld %s of %llu bytes in all", RN_SHOW(path), unit,
                           (unsigned long long)size, n, unit,
                           (unsigned long long)(head + body));
        if (size > head + body)
            return rn_fail(RN_ERR_BAD_FILE, "%s: has data after the %ld %s its header announces",
                           RN_SHOW(path), n, unit);
    } else if (body / 1032 > size) {
        return rn_fail(RN_ERR_BAD_FILE, "%s: its header announces %ld %s of %llu bytes, more than "
                       "a gzip file of %llu bytes can hold (truncated or corrupt)", RN_SHOW(path),
                       n, unit, (unsigned long long)body, (unsigned long long)size);
    }
    return RN_OK;
}

/* Whether labels (n) are Fashion-MNIST's training labels. */
static bool is_fashion_train(const int32_t *labels, int n) {
    if (n != FASHION_TRAIN_LABELS) return false;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++) {
        Bytef b = (Bytef)labels[i];
        crc = crc32(crc, &b, 1);
    }
    return crc == FASHION_TRAIN_LABELS_CRC32;
}

/* Sets d's class names to Fashion-MNIST's. */
static rn_status set_fashion_names(rn_dataset *d) {
    char **names = rn_data_copy_names((char *const *)fashion_names, IDX_CLASSES);
    if (!names) return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    for (int k = 0; k < d->num_classes; k++) free(d->class_names[k]);
    free(d->class_names);
    d->class_names = names;
    return RN_OK;
}

/* Loads one split: images file + labels file into d. */
static rn_status load_split(rn_dataset *d, const char *dir, const char *images_name,
                            const char *labels_name) {
    char ipath[4096], lpath[4096];
    gzFile fi = NULL, fl = NULL;
    uint8_t head[16];
    rn_status s = idx_open(&fi, ipath, sizeof ipath, dir, images_name);
    if (s) return s;
    if (!idx_read(fi, head, 16)) {
        s = idx_short(fi, ipath, "16-byte IDX header");
        goto done;
    }
    uint32_t magic = be32(head), n = be32(head + 4), rows = be32(head + 8), cols = be32(head + 12);
    if (magic != IDX_IMAGES_MAGIC) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: magic 0x%08x, expected 0x%08x (IDX unsigned bytes, 3 "
                    "dimensions: images)", RN_SHOW(ipath), magic, IDX_IMAGES_MAGIC);
        goto done;
    }
    if (n == 0 || n > (1u << 28) || rows == 0 || cols == 0 || rows > 65536 || cols > 65536 ||
        (uint64_t)n * rows * cols > (1ull << 40)) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: dimensions %u x %u x %u are not a plausible image set",
                    RN_SHOW(ipath), n, rows, cols);
        goto done;
    }
    if ((s = idx_check_size(fi, ipath, 16, (uint64_t)n * rows * cols, (long)n, "images")))
        goto done;
    if ((s = idx_open(&fl, lpath, sizeof lpath, dir, labels_name))) goto done;
    if (!idx_read(fl, head, 8)) {
        s = idx_short(fl, lpath, "8-byte IDX header");
        goto done;
    }
    uint32_t lmagic = be32(head), ln = be32(head + 4);
    if (lmagic != IDX_LABELS_MAGIC) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: magic 0x%08x, expected 0x%08x (IDX unsigned bytes, 1 "
                    "dimension: labels)", RN_SHOW(lpath), lmagic, IDX_LABELS_MAGIC);
        goto done;
    }
    if ((s = idx_check_size(fl, lpath, 8, ln, (long)ln, "labels"))) goto done;
    if (ln != n) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: %u labels, but %s has %u images", RN_SHOW(lpath), ln,
                    RN_SHOW(ipath), n);
        goto done;
    }
    if ((s = rn_data_alloc(d, ipath, (int)n, 1, (int)rows, (int)cols, IDX_CLASSES))) goto done;
    if (!idx_read(fi, d->images, (size_t)n * rows * cols)) {
        s = idx_short(fi, ipath, "pixels");
        goto done;
    }
    if ((s = idx_expect_end(fi, ipath, (long)n, "images"))) goto done;
    uint8_t *lab = (uint8_t *)d->labels; /* read bytes into the front, widen from the back */
    if (!idx_read(fl, lab, n)) {
        s = idx_short(fl, lpath, "labels");
        goto done;
    }
    if ((s = idx_expect_end(fl, lpath, (long)n, "labels"))) goto done;
    for (long i = (long)n - 1; i >= 0; i--) d->labels[i] = lab[i];
    for (uint32_t i = 0; i < n; i++)
        if (d->labels[i] >= IDX_CLASSES) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s: label %u is %d, expected < %d (the number of classes)",
                        RN_SHOW(lpath), i, (int)d->labels[i], IDX_CLASSES);
            goto done;
        }
    s = rn_data_default_names(d);
done:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    if (s) rn_dataset_free(d);
    return s;
}

rn_status rn_data_load_mnist(rn_dataset *train, rn_dataset *test, const char *dir) {
    rn_status s = load_split(train, dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    if (!s && test) s = load_split(test, dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte");
    if (!s && is_fashion_train(train->labels, train->n)) {
        s = set_fashion_names(train);
        if (!s && test) s = set_fashion_names(test);
    }
    return s;
}
