/* selfmetrics.h - the relay's own meters, forwarded upstream every
 * SELFMETRICS_PERIOD_MS as SpectatorD lines named spectatorRelay.*.
 *
 * They take the path client lines take (the parser, then the window), so
 * they merge, count and flow like any other line; they are not counted as
 * received. docs/admin.md lists each one. */
#ifndef RELAY_SELFMETRICS_H
#define RELAY_SELFMETRICS_H

#include <stdint.h>

#include "stats.h"

#define SELFMETRICS_PERIOD_MS 5000

struct daemon;

struct selfmetrics {
	struct stats prev;          /* counters at the last emission */
	uint64_t prev_lines[2];     /* by transport: udp, unix */
	uint64_t prev_datagrams[2];
	uint64_t prev_kernel_drops;
	uint64_t max_flush_us;      /* largest window close since the last emission */
};

/* Records the current counters as the baseline (at start and after use). */
void selfmetrics_reset(struct selfmetrics *m, struct daemon *d);

/* Emits one period's lines into the open window. */
void selfmetrics_emit(struct selfmetrics *m, struct daemon *d);

#endif
