/*
 * fuzz_util.h — what the libFuzzer harnesses share: a scratch folder of their own (under
 * $TMPDIR, else /tmp) and writing the fuzzer's bytes into files there, since the loaders read
 * files. Each harness is one LLVMFuzzerTestOneInput; `make fuzz` builds them.
 */
#ifndef RN_FUZZ_UTIL_H
#define RN_FUZZ_UTIL_H

#include "resnet.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The harness's scratch folder, made on first use. */
static const char *fuzz_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/rn_fuzz_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(dir)) abort();
    }
    return dir;
}

/* fuzz_dir()/name, in a static buffer. */
static const char *fuzz_path(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    return path;
}

/* Writes n bytes to fuzz_dir()/name (replacing it), or removes it when n is SIZE_MAX. */
static void fuzz_write(const char *name, const uint8_t *data, size_t n) {
    const char *path = fuzz_path(name);
    unlink(path);
    if (n == SIZE_MAX) return;
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) abort();
}

/* Splits the input into parts: each part is a 2-byte little-endian length and that many bytes
 * (cut short at the end of the input); the last part takes the rest. Missing parts are empty
 * with length SIZE_MAX ("no such file"). */
static void fuzz_split(const uint8_t *data, size_t size, int n_parts, const uint8_t **part,
                       size_t *len) {
    for (int i = 0; i < n_parts; i++) {
        part[i] = data;
        len[i] = SIZE_MAX;
        if (i == n_parts - 1) {
            len[i] = size;
            break;
        }
        if (size < 2) continue;
        size_t n = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (n == 0xffff) continue; /* an absent file */
        if (n > size) n = size;
        part[i] = data;
        len[i] = n;
        data += n;
        size -= n;
    }
}

/* Checks the library's contract on a failure: a one-line message. */
static void fuzz_check_error(rn_status s) {
    if (s == RN_OK) return;
    const char *msg = rn_error_message();
    if (!msg[0] || strchr(msg, '\n') || strlen(msg) > 1000) abort();
}

#endif
