/* encode.h - samples and window tables to canonical lines, packed into
 * datagrams. Pure.
 *
 * A line is "type[,extra]:id:value\n": the extra only for a gauge TTL and an
 * X timestamp. A merged value is the shortest text that reads back to the
 * same double (numfmt.h), or the exact integer for U; a timer, distribution
 * or X value is the number text the client wrote, which reads back to the
 * same double too. Every line ends in '\n', so a
 * datagram never starts with an empty line and a file of them reads as lines.
 * A datagram holds whole lines only and never exceeds its packer's cap. */
#ifndef RELAY_ENCODE_H
#define RELAY_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

#include "aggregate.h"
#include "metric.h"
#include "numfmt.h"

/* Longest value text (a negative subnormal), and the most a line adds to its
 * id: type, ",extra" (an int64), two ':' and the value. */
#define ENCODE_MAX_VALUE 24
#define ENCODE_LINE_OVERHEAD (1 + 20 + 1 + 1 + ENCODE_MAX_VALUE)

/* Length of s's line without the '\n'. */
size_t encode_sample_len(const struct sample *s);

/* Fills one datagram. buf is borrowed from the caller, who owns it. */
struct packer {
	char *buf;
	size_t len;   /* bytes used */
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

/* Appends the lines of t's entries from position *cursor on (keytab_next()),
 * advancing it past each one written or skipped (agg_entry_emits()), until
 * the next line does not fit or the table ends. Returns the lines appended. */
size_t packer_add_table(struct packer *pk, const struct agg_table *t, size_t *cursor);

#endif
