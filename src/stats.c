/* stats.c - see stats.h. */
#include "stats.h"

#include <string.h>

uint64_t stats_rejected_total(const struct stats *s)
{
	uint64_t t = 0;

	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		t += s->rejected[r];
	return t;
}

static void close_group(const struct stats *s, const char *group, struct jbuf *out,
			stats_extra_fn extra, void *ctx)
{
	/* Refusals by the window limits are also drops; they are counted once,
	 * under their reason, and shown in both places. */
	if (strcmp(group, "dropped") == 0)
		jbuf_printf(out,
			    ", \"series_limit\": %llu, \"name_limit\": %llu, \"age_gauge_limit\": %llu",
			    (unsigned long long)s->rejected[REJECT_SERIES_LIMIT],
			    (unsigned long long)s->rejected[REJECT_NAME_LIMIT],
			    (unsigned long long)s->rejected[REJECT_AGE_GAUGE_LIMIT]);
	if (extra)
		extra(ctx, group, out);
	jbuf_printf(out, "}");
}

void stats_format_json(const struct stats *s, struct jbuf *out, stats_extra_fn extra, void *ctx)
{
	const char *group = NULL;

#define X(g, name, kind, doc)                                                      \
	if (!group || strcmp(group, #g) != 0) {                                    \
		if (group) {                                                       \
			close_group(s, group, out, extra, ctx);                    \
			jbuf_printf(out, ", ");                                    \
		}                                                                  \
		jbuf_printf(out, "\"%s\": {", #g);                                 \
		group = #g;                                                        \
	} else {                                                                   \
		jbuf_printf(out, ", ");                                            \
	}                                                                          \
	jbuf_printf(out, "\"%s\": %llu", #name, (unsigned long long)s->g##_##name);
	STATS(X)
#undef X
	close_group(s, group, out, extra, ctx);
	jbuf_printf(out, ", \"rejected\": {\"total\": %llu, \"by_reason\": {",
		    (unsigned long long)stats_rejected_total(s));
	for (int r = 1; r < REJECT_REASON_COUNT; r++)
		jbuf_printf(out, "%s\"%s\": %llu", r > 1 ? ", " : "", reject_reason_name[r],
			    (unsigned long long)s->rejected[r]);
	jbuf_printf(out, "}}");
}
