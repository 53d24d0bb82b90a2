/*
 * format.h — small helpers for numbers in the command's output: plurals ("1 image", "2 images")
 * and thousands separators ("40,551,040"), and the progress line of long steps.
 */
#ifndef RN_CLI_FORMAT_H
#define RN_CLI_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

/* "" when n is 1, else "s": printf("%d image%s", n, cli_plural(n)). */
const char *cli_plural(double n);

/* v with a comma between groups of three digits ("-1,234,567") into buf; returns buf. */
char *cli_thousands(char *buf, size_t size, long long v);

/* v with an SI prefix and three significant digits ("40.6 M", "1.81 G", "640 "). */
char *cli_si(char *buf, size_t size, double v);

/* A progress line on stderr, "WHAT: 2,560 of 10,000 (25%)": on a terminal one line rewritten
 * in place at each percent; elsewhere a line per tenth, or nothing when tty_only. Set it up
 * with cli_progress_init and pass cli_progress_show (an rn_data_progress) with it as user. */
typedef struct {
    const char *what;
    bool tty, tty_only;
    int last; /* the last tenth (or, on a terminal, percent) printed; -1: none yet */
} cli_progress;
void cli_progress_init(cli_progress *p, const char *what, bool tty_only);
void cli_progress_show(int done, int total, void *user);

#endif
