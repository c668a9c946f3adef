/* train: counter-based randomness. Every random number of a run is a pure
 * function of (seed, purpose, a, b): no generator state survives a step, so
 * a resumed run draws exactly what an uninterrupted one draws. */
#include <math.h>

#include "train_internal.h"

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t train_hash(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b) {
    uint64_t h = splitmix64(seed ^ 0x5BA7C0DE5BA7C0DEull);
    h = splitmix64(h ^ purpose);
    h = splitmix64(h ^ a);
    return splitmix64(h ^ b);
}

void train_rng_init(train_rng *r, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b) {
    r->state = train_hash(seed, purpose, a, b);
}

uint64_t train_rng_next(train_rng *r) {
    r->state += 0x9E3779B97F4A7C15ull;
    uint64_t x = r->state;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

double train_rng_uniform(train_rng *r) { return (double)(train_rng_next(r) >> 11) * 0x1.0p-53; }

int64_t train_rng_below(train_rng *r, int64_t n) {
    if (n <= 1) return 0;
    uint64_t un = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % un; /* reject the biased tail */
    uint64_t x;
    do x = train_rng_next(r);
    while (x >= limit);
    return (int64_t)(x % un);
}

double train_rng_normal(train_rng *r) {
    /* Box–Muller, one value per call (deterministic, no cached second value) */
    double u1 = train_rng_uniform(r), u2 = train_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double train_rng_gamma(train_rng *r, double shape) {
    if (shape < 1.0) { /* boost: Γ(a) = Γ(a + 1) · U^(1/a) */
        double u = train_rng_uniform(r);
        if (u < 1e-300) u = 1e-300;
        return train_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = train_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0) continue;
        v = v * v * v;
        double u = train_rng_uniform(r);
        if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
        if (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
    }
}

double train_rng_beta(train_rng *r, double a, double b) {
    double x = train_rng_gamma(r, a), y = train_rng_gamma(r, b);
    return x + y > 0 ? x / (x + y) : 0.5;
}

void train_permutation(uint64_t seed, int64_t epoch, int64_t *perm, int64_t n) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    train_rng r;
    train_rng_init(&r, seed, TRAIN_RNG_PERM, (uint64_t)epoch, 0);
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = train_rng_below(&r, i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
