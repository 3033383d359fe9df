/* replay.h - `spectator-relay --replay`: protocol lines from a file (a
 * client's capture, or `spectator-relayctl tap --raw`), through the same
 * parser, window table and encoder as the relay's, as one window, with the
 * configuration's limits and [relay] merge_timers. Out come exactly the
 * lines the relay would forward, in its order: those forwarded as they came
 * first, then the window's. It opens no socket and starts no timer, so it
 * runs beside a running relay, and in CI. */
#ifndef RELAY_REPLAY_H
#define RELAY_REPLAY_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "metric.h"

struct replay_result {
	uint64_t lines;                           /* non-empty input lines */
	uint64_t forwarded;                       /* lines written to out */
	uint64_t rejected[REJECT_REASON_COUNT];   /* by reason */
};

/* Reads in to its end, one protocol line per text line, and writes the
 * forwarded lines to out, each ending in '\n'. Both streams are borrowed.
 * Returns 0, or -errno with err set (out of memory, a read or write
 * error). */
int replay_run(FILE *in, FILE *out, const struct config *cfg, struct replay_result *res,
	       char *err, size_t errlen);

#endif
