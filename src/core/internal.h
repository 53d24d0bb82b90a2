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

/* Reads a whole file into a fresh buffer (rn_free it). RN_ERR_IO with a message on failure. */
rn_status rn_read_file(const char *path, void **buf, size_t *size);

/* Writes bytes to path atomically: path.tmp.PID, fsync, rename, fsync of the directory. */
rn_status rn_write_file_atomic(const char *path, const void *const *parts, const size_t *sizes,
                               int n_parts);

#define RN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RN_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
