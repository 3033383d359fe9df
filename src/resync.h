/* resync.h - the age-gauge set, kept in step with SpectatorD's own.
 *
 * SpectatorD drops a new age gauge silently once it holds --age_gauge_limit
 * of them, and never forgets one until it restarts or is told to (admin
 * DELETE). So every [spectatord] resync_interval the relay asks SpectatorD's
 * admin server (docs/protocol.md 8 and 12.4):
 *
 *     GET /config    age_gauge_limit
 *     GET /metrics   age_gauges: every id it holds, its own and other
 *                    writers' included
 *
 * and makes its set those ids, plus its own that may not have reached
 * SpectatorD yet (agg_ages_replace()), and its limit SpectatorD's. A
 * SpectatorD restart (its set emptied) and an admin DELETE then free slots
 * without anyone telling the relay. The end of an upstream outage, often a
 * restart, starts a resync at once.
 *
 * HTTP/1.0 over a loopback TCP connection, with a deadline; a failure is
 * counted and the set kept as it is. */
#ifndef RELAY_RESYNC_H
#define RELAY_RESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "aggregate.h"
#include "closes.h"
#include "stats.h"
#include "url.h"

#define RESYNC_DEADLINE_MS 5000
#define RESYNC_MAX_REPLY (64u << 20)

struct resync {
	uv_loop_t *loop;
	struct url url;              /* SpectatorD's admin server */
	uint64_t interval_ms;
	struct agg_ages *ages;       /* borrowed: the window's set */
	struct stats *stats;         /* borrowed */
	uv_timer_t period;
	uv_timer_t deadline;
	uv_tcp_t *tcp;               /* heap, per request; freed in its close callback */
	uv_connect_t connect_req;
	uv_write_t write_req;
	const char *path;            /* the request under way: "/config" or "/metrics" */
	char *reply;                 /* owned, during a request: the response so far */
	size_t len, cap;
	size_t next_scan;            /* reply length at which to look for the end */
	size_t remote_limit;         /* from /config, for the /metrics step */
	char last_error[128];
	struct closes closes;
	void (*closed_cb)(struct resync *r);
};

/* Starts the periodic resync (the first one at once); url->text empty
 * means none. ages and stats are borrowed for the resync's life. Returns 0,
 * or a libuv error (then resync_close() is not needed, but the loop must
 * run for what was closed). */
int resync_open(struct resync *r, uv_loop_t *loop, const struct url *url, uint64_t interval_ms,
		 struct agg_ages *ages, struct stats *stats);

/* SpectatorD's admin server, "" when none; why the last read failed, "". */
static inline const char *resync_admin(const struct resync *r)
{
	return r->url.text;
}

static inline const char *resync_last_error(const struct resync *r)
{
	return r->last_error;
}

/* Starts a resync now, unless one is under way or there is no address: for
 * when SpectatorD may just have restarted with an empty set. */
void resync_now(struct resync *r);

/* Applies a reload's address and interval. */
void resync_reconfigure(struct resync *r, const struct url *url, uint64_t interval_ms);

/* Stops, abandoning a request under way; cb runs when every handle is closed. */
void resync_close(struct resync *r, void (*cb)(struct resync *r));

#endif
