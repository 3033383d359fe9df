/* snapshot.h - a read-only view of the relay's state, for the modules that
 * report on the others: the admin socket and the self-metrics. They never
 * reach into the modules that own the state; the daemon fills this from
 * those modules' accessors (daemon_snapshot()). Every pointer in it is
 * borrowed until the loop runs again. Types only. */
#ifndef RELAY_SNAPSHOT_H
#define RELAY_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregate.h"
#include "config.h"
#include "rejects.h"
#include "senders.h"
#include "stats.h"
#include "top.h"

struct snapshot_listener {
	const char *url;
	bool unix_socket;        /* else UDP */
	bool adopted;            /* passed by systemd */
	struct listener_stats st;
};

struct snapshot {
	uint64_t uptime_ms;
	const struct config *cfg;        /* in effect */
	const struct stats *stats;
	const char *last_reload;         /* the last reload's result, or "" */
	struct {
		const char *location;
		const char *state;       /* "up", "blocked" or "down" */
		bool up;
		const char *last_error;  /* "" once a send succeeds again */
		size_t pending_bytes, pending_lines;
	} upstream;
	struct {
		const char *admin;       /* SpectatorD's admin server, "" when not read */
		const char *last_error;
		size_t age_gauge_limit;  /* SpectatorD's, 0 before the first read */
	} spectatord;
	size_t series_active;            /* in the open window */
	/* `top`: the closed window, then the open one, over span_ms. */
	const struct agg_table *windows[2];
	const struct top_sketch *sketches[2];
	uint64_t windows_span_ms;
	const struct agg_ages *ages;
	const struct senders *senders;
	const struct rejects *rejects;
	size_t nlisteners;
	struct snapshot_listener listeners[CONFIG_MAX_LISTEN];
	/* Every listener since the start, closed ones included, so that totals
	 * never go back: [0] UDP, [1] unix. */
	struct listener_stats by_transport[2];
};

#endif
