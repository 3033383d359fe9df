/* stats.c - see stats.h. */
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

uint64_t stats_rejected_total(const struct stats *s)
{
	uint64_t t = 0;

	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		t += s->rejected[r];
	return t;
}

void stats_put(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int m = vsnprintf(buf + (*n < cap ? *n : cap), *n < cap ? cap - *n : 0, fmt, ap);
	va_end(ap);
	if (m > 0)
		*n += (size_t)m;
}

static void close_group(const struct stats *s, const char *group, char *buf, size_t cap,
			size_t *n, stats_extra_fn extra, void *ctx)
{
	/* Refusals by the window limits are also drops; they are counted once,
	 * under their reason, and shown in both places. */
	if (strcmp(group, "dropped") == 0)
		stats_put(buf, cap, n,
			  ", \"series_limit\": %llu, \"name_limit\": %llu, \"age_gauge_limit\": %llu",
			  (unsigned long long)s->rejected[REJECT_SERIES_LIMIT],
			  (unsigned long long)s->rejected[REJECT_NAME_LIMIT],
			  (unsigned long long)s->rejected[REJECT_AGE_GAUGE_LIMIT]);
	if (extra)
		extra(ctx, group, buf, cap, n);
	stats_put(buf, cap, n, "}");
}

void stats_format_json(const struct stats *s, char *buf, size_t cap, size_t *n,
		       stats_extra_fn extra, void *ctx)
{
	const char *group = NULL;

#define X(g, name, kind, doc)                                                           \
	if (!group || strcmp(group, #g) != 0) {                                         \
		if (group) {                                                            \
			close_group(s, group, buf, cap, n, extra, ctx);                 \
			stats_put(buf, cap, n, ", ");                                   \
		}                                                                       \
		stats_put(buf, cap, n, "\"%s\": {", #g);                                \
		group = #g;                                                             \
	} else {                                                                        \
		stats_put(buf, cap, n, ", ");                                           \
	}                                                                               \
	stats_put(buf, cap, n, "\"%s\": %llu", #name, (unsigned long long)s->g##_##name);
	STATS(X)
#undef X
	close_group(s, group, buf, cap, n, extra, ctx);
	stats_put(buf, cap, n, ", \"rejected\": {\"total\": %llu, \"by_reason\": {",
		  (unsigned long long)stats_rejected_total(s));
	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		stats_put(buf, cap, n, "%s\"%s\": %llu", r > 1 ? ", " : "", reject_reason_name[r],
			  (unsigned long long)s->rejected[r]);
	stats_put(buf, cap, n, "}}");
}
