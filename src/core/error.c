/*
 * error.c — the per-thread error message behind rn_error_message(), and status names.
 */
#include "internal.h"

#include <stdarg.h>

static _Thread_local char rn_error_buf[1024];

rn_status rn_fail(rn_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rn_error_buf, sizeof rn_error_buf, fmt, ap);
    va_end(ap);
    return status;
}

const char *rn_error_message(void) { return rn_error_buf; }

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
