/*
 * shards_write.c — packing a streamed source into WebDataset tar shards with libarchive: each
 * image's file bytes go in unchanged (no re-encoding), beside a KEY.cls member holding its
 * label, in the source's order, so the shards read back as the same set (shards.c).
 */
#include "data/data.h"
#include "data/source.h"
#include "data/stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The lower-case extension of name (after its last dot), "jpg" for .jpeg (WebDataset's usual
 * key) or when there is none. */
static void extension(char *ext, size_t size, const char *name) {
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    snprintf(ext, size, "%s", dot && (!slash || dot > slash) ? dot + 1 : "jpg");
    for (char *p = ext; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (!strcmp(ext, "jpeg")) snprintf(ext, size, "jpg");
}

/* KEY of image i: its index, then its base name without the extension, dots made '_' (a key
 * ends at the first dot of a member name). */
static void sample_key(char *key, size_t size, int i, const char *name) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    int len = dot ? (int)(dot - base) : (int)strlen(base);
    snprintf(key, size, "%08d_%.*s", i, RN_MIN(len, 200), base);
    for (char *p = key; *p; p++)
        if (*p == '.' || *p == '/') *p = '_';
}

static rn_status add_member(struct archive *a, struct archive_entry *e, const char *path,
                            const char *name, const void *data, size_t size) {
    archive_entry_clear(e);
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        archive_write_data(a, data, size) != (la_ssize_t)size)
        return rn_fail(RN_ERR_IO, "%s: cannot write %s (%s)", path, name, archive_error_string(a));
    return RN_OK;
}

/* Writes images [first, first + n) of src to path (through path.tmp, renamed when complete). */
static rn_status write_shard(const rn_source *src, int first, int n, const char *path,
                             uint8_t **buf, size_t *cap) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    struct archive *a = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    if (!a || !e) {
        archive_write_free(a);
        archive_entry_free(e);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot start a tar writer", path);
    }
    rn_status s = RN_OK;
    archive_write_set_format_pax_restricted(a); /* ustar, pax headers only for long names */
    if (archive_write_open_filename(a, tmp) != ARCHIVE_OK)
        s = rn_fail(RN_ERR_IO, "%s: cannot create (%s)", tmp, archive_error_string(a));
    for (int i = first; i < first + n && !s; i++) {
        size_t size;
        if ((s = rn_source_read(src, i, buf, cap, &size))) break;
        const char *name = src->names + src->name_at[i];
        char key[256], ext[32], member[300], label[16];
        sample_key(key, sizeof key, i, name);
        extension(ext, sizeof ext, name);
        snprintf(member, sizeof member, "%s.%s", key, ext);
        if ((s = add_member(a, e, tmp, member, *buf, size))) break;
        snprintf(member, sizeof member, "%s.cls", key);
        int len = snprintf(label, sizeof label, "%d", src->label[i]);
        s = add_member(a, e, tmp, member, label, (size_t)len);
    }
    if (archive_write_close(a) != ARCHIVE_OK && !s)
        s = rn_fail(RN_ERR_IO, "%s: cannot finish (%s)", tmp, archive_error_string(a));
    archive_write_free(a);
    archive_entry_free(e);
    if (!s && rename(tmp, path) != 0)
        s = rn_fail(RN_ERR_IO, "%s: cannot rename to %s", tmp, path);
    if (s) unlink(tmp);
    return s;
}

rn_status rn_source_pack_shards(const rn_source *src, const char *dir, const char *prefix,
                                int per_shard, int *n_shards) {
    *n_shards = 0;
    if (per_shard < 1)
        return rn_fail(RN_ERR_BAD_ARG, "shard size %d (expected >= 1)", per_shard);
    if (mkdir(dir, 0755) != 0) {
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return rn_fail(RN_ERR_IO, "%s: cannot create the folder", dir);
    }
    uint8_t *buf = NULL;
    size_t cap = 0;
    rn_status s = RN_OK;
    for (int first = 0, k = 0; first < src->n && !s; first += per_shard, k++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s-%06d.tar", dir, prefix, k) >= (int)sizeof path)
            s = rn_fail(RN_ERR_BAD_ARG, "%s: path too long", dir);
        else
            s = write_shard(src, first, RN_MIN(per_shard, src->n - first), path, &buf, &cap);
        if (!s) *n_shards = k + 1;
    }
    free(buf);
    return s;
}

rn_status rn_stream_pack_shards(const char *spec, const char *split, const char *dir,
                                int per_shard, int *n_shards, int *n_images) {
    *n_shards = *n_images = 0;
    if (strncmp(spec, "folder:", 7))
        return rn_fail(RN_ERR_BAD_ARG, "'%s': shards are packed from a folder:ROOT set", spec);
    rn_source src;
    rn_status s = rn_source_open_folder(&src, spec + 7, split);
    if (s) return s;
    s = rn_source_pack_shards(&src, dir, split, per_shard, n_shards);
    *n_images = src.n;
    rn_source_free(&src);
    return s;
}
