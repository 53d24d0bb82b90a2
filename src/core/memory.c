/*
 * memory.c — aligned allocation and file I/O: opening for reading or appending (regular files
 * only), whole-file reading, atomic writing.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
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

void *rn_alloc_pages(size_t bytes) {
    void *p = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void rn_free_pages(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

/* What a non-regular file is, for messages. */
static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "is a directory";
    if (S_ISFIFO(mode)) return "is a FIFO (named pipe)";
    if (S_ISCHR(mode)) return "is a character device";
    if (S_ISBLK(mode)) return "is a block device";
    if (S_ISSOCK(mode)) return "is a socket";
    return "is not a regular file";
}

/* Opens path with flags (O_RDONLY, or O_WRONLY | O_CREAT ...), refusing anything but a regular
 * file before and after it is opened; see rn_open_regular. */
static rn_status open_regular(const char *path, const char *what, int flags, int *fd) {
    *fd = -1;
    struct stat sb;
    bool exists = stat(path, &sb) == 0;
    if (!exists && (errno != ENOENT || !(flags & O_CREAT)))
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", RN_SHOW(path), strerror(errno));
    if (exists && !S_ISREG(sb.st_mode))
        return rn_fail(RN_ERR_IO, "%s: %s, expected %s", RN_SHOW(path),
                       file_kind(sb.st_mode), what ? what : "a file");
    /* O_NONBLOCK: should the path have become a FIFO since the stat, open returns at once and
     * the fstat below refuses it. */
    int f = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (f < 0) return rn_fail(RN_ERR_IO, "%s: cannot open: %s", RN_SHOW(path), strerror(errno));
    if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(f);
        return rn_fail(RN_ERR_IO, "%s: %s, expected %s", RN_SHOW(path),
                       file_kind(sb.st_mode), what ? what : "a file");
    }
    int fl = fcntl(f, F_GETFL);
    if (fl < 0 || fcntl(f, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(f);
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", RN_SHOW(path), strerror(e));
    }
    *fd = f;
    return RN_OK;
}

rn_status rn_open_regular(const char *path, const char *what, int *fd) {
    return open_regular(path, what, O_RDONLY, fd);
}

rn_status rn_check_regular(const char *path, const char *what) {
    struct stat sb;
    if (stat(path, &sb) != 0 || S_ISREG(sb.st_mode)) return RN_OK; /* absent, or fine */
    return rn_fail(RN_ERR_IO, "%s: %s, expected %s", RN_SHOW(path), file_kind(sb.st_mode),
                   what ? what : "a file");
}

rn_status rn_fopen_regular_write(const char *path, const char *what, bool append, FILE **out) {
    *out = NULL;
    int fd;
    rn_status s = open_regular(path, what, O_WRONLY | O_CREAT | (append ? O_APPEND : 0), &fd);
    if (s) return s;
    FILE *f = NULL;
    if (append || ftruncate(fd, 0) == 0) f = fdopen(fd, append ? "a" : "w");
    if (!f) {
        int e = errno;
        close(fd);
        return rn_fail(RN_ERR_IO, "%s: cannot open for writing: %s", RN_SHOW(path), strerror(e));
    }
    *out = f;
    return RN_OK;
}

rn_status rn_fopen_regular(const char *path, const char *what, FILE **out) {
    *out = NULL;
    int fd;
    rn_status s = rn_open_regular(path, what, &fd);
    if (s) return s;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return rn_fail(RN_ERR_IO, "%s: cannot open: %s", RN_SHOW(path), strerror(e));
    }
    *out = f;
    return RN_OK;
}

rn_status rn_read_file(const char *path, void **buf, size_t *size) {
    return rn_read_file_of(path, NULL, buf, size);
}

rn_status rn_read_file_of(const char *path, const char *what, void **buf, size_t *size) {
    *buf = NULL;
    *size = 0;
    int fd;
    rn_status s = rn_open_regular(path, what, &fd);
    if (s) return s;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < 0 || (uint64_t)sb.st_size >= SIZE_MAX / 2) {
        close(fd);
        return rn_fail(RN_ERR_IO, "%s: cannot determine the file size", RN_SHOW(path));
    }
    size_t len = (size_t)sb.st_size;
    char *p = rn_alloc(len + 1);
    if (!p) {
        close(fd);
        return rn_fail(RN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it",
                       RN_SHOW(path), len + 1);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            rn_free(p);
            return rn_fail(RN_ERR_IO, "%s: read failed: %s", RN_SHOW(path),
                           e ? strerror(e) : "the file got shorter while being read");
        }
        got += (size_t)r;
    }
    close(fd);
    p[len] = 0;
    *buf = p;
    *size = len;
    return RN_OK;
}

rn_status rn_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                               int n_parts) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return rn_fail(RN_ERR_BAD_ARG, "%s: path too long", RN_SHOW(path));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return rn_fail(RN_ERR_IO, "%s: cannot create: %s", RN_SHOW(tmp), strerror(errno));
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
                return rn_fail(RN_ERR_IO, "%s: write failed: %s", RN_SHOW(tmp), strerror(e));
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return rn_fail(RN_ERR_IO, "%s: fsync/close failed: %s", RN_SHOW(tmp), strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return rn_fail(RN_ERR_IO, "%s: cannot rename into place: %s", RN_SHOW(path), strerror(e));
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
