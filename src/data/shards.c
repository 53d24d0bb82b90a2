/*
 * shards.c — indexing WebDataset tar shards (shards:PATTERN) with libarchive: the pattern's
 * brace ranges and wildcards name the shard files, each shard's members are listed once (the
 * image members' data is skipped, only the small .cls members are read), and every sample
 * gets the offset and size of its image inside its shard, so that rn_source_read can fetch it
 * with one pread, in any order, from any thread.
 */
#include "data/data.h"
#include "data/source.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <glob.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define SHARD_LAYOUT "a tar of KEY.jpg (or .jpeg, .png) + KEY.cls members"
#define MAX_SHARDS 1000000

static rn_status push(rn_str_list *l, const char *str) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return rn_fail(RN_ERR_NOMEM, "cannot allocate the shard list");
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(str))) return rn_fail(RN_ERR_NOMEM, "cannot allocate the shard list");
    l->n++;
    return RN_OK;
}

/* Expands the first {A..B} range of pattern (recursively the rest) into out. */
static rn_status expand_braces(rn_str_list *out, const char *pattern) {
    const char *open = strchr(pattern, '{');
    const char *close = open ? strchr(open, '}') : NULL;
    const char *dots = open && close ? strstr(open, "..") : NULL;
    if (!open || !close || !dots || dots > close) {
        if (out->n >= MAX_SHARDS)
            return rn_fail(RN_ERR_BAD_ARG, "shards:%s: more than %d files", pattern, MAX_SHARDS);
        return push(out, pattern);
    }
    char *end1, *end2;
    long lo = strtol(open + 1, &end1, 10), hi = strtol(dots + 2, &end2, 10);
    if (end1 != dots || end2 != close || end1 == open + 1 || end2 == dots + 2 || lo < 0 || hi < lo)
        return rn_fail(RN_ERR_BAD_ARG, "shards:%s: bad range '%.*s' (expected {A..B} with "
                       "0 <= A <= B, such as {000000..000127})", pattern, (int)(close - open + 1),
                       open);
    if (hi - lo >= MAX_SHARDS)
        return rn_fail(RN_ERR_BAD_ARG, "shards:%s: more than %d files", pattern, MAX_SHARDS);
    int width = (int)(dots - open - 1);
    size_t len = strlen(pattern) + 32;
    char *buf = malloc(len);
    if (!buf) return rn_fail(RN_ERR_NOMEM, "cannot allocate the shard list");
    rn_status s = RN_OK;
    for (long v = lo; v <= hi && !s; v++) {
        snprintf(buf, len, "%.*s%0*ld%s", (int)(open - pattern), pattern, width, v, close + 1);
        s = expand_braces(out, buf);
    }
    free(buf);
    return s;
}

/* The sample being assembled from consecutive members with one key. */
typedef struct {
    char key[1024];
    char image[1024];      /* the image member's name, "" if none yet */
    int64_t offset, size;  /* the image's data in the shard */
    long label;            /* -1: no .cls yet */
    bool open;
} sample;

static rn_status finish(rn_source *src, int file, sample *sm, const char *shard, int64_t bytes) {
    if (!sm->open) return RN_OK;
    sm->open = false;
    if (!sm->image[0])
        return rn_fail(RN_ERR_BAD_FILE, "%s: sample '%s' has no image member (expected "
                       SHARD_LAYOUT ")", shard, sm->key);
    if (sm->label < 0)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s has no %s.cls member (expected " SHARD_LAYOUT ")",
                       shard, sm->image, sm->key);
    if (sm->offset + sm->size > bytes)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s: truncated shard (the member needs %lld bytes, "
                       "the file has %lld)", shard, sm->image, (long long)(sm->offset + sm->size),
                       (long long)bytes);
    if (src->n >= INT32_MAX / 2) return rn_fail(RN_ERR_BAD_ARG, "%s: too many images", shard);
    if (!rn_source_add(src, file, sm->offset, sm->size, (int)sm->label, sm->image))
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate the sample index", shard);
    return RN_OK;
}

/* Reads a .cls member's text: a decimal integer, surrounding white space allowed. */
static rn_status read_label(struct archive *a, const char *shard, const char *member,
                            int num_classes, long *label) {
    char text[64];
    la_ssize_t got = archive_read_data(a, text, sizeof text - 1);
    if (got < 0)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s: cannot read (%s)", shard, member,
                       archive_error_string(a));
    text[got] = 0;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
    if (end == text || *end || errno || v < 0 || v > INT32_MAX - 1)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s: '%.20s' is not a class label (expected a "
                       "non-negative integer)", shard, member, text);
    if (num_classes > 0 && v >= num_classes)
        return rn_fail(RN_ERR_BAD_FILE, "%s: %s: label %ld out of range (expected 0..%d for %d "
                       "classes)", shard, member, v, num_classes - 1, num_classes);
    *label = v;
    return RN_OK;
}

static rn_status index_shard(rn_source *src, int file, const char *shard, int num_classes) {
    struct stat st;
    if (stat(shard, &st) != 0)
        return rn_fail(RN_ERR_IO, "%s: cannot open the shard: %s", shard, strerror(errno));
    if (st.st_size == 0)
        return rn_fail(RN_ERR_BAD_FILE, "%s: empty shard (0 bytes; expected " SHARD_LAYOUT ")",
                       shard);
    struct archive *a = archive_read_new();
    if (!a) return rn_fail(RN_ERR_NOMEM, "%s: cannot start a tar reader", shard);
    archive_read_support_format_tar(a);
    archive_read_support_filter_all(a); /* only to recognize, and refuse, compressed shards */
    rn_status s = RN_OK;
    int before = src->n;
    sample sm = {.label = -1};
    if (archive_read_open_filename(a, shard, 1 << 16) != ARCHIVE_OK) {
        s = rn_fail(RN_ERR_BAD_FILE, "%s: cannot read the shard (%s; expected " SHARD_LAYOUT ")",
                    shard, archive_error_string(a));
        goto done;
    }
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r < ARCHIVE_WARN) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s: truncated or not a tar file (%s)", shard,
                        archive_error_string(a));
            goto done;
        }
        if (archive_filter_code(a, 0) != ARCHIVE_FILTER_NONE) {
            s = rn_fail(RN_ERR_BAD_FILE, "%s: compressed (%s) shard; expected a plain tar, which "
                        "can be read at random offsets", shard, archive_filter_name(a, 0));
            goto done;
        }
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(e);
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        const char *dot = strchr(base, '.');
        if (!dot || strlen(name) >= sizeof sm.key) continue; /* no extension: not a sample part */
        int key_len = (int)(dot - name);
        const char *ext = dot + 1;
        if (!sm.open || (int)strlen(sm.key) != key_len || strncmp(sm.key, name, (size_t)key_len)) {
            if ((s = finish(src, file, &sm, shard, st.st_size))) goto done;
            memset(&sm, 0, sizeof sm);
            sm.label = -1;
            sm.open = true;
            snprintf(sm.key, sizeof sm.key, "%.*s", key_len, name);
        }
        if (!strcasecmp(ext, "cls")) {
            if ((s = read_label(a, shard, name, num_classes, &sm.label))) goto done;
        } else if (!strcasecmp(ext, "jpg") || !strcasecmp(ext, "jpeg") ||
                   !strcasecmp(ext, "png")) {
            if (sm.image[0]) {
                s = rn_fail(RN_ERR_BAD_FILE, "%s: sample '%s' has two images, %s and %s",
                            shard, sm.key, sm.image, name);
                goto done;
            }
            snprintf(sm.image, sizeof sm.image, "%s", name);
            /* The tar reader has consumed this member's header(s): its data starts here. */
            sm.offset = archive_filter_bytes(a, 0);
            sm.size = archive_entry_size(e);
        }
    }
    if ((s = finish(src, file, &sm, shard, st.st_size))) goto done;
    if (src->n == before)
        s = rn_fail(RN_ERR_BAD_FILE, "%s: empty shard (no samples; expected " SHARD_LAYOUT ")",
                    shard);
done:
    archive_read_free(a);
    return s;
}

rn_status rn_source_open_shards(rn_source *src, const char *pattern, int num_classes) {
    memset(src, 0, sizeof *src);
    rn_str_list patterns = {0}, files = {0};
    rn_status s = expand_braces(&patterns, pattern);
    for (int p = 0; p < patterns.n && !s; p++) {
        glob_t g;
        int r = glob(patterns.v[p], 0, NULL, &g);
        if (r == GLOB_NOMATCH)
            s = rn_fail(RN_ERR_IO, "%s: no such shard (from shards:%s)", patterns.v[p], pattern);
        else if (r != 0)
            s = rn_fail(RN_ERR_IO, "shards:%s: cannot list the files", pattern);
        for (size_t i = 0; !s && i < g.gl_pathc; i++) s = push(&files, g.gl_pathv[i]);
        if (r == 0) globfree(&g);
    }
    rn_str_list_free(&patterns);
    if (s) {
        rn_str_list_free(&files);
        return s;
    }
    src->files = files.v;
    src->n_files = files.n;
    for (int k = 0; k < files.n && !s; k++) s = index_shard(src, k, files.v[k], num_classes);
    int classes = num_classes;
    for (int i = 0; i < src->n && num_classes <= 0; i++) classes = RN_MAX(classes, src->label[i] + 1);
    if (!s) {
        rn_dataset names = {.num_classes = classes};
        s = rn_data_default_names(&names);
        src->num_classes = classes;
        src->class_names = names.class_names;
    }
    if (s) rn_source_free(src);
    return s;
}
