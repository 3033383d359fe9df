/* buf.h - datagram buffers handed from the window to the upstream, and the
 * FIFO the upstream keeps them in. Pure.
 *
 * Ownership: dgram_new() gives the caller a buffer; dgram_queue_push() takes
 * it; dgram_queue_pop() gives it back; dgram_free() ends it. A pool keeps a
 * few free buffers so that a steady stream allocates nothing. */
#ifndef RELAY_BUF_H
#define RELAY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct dgram {
	struct dgram *next;
	size_t len;    /* bytes used: whole lines, each ending in '\n' */
	size_t cap;    /* the datagram size it was made for; data holds cap + 1
			  bytes, for the last line's '\n' (encode.h) */
	size_t lines;  /* lines in data, for drop accounting */
	uint64_t fence; /* the upstream's fence when it was pushed (upstream.h) */
	char data[];
};

struct dgram_pool {
	struct dgram *free;
	size_t nfree;
	size_t max_free;  /* buffers kept for reuse */
	size_t cap;       /* datagram size of new buffers: max_datagram */
};

void dgram_pool_init(struct dgram_pool *p, size_t cap, size_t max_free);
void dgram_pool_deinit(struct dgram_pool *p);
/* Buffers of another size are freed rather than pooled from now on. */
void dgram_pool_set_cap(struct dgram_pool *p, size_t cap);

/* Returns an empty buffer for a datagram of p->cap bytes, or NULL when
 * memory is out. */
struct dgram *dgram_new(struct dgram_pool *p);
/* Returns d to the pool (or to the allocator). NULL is a no-op. */
void dgram_free(struct dgram_pool *p, struct dgram *d);

struct dgram_queue {
	struct dgram *head, *tail;
	size_t count;
	size_t bytes;  /* sum of len */
	size_t lines;  /* sum of lines */
};

void dgram_queue_push(struct dgram_queue *q, struct dgram *d);
struct dgram *dgram_queue_pop(struct dgram_queue *q);

/* Queues d's lines on q in datagrams of at most max bytes (and the last
 * line's '\n'), taking ownership of d: for datagrams packed before a reload
 * shrank max_datagram. A line longer than max is dropped; so is every line
 * for which no buffer could be had. Returns the lines dropped. */
size_t dgram_recut(struct dgram_pool *p, struct dgram *d, size_t max, struct dgram_queue *q);

#endif
