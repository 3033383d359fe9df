/* percentile.h - SpectatorD's percentile buckets. Pure.
 *
 * A percentile timer (T) or distribution summary (D) counts each sample in
 * one of 276 buckets, and SpectatorD publishes one counter per non-empty
 * bucket, tagged percentile=T%04X (or D%04X) with the bucket's index. The
 * bounds are spectator-java's PercentileBuckets: 1, 2, 3, 4, then each power
 * of 4 cut into steps of a third of it, and INT64_MAX last.
 *
 * pct_bucket_index() is SpectatorD's PercentileBucketIndexOf(), quirks and
 * all (docs/protocol.md 6.2, tests/data/percentile-buckets.tsv): it does not
 * search the bounds, and it is not their inverse. 1..4 map to index v, one
 * bucket above their bound, and the top of each power-of-4 range spills
 * into the next bucket (15 and 16 both give 15). The relay must reproduce it,
 * not correct it: a merged bucket count lands where SpectatorD's own would. */
#ifndef RELAY_PERCENTILE_H
#define RELAY_PERCENTILE_H

#include <stddef.h>
#include <stdint.h>

#define PCT_BUCKETS 276

/* T samples are clamped to [1 ns, 24 h] before the lookup; D samples are not. */
#define PCT_TIMER_MIN_NS 1
#define PCT_TIMER_MAX_NS 86400000000000ll

/* The power-of-4 ranges are cut at 4^1 .. 4^30: 11 buckets from 4 to 16,
 * then 9 per range. Index of the bucket whose bound is 4^k, k >= 1. */
static inline size_t pct_pow4_index(unsigned k)
{
	return k == 1 ? 3 : 14 + 9 * (size_t)(k - 2);
}

/* The bucket SpectatorD counts v in; v <= 0 gives 0. A handful of
 * instructions: a count of leading zeros and one division. */
static inline size_t pct_bucket_index(int64_t v)
{
	if (v <= 0)
		return 0;
	if (v <= 4)
		return (size_t)v;
	unsigned shift = 63u - (unsigned)__builtin_clzll((uint64_t)v);
	/* The power of 4 at or below v: round the power of 2 down to an even
	 * exponent. */
	shift &= ~1u;
	int64_t base = (int64_t)1 << shift;
	size_t pos = (size_t)((v - base) / (base / 3)) + pct_pow4_index(shift / 2);
	return pos >= PCT_BUCKETS - 1 ? PCT_BUCKETS - 1 : pos + 1;
}

/* The upper bound of bucket i (< PCT_BUCKETS), as the tag's table lists it. */
int64_t pct_bucket_bound(size_t i);

#endif
