/* ingest.h - datagrams to samples to the window: the hot path every
 * listener feeds.
 *
 * It owns the parser, whose scratch holds the canonical ids of the lines in
 * flight: every line the relay records goes through here, a client's
 * (ingest_datagram()) or its own (ingest_line()), and so does every id a
 * person types (ingest_canonical_id()). */
#ifndef RELAY_INGEST_H
#define RELAY_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"
#include "senders.h"
#include "stats.h"
#include "tap.h"
#include "window.h"

struct ingest {
	struct proto_parser ps;
	struct window *window;   /* borrowed */
	struct stats *stats;     /* borrowed */
	struct tap *tap;         /* borrowed: told of every line while someone taps */
	/* Optional observers (the admin's senders and rejects), called with
	 * from and line borrowed for the call. on_reject runs for each refused
	 * line: it must stay cheap, and format nothing. */
	void (*on_datagram)(void *ctx, const struct sender_id *from, size_t bytes, size_t lines,
			    size_t rejected);
	void (*on_reject)(void *ctx, const struct sender_id *from, const char *line, size_t len,
			  enum reject_reason r);
	void *observer;
};

/* window, stats and tap are borrowed for the ingest's life. Returns 0 or
 * -ENOMEM. */
int ingest_init(struct ingest *in, struct window *window, struct stats *stats, struct tap *tap);
void ingest_deinit(struct ingest *in);

/* Parses one datagram (buf borrowed for the call) and records every line;
 * counts everything. truncated: the datagram went on past buf (see
 * proto_lines_init()). Returns the lines it held. */
size_t ingest_datagram(struct ingest *in, const char *buf, size_t len, bool truncated,
		       const struct sender_id *from);

/* Parses and records one line the relay makes itself (a self-metric), as a
 * client's but not counted as received. Returns REJECT_NONE, or the reason
 * it was refused (counted). */
enum reject_reason ingest_line(struct ingest *in, const char *line, size_t len);

/* The canonical form of an id a person typed ("name,key=value,...", tags
 * in any order), as the parser makes it for lines, into buf (cap bytes).
 * Returns 0 and sets *len, or -EINVAL if it is not an id or does not fit. */
int ingest_canonical_id(struct ingest *in, const char *text, char *buf, size_t cap, size_t *len);

#endif
