/* rejects.h - the last REJECTS_KEEP refused lines, for the admin `rejects`
 * command. Pure. Each keeps its first REJECTS_TEXT bytes, its reason, its
 * sender and when it came; the oldest is overwritten. Nothing is formatted
 * here: a flood of bad lines costs a copy each, and only a reader formats
 * them (sender_format()). */
#ifndef RELAY_REJECTS_H
#define RELAY_REJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "metric.h"
#include "senders.h"

#define REJECTS_KEEP 100
#define REJECTS_TEXT 200

struct reject_entry {
	char text[REJECTS_TEXT];
	size_t len;               /* bytes kept */
	size_t full_len;          /* bytes the line had */
	enum reject_reason reason;
	struct sender_id from;
	double when;              /* epoch seconds */
};

struct rejects {
	struct reject_entry e[REJECTS_KEEP];
	size_t next;              /* where the next one goes */
	size_t n;                 /* how many are held */
};

/* Copies line and from (both borrowed) into the ring. */
void rejects_add(struct rejects *r, const char *line, size_t len, enum reject_reason reason,
		 const struct sender_id *from, double when);

/* The i-th held entry, oldest first (i < r->n). */
const struct reject_entry *rejects_at(const struct rejects *r, size_t i);

#endif
