/* top.h - the heaviest ids by lines received, for `spectator-relayctl top`.
 * Pure.
 *
 * A merged series counts its lines in its own table record, which the merge
 * touches anyway, and `top` reads the window's two tables when asked. Lines
 * that are forwarded as they came (X, unmerged timers) have no record; a
 * sketch of TOP_SKETCH entries per window counts them (Space-Saving: a
 * newcomer takes the lightest entry and its count, so heavy ids stay and
 * counts are upper bounds), bounded like `senders`. That costs such a line
 * a hash and a scan of 64 words, and a newcomer a copy of its id. */
#ifndef RELAY_TOP_H
#define RELAY_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"

#define TOP_SKETCH 64
#define TOP_ID_MAX 256  /* bytes of an id a sketch keeps; longer ids are cut */
#define TOP_MAX 1000    /* the most ids `top` lists */

/* What a line updates is apart from the ids, which only a newcomer writes
 * and only `top` reads: a lookup scans 64 hashes in 8 cache lines, not 64
 * entries of 280 bytes each. */
struct top_sketch {
	uint64_t hash[TOP_SKETCH];   /* of kind and the whole id */
	uint64_t lines[TOP_SKETCH];
	uint8_t kind[TOP_SKETCH];    /* the type symbol */
	size_t n;
	size_t last;                 /* the entry the last line counted in */
	struct {
		uint16_t len;        /* bytes kept in id */
		char id[TOP_ID_MAX];
	} id[TOP_SKETCH];
};

void top_sketch_clear(struct top_sketch *k);

/* One line of this kind and id (borrowed), forwarded as it came. hash is
 * keytab_hash(kind, id, len), or 0 to have it computed. */
void top_sketch_add(struct top_sketch *k, uint8_t kind, const char *id, size_t len, uint64_t hash);

struct top_entry {
	uint8_t kind;
	bool merged;         /* merged into a series, or forwarded as it came */
	uint64_t lines;
	const char *id;      /* borrowed from a table or a sketch */
	size_t len;
};

/* The n (at most TOP_MAX) heaviest ids of two windows (tables[i] with
 * sketches[i]; a series in both counts once, with both counts), heaviest
 * first, into out. Returns how many there are. */
size_t top_collect(const struct agg_table *const tables[2], const struct top_sketch *const sketches[2],
		   struct top_entry *out, size_t n);

#endif
