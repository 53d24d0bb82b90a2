/*
 * rng.c — xoshiro256** (Blackman & Vigna), seeded through splitmix64.
 */
#include "rng.h"
#include "xoshiro.h"

#include <math.h>

void rn_rng_seed(rn_rng *r, uint64_t seed) { rn_xoshiro_seed(r->s, seed); }

uint64_t rn_rng_next(rn_rng *r) { return rn_xoshiro_next(r->s); }

double rn_rng_uniform(rn_rng *r) { return (double)(rn_rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t rn_rng_below(rn_rng *r, uint64_t n) { return rn_xoshiro_below(r->s, n); }

double rn_rng_normal(rn_rng *r) {
    double u1 = rn_rng_uniform(r), u2 = rn_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
