/*
 * cifar.c — CIFAR-style binary data sets: files of fixed-size records (label byte(s) followed by
 * c*h*w planar pixel bytes). Reads CIFAR-10 (cifar10:DIR), CIFAR-100 (cifar100:DIR, fine or
 * coarse labels) and what rn_dataset_pack writes (packed:DIR: the CIFAR-10 layout plus a
 * meta.json giving shape, classes and counts, so any image size or channel count round-trips).
 */
#include "core/draws.h"
#include "data/data.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define PACK_FORMAT "resnet.c packed data set"
#define PACK_VERSION 1
#define PACK_BATCHES 5
/* rn_dataset_pack writes the records of each set in a fixed shuffled order (as CIFAR's own
 * batches are shuffled), from these seeds: the same set always packs to the same files. */
#define PACK_TRAIN_SEED 0x7061636B74726E31ull
#define PACK_TEST_SEED 0x7061636B74737431ull

static const char *const cifar10_train_files[PACK_BATCHES] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin"};

/* How the records of one format look. */
typedef struct {
    int c, h, w;
    int num_classes;
    int label_bytes; /* bytes before the pixels */
    int label_at;    /* which of them is the label */
    const char *hint; /* what the folder should hold, for messages about missing files */
} record_format;

/* Reads files (all of one split) of records into d. expected: the total meta.json gives, < 0
 * when there is none; then every file must hold a record (with meta.json, a pack of fewer than
 * 5 images has empty batch files, and the total is checked instead). */
static rn_status load_records(rn_dataset *d, const char *dir, const char *const *files,
                              int n_files, const record_format *fmt, long expected) {
    size_t pixels = (size_t)fmt->c * fmt->h * fmt->w;
    size_t rec = (size_t)fmt->label_bytes + pixels;
    char path[4096];
    long counts[PACK_BATCHES];
    long total = 0;
    /* Pass 1: sizes, so that the set is allocated once. */
    for (int f = 0; f < n_files; f++) {
        if (!rn_data_path(path, sizeof path, dir, files[f]))
            return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
        struct stat st;
        if (stat(path, &st) != 0)
            return rn_fail(RN_ERR_IO, "%s: cannot open: %s (expected %s)", RN_SHOW(path),
                           strerror(errno), fmt->hint);
        if (!S_ISREG(st.st_mode))
            return rn_fail(RN_ERR_IO, "%s: not a regular file (expected %s)", RN_SHOW(path),
                           fmt->hint);
        if ((size_t)st.st_size % rec != 0)
            return rn_fail(RN_ERR_BAD_FILE,
                           "%s: %lld bytes is not a whole number of %zu-byte records (%d label "
                           "byte%s + %dx%dx%d pixels); the file is truncated or not this format",
                           RN_SHOW(path), (long long)st.st_size, rec, fmt->label_bytes,
                           fmt->label_bytes > 1 ? "s" : "", fmt->c, fmt->h, fmt->w);
        if (st.st_size == 0 && expected < 0)
            return rn_fail(RN_ERR_BAD_FILE, "%s: empty file (expected %s)", RN_SHOW(path),
                           fmt->hint);
        counts[f] = (long)((size_t)st.st_size / rec);
        total += counts[f];
        if (total > INT32_MAX / 2)
            return rn_fail(RN_ERR_BAD_FILE, "%s: too many records (%ld)", RN_SHOW(path), total);
    }
    if (expected >= 0 && total != expected)
        return rn_fail(RN_ERR_BAD_FILE, "%s/%s%s: %ld records in all, expected %ld (meta.json)",
                       RN_SHOW(dir), files[0], n_files > 1 ? " ..." : "", total, expected);
    if (total == 0)
        return rn_fail(RN_ERR_BAD_FILE, "%s/%s%s: no records (expected %s)", RN_SHOW(dir), files[0],
                       n_files > 1 ? " ..." : "", fmt->hint);
    rn_status s = rn_data_alloc(d, dir, (int)total, fmt->c, fmt->h, fmt->w, fmt->num_classes);
    if (s) return s;
    /* Pass 2: read and unpack each file. */
    long at = 0;
    for (int f = 0; f < n_files; f++) {
        rn_data_path(path, sizeof path, dir, files[f]);
        void *buf;
        size_t size;
        if ((s = rn_read_file(path, &buf, &size))) return s;
        if (size != (size_t)counts[f] * rec) {
            rn_free(buf);
            return rn_fail(RN_ERR_IO, "%s: changed size while being read", RN_SHOW(path));
        }
        const uint8_t *p = buf;
        for (long r = 0; r < counts[f]; r++, p += rec) {
            int label = p[fmt->label_at];
            if (label >= fmt->num_classes) {
                rn_free(buf);
                return rn_fail(RN_ERR_BAD_FILE,
                               "%s: record %ld has label %d, expected < %d (the number of classes)",
                               RN_SHOW(path), r, label, fmt->num_classes);
            }
            d->labels[at] = label;
            memcpy(d->images + (size_t)at * pixels, p + fmt->label_bytes, pixels);
            at++;
        }
        rn_free(buf);
    }
    return RN_OK;
}

/* What meta.json says. */
typedef struct {
    int c, h, w, num_classes;
    long train_count, test_count;
} pack_meta;

static bool json_int(const cJSON *obj, const char *key, long lo, long hi, long *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    /* The range first: casting a double outside long's range is undefined. */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (long)v->valuedouble;
    return true;
}

/* Reads dir/meta.json. *found is false (and RN_OK returned) when it does not exist. */
static rn_status read_meta(const char *dir, pack_meta *m, bool *found) {
    char path[4096];
    if (!rn_data_path(path, sizeof path, dir, "meta.json"))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    *found = false;
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT) return RN_OK;
    *found = true;
    void *buf;
    size_t size;
    rn_status s = rn_read_file(path, &buf, &size);
    if (s) return s;
    cJSON *j = cJSON_ParseWithLength(buf, size);
    rn_free(buf);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return rn_fail(RN_ERR_BAD_FILE, "%s: not a JSON object", RN_SHOW(path));
    }
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(j, "format");
    long version = 0, c = 0, h = 0, w = 0, k = 0, ntr = 0, nte = 0;
    bool ok = cJSON_IsString(format) && !strcmp(format->valuestring, PACK_FORMAT);
    if (!ok) {
        cJSON_Delete(j);
        return rn_fail(RN_ERR_BAD_FILE, "%s: \"format\" is not \"" PACK_FORMAT "\"", RN_SHOW(path));
    }
    if (!json_int(j, "version", 1, 1000000, &version) || version != PACK_VERSION) {
        cJSON_Delete(j);
        return rn_fail(RN_ERR_BAD_FILE, "%s: version %ld, this program reads version %d",
                       RN_SHOW(path), version, PACK_VERSION);
    }
    ok = json_int(j, "channels", 1, 4, &c) && json_int(j, "height", 1, 65536, &h) &&
         json_int(j, "width", 1, 65536, &w) && json_int(j, "num_classes", 1, 256, &k) &&
         json_int(j, "train_count", 1, INT32_MAX / 2, &ntr) &&
         json_int(j, "test_count", 1, INT32_MAX / 2, &nte);
    cJSON_Delete(j);
    if (!ok)
        return rn_fail(RN_ERR_BAD_FILE,
                       "%s: expected integer fields channels (1..4), height, width, num_classes "
                       "(1..256), train_count and test_count (> 0)", RN_SHOW(path));
    m->c = (int)c;
    m->h = (int)h;
    m->w = (int)w;
    m->num_classes = (int)k;
    m->train_count = ntr;
    m->test_count = nte;
    return RN_OK;
}

/* CIFAR-10 layout, with or without meta.json (required for packed). */
static rn_status load_cifar10_layout(rn_dataset *train, rn_dataset *test, const char *dir,
                                     bool packed) {
    pack_meta m = {3, 32, 32, 10, -1, -1};
    bool found = false;
    rn_status s = read_meta(dir, &m, &found);
    if (s) return s;
    if (packed && !found)
        return rn_fail(RN_ERR_IO, "%s/meta.json: not found (expected a folder written by "
                       "`resnet data pack`; for CIFAR-10's own files use cifar10:%s)",
                       RN_SHOW(dir), RN_SHOW(dir));
    if (!packed && found && (m.c != 3 || m.h != 32 || m.w != 32))
        return rn_fail(RN_ERR_SHAPE, "%s/meta.json: images are %dx%dx%d, not CIFAR-10's 3x32x32; "
                       "load it as packed:%s", RN_SHOW(dir), m.c, m.h, m.w, RN_SHOW(dir));
    record_format fmt = {m.c, m.h, m.w, m.num_classes, 1, 0,
                         packed ? "data_batch_1..5.bin and test_batch.bin from `resnet data pack`"
                                : "CIFAR-10 binary files data_batch_1..5.bin and test_batch.bin"};
    static const char *const test_files[1] = {"test_batch.bin"};
    char names[4096];
    if (!rn_data_path(names, sizeof names, dir, "batches.meta.txt"))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    if ((s = load_records(train, dir, cifar10_train_files, PACK_BATCHES, &fmt, m.train_count)) ||
        (s = rn_data_read_names(train, names, true)))
        return s;
    if (test) {
        if ((s = load_records(test, dir, test_files, 1, &fmt, m.test_count))) return s;
        test->class_names = rn_data_copy_names(train->class_names, train->num_classes);
        if (!test->class_names) return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    }
    return RN_OK;
}

rn_status rn_data_load_cifar10(rn_dataset *train, rn_dataset *test, const char *dir) {
    return load_cifar10_layout(train, test, dir, false);
}

rn_status rn_data_load_packed(rn_dataset *train, rn_dataset *test, const char *dir) {
    return load_cifar10_layout(train, test, dir, true);
}

rn_status rn_data_load_cifar100(rn_dataset *train, rn_dataset *test, const char *dir,
                                bool coarse) {
    record_format fmt = {3, 32, 32, coarse ? 20 : 100, 2, coarse ? 0 : 1,
                         "CIFAR-100 binary files train.bin and test.bin"};
    static const char *const train_files[1] = {"train.bin"};
    static const char *const test_files[1] = {"test.bin"};
    char names[4096];
    if (!rn_data_path(names, sizeof names, dir,
                      coarse ? "coarse_label_names.txt" : "fine_label_names.txt"))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    rn_status s;
    if ((s = load_records(train, dir, train_files, 1, &fmt, -1)) ||
        (s = rn_data_read_names(train, names, true)))
        return s;
    if (test) {
        if ((s = load_records(test, dir, test_files, 1, &fmt, -1))) return s;
        test->class_names = rn_data_copy_names(train->class_names, train->num_classes);
        if (!test->class_names) return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    }
    return RN_OK;
}

/* ---- writing -------------------------------------------------------------------------- */

/* Checks that a set can be stored as label bytes with the given shape. */
static rn_status check_packable(const rn_dataset *d, const char *which, const rn_dataset *ref) {
    if (d->n <= 0 || !d->images || !d->labels)
        return rn_fail(RN_ERR_BAD_ARG, "cannot pack: the %s set is empty", which);
    if (d->c < 1 || d->c > 4 || d->h < 1 || d->w < 1 || d->h > 65536 || d->w > 65536)
        return rn_fail(RN_ERR_BAD_ARG, "cannot pack: the %s set's images are %dx%dx%d (expected "
                       "1..4 channels and sizes 1..65536)", which, d->c, d->h, d->w);
    if (ref && (d->c != ref->c || d->h != ref->h || d->w != ref->w ||
                d->num_classes != ref->num_classes))
        return rn_fail(RN_ERR_SHAPE, "cannot pack: test images %dx%dx%d with %d classes differ "
                       "from train images %dx%dx%d with %d classes", d->c, d->h, d->w,
                       d->num_classes, ref->c, ref->h, ref->w, ref->num_classes);
    for (int i = 0; i < d->n; i++) {
        if (d->labels[i] < 0 || d->labels[i] > 255)
            return rn_fail(RN_ERR_BAD_ARG, "cannot pack: %s image %d has label %d (a label byte "
                           "holds 0..255)", which, i, (int)d->labels[i]);
        if (d->labels[i] >= d->num_classes)
            return rn_fail(RN_ERR_BAD_ARG, "cannot pack: %s image %d has label %d, expected < %d",
                           which, i, (int)d->labels[i], d->num_classes);
    }
    if (d->num_classes < 1 || d->num_classes > 256)
        return rn_fail(RN_ERR_BAD_ARG, "cannot pack: the %s set has %d classes (a label byte "
                       "holds at most 256)", which, d->num_classes);
    if (d->class_names)
        for (int k = 0; k < d->num_classes; k++)
            if (!d->class_names[k] || !d->class_names[k][0] || strchr(d->class_names[k], '\n') ||
                strchr(d->class_names[k], '\r'))
                return rn_fail(RN_ERR_BAD_ARG, "cannot pack: class %d's name is empty or holds "
                               "a line break", k);
    return RN_OK;
}

/* Writes images order[first .. first+count) of d as records to dir/name. */
static rn_status write_records(const char *dir, const char *name, const rn_dataset *d,
                               const int *order, int first, int count) {
    char path[4096];
    if (!rn_data_path(path, sizeof path, dir, name))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    size_t pixels = (size_t)d->c * d->h * d->w, rec = 1 + pixels;
    uint8_t *buf = rn_alloc((size_t)count * rec);
    if (!buf) return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes", RN_SHOW(path),
                             count * rec);
    for (int i = 0; i < count; i++) {
        int k = order[first + i];
        buf[i * rec] = (uint8_t)d->labels[k];
        memcpy(buf + i * rec + 1, d->images + (size_t)k * pixels, pixels);
    }
    const void *parts[1] = {buf};
    size_t sizes[1] = {(size_t)count * rec};
    rn_status s = rn_write_file_atomic(path, parts, sizes, 1);
    rn_free(buf);
    return s;
}

rn_status rn_dataset_pack(const rn_dataset *train, const rn_dataset *test, const char *dir) {
    rn_status s;
    if (!test) return rn_fail(RN_ERR_BAD_ARG, "cannot pack: no test set given");
    if ((s = check_packable(train, "train", NULL)) || (s = check_packable(test, "test", train)))
        return s;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rn_fail(RN_ERR_IO, "%s: cannot create the folder: %s", RN_SHOW(dir),
                       strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rn_fail(RN_ERR_IO, "%s: not a folder", RN_SHOW(dir));
    /* A folder without meta.json is not loadable as packed:, so a pack stopped half-way can
     * never be mistaken for a complete one. */
    char path[4096];
    if (!rn_data_path(path, sizeof path, dir, "meta.json"))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
    if (unlink(path) != 0 && errno != ENOENT)
        return rn_fail(RN_ERR_IO, "%s: cannot remove the old file: %s", RN_SHOW(path),
                       strerror(errno));

    int *order = malloc((size_t)RN_MAX(train->n, test->n) * sizeof *order);
    if (!order) return rn_fail(RN_ERR_NOMEM, "cannot allocate the order of %d images", train->n);
    int counts[PACK_BATCHES], first = 0;
    rn_draw_split_order(order, train->n, PACK_TRAIN_SEED);
    for (int b = 0; b < PACK_BATCHES && !s; b++) {
        counts[b] = train->n / PACK_BATCHES + (b < train->n % PACK_BATCHES);
        s = write_records(dir, cifar10_train_files[b], train, order, first, counts[b]);
        first += counts[b];
    }
    if (!s) {
        rn_draw_split_order(order, test->n, PACK_TEST_SEED);
        s = write_records(dir, "test_batch.bin", test, order, 0, test->n);
    }
    free(order);
    if (s) return s;

    /* Class names, one per line ("0".."k-1" if the set has none). */
    size_t len = 0;
    for (int k = 0; k < train->num_classes; k++)
        len += (train->class_names ? strlen(train->class_names[k]) : 12) + 1;
    char *text = malloc(len + 1), *p = text;
    if (!text) return rn_fail(RN_ERR_NOMEM, "cannot allocate the class names file");
    for (int k = 0; k < train->num_classes; k++) {
        if (train->class_names) p += sprintf(p, "%s\n", train->class_names[k]);
        else p += sprintf(p, "%d\n", k);
    }
    rn_data_path(path, sizeof path, dir, "batches.meta.txt");
    const void *parts[1] = {text};
    size_t sizes[1] = {(size_t)(p - text)};
    s = rn_write_file_atomic(path, parts, sizes, 1);
    free(text);
    if (s) return s;

    char meta[1024];
    int m = snprintf(meta, sizeof meta,
                     "{\n  \"format\": \"" PACK_FORMAT "\",\n  \"version\": %d,\n"
                     "  \"channels\": %d,\n  \"height\": %d,\n  \"width\": %d,\n"
                     "  \"num_classes\": %d,\n  \"train_count\": %d,\n  \"test_count\": %d,\n"
                     "  \"train_batches\": [%d, %d, %d, %d, %d]\n}\n",
                     PACK_VERSION, train->c, train->h, train->w, train->num_classes, train->n,
                     test->n, counts[0], counts[1], counts[2], counts[3], counts[4]);
    rn_data_path(path, sizeof path, dir, "meta.json");
    parts[0] = meta;
    sizes[0] = (size_t)m;
    return rn_write_file_atomic(path, parts, sizes, 1);
}
