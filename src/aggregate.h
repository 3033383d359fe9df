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
 *     t T d D  the statistics spectatord keeps for a timer or distribution
 *        summary (12.9): count, total, sum of squares, max, and for T and D
 *        the count in each percentile bucket; also the first few samples,
 *        while forwarding them as they came would take fewer lines
 *
 * X lines are never merged: they never enter a table. Neither does a line
 * whose merge would not be exact (agg_table_record() says so): it is
 * forwarded as it came.
 *
 * Scalar series (c g m A C U) and distribution series (t T d D) live in two
 * hash tables, since the second need five times the room per key; the limits
 * count both together.
 *
 * The age-gauge set outlives windows: spectatord keeps an age gauge until it
 * restarts, and drops new ids past its limit silently, so the relay refuses
 * them visibly instead. */
#ifndef RELAY_AGGREGATE_H
#define RELAY_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blocks.h"
#include "keytab.h"
#include "metric.h"

struct agg_value {
	union {
		double d;
		uint64_t u;
	} v;
	int64_t ttl; /* g only: seconds, 0 when no line in the window had one */
	uint64_t lines; /* merged into it: what `top` ranks by */
};

/* A timer or distribution summary series, as docs/protocol.md 12.9 defines
 * its statistics. A sample x is int64(v * 1e9) ns for t and T, v for d, and
 * int64(v) for D; every sample reaching here is finite and >= 0. */
struct agg_dist {
	uint64_t n;            /* samples */
	union {
		int64_t ns;    /* t T: the sum of x, exact */
		double d;      /* d D: the sum of x in arrival order */
	} sum;
	double sumsq;          /* the sum of x * x as doubles, in arrival order */
	union {
		int64_t ns;    /* t T */
		double d;      /* d D: from 0, as spectatord's meter starts */
	} max;
	double first;          /* the first sample's value as sent (the zero rule) */
	uint32_t buckets;      /* T D: block of bucket counts, each a word
				  count << 9 | index, ascending by index */
	uint32_t kept;         /* block of the samples' values as sent, while
				  forwarding them could still be the shorter form */
	uint16_t nbuckets;     /* buckets not empty */
	uint16_t nkept;
	uint8_t bclass, kclass; /* the blocks' size classes */
	bool dropped;          /* samples no longer kept: more than 4 beyond the
				  buckets, so the statistics are shorter */
};

#define AGG_BUCKET_SHIFT 9 /* PCT_BUCKETS < 2^9 */

/* What one window may hold. */
struct agg_limits {
	size_t max_series;    /* distinct keys */
	size_t max_key_bytes; /* bytes of those keys, so that long ids cannot take
				 memory that max_series alone would not limit; it
				 bounds the bucket counts and samples of
				 distribution series as well */
	size_t max_per_name;  /* distinct keys sharing one name; 0: no limit */
	size_t max_line;      /* longest line a datagram carries (max_datagram) */
};

struct agg_table {
	struct keytab kt;     /* scalar series: kind = type symbol, bytes = the
				 canonical id, value struct agg_value */
	struct keytab dt;     /* distribution series, value struct agg_dist */
	struct blocks blocks; /* their bucket counts and samples */
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

static inline bool agg_is_dist(enum meter_type t)
{
	return t == METER_TIMER || t == METER_PCT_TIMER || t == METER_DIST || t == METER_PCT_DIST;
}

/* The hash of s's key; agg_table_record() uses s->hash when it is set. */
uint64_t agg_key_hash(const struct sample *s);

/* Starts loading the memory a lookup of s's key will touch, so that a
 * caller can look a line ahead. */
static inline void agg_table_prefetch(const struct agg_table *t, const struct sample *s)
{
	const struct keytab *kt = agg_is_dist(s->type) ? &t->dt : &t->kt;

	__builtin_prefetch(&kt->slots[s->hash & kt->mask]);
}

/* What agg_table_record() did besides merging. The caller forwards, in this
 * order and before the table's own lines: split's line, then s. */
struct agg_outcome {
	bool forward;   /* s was not merged: forward it as it came */
	bool split;     /* the series' line as it stood before s (value `old`) no
			   longer combines with s into a line that fits: it
			   goes out now, and the series starts again from s */
	struct agg_value old;
};

/* Merges one accepted sample of any type but X, whose own line fits
 * (encode_fits()). now is the receive time in epoch seconds, for A lines
 * whose value is 0. The sample is only read.
 *
 * Returns REJECT_NONE, REJECT_SERIES_LIMIT (a new key past max_series,
 * max_key_bytes or memory), REJECT_NAME_LIMIT (a new key past max_per_name)
 * or REJECT_AGE_GAUGE_LIMIT. With REJECT_NONE, *out says what else to do:
 * - forward: merging s would not be exact (a counter sum or a distribution
 *   total leaving the finite range, a counter sum whose text no longer fits
 *   a line), or, for t T d D, the table could not take it (the limits
 *   above): those are never refused, as spectatord takes each alone;
 * - split: a gauge whose TTL and value, from different lines, make a line
 *   longer than max_line. */
enum reject_reason agg_table_record(struct agg_table *t, struct agg_ages *ages,
				    const struct sample *s, double now, struct agg_outcome *out);

/* Empties the table; memory shrinks toward the working set (keytab_clear()). */
void agg_table_clear(struct agg_table *t);

static inline size_t agg_table_count(const struct agg_table *t)
{
	return t->kt.count + t->dt.count;
}

/* Whether a scalar entry produces a line: a counter that summed to 0 or a
 * max gauge that never rose above -DBL_MAX would change nothing in
 * spectatord. */
bool agg_entry_emits(const struct keytab_entry *e);

/* ------------------------------------------------------------------------
 * What a distribution series becomes at the window's end (docs/protocol.md
 * 12.9). Either its samples, forwarded as they came, when that takes no more
 * lines; or its statistics as c and m lines with a forced statistic tag,
 * which spectatord publishes exactly as its own meter would have. When every
 * sample squares to 0, spectatord's meter would still publish a total and a
 * sum of squares of 0, which no counter can carry: then the first sample is
 * forwarded as it came, and the statistics are those of the others.
 *
 * The lines are numbered slots, some of them empty, so that a reader can
 * stop between any two and resume later: in the samples form slot i is
 * sample i; otherwise slot 0 is the first sample (zero rule only), 1 count,
 * 2 total, 3 sum of squares, 4 max, and 5 + j the j-th non-empty bucket.
 * ------------------------------------------------------------------------ */

enum agg_stat { AGG_SAMPLE, AGG_COUNT, AGG_TOTAL, AGG_TOTAL_SQ, AGG_MAX, AGG_BUCKET };

struct agg_plan {
	bool samples;          /* the samples form */
	bool zero;             /* the zero rule applies */
	size_t slots;
	size_t lines;          /* slots not empty */
	size_t first_bucket;   /* zero rule: the bucket the first sample counts in */
};

/* One line before formatting. */
struct agg_line {
	enum agg_stat what;
	double value;          /* the number, as spectatord will publish it */
	size_t bucket;         /* AGG_BUCKET: its index */
};

void agg_dist_plan(const struct agg_table *t, const struct keytab_entry *e, struct agg_plan *p);

/* Fills *out with slot i (< p->slots) and returns true, or returns false
 * for an empty slot. */
bool agg_dist_slot(const struct agg_table *t, const struct keytab_entry *e,
		   const struct agg_plan *p, size_t i, struct agg_line *out);

/* A place in a table's lines: the scalar series first, then the
 * distribution series; within an entry, its first slot not yet written. */
struct agg_cursor {
	unsigned part;         /* 0: t->kt, 1: t->dt, 2: past the end */
	size_t pos;            /* of the entry at hand (keytab_next() order) */
	size_t slot;
};

static inline void agg_cursor_start(struct agg_cursor *c)
{
	c->part = 0;
	c->pos = 0;
	c->slot = 0;
}

/* The entry at c, advancing c past dead records and finished parts; NULL
 * (and part 2) at the end. */
struct keytab_entry *agg_cursor_entry(const struct agg_table *t, struct agg_cursor *c);

/* Moves c to the next entry's first slot. */
void agg_cursor_next_entry(const struct agg_table *t, struct agg_cursor *c);

/* Moves c past the next line, unwritten: for a line no datagram can carry
 * (only after a reload shrank max_datagram). */
void agg_cursor_skip_line(const struct agg_table *t, struct agg_cursor *c);

static inline bool agg_cursor_done(const struct agg_table *t, struct agg_cursor *c)
{
	return agg_cursor_entry(t, c) == NULL;
}

/* Lines from c on (the table's lines when c is at its start). */
size_t agg_table_pending(const struct agg_table *t, const struct agg_cursor *c);

/* ------------------------------------------------------------------------
 * The age-gauge set
 * ------------------------------------------------------------------------ */

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
