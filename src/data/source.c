/*
 * source.c — the image index of source.h: growing it, reading one image by random access, and
 * indexing an ImageNet-layout folder (shards.c indexes tar shards).
 */
#include "data/source.h"
#include "data/data.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FOLDER_LAYOUT "ROOT/train/CLASS/IMAGE and ROOT/val/CLASS/IMAGE, IMAGE a .jpg, .jpeg or .png"

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool grow(void **p, size_t elem, int n) {
    void *q = realloc(*p, (size_t)n * elem);
    if (!q) return false;
    *p = q;
    return true;
}

bool rn_source_add(rn_source *src, int file, int64_t offset, int64_t size, int label,
                   const char *name) {
    int n = src->n;
    if ((n & (n - 1)) == 0) { /* capacity doubles at powers of two */
        int cap = n ? 2 * n : 1024;
        if (!grow((void **)&src->label, sizeof *src->label, cap) ||
            !grow((void **)&src->file, sizeof *src->file, cap) ||
            !grow((void **)&src->offset, sizeof *src->offset, cap) ||
            !grow((void **)&src->size, sizeof *src->size, cap) ||
            !grow((void **)&src->name_at, sizeof *src->name_at, cap))
            return false;
    }
    size_t len = strlen(name) + 1;
    if (src->names_len + len > src->names_cap) {
        size_t cap = RN_MAX(2 * src->names_cap, src->names_len + len + 65536);
        char *q = realloc(src->names, cap);
        if (!q) return false;
        src->names = q;
        src->names_cap = cap;
    }
    memcpy(src->names + src->names_len, name, len);
    src->label[n] = label;
    src->file[n] = file;
    src->offset[n] = offset;
    src->size[n] = size;
    src->name_at[n] = (int64_t)src->names_len;
    src->names_len += len;
    src->n = n + 1;
    return true;
}

void rn_source_free(rn_source *src) {
    for (int k = 0; k < src->num_classes && src->class_names; k++) free(src->class_names[k]);
    free(src->class_names);
    for (int k = 0; k < src->n_files; k++) free(src->files[k]);
    free(src->files);
    free(src->label);
    free(src->file);
    free(src->offset);
    free(src->size);
    free(src->name_at);
    free(src->names);
    memset(src, 0, sizeof *src);
}

void rn_source_name(const rn_source *src, int i, char *buf, size_t size) {
    const char *name = src->names + src->name_at[i];
    snprintf(buf, size, "%s%s%s", src->files[src->file[i]], src->size[i] < 0 ? "/" : ":", name);
}

rn_status rn_source_read(const rn_source *src, int i, uint8_t **buf, size_t *cap, size_t *size) {
    char path[4096];
    bool whole = src->size[i] < 0;
    if (whole) rn_source_name(src, i, path, sizeof path);
    else snprintf(path, sizeof path, "%s", src->files[src->file[i]]);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int64_t want = src->size[i], at = src->offset[i];
    if (whole) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            close(fd);
            return rn_fail(RN_ERR_IO, "%s: cannot read its size: %s", path, strerror(errno));
        }
        want = st.st_size;
        at = 0;
    }
    if ((size_t)want > *cap) {
        uint8_t *p = realloc(*buf, (size_t)want);
        if (!p) {
            close(fd);
            return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %lld bytes", path, (long long)want);
        }
        *buf = p;
        *cap = (size_t)want;
    }
    int64_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, *buf + got, (size_t)(want - got), (off_t)(at + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            char name[4096];
            rn_source_name(src, i, name, sizeof name);
            return rn_fail(RN_ERR_IO, "%s: %s after %lld of %lld bytes", name,
                           r < 0 ? strerror(e) : "file ends", (long long)got, (long long)want);
        }
        got += r;
    }
    close(fd);
    *size = (size_t)want;
    return RN_OK;
}

rn_status rn_source_open_folder(rn_source *src, const char *root, const char *split) {
    memset(src, 0, sizeof *src);
    char dir[4096], train[4096];
    if (!rn_data_path(train, sizeof train, root, "train") ||
        !rn_data_path(dir, sizeof dir, root, split))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", root);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return rn_fail(RN_ERR_IO, "%s: no such folder (expected " FOLDER_LAYOUT ")", dir);
    rn_str_list classes, sub = {0}, files = {0};
    rn_status s = rn_data_list_dir(&classes, train, true);
    if (s) return s;
    if (classes.n == 0) {
        rn_str_list_free(&classes);
        return rn_fail(RN_ERR_BAD_FILE, "%s: no class folders (expected " FOLDER_LAYOUT ")", train);
    }
    src->num_classes = classes.n;
    src->class_names = classes.v; /* owned by src from here */
    if ((s = rn_data_list_dir(&sub, dir, true))) goto done;
    if (!(src->files = calloc((size_t)RN_MAX(sub.n, 1), sizeof *src->files))) {
        s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file index", dir);
        goto done;
    }
    for (int k = 0; k < sub.n && !s; k++) {
        char *const *hit = bsearch(&sub.v[k], classes.v, (size_t)classes.n, sizeof *classes.v,
                                   cmp_str);
        if (!hit) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s/%s: class '%s' has no folder in %s (the classes are "
                        "the train split's)", dir, sub.v[k], sub.v[k], train);
            break;
        }
        char cls[4096];
        if (!rn_data_path(cls, sizeof cls, dir, sub.v[k])) {
            s = rn_fail(RN_ERR_BAD_ARG, "%s: path too long", dir);
            break;
        }
        if (!(src->files[k] = strdup(cls))) {
            s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file index", dir);
            break;
        }
        src->n_files = k + 1;
        if ((s = rn_data_list_dir(&files, cls, false))) break;
        for (int i = 0; i < files.n && !s; i++)
            if (src->n >= INT32_MAX / 2)
                s = rn_fail(RN_ERR_BAD_ARG, "%s: too many images", dir);
            else if (!rn_source_add(src, k, 0, -1, (int)(hit - classes.v), files.v[i]))
                s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file index", cls);
        rn_str_list_free(&files);
    }
    if (!s && src->n == 0)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: no images (expected " FOLDER_LAYOUT ")", dir);
done:
    rn_str_list_free(&sub);
    if (s) rn_source_free(src);
    return s;
}
