/* admit.h - what the window does with one accepted line: refuse it (too
 * long for a datagram, past a limit), merge it into the open table, or
 * forward it as it came, perhaps after a line split off its series. Pure:
 * the window, and `spectator-relay --replay`, carry the forwarding out, so
 * that both make the same decisions.
 *
 * A line goes into the table unless it is X (never merged), a timer or
 * distribution line with [relay] merge_timers off, or one whose id leaves
 * its statistic lines no room in a datagram (encode_dist_fits()); the table
 * may still hand it back (agg_table_record()). */
#ifndef RELAY_ADMIT_H
#define RELAY_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregate.h"
#include "metric.h"
#include "stats.h"

struct admit_policy {
	size_t max_datagram;
	bool merge_timers;
};

struct admit {
	struct sample forward[2];  /* to forward as they came, in this order, before
				      the table's lines: a split-off line, then s;
				      their ids borrow s's */
	size_t nforward;
	bool merged;               /* s is in the table */
};

/* Whether s would go into the table (so it is worth hashing ahead). */
bool admit_mergeable(const struct admit_policy *p, const struct sample *s);

/* Whether admit_line() needs the receive time for s: an age gauge of 0. */
static inline bool admit_needs_now(const struct sample *s)
{
	return s->type == METER_AGE && s->v.d == 0;
}

/* Decides what to do with s (borrowed for the call) and merges it if it
 * goes into t. now: epoch seconds, read only when admit_needs_now(s).
 * Returns REJECT_NONE and fills *out, or the reason s is refused. */
enum reject_reason admit_line(struct agg_table *t, struct agg_ages *ages,
			      const struct admit_policy *p, const struct sample *s, double now,
			      struct admit *out);

/* Counts an admitted line in the stats it belongs to: merged.lines_in,
 * timers.lines_in or timers.unmerged. */
void admit_count(struct stats *st, const struct sample *s, const struct admit *a);

#endif
