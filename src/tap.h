/* tap.h - what `spectator-relayctl tap` shows: the lines that came in, were
 * refused, and went out, for the ids of a prefix. Pure.
 *
 * Each subscriber has a prefix and a ring of event lines, at most
 * TAP_RING_BYTES of them; its admin connection drains the ring as fast as
 * the client reads. When the client reads slowly the ring fills, and new
 * events are dropped and counted, never queued without bound: the relay
 * never waits for a tap client. With no subscriber the hot path pays one
 * branch (tap_on()).
 *
 * The events, one per line, as the client receives them:
 *
 *     in <line>                a line accepted, as it was received
 *     reject <reason> <line>   a line refused, and why
 *     out <line>               a line forwarded to SpectatorD
 *     lost <n>                 n events dropped because the client was slow,
 *                              here: after the events that came before them
 *
 * A line never holds '\n' (lines are split on it) nor NUL (datagrams end at
 * one), so the events need no escaping. A prefix matches the bytes after a
 * line's first ':', where the name starts; the empty prefix matches all. */
#ifndef RELAY_TAP_H
#define RELAY_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metric.h"

#define TAP_MAX_SUBSCRIBERS 4
#define TAP_RING_BYTES (1u << 20)
#define TAP_PREFIX_MAX 256

enum tap_event { TAP_IN, TAP_REJECT, TAP_OUT };

struct tap_sub {
	bool used;
	char prefix[TAP_PREFIX_MAX];
	size_t prefix_len;
	char *ring;            /* TAP_RING_BYTES, owned */
	size_t head, len;      /* the waiting bytes: ring[head ..] wrapping, len of them */
	uint64_t lost;         /* events dropped since the last "lost" line */
	bool stopped;          /* takes no more events (tap_stop()) */
};

struct tap {
	struct tap_sub sub[TAP_MAX_SUBSCRIBERS];
	unsigned active;       /* subscribers */
};

void tap_init(struct tap *t);
void tap_deinit(struct tap *t);

/* Whether anyone is watching: the one branch the hot path pays. */
static inline bool tap_on(const struct tap *t)
{
	return t->active != 0;
}

/* A subscriber for ids starting with prefix (len bytes, borrowed). Returns
 * its number, -EBUSY when TAP_MAX_SUBSCRIBERS are watching, -ENAMETOOLONG
 * for a prefix of TAP_PREFIX_MAX bytes or more, or -ENOMEM. */
int tap_subscribe(struct tap *t, const char *prefix, size_t len);
void tap_unsubscribe(struct tap *t, int id);

/* Subscriber id takes no more events; what it holds, and the count of what
 * it lost, can still be taken. tap_unsubscribe() frees it. */
void tap_stop(struct tap *t, int id);

/* One line (borrowed for the call): received and accepted, refused (why),
 * or forwarded. */
void tap_line(struct tap *t, enum tap_event ev, enum reject_reason why, const char *line,
	      size_t len);

/* Every line of a datagram that went out (borrowed for the call). */
void tap_datagram(struct tap *t, const char *buf, size_t len);

/* Moves up to cap bytes of whole event lines for subscriber id into buf,
 * a "lost" line first when events were dropped. Returns the bytes moved. */
size_t tap_take(struct tap *t, int id, char *buf, size_t cap);

/* Whether subscriber id has events waiting. */
bool tap_pending(const struct tap *t, int id);

#endif
