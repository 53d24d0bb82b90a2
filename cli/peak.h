/*
 * peak.h — the FMA peak that `resnet bench` compares its GFLOP/s with, measured once per
 * machine and kept in a small cache file, so that "% of peak" does not swing with the load of
 * the moment the bench started.
 */
#ifndef RN_CLI_PEAK_H
#define RN_CLI_PEAK_H

#include <stdbool.h>

typedef struct {
    double gflops;     /* the best of several measurements */
    char what[64];     /* "avx2 FMA, 2 threads" */
    char measured[32]; /* when: "2026-12-07 01:50 UTC" */
    bool cached;       /* read from the cache file rather than measured now */
} cli_peak;

/* The FMA peak on nthreads threads (>= 1): from the cache file when it holds an entry for this
 * machine (CPU model name, the vector unit rn_fma_peak_isa, nthreads and the library version),
 * else measured (best of several short runs) and written there. remeasure measures and writes
 * even when an entry exists. The file is $XDG_CACHE_HOME/resnet/peak, else
 * $HOME/.cache/resnet/peak; a cache that cannot be written is no error (one note on stderr, the
 * peak is then measured on every run), and one that does not parse is replaced (one note). */
void cli_peak_get(int nthreads, bool remeasure, cli_peak *out);

#endif
