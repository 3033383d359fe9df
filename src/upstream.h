/* upstream.h - delivery of datagrams to SpectatorD.
 *
 * The upstream sees datagrams only; it knows nothing about windows. They come
 * from two places:
 *   - pushed datagrams (timer and distribution lines), queued oldest first and
 *     bounded by max_pending_bytes: past it, the oldest are dropped and their
 *     lines counted in dropped.upstream;
 *   - a source that encodes on demand (the window's merged lines). What the
 *     source cannot deliver stays with the source (the window keeps it and
 *     merges on), so merged state is never dropped here.
 *
 * Order is kept across the two: a datagram pushed before the source took its
 * lines (before upstream_fence()) goes before them, one pushed after goes
 * after them. For most lines it would not matter, but a gauge's value may be
 * in both, and SpectatorD keeps the last it reads.
 *
 * Sending happens once per loop iteration (a uv_check_t) or when a window
 * closes, never once per line. States:
 *   up       datagrams go out as they come;
 *   blocked  the peer's queue is full (EAGAIN): wait until it drains;
 *   down     no peer (ENOENT, ECONNREFUSED, ...): retry when the next window
 *            closes (upstream_kick()).
 *
 * unix: sendto(path) for every datagram, never relying on a connection,
 * because SpectatorD re-creates its socket when it restarts.
 * udp: a connected socket, so that ICMP port-unreachable surfaces as
 * ECONNREFUSED; an empty probe datagram (SpectatorD ignores those) goes first
 * in each burst, so that a vanished peer is noticed before data is lost.
 * file and stdout: every line written as is, for people and tests. They are
 * streams: never written in a way that could block the loop, and a datagram
 * a stream took only part of is finished before anything else goes. */
#ifndef RELAY_UPSTREAM_H
#define RELAY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "buf.h"
#include "closes.h"
#include "encode.h"
#include "log.h"
#include "stats.h"
#include "tap.h"
#include "url.h"

struct upstream_source {
	/* Fills pk (reset by the caller) with the next datagram's lines;
	 * returns false when there is nothing more. */
	bool (*next)(void *ctx, struct packer *pk);
	/* The datagram from the last next() was not delivered; produce the
	 * same lines again later. */
	void (*undo)(void *ctx);
	void *ctx;
};

enum upstream_state { UPSTREAM_UP, UPSTREAM_BLOCKED, UPSTREAM_DOWN };

struct upstream {
	uv_loop_t *loop;
	struct stats *stats;
	struct dgram_pool *pool;     /* borrowed; buffers return to it */
	struct url url;
	int fd;                      /* owned, or -1 when stdout is used as it is */
	int out_fd;                  /* where bytes go: fd, or a borrowed 1 (stdout) */
	uv_poll_t *poll;             /* writable wakeup; heap, freed in its close callback */
	uv_check_t check;            /* sends the queue once per loop iteration */
	struct dgram_queue queue;
	uint64_t fence;              /* see upstream_fence() */
	size_t max_pending_bytes;
	struct upstream_source source;
	char *pull_buf;              /* owned: one datagram for the source */
	struct {                     /* streams: the rest of a datagram */
		char *buf;           /* owned, cap bytes */
		size_t cap;
		size_t head;         /* bytes of the datagram taken before the rest */
		size_t len, off;     /* bytes of the rest, and of those taken since */
		size_t lines;        /* the datagram's */
	} partial;
	bool stream_sock;            /* stdout is a socket: send(MSG_DONTWAIT) */
	size_t max_datagram;
	enum upstream_state state;
	bool outage;                 /* down since the last datagram that got through */
	int last_error;              /* negative errno of the last failure, or 0 */
	struct log_ratelimit rl;
	struct tap *tap;             /* borrowed, or NULL: told of every datagram sent */
	void (*recovered)(void *ctx); /* an outage ended: SpectatorD may have restarted */
	void *recovered_ctx;
	struct closes closes;
	void (*closed_cb)(struct upstream *up);
};

/* Opens the socket or file for url. The upstream starts up, and
 * learns otherwise from its first send. Returns 0 or -errno with err set. */
int upstream_open(struct upstream *up, uv_loop_t *loop, const struct url *url, size_t max_datagram,
		  size_t max_pending_bytes, struct dgram_pool *pool, struct stats *stats,
		  char *err, size_t errlen);

void upstream_set_source(struct upstream *up, const struct upstream_source *src);

/* Takes ownership of d and queues it; it is sent before the loop sleeps. */
void upstream_push(struct upstream *up, struct dgram *d);

/* The source has taken new lines (a window closed): datagrams pushed from
 * now on go after all of them, those pushed before go first. */
static inline void upstream_fence(struct upstream *up)
{
	up->fence++;
}

/* A window closed: if down, try again; then send what there is. */
void upstream_kick(struct upstream *up);

/* Nothing queued? (What the source holds back is the source's to tell.) */
bool upstream_idle(const struct upstream *up);

/* Applies reloadable settings. A changed url reopens the socket, keeping the
 * queue. Returns 0, or -errno with err set and nothing changed. */
int upstream_reconfigure(struct upstream *up, const struct url *url, size_t max_datagram,
			 size_t max_pending_bytes, char *err, size_t errlen);

/* "up", "blocked" or "down" (also while an outage is being retried). */
const char *upstream_state_name(const struct upstream *up);

static inline bool upstream_is_up(const struct upstream *up)
{
	return up->state == UPSTREAM_UP && !up->outage;
}

/* Bytes and lines waiting: queued datagrams, and the unwritten rest of one
 * a stream took part of. */
static inline size_t upstream_pending_bytes(const struct upstream *up)
{
	return up->queue.bytes + up->partial.len - up->partial.off;
}

static inline size_t upstream_pending_lines(const struct upstream *up)
{
	return up->queue.lines;
}

/* Why the last send failed, or "" once one succeeds again. */
const char *upstream_last_error(const struct upstream *up);

/* Closes every handle and frees the queue; cb runs when the last close
 * callback has fired. */
void upstream_close(struct upstream *up, void (*cb)(struct upstream *up));

#endif
