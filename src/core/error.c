/*
 * error.c — the per-thread error message behind rn_error_message(), and status names.
 */
#include "internal.h"

#include <stdarg.h>
#include <string.h>

static _Thread_local char rn_error_buf[1024];

rn_status rn_fail(rn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rn_error_buf, sizeof rn_error_buf, fmt, ap);
    va_end(ap);
    return status;
}

const char *rn_error_message(void) { return rn_error_buf; }

/* Copies s[from, to) into out, control characters as '?'; returns the bytes written. */
static size_t show_copy(char *out, const char *s, size_t from, size_t to) {
    for (size_t i = from; i < to; i++)
        out[i - from] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    return to - from;
}

const char *rn_show(const char *s, char buf[RN_SHOW_SIZE]) {
    enum { WHOLE = 64, KEEP = 30 };
    if (!s) s = "(null)";
    size_t n = strnlen(s, WHOLE + 1), k;
    if (n <= WHOLE) {
        k = show_copy(buf, s, 0, n);
    } else {
        n = strlen(s);
        size_t head = KEEP, tail = n - KEEP;
        while (head > 0 && ((unsigned char)s[head] & 0xC0) == 0x80) head--; /* inside a char */
        while (tail < n && ((unsigned char)s[tail] & 0xC0) == 0x80) tail++;
        k = show_copy(buf, s, 0, head);
        memcpy(buf + k, "...", 3);
        k += 3;
        k += show_copy(buf + k, s, tail, n);
    }
    buf[k] = 0;
    return buf;
}

const char *rn_status_name(rn_status s) {
    switch (s) {
    case RN_OK: return "ok";
    case RN_ERR_NOMEM: return "out of memory";
    case RN_ERR_IO: return "i/o error";
    case RN_ERR_BAD_FILE: return "bad file";
    case RN_ERR_BAD_ARG: return "bad argument";
    case RN_ERR_SHAPE: return "shape mismatch";
    case RN_ERR_MISSING_KEY: return "missing tensor";
    case RN_ERR_UNKNOWN_MODEL: return "unknown model";
    case RN_ERR_NUMERIC: return "non-finite value";
    case RN_ERR_INTERRUPTED: return "interrupted";
    case RN_ERR_DEVICE: return "device error";
    }
    return "unknown status";
}
