/*
 * memory.c — aligned allocation and whole-file I/O (reading, atomic writing).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void *rn_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

void *rn_calloc(size_t bytes) {
    void *p = rn_alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void rn_free(void *p) { free(p); }

rn_status rn_read_file(const char *path, void **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* fopen succeeds on a directory, and ftell then gives a bogus size (LONG_MAX on ext4). */
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return rn_fail(RN_ERR_IO, "%s: is a directory, expected a file", path);
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return rn_fail(RN_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    long len = ftell(f);
    if (len < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return rn_fail(RN_ERR_IO, "%s: cannot determine the file size", path);
    }
    void *p = rn_alloc((size_t)len + 1);
    if (!p) {
        fclose(f);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %ld bytes to read it", path, len);
    }
    if (len > 0 && fread(p, 1, (size_t)len, f) != (size_t)len) {
        fclose(f);
        rn_free(p);
        return rn_fail(RN_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    ((char *)p)[len] = 0;
    *buf = p;
    *size = (size_t)len;
    return RN_OK;
}

rn_status rn_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                               int n_parts) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return rn_fail(RN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    for (int i = 0; i < n_parts; i++) {
        const char *p = parts[i];
        size_t left = sizes[i];
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                int e = errno;
                close(fd);
                unlink(tmp);
                return rn_fail(RN_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return rn_fail(RN_ERR_IO, "%s: fsync/close failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rn_fail(RN_ERR_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    /* Make the rename itself durable. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else snprintf(dir, sizeof dir, ".");
    int dfd = open(dir[0] ? dir : "/", O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return RN_OK;
}
