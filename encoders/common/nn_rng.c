/* bp_nn: the counter-based random generator (splitmix64 of seed, purpose, index). */
#include <math.h>

#include "bp_nn.h"

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

uint64_t bp_nn_rng_u64(uint64_t seed, uint64_t purpose, uint64_t index) {
    return splitmix64(splitmix64(splitmix64(seed) ^ purpose) ^ index);
}

double bp_nn_rng_uniform(uint64_t seed, uint64_t purpose, uint64_t index) {
    return (double)(bp_nn_rng_u64(seed, purpose, index) >> 11) * (1.0 / 9007199254740992.0);
}

double bp_nn_rng_normal(uint64_t seed, uint64_t purpose, uint64_t index) {
    /* Box–Muller; 1 − u keeps the log argument in (0, 1]. */
    double u1 = 1.0 - bp_nn_rng_uniform(seed, purpose, 2 * index);
    double u2 = bp_nn_rng_uniform(seed, purpose, 2 * index + 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t bp_nn_rng_purpose(const char *name) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001B3ULL;
    }
    return h;
}
