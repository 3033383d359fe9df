/* selfmetrics.c - see selfmetrics.h. */
#include "selfmetrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"

/* Totals by transport over every listener the relay has had: a reload that
 * closes one must not make them go back. */
static void totals(struct daemon *d, uint64_t lines[2], uint64_t dgrams[2], uint64_t *drops)
{
	*drops = 0;
	for (int k = 0; k < 2; k++) {
		lines[k] = d->retired[k].lines;
		dgrams[k] = d->retired[k].datagrams;
		*drops += d->retired[k].kernel_drops;
	}
	for (size_t i = 0; i < d->nlisteners; i++) {
		const struct listener *l = d->listeners[i];
		int k = l->url.kind == URL_UNIX;
		lines[k] += l->st.lines;
		dgrams[k] += l->st.datagrams;
		*drops += l->st.kernel_drops;
	}
}

void selfmetrics_reset(struct selfmetrics *m, struct daemon *d)
{
	m->prev = d->stats;
	totals(d, m->prev_lines, m->prev_datagrams, &m->prev_kernel_drops);
	m->max_flush_us = 0;
}

/* Formats one line and records it like a client's. Counters are deltas;
 * the window drops zero ones, as it does for clients. */
static void emit(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct daemon *d, const char *fmt, ...)
{
	char line[512];
	const char *tags = d->cfg.self_metrics_tags;
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
	struct sample s;
	enum reject_reason r = proto_parse_line(&d->ingest.ps, line, (size_t)n, &s);
	if (r == REJECT_NONE)
		r = window_record(&d->window, &s);
	if (r != REJECT_NONE)
		d->stats.rejected[r]++;
}

void selfmetrics_emit(struct selfmetrics *m, struct daemon *d)
{
	const struct stats *now = &d->stats, *was = &m->prev;
	static const char *const transport[2] = { "udp", "unix" };
	uint64_t lines[2], dgrams[2], drops;
	const char *pfx = "spectatorRelay";

	totals(d, lines, dgrams, &drops);
	for (int k = 0; k < 2; k++) {
		emit(d, "c:%s.linesReceived,transport=%s:%llu", pfx, transport[k],
		     (unsigned long long)(lines[k] - m->prev_lines[k]));
		emit(d, "c:%s.datagramsReceived,transport=%s:%llu", pfx, transport[k],
		     (unsigned long long)(dgrams[k] - m->prev_datagrams[k]));
	}
	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		emit(d, "c:%s.linesRejected,reason=%s:%llu", pfx, reject_reason_name[r],
		     (unsigned long long)(now->rejected[r] - was->rejected[r]));
	emit(d, "c:%s.linesMerged,kind=scalar:%llu", pfx,
	     (unsigned long long)(now->merged_lines_in - was->merged_lines_in));
	emit(d, "c:%s.linesMerged,kind=timer:%llu", pfx,
	     (unsigned long long)(now->timers_lines_in - was->timers_lines_in));
	emit(d, "c:%s.mergedLinesOut,kind=scalar:%llu", pfx,
	     (unsigned long long)(now->merged_lines_out - was->merged_lines_out));
	emit(d, "c:%s.mergedLinesOut,kind=timer:%llu", pfx,
	     (unsigned long long)(now->timers_lines_out - was->timers_lines_out));
	emit(d, "c:%s.timerLinesUnmerged:%llu", pfx,
	     (unsigned long long)(now->timers_unmerged - was->timers_unmerged));
	emit(d, "c:%s.linesForwarded:%llu", pfx,
	     (unsigned long long)(now->forwarded_lines - was->forwarded_lines));
	emit(d, "c:%s.datagramsForwarded:%llu", pfx,
	     (unsigned long long)(now->forwarded_datagrams - was->forwarded_datagrams));
	emit(d, "c:%s.linesDropped,reason=upstream:%llu", pfx,
	     (unsigned long long)(now->dropped_upstream - was->dropped_upstream));
	emit(d, "c:%s.linesDropped,reason=series-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_SERIES_LIMIT] -
				  was->rejected[REJECT_SERIES_LIMIT]));
	emit(d, "c:%s.linesDropped,reason=name-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_NAME_LIMIT] - was->rejected[REJECT_NAME_LIMIT]));
	emit(d, "c:%s.linesDropped,reason=age-gauge-limit:%llu", pfx,
	     (unsigned long long)(now->rejected[REJECT_AGE_GAUGE_LIMIT] -
				  was->rejected[REJECT_AGE_GAUGE_LIMIT]));
	emit(d, "c:%s.kernelDrops:%llu", pfx, (unsigned long long)(drops - m->prev_kernel_drops));
	emit(d, "c:%s.upstreamErrors:%llu", pfx,
	     (unsigned long long)(now->upstream_errors - was->upstream_errors));
	/* Gauges carry a TTL so that a stopped relay's values expire soon. */
	emit(d, "g,30:%s.seriesActive:%llu", pfx, (unsigned long long)now->windows_last_series);
	emit(d, "g,30:%s.ageGauges:%zu", pfx, agg_ages_count(&d->window.ages));
	emit(d, "g,30:%s.upstreamPendingBytes:%zu", pfx, d->upstream.queue.bytes);
	emit(d, "g,30:%s.upstreamUp:%d", pfx, upstream_is_up(&d->upstream));
	emit(d, "m:%s.flushDuration:%.6f", pfx, (double)m->max_flush_us / 1e6);

	m->prev = *now;
	memcpy(m->prev_lines, lines, sizeof(lines));
	memcpy(m->prev_datagrams, dgrams, sizeof(dgrams));
	m->prev_kernel_drops = drops;
	m->max_flush_us = 0;
}
