/* losses.h - which losses to tell the journal about, and when. Pure: the
 * owner feeds running totals and a monotonic clock, and logs what this
 * returns.
 *
 * Every kind of loss or refusal the stats count is worth a warning, since
 * an operator reads the journal first; but a flood must not flood the
 * journal. So, per kind: the first loss after a quiet interval is reported
 * at the next check, then at most one report per LOSSES_INTERVAL_MS, each
 * with the count since the one before. Nothing is reported twice and,
 * with a final check at shutdown, nothing is left out. */
#ifndef RELAY_LOSSES_H
#define RELAY_LOSSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOSSES_INTERVAL_MS 10000

/* X(id, kind as logged, what is counted, the statistic that counts it) */
#define LOSSES(X)                                                                         \
	X(UPSTREAM, "upstream", "lines", "dropped.upstream")                              \
	X(KERNEL, "kernel", "datagrams", "listeners[].kernel_drops")                      \
	X(SERIES_LIMIT, "series-limit", "lines", "dropped.series_limit")                  \
	X(NAME_LIMIT, "name-limit", "lines", "dropped.name_limit")                        \
	X(AGE_GAUGE_LIMIT, "age-gauge-limit", "lines", "dropped.age_gauge_limit")         \
	X(TRUNCATED, "truncated", "datagrams", "received.truncated")

enum loss_kind {
#define X(id, name, unit, stat) LOSS_##id,
	LOSSES(X)
#undef X
	LOSS_KIND_COUNT
};

extern const char *const loss_kind_name[LOSS_KIND_COUNT];
extern const char *const loss_kind_unit[LOSS_KIND_COUNT];
extern const char *const loss_kind_stat[LOSS_KIND_COUNT];

struct losses {
	uint64_t reported[LOSS_KIND_COUNT]; /* totals as of the last report */
	uint64_t since_ms[LOSS_KIND_COUNT]; /* when that was, or the start */
	bool told[LOSS_KIND_COUNT];         /* a report was made since the start */
};

struct loss_report {
	enum loss_kind kind;
	uint64_t count;      /* lost since the last report of this kind */
	uint64_t period_ms;  /* since that report, or the start */
};

/* Starts at totals: what was lost before now_ms is not reported. */
void losses_init(struct losses *l, const uint64_t totals[LOSS_KIND_COUNT], uint64_t now_ms);

/* Compares totals (running counts, which never go back) with what was
 * reported, and fills out[] with the kinds to report now. final: every
 * kind with something unreported, whatever the interval (at shutdown).
 * Returns the number of reports filled, at most LOSS_KIND_COUNT. */
size_t losses_check(struct losses *l, const uint64_t totals[LOSS_KIND_COUNT], uint64_t now_ms,
		    bool final, struct loss_report out[LOSS_KIND_COUNT]);

#endif
