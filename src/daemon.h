/* daemon.h - the one process-wide object: it owns the loop and every module.
 *
 * Start-up is fatal on any error (daemon_start() returns it with a message);
 * after READY=1 nothing is: faults are counted in the stats.
 *
 * Signals arrive as loop events:
 *   SIGHUP           reload the configuration (reload.h);
 *   SIGTERM, SIGINT  the shutdown sequence: STOPPING=1, drain every socket's
 *                    kernel queue, flush the open window, deliver it against
 *                    [relay] shutdown_timeout, close every handle, exit 0;
 *   SIGPIPE          ignored.
 *
 * The modules that report on the others (admin, self-metrics) read a
 * snapshot the daemon builds from its modules' accessors (snapshot.h), and
 * act through the operations it hands them. */
#ifndef RELAY_DAEMON_H
#define RELAY_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "admin.h"
#include "buf.h"
#include "config.h"
#include "ingest.h"
#include "listeners.h"
#include "losses.h"
#include "rejects.h"
#include "resync.h"
#include "selfmetrics.h"
#include "senders.h"
#include "snapshot.h"
#include "stats.h"
#include "upstream.h"
#include "window.h"

struct daemon {
	uv_loop_t loop;
	struct config cfg;              /* in effect */
	const char *config_path;        /* what to re-read on reload; NULL: defaults */
	struct stats stats;
	struct dgram_pool pool;
	struct upstream upstream;
	struct window window;
	struct ingest ingest;
	struct listeners listeners;
	struct admin admin;             /* when [admin] socket is set */
	struct senders senders;         /* who sends what, for the admin */
	struct rejects rejects;         /* the last refused lines, for the admin */
	struct selfmetrics self;
	struct resync resync;           /* the age-gauge set from SpectatorD */
	struct losses losses;           /* which losses the journal was told of */
	struct tap tap;                 /* what `tap` clients watch */
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t tick;                /* drop counters, losses, watchdog */
	uv_timer_t self_timer;          /* self-metrics */
	uv_timer_t stop_timer;          /* shutdown: retry delivery until the deadline */
	uint64_t start_ms;              /* uv_now() at start */
	double now_s;                   /* epoch seconds, refreshed each window */
	uint64_t stop_deadline_ms;
	uint64_t watchdog_ms;           /* 0: no watchdog */
	uint64_t last_status_ms;
	uint64_t last_status_in, last_status_out;
	unsigned started;               /* DAEMON_HAVE_* bits: what cleanup must close */
	bool stopping;
	char last_reload[512];          /* the last reload's result, for stats */
};

/* Opens everything in dependency order and sends READY=1. Returns 0, or a
 * negative errno with one line in err; then daemon_cleanup() undoes what
 * was done. config_path is kept for reloads. */
int daemon_start(struct daemon *d, const struct config *cfg, const char *config_path, char *err,
		 size_t errlen);

/* Runs the loop until the shutdown sequence ends. Returns the exit status. */
int daemon_run(struct daemon *d);

/* Starts the shutdown sequence (as SIGTERM does). */
void daemon_stop(struct daemon *d);

/* Frees what daemon_start() allocated; the loop must have stopped. */
void daemon_cleanup(struct daemon *d);

/* The relay as the reporting modules see it (snapshot.h): valid until the
 * loop runs again. Refreshes the listeners' kernel drop counts first. */
void daemon_snapshot(struct daemon *d, struct snapshot *out);

#endif
