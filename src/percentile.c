/* percentile.c - see percentile.h. */
#include "percentile.h"

int64_t pct_bucket_bound(size_t i)
{
	if (i < 3)
		return (int64_t)i + 1;
	if (i >= PCT_BUCKETS - 1)
		return INT64_MAX;
	/* Range k holds 4^k, 4^k + d, ... with d = 4^k / 3: 11 steps for k = 1
	 * (4 .. 14), 9 for every later one, up to 4^30. */
	unsigned k = i < 14 ? 1 : 2 + (unsigned)((i - 14) / 9);
	int64_t base = (int64_t)1 << (2 * k);
	return base + (int64_t)(i - pct_pow4_index(k)) * (base / 3);
}
