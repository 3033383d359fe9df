/* top.h - the heaviest ids by lines received, for `spectator-relayctl top`.
 * Pure.
 *
 * Ranking costs the hot path nothing it did not pay already: a merged
 * series counts its lines in its own table record, which the merge touches
 * anyway, and `top` reads the window's two tables when asked. Lines that
 * are forwarded as they came (X, unmerged timers) have no record; a sketch
 * of TOP_SKETCH entries per window counts them (Space-Saving: a newcomer
 * takes the lightest entry and its count, so heavy ids stay and counts are
 * upper bounds), bounded like `senders`. */
#ifndef RELAY_TOP_H
#define RELAY_TOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"

#define TOP_SKETCH 64
#define TOP_ID_MAX 256  /* bytes of an id a sketch keeps; longer ids are cut */
#define TOP_MAX 1000    /* the most ids `top` lists */

struct top_sketch_entry {
	uint64_t hash;       /* of kind and the whole id */
	uint64_t lines;
	uint16_t len;        /* bytes kept in id */
	uint8_t kind;        /* the type symbol */
	char id[TOP_ID_MAX];
};

struct top_sketch {
	struct top_sketch_entry e[TOP_SKETCH];
	size_t n;
};

void top_sketch_clear(struct top_sketch *k);

/* One line of this kind and id (borrowed), forwarded as it came. */
void top_sketch_add(struct top_sketch *k, uint8_t kind, const char *id, size_t len);

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
