/* losses.c - see losses.h. */
#include "losses.h"

#include <string.h>

const char *const loss_kind_name[LOSS_KIND_COUNT] = {
#define X(id, name, unit, stat) name,
	LOSSES(X)
#undef X
};

const char *const loss_kind_unit[LOSS_KIND_COUNT] = {
#define X(id, name, unit, stat) unit,
	LOSSES(X)
#undef X
};

const char *const loss_kind_stat[LOSS_KIND_COUNT] = {
#define X(id, name, unit, stat) stat,
	LOSSES(X)
#undef X
};

void losses_init(struct losses *l, const uint64_t totals[LOSS_KIND_COUNT], uint64_t now_ms)
{
	memset(l, 0, sizeof(*l));
	for (int k = 0; k < LOSS_KIND_COUNT; k++) {
		l->reported[k] = totals[k];
		l->since_ms[k] = now_ms;
	}
}

size_t losses_check(struct losses *l, const uint64_t totals[LOSS_KIND_COUNT], uint64_t now_ms,
		    bool final, struct loss_report out[LOSS_KIND_COUNT])
{
	size_t n = 0;

	for (int k = 0; k < LOSS_KIND_COUNT; k++) {
		/* A total that went back (it should not) starts over from there
		 * rather than wrap into a huge count. */
		if (totals[k] < l->reported[k])
			l->reported[k] = totals[k];
		if (totals[k] == l->reported[k])
			continue;
		/* After a quiet interval the first report goes at once; within
		 * one, losses wait for its end and go together. */
		bool due = !l->told[k] || now_ms - l->since_ms[k] >= LOSSES_INTERVAL_MS;
		if (!due && !final)
			continue;
		out[n].kind = (enum loss_kind)k;
		out[n].count = totals[k] - l->reported[k];
		out[n].period_ms = now_ms - l->since_ms[k];
		n++;
		l->reported[k] = totals[k];
		l->since_ms[k] = now_ms;
		l->told[k] = true;
	}
	return n;
}
