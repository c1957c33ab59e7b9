/*
 * rng.c - deterministic random numbers: xoshiro256** seeded by splitmix64.
 *
 * Every random draw in libscalar comes from a (seed, stream) pair, so results
 * depend on the context seed and never on thread count or timing.
 */
#include <math.h>

#include "../internal.h"

__extension__ typedef unsigned __int128 u128;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void scalar__rng_init(scalar__rng *rng, uint64_t seed, uint64_t stream)
{
    /* Mix the stream through splitmix first so nearby streams share no state. */
    uint64_t x = stream;
    uint64_t sm = seed ^ splitmix64(&x);
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&sm);
    rng->has_spare = 0;
    rng->spare = 0.0f;
}

uint64_t scalar__rng_u64(scalar__rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t scalar__rng_below(scalar__rng *rng, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased for every n. */
    SCALAR_ASSERT(n > 0);
    uint64_t x = scalar__rng_u64(rng);
    u128 m = (u128)x * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            x = scalar__rng_u64(rng);
            m = (u128)x * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

float scalar__rng_uniform(scalar__rng *rng)
{
    return (float)(scalar__rng_u64(rng) >> 40) * 0x1.0p-24f;
}

float scalar__rng_normal(scalar__rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    /* Box-Muller in double; u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(scalar__rng_u64(rng) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (double)(scalar__rng_u64(rng) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1));
    double theta = 6.283185307179586 * u2;
    rng->spare = (float)(r * sin(theta));
    rng->has_spare = 1;
    return (float)(r * cos(theta));
}
