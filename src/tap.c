/* tap.c - see tap.h. */
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_name[] = {
	[TAP_IN] = "in",
	[TAP_REJECT] = "reject",
	[TAP_OUT] = "out",
};

void tap_init(struct tap *t)
{
	memset(t, 0, sizeof(*t));
}

void tap_deinit(struct tap *t)
{
	for (int i = 0; i < TAP_MAX_SUBSCRIBERS; i++)
		tap_unsubscribe(t, i);
}

int tap_subscribe(struct tap *t, const char *prefix, size_t len)
{
	if (len >= TAP_PREFIX_MAX)
		return -ENAMETOOLONG;
	for (int i = 0; i < TAP_MAX_SUBSCRIBERS; i++) {
		struct tap_sub *s = &t->sub[i];
		if (s->used)
			continue;
		s->ring = malloc(TAP_RING_BYTES);
		if (!s->ring)
			return -ENOMEM;
		memcpy(s->prefix, prefix, len);
		s->prefix_len = len;
		s->head = s->len = 0;
		s->lost = 0;
		s->stopped = false;
		s->used = true;
		t->active++;
		return i;
	}
	return -EBUSY;
}

void tap_unsubscribe(struct tap *t, int id)
{
	struct tap_sub *s = &t->sub[id];

	if (!s->used)
		return;
	free(s->ring);
	s->ring = NULL;
	s->used = false;
	t->active--;
}

void tap_stop(struct tap *t, int id)
{
	t->sub[id].stopped = true;
}

/* Whether the line's name (after its first ':') starts with the prefix. */
static bool matches(const struct tap_sub *s, const char *line, size_t len)
{
	if (s->prefix_len == 0)
		return true;
	const char *colon = memchr(line, ':', len);
	if (!colon)
		return false;
	size_t rest = len - (size_t)(colon + 1 - line);
	return rest >= s->prefix_len && memcmp(colon + 1, s->prefix, s->prefix_len) == 0;
}

static void put(struct tap_sub *s, const char *p, size_t n)
{
	size_t at = (s->head + s->len) % TAP_RING_BYTES;
	size_t first = n < TAP_RING_BYTES - at ? n : TAP_RING_BYTES - at;

	memcpy(s->ring + at, p, first);
	memcpy(s->ring, p + first, n - first);
	s->len += n;
}

/* "lost N\n" for what was dropped since the ring last took an event. */
static size_t lost_note(const struct tap_sub *s, char note[static 32])
{
	return (size_t)snprintf(note, 32, "lost %llu\n", (unsigned long long)s->lost);
}

/* One event line, whole or not at all. Events dropped before it are said
 * first, where they happened: after what the ring held when they were. */
static void add(struct tap_sub *s, enum tap_event ev, enum reject_reason why, const char *line,
		size_t len)
{
	const char *name = event_name[ev];
	const char *reason = ev == TAP_REJECT ? reject_reason_name[why] : "";
	size_t nlen = strlen(name), rlen = strlen(reason);
	size_t need = nlen + 1 + (rlen ? rlen + 1 : 0) + len + 1;
	char note[32];
	size_t notelen = s->lost ? lost_note(s, note) : 0;

	if (TAP_RING_BYTES - s->len < notelen + need) {
		s->lost++;
		return;
	}
	if (notelen) {
		put(s, note, notelen);
		s->lost = 0;
	}
	put(s, name, nlen);
	put(s, " ", 1);
	if (rlen) {
		put(s, reason, rlen);
		put(s, " ", 1);
	}
	put(s, line, len);
	put(s, "\n", 1);
}

void tap_line(struct tap *t, enum tap_event ev, enum reject_reason why, const char *line,
	      size_t len)
{
	for (int i = 0; i < TAP_MAX_SUBSCRIBERS; i++)
		if (t->sub[i].used && !t->sub[i].stopped && matches(&t->sub[i], line, len))
			add(&t->sub[i], ev, why, line, len);
}

void tap_datagram(struct tap *t, const char *buf, size_t len)
{
	const char *end = buf + len;

	for (const char *p = buf; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (n)
			tap_line(t, TAP_OUT, REJECT_NONE, p, n);
		p += n + 1;
	}
}

bool tap_pending(const struct tap *t, int id)
{
	const struct tap_sub *s = &t->sub[id];

	return s->used && (s->len || s->lost);
}

size_t tap_take(struct tap *t, int id, char *buf, size_t cap)
{
	struct tap_sub *s = &t->sub[id];
	size_t n = 0;

	if (!s->used)
		return 0;
	/* Whole lines only: up to the last '\n' that fits. */
	size_t want = s->len < cap ? s->len : cap;
	for (size_t i = 0; i < want; i++)
		if (s->ring[(s->head + i) % TAP_RING_BYTES] == '\n')
			n = i + 1;
	for (size_t i = 0; i < n; i++)
		buf[i] = s->ring[(s->head + i) % TAP_RING_BYTES];
	s->head = (s->head + n) % TAP_RING_BYTES;
	s->len -= n;
	/* What was dropped came after all the ring held. */
	if (s->len == 0 && s->lost) {
		char note[32];
		size_t m = lost_note(s, note);
		if (m <= cap - n) {
			memcpy(buf + n, note, m);
			n += m;
			s->lost = 0;
		}
	}
	return n;
}
