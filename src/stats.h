/* stats.h - the relay's counters, each named once. Pure.
 *
 * STATS(X) lists every scalar statistic: its JSON group and key, whether it
 * is a counter (only grows) or a gauge, and what it means. The struct, the
 * `stats` JSON and docs/admin.md's table all come from this list, and a test
 * checks that the docs name the same set. Single-threaded: plain increments. */
#ifndef RELAY_STATS_H
#define RELAY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "metric.h"

#define STATS(X)                                                                              \
	X(received, datagrams, counter, "datagrams read from all listeners")                  \
	X(received, bytes, counter, "bytes in those datagrams")                               \
	X(received, lines, counter, "non-empty lines in those datagrams")                     \
	X(received, truncated, counter, "unix datagrams longer than 65535 bytes (kernel cut them)") \
	X(received, nul_cut, counter, "datagrams that held a NUL byte; the rest of each was ignored") \
	X(merged, lines_in, counter, "accepted lines of c g m A C U merged into their series")  \
	X(merged, lines_out, counter, "lines written for them at window ends")                  \
	X(timers, lines_in, counter, "accepted t T d D lines merged into their statistics")     \
	X(timers, lines_out, counter, "lines written for them at window ends: statistics, or the samples of a series too small to merge") \
	X(timers, unmerged, counter, "t T d D lines forwarded one to one: merge_timers off, a series the window could not take, or one a total would overflow") \
	X(forwarded, lines, counter, "lines sent upstream, merged and pass-through")            \
	X(forwarded, datagrams, counter, "datagrams sent upstream")                             \
	X(forwarded, bytes, counter, "bytes sent upstream")                                     \
	X(dropped, upstream, counter, "accepted lines lost on the way out (docs/admin.md lists the causes)") \
	X(upstream, errors, counter, "failed sends (each outage, EAGAIN, refused or missing socket)") \
	X(upstream, outages, counter, "times the upstream went from up to down")                \
	X(windows, flushed, counter, "windows closed")                                        \
	X(windows, deferred, counter, "window closes put off because the last window was not yet delivered") \
	X(windows, last_series, gauge, "series merged in the last closed window")            \
	X(windows, last_flush_duration_us, gauge, "time to close the last window and hand it upstream") \
	X(windows, max_loop_lag_us, gauge, "largest delay of the window timer behind schedule since start") \
	X(spectatord, resyncs, counter, "age-gauge sets read from SpectatorD's admin server")  \
	X(spectatord, resync_failures, counter, "attempts to read them that failed")          \
	X(reload, ok, counter, "successful reloads (SIGHUP or the reload command)")           \
	X(reload, failed, counter, "reloads refused because the file was bad")

struct stats {
#define X(group, name, kind, doc) uint64_t group##_##name;
	STATS(X)
#undef X
	uint64_t rejected[REJECT_REASON_COUNT]; /* by reason; [0] unused */
};

/* One listening socket's counters (listener.h keeps them). */
struct listener_stats {
	uint64_t datagrams;
	uint64_t lines;
	uint64_t bytes;
	uint64_t kernel_drops;   /* UDP: from /proc/net/udp{,6}; see listener_refresh() */
	size_t receive_buffer;   /* SO_RCVBUF as granted */
	uint64_t read_errors;
};

/* Sum of rejected[] over every reason. */
uint64_t stats_rejected_total(const struct stats *s);

/* Called before each group's closing brace, so that the owner of live state
 * (the upstream's location, the table's size) can add members to the group
 * the docs put them in. It appends ", \"key\": value" pairs to out. */
typedef void (*stats_extra_fn)(void *ctx, const char *group, struct jbuf *out);

/* Appends the groups as JSON members, without the outer braces:
 * "received": {...}, ..., "dropped": {..., "series_limit": n, "name_limit": n,
 * "age_gauge_limit": n},
 * ..., "rejected": {"total": n, "by_reason": {every reason: n}}. */
void stats_format_json(const struct stats *s, struct jbuf *out, stats_extra_fn extra, void *ctx);

#endif
