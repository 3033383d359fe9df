/* reload.h - SIGHUP and the admin `reload`: the configuration file read
 * again and applied to the running relay.
 *
 * A file that does not load changes nothing and is counted (reload.failed).
 * Otherwise each module takes what it can change at runtime (config.h: an
 * option's reloadable flag), in an order that keeps every line: the
 * upstream first (a new location, a new datagram size), then the window,
 * SpectatorD's admin address, and the listeners. What a module could not
 * apply keeps its running value, and is reported as a problem; options that
 * need a restart keep theirs, and are reported as such. */
#ifndef RELAY_RELOAD_H
#define RELAY_RELOAD_H

#include <stddef.h>

#include "config.h"
#include "listeners.h"
#include "resync.h"
#include "stats.h"
#include "upstream.h"
#include "window.h"

/* What a reload reads and changes, all borrowed from their owner. */
struct reload_target {
	const char *config_path;   /* NULL: built-in defaults */
	struct config *cfg;        /* in effect: replaced by what was applied */
	struct stats *stats;
	struct upstream *upstream;
	struct window *window;
	struct resync *resync;
	struct listeners *listeners;
	char *last;                /* the result, for `stats` (last_cap bytes) */
	size_t last_cap;
};

/* Re-reads the file and applies it. Returns 0 or -errno; msg (cap bytes)
 * receives the result either way, one line: "FILE:LINE: key: reason" when
 * the file is bad. Logs it once. */
int reload_run(const struct reload_target *t, char *msg, size_t cap);

#endif
