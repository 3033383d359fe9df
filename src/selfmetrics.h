/* selfmetrics.h - the relay's own meters, forwarded upstream every
 * SELFMETRICS_PERIOD_MS as SpectatorD lines named spectatorRelay.*.
 *
 * They are read from a snapshot (snapshot.h) and handed, as lines, to a
 * record function that takes them the path client lines take (the parser,
 * then the window), so they merge, count and flow like any other line;
 * they are not counted as received. docs/admin.md lists each one. */
#ifndef RELAY_SELFMETRICS_H
#define RELAY_SELFMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"
#include "stats.h"

#define SELFMETRICS_PERIOD_MS 5000

/* Takes one line (borrowed for the call). */
typedef void (*selfmetrics_record_fn)(void *ctx, const char *line, size_t len);

struct selfmetrics {
	struct stats prev;          /* counters at the last emission */
	struct listener_stats prev_transport[2];
	uint64_t max_flush_us;      /* longest window close since the last emission */
};

/* Takes the current counters as the baseline (at start, and when the
 * meters are off). */
void selfmetrics_reset(struct selfmetrics *m, const struct snapshot *s);

/* A window closed after this many microseconds. */
void selfmetrics_note_flush(struct selfmetrics *m, uint64_t us);

/* Records one period's lines through record, with the [self_metrics] tags
 * of s->cfg, and makes this the baseline. */
void selfmetrics_emit(struct selfmetrics *m, const struct snapshot *s, selfmetrics_record_fn record,
		      void *ctx);

#endif
