/*
 * util.c — error printing and option-value parsing for the subcommands.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One error line on stderr: "resnet: <message>". */
static void print_error(const char *fmt, va_list ap) {
    fputs("resnet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_option_error(const char *cmd, int c, char **argv) {
    /* argv[optind - 1] is the option getopt stopped at: "--name[=value]" or a short "-x". */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    char shortopt[3] = {'-', (char)optopt, 0};
    const char *opt = strncmp(arg, "--", 2) == 0 || !optopt ? arg : shortopt;
    if (c == ':')
        return cli_usage_error("%s: option '%s' needs a value (see `resnet %s --help`)", cmd,
                               opt, cmd);
    return cli_usage_error("%s: unknown option '%s' (see `resnet %s --help`)", cmd, opt, cmd);
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shorts,
               const struct option *opts, int *longindex) {
    char spec[32];
    bool stop_at_operand = shorts[0] == '+';
    snprintf(spec, sizeof spec, "%s:%s", stop_at_operand ? "+" : "", shorts + stop_at_operand);
    opterr = 0;
    int li = -1;
    int c = getopt_long(argc, argv, spec, opts, &li);
    if (longindex) *longindex = li;
    if (c == '?' || c == ':') {
        cli_option_error(cmd, c, argv);
        return '?';
    }
    if (c == -1 || li < 0) return c;
    /* A long option must be written in full: getopt_long also takes unique abbreviations,
     * which would keep working only until a second option shares the prefix. */
    const struct option *o = &opts[li];
    bool separate = o->has_arg == required_argument && optarg == argv[optind - 1];
    const char *arg = argv[optind - 1 - separate] + 2; /* after "--" */
    size_t len = strlen(o->name);
    if (strncmp(arg, o->name, len) != 0 || (arg[len] != '\0' && arg[len] != '=')) {
        size_t shown = strcspn(arg, "=");
        cli_error("%s: option '--%.*s' is short for '--%s': write it in full", cmd,
                  (int)(shown < 40 ? shown : 40), arg, o->name);
        return '?';
    }
    return c;
}

int cli_lib_error(rn_status s) {
    const char *m = rn_error_message();
    cli_error("%s", m && m[0] ? m : rn_status_name(s));
    return s == RN_ERR_UNKNOWN_MODEL ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
}

bool cli_model_known(const char *name) {
    for (const char *const *n = rn_model_names(); *n; n++)
        if (!strcmp(*n, name)) return true;
    return false;
}

bool cli_check_model(const char *name) {
    if (cli_model_known(name)) return true;
    fprintf(stderr, "resnet: unknown model '%.60s' (expected one of:", name);
    for (const char *const *n = rn_model_names(); *n; n++) fprintf(stderr, " %s", *n);
    fputs(")\n", stderr);
    return false;
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
    bool ok = *p != 0;
    while (ok && *p) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        /* a number that fits a float, then a comma and more, or the end */
        ok = end != p && !errno && fabs(v) <= FLT_MAX && *n < max &&
             (*end == 0 || (*end == ',' && end[1] != 0));
        if (ok) {
            out[(*n)++] = (float)v;
            p = *end ? end + 1 : end;
        }
    }
    if (!ok) {
        cli_error("%s: expected up to %d comma-separated numbers, got '%s'", opt, max, s ? s : "");
        return false;
    }
    return true;
}

/* A whole number in [lo, hi] at the start of s, strtol-checked; *end after it. */
static bool parse_bounded(const char *s, long lo, long hi, long *v, char **end) {
    if (!isdigit((unsigned char)*s)) return false;
    errno = 0;
    *v = strtol(s, end, 10);
    return !errno && *v >= lo && *v <= hi;
}

bool cli_parse_size_in(const char *opt, const char *s, long lo, long hi, int *h, int *w) {
    long a, b = 0;
    char *end = NULL;
    bool ok = s && parse_bounded(s, lo, hi, &a, &end);
    if (ok && *end == 'x') ok = parse_bounded(end + 1, lo, hi, &b, &end);
    else b = a;
    if (ok && !*end) {
        *h = (int)a;
        *w = (int)b;
        return true;
    }
    cli_error("%s: expected a size like 32 or 32x32, each side from %ld to %ld, got '%s'", opt, lo,
              hi, s ? s : "");
    return false;
}

/* Parses "HxW" or "S" into height and width. */
bool cli_parse_size(const char *opt, const char *s, int *h, int *w) {
    return cli_parse_size_in(opt, s, 1, 4096, h, w);
}

bool cli_parse_u64(const char *opt, const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = s && isdigit((unsigned char)*s) ? strtoull(s, &end, 10) : 0;
    if (!end || *end || errno) {
        cli_error("%s: expected an integer from 0 to %llu, got '%s'", opt,
                  (unsigned long long)UINT64_MAX, s ? s : "");
        return false;
    }
    *out = v;
    return true;
}

/* "--label-smoothing" -> "label_smoothing": the setting's config.json name. */
static const char *setting_key(const char *opt, char key[64]) {
    snprintf(key, 64, "%s", opt + strspn(opt, "-"));
    for (char *p = key; *p; p++)
        if (*p == '-') *p = '_';
    return key;
}

bool cli_parse_setting(const char *opt, const char *s, double *out) {
    char key[64];
    double lo, hi;
    bool integer;
    if (rn_train_setting_range(setting_key(opt, key), &lo, &hi, &integer) != RN_OK) {
        cli_error("%s: %s", opt, rn_error_message());
        return false;
    }
    if (!integer) return cli_parse_float(opt, s, lo, hi, out);
    long v;
    if (!cli_parse_int(opt, s, (long)lo, (long)hi, &v)) return false;
    *out = (double)v;
    return true;
}

/* "N", "NK", "NM" or "NG" (binary multiples) bytes, N a positive integer. */
static bool parse_bytes(const char *opt, const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    int shift = 0;
    switch (*end) {
    case 'K': case 'k': shift = 10; end++; break;
    case 'M': case 'm': shift = 20; end++; break;
    case 'G': case 'g': shift = 30; end++; break;
    }
    if (end == s || *end || errno || v <= 0 || v > (1LL << 50) >> shift) {
        cli_error("%s: expected a size in bytes like 2147483648, 512M or 2G, got '%s'", opt, s);
        return false;
    }
    *out = (int64_t)v << shift;
    return true;
}

bool cli_stream_opt(const char *name, const char *arg, rn_train_config *c) {
    long v;
    if (!strcmp(name, "size")) {
        if (!cli_parse_int("--size", arg, 8, 4096, &v)) return false;
        c->size = (int)v;
    } else if (!strcmp(name, "preset")) {
        if (strcmp(arg, "imagenet") != 0) {
            cli_error("--preset: expected imagenet, got '%s'", arg);
            return false;
        }
        snprintf(c->preset, sizeof c->preset, "%s", arg);
    } else if (!strcmp(name, "skip-bad")) {
        c->skip_bad = true;
    } else if (!strcmp(name, "data-threads")) {
        if (!cli_parse_int("--data-threads", arg, 1, 256, &v)) return false;
        c->data_threads = (int)v;
    } else if (!strcmp(name, "data-memory")) {
        return parse_bytes("--data-memory", arg, &c->data_memory);
    }
    return true;
}

/* Reads the model-geometry options shared by several commands; false on a bad value. */
bool cli_model_opt(int opt, const char *arg, rn_model_opts *o) {
    long v;
    switch (opt) {
    case CLI_OPT_IN_CHANNELS:
        if (!cli_parse_int("--in-channels", arg, 1, 4, &v)) return false;
        o->in_channels = (int)v;
        return true;
    case CLI_OPT_SIZE: return cli_parse_size("--size", arg, &o->in_height, &o->in_width);
    case CLI_OPT_CLASSES:
        if (!cli_parse_int("--classes", arg, 1, 100000, &v)) return false;
        o->num_classes = (int)v;
        return true;
    }
    return true;
}

bool cli_check_device(const char *s) {
    int cuda;
    if (rn_device_parse(s, &cuda) == RN_OK) return true;
    cli_error("--device: expected cpu, cuda or cuda:N, got '%s'", s);
    return false;
}

bool cli_check_precision(const char *s) {
    rn_precision p;
    if (rn_precision_parse(s, &p) == RN_OK) return true;
    cli_error("--precision: expected fp32, tf32 or bf16, got '%s'", s);
    return false;
}
