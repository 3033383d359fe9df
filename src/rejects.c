/* rejects.c - see rejects.h. */
#include "rejects.h"

#include <string.h>

void rejects_add(struct rejects *r, const char *line, size_t len, enum reject_reason reason,
		 const struct sender_id *from, double when)
{
	struct reject_entry *e = &r->e[r->next];

	e->full_len = len;
	e->len = len < REJECTS_TEXT ? len : REJECTS_TEXT;
	memcpy(e->text, line, e->len);
	e->reason = reason;
	e->from = *from;
	e->when = when;
	r->next = (r->next + 1) % REJECTS_KEEP;
	if (r->n < REJECTS_KEEP)
		r->n++;
}

const struct reject_entry *rejects_at(const struct rejects *r, size_t i)
{
	size_t oldest = r->n < REJECTS_KEEP ? 0 : r->next;

	return &r->e[(oldest + i) % REJECTS_KEEP];
}
