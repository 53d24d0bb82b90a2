/*
 * set.c — what every loader builds a data set with (allocation, class names, paths), and
 * rn_dataset_free. The loaders (cifar.c, idx.c, folder.c) and dataset.c's dispatch use these;
 * nothing here calls a loader.
 */
#include "data/data.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

rn_status rn_data_alloc(rn_dataset *d, const char *source, int n, int c, int h, int w,
                        int num_classes) {
    memset(d, 0, sizeof *d);
    size_t bytes = (size_t)n * c * h * w;
    d->images = rn_alloc(bytes);
    d->labels = rn_alloc((size_t)n * sizeof(int32_t));
    if (!d->images || !d->labels) {
        rn_free(d->images);
        rn_free(d->labels);
        memset(d, 0, sizeof *d);
        return rn_fail(RN_ERR_NOMEM, "%s%scannot allocate %zu bytes for %d images of %dx%dx%d",
                       source ? RN_SHOW(source) : "", source ? ": " : "", bytes, n, c, h, w);
    }
    d->n = n;
    d->c = c;
    d->h = h;
    d->w = w;
    d->num_classes = num_classes;
    return RN_OK;
}

static void free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

char **rn_data_copy_names(char *const *names, int n) {
    char **out = calloc((size_t)(n > 0 ? n : 1), sizeof *out);
    if (!out) return NULL;
    for (int i = 0; i < n; i++) {
        out[i] = strdup(names[i]);
        if (!out[i]) {
            free_names(out, n);
            return NULL;
        }
    }
    return out;
}

rn_status rn_data_default_names(rn_dataset *d) {
    char **names = calloc((size_t)(d->num_classes > 0 ? d->num_classes : 1), sizeof *names);
    if (!names) return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    for (int i = 0; i < d->num_classes; i++) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", i);
        names[i] = strdup(buf);
        if (!names[i]) {
            free_names(names, d->num_classes);
            return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
        }
    }
    free_names(d->class_names, d->num_classes);
    d->class_names = names;
    return RN_OK;
}

rn_status rn_data_read_names(rn_dataset *d, const char *path, bool optional) {
    struct stat st;
    if (optional && stat(path, &st) != 0 && errno == ENOENT) return rn_data_default_names(d);
    void *buf;
    size_t size;
    rn_status s = rn_read_file_of(path, "a text file of class names", &buf, &size);
    if (s) return s;
    char **names = calloc((size_t)(d->num_classes > 0 ? d->num_classes : 1), sizeof *names);
    if (!names) {
        rn_free(buf);
        return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
    }
    int count = 0;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        while (*line == ' ' || *line == '\t' || *line == '\r') line++;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (len > 0) {
            if (count < d->num_classes && !(names[count] = strdup(line))) {
                free_names(names, d->num_classes);
                rn_free(buf);
                return rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
            }
            count++;
        }
        line = next;
    }
    rn_free(buf);
    if (count != d->num_classes) {
        free_names(names, d->num_classes);
        return rn_fail(RN_ERR_BAD_FILE, "%s: has %d class names, expected %d (one per line)",
                       RN_SHOW(path), count, d->num_classes);
    }
    free_names(d->class_names, d->num_classes);
    d->class_names = names;
    return RN_OK;
}

bool rn_data_path(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < size;
}

void rn_dataset_free(rn_dataset *d) {
    if (!d) return;
    rn_free(d->images);
    rn_free(d->labels);
    free_names(d->class_names, d->num_classes);
    memset(d, 0, sizeof *d);
}
