/* selfmetrics.c - see selfmetrics.h. */
#include "selfmetrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void selfmetrics_reset(struct selfmetrics *m, const struct snapshot *s)
{
	m->prev = *s->stats;
	memcpy(m->prev_transport, s->by_transport, sizeof(m->prev_transport));
	m->max_flush_us = 0;
}

void selfmetrics_note_flush(struct selfmetrics *m, uint64_t us)
{
	if (us > m->max_flush_us)
		m->max_flush_us = us;
}

struct out {
	const char *tags;
	selfmetrics_record_fn record;
	void *ctx;
};

/* Formats one line and records it like a client's. Counters are deltas;
 * the window drops zero ones, as it does for clients. */
static void emit(const struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(const struct out *o, const char *fmt, ...)
{
	char line[512];
	const char *tags = o->tags;
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	/* Extra tags go right before the value: "...,k=v:<value>". */
	if (tags[0]) {
		char *colon = strrchr(line, ':');
		char with[768];
		int m = snprintf(with, sizeof(with), "%.*s,%s%s", (int)(colon - line), line, tags, colon);
		if (m < 0 || (size_t)m >= sizeof(with))
			return;
		memcpy(line, with, (size_t)m + 1);
		n = m;
	}
	o->record(o->ctx, line, (size_t)n);
}

void selfmetrics_emit(struct selfmetrics *m, const struct snapshot *s, selfmetrics_record_fn record,
		      void *ctx)
{
	const struct stats *now = s->stats, *was = &m->prev;
	static const char *const transport[2] = { "udp", "unix" };
	const struct listener_stats *t = s->by_transport, *pt = m->prev_transport;
	const char *pfx = "spectatorRelay";
	struct out o = { s->cfg->self_metrics_tags, record, ctx };

	for (int k = 0; k < 2; k++) {
		emit(&o, "c:%s.linesReceived,transport=%s:%llu", pfx, transport[k],
		     (unsigned long long)(t[k].lines - pt[k].lines));
		emit(&o, "c:%s.datagramsReceived,transport=%s:%llu", pfx, transport[k],
		     (unsigned long long)(t[k].datagrams - pt[k].datagrams));
	}
	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		emit(&o, "c:%s.linesRejected,reason=%s:%llu", pfx, reject_reason_name[r],
		     (unsigned long long)(now->rejected[r] - was->rejected[r]));
	emit(&o, "c:%s.linesMerged,kind=scalar:%llu", pfx,
	     (unsigned long long)(now->merged_lines_in - was->merged_lines_in));
	emit(&o, "c:%s.linesMerged,kind=timer:%llu", pfx,
	     (unsigned long long)(now->timers_lines_in - was->timers_lines_in));
	emit(&o, "c:%s.mergedLinesOut,kind=scalar:%llu", pfx,
	     (unsigned long long)(now->merged_lines_out - was->merged_lines_out));
	emit(&o, "c:%s.mergedLinesOut,kind=timer:%llu", pfx,
	     (unsigned long long)(now->timers_lines_out - was->timers_lines_out));
	emit(&o, "c:%s.timerLinesUnmerged:%llu", pfx,
	     (unsigned long long)(now->timers_unmerged - was->timers_unmerged));
	emit(&o, "c:%s.linesForwarded:%llu", pfx,
	     (unsigned long long)(now->forwarded_lines - was->forwarded_lines));
	emit(&o, "c:%s.datagramsForwarded:%llu", pfx,
	     (unsigned long long)(now->forwarded_datagrams - was->forwarded_datagrams));
	emit(&o, "c:%s.linesDropped,reason=upstream:%llu", pfx,
	     (unsigned long long)(now->dropped_upstream - was->dropped_upstream));
	emit(&o, "c:%s.linesDropped,reason=series-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_SERIES_LIMIT] -
				  was->rejected[REJECT_SERIES_LIMIT]));
	emit(&o, "c:%s.linesDropped,reason=name-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_NAME_LIMIT] - was->rejected[REJECT_NAME_LIMIT]));
	emit(&o, "c:%s.linesDropped,reason=age-gauge-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_AGE_GAUGE_LIMIT] -
				  was->rejected[REJECT_AGE_GAUGE_LIMIT]));
	emit(&o, "c:%s.kernelDrops:%llu", pfx,
	     (unsigned long long)(t[0].kernel_drops + t[1].kernel_drops - pt[0].kernel_drops -
				  pt[1].kernel_drops));
	emit(&o, "c:%s.upstreamErrors:%llu", pfx,
	     (unsigned long long)(now->upstream_errors - was->upstream_errors));
	/* Gauges carry a TTL so that a stopped relay's values expire soon. */
	emit(&o, "g,30:%s.seriesActive:%llu", pfx, (unsigned long long)now->windows_last_series);
	emit(&o, "g,30:%s.ageGauges:%zu", pfx, agg_ages_count(s->ages));
	emit(&o, "g,30:%s.upstreamPendingBytes:%zu", pfx, s->upstream.pending_bytes);
	emit(&o, "g,30:%s.upstreamUp:%d", pfx, s->upstream.up);
	emit(&o, "m:%s.flushDuration:%.6f", pfx, (double)m->max_flush_us / 1e6);

	selfmetrics_reset(m, s);
}
