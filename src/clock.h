/* clock.h - wall-clock time as the relay stamps it. */
#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H

#include <time.h>

/* Epoch seconds. Age gauges of 0 take it as their receive time; it must be
 * the clock SpectatorD reads, so it is CLOCK_REALTIME at full resolution. */
static inline double clock_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Epoch seconds within a few milliseconds, without a system call: for
 * stamping what people read (when a line was refused). */
static inline double clock_realtime_coarse(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
