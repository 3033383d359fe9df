/* buf.c - see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void dgram_pool_init(struct dgram_pool *p, size_t cap, size_t max_free)
{
	p->free = NULL;
	p->nfree = 0;
	p->max_free = max_free;
	p->cap = cap;
}

static void drain(struct dgram_pool *p)
{
	while (p->free) {
		struct dgram *d = p->free;
		p->free = d->next;
		free(d);
	}
	p->nfree = 0;
}

void dgram_pool_deinit(struct dgram_pool *p)
{
	drain(p);
}

void dgram_pool_set_cap(struct dgram_pool *p, size_t cap)
{
	if (cap != p->cap)
		drain(p);
	p->cap = cap;
}

struct dgram *dgram_new(struct dgram_pool *p)
{
	struct dgram *d = p->free;

	if (d) {
		p->free = d->next;
		p->nfree--;
	} else {
		d = malloc(sizeof(*d) + p->cap + 1);
		if (!d)
			return NULL;
		d->cap = p->cap;
	}
	d->next = NULL;
	d->len = 0;
	d->lines = 0;
	return d;
}

void dgram_free(struct dgram_pool *p, struct dgram *d)
{
	if (!d)
		return;
	if (d->cap != p->cap || p->nfree >= p->max_free) {
		free(d);
		return;
	}
	d->next = p->free;
	p->free = d;
	p->nfree++;
}

void dgram_queue_push(struct dgram_queue *q, struct dgram *d)
{
	d->next = NULL;
	if (q->tail)
		q->tail->next = d;
	else
		q->head = d;
	q->tail = d;
	q->count++;
	q->bytes += d->len;
	q->lines += d->lines;
}

struct dgram *dgram_queue_pop(struct dgram_queue *q)
{
	struct dgram *d = q->head;

	if (!d)
		return NULL;
	q->head = d->next;
	if (!q->head)
		q->tail = NULL;
	q->count--;
	q->bytes -= d->len;
	q->lines -= d->lines;
	d->next = NULL;
	return d;
}

size_t dgram_recut(struct dgram_pool *p, struct dgram *d, size_t max, struct dgram_queue *q)
{
	struct dgram *cur = NULL;
	size_t dropped = 0;

	for (const char *line = d->data, *end = d->data + d->len; line < end;) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t n = nl ? (size_t)(nl - line) + 1 : (size_t)(end - line);
		if (n - 1 > max) {
			dropped++;
		} else {
			if (cur && cur->len + n > max + 1) {
				dgram_queue_push(q, cur);
				cur = NULL;
			}
			if (!cur && (cur = dgram_new(p)) && cur->cap < max) {
				dgram_free(p, cur); /* a buffer for smaller datagrams */
				cur = NULL;
			}
			if (cur) {
				cur->fence = d->fence;
				memcpy(cur->data + cur->len, line, n);
				cur->len += n;
				cur->lines++;
			} else {
				dropped++;
			}
		}
		line += n;
	}
	if (cur && cur->lines)
		dgram_queue_push(q, cur);
	else
		dgram_free(p, cur);
	dgram_free(p, d);
	return dropped;
}
