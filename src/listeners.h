/* listeners.h - the set of listening sockets: opened, or adopted from
 * systemd, at start; changed by a reload; drained and closed at shutdown.
 *
 * Each address goes one way whether systemd passed its socket or the relay
 * binds it: sockutil makes (or prepares) the descriptor, and a listener
 * wraps it. The totals of closed listeners are kept, so that counters never
 * go back when a reload closes one. */
#ifndef RELAY_LISTENERS_H
#define RELAY_LISTENERS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "config.h"
#include "ingest.h"
#include "listener.h"
#include "sdnotify.h"
#include "stats.h"

struct listeners {
	uv_loop_t *loop;
	struct ingest *in;                         /* borrowed: what they feed */
	struct sdnotify_fds fds;                   /* passed by systemd; each owned
						      until a listener adopts it */
	struct listener *l[CONFIG_MAX_LISTEN];     /* heap; freed when closed */
	size_t n;
	struct listener_stats retired[2];          /* closed ones: [0] UDP, [1] unix */
};

/* Takes the descriptors systemd passed (LISTEN_FDS). Returns 0 or -errno
 * with err set. */
int listeners_init(struct listeners *ls, uv_loop_t *loop, struct ingest *in, char *err,
		   size_t errlen);

/* Opens every address of cfg->listen, adopting a passed socket where one
 * matches. A built-in address this host cannot bind (no IPv6) is skipped
 * with a warning, and left out of cfg->listen, which then lists what is
 * open. Returns 0, or -errno with err set (what was opened stays open:
 * listeners_close() ends it). Passed sockets no address took are logged. */
int listeners_open(struct listeners *ls, struct config *cfg, char *err, size_t errlen);

/* A reload: closes the listeners next no longer lists (after reading what
 * their kernel queues hold), opens those it adds, applies receive_buffer,
 * unix_mode and unix_group from next where they differ from cur. What
 * cannot be applied is left out of next->listen and described in problems
 * (cap bytes, "; "-separated, appended to). */
void listeners_apply(struct listeners *ls, struct config *next, const struct config *cur,
		     char *problems, size_t cap);

/* Re-reads each listener's kernel drops and receive buffer. */
void listeners_refresh(struct listeners *ls);

/* Stops reading, and reads what the kernels already queued, up to max
 * datagrams a socket. Returns the datagrams read. */
size_t listeners_drain(struct listeners *ls, size_t max);

/* Totals by transport ([0] UDP, [1] unix) over every listener since the
 * start, closed ones included. */
void listeners_totals(const struct listeners *ls, struct listener_stats by[2]);

/* Closes every listener; their memory goes back from the loop. */
void listeners_close(struct listeners *ls);

#endif
