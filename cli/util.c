/*
 * util.c — error printing and option-value parsing for the subcommands.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("resnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_lib_error(rn_status s) {
    const char *m = rn_error_message();
    return cli_error("%s", m && m[0] ? m : rn_status_name(s));
}

bool cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        cli_error("%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        cli_error("%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_floats(const char *opt, const char *s, float *out, int max, int *n) {
    *n = 0;
    const char *p = s ? s : "";
    while (*p) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || (*end && *end != ',') || *n >= max) {
            cli_error("%s: expected up to %d comma-separated numbers, got '%s'", opt, max, s);
            return false;
        }
        out[(*n)++] = (float)v;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) {
        cli_error("%s: expected up to %d comma-separated numbers, got '%s'", opt, max, s ? s : "");
        return false;
    }
    return true;
}

/* Parses "HxW" or "S" into height and width. */
bool cli_parse_size(const char *opt, const char *s, int *h, int *w) {
    int a, b;
    char tail;
    if (s && sscanf(s, "%dx%d%c", &a, &b, &tail) == 2 && a > 0 && b > 0 && a <= 4096 &&
        b <= 4096) {
        *h = a;
        *w = b;
        return true;
    }
    if (s && sscanf(s, "%d%c", &a, &tail) == 1 && a > 0 && a <= 4096) {
        *h = *w = a;
        return true;
    }
    cli_error("%s: expected a size like 32 or 32x32, got '%s'", opt, s ? s : "");
    return false;
}

/* Reads the model-geometry options shared by several commands; false on a bad value. */
bool cli_model_opt(int opt, const char *arg, rn_model_opts *o) {
    long v;
    switch (opt) {
    case 'C':
        if (!cli_parse_int("--in-channels", arg, 1, 4, &v)) return false;
        o->in_channels = (int)v;
        return true;
    case 'S': return cli_parse_size("--size", arg, &o->in_height, &o->in_width);
    case 'K':
        if (!cli_parse_int("--classes", arg, 1, 100000, &v)) return false;
        o->num_classes = (int)v;
        return true;
    }
    return true;
}
