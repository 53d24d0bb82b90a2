/*
 * internal.h — helpers shared by the library's sources, not part of the public API:
 * error reporting, checked allocation and small utilities.
 */
#ifndef RN_INTERNAL_H
#define RN_INTERNAL_H

#include "resnet.h"

#include <stdio.h>
#include <stdlib.h>

/* Records a one-line message for rn_error_message() and returns `status`, so that failing
 * paths read `return rn_fail(RN_ERR_BAD_FILE, "%s: header length %llu exceeds ...", ...)`. */
rn_status rn_fail(rn_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocations aligned to 64 bytes (one cache line, one AVX-512 register). NULL on failure. */
void *rn_alloc(size_t bytes);
void *rn_calloc(size_t bytes);
void rn_free(void *p);
/* Zeroed memory whose pages take no RAM until first written (anonymous pages from the
 * kernel, page-aligned): for buffers that a run may never touch, such as the gradients of a
 * model that only infers. Free with rn_free_pages and the same byte count. */
void *rn_alloc_pages(size_t bytes);
void rn_free_pages(void *p, size_t bytes);

/* The size of the buffer rn_show fills. */
#define RN_SHOW_SIZE 72

/* s made safe to echo in a one-line message: control characters become '?', and text longer
 * than 64 bytes keeps its first and last 30 bytes around "..." (never cutting a UTF-8
 * character). Returns buf. For file names, names read from files, and user settings. */
const char *rn_show(const char *s, char buf[RN_SHOW_SIZE]);

/* rn_show into a buffer that lives until the end of the enclosing block, for message
 * arguments: rn_fail(RN_ERR_IO, "%s: cannot open", RN_SHOW(path)). */
#define RN_SHOW(s) rn_show((s), (char[RN_SHOW_SIZE]){0})

/* Opens path for reading, refusing anything but a regular file (a FIFO, device, socket or
 * directory) before it is opened: opening a FIFO would block until a writer appears, reading
 * a device may never end. what says what the file should be, for the message ("a PNG or JPEG
 * image"; NULL: "a file"). *fd is a blocking descriptor; close it. RN_ERR_IO with a message
 * naming the file on failure. */
rn_status rn_open_regular(const char *path, const char *what, int *fd);

/* rn_open_regular as a stdio stream ("rb"); fclose it. */
rn_status rn_fopen_regular(const char *path, const char *what, FILE **f);

/* Opens path for writing as a stdio stream, created when absent, appended to (append) or
 * emptied, refusing anything but a regular file as rn_open_regular does (opening a FIFO for
 * writing would block until a reader appears). fclose it. */
rn_status rn_fopen_regular_write(const char *path, const char *what, bool append, FILE **f);

/* RN_OK when path does not exist or is a regular file; else RN_ERR_IO naming what it is (for
 * files about to be replaced by rn_write_file_atomic, which would replace a FIFO unread). */
rn_status rn_check_regular(const char *path, const char *what);

/* Reads a whole regular file (see rn_open_regular) into a fresh buffer with a NUL after its
 * last byte (rn_free it). RN_ERR_IO with a message on failure. */
rn_status rn_read_file(const char *path, void **buf, size_t *size);

/* rn_read_file, saying what the file should be when it is not a regular file. */
rn_status rn_read_file_of(const char *path, const char *what, void **buf, size_t *size);

/* Writes bytes to path atomically: path.tmp.PID, fsync, rename, fsync of the directory. */
rn_status rn_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                               int n_parts);

/* The most pixels an image may have: Pillow's limit (twice its MAX_IMAGE_PIXELS, where it
 * raises DecompressionBombError), so that a small file cannot claim gigabytes of pixels. */
#define RN_IMAGE_MAX_PIXELS 178956970ull

#define RN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
