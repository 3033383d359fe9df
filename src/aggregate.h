/* aggregate.h - one window's merged state, and the age-gauge set. Pure.
 *
 * A window table maps (type, canonical id) to what spectatord would have
 * made of every line for that key in the window (docs/protocol.md 12.2):
 *
 *     c  the sum of the deltas, in arrival order
 *     m  the maximum
 *     g  the last value (NaN included) and the TTL of the last line that had one
 *     C  the last value          U  the last value, as uint64
 *     A  the last value, 0 rewritten to the receive time
 *
 * Timers, distribution summaries and X lines cannot be merged; they never
 * enter a table (see encode.h for how they are packed).
 *
 * The age-gauge set outlives windows: spectatord keeps an age gauge until it
 * restarts, and drops new ids past its limit silently, so the relay refuses
 * them visibly instead. */
#ifndef RELAY_AGGREGATE_H
#define RELAY_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keytab.h"
#include "metric.h"

struct agg_value {
	union {
		double d;
		uint64_t u;
	} v;
	int64_t ttl; /* g only: seconds, 0 when no line in the window had one */
};

/* What one window may hold. */
struct agg_limits {
	size_t max_series;    /* distinct keys */
	size_t max_key_bytes; /* bytes of those keys, so that long ids cannot take
				 memory that max_series alone would not limit */
	size_t max_per_name;  /* distinct keys sharing one name; 0: no limit */
};

struct agg_table {
	struct keytab kt;     /* keys: kind = type symbol, bytes = canonical id */
	struct keytab names;  /* with max_per_name: name -> keys in this window */
	struct agg_limits lim;
};

struct agg_ages {
	struct keytab kt;     /* kind 'A', bytes = canonical id; value: the
				 window (epoch) the id was last recorded in, 0
				 if only SpectatorD has sent it */
	size_t limit;         /* [limits] age_gauge_limit */
	size_t remote_limit;  /* SpectatorD's own limit, when remote_known */
	bool remote_known;
	uint64_t epoch;       /* the open window's number, from 1 */
	uint64_t mark_epoch;  /* epoch at agg_ages_mark() */
};

/* Both return 0 or -ENOMEM. */
int agg_table_init(struct agg_table *t, const struct agg_limits *lim);
void agg_table_deinit(struct agg_table *t);
void agg_table_set_limits(struct agg_table *t, const struct agg_limits *lim);

int agg_ages_init(struct agg_ages *a, size_t limit);
void agg_ages_deinit(struct agg_ages *a);

/* The hash of s's key; agg_table_record() uses s->hash when it is set. */
uint64_t agg_key_hash(const struct sample *s);

/* Starts loading the memory a lookup of this hash will touch, so that a
 * caller can look a line ahead. */
static inline void agg_table_prefetch(const struct agg_table *t, uint64_t hash)
{
	__builtin_prefetch(&t->kt.slots[hash & t->kt.mask]);
}

/* Merges one accepted, mergeable sample (not meter_is_passthrough()). now is
 * the receive time in epoch seconds, for A lines whose value is 0. The sample
 * is only read. Returns REJECT_NONE, REJECT_SERIES_LIMIT (a new key past
 * max_series, max_key_bytes or memory), REJECT_NAME_LIMIT (a new key past
 * max_per_name) or REJECT_AGE_GAUGE_LIMIT. */
enum reject_reason agg_table_record(struct agg_table *t, struct agg_ages *ages,
				    const struct sample *s, double now);

/* Empties the table; memory shrinks toward the working set (keytab_clear()). */
void agg_table_clear(struct agg_table *t);

static inline size_t agg_table_count(const struct agg_table *t)
{
	return t->kt.count;
}

/* Whether an entry produces a line: a counter that summed to 0 or a max
 * gauge that never rose above -DBL_MAX would change nothing in spectatord. */
bool agg_entry_emits(const struct keytab_entry *e);

/* Lines the entries from position pos on (keytab_next()) would produce. */
size_t agg_table_pending(const struct agg_table *t, size_t pos);

size_t agg_ages_count(const struct agg_ages *a);
/* The limit in force: SpectatorD's own once it is known (the set then holds
 * every id SpectatorD holds, its own and other writers' included), else the
 * configured one. */
size_t agg_ages_limit(const struct agg_ages *a);
/* A window closed: ids recorded from now on belong to the next one. */
static inline void agg_ages_next_window(struct agg_ages *a)
{
	a->epoch++;
}
bool agg_ages_contains(const struct agg_ages *a, const char *id, size_t len);
/* Frees one slot. Returns 0 or -ENOENT. */
int agg_ages_forget(struct agg_ages *a, const char *id, size_t len);
void agg_ages_forget_all(struct agg_ages *a);

/* Resynchronising with SpectatorD's own set (docs/protocol.md 12.4):
 * agg_ages_mark() when the request goes out; agg_ages_replace() with the
 * answer makes the set SpectatorD's ids plus ours that may not have reached
 * it yet: those recorded since the mark, or in the windows just before it
 * (still in the relay, in a socket buffer, or in SpectatorD's queue). ids is
 * an array of n canonical ids, borrowed for the call. Returns 0 or -ENOMEM
 * (then the set is unchanged). */
void agg_ages_mark(struct agg_ages *a);
struct agg_id {
	const char *id;
	size_t len;
};
int agg_ages_replace(struct agg_ages *a, const struct agg_id *ids, size_t n);

#endif
