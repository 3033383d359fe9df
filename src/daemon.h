/* daemon.h - the one process-wide object: it owns the loop and every module.
 *
 * Start-up is fatal on any error (daemon_start() returns it with a message);
 * after READY=1 nothing is: faults are counted in the stats.
 *
 * Signals arrive as loop events:
 *   SIGHUP           reload the configuration (daemon_reload());
 *   SIGTERM, SIGINT  the shutdown sequence: STOPPING=1, drain every socket's
 *                    kernel queue, flush the open window, deliver it against
 *                    [relay] shutdown_timeout, close every handle, exit 0;
 *   SIGPIPE          ignored. */
#ifndef RELAY_DAEMON_H
#define RELAY_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admin.h"
#include "buf.h"
#include "config.h"
#include "listener.h"
#include "losses.h"
#include "rejects.h"
#include "resync.h"
#include "sdnotify.h"
#include "selfmetrics.h"
#include "senders.h"
#include "stats.h"
#include "upstream.h"
#include "window.h"

struct daemon {
	uv_loop_t loop;
	struct config cfg;
	const char *config_path;        /* what to re-read on reload; NULL: defaults */
	struct stats stats;
	struct dgram_pool pool;
	struct upstream upstream;
	struct window window;
	struct ingest ingest;
	struct listener *listeners[CONFIG_MAX_LISTEN]; /* heap; freed in close callbacks */
	size_t nlisteners;
	struct listener_stats retired[2]; /* of closed listeners, by transport (udp, unix),
					     so that totals never go back */
	struct sd_fds sd_fds;
	struct admin admin;             /* when [admin] socket is set */
	struct senders senders;         /* who sends what, for the admin */
	struct rejects rejects;         /* the last refused lines, for the admin */
	struct selfmetrics self;
	struct resync resync;           /* the age-gauge set from SpectatorD */
	struct losses losses;           /* what the journal has been told of */
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t tick;                /* drop counters, loss warnings, watchdog */
	uv_timer_t self_timer;          /* self-metrics */
	uv_timer_t stop_timer;          /* shutdown: retry delivery until the deadline */
	uint64_t start_ms;              /* uv_now() at start */
	double now_s;                   /* epoch seconds, refreshed each window and reject */
	uint64_t stop_deadline_ms;
	uint64_t watchdog_ms;           /* 0: no watchdog */
	uint64_t last_status_ms;
	uint64_t last_status_in, last_status_out;
	unsigned started;               /* DAEMON_HAVE_* bits: what cleanup must close */
	bool stopping;
	char last_reload[512];          /* the last reload's result, for stats */
};

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Opens everything in dependency order and sends READY=1. Returns 0, or a
 * negative errno with one line in err; then daemon_cleanup() undoes what
 * was done. config_path is kept for reloads. */
int daemon_start(struct daemon *d, const struct config *cfg, const char *config_path, char *err,
		 size_t errlen);

/* Runs the loop until the shutdown sequence ends. Returns the exit status. */
int daemon_run(struct daemon *d);

/* Re-reads the configuration file and applies what can change at runtime.
 * Returns 0 or -errno; msg receives the result either way, one line:
 * "FILE:LINE: key: reason" on error. */
int daemon_reload(struct daemon *d, char *msg, size_t msglen);

/* Starts the shutdown sequence (as SIGTERM does). */
void daemon_stop(struct daemon *d);

/* Frees what daemon_start() allocated; the loop must have stopped. */
void daemon_cleanup(struct daemon *d);

uint64_t daemon_uptime_ms(const struct daemon *d);

#endif
