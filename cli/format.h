/*
 * format.h — small helpers for numbers in the command's output: plurals ("1 image", "2 images")
 * and thousands separators ("40,551,040").
 */
#ifndef RN_CLI_FORMAT_H
#define RN_CLI_FORMAT_H

#include <stddef.h>

/* "" when n is 1, else "s": printf("%d image%s", n, cli_plural(n)). */
const char *cli_plural(double n);

/* v with a comma between groups of three digits ("-1,234,567") into buf; returns buf. */
char *cli_thousands(char *buf, size_t size, long long v);

/* v with an SI prefix and three significant digits ("40.6 M", "1.81 G", "640 "). */
char *cli_si(char *buf, size_t size, double v);

#endif
