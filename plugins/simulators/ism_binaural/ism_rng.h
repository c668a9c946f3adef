/* ism_binaural — the seeded random numbers of the diffuse tail.
 *
 * xoshiro256** (Blackman & Vigna) seeded through splitmix64: the same seed
 * gives the same stream on every machine. Header-only, no global state. */
#ifndef ISM_RNG_H
#define ISM_RNG_H

#include <stdint.h>

typedef struct ism_rng {
    uint64_t s[4];
} ism_rng;

static inline uint64_t ism_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void ism_rng_seed(ism_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = ism_splitmix64(&x);
}

static inline uint64_t ism_rng_next(ism_rng *r) {
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t out = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return out;
}

/* Uniform in (0, 1]: never 0, so that -log(u) is finite. */
static inline double ism_rng_open01(ism_rng *r) {
    return ((double)(ism_rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

#endif /* ISM_RNG_H */
