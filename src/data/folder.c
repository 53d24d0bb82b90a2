/*
 * folder.c — image-folder data sets (folder:ROOT): ROOT/train/CLASS/IMAGE and ROOT/test/CLASS/IMAGE
 * with IMAGE a file named with one of RN_IMAGE_EXTENSIONS (any case; read as predict reads it).
 * The label of an image is the index of its folder's name in the strcmp-sorted list of
 * ROOT/train's class folders; file names never matter beyond their order. Files are listed and
 * sorted first, then read in two parallel passes (OpenMP): headers (sizes and channel counts),
 * then pixels straight into the set, so the result does not depend on the thread count.
 */
#include "data/data.h"

#include <dirent.h>
#include <errno.h>
#include <omp.h>
#include <string.h>
#include <sys/stat.h>

#define FOLDER_HINT \
    "ROOT/train/CLASS/IMAGE and ROOT/test/CLASS/IMAGE, IMAGE a " RN_IMAGE_EXTENSIONS " file"

void rn_str_list_free(rn_str_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static bool list_push(rn_str_list *l, const char *s) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) return false;
    l->n++;
    return true;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir: sub-folders (want_dirs) or image files; hidden entries are skipped. */
rn_status rn_data_list_dir(rn_str_list *out, const char *dir, bool want_dirs) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return rn_fail(RN_ERR_IO, "%s: cannot open the folder: %s (expected " FOLDER_HINT ")",
                       RN_SHOW(dir), strerror(errno));
    struct dirent *e;
    char path[4096], unread[256] = ""; /* the first file (by strcmp) of a format not read */
    const char *unread_format = NULL;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        const char *format = want_dirs ? NULL : rn_image_name_unread(e->d_name);
        if (!want_dirs && !format && !rn_image_name_ok(e->d_name)) continue;
        bool is_dir;
        if (e->d_type == DT_DIR || e->d_type == DT_REG) {
            is_dir = e->d_type == DT_DIR;
        } else { /* a link, or a file system that does not say */
            struct stat st;
            if (!rn_data_path(path, sizeof path, dir, e->d_name) || stat(path, &st) != 0)
                continue;
            is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir != want_dirs) continue;
        if (format) {
            if (!unread_format || strcmp(e->d_name, unread) < 0) {
                snprintf(unread, sizeof unread, "%s", e->d_name);
                unread_format = format;
            }
            continue;
        }
        if (!list_push(out, e->d_name)) {
            closedir(d);
            rn_str_list_free(out);
            return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file list", RN_SHOW(dir));
        }
    }
    closedir(d);
    if (unread_format) {
        rn_str_list_free(out);
        return rn_fail(RN_ERR_BAD_FILE, "%s/%s: a %s image, which is not read (expected "
                       RN_IMAGE_FORMATS "; convert it or move it out of the folder)", dir, unread,
                       unread_format);
    }
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return RN_OK;
}

/* Appends the images of every class folder in split_dir to paths/labels; classes is the sorted
 * list of train classes (a folder outside it is an error). */
static rn_status list_split(rn_str_list *paths, int32_t **labels, const char *split_dir,
                            const rn_str_list *classes, const char *root) {
    rn_str_list sub;
    rn_status s = rn_data_list_dir(&sub, split_dir, true);
    if (s) return s;
    if (sub.n == 0) {
        rn_str_list_free(&sub);
        return rn_fail(RN_ERR_BAD_FILE, "%s: no class folders (expected " FOLDER_HINT ")",
                       RN_SHOW(split_dir));
    }
    char dir[4096], path[4096];
    for (int k = 0; k < sub.n && !s; k++) {
        char *const *hit = bsearch(&sub.v[k], classes->v, (size_t)classes->n, sizeof *classes->v,
                                   cmp_str);
        if (!hit) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s/%s: class '%s' has no folder in %s/train (the test "
                        "classes must be among the train classes)", RN_SHOW(split_dir),
                        RN_SHOW(sub.v[k]), RN_SHOW(sub.v[k]), RN_SHOW(root));
            break;
        }
        int label = (int)(hit - classes->v);
        rn_str_list files;
        if (!rn_data_path(dir, sizeof dir, split_dir, sub.v[k])) {
            s = rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(split_dir));
            break;
        }
        if ((s = rn_data_list_dir(&files, dir, false))) break;
        if (files.n == 0)
            s = rn_fail(RN_ERR_BAD_FILE, "%s: no images (expected " RN_IMAGE_EXTENSIONS " files)",
                        RN_SHOW(dir));
        int32_t *grown = s ? NULL : realloc(*labels, (size_t)(paths->n + files.n) * sizeof **labels);
        if (!s && !grown) s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file list",
                                      RN_SHOW(dir));
        if (grown) *labels = grown;
        for (int i = 0; i < files.n && !s; i++) {
            if (!rn_data_path(path, sizeof path, dir, files.v[i]))
                s = rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(dir));
            else if (paths->n >= INT32_MAX / 4)
                s = rn_fail(RN_ERR_BAD_ARG, "%s: too many images", RN_SHOW(root));
            else if (!list_push(paths, path))
                s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file list", RN_SHOW(dir));
            else
                (*labels)[paths->n - 1] = label;
        }
        rn_str_list_free(&files);
    }
    rn_str_list_free(&sub);
    return s;
}

/* Per-file results of the parallel passes. */
typedef struct {
    int w, h, c;  /* from the header; c as rn_image_load keeps it: 1 (gray) or 3 */
    rn_status status; /* this file's failure, and its message (NULL if none) */
    char *error;
} file_info;

static void record_error(file_info *fi, rn_status s) {
    fi->status = s;
    fi->error = strdup(rn_error_message());
}

/* The first failure in file order, so the message does not depend on thread timing. */
static rn_status first_error(const file_info *info, int n) {
    for (int i = 0; i < n; i++)
        if (info[i].status)
            return rn_fail(info[i].status, "%s", info[i].error ? info[i].error : "out of memory");
    return RN_OK;
}

/* Decodes paths[i] into slot (c, h, w) of out, resizing when its size differs. */
static rn_status decode_one(uint8_t *out, const char *path, const file_info *fi, int c, int h,
                            int w) {
    rn_image img;
    rn_status s = rn_image_load(&img, path, c);
    if (s) return s;
    if (img.width != fi->w || img.height != fi->h) {
        rn_image_free(&img);
        return rn_fail(RN_ERR_BAD_FILE, "%s: decodes to %dx%d but its header says %dx%d",
                       RN_SHOW(path), img.height, img.width, fi->h, fi->w);
    }
    s = rn_data_image_planes(out, h, w, &img);
    rn_image_free(&img);
    return s;
}

rn_status rn_data_load_folder(rn_dataset *train, rn_dataset *test, const char *root,
                              const rn_data_opts *opts, rn_data_progress progress, void *user) {
    rn_str_list classes = {0}, paths = {0};
    int32_t *labels = NULL;
    file_info *info = NULL;
    char dir[4096];
    int n_train = 0;
    rn_status s;

    if (!rn_data_path(dir, sizeof dir, root, "train"))
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(root));
    if ((s = rn_data_list_dir(&classes, dir, true))) return s;
    if (classes.n == 0) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: no class folders (expected " FOLDER_HINT ")",
                    RN_SHOW(dir));
        goto done;
    }
    if ((s = list_split(&paths, &labels, dir, &classes, root))) goto done;
    n_train = paths.n;
    if (test) {
        rn_data_path(dir, sizeof dir, root, "test");
        if ((s = list_split(&paths, &labels, dir, &classes, root))) goto done;
    }
    int n = paths.n;

    /* Pass 1: headers only. */
    info = calloc((size_t)n, sizeof *info);
    if (!info) {
        s = rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the file table", RN_SHOW(root));
        goto done;
    }
    #pragma omp parallel for schedule(dynamic, 64)
    for (int i = 0; i < n; i++) {
        rn_status si = rn_image_info(paths.v[i], &info[i].w, &info[i].h, &info[i].c);
        if (si) record_error(&info[i], si);
    }
    if ((s = first_error(info, n))) goto done;

    int c = 1;
    for (int i = 0; i < n; i++)
        if (info[i].c == 3) c = 3;
    int h = opts ? opts->resize_h : 0, w = opts ? opts->resize_w : 0;
    if (h <= 0 || w <= 0) {
        h = info[0].h;
        w = info[0].w;
        for (int i = 1; i < n; i++)
            if (info[i].h != h || info[i].w != w) {
                s = rn_fail(RN_ERR_SHAPE, "%s: image is %dx%d (height x width) but %s is %dx%d; "
                            "all images must have one size, or give a resize (--resize HxW)",
                            RN_SHOW(paths.v[i]), info[i].h, info[i].w, RN_SHOW(paths.v[0]), h, w);
                goto done;
            }
    }

    /* Pass 2: pixels, straight into the sets; the first thread reports progress. */
    if ((s = rn_data_alloc(train, root, n_train, c, h, w, classes.n))) goto done;
    if (test && (s = rn_data_alloc(test, root, n - n_train, c, h, w, classes.n))) goto done;
    size_t img_size = (size_t)c * h * w;
    int decoded = 0;
    #pragma omp parallel for schedule(dynamic, 64)
    for (int i = 0; i < n; i++) {
        uint8_t *out = i < n_train ? train->images + (size_t)i * img_size
                                   : test->images + (size_t)(i - n_train) * img_size;
        rn_status si = decode_one(out, paths.v[i], &info[i], c, h, w);
        if (si) record_error(&info[i], si);
        int now;
        #pragma omp atomic capture
        now = ++decoded;
        if (progress && omp_get_thread_num() == 0 && now % 64 == 0)
            progress(now, n, user);
    }
    if (progress) progress(n, n, user);
    if ((s = first_error(info, n))) goto done;
    memcpy(train->labels, labels, (size_t)n_train * sizeof *labels);
    if (test) memcpy(test->labels, labels + n_train, (size_t)(n - n_train) * sizeof *labels);

    /* Class names: the train folder names, in label order. */
    train->class_names = classes.v;
    classes.v = NULL;
    classes.n = 0;
    if (test && !(test->class_names = rn_data_copy_names(train->class_names, train->num_classes)))
        s = rn_fail(RN_ERR_NOMEM, "cannot allocate class names");
done:
    if (info)
        for (int i = 0; i < paths.n; i++) free(info[i].error);
    free(info);
    free(labels);
    rn_str_list_free(&paths);
    rn_str_list_free(&classes);
    return s;
}
