/*
 * draws.c — the shuffles of draws.h: an epoch's data order and the validation split's.
 */
#include "draws.h"

void rn_draw_epoch_order(int *perm, int n, uint64_t seed, int epoch, bool shuffle) {
    for (int i = 0; i < n; i++) perm[i] = i;
    if (!shuffle) return;
    uint64_t r[4];
    rn_xoshiro_seed(r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_xoshiro_below(r, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void rn_draw_split_order(int *perm, int n, uint64_t seed) {
    uint64_t state = seed;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rn_splitmix_below(&state, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
