/*
 * format.c — plurals, thousands separators and SI prefixes for the command's output, and the
 * progress line.
 */
#include "format.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

void cli_progress_init(cli_progress *p, const char *what, bool tty_only) {
    *p = (cli_progress){.what = what, .tty = isatty(STDERR_FILENO), .tty_only = tty_only,
                        .last = -1};
}

void cli_progress_show(int done, int total, void *user) {
    cli_progress *p = user;
    if (p->tty_only && !p->tty) return;
    int step = (int)((long long)done * (p->tty ? 100 : 10) / (total > 0 ? total : 1));
    if (step == p->last) return;
    p->last = step;
    char d[32], t[32];
    cli_thousands(d, sizeof d, done);
    cli_thousands(t, sizeof t, total);
    fprintf(stderr, "%s%s: %s of %s (%d%%)%s", p->tty ? "\r" : "", p->what, d, t,
            (int)((long long)done * 100 / (total > 0 ? total : 1)),
            p->tty && done < total ? "" : "\n");
    fflush(stderr);
}
