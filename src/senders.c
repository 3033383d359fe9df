/* senders.c - see senders.h. */
#include "senders.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void senders_init(struct senders *s)
{
	memset(s, 0, sizeof(*s));
}

static bool same(const struct sender_id *a, const struct sender_id *b)
{
	if (a->is_unix != b->is_unix)
		return false;
	if (a->is_unix)
		return a->has_cred == b->has_cred && a->pid == b->pid && a->uid == b->uid;
	if (a->addr.ss_family != b->addr.ss_family)
		return false;
	if (a->addr.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

const struct sender_stats *senders_find(const struct senders *s, const struct sender_id *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (same(&s->e[i].id, id))
			return &s->e[i];
	return NULL;
}

struct sender_stats *senders_get(struct senders *s, const struct sender_id *id, double now,
				 bool *is_new)
{
	*is_new = false;
	if (s->n > 0 && same(&s->e[s->last].id, id))
		return &s->e[s->last];
	size_t min = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (same(&s->e[i].id, id)) {
			s->last = i;
			return &s->e[i];
		}
		if (s->e[i].lines < s->e[min].lines)
			min = i;
	}
	size_t slot;
	uint64_t inherited = 0;
	if (s->n < SENDERS_MAX) {
		slot = s->n++;
	} else {
		/* Space-Saving: the newcomer takes the lightest entry and its
		 * count, an upper bound of what it may have sent unseen. */
		slot = min;
		inherited = s->e[min].lines;
		s->evictions++;
	}
	struct sender_stats *e = &s->e[slot];
	memset(e, 0, sizeof(*e));
	e->id = *id;
	e->used = true;
	e->lines = inherited;
	e->first_seen = now;
	e->last_seen = now;
	s->last = slot;
	*is_new = true;
	return e;
}

enum reject_reason senders_top_reason(const struct sender_stats *e)
{
	enum reject_reason best = REJECT_NONE;

	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		if (e->by_reason[r] > (best ? e->by_reason[best] : 0))
			best = (enum reject_reason)r;
	return best;
}

void sender_format(const struct sender_id *id, const char *comm, char *buf, size_t cap)
{
	char host[INET6_ADDRSTRLEN];

	if (id->is_unix) {
		if (!id->has_cred)
			snprintf(buf, cap, "unix (no credentials)");
		else
			snprintf(buf, cap, "pid %d uid %u%s%s%s", (int)id->pid, (unsigned)id->uid,
				 comm && comm[0] ? " (" : "", comm && comm[0] ? comm : "",
				 comm && comm[0] ? ")" : "");
		return;
	}
	if (id->addr.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&id->addr;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, cap, "%s:%u", host, ntohs(a->sin_port));
	} else {
		const struct sockaddr_in6 *a = (const void *)&id->addr;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, cap, "[%s]:%u", host, ntohs(a->sin6_port));
	}
}

struct sort_arg {
	const struct senders *s;
	bool by_rejects;
};

static int cmp(const void *pa, const void *pb, void *arg)
{
	const struct sort_arg *sa = arg;
	const struct sender_stats *a = &sa->s->e[*(const size_t *)pa];
	const struct sender_stats *b = &sa->s->e[*(const size_t *)pb];
	uint64_t x = sa->by_rejects ? a->rejects : a->lines;
	uint64_t y = sa->by_rejects ? b->rejects : b->lines;

	return (x < y) - (x > y);
}

size_t senders_sorted(const struct senders *s, bool by_rejects, size_t *idx)
{
	struct sort_arg arg = { s, by_rejects };
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		if (!by_rejects || s->e[i].rejects > 0)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), cmp, &arg);
	return n;
}
