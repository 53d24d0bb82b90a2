/*
 * format.c — plurals, thousands separators and SI prefixes for the command's output.
 */
#include "format.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *cli_plural(double n) { return n == 1 ? "" : "s"; }

char *cli_thousands(char *buf, size_t size, long long v) {
    char digits[32];
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    int n = snprintf(digits, sizeof digits, "%llu", u);
    char out[48];
    size_t k = 0;
    if (v < 0) out[k++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = 0;
    snprintf(buf, size, "%s", out);
    return buf;
}

char *cli_si(char *buf, size_t size, double v) {
    static const char *const prefix[] = {"", "k", "M", "G", "T", "P"};
    int p = 0;
    while (fabs(v) >= 999.5 && p < 5) {
        v /= 1000;
        p++;
    }
    snprintf(buf, size, "%.3g %s", v, prefix[p]);
    return buf;
}
