/*
 * testbed_rng.c: the simulation's seeded random numbers.
 *
 * xoshiro256** (Blackman and Vigna, 2018), seeded through splitmix64 as its
 * authors recommend, written from the published description.  Chosen over
 * rand()/random() because the campaign promises byte-identical datasets for
 * the same seed on every platform: the generator must be ours, fixed and
 * free of global state.  Distributions are derived by inversion (exponential)
 * and Box-Muller (normal), both exact enough for a queueing model.
 */
#include <math.h>

#include "testbed/testbed_internal.h"

static uint64_t testbed_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t testbed_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void testbed_rng_seed(testbed_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = testbed_splitmix64(&x);
}

uint64_t testbed_rng_next(testbed_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = testbed_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = testbed_rotl(s[3], 45);
    return result;
}

double testbed_rng_uniform(testbed_rng *r)
{
    /* The top 53 bits fill a double's mantissa exactly. */
    return (double)(testbed_rng_next(r) >> 11) * 0x1.0p-53;
}

double testbed_rng_exponential(testbed_rng *r, double mean)
{
    /* 1 - u is in (0, 1], so the log is finite. */
    return -mean * log(1.0 - testbed_rng_uniform(r));
}

double testbed_rng_normal(testbed_rng *r)
{
    double u1 = 1.0 - testbed_rng_uniform(r);
    double u2 = testbed_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

double testbed_rng_lognormal(testbed_rng *r, double mean, double cv)
{
    /* Parameters of the underlying normal that give this mean and CV. */
    double sigma2 = log(1.0 + cv * cv);
    double mu = log(mean) - sigma2 / 2.0;
    return exp(mu + sqrt(sigma2) * testbed_rng_normal(r));
}
