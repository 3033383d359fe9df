/* xorshift.h - the pseudo-random numbers of the unit tests and bench_core:
 * Marsaglia's xorshift64 (shifts 13, 7, 17). Each test keeps its own state
 * with a fixed non-zero seed, so that a failure repeats exactly. Not for
 * anything that needs good randomness: only to spread inputs. */
#ifndef RELAY_TEST_XORSHIFT_H
#define RELAY_TEST_XORSHIFT_H

#include <stdint.h>

/* Advances *state (never 0) and returns the new value. */
static inline uint64_t xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

#endif
