/* rejects.h - the last REJECTS_KEEP refused lines, for the admin `rejects`
 * command. Pure. Each keeps its first REJECTS_TEXT bytes, its reason, its
 * sender (as text) and when it came; the oldest is overwritten. */
#ifndef RELAY_REJECTS_H
#define RELAY_REJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "metric.h"

#define REJECTS_KEEP 100
#define REJECTS_TEXT 200

struct reject_entry {
	char text[REJECTS_TEXT];
	size_t len;               /* bytes kept */
	size_t full_len;          /* bytes the line had */
	enum reject_reason reason;
	char sender[80];
	double when;              /* epoch seconds */
};

struct rejects {
	struct reject_entry e[REJECTS_KEEP];
	size_t next;              /* where the next one goes */
	size_t n;                 /* how many are held */
};

/* Copies line (borrowed) and sender text into the ring. */
void rejects_add(struct rejects *r, const char *line, size_t len, enum reject_reason reason,
		 const char *sender, double when);

/* The i-th held entry, oldest first (i < r->n). */
const struct reject_entry *rejects_at(const struct rejects *r, size_t i);

#endif
