/* encode.h - samples and window tables to canonical lines, packed into
 * datagrams. Pure.
 *
 * A line is "type[,extra]:id:value\n": the extra only for a gauge TTL and an
 * X timestamp. A merged value is the shortest text that reads back to the
 * same double (numfmt.h), or the exact integer for U; a line forwarded as it
 * came keeps the number text the client wrote where its type allows
 * (meter_keeps_text()), which reads back to the same double too. Every line
 * ends in '\n', so a datagram never starts with an empty line and a file of
 * them reads as lines. A datagram holds whole lines only, at most its
 * packer's cap bytes of them and the last line's '\n': the newline is only
 * needed between lines, so a line may be as long as the cap, and datagram
 * sockets do not send a '\n' that goes past it (upstream.c). Buffers hold
 * cap + 1 bytes.
 *
 * A distribution series (t T d D) becomes its samples or its statistics
 * (aggregate.h, agg_dist_plan()): the statistics as
 *
 *     c:<id>,statistic=count:<n>
 *     c:<id>,statistic=totalTime:<seconds>         d D: totalAmount
 *     c:<id>,statistic=totalOfSquares:<seconds^2>
 *     m:<id>,statistic=max:<seconds>
 *     c:<id>,percentile=T0042,statistic=percentile:<count>    T D: per bucket
 *
 * where the statistic (and percentile) tag replaces one the client sent, as
 * spectatord's own ids do. A series' lines go in one datagram when they fit
 * one, so that they reach the same spectatord step. */
#ifndef RELAY_ENCODE_H
#define RELAY_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregate.h"
#include "metric.h"
#include "numfmt.h"

/* Longest value text (a negative subnormal), and the most a line adds to its
 * id: type, ",extra" (an int64), two ':' and the value. */
#define ENCODE_MAX_VALUE NUMFMT_DOUBLE_MAX
#define ENCODE_LINE_OVERHEAD (1 + 1 + NUMFMT_I64_MAX + 1 + 1 + ENCODE_MAX_VALUE)
/* The most a distribution series' line adds to its id: a bucket's
 * "c:" ",percentile=T0000,statistic=percentile" ":" and the value. */
#define ENCODE_DIST_OVERHEAD (2 + 38 + 1 + ENCODE_MAX_VALUE)

/* Whether every line a distribution series of this id could become fits a
 * datagram of max_datagram bytes; if not, its samples are forwarded as they
 * came. */
static inline bool encode_dist_fits(size_t id_len, size_t max_datagram)
{
	return id_len + ENCODE_DIST_OVERHEAD <= max_datagram;
}

/* Length of s's line without the '\n', as forwarded alone: the value as
 * written for types that keep their text, formatted anew for the others. */
size_t encode_sample_len(const struct sample *s);

/* Whether the line the relay forwards for s alone fits a datagram of
 * max_datagram bytes; if not, s is refused as too-long. For an age gauge of
 * 0, that line carries the receive time (any 24-character number). Lines
 * that merge into longer ones are the table's to split (agg_table_record()).
 * Formats nothing unless the id is within a line's overhead of the limit. */
bool encode_fits(const struct sample *s, size_t max_datagram);

/* Fills one datagram. buf is borrowed from the caller, who owns it, and
 * holds cap + 1 bytes. */
struct packer {
	char *buf;
	size_t len;   /* bytes used: at most cap, or cap + 1 ending in '\n' */
	size_t cap;   /* the datagram limit (max_datagram) */
	size_t lines; /* lines in buf */
};

static inline void packer_init(struct packer *pk, char *buf, size_t cap)
{
	pk->buf = buf;
	pk->len = 0;
	pk->cap = cap;
	pk->lines = 0;
}

static inline void packer_reset(struct packer *pk)
{
	pk->len = 0;
	pk->lines = 0;
}

/* Appends s's line. Returns false, changing nothing, if it does not fit. */
bool packer_add_sample(struct packer *pk, const struct sample *s);

/* Appends t's lines from *c on, advancing it past each one written or
 * skipped (an empty slot, a scalar entry that emits nothing), until the next
 * line does not fit or the table ends. A distribution series that would
 * start in this datagram but not end in it starts in the next one instead,
 * unless this one is empty. Returns the lines appended; *dist_lines
 * receives how many of them came from distribution series. A return of 0
 * with c not at the end means the next line fits no datagram of this size
 * (agg_cursor_skip_line()). */
size_t packer_add_table(struct packer *pk, const struct agg_table *t, struct agg_cursor *c,
			size_t *dist_lines);

#endif
