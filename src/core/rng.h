/*
 * rng.h — the library's random number generator: xoshiro256** seeded by splitmix64.
 * Its whole state is four words, so training checkpoints can save and restore it exactly.
 */
#ifndef RN_RNG_H
#define RN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} rn_rng;

void rn_rng_seed(rn_rng *r, uint64_t seed);
uint64_t rn_rng_next(rn_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rn_rng_uniform(rn_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t rn_rng_below(rn_rng *r, uint64_t n);
/* Standard normal (Box-Muller, one value per call). */
double rn_rng_normal(rn_rng *r);

#endif
