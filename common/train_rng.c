/*
 * train_rng.c - the training module's random numbers: xoshiro256** seeded
 * by splitmix64, with independent streams from one seed (weight init,
 * validation split, shuffles), unbiased integers, normal draws and the
 * Fisher-Yates shuffle.  Deterministic for a seed; no global state, not
 * for cryptography and not used outside training.
 */
#include <math.h>
#include <stdint.h>

#include "train_int.h"

static uint64_t aas_train_splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void aas_train_rng_seed(aas_train_rng_t *r, uint64_t seed, uint64_t stream) {
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = aas_train_splitmix64(&x);
}

static uint64_t aas_train_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t aas_train_rng_next(aas_train_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = aas_train_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = aas_train_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n), unbiased (rejection), n >= 1. */
static uint64_t aas_train_rng_below(aas_train_rng_t *r, uint64_t n) {
    uint64_t threshold = (0 - n) % n, x;
    while ((x = aas_train_rng_next(r)) < threshold) {
    }
    return x % n;
}

/* Uniform in (0, 1). */
static double aas_train_rng_open01(aas_train_rng_t *r) {
    return ((double)(aas_train_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller, one value per pair). */
double aas_train_rng_normal(aas_train_rng_t *r) {
    double u1 = aas_train_rng_open01(r), u2 = aas_train_rng_open01(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void aas_train_rng_shuffle(aas_train_rng_t *r, int64_t *v, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)aas_train_rng_below(r, (uint64_t)i + 1);
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}
