/*
 * peak.c — the cached FMA peak of `resnet bench` (peak.h).
 *
 * The cache file is text: a first line "resnet-peak 1", then one line per measured key,
 * "KEY<TAB>GFLOPS<TAB>DATE", KEY being "cpu=MODEL;isa=ISA;threads=N;version=V" (tabs and
 * newlines of the CPU model name turned into spaces). A new measurement replaces the line of
 * its key and keeps the others; the file is written to a temporary name and renamed.
 */
#include "peak.h"

#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PEAK_HEADER "resnet-peak 1"
#define PEAK_RUNS 3 /* measurements (each the best of rn_fma_peak_gflops' repetitions) */

/* The CPU's model name from /proc/cpuinfo ("unknown" where there is none). */
static void cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v += strspn(v + 1, " \t") + 1;
        snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
    for (char *p = buf; *p; p++)
        if (*p == '\t' || *p == ';') *p = ' ';
}

/* The cache file's directory and path; false when neither XDG_CACHE_HOME (absolute) nor HOME
 * is set. */
static bool cache_path(char *dir, size_t dsize, char *path, size_t psize) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/') n = snprintf(dir, dsize, "%s/resnet", xdg);
    else if (home && home[0]) n = snprintf(dir, dsize, "%s/.cache/resnet", home);
    else return false;
    if (n < 0 || (size_t)n >= dsize) return false;
    n = snprintf(path, psize, "%s/peak", dir);
    return n > 0 && (size_t)n < psize;
}

/* mkdir -p for the cache directory (its parents included); false with errno set. */
static bool make_dirs(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(tmp, 0755) == 0 || errno == EEXIST;
}

/* Reads the cache: *text receives the file's entry lines other than key's (malloc'd, "" when
 * none), *found the entry of key. Returns false when the file exists but does not parse (it is
 * then to be replaced). */
static bool cache_read(const char *path, const char *key, char **text, cli_peak *found,
                       bool *has) {
    *has = false;
    *text = calloc(1, 1);
    FILE *f = fopen(path, "r");
    if (!f) return true; /* no cache yet */
    char line[1024];
    size_t len = 0;
    bool ok = fgets(line, sizeof line, f) && !strcmp(line, PEAK_HEADER "\n");
    while (ok && *text && fgets(line, sizeof line, f)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *end;
        size_t n = strlen(line);
        double g = t2 ? strtod(t1 + 1, &end) : 0;
        ok = t2 && end == t2 && g > 0 && g < 1e9 && n > 1 && line[n - 1] == '\n' &&
             (size_t)(t2 - t1 - 1) < 32 && n - (size_t)(t2 - line) < 34;
        if (!ok) break;
        if ((size_t)(t1 - line) == strlen(key) && !strncmp(line, key, strlen(key))) {
            found->gflops = g;
            snprintf(found->measured, sizeof found->measured, "%.*s",
                     (int)(n - (size_t)(t2 - line) - 2), t2 + 1);
            *has = true;
            continue;
        }
        char *grown = realloc(*text, len + n + 1);
        if (!grown) break;
        memcpy(grown + len, line, n + 1);
        *text = grown;
        len += n;
    }
    fclose(f);
    return ok;
}

/* Writes the other entries and this one atomically; false (errno set) when it cannot. */
static bool cache_write(const char *dir, const char *path, const char *others, const char *key,
                        const cli_peak *p) {
    if (!make_dirs(dir)) return false;
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return false;
    int e = 0;
    fprintf(f, PEAK_HEADER "\n%s%s\t%.1f\t%s\n", others ? others : "", key, p->gflops,
            p->measured);
    if (ferror(f)) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        remove(tmp);
        errno = e;
        return false;
    }
    return true;
}

void cli_peak_get(int nthreads, bool remeasure, cli_peak *out) {
    const char *isa = rn_fma_peak_isa();
    char model[256], key[512], dir[4096], path[4200];
    cpu_model(model, sizeof model);
    snprintf(key, sizeof key, "cpu=%s;isa=%s;threads=%d;version=%s", model, isa, nthreads,
             rn_version());
    memset(out, 0, sizeof *out);
    snprintf(out->what, sizeof out->what, "%s FMA, %d thread%s", isa, nthreads,
             nthreads == 1 ? "" : "s");
    bool have_path = cache_path(dir, sizeof dir, path, sizeof path);
    char *others = NULL;
    bool has = false;
    if (have_path && !cache_read(path, key, &others, out, &has))
        fprintf(stderr, "resnet: note: %s is not a peak cache this version wrote; measuring the "
                        "peak again and replacing it\n", path);
    if (has && !remeasure) {
        out->cached = true;
        free(others);
        return;
    }
    for (int i = 0; i < PEAK_RUNS; i++) {
        const char *unused;
        double g = rn_fma_peak_gflops(nthreads, &unused);
        if (g > out->gflops) out->gflops = g;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out->measured, sizeof out->measured, "%Y-%m-%d %H:%M UTC", &tm);
    if (!have_path)
        fprintf(stderr, "resnet: note: neither XDG_CACHE_HOME nor HOME is set; the peak is "
                        "measured on every run\n");
    else if (!cache_write(dir, path, others, key, out))
        fprintf(stderr, "resnet: note: cannot write the peak cache %s (%s); the peak is "
                        "measured on every run\n", path, strerror(errno));
    free(others);
}
