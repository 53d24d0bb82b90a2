/*
 * xoshiro.h — the generator behind rng.c (xoshiro256** seeded through splitmix64) as inline
 * functions on a bare state, so that GPU code (src/cuda/train.cu) draws exactly the numbers the
 * CPU draws.
 */
#ifndef RN_XOSHIRO_H
#define RN_XOSHIRO_H

#include <stdint.h>

#ifdef __CUDACC__
#define RN_HOST_DEVICE __host__ __device__
#else
#define RN_HOST_DEVICE
#endif

static inline RN_HOST_DEVICE uint64_t rn_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline RN_HOST_DEVICE void rn_xoshiro_seed(uint64_t s[4], uint64_t seed) {
    for (int i = 0; i < 4; i++) s[i] = rn_splitmix64(&seed);
}

static inline RN_HOST_DEVICE uint64_t rn_rotl64(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static inline RN_HOST_DEVICE uint64_t rn_xoshiro_next(uint64_t s[4]) {
    uint64_t result = rn_rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rn_rotl64(s[3], 45);
    return result;
}

/* Uniform integer in [0, n), n > 0, without modulo bias. */
static inline RN_HOST_DEVICE uint64_t rn_xoshiro_below(uint64_t s[4], uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = rn_xoshiro_next(s);
    while (x >= limit);
    return x % n;
}

#endif
